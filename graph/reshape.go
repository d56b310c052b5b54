package graph

import (
	"fmt"
	"hash"
	"hash/fnv"

	"github.com/actq/actq/ops"
	"github.com/chewxy/hm"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// reshapeCopy returns x reshaped to the given shape, in new memory.
//
// Gorgonia's Reshape returns a view that shares x's memory, and the tape
// machine's register allocator does not know it: an op that writes its
// result in place over the view's register once the view is dead (every
// elementwise op may, including actq's) then writes into x, which may still
// be in use, or be a graph input that must never change. Layers reshape
// their caller's input with reshapeCopy; views of their own intermediate
// results are safe and stay views.
func reshapeCopy(x *gorgonia.Node, to ...int) (*gorgonia.Node, error) {
	return gorgonia.ApplyOp(reshapeCopyOp{from: x.Shape().Clone(), to: tensor.Shape(to).Clone()}, x)
}

// reshapeCopyOp is the op of reshapeCopy. Its gradient is the incoming
// gradient reshaped back, again copied.
type reshapeCopyOp struct{ from, to tensor.Shape }

func (op reshapeCopyOp) Arity() int { return 1 }

func (op reshapeCopyOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(gorgonia.TensorType{Dims: op.from.Dims(), Of: a}, gorgonia.TensorType{Dims: op.to.Dims(), Of: a})
}

func (op reshapeCopyOp) InferShape(ds ...gorgonia.DimSizer) (tensor.Shape, error) {
	if len(ds) != 1 {
		return nil, fmt.Errorf("%v: got %d input shapes, want 1: %w", op, len(ds), ops.ErrShape)
	}
	if s, ok := ds[0].(tensor.Shape); !ok || s.TotalSize() != op.to.TotalSize() {
		return nil, fmt.Errorf("%v: input shape %v: %w", op, ds[0], ops.ErrShape)
	}
	return op.to.Clone(), nil
}

func (op reshapeCopyOp) Do(inputs ...gorgonia.Value) (gorgonia.Value, error) {
	if len(inputs) != 1 {
		return nil, fmt.Errorf("%v: got %d inputs, want 1: %w", op, len(inputs), ops.ErrValue)
	}
	x, ok := inputs[0].(*tensor.Dense)
	if !ok || x.Shape().TotalSize() != op.to.TotalSize() {
		return nil, fmt.Errorf("%v: input %T %v: %w", op, inputs[0], inputs[0].Shape(), ops.ErrValue)
	}
	if x.RequiresIterator() {
		x = x.Materialize().(*tensor.Dense)
	}
	out := tensor.New(tensor.Of(x.Dtype()), tensor.WithShape(op.to...))
	switch d := out.Data().(type) {
	case []float32:
		copy(d, x.Float32s())
	case []float64:
		copy(d, x.Float64s())
	default:
		return nil, fmt.Errorf("%v: dtype %v: %w", op, x.Dtype(), ops.ErrDtype)
	}
	return out, nil
}

func (op reshapeCopyOp) ReturnsPtr() bool     { return false }
func (op reshapeCopyOp) CallsExtern() bool    { return false }
func (op reshapeCopyOp) OverwritesInput() int { return -1 }
func (op reshapeCopyOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "actq.reshapeCopy(%v→%v)", op.from, op.to)
}
func (op reshapeCopyOp) String() string { return fmt.Sprintf("ReshapeCopy(%v→%v)", op.from, op.to) }

func (op reshapeCopyOp) Hashcode() uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}

func (op reshapeCopyOp) DiffWRT(int) []bool { return []bool{true} }

func (op reshapeCopyOp) SymDiff(inputs gorgonia.Nodes, output, grad *gorgonia.Node) (gorgonia.Nodes, error) {
	dx, err := gorgonia.ApplyOp(reshapeCopyOp{from: op.to, to: op.from}, grad)
	if err != nil {
		return nil, err
	}
	return gorgonia.Nodes{dx}, nil
}

// DoDiff adds the output's gradient into the input's (Lisp machine).
func (op reshapeCopyOp) DoDiff(ctx gorgonia.ExecutionContext, inputs gorgonia.Nodes, output *gorgonia.Node) error {
	return addGrad(op, inputs[0], output)
}
