package layerops

import (
	"github.com/actq/actq/internal/parallel"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// gemm computes c = op(a)·op(b) for the row-major matrices op(a) (m×k) and
// op(b) (k×n), stored with leading dimensions lda and ldb, into c (m×n,
// leading dimension n). It is the one place layerops calls a GEMM.
func gemm[T float32 | float64](transA, transB bool, m, n, k int, a []T, lda int, b []T, ldb int, c []T) {
	ta, tb := blas.NoTrans, blas.NoTrans
	if transA {
		ta = blas.Trans
	}
	if transB {
		tb = blas.Trans
	}
	switch c := any(c).(type) {
	case []float32:
		gonum.Implementation{}.Sgemm(ta, tb, m, n, k, 1, any(a).([]float32), lda, any(b).([]float32), ldb, 0, c, n)
	case []float64:
		gonum.Implementation{}.Dgemm(ta, tb, m, n, k, 1, any(a).([]float64), lda, any(b).([]float64), ldb, 0, c, n)
	}
}

// gemmMinWork is the fewest multiply-adds worth handing to another
// goroutine: far more than starting one costs.
const gemmMinWork = 1 << 16

// batchedGemm computes c_i = op(a_i)·op(b_i) for the batch consecutive
// matrices a_i (m×k as op(a_i), stored k×m when transA), b_i (k×n, stored
// n×k when transB) and c_i (m×n), split over goroutines when the work is
// large. The slices hold exactly batch matrices each.
func batchedGemm[T float32 | float64](transA, transB bool, batch, m, k, n int, a, b, c []T) error {
	lda, ldb := k, n
	if transA {
		lda = m
	}
	if transB {
		ldb = k
	}
	per := max(m*k*n, 1)
	return parallel.For(batch, max(gemmMinWork/per, 1), func(lo, hi int) error {
		for i := lo; i < hi; i++ {
			gemm(transA, transB, m, n, k, a[i*m*k:(i+1)*m*k], lda, b[i*k*n:(i+1)*k*n], ldb, c[i*m*n:(i+1)*m*n])
		}
		return nil
	})
}
