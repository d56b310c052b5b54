package kernel

import "math"

const (
	// sqrt2OverPi is √(2/π) (https://oeis.org/A076668), β in the tanh form.
	sqrt2OverPi = 0.79788456080286535587989211986876373695171726232986
	// geluTanhCubic is the 0.044715 of Hendrycks & Gimpel (2016), κ.
	geluTanhCubic = 0.044715
)

// GELUTanh sets dst[i] to the tanh approximation of GELU:
//
//	GELUTanh(x) = ½·x·(1 + tanh(u)),  u = √(2/π)·(x + 0.044715·x³).
//
// It is evaluated as x·σ(2u), σ(z) = 1/(1+e^(−z)), which equals the tanh
// form but does not cancel for negative x (PyTorch's float32 form returns
// −0 for x ≲ −5.2). Float64 uses math.Exp and is within a few float64
// ULPs. Float32 uses the fast kernels of fast32.go; measured against
// float64 over every float32 x with 2⁻¹² ≤ |x| ≤ 12 (and a sample below),
// the error is at most 0.57 ULP (portable Go) and 3.6 ULP (vector, AVX2 or
// AVX-512; 2u is carried as two floats there, so the tail keeps its
// accuracy too).
//
// Special cases are:
//
//	GELUTanh(+Inf) = +Inf
//	GELUTanh(−Inf) = −0  (the limit; PyTorch returns NaN)
//	GELUTanh(±0)   = ±0
//	GELUTanh(NaN)  = NaN
//
// dst may alias x. It returns an error wrapping ErrLength if the lengths
// differ.
func GELUTanh[T Float](dst, x []T) error {
	if err := checkLengths("kernel.GELUTanh", arg{"dst", len(dst)}, arg{"x", len(x)}); err != nil {
		return err
	}
	if is32[T]() {
		geluTanh32(as32(dst), as32(x))
		return nil
	}
	for i, v := range x {
		dst[i] = T(geluTanh64(float64(v)))
	}
	return nil
}

// GELUTanhGrad sets dst[i] = dy[i]·GELUTanh′(x[i]), the backward pass of
// GELUTanh, with (t = tanh(u), u′ = √(2/π)·(1 + 3·0.044715·x²))
//
//	GELUTanh′(x) = ½(1+t) + ½·x·(1−t²)·u′ = σ(2u) + 2x·σ(2u)·σ(−2u)·u′.
//
// The σ form is used so that neither term cancels. Float32 errors are at
// most 0.62 ULP (portable) and 3.4 ULP (vector), except near the zero at
// x ≈ −0.7522 where the absolute error is at most 6.0e-8 (portable) and
// 2.6e-7 (vector). Special cases are:
//
//	GELUTanh′(+Inf) = 1
//	GELUTanh′(−Inf) = 0  (PyTorch returns NaN)
//	GELUTanh′(±0)   = ½
//	GELUTanh′(NaN)  = NaN
//
// dst may alias x or dy. It returns an error wrapping ErrLength if the
// lengths differ.
func GELUTanhGrad[T Float](dst, x, dy []T) error {
	if err := checkLengths("kernel.GELUTanhGrad", arg{"dst", len(dst)}, arg{"x", len(x)}, arg{"dy", len(dy)}); err != nil {
		return err
	}
	if is32[T]() {
		geluTanhGrad32(as32(dst), as32(x), as32(dy))
		return nil
	}
	for i, v := range x {
		dst[i] = T(float64(dy[i]) * geluTanhDeriv64(float64(v)))
	}
	return nil
}

func geluTanhArg(x float64) float64 {
	return sqrt2OverPi * (x + geluTanhCubic*x*x*x)
}

func geluTanh64(x float64) float64 {
	s := sigmoid64(2 * geluTanhArg(x))
	if s == 0 {
		// x·σ(2u) → 0 from below; also keeps −Inf·0 from giving NaN.
		return math.Copysign(0, x)
	}
	return x * s
}

func geluTanhDeriv64(x float64) float64 {
	s, sc := sigmoidPair(2 * geluTanhArg(x))
	if s == 0 || sc == 0 {
		// e^(−|2u|) underflowed: the second term is below float64
		// resolution, and computing it could give Inf·0 = NaN.
		return s
	}
	return s + 2*x*s*sc*sqrt2OverPi*(1+3*geluTanhCubic*x*x)
}
