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
	return ScaledBMM(a, b, transA, transB, 1)
}

// ScaledBMM is BMM times the scalar alpha, applied inside the GEMM (no
// pass over the result of its own): attention's Q·Kᵀ/√Dh.
func ScaledBMM(a, b *gorgonia.Node, transA, transB bool, alpha float64) (*gorgonia.Node, error) {
	return gorgonia.ApplyOp(&matMulOp{rank: 4, transA: transA, transB: transB, alpha: alpha}, a, b)
}

// CausalScores returns alpha·q·kᵀ for every leading index of q (…, rows,
// d) and k (…, keys, d), both 4-D, where row r of each matrix belongs to
// the query at position offset + r mod queries (queries 0: rows), which
// sees keys 0 … offset + r mod queries. Only the entries a query sees are
// sure to be computed: whole tiles above the diagonal are skipped (about
// half the work for a long sequence) and the others are undefined, so the
// result must go to CausalSoftmax or CausalMask, which read only the
// visible entries and give them, backward, exactly zero gradient (which
// the backward pass relies on: it multiplies the whole gradient).
//
// queries groups the rows of grouped-query attention, whose matrices stack
// the queries of several heads; it must divide the rows. offset ≥ 0 places
// the queries after a cache of earlier keys. The shape errors are BMM's,
// and a bad offset or queries wraps opkit.ErrShape.
func CausalScores(q, k *gorgonia.Node, alpha float64, offset, queries int) (*gorgonia.Node, error) {
	return applyCausal(q, k, false, true, alpha, offset, queries)
}

// CausalValues returns p·v for every leading index of the probabilities p
// (…, rows, keys) from CausalSoftmax and the values v (…, keys, n), both
// 4-D: BMM(p, v), whose backward pass computes the gradient of p only at
// the entries each query sees (as CausalScores computes scores), which is
// all CausalSoftmax's backward pass reads. See CausalScores for offset and
// queries.
func CausalValues(p, v *gorgonia.Node, offset, queries int) (*gorgonia.Node, error) {
	return applyCausal(p, v, false, false, 1, offset, queries)
}

func applyCausal(a, b *gorgonia.Node, transA, transB bool, alpha float64, offset, queries int) (*gorgonia.Node, error) {
	rows := 0
	if s := a.Shape(); s.Dims() == 4 {
		rows = s[2]
	}
	if offset < 0 || queries < 0 || (queries > 0 && rows%queries != 0) {
		return nil, fmt.Errorf("layerops.Causal: offset %d and %d queries for matrices of %d rows: %w", offset, queries, rows, opkit.ErrShape)
	}
	return gorgonia.ApplyOp(&matMulOp{rank: 4, transA: transA, transB: transB, alpha: alpha,
		causal: true, c: causal{offset: offset, queries: queries}}, a, b)
}

// MatMul returns x·w + bias for x (n, k) and w (k, m): (n, m), with bias
// (m) added to every row, or no bias when bias is nil. It is one GEMM
// (actq's, package blas, whatever BLAS Gorgonia is set to use), the bias
// added as the GEMM's initial C; its backward pass is dx = dy·wᵀ and
// dw = xᵀ·dy, two more GEMMs, and dbias = Σ_rows dy.
//
// The nodes must be of one float dtype; shapes that do not fit give an
// error wrapping opkit.ErrShape.
func MatMul(x, w, bias *gorgonia.Node) (*gorgonia.Node, error) {
	if bias == nil {
		return gorgonia.ApplyOp(&matMulOp{rank: 2, alpha: 1}, x, w)
	}
	return gorgonia.ApplyOp(&matMulOp{rank: 2, alpha: 1, bias: true}, x, w, bias)
}

// matMulOp is C = alpha·op(A)·op(B) (+ bias) for A and B of rank 2, 3 or
// 4, one product per leading index; the bias, a third input of C's last
// size, is added to every row of C.
type matMulOp struct {
	opkit.Allocates
	opkit.Reuse
	rank           int
	transA, transB bool
	alpha          float64
	bias           bool
	// causal: a product of attention's causal structure c. The scores
	// (Aᵀ = false, Bᵀ = true) compute only what the queries see (see
	// causalScores); the other forms are plain products whose gradient
	// may be scores (CausalValues').
	causal bool
	c      causal
}

func (op *matMulOp) String() string {
	name := "BMM"
	if op.rank == 2 {
		name = "MatMul"
	}
	s := fmt.Sprintf("%s{Aᵀ=%v,Bᵀ=%v", name, op.transA, op.transB)
	if op.alpha != 1 {
		s += fmt.Sprintf(",α=%g", op.alpha)
	}
	if op.bias {
		s += ",+bias"
	}
	if op.causal {
		s += fmt.Sprintf(",causal(offset=%d,queries=%d)", op.c.offset, op.c.queries)
	}
	return s + "}"
}

func (op *matMulOp) Arity() int {
	if op.bias {
		return 3
	}
	return 2
}

func (op *matMulOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	t := gorgonia.TensorType{Dims: op.rank, Of: a}
	if op.bias {
		return hm.NewFnType(t, t, gorgonia.TensorType{Dims: 1, Of: a}, t)
	}
	return hm.NewFnType(t, t, t)
}

// dims returns the batch count and m, k, n of op(a) (m×k) · op(b) (k×n),
// after checking the shapes, bias's (bias may be nil) included.
func (op *matMulOp) dims(sa, sb, bias tensor.Shape) (batch, m, k, n int, err error) {
	r := op.rank
	if sa.Dims() != r || sb.Dims() != r {
		return 0, 0, 0, 0, fmt.Errorf("%v: shapes %v and %v, want rank %d: %w", op, sa, sb, r, opkit.ErrShape)
	}
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
	if op.bias && (bias.Dims() != 1 || bias[0] != n) {
		return 0, 0, 0, 0, fmt.Errorf("%v: bias of shape %v for %d columns: %w", op, bias, n, opkit.ErrShape)
	}
	return batch, m, k, n, nil
}

func (op *matMulOp) InferShape(ds ...gorgonia.DimSizer) (tensor.Shape, error) {
	ss, err := opkit.Shapes(op, op.Arity(), ds)
	if err != nil {
		return nil, err
	}
	var bias tensor.Shape
	if op.bias {
		bias = ss[2]
	}
	_, m, _, n, err := op.dims(ss[0], ss[1], bias)
	if err != nil {
		return nil, err
	}
	out := ss[0].Clone()
	out[len(out)-2], out[len(out)-1] = m, n
	return out, nil
}

func (op *matMulOp) Do(inputs ...gorgonia.Value) (gorgonia.Value, error) {
	return opkit.DoDense(op, inputs)
}

func (op *matMulOp) Kernel32(dst []float32, in [][]float32, vals []gorgonia.Value) error {
	return matMulKernel(op, dst, in, vals)
}

func (op *matMulOp) Kernel64(dst []float64, in [][]float64, vals []gorgonia.Value) error {
	return matMulKernel(op, dst, in, vals)
}

func matMulKernel[T float32 | float64](op *matMulOp, dst []T, in [][]T, vals []gorgonia.Value) error {
	var bias tensor.Shape
	if op.bias {
		bias = vals[2].Shape()
	}
	batch, m, k, n, err := op.dims(vals[0].Shape(), vals[1].Shape(), bias)
	if err != nil {
		return err
	}
	if op.causal && !op.transA && op.transB {
		if q := op.c.queries; q > 0 && m%q != 0 {
			return fmt.Errorf("%v: %d rows are not segments of %d queries: %w", op, m, q, opkit.ErrShape)
		}
		return causalBatchedScores(op.c, batch, m, k, n, T(op.alpha), in[0], in[1], dst)
	}
	if !op.bias {
		return batchedGemm(op.transA, op.transB, batch, m, k, n, T(op.alpha), in[0], in[1], dst, false)
	}
	for lo := 0; lo < len(dst); lo += n {
		copy(dst[lo:lo+n], in[2])
	}
	return batchedGemm(op.transA, op.transB, batch, m, k, n, T(op.alpha), in[0], in[1], dst, true)
}

func (op *matMulOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "actq.layerops.%v", op) }
func (op *matMulOp) Hashcode() uint32      { return opkit.Hash(op) }

func (op *matMulOp) DiffWRT(n int) []bool {
	w := make([]bool, n)
	for i := range w {
		w[i] = true
	}
	return w
}

// grads are dA and dB for C = alpha·op(A)·op(B), each alpha times a
// product of two of A, B and dC, and for the bias Σ_rows dC.
func (op *matMulOp) grads() []opkit.Grad {
	const a, b, dc = 0, 1, opkit.DY
	g := func(transA, transB bool, x, y int) opkit.Grad {
		// A gradient in the scores' form is needed only where the
		// queries see (the causal softmax reads no more).
		causal := op.causal && !transA && transB
		return opkit.Grad{Op: &matMulOp{rank: op.rank, transA: transA, transB: transB, alpha: op.alpha, causal: causal, c: op.c}, Args: []int{x, y}}
	}
	var gs []opkit.Grad
	switch {
	case !op.transA && !op.transB: // C = A·B: dA = dC·Bᵀ, dB = Aᵀ·dC
		gs = []opkit.Grad{g(false, true, dc, b), g(true, false, a, dc)}
	case !op.transA && op.transB: // C = A·Bᵀ: dA = dC·B, dB = dCᵀ·A
		gs = []opkit.Grad{g(false, false, dc, b), g(true, false, dc, a)}
	case op.transA && !op.transB: // C = Aᵀ·B: dA = B·dCᵀ, dB = A·dC
		gs = []opkit.Grad{g(false, true, b, dc), g(false, false, a, dc)}
	default: // C = Aᵀ·Bᵀ: dA = Bᵀ·dCᵀ, dB = dCᵀ·Aᵀ
		gs = []opkit.Grad{g(true, true, b, dc), g(true, true, dc, a)}
	}
	if op.bias {
		gs = append(gs, opkit.Grad{Op: &sumRowsOp{}, Args: []int{dc}})
	}
	return gs
}

func (op *matMulOp) SymDiff(inputs gorgonia.Nodes, output, grad *gorgonia.Node) (gorgonia.Nodes, error) {
	return opkit.SymDiff(op, op.grads(), inputs, grad)
}

func (op *matMulOp) DoDiff(ctx gorgonia.ExecutionContext, inputs gorgonia.Nodes, output *gorgonia.Node) error {
	return opkit.DoDiff(op, op.grads(), inputs, output)
}

// sumRowsOp is Σ_rows x for a matrix x (n, m): the column sums (m), the
// gradient of a bias added to every row (MatMul's, LayerNorm's shift). It
// is one GEMM, onesᵀ·x, so the sums are blocked as the products are.
type sumRowsOp struct {
	opkit.Allocates
	opkit.Reuse
	ones any // []T of n ones, kept for the next run
}

func (op *sumRowsOp) String() string { return "Σrows" }
func (op *sumRowsOp) Arity() int     { return 1 }

func (op *sumRowsOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(gorgonia.TensorType{Dims: 2, Of: a}, gorgonia.TensorType{Dims: 1, Of: a})
}

func (op *sumRowsOp) InferShape(ds ...gorgonia.DimSizer) (tensor.Shape, error) {
	ss, err := opkit.Shapes(op, 1, ds)
	if err != nil {
		return nil, err
	}
	if ss[0].Dims() != 2 {
		return nil, fmt.Errorf("%v: input shape %v, want a matrix: %w", op, ss[0], opkit.ErrShape)
	}
	return tensor.Shape{ss[0][1]}, nil
}

func (op *sumRowsOp) Do(inputs ...gorgonia.Value) (gorgonia.Value, error) {
	return opkit.DoDense(op, inputs)
}

func (op *sumRowsOp) Kernel32(dst []float32, in [][]float32, _ []gorgonia.Value) error {
	sumRows(op, dst, in[0])
	return nil
}

func (op *sumRowsOp) Kernel64(dst []float64, in [][]float64, _ []gorgonia.Value) error {
	sumRows(op, dst, in[0])
	return nil
}

// sumRows writes the column sums of x (rows of len(dst)) into dst.
func sumRows[T float32 | float64](op *sumRowsOp, dst, x []T) {
	m := len(dst)
	if m == 0 {
		return
	}
	n := len(x) / m
	ones, ok := op.ones.([]T)
	if !ok || len(ones) != n {
		ones = make([]T, n)
		for i := range ones {
			ones[i] = 1
		}
		op.ones = ones
	}
	gemm(false, false, 1, m, n, 1, ones, max(n, 1), x, m, dst, m, false)
}

func (op *sumRowsOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "actq.layerops.%v", op) }
func (op *sumRowsOp) Hashcode() uint32      { return opkit.Hash(op) }
