package layerops

import (
	actqblas "github.com/actq/actq/blas"
	"github.com/actq/actq/internal/parallel"
	"gonum.org/v1/gonum/blas"
)

// gemm computes c = alpha·op(a)·op(b), or c += alpha·op(a)·op(b) when
// accumulate, for the row-major matrices op(a) (m×k) and op(b) (k×n),
// stored with leading dimensions lda and ldb, into c (m×n, leading
// dimension ldc), with actq's GEMM (package blas; large products run on up
// to GOMAXPROCS goroutines). Without accumulate c is written, not read. It
// is the one place layerops calls a GEMM; the callers check the shapes, so
// that no argument can reach the GEMM's panics.
func gemm[T float32 | float64](transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, c []T, ldc int, accumulate bool) {
	ta, tb := blas.NoTrans, blas.NoTrans
	if transA {
		ta = blas.Trans
	}
	if transB {
		tb = blas.Trans
	}
	var beta T
	if accumulate {
		beta = 1
	}
	switch c := any(c).(type) {
	case []float32:
		actqblas.Implementation{}.Sgemm(ta, tb, m, n, k, float32(alpha), any(a).([]float32), lda, any(b).([]float32), ldb, float32(beta), c, ldc)
	case []float64:
		actqblas.Implementation{}.Dgemm(ta, tb, m, n, k, float64(alpha), any(a).([]float64), lda, any(b).([]float64), ldb, float64(beta), c, ldc)
	}
}

// gemmMinWork is the fewest multiply-adds worth handing to another
// goroutine: far more than starting one costs.
const gemmMinWork = 1 << 16

// batchedGemm computes c_i = alpha·op(a_i)·op(b_i) (c_i += … when
// accumulate) for the batch
// consecutive matrices a_i (m×k as op(a_i), stored k×m when transA), b_i
// (k×n, stored n×k when transB) and c_i (m×n), split over goroutines when
// the work is large. The slices hold exactly batch matrices each. A single
// product (batch 1) is left to the GEMM, which splits large ones itself.
func batchedGemm[T float32 | float64](transA, transB bool, batch, m, k, n int, alpha T, a, b, c []T, accumulate bool) error {
	lda, ldb := k, n
	if transA {
		lda = m
	}
	if transB {
		ldb = k
	}
	if m == 0 || n == 0 {
		return nil
	}
	per := max(m*k*n, 1)
	return parallel.For(batch, max(gemmMinWork/per, 1), func(lo, hi int) error {
		for i := lo; i < hi; i++ {
			gemm(transA, transB, m, n, k, alpha, a[i*m*k:(i+1)*m*k], max(lda, 1), b[i*k*n:(i+1)*k*n], max(ldb, 1), c[i*m*n:(i+1)*m*n], max(n, 1), accumulate)
		}
		return nil
	})
}
