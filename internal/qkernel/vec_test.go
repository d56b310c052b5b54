package qkernel

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// The vector kernels (assembly in the default build on amd64, simd/archsimd
// with GOEXPERIMENT=simd) against the scalar loops, bit for bit: every
// kernel runs twice, with haveAVX2 as the CPU says and lowered to false.
// Without vector kernels (purego, other architectures, a CPU without AVX2)
// both runs take the scalar path and the tests check nothing more than the
// others do.

// bothPaths runs f with the vector kernels (if any) and then with the
// scalar loops alone.
func bothPaths(t *testing.T, f func(vector bool)) {
	t.Helper()
	saved := haveAVX2
	defer func() { haveAVX2 = saved }()
	f(true)
	haveAVX2 = false
	f(false)
}

// vecLengths are the slice lengths the comparisons run on: every length
// up to 40 (empty, tails of each size, one to five vectors, the 4-vector
// unrolled block), and longer ones with and without tails.
func vecLengths() []int {
	n := make([]int, 0, 48)
	for i := range 41 {
		n = append(n, i)
	}
	return append(n, 63, 64, 65, 127, 1000, 4096+5, 1<<14)
}

// specials32 are the inputs where a vector kernel could part from the
// scalar loop, for a grid of scale s: ±0, NaN of both signs and a payload,
// ±Inf, the largest and smallest floats, subnormals, exact and rounded
// ties k·s + s/2 for codes in and beyond the range, values just inside
// and beyond the bounds, and x·(1/s) in (−½, 0] (the −0 of VROUNDPS).
func specials[T Float](s T, lo, hi int) []T {
	nan := math.NaN()
	v := []float64{0, math.Copysign(0, -1), nan, -nan, math.Float64frombits(0x7ff8000000000abc),
		math.Inf(1), math.Inf(-1), math.MaxFloat32, -math.MaxFloat32, math.SmallestNonzeroFloat32,
		-math.SmallestNonzeroFloat32, 1e-40, -1e-40, 1e-30, -1e-30, 1e30, -1e30, 0x1p23, -0x1p23, 0x1.8p23, 0x1p22 + 0.5, 0x1p22 - 0.5}
	sf := float64(s)
	for k := lo - 3; k <= hi+3; k++ {
		v = append(v, (float64(k)+0.5)*sf, float64(k)*sf, (float64(k)+0.49)*sf, (float64(k)+0.51)*sf)
	}
	v = append(v, -0.5*sf, -0.3*sf, -0.49999*sf, 0.5*sf, 1.5*sf, 2.5*sf, -1.5*sf, -2.5*sf)
	out := make([]T, len(v))
	for i, f := range v {
		out[i] = T(f)
	}
	// The ties, rounded to T, once more as k·s + s/2 computed in T.
	for k := lo - 3; k <= hi+3; k++ {
		out = append(out, T(k)*s+s/2, T(k)*s-s/2)
	}
	return out
}

// vecInputs returns n inputs for grid (s, lo, hi): specials and random
// values over the range and beyond, shuffled by seed.
func vecInputs[T Float](r *rand.Rand, n int, s T, lo, hi int) []T {
	sp := specials(s, lo, hi)
	x := make([]T, n)
	for i := range x {
		switch r.IntN(3) {
		case 0:
			x[i] = sp[r.IntN(len(sp))]
		case 1:
			x[i] = T((float64(lo-2) + r.Float64()*float64(hi-lo+4)) * float64(s))
		default:
			x[i] = T((float64(lo-2)+float64(r.IntN(hi-lo+4))+0.5)*float64(s)) + T(r.IntN(3)-1)*T(math.SmallestNonzeroFloat32)
		}
	}
	return x
}

// bitsOf returns v's bits in its own width, for exact comparison (a
// conversion to float64 keeps NaN payloads only up to quieting).
func bitsOf[T Float](v T) uint64 {
	if is32[T]() {
		return uint64(math.Float32bits(float32(v)))
	}
	return math.Float64bits(float64(v))
}

// grads returns n dy values: ordinary ones and, every few elements, NaN,
// ±Inf, −0 and a payload NaN, which the mask must pass through bit for bit.
func grads[T Float](n int) []T {
	dy := make([]T, n)
	sp := []float64{math.NaN(), math.Inf(1), math.Inf(-1), math.Copysign(0, -1), -1.5}
	for i := range dy {
		dy[i] = T(1 + i%7)
		if i%5 == 3 {
			dy[i] = T(sp[(i/5)%len(sp)])
		}
	}
	if is32[T]() && n > 10 {
		dy[10] = T(math.Float32frombits(0x7fc00abc))
	}
	return dy
}

// vecGrid is a test grid: the format's codes and a zero point and scale.
type vecGrid struct {
	name       string
	qmin, qmax int
	zp         int
	s          float64
}

var vecGrids = []vecGrid{
	{"int8", -128, 127, 0, 0.1},
	{"int8 z=-5", -128, 127, -5, 4.0 / 127},
	{"int8 narrow", -127, 127, 0, 1.0 / 3},
	{"uint8 z=128", 0, 255, 128, 2},
	{"uint8 z=0", 0, 255, 0, 0.02},
	{"uint8 z=255", 0, 255, 255, 0.75},
	{"int4", -8, 7, 0, 0.25},
	{"int4 z=1", -8, 7, 1, 0.3},
	{"int4 narrow", -7, 7, 0, 1e-3},
	{"uint4", 0, 15, 0, 1.0 / 7},
	{"uint4 z=8", 0, 15, 8, 1e-30},
	{"tiny", -1, 1, 0, 1e30},
	{"subnormal scale", -128, 127, 0, 1e-38},
}

func TestVectorFakeQuantIntMatchesScalar(t *testing.T) {
	testVectorFakeQuantInt[float32](t)
	testVectorFakeQuantInt[float64](t)
}

func testVectorFakeQuantInt[T Float](t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, gr := range vecGrids {
		s := T(gr.s)
		if math.IsInf(float64(1/s), 0) {
			continue
		}
		q := NewInt(s, gr.zp, gr.qmin, gr.qmax)
		for _, n := range vecLengths() {
			// One element more than n on each side: a vector kernel must
			// write nothing outside dst, and unaligned slices must work.
			x := vecInputs(r, n+2, s, gr.qmin-gr.zp, gr.qmax-gr.zp)
			dy := grads[T](n + 2)
			var y, dx, inPlace [2][]T
			bothPaths(t, func(vector bool) {
				k := 0
				if !vector {
					k = 1
				}
				y[k], dx[k] = make([]T, n+2), make([]T, n+2)
				y[k][0], y[k][n+1], dx[k][0], dx[k][n+1] = 42, 42, 42, 42
				mustNil(t, FakeQuantInt(y[k][1:n+1], x[1:n+1], q))
				mustNil(t, FakeQuantIntGrad(dx[k][1:n+1], x[1:n+1], dy[1:n+1], q))
				inPlace[k] = append([]T(nil), x...)
				mustNil(t, FakeQuantInt(inPlace[k][1:n+1], inPlace[k][1:n+1], q))
				if vector && haveAVX2 && is32[T]() {
					if got := fakeQuantIntVec(y[k][1:n+1], x[1:n+1], q); got != n&^7 {
						t.Fatalf("%s n=%d: the vector kernel did %d elements, want %d", gr.name, n, got, n&^7)
					}
				}
			})
			for i := range n + 2 {
				if bitsOf(y[0][i]) != bitsOf(y[1][i]) || bitsOf(dx[0][i]) != bitsOf(dx[1][i]) || bitsOf(inPlace[0][i]) != bitsOf(inPlace[1][i]) {
					t.Fatalf("%T %s n=%d [%d]: x=%v: vector y=%v dx=%v in place %v; scalar y=%v dx=%v in place %v",
						s, gr.name, n, i, x[i], y[0][i], dx[0][i], inPlace[0][i], y[1][i], dx[1][i], inPlace[1][i])
				}
			}
			if n > 0 && (y[0][0] != 42 || y[0][n+1] != 42 || dx[0][0] != 42 || dx[0][n+1] != 42) {
				t.Fatalf("%s n=%d: written outside dst", gr.name, n)
			}
		}
	}
}

// TestVectorFakeQuantIntReference checks the vector path alone against
// the literal PyTorch reference on every special value, in every
// position of a vector.
func TestVectorFakeQuantIntReference(t *testing.T) {
	for _, gr := range vecGrids {
		s := float32(gr.s)
		if math.IsInf(float64(1/s), 0) {
			continue
		}
		q := NewInt(s, gr.zp, gr.qmin, gr.qmax)
		sp := specials(s, gr.qmin-gr.zp, gr.qmax-gr.zp)
		for shift := range 8 {
			x := append(make([]float32, shift), sp...)
			y, dx, dy := make([]float32, len(x)), make([]float32, len(x)), grads[float32](len(x))
			mustNil(t, FakeQuantInt(y, x, q))
			mustNil(t, FakeQuantIntGrad(dx, x, dy, q))
			for i, v := range x {
				want, in := refFakeQuant32(v, s, gr.zp, gr.qmin, gr.qmax)
				wantDx := float32(0)
				if in {
					wantDx = dy[i]
				}
				if math.Float32bits(y[i]) != math.Float32bits(want) || math.Float32bits(dx[i]) != math.Float32bits(wantDx) {
					t.Fatalf("%s [%d]: x=%v (%#x): y=%v dx=%v, want %v %v", gr.name, i, v, math.Float32bits(v), y[i], dx[i], want, wantDx)
				}
			}
		}
	}
}

func TestVectorAbsMaxMatchesScalar(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	sp := specials[float32](0.1, -128, 127)
	for _, n := range vecLengths() {
		for trial := range 20 {
			x := make([]float32, n)
			for i := range x {
				switch trial % 4 {
				case 0: // ordinary values
					x[i] = float32(r.NormFloat64())
				case 1: // specials
					x[i] = sp[r.IntN(len(sp))]
				case 2: // only NaN, ±Inf and zeros
					x[i] = []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 0, float32(math.Copysign(0, -1))}[r.IntN(5)]
				default: // subnormals, with the largest somewhere
					x[i] = float32(r.Float64()-0.5) * 1e-39
				}
			}
			if trial%4 == 3 && n > 0 {
				x[r.IntN(n)] = -math.MaxFloat32
			}
			var got [2]float32
			bothPaths(t, func(vector bool) {
				k := 0
				if !vector {
					k = 1
				}
				got[k] = AbsMax(x)
			})
			if math.Float32bits(got[0]) != math.Float32bits(got[1]) {
				t.Fatalf("n=%d trial %d: vector AbsMax %v, scalar %v (x=%v)", n, trial, got[0], got[1], x)
			}
		}
	}
}

func TestVectorGroupsMatchScalar(t *testing.T) {
	testVectorGroups[float32](t)
	testVectorGroups[float64](t)
}

func testVectorGroups[T Float](t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, g := range []int{1, 4, 8, 12, 16, 24, 32, 40, 64, 128} {
		for _, groups := range []int{1, 2, 3, 7, 33} {
			n := g * groups
			qs := make([]Int[T], groups)
			x := make([]T, 0, n)
			for k := range qs {
				gr := vecGrids[(k+g)%len(vecGrids)]
				s := T(gr.s)
				if math.IsInf(float64(1/s), 0) {
					s = 1
				}
				qs[k] = NewInt(s, gr.zp, gr.qmin, gr.qmax)
				x = append(x, vecInputs(r, g, s, gr.qmin-gr.zp, gr.qmax-gr.zp)...)
			}
			dy := grads[T](n)
			var y, dx [2][]T
			bothPaths(t, func(vector bool) {
				k := 0
				if !vector {
					k = 1
				}
				y[k], dx[k] = make([]T, n), make([]T, n)
				mustNil(t, FakeQuantIntGroups(y[k], x, qs))
				mustNil(t, FakeQuantIntGroupsGrad(dx[k], x, dy, qs))
			})
			for i := range n {
				if bitsOf(y[0][i]) != bitsOf(y[1][i]) || bitsOf(dx[0][i]) != bitsOf(dx[1][i]) {
					t.Fatalf("%T groups of %d ×%d [%d]: x=%v: vector y=%v dx=%v; scalar y=%v dx=%v", x[0], g, groups, i, x[i], y[0][i], dx[0][i], y[1][i], dx[1][i])
				}
			}
		}
	}
}

func TestVectorGroupsSymmetricMatchScalar(t *testing.T) {
	testVectorGroupsSymmetric[float32](t)
	testVectorGroupsSymmetric[float64](t)
}

func testVectorGroupsSymmetric[T Float](t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	sp := specials[T](0.1, -8, 7)
	for _, rg := range []struct{ qmin, qmax int }{{-128, 127}, {-127, 127}, {-8, 7}, {-7, 7}, {-1, 1}, {0, 15}, {-3, 300}} {
		for _, minScale := range []T{0x1p-23, 1e-30, 0.05, 1e10} {
			// The assembly goes by batches of 8 groups, then one by one.
			for _, gg := range [][2]int{{4, 9}, {8, 1}, {8, 7}, {8, 8}, {8, 17}, {16, 9}, {24, 16}, {32, 9}, {32, 25}, {64, 8}, {64, 11}} {
				g, groups := gg[0], gg[1]
				n := g * groups
				x := make([]T, n)
				for k := range groups {
					blk := x[k*g : (k+1)*g]
					for i := range blk {
						switch (k + g) % 9 {
						case 0: // zeros: amax 0, s = minScale
						case 1: // not one finite value
							blk[i] = T([]float64{math.NaN(), math.Inf(1), math.Inf(-1)}[i%3])
						case 2: // subnormals
							blk[i] = T(float64(i+1) * 1e-41)
						case 3: // the largest floats
							blk[i] = T(math.MaxFloat32 * (1 - float64(i)/float64(2*g)))
						case 4:
							blk[i] = sp[r.IntN(len(sp))]
						default:
							blk[i] = T(r.NormFloat64() * math.Pow(10, float64(r.IntN(7)-3)))
						}
					}
				}
				dy := grads[T](n)
				var y, dx [2][]T
				bothPaths(t, func(vector bool) {
					k := 0
					if !vector {
						k = 1
					}
					y[k], dx[k] = make([]T, n), make([]T, n)
					mustNil(t, FakeQuantIntGroupsSymmetric(y[k], x, groups, rg.qmin, rg.qmax, minScale))
					mustNil(t, FakeQuantIntGroupsSymmetricGrad(dx[k], x, dy, groups, rg.qmin, rg.qmax, minScale))
				})
				for i := range n {
					if bitsOf(y[0][i]) != bitsOf(y[1][i]) || bitsOf(dx[0][i]) != bitsOf(dx[1][i]) {
						t.Fatalf("%T [%d, %d] minScale %v groups of %d [%d]: x=%v: vector y=%v dx=%v; scalar y=%v dx=%v",
							x[0], rg.qmin, rg.qmax, minScale, g, i, x[i], y[0][i], dx[0][i], y[1][i], dx[1][i])
					}
				}
			}
		}
	}
}

// TestVectorNoAllocs: the kernels allocate nothing on either path.
func TestVectorNoAllocs(t *testing.T) {
	x, dy, dst := benchData(1000)
	q := NewInt[float32](0.1, 0, -128, 127)
	qs := make([]Int[float32], 1000/8)
	for i := range qs {
		qs[i] = q
	}
	for name, f := range map[string]func(){
		"FakeQuantInt":                    func() { _ = FakeQuantInt(dst, x, q) },
		"FakeQuantIntGrad":                func() { _ = FakeQuantIntGrad(dst, x, dy, q) },
		"AbsMax":                          func() { _ = AbsMax(x) },
		"FakeQuantIntGroups":              func() { _ = FakeQuantIntGroups(dst, x, qs) },
		"FakeQuantIntGroupsGrad":          func() { _ = FakeQuantIntGroupsGrad(dst, x, dy, qs) },
		"FakeQuantIntGroupsSymmetric":     func() { _ = FakeQuantIntGroupsSymmetric(dst, x, 125, -8, 7, 0x1p-23) },
		"FakeQuantIntGroupsSymmetricGrad": func() { _ = FakeQuantIntGroupsSymmetricGrad(dst, x, dy, 125, -8, 7, 0x1p-23) },
	} {
		bothPaths(t, func(vector bool) {
			if a := testing.AllocsPerRun(10, f); a != 0 {
				t.Errorf("%s (vector %v): %v allocations", name, vector, a)
			}
		})
	}
}

func ExampleFakeQuantInt_vector() {
	// 10 elements: 8 through the vector kernel (when there is one), 2 in
	// the scalar tail; the results are the same either way.
	x := []float32{0.25, 0.35, -0.05, -0.04, 12.75, 13, -13, 0.15, 0.05, 1.0}
	y := make([]float32, len(x))
	_ = FakeQuantInt(y, x, NewInt[float32](0.1, 0, -128, 127))
	fmt.Println(y)
	// Output: [0.2 0.4 0 0 12.7 12.7 -12.8 0.2 0 1]
}
