package kernel

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/actq/actq/internal/numtest"
)

// fuzzRow decodes a softmax fuzz input into one slice x of at most 64
// elements and a finite upstream gradient dy. Each element takes 5 bytes
// of data: a little-endian int32 mantissa m and an int8 d, giving
// x_j = m·2^exp (exp clamped to [−1130, 1100], so that float64 values run
// from subnormals to overflow) and dy_j = d/8. Bit j of masked makes x_j
// −Inf (an additive mask); nanAt and infAt, when in 1..n, make element
// nanAt−1 NaN and element infAt−1 +Inf. Mostly the fuzzer sees clean
// rows, with at most one NaN and one +Inf.
func fuzzRow(data []byte, exp int16, masked uint64, nanAt, infAt uint8) (x, dy []float64, e int) {
	e = min(max(int(exp), -1130), 1100)
	n := min(len(data)/5, 64)
	x, dy = make([]float64, n), make([]float64, n)
	for j := range n {
		b := data[5*j : 5*j+5]
		x[j] = math.Ldexp(float64(int32(binary.LittleEndian.Uint32(b))), e)
		dy[j] = float64(int8(b[4])) / 8
		if masked>>j&1 == 1 {
			x[j] = math.Inf(-1)
		}
	}
	if i := int(nanAt) - 1; i >= 0 && i < n {
		x[i] = math.NaN()
	}
	if i := int(infAt) - 1; i >= 0 && i < n {
		x[i] = math.Inf(1)
	}
	return x, dy, e
}

// FuzzSoftmax checks the four softmax kernels on fuzzed slices (see
// fuzzRow), in both dtypes and, when the build and CPU have them, on the
// vector and the scalar code:
//
//   - no panic and no error;
//   - a slice with a NaN or +Inf gives NaN everywhere, forward and
//     backward; a fully masked slice gives zeros (log: −Inf) and a zero
//     gradient whatever dy holds;
//   - otherwise: values in [0, 1] summing to 1 within n·ε; masked entries
//     exactly 0 with gradient exactly 0 (log-softmax: −Inf, gradient dy);
//     forward and backward within the documented accuracy of the float64
//     textbook formulas; LogSoftmax ≤ 0 and equal to log(Softmax) where
//     Softmax is a normal number; finite gradients;
//   - an exact shift x + c gives bit-identical results;
//   - a slice's results do not depend on its neighbours (a NaN or +Inf
//     in one slice leaves the next alone), on the layout (contiguous rows
//     or strided columns), on whether other slices are processed (Axis Lo
//     and Hi), or on dst aliasing the input.
func FuzzSoftmax(f *testing.F) {
	row := func(ms ...int32) []byte {
		var b []byte
		for i, m := range ms {
			b = binary.LittleEndian.AppendUint32(b, uint32(m))
			b = append(b, byte(int8(3*i-7)))
		}
		return b
	}
	for _, s := range []struct {
		data         []byte
		exp          int16
		masked       uint64
		nanAt, infAt uint8
		shift        int32
	}{
		{row(1, 2, 3), 0, 0, 0, 0, 5},
		{row(0, 0, 0, 0, 0, 0, 0, 0, 0), 0, 0, 0, 0, -3},
		{row(-1000, 4, 17, 1<<30, -1<<31, 7, 7, 7, 9, 11, 0, -5, 1, 2, 3, 4, 5), -20, 0b1001, 0, 0, 1 << 20},
		{row(1, 2, 3, 4), 0, 0b1111, 0, 0, 1},               // fully masked
		{row(1, 2, 3, 4, 5), 0, 0b10110, 0, 0, 0},           // partly masked
		{row(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 0, 0, 3, 0, 0}, // NaN
		{row(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 0, 0, 0, 9, 0}, // +Inf
		{row(1, 2, 3), 0, 0b111, 2, 0, 0},                   // NaN among masked
		{row(3, -3, 100), 1000, 0, 0, 0, 0},                 // float32 overflow, float64 finite
		{row(3, -3, 100), 1100, 0, 0, 0, 0},                 // float64 overflow to ±Inf
		{row(1, 1<<30, 5), -1130, 0, 0, 0, 1},               // subnormals
		{row(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
			26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50,
			51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64), -3, 1 << 63, 0, 0, 7},
	} {
		f.Add(s.data, s.exp, s.masked, s.nanAt, s.infAt, s.shift)
	}
	f.Fuzz(func(t *testing.T, data []byte, exp int16, masked uint64, nanAt, infAt uint8, shift int32) {
		x, dy, e := fuzzRow(data, exp, masked, nanAt, infAt)
		if len(x) == 0 {
			return
		}
		c := math.Ldexp(float64(shift), e)
		defer setSoftmaxPath(true)
		var vec [4][]float32 // the vector path's float32 results
		for _, vector := range []bool{true, false} {
			setSoftmaxPath(vector)
			if vector && !vecSoftmax() {
				continue
			}
			out32 := fuzzSoftmax(t, to[float32](x), to[float32](dy), float32(c))
			fuzzSoftmax(t, x, dy, c)
			if vector {
				vec = out32
			} else if vec[0] != nil {
				compareVector(t, x, dy, vec, out32)
			}
		}
	})
}

// compareVector checks that the float32 vector and scalar paths agree:
// forward within 6 ULP or 1e-7 (each path's error bound, 2^−22 and 2^−23
// relative, added: at most 6 ULP at the top of a binade; 1e-7 covers
// log-softmax outputs near 0, where the error is that of log s, absolute);
// backward within the bound derived below.
//
// Each path runs the backward kernels on its own forward results, y^v and
// y^s (log-softmax: l^v and l^s), so the bound is what the forward
// difference moves in exact arithmetic plus each path's rounding errors.
// u = 2^−24 is float32's unit roundoff: a float32 operation gives the
// exact result times 1 + ε, |ε| ≤ u, or off by at most 2^−150 below the
// normal range. The float64 steps (sums of n < 2^16 terms, each within
// n·2^−53 of the exact sum; products and differences; the split of a
// float64 scalar into float32s hi + lo, whose residue is 2^−48 of it) and
// the products of two of the relative errors below are under 2^−32 of the
// size of the terms (1/256 of u), the last term of each bound.
//
// Softmax, dx_j = y_j·(dy_j − S) with S = Σ_k y_k·dy_k:
//
//   - the forward difference Δy = y^v − y^s moves the exact result by
//     Δy_j·(dy_j − S^v) − y^s_j·Σ_k Δy_k·dy_k: at most
//     |Δy_j|·|dy_j − S| + y_j·Σ_k |Δy_k|·|dy_k|;
//   - the scalar path computes S, dy_j − S and the product in float64 and
//     rounds once to float32: u·|dx^s_j| + 2^−150;
//   - the vector path (blocks of 8 lanes with AVX2, 16 with AVX-512; the
//     rest as the scalar path) takes S as float32s hi + lo and rounds
//     dy_j − hi, then − lo, then the product with y_j in float32:
//     u·y_j·(|dy_j| + |S|), u·y_j·|dy_j − S| and u·|dx^v_j| + 2^−150.
//
// The bound, with y_k the larger of y^v_k and y^s_k:
//
//	|Δy_j|·|dy_j − S| + y_j·Σ_k |Δy_k|·|dy_k|
//	  + u·(y_j·(|dy_j| + |S| + |dy_j − S|) + |dx^v_j| + |dx^s_j|) + 2^−149
//	  + 2^−32·y_j·(|dy_j| + Σ_k y_k·|dy_k|)
//
// The paths' y_k differ by an ULP or two even where both are within an
// ULP of the exact softmax; just above a power of two, such as y ≈ 0.25
// in the regression seeds, an ULP is 2^−23 relative. One such ULP on the
// terms, 2^−23·y_j·(|dy_j| + Σ_k y_k·|dy_k|), covers the first term only:
// every y_k moves S, and each path rounds dx_j.
//
// Log-softmax, dx_j = dy_j − e^(l_j)·T with T = Σ_k dy_k:
//
//   - the forward difference moves the exact result by
//     |e^(l^v_j) − e^(l^s_j)|·|T|;
//   - the scalar path computes e^(l_j) with expSingle (relative error
//     below 1e-9), the rest in float64, and rounds once:
//     1e-9·e^(l_j)·|T| + u·|dx^s_j| + 2^−150;
//   - the vector path computes e^(l_j) in float32 lanes (the activations'
//     exp: relative error at most 1.5u after rounding, the ceiling of
//     TestExpSum32Accuracy; 2^−150 absolute where it is subnormal), then
//     r = e·hi + dy_j and e·lo + r, −T = hi + lo, in two FMAs, each
//     rounded once: 1.5u·e|T| + u·(|dy_j| + e|T|) + u·|dx^v_j| + 2^−150·|T|.
//     Blocks with an l_j below −86 or above 0 take float64 lanes, whose
//     exp is more accurate, and round once: within the same bound.
//
// The bound, with E = e^max(l^v_j, l^s_j):
//
//	|e^(l^v_j) − e^(l^s_j)|·|T| + u·(2.5·E·|T| + |dy_j| + |dx^v_j| + |dx^s_j|)
//	  + 1e-9·E·|T| + 2^−149·(1 + |T|) + 2^−32·(|dy_j| + E·Σ_k |dy_k|)
//
// dy must hold float32 values, the kernels' input.
func compareVector(t *testing.T, x, dy []float64, vec, scalar [4][]float32) {
	t.Helper()
	for k, name := range []string{"Softmax", "LogSoftmax"} {
		for j, v := range vec[k] {
			s := scalar[k][j]
			if !numtest.Alike(float64(v), float64(s)) && numtest.ULP32(v, s) > 6 && !(math.Abs(float64(v-s)) <= 1e-7) {
				t.Errorf("x=%v: %s[%d]: vector %v, scalar %v", x, name, j, v, s)
			}
		}
	}

	const u = 0x1p-24
	n := len(dy)
	yMax, deltaY := make([]float64, n), make([]float64, n)    // y_k, |Δy_k|
	var sDot, sumAbsYDy, sumDeltaYDy, total, sumAbsDy float64 // S, Σ y·|dy|, Σ |Δy|·|dy|, T, Σ |dy|
	for k, d := range dy {
		yv, ys := float64(vec[0][k]), float64(scalar[0][k])
		yMax[k], deltaY[k] = max(yv, ys), math.Abs(yv-ys)
		sDot += ys * d
		sumAbsYDy += yMax[k] * math.Abs(d)
		sumDeltaYDy += deltaY[k] * math.Abs(d)
		total += d
		sumAbsDy += math.Abs(d)
	}
	for j, d := range dy {
		var tol [2]float64
		y, g := yMax[j], math.Abs(d-sDot)
		dv, ds := float64(vec[2][j]), float64(scalar[2][j])
		tol[0] = deltaY[j]*g + y*sumDeltaYDy +
			u*(y*(math.Abs(d)+math.Abs(sDot)+g)+math.Abs(dv)+math.Abs(ds)) + 0x1p-149 +
			0x1p-32*y*(math.Abs(d)+sumAbsYDy)

		lv, ls := float64(vec[1][j]), float64(scalar[1][j])
		e := math.Exp(max(lv, ls))
		dv, ds = float64(vec[3][j]), float64(scalar[3][j])
		tol[1] = math.Abs(math.Exp(lv)-math.Exp(ls))*math.Abs(total) +
			u*(2.5*e*math.Abs(total)+math.Abs(d)+math.Abs(dv)+math.Abs(ds)) +
			1e-9*e*math.Abs(total) + 0x1p-149*(1+math.Abs(total)) +
			0x1p-32*(math.Abs(d)+e*sumAbsDy)

		for i, name := range []string{"SoftmaxGrad", "LogSoftmaxGrad"} {
			v, s := vec[2+i][j], scalar[2+i][j]
			if !numtest.Alike(float64(v), float64(s)) && !(math.Abs(float64(v)-float64(s)) <= tol[i]) {
				t.Errorf("x=%v dy=%v: %s[%d]: vector %v, scalar %v: differ by %.3g, bound %.3g",
					x, dy, name, j, v, s, math.Abs(float64(v)-float64(s)), tol[i])
			}
		}
	}
}

// fuzzSoftmax runs the checks of FuzzSoftmax on one slice in dtype T and
// returns the four kernels' results (y, log y, dx, log dx).
func fuzzSoftmax[T Float](t *testing.T, x, dy []T, c T) [4][]T {
	t.Helper()
	n := len(x)
	a := Along(n, n, 1)
	y, ly, dx, ldx := make([]T, n), make([]T, n), make([]T, n), make([]T, n)
	mustOK(t, Softmax(y, x, a))
	mustOK(t, LogSoftmax(ly, x, a))
	mustOK(t, SoftmaxGrad(dx, y, dy, a))
	mustOK(t, LogSoftmaxGrad(ldx, ly, dy, a))
	out := [4][]T{y, ly, dx, ldx}

	eps := 0x1p-52
	if is32[T]() {
		eps = eps32()
	}
	name := "float64"
	if is32[T]() {
		name = "float32"
	}
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("%s x=%v dy=%v: "+format, append([]any{name, x, dy}, args...)...)
	}

	checkSlice(t, fail, x, dy, out, eps)

	// An exact shift gives the same bits: the kernels see only x − max.
	if xc, ok := shifted(x, c); ok {
		yc, lyc := make([]T, n), make([]T, n)
		mustOK(t, Softmax(yc, xc, a))
		mustOK(t, LogSoftmax(lyc, xc, a))
		for i := range x {
			if !numtest.Alike(float64(yc[i]), float64(y[i])) || !numtest.Alike(float64(lyc[i]), float64(ly[i])) {
				fail("shifted by %v: y[%d] = %v, log y = %v; unshifted %v, %v", c, i, yc[i], lyc[i], y[i], ly[i])
			}
		}
	}

	checkLayouts(t, fail, x, dy, out, eps)
	return out
}

// checkSlice checks the four results out (y, log y, dx, log dx) of one
// slice x with upstream gradient dy.
func checkSlice[T Float](t *testing.T, fail func(string, ...any), x, dy []T, out [4][]T, eps float64) {
	t.Helper()
	n := len(x)
	a := Along(n, n, 1)
	y, ly, dx, ldx := out[0], out[1], out[2], out[3]
	var poisoned, allMasked = false, true // a NaN or +Inf; every entry −Inf
	for _, v := range x {
		poisoned = poisoned || math.IsNaN(float64(v)) || math.IsInf(float64(v), 1)
		allMasked = allMasked && math.IsInf(float64(v), -1)
	}
	switch {
	case poisoned:
		for k, o := range out {
			for i, v := range o {
				if !math.IsNaN(float64(v)) {
					fail("output %d [%d] = %v, want NaN (the slice holds a NaN or +Inf)", k, i, v)
				}
			}
		}
	case allMasked:
		nanDy := make([]T, n)
		for i := range nanDy {
			nanDy[i] = T(math.NaN())
		}
		gz, lgz := make([]T, n), make([]T, n)
		mustOK(t, SoftmaxGrad(gz, y, nanDy, a))
		mustOK(t, LogSoftmaxGrad(lgz, ly, nanDy, a))
		for i := range x {
			if y[i] != 0 || !math.IsInf(float64(ly[i]), -1) {
				fail("fully masked: y[%d] = %v, log y = %v, want 0 and −Inf", i, y[i], ly[i])
			}
			for _, g := range []T{dx[i], ldx[i], gz[i], lgz[i]} {
				if math.Float64bits(float64(g)) != 0 {
					fail("fully masked: gradient [%d] = %v, want +0 whatever dy holds", i, g)
				}
			}
		}
	default:
		checkLiveSlice(t, fail, x, dy, out, eps)
	}

}

// checkLiveSlice checks a slice with no NaN or +Inf and at least one
// entry above −Inf.
func checkLiveSlice[T Float](t *testing.T, fail func(string, ...any), x, dy []T, out [4][]T, eps float64) {
	t.Helper()
	n := len(x)
	y, ly, dx, ldx := out[0], out[1], out[2], out[3]
	x64, dy64, y64, ly64 := from(x), from(dy), from(y), from(ly)
	l := layout{1, n, 1}
	refY, refLY := refSoftmax(x64, l, false), refSoftmax(x64, l, true)
	refDx, refLDx := refGrad(y64, dy64, l, false), refGrad(ly64, dy64, l, true)
	abs, rel := tolFor[T]()

	var sum, sumYDy, sumDy float64
	for i := range x {
		sum += y64[i]
		sumYDy += math.Abs(y64[i] * dy64[i])
		sumDy += math.Abs(dy64[i])
	}
	if math.Abs(sum-1) > float64(n)*eps {
		fail("Σy = %v: off 1 by %.3g, more than n·ε = %.3g", sum, math.Abs(sum-1), float64(n)*eps)
	}
	for i, xi := range x64 {
		masked := math.IsInf(xi, -1)
		switch {
		case !(y[i] >= 0 && y[i] <= 1):
			fail("y[%d] = %v outside [0, 1]", i, y[i])
		case masked && (y[i] != 0 || !math.IsInf(ly64[i], -1)):
			fail("masked entry %d: y = %v, log y = %v, want 0 and −Inf", i, y[i], ly[i])
		case masked && (dx[i] != 0 || ldx[i] != dy[i]):
			fail("masked entry %d: dx = %v, log dx = %v, want 0 and dy = %v", i, dx[i], ldx[i], dy[i])
		case !masked && !(ly64[i] <= 0 && (!math.IsInf(ly64[i], 0) || overflows[T](refLY[i]))):
			// Finite unless x − max itself is beyond T's range.
			fail("log y[%d] = %v, want finite and ≤ 0", i, ly[i])
		case math.IsNaN(float64(dx[i])) || math.IsInf(float64(dx[i]), 0) ||
			math.IsNaN(float64(ldx[i])) || math.IsInf(float64(ldx[i]), 0):
			fail("gradient [%d] = %v, log %v: not finite", i, dx[i], ldx[i])
		}
		if d := math.Abs(y64[i] - refY[i]); d > abs+rel*math.Abs(refY[i]) {
			fail("y[%d] = %v, reference %v (error %.3g)", i, y[i], refY[i], d)
		}
		// Log-softmax: |l| = |x − m| + log s, each term with its own rounding;
		// the float32 exp adds 1e-9 to log s.
		if d := math.Abs(ly64[i] - refLY[i]); !masked && !overflows[T](refLY[i]) && d > 1e-9+abs+rel*math.Abs(refLY[i]) {
			fail("log y[%d] = %v, reference %v (error %.3g)", i, ly[i], refLY[i], d)
		}
		// log(Softmax) and LogSoftmax agree where y is a normal number: y has
		// relative error ε, its log absolute error ε.
		if y64[i] >= minNormal[T]() {
			if d := math.Abs(ly64[i] - math.Log(y64[i])); d > 2*eps*(1+math.Abs(ly64[i])) {
				fail("log y[%d] = %v, but log(Softmax) = %v (difference %.3g)", i, ly[i], math.Log(y64[i]), d)
			}
		}
		// Backward: the sums are float64; the float64 kernels' sum order
		// differs from the reference's, worth n roundings.
		k := 2.0
		if !is32[T]() {
			k = float64(n + 2)
		}
		if d := math.Abs(float64(dx[i]) - refDx[i]); d > abs+k*eps*y64[i]*(math.Abs(dy64[i])+sumYDy) {
			fail("dx[%d] = %v, reference %v (error %.3g)", i, dx[i], refDx[i], d)
		}
		// The float32 exps flush e^z to 0 below z = −104 (expSingle), where
		// e^z·Σdy may still be a float32 subnormal.
		flush := 0.0
		if is32[T]() {
			flush = math.Exp(expSingleMin) * sumDy
		}
		if d := math.Abs(float64(ldx[i]) - refLDx[i]); d > abs+flush+k*eps*(math.Abs(dy64[i])+math.Exp(ly64[i])*sumDy) {
			fail("log dx[%d] = %v, reference %v (error %.3g)", i, ldx[i], refLDx[i], d)
		}
	}
}

// overflows reports whether v lies at or beyond the edge of T's finite
// range, where T(v) may be ±Inf.
func overflows[T Float](v float64) bool {
	m := math.MaxFloat64
	if is32[T]() {
		m = math.MaxFloat32
	}
	return math.Abs(v) >= m*(1-0x1p-23)
}

// minNormal returns T's smallest positive normal number.
func minNormal[T Float]() float64 {
	if is32[T]() {
		return 0x1p-126
	}
	return 0x1p-1022
}

// shifted returns x + c if every finite element shifts exactly in T (and
// stays finite), so that x + c − max is the same number as x − max.
func shifted[T Float](x []T, c T) ([]T, bool) {
	if c == 0 || math.IsInf(float64(c), 0) {
		return nil, false
	}
	xc := make([]T, len(x))
	for i, v := range x {
		xc[i] = v + c
		if math.IsInf(float64(v), 0) || math.IsNaN(float64(v)) {
			continue
		}
		if math.IsInf(float64(xc[i]), 0) || xc[i]-c != v || xc[i]-v != c {
			return nil, false
		}
	}
	return xc, true
}

// checkLayouts runs the slice among others: as row 0 of 3 contiguous rows,
// whose row 1 is the slice with NaN and +Inf replaced by 1 and row 2 all
// NaN, with only rows 0 and 1 processed (Axis Lo, Hi); and as column 0 of
// an n×3 array with the same neighbours (the strided kernels). Rows 0 and
// 1 must pass checkSlice, row 2 must be untouched, and contiguous row 0
// must have exactly the bits of the slice alone (out). Last, dst aliasing
// the input gives the same bits as separate slices.
func checkLayouts[T Float](t *testing.T, fail func(string, ...any), x, dy []T, out [4][]T, eps float64) {
	t.Helper()
	n := len(x)
	clean := make([]T, n)
	for i, v := range x {
		clean[i] = v
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 1) {
			clean[i] = 1
		}
	}
	for _, inner := range []int{1, 3} {
		// Element j of slice k sits at at(k, j).
		at := func(k, j int) int { return k*n + j }
		if inner == 3 {
			at = func(k, j int) int { return 3*j + k }
		}
		xs, dys := make([]T, 3*n), make([]T, 3*n)
		for j := range n {
			xs[at(0, j)], xs[at(1, j)], xs[at(2, j)] = x[j], clean[j], T(math.NaN())
			dys[at(0, j)], dys[at(1, j)], dys[at(2, j)] = dy[j], dy[j], dy[j]
		}
		a := Axis{N: n, Inner: inner, Lo: 0, Hi: 2}
		const sentinel = 12345
		var res [4][]T
		for k := range res {
			res[k] = make([]T, 3*n)
			for i := range res[k] {
				res[k][i] = sentinel
			}
		}
		mustOK(t, Softmax(res[0], xs, a))
		mustOK(t, LogSoftmax(res[1], xs, a))
		mustOK(t, SoftmaxGrad(res[2], res[0], dys, a))
		mustOK(t, LogSoftmaxGrad(res[3], res[1], dys, a))
		for slice, in := range [][]T{x, clean} {
			var got [4][]T
			for k := range res {
				got[k] = make([]T, n)
				for j := range n {
					got[k][j] = res[k][at(slice, j)]
					if res[k][at(2, j)] != sentinel {
						fail("inner=%d output %d: slice 2, outside [Lo, Hi), was written", inner, k)
					}
				}
			}
			sub := func(format string, args ...any) {
				t.Helper()
				fail("inner=%d slice %d %v: "+format, append([]any{inner, slice, in}, args...)...)
			}
			checkSlice(t, sub, in, dy, got, eps)
			if inner == 1 && slice == 0 {
				for k := range got {
					for j := range n {
						if !numtest.Alike(float64(got[k][j]), float64(out[k][j])) {
							sub("output %d [%d] = %v beside other rows, %v alone", k, j, got[k][j], out[k][j])
						}
					}
				}
			}
		}
	}
	// In place: dst = x forward, dst = y or dy backward.
	a := Along(n, n, 1)
	y, ly := append([]T(nil), x...), append([]T(nil), x...)
	mustOK(t, Softmax(y, y, a))
	mustOK(t, LogSoftmax(ly, ly, a))
	dx, ldx := append([]T(nil), y...), append([]T(nil), dy...)
	mustOK(t, SoftmaxGrad(dx, dx, dy, a))
	mustOK(t, LogSoftmaxGrad(ldx, ly, ldx, a))
	for k, got := range [][]T{y, ly, dx, ldx} {
		for j := range got {
			if !numtest.Alike(float64(got[j]), float64(out[k][j])) {
				fail("in place: output %d [%d] = %v, out of place %v", k, j, got[j], out[k][j])
			}
		}
	}
}
