package kernel

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/actq/actq/internal/numtest"
)

// TestSoftmaxRowHelpersMatchScalar calls each float32 row helper of
// softmax.go on its vector routine (the AVX2 assembly in the default build,
// AVX-512 with GOEXPERIMENT=simd) and on the scalar code, on rows of every
// length from 0 to 70 (every tail, before and after whole blocks) and long
// ones, with offsets of ±1e4, masked (−Inf) entries, a NaN or a +Inf, and
// checks that they agree within the bounds of the assembly's float32 lanes
// (softmax_amd64.go; the AVX-512 code has the same arithmetic, without the
// blocks in float64 lanes and the pairwise sum):
//
//   - rowMax exactly (the largest non-NaN element), unless the row holds
//     a NaN: the AVX-512 code's VMAXPS may then drop other elements, which
//     is harmless since the NaN makes the whole row NaN (softmaxRow; the
//     assembly skips NaN as the scalar loop does);
//   - rowExpSum's terms within 2 float32 ULPs (masked terms exactly +0)
//     and its sum within 2^−22 relative (the float32 exp's error,
//     1.25·2^−24, and, when storing, the pairwise float32 additions',
//     2^−24; the scalar exp's is 5.8e-10);
//   - rowScale within 1 ULP and rowLogOut within 2 ULPs (the scalar code
//     rounds once, the two-float arithmetic of the float32 lanes at most
//     three times, each within half an ULP of the result);
//   - rowGradOut within 2 ULPs, or 2^−46·|y_j·s| where dy_j − s cancels
//     (s's low half is itself rounded to float32);
//   - rowDot and rowSum within n·2^−52 of the sum of the terms' magnitudes
//     (only the order of the float64 sums differs);
//   - rowLogGradOut within 2^−23·(|dy_j| + 2·e^(y_j)·|total|) (the exps
//     differ by 1.25·2^−24 relative, and each result rounds to float32);
//   - expInPlace within 1e-8 relative, with the special values exactly.
//
// NaN must match NaN throughout.
func TestSoftmaxRowHelpersMatchScalar(t *testing.T) {
	defer setSoftmaxPath(true)
	if !vecSoftmax() {
		t.Skip("no vector softmax in this build or on this CPU")
	}
	r := rand.New(rand.NewPCG(23, 24))
	lengths := []int{255, 256, 1000, 1031, 4096 + 3}
	for n := 0; n <= 70; n++ {
		lengths = append(lengths, n)
	}
	inf := float32(math.Inf(1))
	for _, n := range lengths {
		for _, kind := range []string{"plain", "+1e4", "-1e4", "masked", "NaN", "+Inf", "wide", "underflow"} {
			x, dy := make([]float32, n), make([]float32, n)
			for i := range x {
				x[i] = float32(3 * r.NormFloat64())
				dy[i] = float32(r.NormFloat64())
			}
			switch kind {
			case "+1e4", "-1e4":
				off := float32(1e4)
				if kind == "-1e4" {
					off = -1e4
				}
				for i := range x {
					x[i] += off
				}
			case "masked":
				for i := range x {
					if r.IntN(3) == 0 {
						x[i] = -inf
					}
				}
			case "NaN":
				// NaNs with payload bits in the low mantissa, which the
				// float32 exp's exponent arithmetic could turn into a
				// number if a NaN lane reached it.
				if n > 0 {
					x[r.IntN(n)] = math.Float32frombits(0x7fc00001)
					x[r.IntN(n)] = math.Float32frombits(0xffc0a5a5)
				}
			case "+Inf":
				if n > 0 {
					x[r.IntN(n)] = inf
				}
			case "underflow":
				// x − max in [−110, −80]: exps near and below float32's
				// smallest normal, and terms that round to 0, next to 1.
				for i := range x {
					x[i] = float32(-80 - 30*r.Float64())
				}
				if n > 0 {
					x[r.IntN(n)] = 0
				}
			case "wide":
				for i := range x {
					x[i] = float32((2*r.Float64() - 1) * math.Pow(10, float64(r.IntN(39))))
				}
			}
			name := fmt.Sprintf("n=%d %s", n, kind)
			compareRowHelpers(t, name, x, dy)
		}
	}
}

// compareLogGradOut checks rowLogGradOut's vector routine against the scalar
// code on log-probabilities y (see TestSoftmaxRowHelpersMatchScalar).
func compareLogGradOut(t *testing.T, name string, y, dy []float32) {
	t.Helper()
	n := len(y)
	// 1.75 splits with lo = 0, 1 − 2^−30 with lo of the other sign than hi;
	// 1e39 is beyond float32 (the scalar code).
	for _, total := range []float64{0, 1.75, 1 - 0x1p-30, -3e3, 1e39} {
		v, s := onPaths(func() []float32 {
			d := make([]float32, n)
			rowLogGradOut(d, y, dy, total)
			return d
		})
		for i := range v {
			e := math.Exp(float64(y[i]))
			tol := 0x1p-23 * (math.Abs(float64(dy[i])) + 2*e*math.Abs(total))
			if !numtest.Alike(float64(v[i]), float64(s[i])) && !(math.Abs(float64(v[i]-s[i])) <= tol) {
				t.Errorf("%s rowLogGradOut(total=%g)[%d]: y=%v dy=%v: vector %v, scalar %v", name, total, i, y[i], dy[i], v[i], s[i])
			}
			if math.IsInf(float64(y[i]), -1) && v[i] != dy[i] {
				t.Errorf("%s rowLogGradOut(total=%g)[%d]: masked: vector %v, want dy = %v", name, total, i, v[i], dy[i])
			}
		}
	}
}

// rowExpSumScalar stores rowExpSum's terms from the scalar code.
func rowExpSumScalar(dst, x []float32, m float64) {
	defer setSoftmaxPath(true)
	setSoftmaxPath(false)
	rowExpSum(dst, x, m, true)
}

// onPaths returns f's results on the vector and on the scalar path.
func onPaths[R any](f func() R) (vec, scalar R) {
	defer setSoftmaxPath(true)
	setSoftmaxPath(true)
	vec = f()
	setSoftmaxPath(false)
	return vec, f()
}

func compareRowHelpers(t *testing.T, name string, x, dy []float32) {
	t.Helper()
	n := len(x)
	// close checks v against s within ulps float32 ULPs or abs(i).
	close := func(what string, v, s []float32, ulps uint32, abs func(i int) float64) {
		t.Helper()
		for i := range v {
			if numtest.Alike(float64(v[i]), float64(s[i])) || numtest.ULP32(v[i], s[i]) <= ulps ||
				abs != nil && math.Abs(float64(v[i])-float64(s[i])) <= abs(i) {
				continue
			}
			t.Errorf("%s %s[%d]: vector %v, scalar %v, more than %d ULPs apart", name, what, i, v[i], s[i], ulps)
			return
		}
	}
	sameNaN := func(v, s float64) bool { return math.IsNaN(v) && math.IsNaN(s) }

	// The maximum, and the shift softmaxRow takes from it.
	hasNaN := false
	for _, v := range x {
		hasNaN = hasNaN || v != v
	}
	mv, ms := onPaths(func() float32 { return rowMax(x) })
	if mv != ms && !hasNaN {
		t.Errorf("%s rowMax: vector %v, scalar %v", name, mv, ms)
	}
	m := float64(ms)
	if math.IsInf(m, -1) {
		m = 0
	}

	// The exps and their sum, stored and not.
	for _, store := range []bool{true, false} {
		type res struct {
			e []float32
			s float64
		}
		v, s := onPaths(func() res {
			e := make([]float32, n)
			return res{e, rowExpSum(e, x, m, store)}
		})
		if !(sameNaN(v.s, s.s) || math.Abs(v.s-s.s) <= 0x1p-22*math.Abs(s.s)) {
			t.Errorf("%s rowExpSum(store=%v): vector %v, scalar %v", name, store, v.s, s.s)
		}
		for i := range v.e {
			a, b := v.e[i], s.e[i]
			if !store {
				if a != 0 || b != 0 {
					t.Errorf("%s rowExpSum(store=false) wrote dst[%d]: vector %v, scalar %v", name, i, a, b)
				}
				continue
			}
			if math.IsInf(float64(x[i]), -1) && (math.Float32bits(a) != 0 || math.Float32bits(b) != 0) {
				t.Errorf("%s rowExpSum: masked term %d: vector %v, scalar %v, want +0", name, i, a, b)
			}
			if !numtest.Alike(float64(a), float64(b)) && numtest.ULP32(a, b) > 2 {
				t.Errorf("%s rowExpSum: term %d: vector %v, scalar %v, more than 2 ULPs apart", name, i, a, b)
			}
		}
	}

	// Scaling (of what it scales: the exps, in [0, 1] or NaN, here the
	// scalar code's), log-softmax output and softmax gradient.
	exps := make([]float32, n)
	rowExpSumScalar(exps, x, m)
	for _, inv := range []float64{0, 1.0 / 3, 1e-30} {
		v, s := onPaths(func() []float32 {
			d := append([]float32(nil), exps...)
			rowScale(d, inv)
			return d
		})
		close(fmt.Sprintf("rowScale(%g)", inv), v, s, 1, nil)
	}
	for _, lse := range []float64{0, 2.5, math.Inf(1)} {
		v, s := onPaths(func() []float32 {
			d := make([]float32, n)
			rowLogOut(d, x, m, lse)
			return d
		})
		close(fmt.Sprintf("rowLogOut(lse=%g)", lse), v, s, 2, nil)
	}
	for _, sv := range []float64{0, -0.7, 1e4, 1e39, math.Inf(1)} { // 1e39: beyond float32, the scalar code
		v, s := onPaths(func() []float32 {
			d := make([]float32, n)
			rowGradOut(d, x, dy, sv)
			return d
		})
		close(fmt.Sprintf("rowGradOut(s=%g)", sv), v, s, 2, func(i int) float64 {
			return 0x1p-46 * math.Abs(float64(x[i])*sv)
		})
	}

	// The float64 sums: only their order differs.
	var absDot, absSum float64
	for i := range x {
		absDot += math.Abs(float64(x[i]) * float64(dy[i]))
		absSum += math.Abs(float64(x[i]))
	}
	tolSum := func(abs float64) float64 { return float64(n+1) * 0x1p-52 * abs }
	dv, ds := onPaths(func() float64 { return rowDot(x, dy) })
	if !(sameNaN(dv, ds) || dv == ds || math.Abs(dv-ds) <= tolSum(absDot)) {
		t.Errorf("%s rowDot: vector %v, scalar %v", name, dv, ds)
	}
	sv, ss := onPaths(func() float64 { return rowSum(x) })
	if !(sameNaN(sv, ss) || sv == ss || math.Abs(sv-ss) <= tolSum(absSum)) {
		t.Errorf("%s rowSum: vector %v, scalar %v", name, sv, ss)
	}

	// The log-softmax gradient, on log-probabilities y = x − max − 1 (−Inf
	// where x is, NaN where x is NaN or +Inf), and on y = x − max + 0.5 and
	// + 90, which are not all ≤ 0 as log-probabilities are (from 88.7,
	// e^y is +Inf; the last set also holds a +Inf).
	y := make([]float32, n)
	for _, shift := range []float64{-1, 0.5, 90} {
		for i, v := range x {
			y[i] = float32(float64(v) - m + shift)
		}
		if shift == 90 && n > 0 {
			y[n/2] = float32(math.Inf(1))
		}
		compareLogGradOut(t, name, y, dy)
	}

	// The exp of the strided kernels, on x − m widened.
	zv, zs := onPaths(func() []float64 {
		z := make([]float64, n)
		for i, v := range x {
			z[i] = float64(v) - m
		}
		expInPlace[float32](z)
		return z
	})
	for i := range zv {
		a, b := zv[i], zs[i]
		if !(numtest.Alike(a, b) || math.Abs(a-b) <= 1e-8*b) {
			t.Errorf("%s expInPlace[%d] (z = %v): vector %v, scalar %v", name, i, float64(x[i])-m, a, b)
		}
	}
}

// TestExpSum32Accuracy checks the float32-lane exp of the vector softmax
// sum (EXPF8 after DIFF in the AVX2 assembly, expDiff16 with AVX-512)
// against math.Exp: every stored term within
// 1.5·2^−24 relative (the polynomial's error and the rounding to float32;
// softmax_amd64.go quotes the measured 1.25·2^−24), for x − m across
// [−86, 0] including values that float32 cannot hold exactly as x − m, and
// the sum within 2^−24 relative of the exact sum of the stored terms
// (the AVX2 code's pairwise float32 additions when storing; none without).
func TestExpSum32Accuracy(t *testing.T) {
	if !vecSoftmax() {
		t.Skip("no vector softmax in this build or on this CPU")
	}
	r := rand.New(rand.NewPCG(31, 32))
	const n = 1 << 14
	x, e := make([]float32, n), make([]float32, n)
	worst := 0.0
	for trial := range 64 {
		m := float32(0)
		if trial%2 == 1 {
			m = float32(100 * r.NormFloat64()) // x − m is then rounded in float32
		}
		for i := range x {
			x[i] = m - float32(86*r.Float64())
		}
		x[r.IntN(n)] = m
		_, s := expSumVec(e, x, float64(m), true)
		_, sNoStore := expSumVec(e[:0:0], x, float64(m), false)
		var exact float64
		for i, v := range x {
			want := math.Exp(float64(v) - float64(m))
			worst = max(worst, math.Abs(float64(e[i])-want)/want)
			exact += float64(e[i])
		}
		if d := math.Abs(s-exact) / exact; d > 0x1p-24 {
			t.Fatalf("trial %d: sum %v, exact sum of the terms %v: relative error %.3g", trial, s, exact, d)
		}
		if d := math.Abs(sNoStore-exact) / exact; d > 0x1p-40 {
			t.Fatalf("trial %d: sum without store %v, exact sum of the terms %v: relative error %.3g", trial, sNoStore, exact, d)
		}
	}
	if worst > 0x1.8p-24 {
		t.Errorf("largest relative error of a term %.3g·2^−24, want ≤ 1.5", worst/0x1p-24)
	}
	t.Logf("largest relative error of a term: %.3f·2^−24", worst/0x1p-24)
}
