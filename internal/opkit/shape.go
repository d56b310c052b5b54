package opkit

import (
	"fmt"

	"github.com/chewxy/hm"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Shapes returns the input shapes an op's InferShape receives, after
// checking that there are n of them and that each is a tensor.Shape (the
// only DimSizer Gorgonia passes). The shapes are not copied.
func Shapes(op fmt.Stringer, n int, ds []gorgonia.DimSizer) ([]tensor.Shape, error) {
	if len(ds) != n {
		return nil, fmt.Errorf("%v: got %d input shapes, want %d: %w", op, len(ds), n, ErrShape)
	}
	ss := make([]tensor.Shape, n)
	for i, d := range ds {
		s, ok := d.(tensor.Shape)
		if !ok {
			return nil, fmt.Errorf("%v: input %d has %T, not a tensor.Shape: %w", op, i, d, ErrShape)
		}
		ss[i] = s
	}
	return ss, nil
}

// SameShape is InferShape for an op of n inputs that must all have one
// shape: it returns a copy of that shape.
func SameShape(op fmt.Stringer, n int, ds []gorgonia.DimSizer) (tensor.Shape, error) {
	ss, err := Shapes(op, n, ds)
	if err != nil {
		return nil, err
	}
	for i, s := range ss[1:] {
		if !s.Eq(ss[0]) {
			return nil, fmt.Errorf("%v: input %d has shape %v, want %v: %w", op, i+1, s, ss[0], ErrShape)
		}
	}
	return ss[0].Clone(), nil
}

// SameType is Type for an op of n inputs whose inputs and output all have
// one type: a → … → a. It is built anew on every call, as Type must be
// (Gorgonia recycles the types it is given).
func SameType(n int) hm.Type {
	a := hm.TypeVariable('a')
	ts := make([]hm.Type, n+1)
	for i := range ts {
		ts[i] = a
	}
	return hm.NewFnType(ts...)
}
