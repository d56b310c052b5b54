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
// saturates (true) or gives ±Inf; and, for roundFloat, the float64 bits
// of the smallest normal 2^emin and the exponent step (52−mant)<<52 that
// turns a binade's exponent bits into those of 2^(e+52−mant).
type floatParams struct {
	mant     uint
	emin     int
	max      float64
	saturate bool

	minNormalBits, shiftBits uint64
}

func (f FloatFormat) params() floatParams {
	p := func(mant uint, emin int, max float64, saturate bool) floatParams {
		return floatParams{mant: mant, emin: emin, max: max, saturate: saturate,
			minNormalBits: uint64(1023+emin) << 52, shiftBits: uint64(52-mant) << 52}
	}
	switch f {
	case FP16:
		return p(10, -14, 65504, false)
	case BF16:
		return p(7, -126, 0x1.fep127, false)
	case FP8E4M3:
		return p(3, -6, 448, true)
	case FP8E5M2:
		return p(2, -14, 57344, true)
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
	p := f.params()
	return roundFloat(x, &p)
}

// roundFloat rounds x to p. Up to the format's largest value it adds and
// subtracts c = 2^(e+52−mant), e the binade of |x| (of the smallest normal
// in the subnormal range): the float64 sum's ulp is then the format's
// quantum at |x|, so the addition rounds |x| to it, half to even, and the
// subtraction is exact; no branch depends on the value there. NaN and
// magnitudes past the largest value take roundLarge.
func roundFloat(x float64, p *floatParams) (float64, bool) {
	if !(math.Abs(x) <= p.max) {
		return roundLarge(x, p)
	}
	return roundSmall(x, p.minNormalBits, p.shiftBits), false
}

// round is roundFloat without the overflow flag. The loops over slices
// spell its two cases out instead of calling it: a call per element
// (roundFloat does not inline) takes several times the rounding itself.
func (p *floatParams) round(x float64) float64 {
	if math.Abs(x) <= p.max {
		return roundSmall(x, p.minNormalBits, p.shiftBits)
	}
	r, _ := roundLarge(x, p)
	return r
}

// roundSmall is roundFloat for |x| ≤ max, given the format's
// minNormalBits and shiftBits (small enough to inline in a loop).
func roundSmall(x float64, minNormalBits, shiftBits uint64) float64 {
	const sign, exponent = 1 << 63, 0x7FF << 52
	u := math.Float64bits(x)
	a := math.Float64frombits(u &^ sign)
	c := math.Float64frombits(max(u&exponent, minNormalBits) + shiftBits)
	return math.Float64frombits(math.Float64bits((a+c)-c) | u&sign)
}

// roundLarge is roundFloat for NaN and for |x| past the format's largest
// value: the float64 significand rounded to mant bits with the carry trick
// (a carry moves into the exponent; +Inf stays +Inf), then the overflow to
// ±Inf or, saturating, ±max.
func roundLarge(x float64, p *floatParams) (float64, bool) {
	if x != x {
		return math.NaN(), false
	}
	a := math.Abs(x)
	sh := 52 - p.mant
	u := math.Float64bits(a)
	u += (1<<(sh-1) - 1) + (u>>sh)&1
	u &^= 1<<sh - 1
	m := math.Float64frombits(u)
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
			if f := float64(v); math.Abs(f) <= p.max {
				dst[i] = T(roundSmall(f, p.minNormalBits, p.shiftBits))
			} else {
				dst[i] = T(p.round(f))
			}
		}
		return nil
	}
	for i, v := range x {
		if f := float64(T(v / s)); math.Abs(f) <= p.max {
			dst[i] = T(roundSmall(f, p.minNormalBits, p.shiftBits)) * s
		} else {
			dst[i] = T(p.round(f)) * s
		}
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
			if f := float64(T(v / s[j])); math.Abs(f) <= p.max {
				out[j] = T(roundSmall(f, p.minNormalBits, p.shiftBits)) * s[j]
			} else {
				out[j] = T(p.round(f)) * s[j]
			}
		}
	}
	return nil
}

// AccumulateFP16 adds the rows of v, weighted by w, to fp16 accumulators,
// one rounding per row and element, as an fp16 fused multiply-add does:
// with n = len(acc) and v holding len(w) rows of n values,
//
//	acc[i] = round_FP16(acc[i] + w[j]·v[j·n+i])   for j = 0, 1, …, in order
//
// with round_FP16 FP16.Round (ties to even, subnormals, overflow to ±Inf).
// Each product and sum is formed in float64 and rounded once to fp16: for
// acc[i] and w[j] in fp16 and v a float32, w[j]·v[j·n+i] is exact in
// float64 and the float64 sum within half a float64 ulp of the exact one,
// so each step is the correctly rounded FMA but where that float64
// rounding lands exactly on an fp16 tie (a double rounding). It is the
// accumulator of attention's P·V in an fp16 kernel (w the unnormalised
// weights, v the values); acc holds fp16 values kept as float64. A row
// whose weight is 0 adds exactly 0 to finite accumulators and is skipped
// (its values are not read). Special cases are FP16.Round's: a sum past
// 65504 becomes ±Inf and stays so; NaN propagates.
//
// It returns an error wrapping ErrLength unless len(v) = len(w)·len(acc).
func AccumulateFP16(acc, w []float64, v []float32) error {
	if len(v) != len(w)*len(acc) {
		return fmt.Errorf("qkernel.AccumulateFP16: len(v) = %d, want len(w)·len(acc) = %d·%d: %w", len(v), len(w), len(acc), ErrLength)
	}
	if accumulateFP16Vec(acc, w, v) {
		return nil
	}
	p := FP16.params()
	n := len(acc)
	for j, wj := range w {
		if wj == 0 {
			continue
		}
		row := v[j*n : (j+1)*n]
		for i, x := range row {
			if a := acc[i] + wj*float64(x); math.Abs(a) <= p.max {
				acc[i] = roundSmall(a, p.minNormalBits, p.shiftBits)
			} else {
				acc[i] = p.round(a)
			}
		}
	}
	return nil
}
