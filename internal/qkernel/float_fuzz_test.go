package qkernel

import (
	"math"
	"math/bits"
	"slices"
	"sync"
	"testing"

	"github.com/actq/actq/internal/numtest"
)

// floatFormats are the formats under test.
var floatFormats = []FloatFormat{FP16, BF16, FP8E4M3, FP8E5M2}

// formatSpec is a format as its specification defines it, written out here
// independently of the kernel's parameters: stored significand bits, the
// exponent of the smallest normal, the largest finite value and whether
// overflow saturates (ONNX's default for the FP8 formats).
type formatSpec struct {
	mant     int
	emin     int
	max      float64
	saturate bool
}

var formatSpecs = map[FloatFormat]formatSpec{
	FP16:    {mant: 10, emin: -14, max: (2 - 0x1p-10) * 0x1p15}, // IEEE 754 binary16
	BF16:    {mant: 7, emin: -126, max: (2 - 0x1p-7) * 0x1p127}, // float32's exponent range
	FP8E4M3: {mant: 3, emin: -6, max: 1.75 * 0x1p8, saturate: true},
	FP8E5M2: {mant: 2, emin: -14, max: 1.75 * 0x1p15, saturate: true},
}

// roundBits is the bit-level reference: it rounds x to format f with
// integer arithmetic on x's float64 bits, from the specification. x is
// M·2^E with M the integer significand; the format's quantum at |x| is
// 2^q with q = max(⌊log₂|x|⌋, emin) − mant; M is shifted right by
// q − E bits and rounded half to even on the bits shifted out. A result
// beyond max saturates or becomes ±Inf, and overflow is reported for
// finite x. ±Inf gives ±Inf, or ±max when saturating; NaN gives NaN.
func roundBits(f FloatFormat, x float64) (float64, bool) {
	p := formatSpecs[f]
	switch {
	case math.IsNaN(x):
		return math.NaN(), false
	case math.IsInf(x, 0) && p.saturate:
		return math.Copysign(p.max, x), false
	case math.IsInf(x, 0):
		return x, false
	}
	b := math.Float64bits(x) &^ (1 << 63)
	M, E := b&(1<<52-1), int(b>>52)-1075
	if b>>52 == 0 {
		E = -1074 // float64 subnormal: no implicit bit
	} else {
		M |= 1 << 52
	}
	var r float64
	if M != 0 {
		top := E + bits.Len64(M) - 1 // ⌊log₂|x|⌋
		q := max(top, p.emin) - p.mant
		switch k := q - E; {
		case k <= 0: // already a multiple of the quantum
			r = math.Abs(x)
		case k >= 64: // below half the quantum: M < 2^53 ≤ 2^(k−1)
			r = 0
		default:
			n, rem, half := M>>k, M&(1<<k-1), uint64(1)<<(k-1)
			if rem > half || rem == half && n&1 == 1 {
				n++
			}
			r = math.Ldexp(float64(n), q)
		}
	}
	over := r > p.max
	if over {
		r = math.Inf(1)
		if p.saturate {
			r = p.max
		}
	}
	return math.Copysign(r, x), over
}

// codeTables holds, for each format, its finite non-negative values in
// code order (decoded from the bit layouts by decode, float_test.go), and
// one more: max plus the last step, the value an unbounded exponent range
// would have next.
var codeTables = sync.OnceValue(func() map[FloatFormat][]float64 {
	m := map[FloatFormat][]float64{}
	for _, f := range floatFormats {
		var vals []float64
		for c := range codeCount(f) / 2 {
			v := decode(f, c)
			if math.IsNaN(v) || math.IsInf(v, 0) {
				break
			}
			vals = append(vals, v)
		}
		top := vals[len(vals)-1]
		m[f] = append(vals, top+(top-vals[len(vals)-2]))
	}
	return m
})

// roundTable is the table reference: the nearest value of the format's
// code table, ties to the even code (the codes of the non-negative values
// are their indices), found by binary search. The differences to the two
// neighbours are exact (Sterbenz), so the comparison is too.
func roundTable(f FloatFormat, x float64) (float64, bool) {
	p := formatSpecs[f]
	switch {
	case math.IsNaN(x):
		return math.NaN(), false
	case math.IsInf(x, 0) && p.saturate:
		return math.Copysign(p.max, x), false
	case math.IsInf(x, 0):
		return x, false
	}
	vals := codeTables()[f]
	a := math.Abs(x)
	i, _ := slices.BinarySearch(vals, a) // vals[i−1] < a ≤ vals[i]
	var r float64
	switch {
	case i == len(vals):
		r = vals[i-1]
	case vals[i] == a || i == 0:
		r = vals[i]
	default:
		lo, hi := vals[i-1], vals[i]
		dlo, dhi := a-lo, hi-a
		switch {
		case dlo < dhi, dlo == dhi && (i-1)%2 == 0:
			r = lo
		default:
			r = hi
		}
	}
	over := r > p.max
	if over {
		r = math.Inf(1)
		if p.saturate {
			r = p.max
		}
	}
	return math.Copysign(r, x), over
}

// FuzzRoundFloat checks the float-format casts (FloatFormat.Round,
// RoundFloat, RoundFloatCols, CountFloat) for every format against two
// references written from the specifications: roundBits (integer
// arithmetic on the bits) and roundTable (the nearest decoded code, ties
// to even). Inputs: an arbitrary float32 and float64 (from their bits,
// so every exponent, subnormals, ±Inf and NaN payloads come up), and a
// value near a code of each format (code, and nudge: bit 0 selects the
// midpoint to the next code, the rest are steps of one ULP of the input's
// precision). The scaled kernels (y = cast(x/s)·s) are checked with scale
// s, from bits, and with per-column scales.
func FuzzRoundFloat(f *testing.F) {
	for _, s := range []struct {
		b32   uint32
		b64   uint64
		code  uint16
		nudge int16
		scale uint32
	}{
		{math.Float32bits(1), math.Float64bits(1), 0, 0, math.Float32bits(1)},
		{math.Float32bits(65520), math.Float64bits(65519.99), 0x7bff, 1, math.Float32bits(2)},
		{math.Float32bits(464), math.Float64bits(465), 0x7e, 1, math.Float32bits(0.5)},
		{math.Float32bits(0x1p-25), math.Float64bits(0x1p-133), 1, 1, math.Float32bits(3)},
		{math.Float32bits(math.MaxFloat32), math.Float64bits(-math.MaxFloat64), 0x7f7f, 2, math.Float32bits(1e-30)},
		{0x7fc00001, 0x7ff0000000000001, 0x3c00, -3, math.Float32bits(1e30)},
		{0xff800000, 0x8000000000000001, 0x80, -2, 0x00000001},
		{math.Float32bits(61440), math.Float64bits(57344), 0x7b, 3, math.Float32bits(448)},
	} {
		f.Add(s.b32, s.b64, s.code, s.nudge, s.scale)
	}
	f.Fuzz(func(t *testing.T, b32 uint32, b64 uint64, code uint16, nudge int16, scale uint32) {
		s32 := math.Float32frombits(scale)
		for _, ff := range floatFormats {
			x32 := []float32{math.Float32frombits(b32), nearCode32(ff, code, nudge)}
			x64 := []float64{math.Float64frombits(b64), nearCode64(ff, code, nudge), float64(x32[0])}
			for _, x := range append(from(x32), x64...) {
				got, over := ff.Round(x)
				checkRound(t, ff, "Round", x, got, over)
			}
			checkRoundFloat(t, ff, x32, s32)
			checkRoundFloat(t, ff, x64, float64(s32))
		}
	})
}

// checkRound compares one rounding with both references.
func checkRound(t *testing.T, f FloatFormat, what string, x, got float64, over bool) {
	t.Helper()
	wantB, overB := roundBits(f, x)
	wantT, overT := roundTable(f, x)
	if !numtest.Alike(wantB, wantT) || overB != overT {
		t.Fatalf("%v(%v = %#x): the references disagree: bits %v (overflow %v), table %v (overflow %v)",
			f, x, math.Float64bits(x), wantB, overB, wantT, overT)
	}
	if !numtest.Alike(got, wantB) || over != overB {
		t.Fatalf("%v %s(%v = %#x) = %v (overflow %v), want %v (overflow %v)", f, what, x, math.Float64bits(x), got, over, wantB, overB)
	}
}

// checkRoundFloat checks the slice kernels on x in T: unscaled, they are
// the reference cast; scaled by s (when s is positive and finite), each
// element is T(ref(T(x/s)))·s; per column with scales (s, 1, 2s), the
// same per column; and CountFloat counts overflows as the reference does.
func checkRoundFloat[T Float](t *testing.T, f FloatFormat, x []T, s T) {
	t.Helper()
	dst := make([]T, len(x))
	mustNil(t, RoundFloat(dst, x, f, 1))
	for i, v := range x {
		want, _ := roundBits(f, float64(v))
		if !numtest.Alike(float64(dst[i]), float64(T(want))) {
			t.Fatalf("%v RoundFloat[%T](%v) = %v, want %v", f, v, v, dst[i], want)
		}
	}
	if !(s > 0) || math.IsInf(float64(s), 0) {
		return
	}
	scaled := func(v, s T) (T, bool) {
		r, over := roundBits(f, float64(T(v/s)))
		return T(r) * s, over
	}
	mustNil(t, RoundFloat(dst, x, f, s))
	var want Counts
	for i, v := range x {
		w, over := scaled(v, s)
		if !numtest.Alike(float64(dst[i]), float64(w)) {
			t.Fatalf("%v RoundFloat[%T](%v, s=%v) = %v, want %v", f, v, v, s, dst[i], w)
		}
		// Clipped: a finite x whose x/s overflowed T or the format.
		want.add(float64(v), float64(w), over || math.IsInf(float64(T(v/s)), 0) && !math.IsInf(float64(v), 0))
	}
	c, err := CountFloat(x, dst, f, s)
	mustNil(t, err)
	if c != want && !(math.IsNaN(c.Noise) && math.IsNaN(want.Noise)) {
		t.Fatalf("%v CountFloat[%T](%v, s=%v) = %+v, want %+v", f, s, x, s, c, want)
	}
	// Columns: x repeated over 2 rows of 3 columns with scales (s, 1, 2s).
	ss := []T{s, 1, 2 * s}
	if math.IsInf(float64(ss[2]), 0) {
		ss[2] = s / 2
	}
	xs := make([]T, 0, 6*len(x))
	for range 2 {
		for _, v := range x {
			xs = append(xs, v, v, v)
		}
	}
	ys := make([]T, len(xs))
	mustNil(t, RoundFloatCols(ys, xs, f, ss))
	for i, v := range xs {
		if w, _ := scaled(v, ss[i%3]); !numtest.Alike(float64(ys[i]), float64(w)) {
			t.Fatalf("%v RoundFloatCols[%T](%v, s=%v) = %v, want %v", f, v, v, ss[i%3], ys[i], w)
		}
	}
}

// nearCode32 returns, as a float32, the value of the format's code (modulo
// the code count), or with nudge bit 0 set the midpoint between it and the
// next code up in magnitude, moved by nudge>>1 float32 ULPs. NaN codes
// stay NaN.
func nearCode32(f FloatFormat, code uint16, nudge int16) float32 {
	v := nearCodeValue(f, code, nudge&1 == 1)
	x := float32(v)
	for range abs(int(nudge >> 1)) {
		x = math.Nextafter32(x, float32(math.Copysign(math.Inf(1), float64(nudge))))
	}
	return x
}

// nearCode64 is nearCode32 in float64.
func nearCode64(f FloatFormat, code uint16, nudge int16) float64 {
	x := nearCodeValue(f, code, nudge&1 == 1)
	for range abs(int(nudge >> 1)) {
		x = math.Nextafter(x, math.Copysign(math.Inf(1), float64(nudge)))
	}
	return x
}

func nearCodeValue(f FloatFormat, code uint16, mid bool) float64 {
	n := codeCount(f)
	c := uint32(code) % n
	v := decode(f, c)
	if !mid || math.IsNaN(v) || math.IsInf(v, 0) {
		return v
	}
	sign := c & (n / 2)
	next := decode(f, (c&^(n/2))+1)
	if math.IsNaN(next) || math.IsInf(next, 0) {
		next = codeTables()[f][len(codeTables()[f])-1] // past max
	}
	if sign != 0 {
		next = -next
	}
	return (v + next) / 2
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

func from[T Float](x []T) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

// add counts one element into c, the element-by-element reference for
// the Count kernels (which sum in locals, in the same order).
func (c *Counts) add(x, y float64, clipped bool) {
	c.N++
	switch {
	case x != x:
		c.NaN++
		return
	case math.IsInf(x, 0):
		c.Inf++
		return
	}
	if clipped {
		c.Clipped++
	}
	if y == 0 && x != 0 {
		c.Zeroed++
	}
	e := y - x
	c.Signal += x * x
	c.Noise += e * e
}
