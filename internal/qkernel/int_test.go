package qkernel

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

// refFakeQuant32 is PyTorch's per-tensor CPU kernel (aten's
// fake_quantize_tensor_cachemask_kernel) written out literally in float32:
// q_f = zp + nearbyint(x·inv), y = (clamp(q_f) − zp)·s, mask = qmin ≤ q_f ≤
// qmax, with newer PyTorch's NaN and ±Inf handling (fmax(NaN, qmin) = qmin,
// +Inf → qmax).
func refFakeQuant32(x, s float32, zp, qmin, qmax int) (float32, bool) {
	inv := 1 / s
	t := float32(x * inv)
	qf := float32(zp) + float32(math.RoundToEven(float64(t)))
	q := math.Max(math.Min(float64(qf), float64(qmax)), float64(qmin))
	if math.IsNaN(float64(qf)) {
		q = float64(qmin)
	}
	return float32(q-float64(zp)) * s, float64(qmin) <= float64(qf) && float64(qf) <= float64(qmax)
}

var ranges = []struct{ qmin, qmax int }{{-128, 127}, {-127, 127}, {0, 255}, {1, 255}, {-8, 7}, {-7, 7}, {0, 15}}

// randomInputs returns values over the grid [lo·s, hi·s] and beyond, exact
// and float32-rounded ties, and the special values.
func randomInputs(r *rand.Rand, n int, s float32, lo, hi int) []float32 {
	x := make([]float32, 0, n+8)
	w := float64(hi-lo) * float64(s)
	for range n / 2 {
		x = append(x, float32((r.Float64()*1.4-0.2)*w+float64(lo)*float64(s)))
	}
	for range n / 2 {
		k := lo - 2 + r.IntN(hi-lo+4)
		x = append(x, float32((float64(k)+0.5)*float64(s)))
	}
	return append(x, 0, float32(math.Copysign(0, -1)), float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 1e30, -1e30, 1e-30)
}

func TestFakeQuantIntMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for trial := range 200 {
		rg := ranges[trial%len(ranges)]
		s := float32(math.Pow(10, -3+3*r.Float64()))
		zp := rg.qmin + r.IntN(rg.qmax-rg.qmin+1)
		q := NewInt(s, zp, rg.qmin, rg.qmax)
		x := randomInputs(r, 301, s, rg.qmin-zp, rg.qmax-zp)
		y := make([]float32, len(x))
		if err := FakeQuantInt(y, x, q); err != nil {
			t.Fatal(err)
		}
		dy := make([]float32, len(x))
		for i := range dy {
			dy[i] = float32(i + 1)
		}
		dx := make([]float32, len(x))
		if err := FakeQuantIntGrad(dx, x, dy, q); err != nil {
			t.Fatal(err)
		}
		cols := make([]float32, 300) // 3 columns × 100 rows, one grid each
		if err := FakeQuantIntCols(cols, x[:300], []Int[float32]{q, q, q}); err != nil {
			t.Fatal(err)
		}
		for i, v := range x {
			want, in := refFakeQuant32(v, s, zp, rg.qmin, rg.qmax)
			wantDx := float32(0)
			if in {
				wantDx = dy[i]
			}
			one, oneIn := q.FakeQuant(v)
			if math.Float32bits(y[i]) != math.Float32bits(want) || dx[i] != wantDx || math.Float32bits(one) != math.Float32bits(want) || oneIn != in {
				t.Fatalf("s=%v zp=%d [%d,%d]: x=%v: y=%v dx=%v (one: %v %v), want %v %v", s, zp, rg.qmin, rg.qmax, v, y[i], dx[i], one, oneIn, want, wantDx)
			}
			if i < 300 && math.Float32bits(cols[i]) != math.Float32bits(want) {
				t.Fatalf("cols: x=%v: %v, want %v", v, cols[i], want)
			}
		}
	}
}

// TestFakeQuantIntFacts checks hand-computed cases of PyTorch's
// fake_quantize_per_tensor_affine (and ONNX's int4 QuantizeLinear with s = 2).
func TestFakeQuantIntFacts(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	for _, c := range []struct {
		src            string
		s              float32
		zp, qmin, qmax int
		x, want        []float32
		inside         []bool
	}{
		{"#20 PyTorch docs", 0.1, 0, 0, 255, []float32{0.0552, 0.9730, 0.3973, -1.0780}, []float32{0.1, 1.0, 0.4, 0}, []bool{true, true, true, false}},
		{"#21 ties, clip, NaN, Inf", 0.1, 0, -128, 127, []float32{0.25, 0.35, 12.75, nan, inf, -inf}, []float32{0.2, 0.4, 12.7, -12.8, 12.7, -12.8}, []bool{true, true, false, false, false, false}},
		{"#22 reciprocal, not division", 0.3, 0, -128, 127, []float32{-38.25}, []float32{-38.4}, []bool{true}},
		{"#23 ONNX uint8 s=2 zp=128", 2, 128, 0, 255, []float32{0, 2, 3, 1000, -254, -1000}, []float32{0, 2, 4, 254, -254, -256}, []bool{true, true, true, false, true, false}},
		{"#25 ONNX int4 row 0", 2, 1, -8, 7, []float32{0, 2.5, 4.8, 8.6}, []float32{0, 2, 4, 8}, []bool{true, true, true, true}},
	} {
		q := NewInt(c.s, c.zp, c.qmin, c.qmax)
		y := make([]float32, len(c.x))
		if err := FakeQuantInt(y, c.x, q); err != nil {
			t.Fatal(err)
		}
		for i := range c.x {
			_, in := q.FakeQuant(c.x[i])
			if y[i] != c.want[i] || in != c.inside[i] {
				t.Errorf("%s: x=%v: y=%v inside=%v, want %v %v", c.src, c.x[i], y[i], in, c.want[i], c.inside[i])
			}
		}
	}
}

func TestFakeQuantIntProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for trial := range 100 {
		rg := ranges[trial%len(ranges)]
		s := float32(math.Pow(10, -4+5*r.Float64()))
		zp := rg.qmin + r.IntN(rg.qmax-rg.qmin+1)
		q := NewInt(s, zp, rg.qmin, rg.qmax)
		x := randomInputs(r, 200, s, rg.qmin-zp, rg.qmax-zp)
		y := make([]float32, len(x))
		_ = FakeQuantInt(y, x, q)
		lo, hi := q.Bounds()
		for i, v := range y {
			// On the grid: y = k·s for an integer k in [qmin−zp, qmax−zp].
			k := math.RoundToEven(float64(v) / float64(s))
			if float32(float32(k)*s) != v || k < float64(rg.qmin-zp) || k > float64(rg.qmax-zp) || v < lo || v > hi {
				t.Fatalf("x=%v → %v is not on the grid of s=%v zp=%d", x[i], v, s, zp)
			}
		}
		// Idempotent with fixed parameters, and a grid value is inside.
		y2 := make([]float32, len(x))
		_ = FakeQuantInt(y2, y, q)
		for i := range y {
			if math.Float32bits(y2[i]) != math.Float32bits(y[i]) {
				t.Fatalf("not idempotent: %v → %v → %v", x[i], y[i], y2[i])
			}
			if _, in := q.FakeQuant(y[i]); !in {
				t.Fatalf("grid value %v is outside", y[i])
			}
		}
	}
}

func TestFakeQuantInt64(t *testing.T) {
	// Power-of-two scales: the float64 result is the exact grid value.
	q := NewInt(0.25, 0, -8, 7)
	x := []float64{-3, -0.3, 0.3, 0.6, 2, 0.125, 0.375, math.NaN()}
	want := []float64{-2, -0.25, 0.25, 0.5, 1.75, 0, 0.5, -2}
	y := make([]float64, len(x))
	if err := FakeQuantInt(y, x, q); err != nil {
		t.Fatal(err)
	}
	for i := range x {
		if y[i] != want[i] {
			t.Errorf("x=%v: %v, want %v", x[i], y[i], want[i])
		}
	}
}

// TestLSQScaleGradFact is a hand-computed LSQ scale gradient: int4 [−8,7], s=0.25, zp=0,
// x=[−3,−0.3,0.3,0.6,2], dy=1 → dX=[0,1,1,1,0], dScale=−8+0.2−0.2−0.4+7=−1.4.
func TestLSQScaleGradFact(t *testing.T) {
	q := NewInt[float32](0.25, 0, -8, 7)
	x := []float32{-3, -0.3, 0.3, 0.6, 2}
	dy := []float32{1, 1, 1, 1, 1}
	got, err := LSQScaleGrad(x, dy, q)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(got-(-1.4)) > 1e-6 {
		t.Errorf("dScale = %v, want −1.4", got)
	}
	dx := make([]float32, len(x))
	_ = FakeQuantIntGrad(dx, x, dy, q)
	for i, want := range []float32{0, 1, 1, 1, 0} {
		if dx[i] != want {
			t.Errorf("dX[%d] = %v, want %v", i, dx[i], want)
		}
	}
	cols := make([]float64, 1)
	if err := LSQScaleGradCols(cols, x, dy, []Int[float32]{q}); err != nil || math.Abs(cols[0]-got) > 1e-12 {
		t.Errorf("cols: %v, %v; want %v", cols, err, got)
	}
}

func TestLengthErrors(t *testing.T) {
	q := NewInt[float32](1, 0, -8, 7)
	a, b := make([]float32, 3), make([]float32, 4)
	checks := []error{
		FakeQuantInt(a, b, q),
		FakeQuantIntGrad(a, a, b, q),
		FakeQuantIntCols(a, b, []Int[float32]{q}),
		FakeQuantIntCols(b, b, []Int[float32]{q, q, q}),
		FakeQuantIntColsGrad(a, a, b, []Int[float32]{q}),
		RoundFloat(a, b, FP16, 1),
		RoundFloatCols(b, b, FP16, []float32{1, 1, 1}),
	}
	_, e1 := CountInt(a, b, q)
	_, e2 := CountFloat(a, b, FP16, 1)
	_, e3 := LSQScaleGrad(a, b, q)
	checks = append(checks, e1, e2, e3, LSQScaleGradCols(make([]float64, 2), a, a, []Int[float32]{q}))
	for i, err := range checks {
		if !errors.Is(err, ErrLength) {
			t.Errorf("check %d: %v, want ErrLength", i, err)
		}
	}
}

func TestCounts(t *testing.T) {
	// int8, s = 0.1: 0.01 → 0 (zeroed), 20 → 12.7 (clipped), NaN, −Inf,
	// 0 (not zeroed: it was 0), 0.3 → 0.3 (noise from float32 rounding).
	q := NewInt[float32](0.1, 0, -128, 127)
	x := []float32{0.01, 20, float32(math.NaN()), float32(math.Inf(-1)), 0, 0.3}
	y := make([]float32, len(x))
	_ = FakeQuantInt(y, x, q)
	c, err := CountInt(x, y, q)
	if err != nil {
		t.Fatal(err)
	}
	sig := float64(float32(0.01))*float64(float32(0.01)) + 400 + float64(float32(0.3))*float64(float32(0.3))
	e1, e2, e3 := float64(float32(0.01)), float64(y[1])-20, float64(y[5])-float64(float32(0.3))
	noise := e1*e1 + e2*e2 + e3*e3
	want := Counts{N: 6, Clipped: 1, Zeroed: 1, NaN: 1, Inf: 1, Signal: sig, Noise: noise}
	if c != want {
		t.Errorf("CountInt = %+v, want %+v", c, want)
	}
	// FP16: 70000 overflows to Inf (clipped, noise Inf), 1e-8 → 0 (zeroed).
	xf := []float32{70000, 1e-8, 1}
	yf := make([]float32, len(xf))
	_ = RoundFloat(yf, xf, FP16, 1)
	cf, _ := CountFloat(xf, yf, FP16, 1)
	if cf.N != 3 || cf.Clipped != 1 || cf.Zeroed != 1 || !math.IsInf(cf.Noise, 1) {
		t.Errorf("CountFloat = %+v", cf)
	}
}

func TestRanges(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	x := make([]float32, 37) // longer than a vector, with a tail
	for i := range x {
		x[i] = float32(i%7) - 3
	}
	x[5], x[20], x[30] = nan, inf, -inf
	x[33] = -5.5
	if got := AbsMax(x); got != 5.5 {
		t.Errorf("AbsMax = %v, want 5.5", got)
	}
	if lo, hi, n := MinMax(x); lo != -5.5 || hi != 3 || n != 34 {
		t.Errorf("MinMax = %v, %v, %d", lo, hi, n)
	}
	if got := AbsMax([]float32{nan, inf}); got != 0 {
		t.Errorf("AbsMax of no finite value = %v", got)
	}
	v := []float64{4, 1, 3, 2, math.NaN(), 5}
	scratch := make([]float64, len(v))
	for _, c := range []struct{ p, want float64 }{{0, 1}, {100, 5}, {50, 3}, {25, 2}, {90, 4.6}} {
		if got := Percentile(v, c.p, scratch); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("Percentile(%v) = %v, want %v", c.p, got, c.want)
		}
	}
}
