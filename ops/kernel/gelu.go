package kernel

import "math"

// Constants, to full float64 precision.
const (
	// sqrt1_2 is 1/√2 (https://oeis.org/A010503).
	sqrt1_2 = 0.70710678118654752440084436210484903928483593768847
	// invSqrt2Pi is 1/√(2π) (https://oeis.org/A231863), the peak of φ.
	invSqrt2Pi = 0.39894228040143267793994605993438186847585863116493
)

// GELU sets dst[i] = x[i]·Φ(x[i]), the exact (erf) Gaussian error linear
// unit, where Φ is the standard normal CDF.
//
// It is evaluated in the erfc form ½·x·erfc(−x/√2). Unlike PyTorch's
// ½·x·(1+erf(x/√2)), which cancels to −0 for x ≲ −5.54 in float32 and
// x ≲ −8.37 in float64, this form keeps full relative accuracy in the
// negative tail until the result underflows. Float64 uses math.Erfc and is
// within a few float64 ULPs. Float32 uses the fast kernels of fast32.go;
// measured against float64 over every float32 x with 2⁻¹² ≤ |x| ≤ 15 (and
// a sample below), the error is at most
//
//	portable Go:                 0.61 ULP
//	vector (AVX2 or AVX-512):    5.6 ULP where |y| ≥ 10⁻⁶, 7.0 ULP below
//	                             (absolute error ≤ 3.9e-7 everywhere)
//
// Special cases are:
//
//	GELU(+Inf) = +Inf
//	GELU(−Inf) = −0  (the limit; PyTorch returns NaN)
//	GELU(±0)   = ±0
//	GELU(NaN)  = NaN
//
// dst may alias x. It returns an error wrapping ErrLength if the lengths
// differ.
func GELU[T Float](dst, x []T) error {
	if err := checkLengths("kernel.GELU", arg{"dst", len(dst)}, arg{"x", len(x)}); err != nil {
		return err
	}
	if is32[T]() {
		gelu32(as32(dst), as32(x))
		return nil
	}
	for i, v := range x {
		dst[i] = T(gelu64(float64(v)))
	}
	return nil
}

// GELUGrad sets dst[i] = dy[i]·GELU′(x[i]), the backward pass of GELU, with
//
//	GELU′(x) = Φ(x) + x·φ(x),  φ(x) = exp(−x²/2)/√(2π).
//
// Float64 has the accuracy of GELU. Float32 errors are at most 0.76 ULP
// (portable) and 2.4 ULP (vector), except near GELU′'s zero at
// x ≈ −0.7518 where Φ(x) + x·φ(x) cancels and the absolute error is at most
// 6.1e-8 (portable) and 1.4e-7 (vector). Special cases are:
//
//	GELU′(+Inf) = 1
//	GELU′(−Inf) = 0  (PyTorch returns NaN)
//	GELU′(±0)   = ½
//	GELU′(NaN)  = NaN
//
// dst may alias x or dy. It returns an error wrapping ErrLength if the
// lengths differ.
func GELUGrad[T Float](dst, x, dy []T) error {
	if err := checkLengths("kernel.GELUGrad", arg{"dst", len(dst)}, arg{"x", len(x)}, arg{"dy", len(dy)}); err != nil {
		return err
	}
	if is32[T]() {
		geluGrad32(as32(dst), as32(x), as32(dy))
		return nil
	}
	for i, v := range x {
		dst[i] = T(float64(dy[i]) * geluDeriv64(float64(v)))
	}
	return nil
}

func gelu64(x float64) float64 {
	if math.IsInf(x, -1) {
		return math.Copysign(0, -1)
	}
	return 0.5 * x * math.Erfc(-x*sqrt1_2)
}

func geluDeriv64(x float64) float64 {
	if math.IsInf(x, 0) {
		if x > 0 {
			return 1
		}
		return 0
	}
	return 0.5*math.Erfc(-x*sqrt1_2) + x*invSqrt2Pi*math.Exp(-0.5*x*x)
}
