package qkernel

import (
	"fmt"
	"math"
)

// FloatFormat is a binary floating-point format narrower than float32 that
// the kernels emulate: values are rounded to it and kept in float32 or
// float64.
type FloatFormat uint8

// The emulated formats.
const (
	// FP16 is IEEE 754 binary16: 10 stored significand bits, exponent bias
	// 15, largest finite value 65504, smallest subnormal 2^-24. Overflow
	// rounds to ±Inf.
	FP16 FloatFormat = iota + 1
	// BF16 is bfloat16: the top 16 bits of a float32 (7 stored significand
	// bits, the float32 exponent range), largest finite value
	// (2 − 2^-7)·2^127, smallest subnormal 2^-133. Overflow rounds to ±Inf.
	BF16
	// FP8E4M3 is OCP FP8 E4M3FN: 3 stored significand bits, bias 7, no
	// infinities, largest finite value 448, smallest subnormal 2^-9.
	// Rounding saturates: every value (±Inf included) whose rounded
	// magnitude exceeds 448 becomes ±448, as ONNX's Cast and QuantizeLinear
	// do by default (saturate=1).
	FP8E4M3
	// FP8E5M2 is OCP FP8 E5M2: 2 stored significand bits, bias 15,
	// largest finite value 57344, smallest subnormal 2^-16. Rounding
	// saturates to ±57344 (±Inf included), as ONNX's default.
	FP8E5M2
)

func (f FloatFormat) String() string {
	switch f {
	case FP16:
		return "FP16"
	case BF16:
		return "BF16"
	case FP8E4M3:
		return "FP8E4M3"
	case FP8E5M2:
		return "FP8E5M2"
	}
	return fmt.Sprintf("FloatFormat(%d)", uint8(f))
}

// floatParams describes a format: stored significand bits, the exponent of
// the smallest normal, the largest finite value and whether overflow
// saturates (true) or gives ±Inf.
type floatParams struct {
	mant     uint
	emin     int
	max      float64
	saturate bool
}

func (f FloatFormat) params() floatParams {
	switch f {
	case FP16:
		return floatParams{mant: 10, emin: -14, max: 65504}
	case BF16:
		return floatParams{mant: 7, emin: -126, max: 0x1.fep127}
	case FP8E4M3:
		return floatParams{mant: 3, emin: -6, max: 448, saturate: true}
	case FP8E5M2:
		return floatParams{mant: 2, emin: -14, max: 57344, saturate: true}
	}
	return floatParams{}
}

// Valid reports whether f is one of the formats above.
func (f FloatFormat) Valid() bool { return f >= FP16 && f <= FP8E5M2 }

// Max returns the largest finite value of the format (0 for an unknown
// format).
func (f FloatFormat) Max() float64 { return f.params().max }

// SmallestSubnormal returns the smallest positive value of the format (0
// for an unknown format).
func (f FloatFormat) SmallestSubnormal() float64 {
	if !f.Valid() {
		return 0
	}
	p := f.params()
	return math.Ldexp(1, p.emin-int(p.mant))
}

// Saturates reports whether overflow gives ±Max (true) or ±Inf (false).
func (f FloatFormat) Saturates() bool { return f.params().saturate }

// Round returns x rounded to the nearest value of format f, ties to even,
// with subnormals, and whether a finite x overflowed (its rounded magnitude
// exceeded Max, so that it became ±Inf or, for saturating formats, ±Max).
// The result is exact in float64 and in float32 (every value of these
// formats is a float32).
//
// The rounding is correct (one rounding from x, also for float64 x), so for
// float64 input it can differ from PyTorch's x.half(), which rounds to
// float32 first. Special cases are:
//
//	Round(±0)   = ±0
//	Round(±Inf) = ±Inf (FP16, BF16), ±Max (FP8, saturating; overflow = false)
//	Round(NaN)  = NaN  (a quiet NaN)
//
// An unknown format (not Valid) rounds everything to NaN.
func (f FloatFormat) Round(x float64) (r float64, overflow bool) {
	if !f.Valid() {
		return math.NaN(), false
	}
	return roundFloat(x, f.params())
}

// roundFloat rounds x to p: the significand with the float64 carry trick in
// the normal range, a fixed quantum in the subnormal range.
func roundFloat(x float64, p floatParams) (float64, bool) {
	if x != x {
		return math.NaN(), false
	}
	a := math.Abs(x)
	var m float64
	if a < math.Ldexp(1, p.emin) {
		// Subnormal range (and zero): multiples of 2^(emin−mant). Adding
		// b, whose float64 ulp is that quantum, rounds half to even.
		b := math.Ldexp(1, p.emin-int(p.mant)+52)
		m = (a + b) - b
	} else {
		// Round the float64 significand to mant bits, half to even; a carry
		// out of the significand moves into the exponent, as it should.
		// +Inf has a zero significand and stays +Inf.
		sh := 52 - p.mant
		u := math.Float64bits(a)
		u += (1<<(sh-1) - 1) + (u>>sh)&1
		u &^= 1<<sh - 1
		m = math.Float64frombits(u)
	}
	overflow := false
	if m > p.max {
		overflow = !math.IsInf(a, 1)
		if p.saturate {
			m = p.max
		} else {
			m = math.Inf(1)
		}
	}
	return math.Copysign(m, x), overflow
}

// checkFloat returns an error naming the kernel and the argument at fault
// unless f is a known format and s (named name) positive and finite.
func checkFloat[T Float](kernel string, f FloatFormat, name string, s T) error {
	if !f.Valid() {
		return fmt.Errorf("%s: f = %v, want FP16, BF16, FP8E4M3 or FP8E5M2: %w", kernel, f, ErrParam)
	}
	if v := float64(s); !(v > 0) || v > math.MaxFloat64 {
		return fmt.Errorf("%s: %s = %v, want a positive finite scale: %w", kernel, name, s, ErrParam)
	}
	return nil
}

// checkFloats is checkFloat for each scale of s.
func checkFloats[T Float](kernel string, f FloatFormat, s []T) error {
	if !f.Valid() {
		return checkFloat(kernel, f, "s", T(1))
	}
	for i, v := range s {
		if fv := float64(v); !(fv > 0) || fv > math.MaxFloat64 {
			return checkFloat(kernel, f, fmt.Sprintf("s[%d]", i), v)
		}
	}
	return nil
}

// RoundFloat sets dst[i] = round_f(x[i]/s)·s: x[i] divided by the scale,
// rounded to format f (see FloatFormat.Round) and multiplied back, in T.
// With s = 1 it is the plain cast, x.half().float() for FP16 and
// x.bfloat16().float() for BF16 on float32 data. The division follows
// ONNX's QuantizeLinear to float8 (x / y_scale), not a reciprocal.
//
// dst may alias x. It returns an error wrapping ErrLength if the lengths
// differ, and ErrParam for an unknown format or a scale that is not
// positive and finite.
func RoundFloat[T Float](dst, x []T, f FloatFormat, s T) error {
	if err := checkLengths("qkernel.RoundFloat", arg{"dst", len(dst)}, arg{"x", len(x)}); err != nil {
		return err
	}
	if err := checkFloat("qkernel.RoundFloat", f, "s", s); err != nil {
		return err
	}
	p := f.params()
	dst = dst[:len(x)]
	if s == 1 {
		for i, v := range x {
			r, _ := roundFloat(float64(v), p)
			dst[i] = T(r)
		}
		return nil
	}
	for i, v := range x {
		r, _ := roundFloat(float64(T(v/s)), p)
		dst[i] = T(r) * s
	}
	return nil
}

// RoundFloatCols is RoundFloat with one scale per column: x is a row-major
// matrix with len(s) columns, and element i uses s[i%len(s)].
//
// It returns an error wrapping ErrLength if the lengths differ or len(x) is
// not a multiple of len(s) (or s is empty), and ErrParam for an unknown
// format or a scale that is not positive and finite.
func RoundFloatCols[T Float](dst, x []T, f FloatFormat, s []T) error {
	if err := checkCols("qkernel.RoundFloatCols", arg{"dst", len(dst)}, arg{"x", len(x)}, "len(s)", len(s)); err != nil {
		return err
	}
	if err := checkFloats("qkernel.RoundFloatCols", f, s); err != nil {
		return err
	}
	p := f.params()
	for lo := 0; lo < len(x); lo += len(s) {
		row, out := x[lo:lo+len(s)], dst[lo:lo+len(s)]
		for j, v := range row {
			r, _ := roundFloat(float64(T(v/s[j])), p)
			out[j] = T(r) * s[j]
		}
	}
	return nil
}
