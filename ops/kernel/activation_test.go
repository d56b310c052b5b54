package kernel

import (
	"errors"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/actq/actq/internal/numtest"
)

// activationKernels lists the four activations' kernels by the op name the
// golden generator uses.
var activationKernels = []struct {
	op         string
	fwd32      func(dst, x []float32) error
	grad32     func(dst, x, dy []float32) error
	fwd64      func(dst, x []float64) error
	grad64     func(dst, x, dy []float64) error
	monotoneAt float64 // the function increases on [monotoneAt, +Inf)
}{
	{"gelu", GELU[float32], GELUGrad[float32], GELU[float64], GELUGrad[float64], -0.7517915},
	{"gelu_tanh", GELUTanh[float32], GELUTanhGrad[float32], GELUTanh[float64], GELUTanhGrad[float64], -0.7522},
	{"silu", SiLU[float32], SiLUGrad[float32], SiLU[float64], SiLUGrad[float64], -1.2784645},
	{"relu", ReLU[float32], ReLUGrad[float32], ReLU[float64], ReLUGrad[float64], 0},
}

// TestActivationGoldens compares forward and backward kernels with
// PyTorch 1.13's torch.nn.functional (testdata/activations.json, written by
// scripts/goldens/gen_activations.py) within the API contract's tolerance.
//
// Where float32 PyTorch is itself outside the tolerance of PyTorch's float64
// result on the same input (the cancellation of 1+erf and 1−tanh² in the
// negative tail), the contract lets us be more accurate: such points must
// instead be within tolerance of the float64 result.
func TestActivationGoldens(t *testing.T) {
	forEachPath(t, func(t *testing.T, _ bool) {
		golden, err := numtest.ReadGolden(filepath.Join("..", "..", "testdata", "activations.json"))
		if err != nil {
			t.Fatal(err)
		}
		worst := map[string]float64{}
		moreAccurate := map[string]int{}
		for _, k := range activationKernels {
			cases := 0
			for ci := range golden.Cases {
				c := &golden.Cases[ci]
				if c.Op != k.op {
					continue
				}
				cases++
				tol := numtest.ContractTol(c.Dtype)
				x := mustF64(t, c, "x")
				gotY, gotDx := runActivation(t, k.op, c.Dtype, x, mustF64(t, c, "dy"))
				for _, out := range []struct {
					what string
					got  []float64
				}{{"y", gotY}, {"dx", gotDx}} {
					want := mustF64(t, c, out.what)
					var ref64 []float64
					if c.Dtype == "float32" {
						ref64 = mustF64(t, c, out.what+"64")
					}
					key := c.Op + "/" + c.Dtype + "/" + out.what
					for i, got := range out.got {
						e := tol.Excess(got, want[i])
						if e > 1 && ref64 != nil && tol.Excess(want[i], ref64[i]) > 1 {
							moreAccurate[key]++
							e = tol.Excess(got, ref64[i])
						}
						worst[key] = math.Max(worst[key], e)
						if e > 1 {
							t.Errorf("%s: %s[%d] at x=%g: got %.9g, PyTorch %.9g", c.Name, out.what, i, x[i], got, want[i])
						}
					}
				}
			}
			if cases == 0 {
				t.Errorf("no golden cases for %s", k.op)
			}
		}
		for _, key := range slices.Sorted(maps.Keys(worst)) {
			e := worst[key]
			t.Logf("%-22s largest error %.3f of the tolerance; %d points where float32 PyTorch is off and we match float64", key, e, moreAccurate[key])
		}
	})
}

func mustF64(t *testing.T, c *numtest.Case, name string) []float64 {
	t.Helper()
	v, err := c.F64(name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// runActivation applies the kernels for op in the given dtype.
func runActivation(t *testing.T, op, dtype string, x, dy []float64) (y, dx []float64) {
	t.Helper()
	for _, k := range activationKernels {
		if k.op != op {
			continue
		}
		if dtype == "float64" {
			y, dx = make([]float64, len(x)), make([]float64, len(x))
			if err := k.fwd64(y, x); err != nil {
				t.Fatal(err)
			}
			if err := k.grad64(dx, x, dy); err != nil {
				t.Fatal(err)
			}
			return y, dx
		}
		x32, dy32 := to32(x), to32(dy)
		y32, dx32 := make([]float32, len(x)), make([]float32, len(x))
		if err := k.fwd32(y32, x32); err != nil {
			t.Fatal(err)
		}
		if err := k.grad32(dx32, x32, dy32); err != nil {
			t.Fatal(err)
		}
		return to64(y32), to64(dx32)
	}
	t.Fatalf("unknown op %q", op)
	return nil, nil
}

func to32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

func to64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// TestActivationValues checks values computed with mpmath to 12 or more
// digits.
func TestActivationValues(t *testing.T) {
	defer func() { vecLevel = bestLevel }()
	for _, tc := range []struct {
		op      string
		x, y, d float64 // d: derivative, NaN when not tabulated
		rel     float64 // relative tolerance: the table's digits
	}{
		{"gelu", 1, 0.841344746069, 1.08331547059, 2e-9},
		{"gelu", -1, -0.158655253931, -0.0833154705877, 2e-9},
		{"gelu", 0.5, 0.345731230637, math.NaN(), 2e-9},
		{"gelu", 2, 1.9544997361, math.NaN(), 1e-8},
		{"gelu", 3, 2.99595030591, math.NaN(), 2e-9},
		{"gelu", -3, -0.00404969409489, math.NaN(), 2e-9},
		{"gelu", -6, -5.91952587e-9, math.NaN(), 1e-8},
		{"gelu", -5.5, -1.04442594e-7, math.NaN(), 1e-8},
		{"gelu", 0, 0, 0.5, 2e-9},
		{"gelu_tanh", -1, -0.158808009392, -0.0829640838458, 2e-9},
		{"gelu_tanh", 1, 0.841191990608, 1.08296408385, 2e-9},
		{"gelu_tanh", 2, 1.95459769409, math.NaN(), 2e-9},
		{"gelu_tanh", 3, 2.99636260792, math.NaN(), 2e-9},
		{"gelu_tanh", -3, -0.00363739208177, math.NaN(), 2e-9},
		{"silu", 1, 0.73105857863, 0.927670511871, 1e-8},
		{"silu", -1, -0.26894142137, 0.0723294881285, 1e-8},
		{"silu", 0, 0, 0.5, 2e-9},
	} {
		for _, dtype := range []string{"float64", "float32", "float32 avx2", "float32 avx512"} {
			tol := numtest.Tol{Rel: tc.rel}
			switch dtype {
			case "float32":
				vecLevel = vecNone
				tol = numtest.Tol{Rel: 6e-8} // half a float32 ULP plus the table's digits
			case "float32 avx2", "float32 avx512":
				vecLevel = map[string]vecISA{"float32 avx2": vecAVX2, "float32 avx512": vecAVX512}[dtype]
				if vecLevel > bestLevel {
					continue
				}
				dtype = "float32"
				tol = numtest.Tol{Rel: 3.6e-7} // the vector kernels' 3 ULP
			}
			y, d := runActivation(t, tc.op, dtype, []float64{tc.x}, []float64{1})
			if !tol.Close(y[0], tc.y) {
				t.Errorf("%s %s(%g) = %.12g, want %.12g", dtype, tc.op, tc.x, y[0], tc.y)
			}
			if !math.IsNaN(tc.d) && !tol.Close(d[0], tc.d) {
				t.Errorf("%s %s′(%g) = %.12g, want %.12g", dtype, tc.op, tc.x, d[0], tc.d)
			}
		}
	}
}

// TestActivationSpecialCases checks ±0, ±Inf and NaN, with the sign of zero.
func TestActivationSpecialCases(t *testing.T) {
	forEachPath(t, func(t *testing.T, _ bool) {
		inf, nan := math.Inf(1), math.NaN()
		negZero := math.Copysign(0, -1)
		for _, tc := range []struct {
			op      string
			x, y, d float64
		}{
			{"gelu", inf, inf, 1}, {"gelu", -inf, negZero, 0}, {"gelu", 0, 0, 0.5}, {"gelu", negZero, negZero, 0.5}, {"gelu", nan, nan, nan},
			{"gelu", -40, negZero, negZero}, {"gelu", 40, 40, 1},
			{"gelu_tanh", inf, inf, 1}, {"gelu_tanh", -inf, negZero, 0}, {"gelu_tanh", 0, 0, 0.5}, {"gelu_tanh", negZero, negZero, 0.5}, {"gelu_tanh", nan, nan, nan},
			{"gelu_tanh", -1e200, negZero, 0}, {"gelu_tanh", 1e200, 1e200, 1},
			{"silu", inf, inf, 1}, {"silu", -inf, negZero, 0}, {"silu", 0, 0, 0.5}, {"silu", negZero, negZero, 0.5}, {"silu", nan, nan, nan},
			{"silu", -800, negZero, 0}, {"silu", 800, 800, 1},
			{"relu", inf, inf, 1}, {"relu", -inf, 0, 0}, {"relu", 0, 0, 0}, {"relu", negZero, 0, 0}, {"relu", nan, nan, 1},
			{"relu", 1e-300, 1e-300, 1}, {"relu", -1e-300, 0, 0},
		} {
			for _, dtype := range []string{"float64", "float32"} {
				x, want, wantD := tc.x, tc.y, tc.d
				if dtype == "float32" {
					if x != float64(float32(x)) {
						continue // not a float32 value
					}
					want, wantD = float64(float32(want)), float64(float32(wantD))
				}
				y, d := runActivation(t, tc.op, dtype, []float64{x}, []float64{1})
				if !numtest.Alike(y[0], want) {
					t.Errorf("%s %s(%g) = %g, want %g", dtype, tc.op, x, y[0], want)
				}
				if !numtest.Alike(d[0], wantD) && !(wantD == 0 && d[0] == 0) {
					t.Errorf("%s %s′(%g) = %g, want %g", dtype, tc.op, x, d[0], wantD)
				}
			}
		}
	})
}

// TestReLUGradAtZeroIsZero pins the convention ReLU′(0) = 0 (PyTorch, JAX);
// Gorgonia's Rectify gives 1 (see ops.TestReLUGradAtZeroUnlikeRectify).
func TestReLUGradAtZeroIsZero(t *testing.T) {
	dst := []float64{7, 7}
	if err := ReLUGrad(dst, []float64{0, math.Copysign(0, -1)}, []float64{1, 1}); err != nil {
		t.Fatal(err)
	}
	if dst[0] != 0 || dst[1] != 0 {
		t.Fatalf("ReLU′(±0) = %v, want [0 0]", dst)
	}
}

// TestFloat32MatchesFloat64 sweeps float32 inputs across the range where the
// functions are not trivial and checks each float32 kernel against the
// float64 one: ReLU exactly, the others within the bounds their docs state
// for the path that runs (fastKernels; dy = 1 for the backward passes).
// TestFastKernelErrors checks the same bounds on a finer, per-binade grid.
func TestFloat32MatchesFloat64(t *testing.T) {
	const n = 1 << 18
	x32 := make([]float32, n)
	for i := range x32 {
		x32[i] = float32(-30 + 60*float64(i)/float64(n-1))
	}
	x64, ones32 := to64(x32), make([]float32, n)
	ones64 := make([]float64, n)
	for i := range ones32 {
		ones32[i], ones64[i] = 1, 1
	}
	y32, y64 := make([]float32, n), make([]float64, n)
	forEachPath(t, func(t *testing.T, vector bool) {
		for _, k := range activationKernels {
			for _, pass := range []string{"forward", "backward"} {
				var err32, err64 error
				name := k.op
				if pass == "forward" {
					err32, err64 = k.fwd32(y32, x32), k.fwd64(y64, x64)
				} else {
					err32, err64 = k.grad32(y32, x32, ones32), k.grad64(y64, x64, ones64)
					name += "′"
				}
				if err := errors.Join(err32, err64); err != nil {
					t.Fatal(err)
				}
				b := fastBound{} // ReLU: exact
				for _, fk := range fastKernels {
					if fk.name == name {
						b = fk.portable
						if vector {
							b = fk.vector
						}
					}
				}
				var s errStats
				for i := range y32 {
					checkAgainst(&s, name, b, x32[i], y32[i], y64[i])
				}
				if s.fails > 0 {
					t.Errorf("%s %s: %d results outside %g ULP or %g abs; first: %s", k.op, pass, s.fails, b.ULP, b.Abs, s.firstFail)
				}
			}
		}
	})
}

// TestMonotone checks that each activation is non-decreasing to the right of
// its minimum, in both dtypes, on a dense grid.
func TestMonotone(t *testing.T) {
	forEachPath(t, func(t *testing.T, _ bool) {
		const n = 100000
		for _, k := range activationKernels {
			x := make([]float64, n)
			for i := range x {
				x[i] = k.monotoneAt + 0.001 + 20*float64(i)/n
			}
			y := make([]float64, n)
			if err := k.fwd64(y, x); err != nil {
				t.Fatal(err)
			}
			y32 := make([]float32, n)
			if err := k.fwd32(y32, to32(x)); err != nil {
				t.Fatal(err)
			}
			for i := 1; i < n; i++ {
				if y[i] < y[i-1] || y32[i] < y32[i-1] {
					t.Fatalf("%s decreases at x=%g", k.op, x[i])
				}
			}
		}
	})
}

func TestLengthMismatchIsAnError(t *testing.T) {
	for _, k := range activationKernels {
		if err := k.fwd32(make([]float32, 3), make([]float32, 4)); !errors.Is(err, ErrLength) {
			t.Errorf("%s forward: got %v, want ErrLength", k.op, err)
		}
		if err := k.grad64(make([]float64, 3), make([]float64, 3), make([]float64, 2)); !errors.Is(err, ErrLength) {
			t.Errorf("%s backward: got %v, want ErrLength", k.op, err)
		}
	}
}

func TestInPlace(t *testing.T) {
	forEachPath(t, func(t *testing.T, _ bool) {
		for _, k := range activationKernels {
			x := []float64{-2, -0.5, 0, 0.3, 4}
			want := make([]float64, len(x))
			if err := k.fwd64(want, x); err != nil {
				t.Fatal(err)
			}
			if err := k.fwd64(x, x); err != nil {
				t.Fatal(err)
			}
			for i := range x {
				if !numtest.Alike(x[i], want[i]) {
					t.Errorf("%s in place: got %v, want %v", k.op, x, want)
					break
				}
			}
			// float32, 37 elements: two full vectors of 16 and a tail, forward
			// and backward (dst over x, and dst over dy).
			x32, dy32 := make([]float32, 37), make([]float32, 37)
			for i := range x32 {
				x32[i], dy32[i] = float32(i)/3-6, float32(i%5)-2
			}
			wantY, wantD := make([]float32, 37), make([]float32, 37)
			if err := errors.Join(k.fwd32(wantY, x32), k.grad32(wantD, x32, dy32)); err != nil {
				t.Fatal(err)
			}
			gotD := slices.Clone(dy32)
			if err := errors.Join(k.grad32(gotD, x32, gotD), k.fwd32(x32, x32)); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(x32, wantY) || !slices.Equal(gotD, wantD) {
				t.Errorf("%s float32 in place: got %v and %v, want %v and %v", k.op, x32, gotD, wantY, wantD)
			}
		}
	})
}

func TestKernelsDoNotAllocate(t *testing.T) {
	forEachPath(t, func(t *testing.T, _ bool) {
		x, dy, dst := make([]float32, 1024), make([]float32, 1024), make([]float32, 1024)
		for _, k := range activationKernels {
			if a := testing.AllocsPerRun(20, func() { _ = k.fwd32(dst, x); _ = k.grad32(dst, x, dy) }); a != 0 {
				t.Errorf("%s allocates %v times per call", k.op, a)
			}
		}
	})
}
