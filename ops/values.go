package ops

import (
	"fmt"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// floatData returns the contiguous float32 or float64 elements of v (a
// *tensor.Dense, *gorgonia.F32 or *gorgonia.F64) as []float32 or []float64.
// A non-contiguous view is materialised first. The slice aliases v's
// storage where it can.
func floatData(v gorgonia.Value) (any, error) {
	switch t := v.(type) {
	case *tensor.Dense:
		if t.RequiresIterator() {
			m, ok := t.Materialize().(*tensor.Dense)
			if !ok {
				return nil, fmt.Errorf("cannot materialise %T: %w", t.Materialize(), ErrValue)
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

// newLike returns a new value with the type, dtype and shape of v (whose
// data floatData accepted) and its data slice.
func newLike(v gorgonia.Value) (gorgonia.Value, any, error) {
	switch t := v.(type) {
	case *tensor.Dense:
		out := tensor.New(tensor.Of(t.Dtype()), tensor.WithShape(t.Shape().Clone()...))
		data, err := floatData(out)
		return out, data, err
	case *gorgonia.F32:
		out := gorgonia.NewF32(0)
		return out, []float32{0}, nil
	case *gorgonia.F64:
		out := gorgonia.NewF64(0)
		return out, []float64{0}, nil
	}
	return nil, nil, fmt.Errorf("value of type %T: %w", v, ErrValue)
}

// storeScalar copies data[0] into a scalar value made by newLike; tensor
// values share their data slice and need nothing.
func storeScalar(v gorgonia.Value, data any) {
	switch t := v.(type) {
	case *gorgonia.F32:
		*t = gorgonia.F32(data.([]float32)[0])
	case *gorgonia.F64:
		*t = gorgonia.F64(data.([]float64)[0])
	}
}

// addInto adds src's elements into dst's storage (dst += src): the Lisp
// machine's DoDiff accumulates into an input's gradient, which may already
// hold other consumers' contributions.
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
	switch dv := dd.(type) {
	case []float32:
		err = accumulate(dv, sd)
	case []float64:
		err = accumulate(dv, sd)
	}
	if err != nil {
		return err
	}
	storeScalar(dst, dd)
	return nil
}

// accumulate adds src, which must be a []T of dst's length, into dst.
func accumulate[T float32 | float64](dst []T, src any) error {
	sv, ok := src.([]T)
	if !ok || len(sv) != len(dst) {
		return fmt.Errorf("adding %T into %d-element %T: %w", src, len(dst), dst, ErrValue)
	}
	for i, v := range sv {
		dst[i] += v
	}
	return nil
}
