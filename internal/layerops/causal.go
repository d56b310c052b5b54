package layerops

import (
	"fmt"
	"hash"
	"math"

	"github.com/actq/actq/internal/opkit"
	"github.com/actq/actq/internal/parallel"
	"github.com/actq/actq/ops/kernel"
	"github.com/chewxy/hm"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// CausalMask returns attention scores s (…, tq, tk) with the entries where
// key j comes after query i, j > offset+i, set to −Inf: query i sits at
// position offset+i of the keys' sequence. The other entries are s's. It
// replaces adding a constant mask of s's full size: it reads and writes
// only the masked entries when it can write over s (when nothing else
// reads s afterwards, the tape machine lets it), and the graph holds no
// constant.
//
// The gradient is the output's gradient with the masked entries set to 0
// (they do not depend on s), so a masked entry gets exactly 0 gradient
// whatever the gradient behind it.
//
// s must be a float node of rank ≥ 2 and offset ≥ 0; otherwise the error
// wraps opkit.ErrShape (opkit.ErrNilNode, opkit.ErrDtype for a nil or
// non-float s).
func CausalMask(s *gorgonia.Node, offset int) (*gorgonia.Node, error) {
	return applyCausalOp("layerops.CausalMask", s, offset, causalMask)
}

// CausalSoftmax returns the softmax of attention scores s (…, tq, tk) over
// the keys each query sees, keys j ≤ offset+i for query i, with exactly 0
// at the others: ops.Softmax(CausalMask(s, offset)) in one op that reads
// and exponentiates only the visible scores, about half of them. Each
// visible slice is computed by ops' softmax kernel (kernel.Softmax), so the
// results, accuracy and special cases are ops.Softmax's on that slice; the
// masked entries are 0 and get exactly 0 gradient, whatever they hold.
//
// The backward pass is fused and needs only the output y: over the
// visible keys dx = y ⊙ (dy − Σ y ⊙ dy), 0 elsewhere. Both passes write
// over their input (s; dy) when nothing reads it afterwards.
//
// The errors are CausalMask's.
func CausalSoftmax(s *gorgonia.Node, offset int) (*gorgonia.Node, error) {
	return applyCausalOp("layerops.CausalSoftmax", s, offset, causalSoftmax)
}

func applyCausalOp(fn string, s *gorgonia.Node, offset int, kind causalKind) (*gorgonia.Node, error) {
	if err := opkit.CheckFloatNode(fn, "s", s); err != nil {
		return nil, err
	}
	if s.Shape().Dims() < 2 || offset < 0 {
		return nil, fmt.Errorf("%s: scores of shape %v with offset %d: %w", fn, s.Shape(), offset, opkit.ErrShape)
	}
	return gorgonia.ApplyOp(&causalOp{offset: offset, kind: kind}, s)
}

// causalKind is what a causalOp computes.
type causalKind int

const (
	causalMask        causalKind = iota // s → s, −Inf where masked
	causalMaskGrad                      // dy → dy, 0 where masked
	causalSoftmax                       // s → softmax over the visible keys, 0 where masked
	causalSoftmaxGrad                   // (y, dy) → dx over the visible keys, 0 where masked
)

// causalOp is an op on attention's (…, tq, tk) matrices that works on the
// entries each query sees (visible) and fills the others. Each may write
// over its last input when nothing reads it afterwards (UsePreallocDo).
type causalOp struct {
	opkit.Reuse
	offset int
	kind   causalKind
}

func (op *causalOp) String() string {
	name := [...]string{"CausalMask", "CausalMaskGrad", "CausalSoftmax", "CausalSoftmaxGrad"}[op.kind]
	return fmt.Sprintf("%s{offset=%d}", name, op.offset)
}

func (op *causalOp) Arity() int {
	if op.kind == causalSoftmaxGrad {
		return 2
	}
	return 1
}

func (op *causalOp) Type() hm.Type { return opkit.SameType(op.Arity()) }

func (op *causalOp) InferShape(ds ...gorgonia.DimSizer) (tensor.Shape, error) {
	s, err := opkit.SameShape(op, op.Arity(), ds)
	if err == nil && s.Dims() < 2 {
		err = fmt.Errorf("%v: input shape %v, want rank ≥ 2: %w", op, s, opkit.ErrShape)
	}
	return s, err
}

func (op *causalOp) Do(inputs ...gorgonia.Value) (gorgonia.Value, error) {
	return opkit.DoDense(op, inputs)
}

// UsePreallocDo writes the result into prealloc, which the tape machine
// makes the last input itself (s; dy) when nothing reads it afterwards:
// the mask then writes only the masked entries.
func (op *causalOp) UsePreallocDo(prealloc gorgonia.Value, inputs ...gorgonia.Value) (gorgonia.Value, error) {
	return opkit.DoDenseInto(op, prealloc, inputs)
}

func (op *causalOp) ReturnsPtr() bool     { return true }
func (op *causalOp) CallsExtern() bool    { return false }
func (op *causalOp) OverwritesInput() int { return op.Arity() - 1 }

func (op *causalOp) Kernel32(dst []float32, in [][]float32, vals []gorgonia.Value) error {
	return causalKernel(op, dst, in, vals[0].Shape())
}

func (op *causalOp) Kernel64(dst []float64, in [][]float64, vals []gorgonia.Value) error {
	return causalKernel(op, dst, in, vals[0].Shape())
}

// softmaxGrain is the fewest scores worth handing to another goroutine.
const softmaxGrain = 1 << 13

// causalKernel runs op on each row of every (tq, tk) matrix: on its
// visible keys, then the fill. dst may be the last input.
func causalKernel[T float32 | float64](op *causalOp, dst []T, in [][]T, shape tensor.Shape) error {
	r := shape.Dims()
	tq, tk := shape[r-2], shape[r-1]
	if tk == 0 {
		return nil
	}
	var fill T
	if op.kind == causalMask {
		fill = T(math.Inf(-1))
	}
	c := causal{offset: op.offset}
	src := in[len(in)-1]
	same := len(dst) > 0 && &dst[0] == &src[0]
	grain := len(dst) // the mask is a copy at most: one goroutine
	if op.kind == causalSoftmax || op.kind == causalSoftmaxGrad {
		grain = softmaxGrain
	}
	return parallel.For(len(dst)/tk, max(grain/tk, 1), func(lo, hi int) error {
		for row := lo; row < hi; row++ {
			off, vis := row*tk, c.visible(row%tq, tk)
			out, a := dst[off:off+vis], kernel.Along(vis, vis, 1)
			var err error
			switch op.kind {
			case causalSoftmax:
				err = kernel.Softmax(out, src[off:off+vis], a)
			case causalSoftmaxGrad:
				err = kernel.SoftmaxGrad(out, in[0][off:off+vis], src[off:off+vis], a)
			default:
				if !same {
					copy(out, src[off:off+vis])
				}
			}
			if err != nil {
				return err
			}
			masked := dst[off+vis : off+tk]
			for j := range masked {
				masked[j] = fill
			}
		}
		return nil
	})
}

func (op *causalOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "actq.layerops.%v", op) }
func (op *causalOp) Hashcode() uint32      { return opkit.Hash(op) }

// DiffWRT: the mask and the softmax have gradients (another causalOp);
// the softmax's gradient op has none (it is not differentiated again).
func (op *causalOp) DiffWRT(n int) []bool {
	w := make([]bool, n)
	for i := range w {
		w[i] = op.kind != causalSoftmaxGrad
	}
	return w
}

// grad returns the op of the gradient, and whether it reads the output
// (the softmax's does: dx from y and dy) rather than the input.
func (op *causalOp) grad() (gradOp *causalOp, fromOutput bool, err error) {
	switch op.kind {
	case causalMask, causalMaskGrad:
		return &causalOp{offset: op.offset, kind: causalMaskGrad}, false, nil
	case causalSoftmax:
		return &causalOp{offset: op.offset, kind: causalSoftmaxGrad}, true, nil
	}
	return nil, false, fmt.Errorf("%v: the gradient op has no gradient: %w", op, opkit.ErrValue)
}

func (op *causalOp) SymDiff(inputs gorgonia.Nodes, output, grad *gorgonia.Node) (gorgonia.Nodes, error) {
	g, fromOutput, err := op.grad()
	if err != nil {
		return nil, err
	}
	if !fromOutput {
		return opkit.SymDiff(op, []opkit.Grad{{Op: g, Args: []int{opkit.DY}}}, inputs, grad)
	}
	if len(inputs) != 1 {
		return nil, fmt.Errorf("%v.SymDiff: got %d inputs, want 1: %w", op, len(inputs), opkit.ErrValue)
	}
	dx, err := gorgonia.ApplyOp(g, output, grad)
	if err != nil {
		return nil, fmt.Errorf("%v.SymDiff: %w", op, err)
	}
	return gorgonia.Nodes{dx}, nil
}

func (op *causalOp) DoDiff(ctx gorgonia.ExecutionContext, inputs gorgonia.Nodes, output *gorgonia.Node) error {
	g, fromOutput, err := op.grad()
	if err != nil {
		return err
	}
	if !fromOutput {
		return opkit.DoDiff(op, []opkit.Grad{{Op: g, Args: []int{opkit.DY}}}, inputs, output)
	}
	if len(inputs) != 1 {
		return fmt.Errorf("%v.DoDiff: got %d inputs, want 1: %w", op, len(inputs), opkit.ErrValue)
	}
	return opkit.DoDiffInto(g, inputs[0], output.Value(), output)
}
