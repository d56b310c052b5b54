package graph

import (
	"fmt"
	"hash"

	"github.com/actq/actq/ops"
	"github.com/chewxy/hm"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// headsOp moves attention heads between the row layout of a projection,
// (batch·seq, heads·dh), and the per-head layout of the score matmuls,
// (batch, heads, seq, dh): split goes from rows to heads, merge back. It
// does in one copy loop what Reshape + Transpose(0, 2, 1, 3) (+ Reshape)
// does through Gorgonia's generic strided transpose, and its gradient is
// the other direction.
type headsOp struct {
	batch, seq, heads, dh int
	split                 bool
}

func (op headsOp) rows() tensor.Shape { return tensor.Shape{op.batch * op.seq, op.heads * op.dh} }
func (op headsOp) perHead() tensor.Shape {
	return tensor.Shape{op.batch, op.heads, op.seq, op.dh}
}

func (op headsOp) String() string {
	dir := "Merge"
	if op.split {
		dir = "Split"
	}
	return fmt.Sprintf("%sHeads(%v↔%v)", dir, op.rows(), op.perHead())
}

func (op headsOp) Arity() int { return 1 }

func (op headsOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	r, h := gorgonia.TensorType{Dims: 2, Of: a}, gorgonia.TensorType{Dims: 4, Of: a}
	if op.split {
		return hm.NewFnType(r, h)
	}
	return hm.NewFnType(h, r)
}

func (op headsOp) InferShape(ds ...gorgonia.DimSizer) (tensor.Shape, error) {
	in, out := op.perHead(), op.rows()
	if op.split {
		in, out = out, in
	}
	if len(ds) != 1 {
		return nil, fmt.Errorf("%v: got %d input shapes, want 1: %w", op, len(ds), ops.ErrShape)
	}
	if s, ok := ds[0].(tensor.Shape); !ok || !s.Eq(in) {
		return nil, fmt.Errorf("%v: input shape %v, want %v: %w", op, ds[0], in, ops.ErrShape)
	}
	return out, nil
}

func (op headsOp) Do(inputs ...gorgonia.Value) (gorgonia.Value, error) {
	if len(inputs) != 1 {
		return nil, fmt.Errorf("%v: got %d inputs, want 1: %w", op, len(inputs), ops.ErrValue)
	}
	x, ok := inputs[0].(*tensor.Dense)
	if ok && x.RequiresIterator() {
		x, ok = x.Materialize().(*tensor.Dense)
	}
	if !ok || x.Shape().TotalSize() != op.rows().TotalSize() {
		return nil, fmt.Errorf("%v: input %T: %w", op, inputs[0], ops.ErrValue)
	}
	shape := op.rows()
	if op.split {
		shape = op.perHead()
	}
	out := tensor.New(tensor.Of(x.Dtype()), tensor.WithShape(shape...))
	switch d := out.Data().(type) {
	case []float32:
		moveHeads(op, d, x.Float32s())
	case []float64:
		moveHeads(op, d, x.Float64s())
	default:
		return nil, fmt.Errorf("%v: dtype %v: %w", op, x.Dtype(), ops.ErrDtype)
	}
	return out, nil
}

// moveHeads copies row (b·seq+t)'s columns [h·dh, (h+1)·dh) to or from
// block (b, h, t).
func moveHeads[T float32 | float64](op headsOp, dst, src []T) {
	d := op.heads * op.dh
	for b := range op.batch {
		for t := range op.seq {
			row := (b*op.seq + t) * d
			for h := range op.heads {
				blk := ((b*op.heads+h)*op.seq + t) * op.dh
				if op.split {
					copy(dst[blk:blk+op.dh], src[row+h*op.dh:row+(h+1)*op.dh])
				} else {
					copy(dst[row+h*op.dh:row+(h+1)*op.dh], src[blk:blk+op.dh])
				}
			}
		}
	}
}

func (op headsOp) ReturnsPtr() bool      { return false }
func (op headsOp) CallsExtern() bool     { return false }
func (op headsOp) OverwritesInput() int  { return -1 }
func (op headsOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "actq.graph.%v", op) }
func (op headsOp) Hashcode() uint32      { return fnvHash(op) }

func (op headsOp) DiffWRT(int) []bool { return []bool{true} }

func (op headsOp) inverse() headsOp { op.split = !op.split; return op }

func (op headsOp) SymDiff(inputs gorgonia.Nodes, output, grad *gorgonia.Node) (gorgonia.Nodes, error) {
	dx, err := gorgonia.ApplyOp(op.inverse(), grad)
	if err != nil {
		return nil, err
	}
	return gorgonia.Nodes{dx}, nil
}

// DoDiff adds the output's gradient, moved back, into the input's (Lisp
// machine).
func (op headsOp) DoDiff(ctx gorgonia.ExecutionContext, inputs gorgonia.Nodes, output *gorgonia.Node) error {
	dy, err := output.Grad()
	if err != nil {
		return err
	}
	dx, err := op.inverse().Do(dy)
	if err != nil {
		return err
	}
	return addValue(op, inputs[0], dx)
}
