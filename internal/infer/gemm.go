package infer

import (
	"fmt"
	"runtime"

	actqblas "github.com/actq/actq/blas"
	"github.com/actq/actq/internal/parallel"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// Products selects the routines of the engine's matrix products.
type Products uint8

const (
	// ProductsFast multiplies several rows with actq's Sgemm (package
	// blas) and a single row with gonum's Sgemv: decoding one token is a
	// sequence of matrix–vector products bound by the speed at which the
	// weights stream from memory, which gonum's Sgemv nearly reaches,
	// where a GEMM's kernel, built for many rows, computes its whole block
	// of rows for one (bench/RESULTS.md has the measurements).
	ProductsFast Products = iota
	// ProductsGraph multiplies everything, single rows included, with
	// actq's Sgemm, and adds a bias as internal/layerops.MatMul does (C
	// starts as the bias and the GEMM adds the product to it): the
	// arithmetic of package graph's layers, so that the engine's results
	// equal an Evaluator's bit for bit. actq's Sgemm computes each element
	// of C in the same order whatever m and n (one kernel, blocks of k
	// from 0), and the zero probabilities of masked keys, which graph's
	// P·V multiplies and the engine skips, add exact zeros.
	ProductsGraph
)

// String returns a short name of the routines ("fast", "graph").
func (p Products) String() string {
	switch p {
	case ProductsFast:
		return "fast"
	case ProductsGraph:
		return "graph"
	}
	return fmt.Sprintf("Products(%d)", uint8(p))
}

// gemvMinWork is the fewest multiply-adds of a matrix–vector product worth
// handing to another goroutine: a GEMV streams its matrix from memory, and
// 2^17 float32 (512 KB) take tens of microseconds, far more than starting a
// goroutine.
const gemvMinWork = 1 << 17

// matmul computes c = a·b, or alpha·(a·bᵀ) with transB, plus beta·c (beta
// 0 or 1: c is not read with 0), for the
// row-major matrices a (m×k, leading dimension lda), b (k×n, ldb; n×k with
// transB) and c (m×n, ldc). It is the engine's one call of a matrix
// product: every projection, the LM head, Q·Kᵀ and P·V go through it, with
// the routines Options.Products selects. A single row is split over
// goroutines, by chunks of columns of c (parallel.Dynamic), when the
// matrix is large; several rows are split by the GEMM itself.
//
// alpha scales the products of the transposed form (Q·Kᵀ/√Dh), where each
// routine multiplies each finished dot product by it, rounding once, as a
// separate multiplication of the result would (gonum's: alpha·dot; actq's:
// alpha·acc, for k within one block of its kernel, 384). It must be 1
// without transB: gonum's Sgemv there (an axpy of b's rows) would scale
// a's elements instead.
func (e *Engine) matmul(transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if m > 1 || e.opt.Products == ProductsGraph {
		tb := blas.NoTrans
		if transB {
			tb = blas.Trans
		}
		actqblas.Implementation{}.Sgemm(blas.NoTrans, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	if minCols := max(1, gemvMinWork/max(k, 1)); runtime.GOMAXPROCS(0) > 1 && n >= 2*minCols {
		// Chunks taken in turn: a helper goroutine the OS runs late
		// (the cores busy with other work) leaves its share to the caller
		// instead of holding up each of a decoding step's many products.
		parallel.Dynamic(n, minCols, func(lo, hi int) { gemvCols(transB, lo, hi, k, alpha, a, b, ldb, beta, c) })
		return
	}
	gemvCols(transB, 0, n, k, alpha, a, b, ldb, beta, c) // no closure: no allocation
}

// gemvCols computes c[lo:hi] of the one-row product c = a·b (or a·bᵀ).
func gemvCols(transB bool, lo, hi, k int, alpha float32, a, b []float32, ldb int, beta float32, c []float32) {
	if transB {
		// c[j] = alpha·(b_j·a) for b's rows lo…hi−1.
		gonum.Implementation{}.Sgemv(blas.NoTrans, hi-lo, k, alpha, b[lo*ldb:], ldb, a, 1, beta, c[lo:hi], 1)
		return
	}
	// c = aᵀ·b over columns lo…hi−1: an axpy of b's rows.
	gonum.Implementation{}.Sgemv(blas.Trans, k, hi-lo, 1, b[lo:], ldb, a, 1, beta, c[lo:hi], 1)
}
