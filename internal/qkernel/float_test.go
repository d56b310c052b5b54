package qkernel

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

// decode returns the value of code c in format f, from the OCP OFP8 spec
// (E4M3FN, E5M2), IEEE 754 (binary16) and the bfloat16 definition (the top
// half of a float32), independently of the rounding code under test.
func decode(f FloatFormat, c uint32) float64 {
	var ebits, mbits, bias uint
	switch f {
	case BF16:
		return float64(math.Float32frombits(c << 16))
	case FP16:
		ebits, mbits, bias = 5, 10, 15
	case FP8E4M3:
		ebits, mbits, bias = 4, 3, 7
	case FP8E5M2:
		ebits, mbits, bias = 5, 2, 15
	}
	sign := 1.0
	if c>>(ebits+mbits)&1 == 1 {
		sign = -1
	}
	e := int(c >> mbits & (1<<ebits - 1))
	m := float64(c & (1<<mbits - 1))
	emax := 1<<ebits - 1
	switch {
	case f == FP8E4M3 && e == emax && m == 7:
		return math.NaN() // S.1111.111, the only NaN; no infinities
	case f != FP8E4M3 && e == emax && m == 0:
		return sign * math.Inf(1)
	case f != FP8E4M3 && e == emax:
		return math.NaN()
	case e == 0:
		return sign * math.Ldexp(m, 1-int(bias)-int(mbits))
	}
	return sign * math.Ldexp(1+m/float64(int(1)<<mbits), e-int(bias))
}

func codeCount(f FloatFormat) uint32 {
	if f == FP16 || f == BF16 {
		return 1 << 16
	}
	return 1 << 8
}

// TestRoundExhaustive checks every code of every format: each finite value
// rounds to itself; every midpoint between neighbours rounds to the one
// with the even code; the float64 numbers just beside a midpoint round to
// the nearer neighbour; NaN codes give NaN. Run in float64 (Round) and
// float32 (RoundFloat on slices).
func TestRoundExhaustive(t *testing.T) {
	for _, f := range []FloatFormat{FP16, BF16, FP8E4M3, FP8E5M2} {
		n := codeCount(f)
		half := n / 2 // the positive codes
		var vals []float64
		for c := range half {
			v := decode(f, c)
			if math.IsNaN(v) || math.IsInf(v, 0) {
				break // codes are ordered by value up to Inf/NaN
			}
			vals = append(vals, v)
		}
		if got := vals[len(vals)-1]; got != f.Max() {
			t.Fatalf("%v: largest finite code decodes to %g, Max() = %g", f, got, f.Max())
		}
		if got := vals[1]; got != f.SmallestSubnormal() {
			t.Fatalf("%v: smallest code decodes to %g, SmallestSubnormal() = %g", f, got, f.SmallestSubnormal())
		}
		next64 := math.Nextafter
		next32 := func(x, y float64) float64 { return float64(math.Nextafter32(float32(x), float32(y))) }
		for _, prec := range []struct {
			name string
			next func(x, y float64) float64
		}{{"float64", next64}, {"float32", next32}} {
			in, want := roundCases(f, vals, prec.next)
			got := make([]float64, len(in))
			if prec.name == "float64" {
				for i, x := range in {
					got[i], _ = f.Round(x)
				}
			} else {
				x32 := make([]float32, len(in))
				for i, x := range in {
					x32[i] = float32(x)
				}
				dst := make([]float32, len(in))
				if err := RoundFloat(dst, x32, f, 1); err != nil {
					t.Fatal(err)
				}
				for i := range dst {
					got[i] = float64(dst[i])
				}
			}
			for i := range in {
				if !(got[i] == want[i] && math.Signbit(got[i]) == math.Signbit(want[i])) {
					t.Errorf("%v %s: %v (%#x) → %v, want %v", f, prec.name, in[i], math.Float64bits(in[i]), got[i], want[i])
				}
			}
			t.Logf("%v %s: %d codes, %d inputs checked", f, prec.name, n, len(in))
		}
		// NaN codes.
		for c := range n {
			if v := decode(f, c); math.IsNaN(v) {
				if got, _ := f.Round(v); !math.IsNaN(got) {
					t.Errorf("%v: NaN code %#x → %v", f, c, got)
				}
			}
		}
	}
}

// TestAccumulateFP16: each step is FP16.Round of the float64 sum, rows in
// order, zero weights skipped, on the vector path (when there is one) and
// the scalar loop: random weights and values over many binades, then
// sums that land on fp16 ties, subnormals, the overflow threshold 65520
// and just below it, ±Inf and NaN; lengths must agree.
func TestAccumulateFP16(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ties := []float32{0.5, 1.5, 1 + 0x1p-11, 1 + 3*0x1p-11, 0x1p-25, 3 * 0x1p-25, 0x1p-15 + 0x1p-25, 65519, 65520, 65535.9,
		-65520, 1e-8, -1e-8, 0x1p-24, float32(math.Inf(1)), float32(math.NaN()), -0.0, 2049, 2051, 4097}
	bothPaths(t, func(vector bool) {
		for _, n := range []int{1, 3, 4, 8, 32, 36, 48} {
			const rows = 400
			acc, want := make([]float64, n), make([]float64, n)
			w := make([]float64, rows)
			v := make([]float32, rows*n)
			for j := range w {
				w[j], _ = FP16.Round(math.Exp(-20 * rng.Float64())) // attention weights, some 0
				if j%7 == 0 {
					w[j] = 1
				}
				for i := range n {
					v[j*n+i] = float32(rng.NormFloat64() * math.Exp(8*rng.Float64()-4))
					if j%5 == 0 {
						v[j*n+i] = ties[rng.IntN(len(ties))]
					}
				}
			}
			for j := range w {
				for i := range n {
					if w[j] != 0 { // 0·Inf would be NaN: the row is skipped
						want[i], _ = FP16.Round(want[i] + w[j]*float64(v[j*n+i]))
					}
				}
			}
			if err := AccumulateFP16(acc, w, v); err != nil {
				t.Fatal(err)
			}
			for i := range acc {
				if acc[i] != want[i] && !(math.IsNaN(acc[i]) && math.IsNaN(want[i])) {
					t.Fatalf("vector %v, n %d: acc[%d] = %v, want %v", vector, n, i, acc[i], want[i])
				}
			}
		}
		big := []float64{65000, 1, math.NaN(), 65504}
		if err := AccumulateFP16(big, []float64{1, 0, -1}, []float32{1000, 1, 1, 15, 5, 5, 5, 5, 1e30, 0, 0, 0}); err != nil {
			t.Fatal(err)
		}
		// Row 0 overflows element 0, adds 1 to element 1 and leaves 65504+15
		// at 65504; row 1 (weight 0) is skipped; row 2 leaves +Inf an Inf.
		if !math.IsInf(big[0], 1) || big[1] != 2 || !math.IsNaN(big[2]) || big[3] != 65504 {
			t.Errorf("vector %v: overflow, plain, NaN, below the threshold: %v", vector, big)
		}
	})
	if err := AccumulateFP16(make([]float64, 3), []float64{1}, []float32{1}); !errors.Is(err, ErrLength) {
		t.Errorf("3 accumulators, 1 weight, 1 value: %v", err)
	}
}

// TestRoundFacts checks hand-computed casts to each float format (ONNX's
// float8 QuantizeLinear, PyTorch's half and bfloat16) and the fp16 edges.
func TestRoundFacts(t *testing.T) {
	for _, c := range []struct {
		f        FloatFormat
		x, want  float64
		overflow bool
		src      string
	}{
		{FP16, 65504, 65504, false, "#36 max"},
		{FP16, 65519, 65504, false, "#36"},
		{FP16, 65520, math.Inf(1), true, "#36 tie → Inf"},
		{FP16, -65520, math.Inf(-1), true, "#36"},
		{FP16, 0x1p-24, 0x1p-24, false, "#36 min subnormal"},
		{FP16, 0x1p-25, 0, false, "#36 tie → 0"},
		{FP16, 3 * 0x1p-26, 0x1p-24, false, "#36"},
		{FP16, 1 + 0x1p-11, 1, false, "#36 tie → even"},
		{FP16, 1 + 3*0x1p-11, 1.001953125, false, "#36"},
		{FP16, float64(float32(0.1)), 0.0999755859375, false, "#36"},
		{BF16, float64(math.Float32frombits(0x3F808000)), float64(math.Float32frombits(0x3F800000)), false, "#35 tie → even"},
		{BF16, float64(math.Float32frombits(0x3F818000)), float64(math.Float32frombits(0x3F820000)), false, "#35"},
		{BF16, float64(float32(1.0 / 3)), 0.333984375, false, "#35"},
		{BF16, float64(float32(math.Pi)), 3.140625, false, "#35"},
		{BF16, math.MaxFloat32, math.Inf(1), true, "#35 FLT_MAX → Inf"},
		{FP8E4M3, 464, 448, false, "#37 tie"},
		{FP8E4M3, 465, 448, true, "#37 saturated"},
		{FP8E4M3, 480, 448, true, "#37"},
		{FP8E4M3, 1e5, 448, true, "#37, #26"},
		{FP8E4M3, math.Inf(1), 448, false, "#37 (ONNX saturate)"},
		{FP8E4M3, math.Inf(-1), -448, false, "#37"},
		{FP8E4M3, float64(float32(0.1)), 0.1015625, false, "#37"},
		{FP8E4M3, 0x1p-10, 0, false, "#37"},
		{FP8E4M3, 1.5 * 0x1p-10, 0x1p-9, false, "#37"},
		{FP8E4M3, 100, 96, false, "#26 (200/2)"},
		{FP8E5M2, 61439, 57344, false, "#38"},
		{FP8E5M2, 61440, 57344, true, "#38 tie, saturated"},
		{FP8E5M2, 50000, 49152, false, "#38, #26"},
		{FP8E5M2, 0x1p-17, 0, false, "#38"},
		{FP8E5M2, 1.5 * 0x1p-17, 0x1p-16, false, "#38"},
	} {
		got, over := c.f.Round(c.x)
		if got != c.want || over != c.overflow {
			t.Errorf("%v.Round(%v) = %v, overflow %v; want %v, %v (%s)", c.f, c.x, got, over, c.want, c.overflow, c.src)
		}
	}
	if got, _ := BF16.Round(math.NaN()); math.Float32bits(float32(got)) != 0x7FC00000 {
		t.Errorf("BF16.Round(NaN) = %#x, want the quiet NaN 0x7FC00000", math.Float32bits(float32(got)))
	}
	if got, _ := FP16.Round(math.Copysign(0, -1)); !math.Signbit(got) || got != 0 {
		t.Errorf("FP16.Round(−0) = %v", got)
	}
}

// TestRoundFloatScaled is ONNX's QuantizeLinear to float8 with s = 2
// y = cast(x/2)·2.
func TestRoundFloatScaled(t *testing.T) {
	x := []float32{0, 1, 2, 100000, 200}
	for _, c := range []struct {
		f    FloatFormat
		want []float32
	}{
		{FP8E4M3, []float32{0, 1, 2, 896, 192}},
		{FP8E5M2, []float32{0, 1, 2, 98304, 192}},
	} {
		dst := make([]float32, len(x))
		if err := RoundFloat(dst, x, c.f, 2); err != nil {
			t.Fatal(err)
		}
		for i := range x {
			if dst[i] != c.want[i] {
				t.Errorf("%v: %v → %v, want %v", c.f, x[i], dst[i], c.want[i])
			}
		}
		cols := make([]float32, len(x))
		if err := RoundFloatCols(cols, x, c.f, []float32{2}); err != nil {
			t.Fatal(err)
		}
		for i := range x {
			if cols[i] != dst[i] {
				t.Errorf("%v cols: %v → %v, want %v", c.f, x[i], cols[i], dst[i])
			}
		}
	}
}

// roundCases returns inputs around every positive value of f (and their
// negatives) with the expected roundings; next(x, y) is the neighbour of x
// toward y in the precision under test.
func roundCases(f FloatFormat, vals []float64, next func(x, y float64) float64) (in, want []float64) {
	add := func(x, w float64) {
		in, want = append(in, x, -x), append(want, w, -w)
	}
	for k, v := range vals {
		add(v, v)
		if k+1 == len(vals) {
			break
		}
		nv := vals[k+1]
		mid := (v + nv) / 2 // exact: one bit more than the format
		even := v
		if k%2 == 1 {
			even = nv
		}
		add(mid, even)
		add(next(mid, 0), v)
		add(next(mid, math.Inf(1)), nv)
	}
	// Beyond the largest value: the midpoint to the next step.
	top := f.Max()
	step := top - vals[len(vals)-2]
	over := math.Inf(1)
	if f.Saturates() {
		over = top
	}
	tie := over // the others' max has an odd significand: a tie rounds up
	if f == FP8E4M3 {
		tie = top // 448 = 1.110·2^8 is even
	}
	add(top+step/2, tie)
	add(next(top+step/2, 0), top)
	add(next(top+step/2, math.Inf(1)), over)
	add(math.Inf(1), over)
	return in, want
}

// TestCountFloatDivisionOverflow: a finite x whose x/s overflows T is
// clipped (it saturates, or becomes ±Inf), though T(x/s) is infinite and
// Round reports no overflow for an infinite input (found by
// FuzzRoundFloat; CountFloat counted it as not clipped).
func TestCountFloatDivisionOverflow(t *testing.T) {
	x := []float32{3e38, -3e38, 1}
	for _, f := range []FloatFormat{FP16, FP8E4M3} {
		y := make([]float32, len(x))
		mustNil(t, RoundFloat(y, x, f, 1e-30))
		c, err := CountFloat(x, y, f, 1e-30)
		mustNil(t, err)
		if c.Clipped != 3 { // 1/1e-30 = 1e30 overflows every format too
			t.Errorf("%v: Clipped = %d, want 3", f, c.Clipped)
		}
		cc, err := CountFloatCols(x, y, f, []float32{1e-30})
		mustNil(t, err)
		if cc != c {
			t.Errorf("%v: CountFloatCols = %+v, CountFloat %+v", f, cc, c)
		}
	}
}

func mustNil(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestFloatParamsConstants: the precomputed bits of each format are those
// of 2^emin and of the exponent step 2^(52−mant).
func TestFloatParamsConstants(t *testing.T) {
	for _, f := range []FloatFormat{FP16, BF16, FP8E4M3, FP8E5M2} {
		p := f.params()
		if math.Float64frombits(p.minNormalBits) != math.Ldexp(1, p.emin) ||
			math.Float64frombits(p.shiftBits+1023<<52) != math.Ldexp(1, 52-int(p.mant)) {
			t.Errorf("%v: minNormalBits %#x, shiftBits %#x", f, p.minNormalBits, p.shiftBits)
		}
	}
}
