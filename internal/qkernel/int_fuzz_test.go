package qkernel

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/actq/actq/internal/numtest"
)

// fuzzRanges are the code ranges FuzzFakeQuantInt picks from: the formats'
// (ranges, int_test.go) and a few odd ones.
var fuzzRanges = append(append([]struct{ qmin, qmax int }{}, ranges...),
	struct{ qmin, qmax int }{-1, 1}, struct{ qmin, qmax int }{0, 1}, struct{ qmin, qmax int }{-3, 300})

// fuzzInts decodes FuzzFakeQuantInt's data: 5 bytes per element (at most
// 64), a little-endian int32 m and a kind byte. By kind%16: 0–9 give
// m·2^e; 10 the tie (k + ½)·s and 11 the grid point k·s, with k = m mod
// 600 − 300 (beyond every range of codes); 12 the grid point's upper
// neighbour; 13 NaN; 14 +Inf; 15 −Inf. Values are computed in T.
func fuzzInts[T Float](data []byte, e int, s T) []T {
	n := min(len(data)/5, 64)
	x := make([]T, n)
	for j := range n {
		b := data[5*j : 5*j+5]
		m := int32(binary.LittleEndian.Uint32(b))
		k := T(int(m%600+600)%600 - 300)
		switch b[4] % 16 {
		case 10:
			x[j] = (k + 0.5) * s
		case 11:
			x[j] = k * s
		case 12:
			x[j] = T(math.Nextafter(float64(k*s), math.Inf(1)))
			if single[T]() {
				x[j] = T(math.Nextafter32(float32(k*s), float32(math.Inf(1))))
			}
		case 13:
			x[j] = T(math.NaN())
		case 14:
			x[j] = T(math.Inf(1))
		case 15:
			x[j] = T(math.Inf(-1))
		default:
			x[j] = T(math.Ldexp(float64(m), e))
		}
	}
	return x
}

// single reports whether T is float32.
func single[T Float]() bool { return is32[T]() }

// refFakeQuant is PyTorch's per-tensor kernel (aten's
// fake_quantize_tensor_cachemask_kernel) written out literally in T,
// independently of the kernel's magic-number rounding: q_f = zp +
// nearbyint(x·(1/s)), y = (clamp(q_f) − zp)·s, mask qmin ≤ q_f ≤ qmax; NaN
// gives qmin and the mask false.
func refFakeQuant[T Float](x, s T, zp, qmin, qmax int) (T, bool) {
	inv := 1 / s
	t := T(x * inv)
	qf := float64(zp) + math.RoundToEven(float64(t))
	q := math.Max(math.Min(qf, float64(qmax)), float64(qmin))
	if math.IsNaN(qf) {
		q = float64(qmin)
	}
	return T(q-float64(zp)) * s, float64(qmin) <= qf && qf <= float64(qmax)
}

// FuzzFakeQuantInt checks the integer fake-quantization kernels on fuzzed
// data (see fuzzInts) and grids (a fuzzed float32 scale, zero point and
// code range), in both dtypes, against refFakeQuant:
//
//   - FakeQuantInt and Int.FakeQuant give the reference's bits (the vector
//     and scalar code alike);
//   - outputs lie on the grid: y/s is an integer within rounding, in
//     [qmin − z, qmax − z], and y within Bounds;
//   - FakeQuantInt(y) = y, bit for bit;
//   - the gradient is dy where the reference's mask is set and 0
//     elsewhere, even for NaN dy; the mask agrees with the clipping: kept
//     elements moved by at most s/2, clipped ones lie beyond the bound
//     they were clipped to;
//   - per-column (three grids), per-group and dynamic symmetric per-group
//     variants equal the per-element reference with their grids, and the
//     symmetric groups clip no finite value when −qmax is a code;
//   - LSQScaleGrad and LSQScaleGradCols match the float64 sums of
//     PyTorch's per-element terms, and CountInt matches counts from the
//     reference.
func FuzzFakeQuantInt(f *testing.F) {
	elems := func(kinds ...byte) []byte {
		var b []byte
		for i, k := range kinds {
			b = binary.LittleEndian.AppendUint32(b, uint32(int32(97*i*i-1000*i+7)))
			b = append(b, k)
		}
		return b
	}
	all := func(n int) []byte {
		k := make([]byte, n)
		for i := range k {
			k[i] = byte(i)
		}
		return elems(k...)
	}
	for _, s := range []struct {
		data   []byte
		scale  float32
		zp     int16
		rng    uint8
		exp    int8
		groups uint8
	}{
		{all(16), 0.1, 0, 0, -8, 0},
		{all(32), 0.02, 3, 2, -10, 1},
		{all(64), 1, -2, 4, 0, 2},
		{elems(10, 10, 10, 10, 10, 10, 10, 10, 11, 11, 11, 11, 11, 11, 11, 11), 1.0 / 3, 0, 1, 0, 3},
		{elems(13, 14, 15, 0, 1, 2, 3, 4, 5), 1e-3, 100, 3, -20, 4},
		{elems(0, 0, 0, 0, 0, 0, 0, 0), 1e30, 0, 5, 100, 5},
		{elems(0, 1, 2, 3, 4, 5, 6, 7), 1e-38, 0, 6, -127, 6},
		{all(24), 3, 7, 9, -3, 7},
	} {
		f.Add(s.data, math.Float32bits(s.scale), s.zp, s.rng, s.exp, s.groups)
	}
	f.Fuzz(func(t *testing.T, data []byte, scaleBits uint32, zp int16, rng uint8, exp int8, groups uint8) {
		r := fuzzRanges[int(rng)%len(fuzzRanges)]
		z := r.qmin + (int(zp)%(r.qmax-r.qmin+1)+(r.qmax-r.qmin+1))%(r.qmax-r.qmin+1)
		s := float32(math.Abs(float64(math.Float32frombits(scaleBits))))
		if !(s > 0) || math.IsInf(float64(s), 0) || math.IsInf(float64(1/s), 0) {
			return // NewInt's precondition
		}
		g := []int{1, 2, 3, 4, 8, 16, 32}[int(groups)%7]
		fuzzFakeQuantInt(t, fuzzInts(data, int(exp), s), s, z, r.qmin, r.qmax, g)
		fuzzFakeQuantInt(t, fuzzInts(data, int(exp), float64(s)), float64(s), z, r.qmin, r.qmax, g)
	})
}

func fuzzFakeQuantInt[T Float](t *testing.T, x []T, s T, z, qmin, qmax, g int) {
	t.Helper()
	n := len(x)
	if n == 0 {
		return
	}
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("%T s=%v z=%d [%d, %d] x=%v: "+format, append([]any{s, s, z, qmin, qmax, x}, args...)...)
	}
	q := NewInt(s, z, qmin, qmax)
	lo, hi := q.Bounds()
	finiteBounds := !math.IsInf(float64(lo), 0) && !math.IsInf(float64(hi), 0)
	y, dx, dxNaN := make([]T, n), make([]T, n), make([]T, n)
	dy, nanDy := make([]T, n), make([]T, n)
	for i := range dy {
		dy[i] = T(1 + i%7)
		nanDy[i] = T(math.NaN())
	}
	mustNil(t, FakeQuantInt(y, x, q))
	mustNil(t, FakeQuantIntGrad(dx, x, dy, q))
	mustNil(t, FakeQuantIntGrad(dxNaN, x, nanDy, q))
	eps := 0x1p-52
	if single[T]() {
		eps = 0x1p-23
	}
	var wantCounts Counts
	var wantLSQ, lsqScale float64
	for i, v := range x {
		want, inside := refFakeQuant(v, s, z, qmin, qmax)
		if got, in := q.FakeQuant(v); !numtest.Alike(float64(y[i]), float64(want)) || !numtest.Alike(float64(got), float64(want)) || in != inside {
			fail("[%d] FakeQuantInt %v, Int.FakeQuant %v (inside %v); reference %v (inside %v)", i, y[i], got, in, want, inside)
		}
		// The gradient mask.
		if inside && (dx[i] != dy[i] || !math.IsNaN(float64(dxNaN[i]))) || !inside && (math.Float64bits(float64(dx[i])) != 0 || math.Float64bits(float64(dxNaN[i])) != 0) {
			fail("[%d] inside=%v: gradient %v (NaN dy: %v) for dy %v", i, inside, dx[i], dxNaN[i], dy[i])
		}
		yi, xi, sf := float64(y[i]), float64(v), float64(s)
		if finiteBounds {
			// On the grid and in range.
			k := yi / sf
			if math.Abs(k-math.Round(k)) > 2*eps*math.Abs(k) || math.Round(k) < float64(qmin-z) || math.Round(k) > float64(qmax-z) || y[i] < lo || y[i] > hi {
				fail("[%d] y = %v: y/s = %v is not a code in [%d, %d]", i, y[i], k, qmin-z, qmax-z)
			}
			// The mask agrees with the clipping.
			switch {
			case inside && math.Abs(yi-xi) > sf/2*(1+4*eps)+2*eps*math.Abs(xi):
				fail("[%d] kept, but moved by %v > s/2", i, yi-xi)
			case !inside && !math.IsNaN(xi) && !(y[i] == lo && xi < yi || y[i] == hi && xi > yi):
				fail("[%d] clipped, but y = %v is not the bound beyond which x lies", i, y[i])
			}
		}
		// LSQ: PyTorch's per-element terms, summed in float64.
		var d float64
		switch code := math.RoundToEven(float64(T(v * (1 / s)))); {
		case inside:
			d = (yi - xi) / sf
			lsqScale += math.Abs(float64(dy[i])) * (math.Abs(xi)/sf + 1)
		case code > float64(qmax-z):
			d = float64(qmax - z)
		default:
			d = float64(qmin - z)
		}
		wantLSQ += float64(dy[i]) * d
		lsqScale += math.Abs(float64(dy[i]) * d) // the sum's own rounding
		wantCounts.add(xi, yi, !inside)
	}
	// Idempotent.
	yy := make([]T, n)
	mustNil(t, FakeQuantInt(yy, y, q))
	for i := range y {
		if !numtest.Alike(float64(yy[i]), float64(y[i])) && finiteBounds {
			fail("not idempotent at [%d]: %v → %v → %v", i, x[i], y[i], yy[i])
		}
	}
	// In place.
	inPlace := append([]T(nil), x...)
	mustNil(t, FakeQuantInt(inPlace, inPlace, q))
	for i := range y {
		if !numtest.Alike(float64(inPlace[i]), float64(y[i])) {
			fail("in place [%d]: %v, out of place %v", i, inPlace[i], y[i])
		}
	}
	// Statistics and LSQ.
	c, err := CountInt(x, y, q)
	mustNil(t, err)
	if c != wantCounts && !(math.IsNaN(c.Noise) && math.IsNaN(wantCounts.Noise)) {
		fail("CountInt = %+v, want %+v", c, wantCounts)
	}
	ls, err := LSQScaleGrad(x, dy, q)
	mustNil(t, err)
	if finiteBounds && math.Abs(ls-wantLSQ) > 4*eps*lsqScale+1e-300 && !(math.IsNaN(ls) && math.IsNaN(wantLSQ)) {
		fail("LSQScaleGrad = %v, want %v", ls, wantLSQ)
	}
	fuzzIntVariants(t, fail, x, dy, s, z, qmin, qmax, g)
}

// fuzzIntVariants checks the per-column, per-group and symmetric per-group
// kernels against the per-element reference.
func fuzzIntVariants[T Float](t *testing.T, fail func(string, ...any), x, dy []T, s T, z, qmin, qmax, g int) {
	t.Helper()
	n := len(x)
	// Three grids: the fuzzed one, one with twice the scale and the middle
	// code as zero point, and one with scale 1 and zero point qmin.
	type grid struct {
		s T
		z int
		q Int[T]
	}
	s2 := 2 * s
	if math.IsInf(float64(s2), 0) || math.IsInf(float64(1/s2), 0) {
		s2 = s
	}
	grids := []grid{{s: s, z: z}, {s: s2, z: (qmin + qmax) / 2}, {s: 1, z: qmin}}
	qs := make([]Int[T], len(grids))
	for k := range grids {
		grids[k].q = NewInt(grids[k].s, grids[k].z, qmin, qmax)
		qs[k] = grids[k].q
	}
	check := func(what string, x, dy, y, dx []T, gridOf func(i int) grid) {
		t.Helper()
		for i, v := range x {
			gr := gridOf(i)
			want, inside := refFakeQuant(v, gr.s, gr.z, qmin, qmax)
			wantDx := T(0)
			if inside {
				wantDx = dy[i]
			}
			if !numtest.Alike(float64(y[i]), float64(want)) || !numtest.Alike(float64(dx[i]), float64(wantDx)) {
				fail("%s [%d] (s=%v, z=%d): y %v, dx %v; reference %v, %v", what, i, gr.s, gr.z, y[i], dx[i], want, wantDx)
			}
		}
	}
	m := n - n%len(qs) // whole rows of 3 columns
	if m > 0 {
		y, dx := make([]T, m), make([]T, m)
		mustNil(t, FakeQuantIntCols(y, x[:m], qs))
		mustNil(t, FakeQuantIntColsGrad(dx, x[:m], dy[:m], qs))
		check("FakeQuantIntCols", x[:m], dy[:m], y, dx, func(i int) grid { return grids[i%3] })
		got := make([]float64, len(qs))
		mustNil(t, LSQScaleGradCols(got, x[:m], dy[:m], qs))
		for k := range qs {
			var col []T
			var dcol []T
			for i := k; i < m; i += 3 {
				col, dcol = append(col, x[i]), append(dcol, dy[i])
			}
			want, err := LSQScaleGrad(col, dcol, qs[k])
			mustNil(t, err)
			if !numtest.Alike(got[k], want) && math.Abs(got[k]-want) > 1e-12*math.Abs(want) {
				fail("LSQScaleGradCols column %d = %v, LSQScaleGrad of the column %v", k, got[k], want)
			}
		}
	}
	m = n - n%g // whole groups of g
	if m == 0 {
		return
	}
	groups := m / g
	gq := make([]Int[T], groups)
	for k := range gq {
		gq[k] = qs[k%3]
	}
	y, dx := make([]T, m), make([]T, m)
	mustNil(t, FakeQuantIntGroups(y, x[:m], gq))
	mustNil(t, FakeQuantIntGroupsGrad(dx, x[:m], dy[:m], gq))
	check("FakeQuantIntGroups", x[:m], dy[:m], y, dx, func(i int) grid { return grids[(i/g)%3] })
	if qmin >= 0 {
		return // the symmetric kernel needs a signed range
	}
	const minScale = 0x1p-23
	mustNil(t, FakeQuantIntGroupsSymmetric(y, x[:m], groups, qmin, qmax, T(minScale)))
	mustNil(t, FakeQuantIntGroupsSymmetricGrad(dx, x[:m], dy[:m], groups, qmin, qmax, T(minScale)))
	for k := range groups {
		blk := x[k*g : (k+1)*g]
		sq := SymmetricInt(AbsMax(blk), qmin, qmax, T(minScale))
		sg := grid{s: sq.Scale(), z: 0}
		check("FakeQuantIntGroupsSymmetric", blk, dy[k*g:(k+1)*g], y[k*g:(k+1)*g], dx[k*g:(k+1)*g], func(int) grid { return sg })
		for i, v := range blk {
			// −qmax is a code too, so |x| ≤ amax = qmax·s fits.
			if qmin <= -qmax && !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) && dx[k*g+i] != dy[k*g+i] {
				fail("symmetric group %d clipped the finite %v (scale %v)", k, v, sq.Scale())
			}
		}
	}
}
