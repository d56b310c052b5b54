package graph

import (
	"fmt"
	"hash"

	"github.com/actq/actq/internal/parallel"
	"github.com/actq/actq/ops"
	"github.com/chewxy/hm"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// bmm returns op(a)·op(b) for every leading index of a and b, which must
// have equal shapes apart from their last two dimensions: the batched
// matrix product of attention, (batch, heads, m, k)·(batch, heads, k, n).
//
// It does what gorgonia.BatchedMatMul does, but calls BLAS once per matrix
// on the flat data, where Gorgonia builds a sliced view of both operands
// and the result for each matrix (which took half of the time of its
// batched product in the tiny model's training step).
func bmm(a, b *gorgonia.Node, transA, transB bool) (*gorgonia.Node, error) {
	return gorgonia.ApplyOp(bmmOp{transA: transA, transB: transB}, a, b)
}

type bmmOp struct{ transA, transB bool }

func (op bmmOp) String() string { return fmt.Sprintf("BMM{Aᵀ=%v,Bᵀ=%v}", op.transA, op.transB) }

func (op bmmOp) Arity() int { return 2 }

func (op bmmOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	t := gorgonia.TensorType{Dims: 4, Of: a}
	return hm.NewFnType(t, t, t)
}

// dims returns the batch count and m, k, n of op(a) (m×k) · op(b) (k×n).
func (op bmmOp) dims(sa, sb tensor.Shape) (batch, m, k, n int, err error) {
	if sa.Dims() < 3 || sa.Dims() != sb.Dims() {
		return 0, 0, 0, 0, fmt.Errorf("%v: shapes %v and %v: %w", op, sa, sb, ops.ErrShape)
	}
	r := sa.Dims()
	batch = 1
	for i := range r - 2 {
		if sa[i] != sb[i] {
			return 0, 0, 0, 0, fmt.Errorf("%v: shapes %v and %v: %w", op, sa, sb, ops.ErrShape)
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
		return 0, 0, 0, 0, fmt.Errorf("%v: inner sizes %d and %d of %v and %v: %w", op, k, kb, sa, sb, ops.ErrShape)
	}
	return batch, m, k, n, nil
}

func (op bmmOp) InferShape(ds ...gorgonia.DimSizer) (tensor.Shape, error) {
	if len(ds) != 2 {
		return nil, fmt.Errorf("%v: got %d input shapes, want 2: %w", op, len(ds), ops.ErrShape)
	}
	sa, ok1 := ds[0].(tensor.Shape)
	sb, ok2 := ds[1].(tensor.Shape)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("%v: input shapes %v, %v: %w", op, ds[0], ds[1], ops.ErrShape)
	}
	_, m, _, n, err := op.dims(sa, sb)
	if err != nil {
		return nil, err
	}
	out := sa.Clone()
	out[len(out)-2], out[len(out)-1] = m, n
	return out, nil
}

func (op bmmOp) Do(inputs ...gorgonia.Value) (gorgonia.Value, error) {
	if len(inputs) != 2 {
		return nil, fmt.Errorf("%v: got %d inputs, want 2: %w", op, len(inputs), ops.ErrValue)
	}
	var ds [2]*tensor.Dense
	for i, v := range inputs {
		d, ok := v.(*tensor.Dense)
		if ok && d.RequiresIterator() {
			d, ok = d.Materialize().(*tensor.Dense)
		}
		if !ok {
			return nil, fmt.Errorf("%v: input %d is %T: %w", op, i, v, ops.ErrValue)
		}
		ds[i] = d
	}
	batch, m, k, n, err := op.dims(ds[0].Shape(), ds[1].Shape())
	if err != nil {
		return nil, err
	}
	shape := ds[0].Shape().Clone()
	shape[len(shape)-2], shape[len(shape)-1] = m, n
	out := tensor.New(tensor.Of(ds[0].Dtype()), tensor.WithShape(shape...))
	switch c := out.Data().(type) {
	case []float32:
		a, ok1 := ds[0].Data().([]float32)
		b, ok2 := ds[1].Data().([]float32)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("%v: mixed dtypes: %w", op, ops.ErrDtype)
		}
		err = op.run(batch, m, k, n, func(i int) {
			gemm32(op, m, k, n, a[i*m*k:(i+1)*m*k], b[i*k*n:(i+1)*k*n], c[i*m*n:(i+1)*m*n])
		})
	case []float64:
		a, ok1 := ds[0].Data().([]float64)
		b, ok2 := ds[1].Data().([]float64)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("%v: mixed dtypes: %w", op, ops.ErrDtype)
		}
		err = op.run(batch, m, k, n, func(i int) {
			gemm64(op, m, k, n, a[i*m*k:(i+1)*m*k], b[i*k*n:(i+1)*k*n], c[i*m*n:(i+1)*m*n])
		})
	default:
		return nil, fmt.Errorf("%v: dtype %v: %w", op, ds[0].Dtype(), ops.ErrDtype)
	}
	return out, err
}

// bmmMinWork is the fewest multiply-adds worth handing to another
// goroutine (about 50 µs of work).
const bmmMinWork = 1 << 16

// run calls one(i) for every matrix i, split over goroutines when the
// work is large.
func (op bmmOp) run(batch, m, k, n int, one func(i int)) error {
	per := max(m*k*n, 1)
	return parallel.For(batch, max(bmmMinWork/per, 1), func(lo, hi int) error {
		for i := lo; i < hi; i++ {
			one(i)
		}
		return nil
	})
}

func trans(t bool) blas.Transpose {
	if t {
		return blas.Trans
	}
	return blas.NoTrans
}

// leading dimensions of a row-major op(a) m×k stored as given.
func (op bmmOp) lds(m, k, n int) (lda, ldb int) {
	lda, ldb = k, n
	if op.transA {
		lda = m
	}
	if op.transB {
		ldb = k
	}
	return lda, ldb
}

func gemm32(op bmmOp, m, k, n int, a, b, c []float32) {
	lda, ldb := op.lds(m, k, n)
	gonum.Implementation{}.Sgemm(trans(op.transA), trans(op.transB), m, n, k, 1, a, lda, b, ldb, 0, c, n)
}

func gemm64(op bmmOp, m, k, n int, a, b, c []float64) {
	lda, ldb := op.lds(m, k, n)
	gonum.Implementation{}.Dgemm(trans(op.transA), trans(op.transB), m, n, k, 1, a, lda, b, ldb, 0, c, n)
}

func (op bmmOp) ReturnsPtr() bool      { return false }
func (op bmmOp) CallsExtern() bool     { return false }
func (op bmmOp) OverwritesInput() int  { return -1 }
func (op bmmOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "actq.graph.%v", op) }
func (op bmmOp) Hashcode() uint32      { return fnvHash(op) }

func (op bmmOp) DiffWRT(int) []bool { return []bool{true, true} }

// grads returns the products giving dA and dB from (A, B, dC), for
// C = op(A)·op(B): each is a bmm of two of A, B, dC.
func (op bmmOp) grads() (da, db struct {
	x, y int // 0: A, 1: B, 2: dC
	op   bmmOp
}) {
	type g = struct {
		x, y int
		op   bmmOp
	}
	switch {
	case !op.transA && !op.transB: // C = A·B: dA = dC·Bᵀ, dB = Aᵀ·dC
		return g{2, 1, bmmOp{false, true}}, g{0, 2, bmmOp{true, false}}
	case !op.transA && op.transB: // C = A·Bᵀ: dA = dC·B, dB = dCᵀ·A
		return g{2, 1, bmmOp{false, false}}, g{2, 0, bmmOp{true, false}}
	case op.transA && !op.transB: // C = Aᵀ·B: dA = B·dCᵀ, dB = A·dC
		return g{1, 2, bmmOp{false, true}}, g{0, 2, bmmOp{false, false}}
	default: // C = Aᵀ·Bᵀ: dA = Bᵀ·dCᵀ, dB = dCᵀ·Aᵀ
		return g{1, 2, bmmOp{true, true}}, g{2, 0, bmmOp{true, true}}
	}
}

func (op bmmOp) SymDiff(inputs gorgonia.Nodes, output, grad *gorgonia.Node) (gorgonia.Nodes, error) {
	if len(inputs) != 2 {
		return nil, fmt.Errorf("%v.SymDiff: got %d inputs: %w", op, len(inputs), ops.ErrValue)
	}
	ns := [3]*gorgonia.Node{inputs[0], inputs[1], grad}
	da, db := op.grads()
	ga, err := gorgonia.ApplyOp(da.op, ns[da.x], ns[da.y])
	if err != nil {
		return nil, err
	}
	gb, err := gorgonia.ApplyOp(db.op, ns[db.x], ns[db.y])
	if err != nil {
		return nil, err
	}
	return gorgonia.Nodes{ga, gb}, nil
}

// DoDiff adds dA and dB into the inputs' gradients (Lisp machine).
func (op bmmOp) DoDiff(ctx gorgonia.ExecutionContext, inputs gorgonia.Nodes, output *gorgonia.Node) error {
	dy, err := output.Grad()
	if err != nil {
		return err
	}
	vs := [3]gorgonia.Value{inputs[0].Value(), inputs[1].Value(), dy}
	da, db := op.grads()
	for i, g := range []struct {
		x, y int
		op   bmmOp
	}{da, db} {
		v, err := g.op.Do(vs[g.x], vs[g.y])
		if err != nil {
			return err
		}
		if err := addValue(op, inputs[i], v); err != nil {
			return err
		}
	}
	return nil
}
