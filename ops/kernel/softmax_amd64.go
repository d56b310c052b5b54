//go:build amd64 && !goexperiment.simd && !purego

package kernel

import "math"

// AVX2+FMA twins of the float32 row helpers of softmax.go, in assembly
// (softmax_amd64.s), for the default build on amd64: GOEXPERIMENT=simd
// builds take softmax_simd.go instead, and the purego tag the scalar code
// alone. As in softmax_simd.go, float32 elements are widened to float64
// lanes, so the arithmetic and every sum are in float64 as in the scalar
// code: max, scale, logOut and gradOut give the scalar code's bits; the
// sums differ from it only in their order; the exps are exp8's method
// (EXP4 in the assembly gives exp8's bits), relative error 7.0e-9 against
// expSingle's 5.8e-10. Both paths are within 2^−23 relative of the exact
// softmax, so they agree within 1 float32 ULP or 1e-7 (on 450,000 random
// elements: 0.3% of outputs 1 ULP apart, 0.02% 2 ULPs apart, all by less
// than 4e-9), and the gradients within about 2^−23 of the size of their
// terms (compareVector; TestSoftmaxVectorMatchesScalar, FuzzSoftmax,
// TestSoftmaxRowHelpersMatchScalar). On that sample the outputs were the
// AVX-512 build's bit for bit; the sums' order differs from it slightly,
// so that is not guaranteed.
//
// The assembly handles whole blocks of 8 elements; the wrappers below do
// the rest, either in scalar code where that gives the same bits, or
// through a padded copy on the stack, so that every exp goes through the
// same code wherever its element lies.

// vecSoftmax reports whether the float32 row helpers take their vector
// twins (here the assembly). The assembly needs AVX2 and FMA, which is
// what vecLevel = vecAVX2 says in this build (vec_asm_amd64.go); tests
// lower vecLevel to check the scalar path on the same machine.
func vecSoftmax() bool { return vecLevel >= vecAVX2 }

// The assembly routines. Each takes slices whose length is a multiple of
// 8; see softmax_amd64.s.

//go:noescape
func maxAVX2(x []float32) float32

//go:noescape
func expSumAVX2(dst, x []float32, m float64, store bool) float64

//go:noescape
func scaleAVX2(dst []float32, inv float64)

//go:noescape
func logOutAVX2(dst, x []float32, m, lse float64)

//go:noescape
func dotAVX2(y, dy []float32) float64

//go:noescape
func gradOutAVX2(dst, y, dy []float32, s float64)

//go:noescape
func sumAVX2(x []float32) float64

//go:noescape
func logGradOutAVX2(dst, y, dy []float32, negTotal float64)

//go:noescape
func expAVX2(z []float64)

// whole returns n rounded down to a multiple of 8: the elements the
// assembly handles.
func whole(n int) int { return n &^ 7 }

func max32(x []float32) float32 {
	n := whole(len(x))
	m := float32(math.Inf(-1))
	if n > 0 {
		m = maxAVX2(x[:n])
	}
	for _, v := range x[n:] { // the maximum is exact: same result
		if v > m {
			m = v
		}
	}
	return m
}

// expSum32 needs m ≥ every non-NaN x_j, which rowExpSum's callers pass
// (the row's maximum): the assembly leaves out the exp's z > 89 case.
func expSum32(dst, x []float32, m float64, store bool) float64 {
	if !store {
		dst = x // not written
	}
	dst = dst[:len(x)]
	n := whole(len(x))
	var s float64
	if n > 0 {
		s = expSumAVX2(dst[:n], x[:n], m, store)
	}
	if n < len(x) {
		// The tail padded with −Inf, whose terms are exactly 0.
		var b, e [8]float32
		for i := range b {
			b[i] = float32(math.Inf(-1))
		}
		copy(b[:], x[n:])
		s += expSumAVX2(e[:], b[:], m, true)
		if store {
			copy(dst[n:], e[:])
		}
	}
	return s
}

func scale32(dst []float32, inv float64) {
	n := whole(len(dst))
	if n > 0 {
		scaleAVX2(dst[:n], inv)
	}
	for j, e := range dst[n:] {
		dst[n+j] = float32(float64(e) * inv)
	}
}

func logOut32(dst, x []float32, m, lse float64) {
	dst = dst[:len(x)]
	n := whole(len(x))
	if n > 0 {
		logOutAVX2(dst[:n], x[:n], m, lse)
	}
	for j, v := range x[n:] {
		dst[n+j] = float32((float64(v) - m) - lse)
	}
}

func dot32(y, dy []float32) float64 {
	dy = dy[:len(y)]
	n := whole(len(y))
	var s float64
	if n > 0 {
		s = dotAVX2(y[:n], dy[:n])
	}
	for j, v := range y[n:] {
		s += float64(v) * float64(dy[n+j])
	}
	return s
}

func gradOut32(dst, y, dy []float32, s float64) {
	dst, dy = dst[:len(y)], dy[:len(y)]
	n := whole(len(y))
	if n > 0 {
		gradOutAVX2(dst[:n], y[:n], dy[:n], s)
	}
	for j, v := range y[n:] {
		dst[n+j] = float32(float64(v) * (float64(dy[n+j]) - s))
	}
}

func sum32(x []float32) float64 {
	n := whole(len(x))
	var s float64
	if n > 0 {
		s = sumAVX2(x[:n])
	}
	for _, v := range x[n:] {
		s += float64(v)
	}
	return s
}

func logGradOut32(dst, y, dy []float32, total float64) {
	dst, dy = dst[:len(y)], dy[:len(y)]
	n := whole(len(y))
	if n > 0 {
		logGradOutAVX2(dst[:n], y[:n], dy[:n], -total)
	}
	if n < len(y) {
		var by, bd, out [8]float32
		copy(by[:], y[n:])
		copy(bd[:], dy[n:])
		logGradOutAVX2(out[:], by[:], bd[:], -total)
		copy(dst[n:], out[:])
	}
}

func expVec(z []float64) {
	n := whole(len(z))
	if n > 0 {
		expAVX2(z[:n])
	}
	if n < len(z) {
		var b [8]float64
		copy(b[:], z[n:])
		expAVX2(b[:])
		copy(z[n:], b[:])
	}
}
