package quantize

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/actq/actq/ops"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// rowSpecs are the specs of the per-row tests: every format family, both
// integer rules, with dynamic scales and fixed ones (set per shape).
var rowSpecs = []Spec{
	{Format: Int8, Symmetric: true},
	{Format: Int8},
	{Format: UInt8},
	{Format: UInt8, Symmetric: true},
	{Format: Int4, Symmetric: true, NarrowRange: true},
	{Format: UInt4},
	{Format: FP8E4M3, DynamicFloatScale: true},
	{Format: FP8E5M2, DynamicFloatScale: true},
	{Format: FP16},
	{Format: BF16},
}

// rowData returns n values with NaN, ±Inf, a zero row (at rows of 8) and a
// wide spread of magnitudes.
func rowData(n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(math.Sin(float64(i)*1.3)*4 + math.Cos(float64(i)*0.11))
		if i%7 == 0 {
			v[i] *= 30
		}
	}
	if n > 24 {
		v[3], v[10], v[17] = float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))
		for i := 8; i < 16; i++ {
			v[i] = 0
		}
	}
	return v
}

// fakeQuantNode runs FakeQuant(x) under s on the tape machine and returns
// the result and the statistics.
func fakeQuantNode(t *testing.T, x *tensor.Dense, s Spec) ([]float32, StatsSnapshot) {
	t.Helper()
	var st Stats
	zeros := tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(x.Shape()...))
	y, _ := runTape(t, x.Clone().(*tensor.Dense), zeros, func(x *gorgonia.Node) (*gorgonia.Node, error) {
		return FakeQuant(x, s, WithStats(&st))
	})
	out := make([]float32, len(y))
	for i, v := range y {
		out[i] = float32(v) // exact: y holds float32 values
	}
	return out, st.Snapshot()
}

// sameBits reports whether a and b hold the same float32 bits.
func sameBits(a, b []float32) (int, bool) {
	if len(a) != len(b) {
		return -1, false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return i, false
		}
	}
	return 0, true
}

// TestPerRowIsPerGroupOfTheRow: PerRow gives PerGroup with GroupSize = the
// last dimension, bit for bit, values and statistics, for every format,
// dynamic and fixed, on ranks 1 to 4 and on rows of 8k elements (the
// vector kernels) and others.
func TestPerRowIsPerGroupOfTheRow(t *testing.T) {
	for _, shape := range [][]int{{40}, {5, 8}, {3, 7}, {2, 3, 32}, {2, 2, 3, 13}, {1, 1}} {
		n := 1
		for _, d := range shape {
			n *= d
		}
		last := shape[len(shape)-1]
		x := dense32(shape, rowData(n)...)
		for _, base := range rowSpecs {
			for _, fixed := range []bool{false, true} {
				row, group := base, base
				row.Granularity = PerRow
				group.Granularity, group.GroupSize = PerGroup, last
				if fixed {
					sc := make([]float64, n/last)
					for i := range sc {
						sc[i] = 0.03 * float64(i+1)
					}
					row.Scale, group.Scale = sc, sc
				}
				yr, sr := fakeQuantNode(t, x, row)
				yg, sg := fakeQuantNode(t, x, group)
				if i, ok := sameBits(yr, yg); !ok {
					t.Errorf("%v %v fixed=%v: element %d: PerRow %v, PerGroup %v", shape, base.Format, fixed, i, yr[i], yg[i])
				}
				if !statsAlike(sr, sg) {
					t.Errorf("%v %v fixed=%v: stats %+v, PerGroup %+v", shape, base.Format, fixed, sr, sg)
				}
			}
		}
	}
}

// statsAlike compares snapshots, NaN sums equal.
func statsAlike(a, b StatsSnapshot) bool {
	eq := func(x, y float64) bool { return x == y || (math.IsNaN(x) && math.IsNaN(y)) }
	return a.Runs == b.Runs && a.Elements == b.Elements && a.Clipped == b.Clipped && a.Zeroed == b.Zeroed &&
		a.NaN == b.NaN && a.Inf == b.Inf && eq(a.Signal, b.Signal) && eq(a.Noise, b.Noise)
}

// TestPerRowSpecs: PerRow's errors, its hash and description, and an
// Observer calibrating one scale per row.
func TestPerRowSpecs(t *testing.T) {
	g := gorgonia.NewGraph()
	m := gorgonia.NodeFromAny(g, dense32([]int{4, 6}, ramp32(24, -3, 5)...), gorgonia.WithName("m"))
	sc := gorgonia.NodeFromAny(g, float32(1), gorgonia.WithName("sc"))
	for _, c := range []struct {
		name string
		x    *gorgonia.Node
		s    Spec
		want error
		msg  string
	}{
		{"scalar", sc, Spec{Granularity: PerRow}, ops.ErrShape, "PerRow needs a tensor of rank ≥ 1"},
		{"too few scales", m, Spec{Granularity: PerRow, Scale: []float64{1, 1}}, ErrSpec, "2 scales, want 4 (one per row"},
		{"zero points without scales", m, Spec{Granularity: PerRow, ZeroPoint: []int{0, 0, 0, 0}}, ErrSpec, "ZeroPoint given without Scale"},
	} {
		_, err := FakeQuant(c.x, c.s)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v, want %v containing %q", c.name, err, c.want, c.msg)
		}
	}
	// Axis and GroupSize are ignored.
	y, err := FakeQuant(m, Spec{Granularity: PerRow, Axis: 7, GroupSize: 5, Symmetric: true})
	if err != nil {
		t.Fatal(err)
	}
	if s := y.Op().String(); !strings.Contains(s, "PerRow") {
		t.Errorf("op %q does not name PerRow", s)
	}
	if Granularity(3).String() != "PerRow" || Granularity(4).String() != "Granularity(4)" {
		t.Errorf("String: %v, %v", Granularity(3), Granularity(4))
	}
	// One scale per row from an Observer: rows [−3, …], symmetric int8.
	obs, err := NewObserver(Spec{Format: Int8, Granularity: PerRow, Symmetric: true}, ObserverConfig{})
	if err != nil {
		t.Fatal(err)
	}
	v := []float32{1, -2, 0.5, 4, 0, 0, -127, 3}
	if err := obs.Observe(dense32([]int{1, 4, 2}, v...)); err != nil {
		t.Fatal(err)
	}
	s, err := obs.Spec()
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{float64(float32(2) / 127), float64(float32(4) / 127), 0x1p-23, 1}
	if len(s.Scale) != 4 || s.Granularity != PerRow {
		t.Fatalf("observer spec %+v, want 4 scales per row", s)
	}
	for i, w := range want {
		if s.Scale[i] != w {
			t.Errorf("scale %d = %v, want %v", i, s.Scale[i], w)
		}
	}
	if _, err := NewObserver(Spec{Granularity: PerRow + 1}, ObserverConfig{}); !errors.Is(err, ErrSpec) {
		t.Errorf("unknown granularity: %v", err)
	}
}

// TestFakeQuantSlice: the slice entry point computes the node's values and
// statistics bit for bit (float32 and float64), in place without
// statistics, and refuses what the node refuses.
func TestFakeQuantSlice(t *testing.T) {
	shape := []int{3, 2, 16}
	v := rowData(96)
	x := dense32(shape, v...)
	specs := append(rowSpecs[:len(rowSpecs):len(rowSpecs)],
		Spec{Format: Int4, Granularity: PerGroup, GroupSize: 8, Symmetric: true},
		Spec{Format: Int8, Granularity: PerChannel, Axis: 1, Scale: []float64{0.05, 0.1}},
		Spec{Format: UInt8, Granularity: PerChannel, Axis: -1})
	for i, s := range specs {
		if i < len(rowSpecs) {
			s.Granularity = PerRow
		}
		want, wst := fakeQuantNode(t, x, s)
		var st Stats
		got := make([]float32, len(v))
		if err := FakeQuantSlice(got, v, shape, s, &st); err != nil {
			t.Fatalf("%+v: %v", s, err)
		}
		if j, ok := sameBits(got, want); !ok {
			t.Errorf("%+v: element %d = %v, the node's %v", s, j, got[j], want[j])
		}
		if !statsAlike(st.Snapshot(), wst) {
			t.Errorf("%+v: stats %+v, the node's %+v", s, st.Snapshot(), wst)
		}
		in := append([]float32(nil), v...)
		if err := FakeQuantSlice(in, in, shape, s, nil); err != nil {
			t.Fatal(err)
		}
		if j, ok := sameBits(in, want); !ok {
			t.Errorf("%+v in place: element %d = %v, want %v", s, j, in[j], want[j])
		}
		// float64 against the float64 node.
		v64 := make([]float64, len(v))
		for j, f := range v {
			v64[j] = float64(f)
		}
		g := gorgonia.NewGraph()
		xn := gorgonia.NodeFromAny(g, tensor.New(tensor.WithShape(shape...), tensor.WithBacking(append([]float64(nil), v64...))))
		yn, err := FakeQuant(xn, s)
		if err != nil {
			t.Fatal(err)
		}
		mach := gorgonia.NewTapeMachine(g)
		if err := mach.RunAll(); err != nil {
			t.Fatal(err)
		}
		w64 := yn.Value().Data().([]float64)
		got64 := make([]float64, len(v64))
		if err := FakeQuantSlice(got64, v64, shape, s, nil); err != nil {
			t.Fatal(err)
		}
		for j := range got64 {
			if math.Float64bits(got64[j]) != math.Float64bits(w64[j]) {
				t.Errorf("%+v float64: element %d = %v, the node's %v", s, j, got64[j], w64[j])
				break
			}
		}
		mach.Close()
	}

	var st Stats
	buf := make([]float32, 96)
	for _, c := range []struct {
		name   string
		dst, x []float32
		shape  []int
		s      Spec
		st     *Stats
		want   error
		msg    string
	}{
		{"short x", buf, v[:95], shape, Spec{}, nil, ops.ErrShape, "x: x has 95 elements"},
		{"short dst", buf[:10], v, shape, Spec{}, nil, ops.ErrShape, "dst: x has 10 elements"},
		{"in place with stats", buf, buf, shape, Spec{}, &st, ops.ErrValue, "dst cannot be x"},
		{"bad group", buf, v, shape, Spec{Granularity: PerGroup, GroupSize: 5}, nil, ErrSpec, "does not divide"},
		{"bad axis", buf, v, shape, Spec{Granularity: PerChannel, Axis: 3}, nil, ops.ErrAxis, "Spec.Axis 3"},
		{"scalar per row", buf[:1], v[:1], nil, Spec{Granularity: PerRow}, nil, ops.ErrShape, "rank ≥ 1"},
		// Negative dimensions whose product is len(x), and a product that
		// wraps to 0, are refused before any parameter is allocated.
		{"negative dimensions", buf[:4], v[:4], []int{-1, -4}, Spec{Granularity: PerChannel}, nil, ops.ErrShape, "negative dimension"},
		{"negative dimension per group", buf[:4], v[:4], []int{2, -2}, Spec{Granularity: PerGroup, GroupSize: 2}, nil, ops.ErrShape, "negative dimension"},
		{"too many elements", nil, nil, []int{1 << 62, 4}, Spec{Granularity: PerChannel}, nil, ops.ErrShape, "more elements than an int holds"},
	} {
		err := FakeQuantSlice(c.dst, c.x, c.shape, c.s, c.st)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) || !strings.Contains(err.Error(), "quantize.FakeQuantSlice") {
			t.Errorf("%s: %v, want %v containing %q", c.name, err, c.want, c.msg)
		}
	}
	// A scalar, per tensor: 0.3 rounds to 1229/1024·2^-2 in FP16.
	out := []float32{0}
	if err := FakeQuantSlice(out, []float32{0.3}, nil, Spec{Format: FP16}, nil); err != nil || out[0] != 0.300048828125 {
		t.Errorf("scalar FP16: %v, %v", out, err)
	}
}

// TestPerRowMaskedRows: a row quantized with the entries after a prefix
// masked (−Inf, as attention scores carry the causal mask, or 0, as
// probabilities do) quantizes the prefix exactly as the prefix alone:
// dynamic scales ignore ±Inf, and a range from 0 (affine, unsigned) or of
// magnitudes is not moved by zeros. This is what lets an incremental
// decoder quantize only the visible keys of a query row.
func TestPerRowMaskedRows(t *testing.T) {
	const n = 40
	scores, probs := rowData(n)[:n], make([]float32, n)
	for i := range scores {
		if math.IsNaN(float64(scores[i])) || math.IsInf(float64(scores[i]), 0) {
			scores[i] = 1.5
		}
		probs[i] = float32(math.Exp(float64(-i%9))) / 7
	}
	scoreSpecs := []Spec{{Format: Int8, Symmetric: true}, {Format: Int8}, {Format: FP8E4M3, DynamicFloatScale: true}, {Format: FP16}}
	probSpecs := []Spec{{Format: UInt8}, {Format: UInt8, Symmetric: true}, {Format: UInt4}, {Format: FP8E4M3, DynamicFloatScale: true}}
	for _, c := range []struct {
		what  string
		row   []float32
		mask  float32
		specs []Spec
	}{
		{"scores", scores, float32(math.Inf(-1)), scoreSpecs},
		{"probs", probs, 0, probSpecs},
	} {
		for _, s := range c.specs {
			s.Granularity = PerRow
			for _, visible := range []int{1, 5, 16, 33, n} {
				full := append([]float32(nil), c.row...)
				for i := visible; i < n; i++ {
					full[i] = c.mask
				}
				want := make([]float32, n)
				if err := FakeQuantSlice(want, full, []int{1, n}, s, nil); err != nil {
					t.Fatal(err)
				}
				got := make([]float32, visible)
				if err := FakeQuantSlice(got, c.row[:visible], []int{1, visible}, s, nil); err != nil {
					t.Fatal(err)
				}
				if j, ok := sameBits(got, want[:visible]); !ok {
					t.Errorf("%s %v %v, %d visible: element %d = %v, masked row's %v", c.what, s.Format, s.Symmetric, visible, j, got[j], want[j])
				}
				if c.mask == 0 {
					for j := visible; j < n; j++ {
						if want[j] != 0 {
							t.Errorf("%s %v: masked probability %d quantized to %v, want 0", c.what, s.Format, j, want[j])
						}
					}
				}
			}
		}
	}
}

func TestPassthroughSlice(t *testing.T) {
	var st Stats
	PassthroughSlice([]float32{1, float32(math.NaN()), float32(math.Inf(-1)), 2}, &st)
	PassthroughSlice([]float64{3}, &st)
	PassthroughSlice([]float64{3}, nil)
	want := StatsSnapshot{Runs: 2, Elements: 5, NaN: 1, Inf: 1, Signal: 14}
	if got := st.Snapshot(); got != want {
		t.Errorf("stats %+v, want %+v", got, want)
	}
}

func TestSpecDynamic(t *testing.T) {
	for _, c := range []struct {
		s    Spec
		want bool
	}{
		{Spec{}, true},
		{Spec{Format: UInt4, Granularity: PerRow}, true},
		{Spec{Scale: []float64{1}}, false},
		{Spec{Format: FP16}, false},
		{Spec{Format: FP8E4M3, DynamicFloatScale: true}, true},
		{Spec{Format: FP8E4M3, DynamicFloatScale: true, Scale: []float64{2}}, false},
	} {
		if got := c.s.Dynamic(); got != c.want {
			t.Errorf("%+v: Dynamic() = %v, want %v", c.s, got, c.want)
		}
	}
}
