package quantize

import (
	"fmt"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// These helpers mirror ops/values.go (unexported there): the element data
// of a Float32/Float64 value, a new value shaped like another, and the Lisp
// machine's gradient accumulation.

// floatData returns the contiguous elements of v (a *tensor.Dense,
// *gorgonia.F32 or *gorgonia.F64) as []float32 or []float64, aliasing v's
// storage where it can (a non-contiguous view is materialised).
func floatData(v gorgonia.Value) (any, error) {
	switch t := v.(type) {
	case *tensor.Dense:
		if t.RequiresIterator() {
			m, ok := t.Materialize().(*tensor.Dense)
			if !ok {
				return nil, fmt.Errorf("cannot materialise a %T: %w", t, ErrValue)
			}
			t = m
		}
		switch t.Dtype() {
		case tensor.Float32:
			return t.Float32s(), nil
		case tensor.Float64:
			return t.Float64s(), nil
		}
		return nil, fmt.Errorf("tensor of dtype %v: %w", t.Dtype(), ErrDtype)
	case *gorgonia.F32:
		return []float32{float32(*t)}, nil
	case *gorgonia.F64:
		return []float64{float64(*t)}, nil
	case nil:
		return nil, fmt.Errorf("nil value: %w", ErrValue)
	}
	return nil, fmt.Errorf("value of type %T: %w", v, ErrValue)
}

// newLike returns a new zero value with v's type, dtype and shape, and its
// data slice.
func newLike(v gorgonia.Value) (gorgonia.Value, any, error) {
	switch t := v.(type) {
	case *tensor.Dense:
		out := tensor.New(tensor.Of(t.Dtype()), tensor.WithShape(t.Shape().Clone()...))
		d, err := floatData(out)
		return out, d, err
	case *gorgonia.F32:
		return gorgonia.NewF32(0), []float32{0}, nil
	case *gorgonia.F64:
		return gorgonia.NewF64(0), []float64{0}, nil
	}
	return nil, nil, fmt.Errorf("value of type %T: %w", v, ErrValue)
}

// storeScalar copies data[0] into a scalar value made by newLike; tensors
// share their data slice and need nothing.
func storeScalar(v gorgonia.Value, data any) {
	switch t := v.(type) {
	case *gorgonia.F32:
		*t = gorgonia.F32(data.([]float32)[0])
	case *gorgonia.F64:
		*t = gorgonia.F64(data.([]float64)[0])
	}
}

// addInto adds src's elements into dst's storage: the Lisp machine's DoDiff
// accumulates into an input's gradient, which other consumers may have
// added to already.
func addInto(dst, src gorgonia.Value) error {
	if d, ok := dst.(*tensor.Dense); ok && d.RequiresIterator() {
		return fmt.Errorf("gradient tensor is a non-contiguous view: %w", ErrValue)
	}
	dd, err := floatData(dst)
	if err != nil {
		return err
	}
	sd, err := floatData(src)
	if err != nil {
		return err
	}
	switch d := dd.(type) {
	case []float32:
		err = accumulate(d, sd)
	case []float64:
		err = accumulate(d, sd)
	}
	if err != nil {
		return err
	}
	storeScalar(dst, dd)
	return nil
}

func accumulate[T float32 | float64](dst []T, src any) error {
	s, ok := src.([]T)
	if !ok || len(s) != len(dst) {
		return fmt.Errorf("adding %T into a %d-element %T: %w", src, len(dst), dst, ErrValue)
	}
	for i, v := range s {
		dst[i] += v
	}
	return nil
}
