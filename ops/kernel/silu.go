package kernel

import "math"

// SiLU sets dst[i] = x[i]·σ(x[i]) = x[i]/(1+e^(−x[i])), the sigmoid linear
// unit (Swish with β = 1).
//
// Float64 uses math.Exp and is within a few float64 ULPs. Float32 uses the
// fast kernels of fast32.go; measured against float64 over every float32 x
// with 2⁻¹² ≤ |x|, −105 ≤ x ≤ 20 (and a sample below), the error is at most
// 0.57 ULP (portable Go) and 3.7 ULP (vector: AVX2 or AVX-512).
// Special cases are:
//
//	SiLU(+Inf) = +Inf
//	SiLU(−Inf) = −0  (the limit; PyTorch returns NaN)
//	SiLU(±0)   = ±0
//	SiLU(NaN)  = NaN
//
// dst may alias x. It returns an error wrapping ErrLength if the lengths
// differ.
func SiLU[T Float](dst, x []T) error {
	if err := checkLengths("kernel.SiLU", arg{"dst", len(dst)}, arg{"x", len(x)}); err != nil {
		return err
	}
	if is32[T]() {
		silu32(as32(dst), as32(x))
		return nil
	}
	for i, v := range x {
		dst[i] = T(silu64(float64(v)))
	}
	return nil
}

// SiLUGrad sets dst[i] = dy[i]·SiLU′(x[i]), the backward pass of SiLU, with
//
//	SiLU′(x) = σ(x)·(1 + x·(1 − σ(x))) = σ(x) + x·σ(x)·σ(−x).
//
// σ(−x) is computed directly rather than as 1−σ(x), which would cancel.
// Float32 errors are at most 0.64 ULP (portable) and 3.1 ULP (vector),
// except near the zero at x ≈ −1.2785 where the absolute error is at most
// 6.0e-8 (portable) and 2.3e-7 (vector). Special cases are:
//
//	SiLU′(+Inf) = 1
//	SiLU′(−Inf) = 0  (PyTorch returns NaN)
//	SiLU′(±0)   = ½
//	SiLU′(NaN)  = NaN
//
// dst may alias x or dy. It returns an error wrapping ErrLength if the
// lengths differ.
func SiLUGrad[T Float](dst, x, dy []T) error {
	if err := checkLengths("kernel.SiLUGrad", arg{"dst", len(dst)}, arg{"x", len(x)}, arg{"dy", len(dy)}); err != nil {
		return err
	}
	if is32[T]() {
		siluGrad32(as32(dst), as32(x), as32(dy))
		return nil
	}
	for i, v := range x {
		dst[i] = T(float64(dy[i]) * siluDeriv64(float64(v)))
	}
	return nil
}

// sigmoid64 returns 1/(1+e^(−z)): 0 when e^(−z) overflows, 1 when it
// underflows, NaN for NaN.
func sigmoid64(z float64) float64 {
	return 1 / (1 + math.Exp(-z))
}

func silu64(x float64) float64 {
	s := sigmoid64(x)
	if s == 0 {
		return math.Copysign(0, x)
	}
	return x * s
}

// sigmoidPair returns σ(z) and σ(−z) = 1−σ(z) from one exponential, each
// without cancellation: with e = e^(−|z|), σ(|z|) = 1/(1+e) and
// σ(−|z|) = e/(1+e).
func sigmoidPair(z float64) (s, sc float64) {
	e := math.Exp(-math.Abs(z))
	big := 1 / (1 + e)
	small := e * big
	if z >= 0 {
		return big, small
	}
	return small, big // also for NaN, where both are NaN
}

func siluDeriv64(x float64) float64 {
	s, sc := sigmoidPair(x)
	if s == 0 || sc == 0 {
		// The second term is x·e^(−|x|) < 2^−1000: below resolution, and
		// ±Inf·0 would give NaN.
		return s
	}
	return s + x*s*sc
}
