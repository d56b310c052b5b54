package layerops

import (
	"fmt"
	"hash"
	"math"

	"github.com/actq/actq/internal/opkit"
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
// wraps opkit.ErrShape.
func CausalMask(s *gorgonia.Node, offset int) (*gorgonia.Node, error) {
	if err := opkit.CheckFloatNode("layerops.CausalMask", "s", s); err != nil {
		return nil, err
	}
	if s.Shape().Dims() < 2 || offset < 0 {
		return nil, fmt.Errorf("layerops.CausalMask: scores of shape %v with offset %d: %w", s.Shape(), offset, opkit.ErrShape)
	}
	return gorgonia.ApplyOp(&maskOp{offset: offset}, s)
}

// maskOp is CausalMask's op (fill −Inf) and its gradient's (grad: fill 0).
type maskOp struct {
	opkit.Reuse
	offset int
	grad   bool
}

func (op *maskOp) String() string {
	if op.grad {
		return fmt.Sprintf("CausalMaskGrad{offset=%d}", op.offset)
	}
	return fmt.Sprintf("CausalMask{offset=%d}", op.offset)
}

func (op *maskOp) Arity() int    { return 1 }
func (op *maskOp) Type() hm.Type { return opkit.SameType(1) }

func (op *maskOp) InferShape(ds ...gorgonia.DimSizer) (tensor.Shape, error) {
	s, err := opkit.SameShape(op, 1, ds)
	if err == nil && s.Dims() < 2 {
		err = fmt.Errorf("%v: input shape %v, want rank ≥ 2: %w", op, s, opkit.ErrShape)
	}
	return s, err
}

func (op *maskOp) Do(inputs ...gorgonia.Value) (gorgonia.Value, error) {
	return opkit.DoDense(op, inputs)
}

// UsePreallocDo writes the result into prealloc, which the tape machine
// makes the input itself when nothing reads it afterwards: then only the
// masked entries are written.
func (op *maskOp) UsePreallocDo(prealloc gorgonia.Value, inputs ...gorgonia.Value) (gorgonia.Value, error) {
	return opkit.DoDenseInto(op, prealloc, inputs)
}

// ReturnsPtr and OverwritesInput let the tape machine write the result
// over the input when nothing reads it afterwards (see UsePreallocDo).
func (op *maskOp) ReturnsPtr() bool     { return true }
func (op *maskOp) CallsExtern() bool    { return false }
func (op *maskOp) OverwritesInput() int { return 0 }

func (op *maskOp) Kernel32(dst []float32, in [][]float32, vals []gorgonia.Value) error {
	return maskKernel(op, dst, in[0], vals[0].Shape())
}

func (op *maskOp) Kernel64(dst []float64, in [][]float64, vals []gorgonia.Value) error {
	return maskKernel(op, dst, in[0], vals[0].Shape())
}

// visible returns the number of keys query i sees among tk: keys 0 …
// offset+i.
func visible(i, offset, tk int) int { return min(offset+i+1, tk) }

// maskKernel writes src into dst with the masked entries of every (tq, tk)
// matrix set to −Inf (0 for the gradient). dst may be src.
func maskKernel[T float32 | float64](op *maskOp, dst, src []T, shape tensor.Shape) error {
	r := shape.Dims()
	tq, tk := shape[r-2], shape[r-1]
	fill := T(math.Inf(-1))
	if op.grad {
		fill = 0
	}
	same := len(dst) > 0 && &dst[0] == &src[0]
	for lo := 0; lo < len(dst); lo += tq * tk {
		for i := range tq {
			row := lo + i*tk
			vis := visible(i, op.offset, tk)
			if !same {
				copy(dst[row:row+vis], src[row:row+vis])
			}
			masked := dst[row+vis : row+tk]
			for j := range masked {
				masked[j] = fill
			}
		}
	}
	return nil
}

func (op *maskOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "actq.layerops.%v", op) }
func (op *maskOp) Hashcode() uint32      { return opkit.Hash(op) }

func (op *maskOp) DiffWRT(int) []bool { return []bool{true} }

func (op *maskOp) grads() []opkit.Grad {
	return []opkit.Grad{{Op: &maskOp{offset: op.offset, grad: true}, Args: []int{opkit.DY}}}
}

func (op *maskOp) SymDiff(inputs gorgonia.Nodes, output, grad *gorgonia.Node) (gorgonia.Nodes, error) {
	return opkit.SymDiff(op, op.grads(), inputs, grad)
}

func (op *maskOp) DoDiff(ctx gorgonia.ExecutionContext, inputs gorgonia.Nodes, output *gorgonia.Node) error {
	return opkit.DoDiff(op, op.grads(), inputs, output)
}
