package kernel

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/actq/actq/internal/numtest"
)

// layout is an array shape viewed as outer×n×inner around the softmax axis.
type layout struct{ outer, n, inner int }

func (l layout) size() int      { return l.outer * l.n * l.inner }
func (l layout) axis() Axis     { return Along(l.size(), l.n, l.inner) }
func (l layout) String() string { return fmt.Sprintf("%dx%dx%d", l.outer, l.n, l.inner) }

var layouts = []layout{
	{1, 1, 1}, {1, 3, 1}, {4, 7, 1}, {3, 1, 5}, {2, 5, 3}, {1, 9, 64}, {2, 4, 65},
	{3, 130, 1}, {2, 33, 130}, {5, 200, 2}, {1, 1000, 1},
}

// refSoftmax returns the softmax or log-softmax of x along l's axis,
// computed in float64 with math.Exp by the textbook formula: the reference
// the kernels are tested against.
func refSoftmax(x []float64, l layout, log bool) []float64 {
	y := make([]float64, len(x))
	for o := range l.outer {
		for k := range l.inner {
			at := func(j int) int { return o*l.n*l.inner + j*l.inner + k }
			m := math.Inf(-1)
			for j := range l.n {
				m = math.Max(m, x[at(j)])
			}
			var s float64
			for j := range l.n {
				s += math.Exp(x[at(j)] - m)
			}
			for j := range l.n {
				if log {
					y[at(j)] = (x[at(j)] - m) - math.Log(s)
				} else {
					y[at(j)] = math.Exp(x[at(j)]-m) / s
				}
			}
		}
	}
	return y
}

// refGrad returns the backward pass of softmax or log-softmax along l's
// axis from the float64 textbook formulas.
func refGrad(y, dy []float64, l layout, log bool) []float64 {
	dx := make([]float64, len(y))
	for o := range l.outer {
		for k := range l.inner {
			at := func(j int) int { return o*l.n*l.inner + j*l.inner + k }
			var s float64
			for j := range l.n {
				if log {
					s += dy[at(j)]
				} else {
					s += y[at(j)] * dy[at(j)]
				}
			}
			for j := range l.n {
				if log {
					dx[at(j)] = dy[at(j)] - math.Exp(y[at(j)])*s
				} else {
					dx[at(j)] = y[at(j)] * (dy[at(j)] - s)
				}
			}
		}
	}
	return dx
}

// randomInput returns size values 3·N(0,1) + offset, with a different
// offset of ±1e4 or 0 for each element block of 50, so that neighbouring
// slices lie far apart (the situation in which Gorgonia's kernel fails).
func randomInput(r *rand.Rand, size int) []float64 {
	x := make([]float64, size)
	offsets := []float64{0, 1e4, -1e4, 300}
	for i := range x {
		x[i] = 3*r.NormFloat64() + offsets[(i/50)%len(offsets)]
	}
	return x
}

func to[T Float](x []float64) []T {
	out := make([]T, len(x))
	for i, v := range x {
		out[i] = T(v)
	}
	return out
}

func from[T Float](x []T) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

// tolFor is the kernels' accuracy against the float64 reference: eps32()
// relative for float32 (plus the subnormal spacing), or a few float64 ULPs
// (the exps and the sum each round; the sum's order differs).
func tolFor[T Float]() (abs, rel float64) {
	if is32[T]() {
		return 0x1p-149, eps32()
	}
	return 1e-300, 1e-14
}

// eps32 is the float32 kernels' relative accuracy on the path in use:
// 2^−23 (1 ULP) on the scalar code, whose arithmetic is float64; 2^−22 on
// the vector code, which computes in float32 lanes (to first order the
// element's exp error, 1.25·2^−24, the sum's, ≤ 2.25·2^−24, and the
// scaling's, 0.5·2^−24; measured 2.8·2^−24 at most; softmax_amd64.go).
func eps32() float64 {
	if vecSoftmax() {
		return 0x1p-22
	}
	return 0x1p-23
}

// within reports the largest |got − want| / (abs + rel·|want|) and whether
// the NaNs and infinities match.
func within(got, want []float64, abs, rel float64) (worst float64, at int, ok bool) {
	at = -1
	for i := range want {
		g, w := got[i], want[i]
		if math.IsNaN(w) || math.IsInf(w, 0) || math.IsNaN(g) || math.IsInf(g, 0) {
			if !(g == w || math.IsNaN(g) && math.IsNaN(w)) {
				return math.Inf(1), i, false
			}
			continue
		}
		if e := math.Abs(g-w) / (abs + rel*math.Abs(w)); e > worst {
			worst, at = e, i
		}
	}
	return worst, at, worst <= 1
}

func TestSoftmaxMatchesReference(t *testing.T) {
	eachPath(t, func(t *testing.T) {
		testMatchesReference[float32](t)
		testMatchesReference[float64](t)
	})
}

func testMatchesReference[T Float](t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	abs, rel := tolFor[T]()
	for _, l := range layouts {
		for _, log := range []bool{false, true} {
			name := fmt.Sprintf("%T/%v/log=%v", T(0), l, log)
			xT := to[T](randomInput(r, l.size()))
			x := from(xT) // the reference sees exactly the kernel's input
			dst := make([]T, len(x))
			kern := Softmax[T]
			if log {
				kern = LogSoftmax[T]
			}
			if err := kern(dst, xT, l.axis()); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			want := refSoftmax(x, l, log)
			if worst, at, ok := within(from(dst), want, abs, rel); !ok {
				t.Errorf("%s: [%d] = %g, want %g (%.3g of the tolerance)", name, at, dst[at], want[at], worst)
			}

			// Backward, from the kernel's own y and a non-uniform dy.
			dy := make([]T, len(x))
			for i := range dy {
				dy[i] = T(r.NormFloat64())
			}
			dx := make([]T, len(x))
			grad := SoftmaxGrad[T]
			if log {
				grad = LogSoftmaxGrad[T]
			}
			if err := grad(dx, dst, dy, l.axis()); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			wantDx := refGrad(from(dst), from(dy), l, log)
			// dx = y·(dy − S) cancels when dy ≈ S, so the error is relative
			// to the terms, not to dx: an absolute floor of rel·max|dy|.
			if worst, at, ok := within(from(dx), wantDx, 4*rel*maxAbs(from(dy)), rel); !ok {
				t.Errorf("%s backward: [%d] = %g, want %g (%.3g of the tolerance)", name, at, dx[at], wantDx[at], worst)
			}
		}
	}
}

func maxAbs(x []float64) float64 {
	var m float64
	for _, v := range x {
		m = math.Max(m, math.Abs(v))
	}
	return m
}

// TestSoftmaxKnownValues checks values computed with mpmath
// (onnx/backend/test/case/node/softmax.py and logsoftmax.py give the
// float32 ones).
func TestSoftmaxKnownValues(t *testing.T) { eachPath(t, testSoftmaxKnownValues) }

func testSoftmaxKnownValues(t *testing.T) {
	for _, tc := range []struct {
		name   string
		x, dy  []float64
		log    bool
		y, dx  []float64
		relTol float64
	}{
		{"softmax [1,2,3]", []float64{1, 2, 3}, []float64{1, 0, 0}, false,
			[]float64{0.09003057317038046, 0.24472847105479767, 0.6652409557748219},
			[]float64{0.08192506906499324, -0.022033044520174298, -0.05989202454481895}, 1e-15},
		{"softmax [1e4,1e4+1,1e4+2]", []float64{10000, 10001, 10002}, []float64{1, 2, 3}, false,
			[]float64{0.09003057317038046, 0.24472847105479767, 0.6652409557748219},
			[]float64{-0.1418170936, -0.1407703575, 0.2825874511}, 1e-9},
		{"log_softmax [-1,0,1]", []float64{-1, 0, 1}, []float64{1, 0, 0}, true,
			[]float64{-2.4076059644443806, -1.4076059644443804, -0.4076059644443804},
			[]float64{0.9099694268296195, -0.24472847105479767, -0.6652409557748219}, 1e-15},
		{"log_softmax [0,1,2,3]", []float64{0, 1, 2, 3}, []float64{0, 0, 0, 0}, true,
			[]float64{-3.4401896985611953, -2.4401896985611953, -1.4401896985611953, -0.44018969856119533},
			[]float64{0, 0, 0, 0}, 1e-15},
	} {
		l := layout{1, len(tc.x), 1}
		y := make([]float64, len(tc.x))
		dx := make([]float64, len(tc.x))
		var err1, err2 error
		if tc.log {
			err1 = LogSoftmax(y, tc.x, l.axis())
			err2 = LogSoftmaxGrad(dx, y, tc.dy, l.axis())
		} else {
			err1 = Softmax(y, tc.x, l.axis())
			err2 = SoftmaxGrad(dx, y, tc.dy, l.axis())
		}
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if w, at, ok := within(y, tc.y, 1e-300, tc.relTol); !ok {
			t.Errorf("%s: y[%d] = %.17g, want %.17g (%.3g)", tc.name, at, y[at], tc.y[at], w)
		}
		if w, at, ok := within(dx, tc.dx, 1e-15, tc.relTol); !ok {
			t.Errorf("%s: dx[%d] = %.17g, want %.17g (%.3g)", tc.name, at, dx[at], tc.dx[at], w)
		}
	}
}

// TestSoftmaxStridedMatchesContiguous checks that a softmax along a non-last axis
// (the tiled path) gives the same as the same data transposed so that the
// axis is last (the row path).
func TestSoftmaxStridedMatchesContiguous(t *testing.T) {
	eachPath(t, testSoftmaxStridedMatchesContiguous)
}

func testSoftmaxStridedMatchesContiguous(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, l := range []layout{{2, 5, 3}, {1, 9, 64}, {2, 4, 65}, {2, 33, 130}, {3, 70, 7}} {
		x := to[float32](randomInput(r, l.size()))
		dy := make([]float32, l.size())
		for i := range dy {
			dy[i] = float32(r.NormFloat64())
		}
		xt, dyt := transpose(x, l), transpose(dy, l)
		lt := layout{l.outer * l.inner, l.n, 1}
		for _, log := range []bool{false, true} {
			fwd, bwd := Softmax[float32], SoftmaxGrad[float32]
			if log {
				fwd, bwd = LogSoftmax[float32], LogSoftmaxGrad[float32]
			}
			y, yt := make([]float32, len(x)), make([]float32, len(x))
			dx, dxt := make([]float32, len(x)), make([]float32, len(x))
			mustOK(t, fwd(y, x, l.axis()))
			mustOK(t, fwd(yt, xt, lt.axis()))
			mustOK(t, bwd(dx, y, dy, l.axis()))
			mustOK(t, bwd(dxt, yt, dyt, lt.axis()))
			abs, rel := tolFor[float32]()
			if w, at, ok := within(from(transpose(y, l)), from(yt), abs, 2*rel); !ok {
				t.Errorf("%v log=%v: forward differs at %d (%.3g)", l, log, at, w)
			}
			if w, at, ok := within(from(transpose(dx, l)), from(dxt), 1e-6, 1e-5); !ok {
				t.Errorf("%v log=%v: backward differs at %d (%.3g)", l, log, at, w)
			}
		}
	}
}

// transpose returns x (outer×n×inner) as (outer·inner)×n.
func transpose[T Float](x []T, l layout) []T {
	out := make([]T, len(x))
	for o := range l.outer {
		for j := range l.n {
			for k := range l.inner {
				out[(o*l.inner+k)*l.n+j] = x[o*l.n*l.inner+j*l.inner+k]
			}
		}
	}
	return out
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestSoftmaxRanges checks that processing the slices in pieces [Lo, Hi) gives
// bit for bit what one call gives, and that a piece writes only inside its
// own slices (everything else keeps its NaN guard value).
func TestSoftmaxRanges(t *testing.T) { eachPath(t, testSoftmaxRanges) }

func testSoftmaxRanges(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, l := range []layout{{6, 5, 1}, {2, 5, 3}, {2, 4, 130}, {3, 3, 70}} {
		x := to[float64](randomInput(r, l.size()))
		dy := to[float64](randomInput(r, l.size()))
		all := l.axis()
		kernels := map[string]func(dst []float64, a Axis) error{
			"Softmax":        func(dst []float64, a Axis) error { return Softmax(dst, x, a) },
			"LogSoftmax":     func(dst []float64, a Axis) error { return LogSoftmax(dst, x, a) },
			"SoftmaxGrad":    func(dst []float64, a Axis) error { return SoftmaxGrad(dst, x, dy, a) },
			"LogSoftmaxGrad": func(dst []float64, a Axis) error { return LogSoftmaxGrad(dst, x, dy, a) },
		}
		for name, k := range kernels {
			whole := make([]float64, len(x))
			mustOK(t, k(whole, all))
			pieces := make([]float64, len(x))
			for lo := 0; lo < all.Hi; {
				hi := min(all.Hi, lo+1+r.IntN(3))
				piece := make([]float64, len(x))
				for i := range piece {
					piece[i] = math.NaN()
				}
				a := all
				a.Lo, a.Hi = lo, hi
				mustOK(t, k(piece, a))
				for i, v := range piece {
					s := (i/(l.n*l.inner))*l.inner + i%l.inner // the slice element i is in
					inside := s >= lo && s < hi
					if inside == math.IsNaN(v) {
						t.Fatalf("%s %v [%d,%d): element %d (slice %d) = %v", name, l, lo, hi, i, s, v)
					}
					if inside {
						pieces[i] = v
					}
				}
				lo = hi
			}
			for i := range whole {
				if math.Float64bits(whole[i]) != math.Float64bits(pieces[i]) {
					t.Fatalf("%s %v: element %d: whole %v, pieces %v", name, l, i, whole[i], pieces[i])
				}
			}
		}
	}
}

// TestSoftmaxSpecialCases pins the documented behaviour at −Inf (masks), NaN and
// +Inf, on a slice stored contiguously and as a column of a wider array
// (so both the row and the tiled path run), in both precisions.
func TestSoftmaxSpecialCases(t *testing.T) { eachPath(t, testSoftmaxSpecialCases) }

func testSoftmaxSpecialCases(t *testing.T) {
	inf, nan := math.Inf(1), math.NaN()
	for _, tc := range []struct {
		name          string
		x, dy         []float64
		y, logY       []float64 // nil: all NaN
		dx, logDx     []float64 // nil: all NaN
		exactZeroGrad bool      // dx must be +0, not only == 0
	}{
		{
			name: "partly masked",
			x:    []float64{-inf, 0, -inf, math.Log(3)}, dy: []float64{5, 1, -7, 2},
			y: []float64{0, 0.25, 0, 0.75}, logY: []float64{-inf, math.Log(0.25), -inf, math.Log(0.75)},
			// softmax: S = 0.25 + 1.5 = 1.75, dx = y·(dy − S)
			dx: []float64{0, 0.25 * (1 - 1.75), 0, 0.75 * (2 - 1.75)},
			// log-softmax: Σdy = 1, dx = dy − y·1; masked entries pass dy through
			logDx: []float64{5, 1 - 0.25, -7, 2 - 0.75},
		},
		{
			name: "fully masked",
			x:    []float64{-inf, -inf, -inf}, dy: []float64{1, -2, 3},
			y: []float64{0, 0, 0}, logY: []float64{-inf, -inf, -inf},
			dx: []float64{0, 0, 0}, logDx: []float64{0, 0, 0}, exactZeroGrad: true,
		},
		{
			name: "fully masked with NaN dy",
			x:    []float64{-inf, -inf}, dy: []float64{nan, inf},
			y: []float64{0, 0}, logY: []float64{-inf, -inf},
			dx: []float64{0, 0}, logDx: []float64{0, 0}, exactZeroGrad: true,
		},
		{
			name: "single element",
			x:    []float64{-3}, dy: []float64{2},
			y: []float64{1}, logY: []float64{0}, dx: []float64{0}, logDx: []float64{0},
		},
		{
			name: "huge spread",
			x:    []float64{1e30, 0, -1e30}, dy: []float64{1, 1, 1},
			y: []float64{1, 0, 0}, logY: []float64{0, -1e30, -2e30},
			dx: []float64{0, 0, 0}, logDx: []float64{1 - 3, 1, 1},
		},
		{name: "NaN", x: []float64{0, nan, 1}, dy: []float64{1, 1, 1}},
		{name: "NaN among masked", x: []float64{-inf, nan, -inf}, dy: []float64{1, 1, 1}},
		{name: "+Inf", x: []float64{0, inf, 1}, dy: []float64{1, 1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			specialCase[float32](t, tc.x, tc.dy, tc.y, tc.dx, false, tc.exactZeroGrad)
			specialCase[float32](t, tc.x, tc.dy, tc.logY, tc.logDx, true, tc.exactZeroGrad)
			specialCase[float64](t, tc.x, tc.dy, tc.y, tc.dx, false, tc.exactZeroGrad)
			specialCase[float64](t, tc.x, tc.dy, tc.logY, tc.logDx, true, tc.exactZeroGrad)
		})
	}
}

func specialCase[T Float](t *testing.T, x, dy, wantY, wantDx []float64, log, exactZero bool) {
	t.Helper()
	n := len(x)
	// Contiguous: the slice as rows 0 and 2 of a 3×n array whose row 1
	// holds ordinary values. Strided: the slice as column 1 of an n×3
	// array whose other columns are ordinary values.
	for _, inner := range []int{1, 3} {
		l := layout{3, n, 1}
		if inner == 3 {
			l = layout{1, n, 3}
		}
		xs, dys := make([]T, 3*n), make([]T, 3*n)
		at := func(j int) []int {
			if inner == 1 {
				return []int{j, 2*n + j}
			}
			return []int{3*j + 1}
		}
		ordinary := func(i int) bool {
			if inner == 1 {
				return i >= n && i < 2*n
			}
			return i%3 != 1
		}
		for i := range xs {
			xs[i], dys[i] = T(float64(i%5)-2), T(1)
		}
		for j := range n {
			for _, i := range at(j) {
				xs[i], dys[i] = T(x[j]), T(dy[j])
			}
		}
		y, dx := make([]T, len(xs)), make([]T, len(xs))
		if log {
			mustOK(t, LogSoftmax(y, xs, l.axis()))
			mustOK(t, LogSoftmaxGrad(dx, y, dys, l.axis()))
		} else {
			mustOK(t, Softmax(y, xs, l.axis()))
			mustOK(t, SoftmaxGrad(dx, y, dys, l.axis()))
		}
		for j := range n {
			for _, i := range at(j) {
				check := func(what string, got T, want []float64) {
					t.Helper()
					switch {
					case want == nil:
						if !math.IsNaN(float64(got)) {
							t.Errorf("%T log=%v inner=%d: %s[%d] = %v, want NaN", got, log, inner, what, j, got)
						}
					case float64(got) == want[j] || math.Abs(float64(got)-want[j]) <= 1e-6*math.Abs(want[j]):
					default:
						t.Errorf("%T log=%v inner=%d: %s[%d] = %v, want %v", got, log, inner, what, j, got, want[j])
					}
				}
				check("y", y[i], wantY)
				check("dx", dx[i], wantDx)
				if exactZero && math.Float64bits(float64(dx[i])) != 0 {
					t.Errorf("%T log=%v inner=%d: dx[%d] = %v, want +0", dx[i], log, inner, j, dx[i])
				}
			}
		}
		// The other slices are ordinary: never NaN.
		for i := range y {
			if ordinary(i) && (math.IsNaN(float64(y[i])) || math.IsNaN(float64(dx[i]))) {
				t.Errorf("%T log=%v inner=%d: a NaN leaked into another slice at %d", y[i], log, inner, i)
			}
		}
	}
}

// TestSoftmaxInPlace: dst may be x (forward), or y or dy (backward), on both
// layouts and with masked slices, giving what separate slices give.
func TestSoftmaxInPlace(t *testing.T) { eachPath(t, testSoftmaxInPlace) }

func testSoftmaxInPlace(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 20))
	inf := math.Inf(-1)
	for _, l := range []layout{{4, 9, 1}, {2, 9, 5}} {
		x := to[float32](randomInput(r, l.size()))
		dy := make([]float32, l.size())
		for i := range dy {
			dy[i] = float32(r.NormFloat64())
		}
		// Mask one slice fully and some entries of others.
		for j := range l.n {
			x[j*l.inner] = float32(inf)
		}
		for i := 3; i < len(x); i += 7 {
			x[i] = float32(inf)
		}
		a := l.axis()
		for _, log := range []bool{false, true} {
			fwd, bwd := Softmax[float32], SoftmaxGrad[float32]
			if log {
				fwd, bwd = LogSoftmax[float32], LogSoftmaxGrad[float32]
			}
			y, dx := make([]float32, len(x)), make([]float32, len(x))
			mustOK(t, fwd(y, x, a))
			mustOK(t, bwd(dx, y, dy, a))
			inX := append([]float32(nil), x...)
			mustOK(t, fwd(inX, inX, a))
			inY := append([]float32(nil), y...)
			mustOK(t, bwd(inY, inY, dy, a))
			inDy := append([]float32(nil), dy...)
			mustOK(t, bwd(inDy, y, inDy, a))
			for i := range x {
				if !numtest.Alike(float64(inX[i]), float64(y[i])) || !numtest.Alike(float64(inY[i]), float64(dx[i])) || !numtest.Alike(float64(inDy[i]), float64(dx[i])) {
					t.Fatalf("%v log=%v [%d]: in place y %v, dx %v / %v; separate y %v, dx %v", l, log, i, inX[i], inY[i], inDy[i], y[i], dx[i])
				}
			}
		}
	}
}

// TestSoftmaxNoNaNFromFinite: finite input, however spread out, never gives NaN,
// and softmax slices sum to 1 with values in [0, 1].
func TestSoftmaxNoNaNFromFinite(t *testing.T) { eachPath(t, testSoftmaxNoNaNFromFinite) }

func testSoftmaxNoNaNFromFinite(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for range 200 {
		n := 1 + r.IntN(40)
		x := make([]float32, n)
		for i := range x {
			x[i] = float32((2*r.Float64() - 1) * math.Pow(10, float64(r.IntN(39)))) // finite float32
		}
		y := make([]float32, n)
		mustOK(t, Softmax(y, x, Along(n, n, 1)))
		var s float64
		for _, v := range y {
			if !(v >= 0 && v <= 1) {
				t.Fatalf("softmax(%v) = %v: value outside [0, 1]", x, y)
			}
			s += float64(v)
		}
		if math.Abs(s-1) > float64(n)*0x1p-23 {
			t.Fatalf("softmax(%v) sums to %v", x, s)
		}
	}
}

// vecSoftmax reports whether the softmax row helpers take vector code in
// this build, on this CPU and at the current vecLevel: whether their
// vector routines handle a row.
func vecSoftmax() bool {
	var x [16]float32
	n, _ := sumVec(x[:])
	return n > 0
}

// setSoftmaxPath selects the vector softmax helpers, where the build and
// the CPU have them (vector), or the scalar code: both the AVX2 assembly of
// the default build and the AVX-512 code of GOEXPERIMENT=simd builds
// follow vecLevel. setSoftmaxPath(true) restores the default.
func setSoftmaxPath(vector bool) {
	vecLevel = bestLevel
	if !vector {
		vecLevel = vecNone
	}
}

// eachPath runs f on the vector code (when the build and the CPU have it:
// AVX2+FMA assembly in the default build on amd64, AVX-512 with
// GOEXPERIMENT=simd) and on the scalar code (setSoftmaxPath).
func eachPath(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	defer setSoftmaxPath(true)
	setSoftmaxPath(true)
	if vecSoftmax() {
		t.Run("vector", f)
	}
	setSoftmaxPath(false)
	if vecSoftmax() {
		t.Fatal("setSoftmaxPath(false) left the vector softmax on")
	}
	t.Run("scalar", f)
}

// TestSoftmaxExp checks the float32-grade exps (expSingle, and expVec when there
// is vector code) against math.Exp: relative error below 1e-8, and
// float32 results at most 1 ULP from the correctly rounded ones.
func TestSoftmaxExps(t *testing.T) {
	eachPath(t, func(t *testing.T) {
		testSoftmaxExp(t, expInPlace[float32])
	})
}

func testSoftmaxExp(t *testing.T, exp func([]float64)) {
	// Every 997th float32 in [−104, 89] (2.3 million values), in batches
	// of 1000 so the vector code runs whole vectors. (Every 97th, 23
	// million values, was run once for the errors quoted in the docs.)
	step := uint32(997)
	if testing.Short() {
		step = 9973
	}
	var vals []float32
	for b := math.Float32bits(-104); b > math.Float32bits(-0x1p-126); b -= step { // negative: bits fall towards 0
		vals = append(vals, math.Float32frombits(b))
	}
	for b := math.Float32bits(0x1p-126); b < math.Float32bits(89); b += step {
		vals = append(vals, math.Float32frombits(b))
	}
	var worst float64
	var worstAt float32
	z := make([]float64, 1000)
	for i0 := 0; i0 < len(vals); i0 += len(z) {
		batch := vals[i0:min(i0+len(z), len(vals))]
		z := z[:len(batch)]
		for i, v := range batch {
			z[i] = float64(v)
		}
		exp(z)
		for i, v := range batch {
			want := math.Exp(float64(v))
			if e := math.Abs(z[i]-want) / want; e > worst {
				worst, worstAt = e, v
			}
			if got32, want32 := float32(z[i]), float32(want); got32 != want32 &&
				math.Abs(float64(got32)-float64(want32)) > 1.0001*math.Abs(float64(math.Nextafter32(want32, 0)-want32)) {
				t.Fatalf("float32(exp(%v)) = %v, want %v: more than 1 ULP", v, got32, want32)
			}
		}
	}
	if worst > 1e-8 {
		t.Errorf("relative error %.3g at %v, want < 1e-8", worst, worstAt)
	}
	t.Logf("max relative error %.3g at %v", worst, worstAt)

	nan, inf := math.NaN(), math.Inf(1)
	special := []struct{ z, want float64 }{
		{0, 1}, {math.Copysign(0, -1), 1}, {-104.5, 0}, {-1000, 0}, {-inf, 0}, {89.5, inf},
		{1000, inf}, {inf, inf}, {1, math.E}, {-1, 1 / math.E}, {nan, nan},
	}
	// Twice over, so that the vector code sees each value in a whole vector
	// and the scalar tail too.
	in := make([]float64, 0, 2*len(special))
	for range 2 {
		for _, tc := range special {
			in = append(in, tc.z)
		}
	}
	exp(in)
	for i, got := range in {
		tc := special[i%len(special)]
		switch {
		case math.IsNaN(tc.want):
			if !math.IsNaN(got) {
				t.Errorf("exp(%v) = %v, want NaN", tc.z, got)
			}
		case got != tc.want && math.Abs(got-tc.want) > 1e-8*tc.want:
			t.Errorf("exp(%v) = %v, want %v", tc.z, got, tc.want)
		}
	}
}

// TestSoftmaxVectorMatchesScalar: the vector and scalar code agree on rows
// of every length up to 70 (every tail length, before and after whole
// blocks) and long ones, with masked entries (one, or all but one), within
// the bounds of compareVector: forward within 6 float32 ULPs, backward
// within the bound derived there from the forward difference and each
// path's roundings (dy has offsets of ±1e4, so the gradients cancel).
func TestSoftmaxVectorMatchesScalar(t *testing.T) {
	defer setSoftmaxPath(true)
	if !vecSoftmax() {
		t.Skip("no vector softmax in this build or on this CPU")
	}
	r := rand.New(rand.NewPCG(17, 18))
	lengths := []int{1000, 1024, 4099}
	for n := 1; n <= 70; n++ {
		lengths = append(lengths, n)
	}
	for _, n := range lengths {
		for _, mask := range []string{"one", "all but one"} {
			x := to[float32](randomInput(r, n))
			dy := to[float32](randomInput(r, n))
			if mask == "one" {
				x[r.IntN(n)] = float32(math.Inf(-1))
			} else {
				keep := r.IntN(n)
				for i := range x {
					if i != keep {
						x[i] = float32(math.Inf(-1))
					}
				}
			}
			var outs [2][4][]float32
			for p, vector := range []bool{true, false} {
				setSoftmaxPath(vector)
				a := Along(n, n, 1)
				for k := range outs[p] {
					outs[p][k] = make([]float32, n)
				}
				mustOK(t, Softmax(outs[p][0], x, a))
				mustOK(t, LogSoftmax(outs[p][1], x, a))
				mustOK(t, SoftmaxGrad(outs[p][2], outs[p][0], dy, a))
				mustOK(t, LogSoftmaxGrad(outs[p][3], outs[p][1], dy, a))
			}
			t.Run(fmt.Sprintf("n=%d/mask %s", n, mask), func(t *testing.T) {
				compareVector(t, from(x), from(dy), outs[0], outs[1])
			})
			for i, v := range outs[0][0] {
				if math.IsInf(float64(x[i]), -1) && math.Float32bits(v) != 0 {
					t.Errorf("n=%d mask %s: masked y[%d] = %v, want +0", n, mask, i, v)
				}
			}
		}
	}
}

func TestSoftmaxNoAllocs(t *testing.T) { eachPath(t, testSoftmaxNoAllocs) }

func testSoftmaxNoAllocs(t *testing.T) {
	for _, l := range []layout{{8, 100, 1}, {2, 30, 70}} {
		x := to[float32](randomInput(rand.New(rand.NewPCG(1, 1)), l.size()))
		y, dx := make([]float32, len(x)), make([]float32, len(x))
		a := l.axis()
		for name, f := range map[string]func(){
			"Softmax":        func() { _ = Softmax(y, x, a) },
			"LogSoftmax":     func() { _ = LogSoftmax(y, x, a) },
			"SoftmaxGrad":    func() { _ = SoftmaxGrad(dx, y, x, a) },
			"LogSoftmaxGrad": func() { _ = LogSoftmaxGrad(dx, y, x, a) },
		} {
			if n := testing.AllocsPerRun(20, f); n != 0 {
				t.Errorf("%s %v: %v allocations", name, l, n)
			}
		}
	}
}

func TestSoftmaxErrors(t *testing.T) {
	x := []float64{1, 2, 3, 4, 5, 6}
	for _, tc := range []struct {
		name   string
		dst, x []float64
		a      Axis
	}{
		{"dst too short", make([]float64, 5), x, Along(6, 3, 1)},
		{"n does not divide", make([]float64, 6), x, Along(6, 4, 1)},
		{"n·inner does not divide", make([]float64, 6), x, Along(6, 2, 2)},
		{"zero n", make([]float64, 6), x, Axis{N: 0, Inner: 1, Hi: 1}},
		{"zero inner", make([]float64, 6), x, Axis{N: 3, Inner: 0, Hi: 1}},
		{"hi past the end", make([]float64, 6), x, Axis{N: 3, Inner: 1, Hi: 3}},
		{"lo > hi", make([]float64, 6), x, Axis{N: 3, Inner: 1, Lo: 2, Hi: 1}},
		{"negative lo", make([]float64, 6), x, Axis{N: 3, Inner: 1, Lo: -1, Hi: 1}},
	} {
		for name, err := range map[string]error{
			"Softmax":        Softmax(tc.dst, tc.x, tc.a),
			"LogSoftmax":     LogSoftmax(tc.dst, tc.x, tc.a),
			"SoftmaxGrad":    SoftmaxGrad(tc.dst, tc.x, tc.x, tc.a),
			"LogSoftmaxGrad": LogSoftmaxGrad(tc.dst, tc.x, tc.x, tc.a),
		} {
			if !errors.Is(err, ErrLength) {
				t.Errorf("%s: %s: got %v, want ErrLength", tc.name, name, err)
			}
		}
		for i, v := range tc.dst {
			if v != 0 {
				t.Errorf("%s: dst[%d] written after an error", tc.name, i)
			}
		}
	}
	// An empty array is fine.
	if err := Softmax([]float32{}, []float32{}, Along(0, 0, 1)); err != nil {
		t.Errorf("empty: %v", err)
	}
}

// Benchmarks: the kernels on the two float32 shapes, against a
// plain two-pass loop (float32 arithmetic, exp through float64 math.Exp)
// and an online (single-pass max-and-sum) variant. Bytes count every
// slice read or written once: 2 per element forward, 3 backward.

var benchShapes = []struct{ rows, cols int }{{512, 1024}, {64, 65536}}

func benchData(n int) (x, dy []float32) {
	r := rand.New(rand.NewPCG(9, 9))
	x, dy = make([]float32, n), make([]float32, n)
	for i := range x {
		x[i] = float32(3 * r.NormFloat64())
		dy[i] = float32(r.NormFloat64())
	}
	return x, dy
}

func BenchmarkSoftmax(b *testing.B) {
	for _, sh := range benchShapes {
		n := sh.rows * sh.cols
		x, dy := benchData(n)
		y, dx := make([]float32, n), make([]float32, n)
		a := Along(n, sh.cols, 1)
		run := func(name string, bytes int, f func()) {
			b.Run(fmt.Sprintf("%dx%d/%s", sh.rows, sh.cols, name), func(b *testing.B) {
				b.SetBytes(int64(bytes * 4 * n))
				b.ReportAllocs()
				for b.Loop() {
					f()
				}
			})
		}
		run("forward/kernel", 2, func() { _ = Softmax(y, x, a) })
		run("forward/online", 2, func() { onlineSoftmax(y, x, sh.cols) })
		run("forward/plain", 2, func() { plainSoftmax(y, x, sh.cols) })
		run("log-forward/kernel", 2, func() { _ = LogSoftmax(y, x, a) })
		run("backward/kernel", 3, func() { _ = SoftmaxGrad(dx, y, dy, a) })
		run("backward/plain", 3, func() { plainSoftmaxGrad(dx, y, dy, sh.cols) })
		run("log-backward/kernel", 3, func() { _ = LogSoftmaxGrad(dx, y, dy, a) })
		// The kernels on the scalar code, where the vector code would run.
		if vecSoftmax() {
			scalar := func(f func()) func() {
				return func() {
					setSoftmaxPath(false)
					defer setSoftmaxPath(true)
					f()
				}
			}
			run("forward/kernel-scalar", 2, scalar(func() { _ = Softmax(y, x, a) }))
			run("log-forward/kernel-scalar", 2, scalar(func() { _ = LogSoftmax(y, x, a) }))
			run("backward/kernel-scalar", 3, scalar(func() { _ = SoftmaxGrad(dx, y, dy, a) }))
			run("log-backward/kernel-scalar", 3, scalar(func() { _ = LogSoftmaxGrad(dx, y, dy, a) }))
		}
	}
}

// plainSoftmax is the straightforward two-pass softmax over rows of n: the
// loop one would write first.
func plainSoftmax(dst, x []float32, n int) {
	for r := 0; r < len(x); r += n {
		row, out := x[r:r+n], dst[r:r+n]
		m := row[0]
		for _, v := range row[1:] {
			if v > m {
				m = v
			}
		}
		var s float32
		for j, v := range row {
			e := float32(math.Exp(float64(v - m)))
			out[j] = e
			s += e
		}
		inv := 1 / s
		for j := range out {
			out[j] *= inv
		}
	}
}

func plainSoftmaxGrad(dst, y, dy []float32, n int) {
	for r := 0; r < len(y); r += n {
		ys, ds, out := y[r:r+n], dy[r:r+n], dst[r:r+n]
		var s float32
		for j, v := range ys {
			s += v * ds[j]
		}
		for j, v := range ys {
			out[j] = v * (ds[j] - s)
		}
	}
}

// onlineSoftmax is the online alternative (Milakov & Gimelshein 2018,
// arXiv:1805.02867): one pass keeps a running maximum and a sum rescaled
// whenever the maximum grows, then a second pass computes e^(x−m)/s. It
// reads x twice instead of three times, but computes every exp twice.
// Built from the same row helpers as the kernel (so it uses the vector exp
// when the kernel does), a block of tileWidth at a time; its second pass
// is the kernel's exp pass and scaling pass, not fused into one sweep,
// which costs it one extra pass over dst (cheap next to the exps).
func onlineSoftmax(dst, x []float32, n int) {
	var one [1]float64
	for r := 0; r < len(x); r += n {
		row, out := x[r:r+n], dst[r:r+n]
		m, s := math.Inf(-1), 0.0
		for j0 := 0; j0 < n; j0 += tileWidth {
			blk := row[j0:min(j0+tileWidth, n)]
			if bm := float64(rowMax(blk)); bm > m {
				one[0] = m - bm
				expSingle(one[:])
				s *= one[0]
				m = bm
			}
			s += rowExpSum(blk, blk, m, false)
		}
		_ = rowExpSum(out, row, m, true)
		rowScale(out, 1/s)
	}
}
