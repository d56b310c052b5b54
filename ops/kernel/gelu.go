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
// It is evaluated as ½·x·erfc(−x/√2) in float64. Unlike PyTorch's
// ½·x·(1+erf(x/√2)), which cancels to −0 for x ≲ −5.54 in float32 and
// x ≲ −8.37 in float64, this form keeps full relative accuracy in the
// negative tail until the result underflows. Float32 results are within one
// float32 ULP of the true value; float64 results within a few ULPs.
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
	if err := checkLengths("kernel.GELU", len(dst), len(x)); err != nil {
		return err
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
// It has the accuracy of GELU. Special cases are:
//
//	GELU′(+Inf) = 1
//	GELU′(−Inf) = 0  (PyTorch returns NaN)
//	GELU′(±0)   = ½
//	GELU′(NaN)  = NaN
//
// dst may alias x or dy. It returns an error wrapping ErrLength if the
// lengths differ.
func GELUGrad[T Float](dst, x, dy []T) error {
	if err := checkLengths("kernel.GELUGrad", len(dst), len(x), len(dy)); err != nil {
		return err
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
