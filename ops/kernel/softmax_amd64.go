//go:build amd64 && !goexperiment.simd && !purego

package kernel

import "math"

// The vector routines of the float32 softmax row helpers of softmax.go, in
// AVX2+FMA assembly (softmax_amd64.s), for the default build on amd64:
// GOEXPERIMENT=simd builds take softmax_simd.go instead, and the purego
// tag the scalar code alone.
//
// Unlike the scalar code, which widens every element to float64, the passes
// that dominate the time compute in float32 lanes, 8 per instruction, as
// PyTorch does (and as the AVX-512 code of softmax_simd.go, 16 per
// instruction), but keep what float32 would lose:
//
//   - the exp (expSum32AVX2, logGradOut32AVX2) has the reduction and
//     polynomial of the activations' expParts8 (simd_avx2_amd64.go;
//     constants in fast32.go): relative error 1.25·2^−24 after rounding to
//     float32 (measured: TestExpSum32Accuracy), of x − m split exactly
//     into d + e (TwoSum), so that the rounding of x − m, up to
//     |x − m|·2^−24, does not reach the exp;
//   - every sum stays float64: max and dot and Σdy as before (exact
//     products of float32s, widened), and the exps' sum from the float32
//     terms, widened (for softmax, two vectors are first added in float32,
//     which costs the sum at most 2^−24 relative);
//   - the float64 scalars that meet float32 elements (1/s, log s, Σy·dy,
//     Σdy) are split into two float32s, hi + lo, so the scaling, the
//     log-softmax output and both gradients round about as often as the
//     float64 code: a softmax gradient dy_j − s that cancels is exact.
//
// Exps near float32's underflow (x − m < −86), NaN, and log-softmax
// gradients of y_j > 0, which float32 lanes cannot take, go through the
// float64-lane code for their block of 8 (EXPNEG4, EXP4), so the special
// cases are the scalar code's; and sums beyond float32's range (|Σy·dy| or
// |Σdy| > MaxFloat32) through the scalar code. One case is float32's own:
// the softmax gradient forms dy_j − s in float32, which overflows to ±Inf
// when |dy_j − s| > MaxFloat32 even if y_j·(dy_j − s) would not.
//
// Accuracy (TestSoftmaxRowHelpersMatchScalar, TestSoftmaxVectorMatchesScalar,
// FuzzSoftmax): softmax within 2^−22 relative of the exact result, to first
// order the sum of its parts' errors: the element's exp, 1.25·2^−24 (the
// largest measured), the sum's, at most 2.25·2^−24 (the terms' errors
// averaged, and the pairwise float32 addition's 2^−24), and the scaling's,
// 0.5·2^−24. Measured: 2.8·2^−24 on 3,000 random rows of up to 3,000
// elements, against 1.96·2^−24 for the scalar code; within 6 ULPs of the
// scalar code (at most 3 seen). Log-softmax within 1.5 ULPs plus the
// error of log s, which is absolute (1e-7 near log y = 0). Gradients,
// given y, within 3·2^−24 of the size of their terms, y_j·(|dy_j| + |s|),
// for softmax (dy_j − hi, − lo and the product each round once), and
// 3.5·2^−24 of |dy_j| + e^(y_j)·|Σdy| for log-softmax (the exp's
// 1.5·2^−24 at most, TestExpSum32Accuracy's ceiling, and two FMAs). The
// shift invariance of softmax holds exactly: the kernels see only x − m.

// The assembly routines. Each takes slices whose length is a multiple of
// 8; see softmax_amd64.s.

//go:noescape
func maxAVX2(x []float32) float32

//go:noescape
func expSum32AVX2(dst, x []float32, m float64, store bool, k *[softmaxKRows][8]uint32) float64

//go:noescape
func scale32AVX2(dst []float32, hi, lo float32)

//go:noescape
func logOut32AVX2(dst, x []float32, m, hi, lo float32)

//go:noescape
func dotAVX2(y, dy []float32) float64

//go:noescape
func gradOut32AVX2(dst, y, dy []float32, hi, lo float32)

//go:noescape
func sumAVX2(x []float32) float64

//go:noescape
func logGradOut32AVX2(dst, y, dy []float32, negTotal float64, hi, lo float32, k *[softmaxKRows][8]uint32)

//go:noescape
func expAVX2(z []float64)

// softmaxKRows is the number of rows of softmaxK.
const softmaxKRows = 12

// softmaxK is the constant table of the float32-lane routines (EXPF8 and
// the range checks around it), one constant in each row's 8 lanes, in the
// order of the K_ offsets of softmax_amd64.s. The exp's constants are
// those of expParts8 (fast32.go). It is only read.
var softmaxK = [softmaxKRows][8]uint32{
	splat8(math.Float32bits(log2e)),        // K_LOG2E
	splat8(math.Float32bits(0x1.8p23)),     // K_SHIFT: adding it rounds |t| < 2^22 to an integer held in the low bits
	splat8(math.Float32bits(-ln2Hi32)),     // K_MLN2HI
	splat8(math.Float32bits(-ln2Lo32)),     // K_MLN2LO
	splat8(math.Float32bits(expC6)),        // K_C6
	splat8(math.Float32bits(expC5)),        // K_C5
	splat8(math.Float32bits(expC4)),        // K_C4
	splat8(math.Float32bits(expC3)),        // K_C3
	splat8(math.Float32bits(expC2)),        // K_C2
	splat8(math.Float32bits(1)),            // K_ONE
	splat8(math.Float32bits(expF8Min)),     // K_FASTMIN
	splat8(math.Float32bits(expSingleMin)), // K_ZEROBELOW
}

// expF8Min is the least argument of EXPF8: from −86, 2^n ≥ 2^−124 and
// e^z is a normal float32 (e^−87.3 is the smallest).
const expF8Min = -86

// The vector routines of softmax.go's row helpers (see "Vector paths" in
// fast32.go): the assembly on whole vectors of 8, with AVX2 and FMA
// (vecLevel). Those whose results are exps run a last partial vector
// through a padded copy and the same code, so that every exp goes through
// the same arithmetic wherever its element lies; dotVec and sumVec add
// their last elements one by one, in order, in float64.

func maxVec(x []float32) (int, float32) {
	if vecLevel < vecAVX2 {
		return 0, float32(math.Inf(-1))
	}
	n := len(x) &^ 7
	return n, maxAVX2(x[:n])
}

// expSumVec needs m ≥ every non-NaN x_j, which rowExpSum's callers pass
// (the row's maximum): the assembly leaves out the exp's z > 89 case.
func expSumVec(dst, x []float32, m float64, store bool) (int, float64) {
	if vecLevel < vecAVX2 {
		return 0, 0
	}
	if !store {
		dst = x // not written
	}
	dst = dst[:len(x)]
	n := len(x) &^ 7
	s := expSum32AVX2(dst[:n], x[:n], m, store, &softmaxK)
	if n < len(x) {
		// The tail padded with −Inf, whose terms are exactly 0.
		var b, e [8]float32
		for i := range b {
			b[i] = float32(math.Inf(-1))
		}
		copy(b[:], x[n:])
		s += expSum32AVX2(e[:], b[:], m, true, &softmaxK)
		if store {
			copy(dst[n:], e[:])
		}
	}
	return len(x), s
}

func scaleVec(dst []float32, inv twoFloat) int {
	if vecLevel < vecAVX2 {
		return 0
	}
	n := len(dst) &^ 7
	scale32AVX2(dst[:n], inv.hi, inv.lo)
	return n
}

func logOutVec(dst, x []float32, m float64, lse twoFloat) int {
	if vecLevel < vecAVX2 {
		return 0
	}
	n := len(x) &^ 7
	logOut32AVX2(dst[:n], x[:n], float32(m), lse.hi, lse.lo) // m is a float32
	return n
}

func dotVec(y, dy []float32) (int, float64) {
	if vecLevel < vecAVX2 {
		return 0, 0
	}
	dy = dy[:len(y)]
	n := len(y) &^ 7
	s := dotAVX2(y[:n], dy[:n])
	for j := n; j < len(y); j++ {
		s += float64(y[j]) * float64(dy[j])
	}
	return len(y), s
}

func gradOutVec(dst, y, dy []float32, s twoFloat) int {
	if vecLevel < vecAVX2 {
		return 0
	}
	n := len(y) &^ 7
	gradOut32AVX2(dst[:n], y[:n], dy[:n], s.hi, s.lo)
	return n
}

func sumVec(x []float32) (int, float64) {
	if vecLevel < vecAVX2 {
		return 0, 0
	}
	n := len(x) &^ 7
	s := sumAVX2(x[:n])
	for _, v := range x[n:] {
		s += float64(v)
	}
	return len(x), s
}

func logGradOutVec(dst, y, dy []float32, negTotal twoFloat) int {
	if vecLevel < vecAVX2 {
		return 0
	}
	dst, dy = dst[:len(y)], dy[:len(y)]
	n := len(y) &^ 7
	logGradOut32AVX2(dst[:n], y[:n], dy[:n], negTotal.v, negTotal.hi, negTotal.lo, &softmaxK)
	if n < len(y) {
		var by, bd, out [8]float32
		copy(by[:], y[n:])
		copy(bd[:], dy[n:])
		logGradOut32AVX2(out[:], by[:], bd[:], negTotal.v, negTotal.hi, negTotal.lo, &softmaxK)
		copy(dst[n:], out[:])
	}
	return len(y)
}

// expVec is expInPlace's vector routine, for the strided kernels: e^z in
// float64 lanes (EXP4), as the AVX-512 code's exp8 computes it.
func expVec(z []float64) int {
	if vecLevel < vecAVX2 {
		return 0
	}
	n := len(z) &^ 7
	expAVX2(z[:n])
	if n < len(z) {
		var b [8]float64
		copy(b[:], z[n:])
		expAVX2(b[:])
		copy(z[n:], b[:])
	}
	return len(z)
}
