// Package opkit holds what actq's Gorgonia ops share: the sentinel errors
// and the checks of node arguments (CheckFloatNode), access to the float
// data of Gorgonia values, shape and type inference for common cases, the
// Do of an op computed by slice kernels (DenseOp, DoDense), its gradients
// on both machines from one description (Grad, SymDiff, DoDiff), results
// kept from run to run (Reuse) and op hashing. Packages ops, quantize,
// graph and internal/layerops build on it; users see its errors through
// ops' re-exports.
package opkit

import (
	"errors"
	"fmt"
	"hash"
	"hash/fnv"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// The sentinel errors, exported to users as ops.ErrNilNode, ….
var (
	ErrNilNode = errors.New("nil node")
	ErrDtype   = errors.New("unsupported dtype")
	ErrAxis    = errors.New("axis out of range")
	ErrShape   = errors.New("bad shape")
	ErrValue   = errors.New("bad value")
)

// FloatData returns the contiguous float32 or float64 elements of v (a
// *tensor.Dense, *gorgonia.F32 or *gorgonia.F64) as []float32 or []float64.
// A tensor's slice aliases its storage (a non-contiguous view is
// materialised into a copy first); a scalar's is a copy (see StoreScalar).
func FloatData(v gorgonia.Value) (any, error) {
	switch t := v.(type) {
	case *tensor.Dense:
		if err := Usable(t); err != nil {
			return nil, err
		}
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
		if err := Usable(t); err != nil {
			return nil, err
		}
		return []float32{float32(*t)}, nil
	case *gorgonia.F64:
		if err := Usable(t); err != nil {
			return nil, err
		}
		return []float64{float64(*t)}, nil
	case nil:
		return nil, fmt.Errorf("nil value: %w", ErrValue)
	}
	return nil, fmt.Errorf("value of type %T: %w", v, ErrValue)
}

// Usable returns an error wrapping ErrValue for a nil value, a nil
// pointer, or a zero *tensor.Dense (no dtype), whose methods would panic,
// and nil for any other value.
func Usable(v gorgonia.Value) error {
	bad := false
	switch t := v.(type) {
	case nil:
		bad = true
	case *tensor.Dense:
		bad = t == nil || t.Dtype().Type == nil
	case *gorgonia.F32:
		bad = t == nil
	case *gorgonia.F64:
		bad = t == nil
	}
	if bad {
		return fmt.Errorf("a nil or uninitialised %T: %w", v, ErrValue)
	}
	return nil
}

// NewLike returns a new zero value with the Go type, dtype and shape of v
// (whose data FloatData accepts), and its data slice.
func NewLike(v gorgonia.Value) (gorgonia.Value, any, error) {
	switch t := v.(type) {
	case *tensor.Dense:
		out := tensor.New(tensor.Of(t.Dtype()), tensor.WithShape(t.Shape().Clone()...))
		data, err := FloatData(out)
		return out, data, err
	case *gorgonia.F32:
		return gorgonia.NewF32(0), []float32{0}, nil
	case *gorgonia.F64:
		return gorgonia.NewF64(0), []float64{0}, nil
	}
	return nil, nil, fmt.Errorf("value of type %T: %w", v, ErrValue)
}

// StoreScalar copies data[0] into v when v is a scalar (whose FloatData is a
// copy); tensors share their data slice and need nothing.
func StoreScalar(v gorgonia.Value, data any) {
	switch t := v.(type) {
	case *gorgonia.F32:
		*t = gorgonia.F32(data.([]float32)[0])
	case *gorgonia.F64:
		*t = gorgonia.F64(data.([]float64)[0])
	}
}

// PreallocData returns the data of out, a value supplied to hold a result,
// after checking that it can hold a result like like: the same Go type,
// dtype and shape, and contiguous.
func PreallocData(out, like gorgonia.Value) (any, error) {
	if err := Usable(out); err != nil {
		return nil, fmt.Errorf("preallocated value: %w", err)
	}
	if !sameKind(out, like) || out.Dtype() != like.Dtype() || !out.Shape().Eq(like.Shape()) {
		return nil, fmt.Errorf("preallocated %T %v %v cannot hold a result like %T %v %v: %w",
			out, out.Dtype(), out.Shape(), like, like.Dtype(), like.Shape(), ErrValue)
	}
	if d, ok := out.(*tensor.Dense); ok && d.RequiresIterator() {
		return nil, fmt.Errorf("preallocated tensor is a non-contiguous view: %w", ErrValue)
	}
	return FloatData(out)
}

// sameKind reports whether a and b are both tensors or both scalars of the
// same Go type.
func sameKind(a, b gorgonia.Value) bool {
	switch a.(type) {
	case *tensor.Dense:
		_, ok := b.(*tensor.Dense)
		return ok
	case *gorgonia.F32:
		_, ok := b.(*gorgonia.F32)
		return ok
	case *gorgonia.F64:
		_, ok := b.(*gorgonia.F64)
		return ok
	}
	return false
}

// LenOf returns the length of a []float32 or []float64 held in data (0 for
// anything else).
func LenOf(data any) int {
	switch d := data.(type) {
	case []float32:
		return len(d)
	case []float64:
		return len(d)
	}
	return 0
}

// Hash is an op's Hashcode: the FNV-32a hash of what its WriteHash writes.
func Hash(op interface{ WriteHash(hash.Hash) }) uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}
