package kernel

import (
	"math"
	"testing"
)

// FuzzActivations checks properties of every activation kernel at fuzzed
// points, in both dtypes: no panic and no error; finite input gives finite
// output and derivative; monotone to the right of the function's minimum;
// NaN propagates; the derivative agrees with a central difference of the
// float64 kernel.
func FuzzActivations(f *testing.F) {
	for _, seed := range [][2]float64{
		{0, 1}, {-1, 1}, {-5.5, -5.4}, {-10, 10}, {-88, 88}, {1e-30, -1e-30},
		{3e38, -3e38}, {1e300, -1e300}, {math.Inf(1), math.Inf(-1)}, {math.NaN(), 2},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, a, b float64) {
		for _, k := range activationKernels {
			x64 := []float64{a, b}
			y64, d64 := make([]float64, 2), make([]float64, 2)
			ones := []float64{1, 1}
			if err := k.fwd64(y64, x64); err != nil {
				t.Fatal(err)
			}
			if err := k.grad64(d64, x64, ones); err != nil {
				t.Fatal(err)
			}
			x32 := to32(x64)
			y32, d32 := make([]float32, 2), make([]float32, 2)
			if err := k.fwd32(y32, x32); err != nil {
				t.Fatal(err)
			}
			if err := k.grad32(d32, x32, []float32{1, 1}); err != nil {
				t.Fatal(err)
			}
			for i := range 2 {
				checkPoint(t, k.op, "float64", x64[i], y64[i], d64[i])
				checkPoint(t, k.op, "float32", float64(x32[i]), float64(y32[i]), float64(d32[i]))
			}
			// Monotone on [monotoneAt, +Inf).
			lo, hi := min(a, b), max(a, b)
			if lo >= k.monotoneAt && lo == lo && hi == hi {
				ys := make([]float64, 2)
				if err := k.fwd64(ys, []float64{lo, hi}); err != nil {
					t.Fatal(err)
				}
				if ys[0] > ys[1] {
					t.Errorf("%s not monotone: f(%g) = %g > f(%g) = %g", k.op, lo, ys[0], hi, ys[1])
				}
			}
			// Derivative against a central difference where the function
			// is smooth at the scale of the step.
			if math.Abs(a) < 50 && !(k.op == "relu" && math.Abs(a) < 1e-3) {
				h := 1e-5 * math.Max(1, math.Abs(a))
				ys := make([]float64, 2)
				if err := k.fwd64(ys, []float64{a + h, a - h}); err != nil {
					t.Fatal(err)
				}
				fd := (ys[0] - ys[1]) / (2 * h)
				if math.Abs(fd-d64[0]) > 1e-6*(1+math.Abs(d64[0])) {
					t.Errorf("%s′(%g) = %.12g, central difference %.12g", k.op, a, d64[0], fd)
				}
			}
		}
	})
}

func checkPoint(t *testing.T, op, dtype string, x, y, d float64) {
	t.Helper()
	switch {
	case math.IsNaN(x):
		if !math.IsNaN(y) {
			t.Errorf("%s %s(NaN) = %g, want NaN", dtype, op, y)
		}
	case math.IsInf(x, 0):
	default:
		if math.IsNaN(y) || math.IsInf(y, 0) || math.IsNaN(d) || math.IsInf(d, 0) {
			t.Errorf("%s %s(%g) = %g, derivative %g: not finite", dtype, op, x, y, d)
		}
	}
}
