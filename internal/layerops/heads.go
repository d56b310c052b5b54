package layerops

import (
	"fmt"
	"hash"

	"github.com/actq/actq/internal/opkit"
	"github.com/chewxy/hm"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// SplitHeads returns x, the rows of a projection (batch·seq, heads·dh), in
// the per-head layout of attention's score products, (batch, heads, seq,
// dh): block (b, h, t) is row b·seq+t's columns [h·dh, (h+1)·dh). It does
// in one copy loop what Reshape + Transpose(0, 2, 1, 3) does through
// Gorgonia's generic strided transpose; its gradient is MergeHeads. It
// returns an error wrapping opkit.ErrShape unless x is 2-D with batch
// dividing its rows and heads its columns.
func SplitHeads(x *gorgonia.Node, batch, heads int) (*gorgonia.Node, error) {
	s := x.Shape()
	if s.Dims() != 2 || batch <= 0 || heads <= 0 || s[0]%batch != 0 || s[1]%heads != 0 {
		return nil, fmt.Errorf("layerops.SplitHeads: x of shape %v into %d sequences and %d heads: %w", s, batch, heads, opkit.ErrShape)
	}
	return gorgonia.ApplyOp(&headsOp{batch: batch, seq: s[0] / batch, heads: heads, dh: s[1] / heads, split: true}, x)
}

// MergeHeads is SplitHeads' inverse: it returns x (batch, heads, seq, dh)
// as the rows (batch·seq, heads·dh). It returns an error wrapping
// opkit.ErrShape unless x is 4-D.
func MergeHeads(x *gorgonia.Node) (*gorgonia.Node, error) {
	s := x.Shape()
	if s.Dims() != 4 {
		return nil, fmt.Errorf("layerops.MergeHeads: x of shape %v, want 4-D: %w", s, opkit.ErrShape)
	}
	return gorgonia.ApplyOp(&headsOp{batch: s[0], heads: s[1], seq: s[2], dh: s[3]}, x)
}

// headsOp is SplitHeads' op (split) or MergeHeads'.
type headsOp struct {
	opkit.Allocates
	opkit.Reuse
	batch, seq, heads, dh int
	split                 bool
}

func (op *headsOp) rows() tensor.Shape { return tensor.Shape{op.batch * op.seq, op.heads * op.dh} }
func (op *headsOp) perHead() tensor.Shape {
	return tensor.Shape{op.batch, op.heads, op.seq, op.dh}
}

func (op *headsOp) String() string {
	dir := "Merge"
	if op.split {
		dir = "Split"
	}
	return fmt.Sprintf("%sHeads(%v↔%v)", dir, op.rows(), op.perHead())
}

func (op *headsOp) Arity() int { return 1 }

func (op *headsOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	r, h := gorgonia.TensorType{Dims: 2, Of: a}, gorgonia.TensorType{Dims: 4, Of: a}
	if op.split {
		return hm.NewFnType(r, h)
	}
	return hm.NewFnType(h, r)
}

func (op *headsOp) InferShape(ds ...gorgonia.DimSizer) (tensor.Shape, error) {
	in, out := op.perHead(), op.rows()
	if op.split {
		in, out = out, in
	}
	ss, err := opkit.Shapes(op, 1, ds)
	if err != nil {
		return nil, err
	}
	if !ss[0].Eq(in) {
		return nil, fmt.Errorf("%v: input shape %v, want %v: %w", op, ss[0], in, opkit.ErrShape)
	}
	return out, nil
}

func (op *headsOp) Do(inputs ...gorgonia.Value) (gorgonia.Value, error) {
	return opkit.DoDense(op, inputs)
}

func (op *headsOp) Kernel32(dst []float32, in [][]float32, _ []gorgonia.Value) error {
	moveHeads(dst, in[0], op.batch, op.seq, op.heads, op.dh, op.split)
	return nil
}

func (op *headsOp) Kernel64(dst []float64, in [][]float64, _ []gorgonia.Value) error {
	moveHeads(dst, in[0], op.batch, op.seq, op.heads, op.dh, op.split)
	return nil
}

func (op *headsOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "actq.layerops.%v", op) }
func (op *headsOp) Hashcode() uint32      { return opkit.Hash(op) }

func (op *headsOp) DiffWRT(int) []bool { return []bool{true} }

// grads: the output's gradient moved back.
func (op *headsOp) grads() []opkit.Grad {
	inverse := &headsOp{batch: op.batch, seq: op.seq, heads: op.heads, dh: op.dh, split: !op.split}
	return []opkit.Grad{{Op: inverse, Args: []int{opkit.DY}}}
}

func (op *headsOp) SymDiff(inputs gorgonia.Nodes, output, grad *gorgonia.Node) (gorgonia.Nodes, error) {
	return opkit.SymDiff(op, op.grads(), inputs, grad)
}

func (op *headsOp) DoDiff(ctx gorgonia.ExecutionContext, inputs gorgonia.Nodes, output *gorgonia.Node) error {
	return opkit.DoDiff(op, op.grads(), inputs, output)
}
