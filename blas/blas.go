package blas

import (
	"fmt"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// gonumImpl supplies every routine actq does not implement itself.
type gonumImpl = gonum.Implementation

// Implementation is actq's BLAS. Its zero value is ready to use, and it
// holds no state, so one value may be used from many goroutines.
//
// Sgemm and Dgemm are actq's own (see Sgemm); every other routine of
// gonum's blas.Float32, blas.Float64, blas.Complex64 and blas.Complex128
// is gonum's (gonum.org/v1/gonum/blas/gonum.Implementation), so
// Implementation satisfies gorgonia.BLAS.
type Implementation struct {
	gonumImpl
}

// Sgemm performs one of the matrix-matrix operations
//
//	C = alpha * A * B + beta * C
//	C = alpha * Aᵀ * B + beta * C
//	C = alpha * A * Bᵀ + beta * C
//	C = alpha * Aᵀ * Bᵀ + beta * C
//
// where A is an m×k or k×m dense matrix, B is a k×n or n×k dense matrix, C
// is an m×n matrix, all row-major with leading dimensions lda, ldb and ldc,
// and alpha and beta are scalars. tA and tB specify whether A or B are
// transposed (blas.ConjTrans is blas.Trans for real matrices).
//
// The result equals the plain loop
//
//	C[i,j] = alpha·Σₚ A[i,p]·B[p,j] + beta·C[i,j]
//
// up to the order of the sums (which blocking changes, so results differ
// from gonum's and between kernels in the last bits). NaN and ±Inf in A or
// B propagate as in that loop, also where the other factor is 0 (gonum
// skips the products of a zero A element). As in reference BLAS, with
// beta = 0 C is not read, so NaN or Inf already in C does not propagate,
// and with alpha = 0 or k = 0, A and B are not read: C = beta·C. Only C's
// m×n window (C[i·ldc+j], i < m, j < n) is written.
//
// Sgemm panics, with gonum's messages and in gonum's order, when tA or tB
// is not a blas.Transpose, m, n or k is negative, a leading dimension is
// smaller than its row, or a, b or c is too short.
//
// Large products are split across up to GOMAXPROCS goroutines.
func (Implementation) Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	aTrans, bTrans, ok := checkGemm(tA, tB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc)
	if ok {
		gemm(&kernels32.best, aTrans, bTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	}
}

// Dgemm is Sgemm in float64; see Sgemm for the operation, its special
// cases and its panics.
func (Implementation) Dgemm(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	aTrans, bTrans, ok := checkGemm(tA, tB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc)
	if ok {
		gemm(&kernels64.best, aTrans, bTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	}
}

// Kernels describes the micro-kernels Sgemm and Dgemm use in this build on
// this CPU: how they are written (assembly, simd/archsimd or portable Go),
// their instruction set and their register blocks (rows×columns of C).
func Kernels() string {
	return fmt.Sprintf("%s %s, %d×%d float32, %d×%d float64", kernels32.best.name, buildKernels,
		kernels32.best.mr, kernels32.best.nr, kernels64.best.mr, kernels64.best.nr)
}

// Panic messages: gonum's (blas/gonum/errors.go), so that a caller sees
// the same panic from either implementation.
const (
	mLT0         = "blas: m < 0"
	nLT0         = "blas: n < 0"
	kLT0         = "blas: k < 0"
	badTranspose = "blas: illegal transpose"
	badLdA       = "blas: bad leading dimension of A"
	badLdB       = "blas: bad leading dimension of B"
	badLdC       = "blas: bad leading dimension of C"
	shortA       = "blas: insufficient length of a"
	shortB       = "blas: insufficient length of b"
	shortC       = "blas: insufficient length of c"
)

// checkGemm checks a GEMM call's arguments as gonum's Sgemm and Dgemm do,
// in the same order, and panics with the same message at the first bad
// one. It reports whether A and B are transposed, and ok = false when
// there is nothing to compute (m or n is 0).
func checkGemm(tA, tB blas.Transpose, m, n, k, lenA, lda, lenB, ldb, lenC, ldc int) (aTrans, bTrans, ok bool) {
	switch tA {
	default:
		panic(badTranspose)
	case blas.NoTrans, blas.Trans, blas.ConjTrans:
	}
	switch tB {
	default:
		panic(badTranspose)
	case blas.NoTrans, blas.Trans, blas.ConjTrans:
	}
	if m < 0 {
		panic(mLT0)
	}
	if n < 0 {
		panic(nLT0)
	}
	if k < 0 {
		panic(kLT0)
	}
	aTrans = tA == blas.Trans || tA == blas.ConjTrans
	if aTrans {
		if lda < max(1, m) {
			panic(badLdA)
		}
	} else {
		if lda < max(1, k) {
			panic(badLdA)
		}
	}
	bTrans = tB == blas.Trans || tB == blas.ConjTrans
	if bTrans {
		if ldb < max(1, k) {
			panic(badLdB)
		}
	} else {
		if ldb < max(1, n) {
			panic(badLdB)
		}
	}
	if ldc < max(1, n) {
		panic(badLdC)
	}
	if m == 0 || n == 0 {
		return aTrans, bTrans, false
	}
	if aTrans {
		if lenA < (k-1)*lda+m {
			panic(shortA)
		}
	} else {
		if lenA < (m-1)*lda+k {
			panic(shortA)
		}
	}
	if bTrans {
		if lenB < (n-1)*ldb+k {
			panic(shortB)
		}
	} else {
		if lenB < (k-1)*ldb+n {
			panic(shortB)
		}
	}
	if lenC < (m-1)*ldc+n {
		panic(shortC)
	}
	return aTrans, bTrans, true
}
