package layerops

import (
	"fmt"
	"hash"

	"github.com/actq/actq/internal/opkit"
	"github.com/actq/actq/internal/parallel"
	"github.com/actq/actq/ops/kernel"
	"github.com/chewxy/hm"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// CausalSoftmax returns the softmax of attention scores s (…, tq, tk) over
// the keys each query sees, keys j ≤ offset+i for query i, with exactly 0
// at the others: ops.Softmax(CausalMask(s, offset)) in one op that reads
// and exponentiates only the visible scores, about half of them. Each
// visible slice is computed by ops' softmax kernel (kernel.Softmax), so the
// results, accuracy and special cases are ops.Softmax's on that slice; the
// masked entries are 0 and get exactly 0 gradient, whatever they hold.
//
// The backward pass is fused and needs only the output y: over the
// visible keys dx = y ⊙ (dy − Σ y ⊙ dy), 0 elsewhere.
//
// s must be a float node of rank ≥ 2 and offset ≥ 0; otherwise the error
// wraps opkit.ErrShape (opkit.ErrNilNode, opkit.ErrDtype for a nil or
// non-float s).
func CausalSoftmax(s *gorgonia.Node, offset int) (*gorgonia.Node, error) {
	if err := opkit.CheckFloatNode("layerops.CausalSoftmax", "s", s); err != nil {
		return nil, err
	}
	if s.Shape().Dims() < 2 || offset < 0 {
		return nil, fmt.Errorf("layerops.CausalSoftmax: scores of shape %v with offset %d: %w", s.Shape(), offset, opkit.ErrShape)
	}
	return gorgonia.ApplyOp(&causalSoftmaxOp{offset: offset}, s)
}

// causalSoftmaxOp is CausalSoftmax's op, s → y, and with grad its
// gradient's, (y, dy) → dx. Either may write over its last input (s; dy)
// when nothing reads it afterwards.
type causalSoftmaxOp struct {
	opkit.Reuse
	offset int
	grad   bool
}

func (op *causalSoftmaxOp) String() string {
	if op.grad {
		return fmt.Sprintf("CausalSoftmaxGrad{offset=%d}", op.offset)
	}
	return fmt.Sprintf("CausalSoftmax{offset=%d}", op.offset)
}

func (op *causalSoftmaxOp) Arity() int {
	if op.grad {
		return 2
	}
	return 1
}

func (op *causalSoftmaxOp) Type() hm.Type { return opkit.SameType(op.Arity()) }

func (op *causalSoftmaxOp) InferShape(ds ...gorgonia.DimSizer) (tensor.Shape, error) {
	s, err := opkit.SameShape(op, op.Arity(), ds)
	if err == nil && s.Dims() < 2 {
		err = fmt.Errorf("%v: input shape %v, want rank ≥ 2: %w", op, s, opkit.ErrShape)
	}
	return s, err
}

func (op *causalSoftmaxOp) Do(inputs ...gorgonia.Value) (gorgonia.Value, error) {
	return opkit.DoDense(op, inputs)
}

// UsePreallocDo writes the result into prealloc, which the tape machine
// makes the last input itself (s; dy) when nothing reads it afterwards.
func (op *causalSoftmaxOp) UsePreallocDo(prealloc gorgonia.Value, inputs ...gorgonia.Value) (gorgonia.Value, error) {
	return opkit.DoDenseInto(op, prealloc, inputs)
}

func (op *causalSoftmaxOp) ReturnsPtr() bool     { return true }
func (op *causalSoftmaxOp) CallsExtern() bool    { return false }
func (op *causalSoftmaxOp) OverwritesInput() int { return op.Arity() - 1 }

func (op *causalSoftmaxOp) Kernel32(dst []float32, in [][]float32, vals []gorgonia.Value) error {
	return causalSoftmaxKernel(op, dst, in, vals[0].Shape())
}

func (op *causalSoftmaxOp) Kernel64(dst []float64, in [][]float64, vals []gorgonia.Value) error {
	return causalSoftmaxKernel(op, dst, in, vals[0].Shape())
}

// softmaxGrain is the fewest scores worth handing to another goroutine.
const softmaxGrain = 1 << 13

// causalSoftmaxKernel runs the softmax (or its gradient) over each row's
// visible keys and zeroes the rest. dst may be the last input.
func causalSoftmaxKernel[T float32 | float64](op *causalSoftmaxOp, dst []T, in [][]T, shape tensor.Shape) error {
	r := shape.Dims()
	tq, tk := shape[r-2], shape[r-1]
	if tk == 0 {
		return nil
	}
	return parallel.For(len(dst)/tk, max(softmaxGrain/tk, 1), func(lo, hi int) error {
		for row := lo; row < hi; row++ {
			off, vis := row*tk, visible(row%tq, op.offset, tk)
			out, a := dst[off:off+vis], kernel.Along(vis, vis, 1)
			var err error
			if op.grad {
				err = kernel.SoftmaxGrad(out, in[0][off:off+vis], in[1][off:off+vis], a)
			} else {
				err = kernel.Softmax(out, in[0][off:off+vis], a)
			}
			if err != nil {
				return err
			}
			clear(dst[off+vis : off+tk])
		}
		return nil
	})
}

func (op *causalSoftmaxOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "actq.layerops.%v", op) }
func (op *causalSoftmaxOp) Hashcode() uint32      { return opkit.Hash(op) }

func (op *causalSoftmaxOp) DiffWRT(n int) []bool {
	if op.grad { // (y, dy): the gradient's own gradient is not defined here
		return []bool{false, false}
	}
	return []bool{true}
}

// SymDiff returns dx as a causalSoftmaxOp gradient node on (y, dy): the
// backward pass needs the output only.
func (op *causalSoftmaxOp) SymDiff(inputs gorgonia.Nodes, output, grad *gorgonia.Node) (gorgonia.Nodes, error) {
	if op.grad || len(inputs) != 1 {
		return nil, fmt.Errorf("%v.SymDiff: the gradient op has no gradient: %w", op, opkit.ErrValue)
	}
	dx, err := gorgonia.ApplyOp(&causalSoftmaxOp{offset: op.offset, grad: true}, output, grad)
	if err != nil {
		return nil, fmt.Errorf("%v.SymDiff: %w", op, err)
	}
	return gorgonia.Nodes{dx}, nil
}

// DoDiff adds dx, computed from the output y and its gradient dy, into s's
// gradient.
func (op *causalSoftmaxOp) DoDiff(ctx gorgonia.ExecutionContext, inputs gorgonia.Nodes, output *gorgonia.Node) error {
	if op.grad || len(inputs) != 1 {
		return fmt.Errorf("%v.DoDiff: the gradient op has no gradient: %w", op, opkit.ErrValue)
	}
	return opkit.DoDiffInto(&causalSoftmaxOp{offset: op.offset, grad: true}, inputs[0], output.Value(), output)
}
