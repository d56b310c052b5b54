package layerops

import (
	"fmt"
	"hash"

	"github.com/actq/actq/internal/opkit"
	"github.com/chewxy/hm"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// BMM returns op(a)·op(b) for every leading index of a and b, op being the
// transpose where transA or transB is set: the batched matrix product of
// attention, (batch, heads, m, k)·(batch, heads, k, n). a and b are 4-D
// and equal in their two leading dimensions.
//
// It computes what gorgonia.BatchedMatMul does, but with one GEMM call per
// matrix on the flat data (batchedGemm), where Gorgonia builds a sliced
// view of both operands and of the result for every matrix.
func BMM(a, b *gorgonia.Node, transA, transB bool) (*gorgonia.Node, error) {
	return gorgonia.ApplyOp(&bmmOp{transA: transA, transB: transB}, a, b)
}

type bmmOp struct {
	opkit.Allocates
	transA, transB bool
}

func (op *bmmOp) String() string { return fmt.Sprintf("BMM{Aᵀ=%v,Bᵀ=%v}", op.transA, op.transB) }

func (op *bmmOp) Arity() int { return 2 }

func (op *bmmOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	t := gorgonia.TensorType{Dims: 4, Of: a}
	return hm.NewFnType(t, t, t)
}

// dims returns the batch count and m, k, n of op(a) (m×k) · op(b) (k×n).
func (op *bmmOp) dims(sa, sb tensor.Shape) (batch, m, k, n int, err error) {
	if sa.Dims() < 3 || sa.Dims() != sb.Dims() {
		return 0, 0, 0, 0, fmt.Errorf("%v: shapes %v and %v: %w", op, sa, sb, opkit.ErrShape)
	}
	r := sa.Dims()
	batch = 1
	for i := range r - 2 {
		if sa[i] != sb[i] {
			return 0, 0, 0, 0, fmt.Errorf("%v: shapes %v and %v: %w", op, sa, sb, opkit.ErrShape)
		}
		batch *= sa[i]
	}
	m, k = sa[r-2], sa[r-1]
	if op.transA {
		m, k = k, m
	}
	kb, n := sb[r-2], sb[r-1]
	if op.transB {
		kb, n = n, kb
	}
	if k != kb {
		return 0, 0, 0, 0, fmt.Errorf("%v: inner sizes %d and %d of %v and %v: %w", op, k, kb, sa, sb, opkit.ErrShape)
	}
	return batch, m, k, n, nil
}

func (op *bmmOp) InferShape(ds ...gorgonia.DimSizer) (tensor.Shape, error) {
	ss, err := opkit.Shapes(op, 2, ds)
	if err != nil {
		return nil, err
	}
	_, m, _, n, err := op.dims(ss[0], ss[1])
	if err != nil {
		return nil, err
	}
	out := ss[0].Clone()
	out[len(out)-2], out[len(out)-1] = m, n
	return out, nil
}

func (op *bmmOp) Do(inputs ...gorgonia.Value) (gorgonia.Value, error) {
	return opkit.DoDense(op, inputs)
}

func (op *bmmOp) Kernel32(dst []float32, in [][]float32, vals []gorgonia.Value) error {
	return bmmKernel(op, dst, in, vals)
}

func (op *bmmOp) Kernel64(dst []float64, in [][]float64, vals []gorgonia.Value) error {
	return bmmKernel(op, dst, in, vals)
}

func bmmKernel[T float32 | float64](op *bmmOp, dst []T, in [][]T, vals []gorgonia.Value) error {
	batch, m, k, n, err := op.dims(vals[0].Shape(), vals[1].Shape())
	if err != nil {
		return err
	}
	return batchedGemm(op.transA, op.transB, batch, m, k, n, in[0], in[1], dst)
}

func (op *bmmOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "actq.layerops.%v", op) }
func (op *bmmOp) Hashcode() uint32      { return opkit.Hash(op) }

func (op *bmmOp) DiffWRT(int) []bool { return []bool{true, true} }

// grads are dA and dB for C = op(A)·op(B), each a product of two of A, B
// and dC.
func (op *bmmOp) grads() []opkit.Grad {
	const a, b, dc = 0, 1, opkit.DY
	g := func(transA, transB bool, x, y int) opkit.Grad {
		return opkit.Grad{Op: &bmmOp{transA: transA, transB: transB}, Args: []int{x, y}}
	}
	switch {
	case !op.transA && !op.transB: // C = A·B: dA = dC·Bᵀ, dB = Aᵀ·dC
		return []opkit.Grad{g(false, true, dc, b), g(true, false, a, dc)}
	case !op.transA && op.transB: // C = A·Bᵀ: dA = dC·B, dB = dCᵀ·A
		return []opkit.Grad{g(false, false, dc, b), g(true, false, dc, a)}
	case op.transA && !op.transB: // C = Aᵀ·B: dA = B·dCᵀ, dB = A·dC
		return []opkit.Grad{g(false, true, b, dc), g(false, false, a, dc)}
	default: // C = Aᵀ·Bᵀ: dA = Bᵀ·dCᵀ, dB = dCᵀ·Aᵀ
		return []opkit.Grad{g(true, true, b, dc), g(true, true, dc, a)}
	}
}

func (op *bmmOp) SymDiff(inputs gorgonia.Nodes, output, grad *gorgonia.Node) (gorgonia.Nodes, error) {
	return opkit.SymDiff(op, op.grads(), inputs, grad)
}

func (op *bmmOp) DoDiff(ctx gorgonia.ExecutionContext, inputs gorgonia.Nodes, output *gorgonia.Node) error {
	return opkit.DoDiff(op, op.grads(), inputs, output)
}
