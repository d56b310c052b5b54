package layerops

import (
	"fmt"
	"hash"

	"github.com/actq/actq/internal/opkit"
	"github.com/chewxy/hm"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// ReshapeCopy returns x reshaped to the given shape, in new memory.
//
// Gorgonia's Reshape returns a view that shares x's memory, and the tape
// machine's register allocator does not know it: an op that writes its
// result in place over the view's register once the view is dead (every
// elementwise op may, including actq's) then writes into x, which may still
// be in use, or be a graph input that must never change. Layers reshape
// their caller's input with ReshapeCopy; views of their own intermediate
// results are safe and stay views.
func ReshapeCopy(x *gorgonia.Node, to ...int) (*gorgonia.Node, error) {
	return gorgonia.ApplyOp(&reshapeCopyOp{from: x.Shape().Clone(), to: tensor.Shape(to).Clone()}, x)
}

// reshapeCopyOp is ReshapeCopy's op. Its gradient is the output's gradient
// reshaped back, again copied.
type reshapeCopyOp struct {
	opkit.Allocates
	opkit.Reuse
	from, to tensor.Shape
}

func (op *reshapeCopyOp) String() string { return fmt.Sprintf("ReshapeCopy(%v→%v)", op.from, op.to) }

func (op *reshapeCopyOp) Arity() int { return 1 }

func (op *reshapeCopyOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(gorgonia.TensorType{Dims: op.from.Dims(), Of: a}, gorgonia.TensorType{Dims: op.to.Dims(), Of: a})
}

func (op *reshapeCopyOp) InferShape(ds ...gorgonia.DimSizer) (tensor.Shape, error) {
	ss, err := opkit.Shapes(op, 1, ds)
	if err != nil {
		return nil, err
	}
	if ss[0].TotalSize() != op.to.TotalSize() {
		return nil, fmt.Errorf("%v: input shape %v: %w", op, ss[0], opkit.ErrShape)
	}
	return op.to.Clone(), nil
}

func (op *reshapeCopyOp) Do(inputs ...gorgonia.Value) (gorgonia.Value, error) {
	return opkit.DoDense(op, inputs)
}

func (op *reshapeCopyOp) Kernel32(dst []float32, in [][]float32, _ []gorgonia.Value) error {
	copy(dst, in[0])
	return nil
}

func (op *reshapeCopyOp) Kernel64(dst []float64, in [][]float64, _ []gorgonia.Value) error {
	copy(dst, in[0])
	return nil
}

func (op *reshapeCopyOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "actq.layerops.%v", op) }
func (op *reshapeCopyOp) Hashcode() uint32      { return opkit.Hash(op) }

func (op *reshapeCopyOp) DiffWRT(int) []bool { return []bool{true} }

func (op *reshapeCopyOp) grads() []opkit.Grad {
	return []opkit.Grad{{Op: &reshapeCopyOp{from: op.to, to: op.from}, Args: []int{opkit.DY}}}
}

func (op *reshapeCopyOp) SymDiff(inputs gorgonia.Nodes, output, grad *gorgonia.Node) (gorgonia.Nodes, error) {
	return opkit.SymDiff(op, op.grads(), inputs, grad)
}

func (op *reshapeCopyOp) DoDiff(ctx gorgonia.ExecutionContext, inputs gorgonia.Nodes, output *gorgonia.Node) error {
	return opkit.DoDiff(op, op.grads(), inputs, output)
}
