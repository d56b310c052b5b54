package quantize

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/actq/actq/internal/qkernel"
	"github.com/actq/actq/ops"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func TestFakeQuantErrors(t *testing.T) {
	g := gorgonia.NewGraph()
	m := gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(4, 6), gorgonia.WithName("m"))
	m64 := gorgonia.NewMatrix(g, tensor.Float64, gorgonia.WithShape(4, 6), gorgonia.WithName("m64"))
	ints := gorgonia.NewMatrix(g, tensor.Int, gorgonia.WithShape(4, 6), gorgonia.WithName("ints"))
	sc := gorgonia.NewScalar(g, tensor.Float32, gorgonia.WithName("sc"))
	ones := func(n int) []float64 {
		s := make([]float64, n)
		for i := range s {
			s[i] = 1
		}
		return s
	}
	for _, c := range []struct {
		name string
		x    *gorgonia.Node
		s    Spec
		want error
		says string
	}{
		{"nil node", nil, Spec{}, ops.ErrNilNode, "x"},
		{"int dtype", ints, Spec{}, ops.ErrDtype, "dtype"},
		{"zero scale", m, Spec{Scale: []float64{0}}, ErrSpec, "not positive"},
		{"negative scale", m, Spec{Scale: []float64{-1}}, ErrSpec, "not positive"},
		{"NaN scale", m, Spec{Scale: []float64{math.NaN()}}, ErrSpec, "NaN"},
		{"Inf scale", m, Spec{Scale: []float64{math.Inf(1)}}, ErrSpec, "infinite"},
		{"scale underflows float32", m, Spec{Scale: []float64{1e-50}}, ErrSpec, "float32"},
		{"scale fine in float64", m64, Spec{Scale: []float64{1e-50}}, nil, ""},
		{"two scales per tensor", m, Spec{Scale: []float64{1, 1}}, ErrSpec, "2 scales, want 1"},
		{"scales per channel", m, Spec{Granularity: PerChannel, Axis: 1, Scale: ones(4)}, ErrSpec, "4 scales, want 6"},
		{"scales per group", m, Spec{Granularity: PerGroup, GroupSize: 3, Scale: ones(4)}, ErrSpec, "4 scales, want 8"},
		{"zero points count", m, Spec{Scale: []float64{1}, ZeroPoint: []int{0, 0}}, ErrSpec, "2 zero points"},
		{"zero point high", m, Spec{Format: Int4, Scale: []float64{1}, ZeroPoint: []int{8}}, ErrSpec, "outside"},
		{"zero point low", m, Spec{Format: UInt8, Scale: []float64{1}, ZeroPoint: []int{-1}}, ErrSpec, "outside"},
		{"narrow uint zero point 0", m, Spec{Format: UInt8, NarrowRange: true, Scale: []float64{1}}, ErrSpec, "outside"},
		{"narrow uint symmetric dynamic", m, Spec{Format: UInt4, NarrowRange: true, Symmetric: true}, ErrSpec, "Symmetric"},
		{"symmetric with zero point", m, Spec{Symmetric: true, Scale: []float64{1}, ZeroPoint: []int{3}}, ErrSpec, "Symmetric"},
		{"zero point without scale", m, Spec{ZeroPoint: []int{0}}, ErrSpec, "without Scale"},
		{"float zero point", m, Spec{Format: FP8E4M3, Scale: []float64{1}, ZeroPoint: []int{1}}, ErrSpec, "no zero point"},
		{"group size 0", m, Spec{Granularity: PerGroup}, ErrSpec, "GroupSize 0"},
		{"group size negative", m, Spec{Granularity: PerGroup, GroupSize: -2}, ErrSpec, "GroupSize -2"},
		{"group size not dividing", m, Spec{Granularity: PerGroup, GroupSize: 4}, ErrSpec, "does not divide"},
		{"axis high", m, Spec{Granularity: PerChannel, Axis: 2}, ops.ErrAxis, "Axis 2"},
		{"axis low", m, Spec{Granularity: PerChannel, Axis: -3}, ops.ErrAxis, "Axis -3"},
		{"axis negative ok", m, Spec{Granularity: PerChannel, Axis: -1, Scale: ones(6)}, nil, ""},
		{"scalar per channel", sc, Spec{Granularity: PerChannel}, ops.ErrShape, "scalar"},
		{"scalar per group", sc, Spec{Granularity: PerGroup, GroupSize: 1}, ops.ErrShape, "scalar"},
		{"scalar per tensor", sc, Spec{Format: Int4}, nil, ""},
		{"unknown format", m, Spec{Format: Format(42)}, ErrSpec, "unknown format"},
		{"unknown granularity", m, Spec{Granularity: Granularity(7)}, ErrSpec, "unknown granularity"},
	} {
		_, err := FakeQuant(c.x, c.s)
		if c.want == nil {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: got %v, want %v saying %q", c.name, err, c.want, c.says)
		}
	}
}

// run evaluates y = build(x) with dy as the upstream gradient on the tape
// machine and on the Lisp machine, checks they agree, and returns y and dx.
func run(t *testing.T, x, dy *tensor.Dense, build func(x *gorgonia.Node) (*gorgonia.Node, error)) (y, dx []float64) {
	t.Helper()
	y, dx = runTape(t, x, dy, build)
	g := gorgonia.NewGraph()
	xn := gorgonia.NodeFromAny(g, x.Clone().(*tensor.Dense), gorgonia.WithName("x"))
	yn, err := build(xn)
	if err != nil {
		t.Fatal(err)
	}
	dyn := gorgonia.NewConstant(dy.Clone(), gorgonia.WithName("dy"))
	prod, err := gorgonia.HadamardProd(yn, dyn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gorgonia.Sum(prod); err != nil {
		t.Fatal(err)
	}
	m := gorgonia.NewLispMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	gv, err := xn.Grad()
	if err != nil {
		t.Fatal(err)
	}
	ly, ldx := float64s(yn.Value()), float64s(gv)
	for i := range y {
		if math.Float64bits(ly[i]) != math.Float64bits(y[i]) || ldx[i] != dx[i] {
			t.Fatalf("element %d: lisp y=%v dx=%v, tape y=%v dx=%v", i, ly[i], ldx[i], y[i], dx[i])
		}
	}
	return y, dx
}

func dense32(shape []int, v ...float32) *tensor.Dense {
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(v))
}

func ramp32(n int, lo, hi float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = lo + (hi-lo)*float32(i)/float32(n-1)
	}
	return v
}

// TestFakeQuantONNXPerChannel is ONNX's QuantizeLinear/DequantizeLinear
// to int4, axis 0, s = [2, 3, 4], zp = 1.
func TestFakeQuantONNXPerChannel(t *testing.T) {
	x := dense32([]int{3, 4}, 0, 2.5, 4.8, 8.6, -30, -20, 6, 9, 12, 15, 16, 40)
	dy := dense32([]int{3, 4}, ramp32(12, 1, 2)...)
	spec := Spec{Format: Int4, Granularity: PerChannel, Axis: 0, Scale: []float64{2, 3, 4}, ZeroPoint: []int{1, 1, 1}}
	y, dx := run(t, x, dy, func(x *gorgonia.Node) (*gorgonia.Node, error) { return FakeQuant(x, spec) })
	codes := []float64{1, 2, 3, 5, -8, -6, 3, 4, 4, 5, 5, 7}
	clipped := map[int]bool{4: true, 11: true}
	for i, q := range codes {
		s := spec.Scale[i/4]
		if y[i] != (q-1)*s {
			t.Errorf("element %d: y=%v, want code %v → %v", i, y[i], q, (q-1)*s)
		}
		want := float64(dy.Float32s()[i])
		if clipped[i] {
			want = 0
		}
		if dx[i] != want {
			t.Errorf("element %d: dx=%v, want %v", i, dx[i], want)
		}
	}
}

func TestFakeQuantFloatFormatsONNX(t *testing.T) {
	// ONNX's QuantizeLinear to float8 with s = 2, dequantized.
	x := dense32([]int{5}, 0, 1, 2, 100000, 200)
	dy := dense32([]int{5}, 1, 2, 3, 4, 5)
	for f, want := range map[Format][]float64{FP8E4M3: {0, 1, 2, 896, 192}, FP8E5M2: {0, 1, 2, 98304, 192}} {
		y, dx := run(t, x, dy, func(x *gorgonia.Node) (*gorgonia.Node, error) {
			return FakeQuant(x, Spec{Format: f, Scale: []float64{2}})
		})
		for i := range want {
			if y[i] != want[i] || dx[i] != float64(dy.Float32s()[i]) {
				t.Errorf("%v: x=%v: y=%v dx=%v, want %v and straight through", f, x.Float32s()[i], y[i], dx[i], want[i])
			}
		}
	}
}

// TestFakeQuantDynamicSymmetric: per-group Int4, dynamic symmetric (Q4_0's
// layout): each group's absmax maps to 7, nothing clips, gradient passes.
func TestFakeQuantDynamicSymmetric(t *testing.T) {
	v := []float32{0.7, -0.1, 0.2, 0.35, -3.5, 1, 2, 0.5}
	x := dense32([]int{2, 4}, v...)
	dy := dense32([]int{2, 4}, ramp32(8, 1, 3)...)
	var st Stats
	y, dx := run(t, x, dy, func(x *gorgonia.Node) (*gorgonia.Node, error) {
		return FakeQuant(x, Spec{Format: Int4, Granularity: PerGroup, GroupSize: 4, Symmetric: true}, WithStats(&st))
	})
	for i, xv := range v {
		amax := float32(0.7)
		if i >= 4 {
			amax = 3.5
		}
		s := amax / 7
		k := math.RoundToEven(float64(float32(xv * (1 / s))))
		if want := float32(float32(k) * s); float32(y[i]) != want {
			t.Errorf("x=%v: y=%v, want %v (s=%v)", xv, y[i], want, s)
		}
		if dx[i] != float64(dy.Float32s()[i]) {
			t.Errorf("x=%v: dx=%v, want %v", xv, dx[i], dy.Float32s()[i])
		}
	}
	if s := st.Snapshot(); s.Clipped != 0 || s.Elements != 16 || s.Runs != 2 {
		t.Errorf("stats %+v: want 16 elements over two runs (tape, lisp), none clipped", s)
	}
}

// TestFakeQuantDynamicAffineMatchesObserver: the dynamic affine rule is the
// MinMax observer's, so FakeQuant with a dynamic spec equals FakeQuant
// with the spec an observer computed from the same data.
func TestFakeQuantDynamicAffineMatchesObserver(t *testing.T) {
	for _, c := range []struct {
		base  Spec
		shape []int
	}{
		{Spec{Format: UInt8}, []int{6, 10}},
		{Spec{Format: Int8, NarrowRange: true}, []int{6, 10}},
		{Spec{Format: UInt4, Granularity: PerChannel, Axis: 1}, []int{6, 10}},
		{Spec{Format: Int4, Granularity: PerChannel, Axis: 0, Symmetric: true}, []int{6, 10}},
		{Spec{Format: Int8, Granularity: PerGroup, GroupSize: 5}, []int{6, 10}},
		{Spec{Format: FP8E4M3, DynamicFloatScale: true}, []int{6, 10}},
		{Spec{Format: FP8E5M2, DynamicFloatScale: true, Granularity: PerChannel, Axis: -1}, []int{6, 10}},
		// The fused symmetric per-group kernel (vector path for groups of 8k).
		{Spec{Format: Int4, Granularity: PerGroup, GroupSize: 8, Symmetric: true}, []int{4, 32}},
		{Spec{Format: Int8, Granularity: PerGroup, GroupSize: 32, Symmetric: true, NarrowRange: true}, []int{4, 32}},
		{Spec{Format: Int4, Granularity: PerGroup, GroupSize: 4, Symmetric: true}, []int{4, 32}},
		{Spec{Format: UInt4, Granularity: PerGroup, GroupSize: 8, Symmetric: true}, []int{4, 32}},
		{Spec{Format: Int8, Granularity: PerChannel, Axis: 0, Symmetric: true}, []int{4, 32}},
	} {
		base := c.base
		n := c.shape[0] * c.shape[1]
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(math.Sin(float64(i)*1.7))*3 + 0.8
		}
		if n == 128 {
			v[3], v[40], v[77] = float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))
			for i := 64; i < 72; i++ {
				v[i] = 0 // an all-zero group
			}
		}
		x := dense32(c.shape, v...)
		obs, err := NewObserver(base, ObserverConfig{})
		if err != nil {
			t.Fatal(err)
		}
		if err := obs.Observe(x); err != nil {
			t.Fatal(err)
		}
		fixed, err := obs.Spec()
		if err != nil {
			t.Fatal(err)
		}
		dy := dense32(c.shape, ramp32(n, 1, 2)...)
		yd, dxd := run(t, x, dy, func(x *gorgonia.Node) (*gorgonia.Node, error) { return FakeQuant(x, base) })
		yf, dxf := run(t, x, dy, func(x *gorgonia.Node) (*gorgonia.Node, error) { return FakeQuant(x, fixed) })
		for i := range yd {
			if math.Float64bits(yd[i]) != math.Float64bits(yf[i]) || dxd[i] != dxf[i] {
				t.Fatalf("%+v: element %d: dynamic %v %v, observed %v %v (spec %+v)", base, i, yd[i], dxd[i], yf[i], dxf[i], fixed)
			}
		}
	}
}

// TestFakeQuantPerChannelLayouts checks every axis of a 4-D tensor, in
// block mode and in column mode, against the per-element definition.
func TestFakeQuantPerChannelLayouts(t *testing.T) {
	shape := []int{2, 3, 5, 20}
	n := 2 * 3 * 5 * 20
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(math.Sin(float64(i)*0.37)) * 2
	}
	strides := []int{300, 100, 20, 1}
	for axis := -4; axis < 4; axis++ {
		ax := (axis + 4) % 4
		c := shape[ax]
		spec := Spec{Format: Int4, Granularity: PerChannel, Axis: axis, Scale: make([]float64, c), ZeroPoint: make([]int, c)}
		for i := range c {
			spec.Scale[i] = 0.05 * float64(i+1)
			spec.ZeroPoint[i] = i%3 - 1
		}
		x := dense32(shape, v...)
		dy := dense32(shape, ramp32(n, 1, 2)...)
		y, dx := run(t, x, dy, func(x *gorgonia.Node) (*gorgonia.Node, error) { return FakeQuant(x, spec) })
		for i := range v {
			ch := i / strides[ax] % c
			q := qkernel.NewInt(float32(spec.Scale[ch]), spec.ZeroPoint[ch], -8, 7)
			want, in := q.FakeQuant(v[i])
			wantDx := float64(dy.Float32s()[i])
			if !in {
				wantDx = 0
			}
			if float32(y[i]) != want || dx[i] != wantDx {
				t.Fatalf("axis %d element %d: %v %v, want %v %v", axis, i, y[i], dx[i], want, wantDx)
			}
		}
	}
}

func TestFakeQuantScalarAndFloat64(t *testing.T) {
	g := gorgonia.NewGraph()
	x := gorgonia.NewScalar(g, tensor.Float64, gorgonia.WithName("x"))
	y, err := FakeQuant(x, Spec{Format: Int8, Scale: []float64{0.25}})
	if err != nil {
		t.Fatal(err)
	}
	grads, err := gorgonia.Grad(y, x)
	if err != nil {
		t.Fatal(err)
	}
	m := gorgonia.NewTapeMachine(g)
	defer m.Close()
	for _, c := range []struct{ x, y, dx float64 }{{0.3, 0.25, 1}, {0.375, 0.5, 1}, {100, 31.75, 0}, {-0.125, 0, 1}} {
		if err := gorgonia.Let(x, c.x); err != nil {
			t.Fatal(err)
		}
		m.Reset()
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		if got := y.Value().Data().(float64); got != c.y {
			t.Errorf("FakeQuant(%v) = %v, want %v", c.x, got, c.y)
		}
		if got := grads[0].Value().Data().(float64); got != c.dx {
			t.Errorf("dx at %v = %v, want %v", c.x, got, c.dx)
		}
	}
}

// TestFakeQuantVariantsNotMerged: nodes that differ in any parameter, in
// their Stats or in their gradient rule are distinct graph nodes.
func TestFakeQuantVariantsNotMerged(t *testing.T) {
	g := gorgonia.NewGraph()
	x := gorgonia.NewVector(g, tensor.Float32, gorgonia.WithShape(8), gorgonia.WithName("x"))
	var s1, s2 Stats
	specs := []struct {
		s    Spec
		opts []Option
	}{
		{Spec{Format: Int8}, nil},
		{Spec{Format: Int4}, nil},
		{Spec{Format: Int8, Symmetric: true}, nil},
		{Spec{Format: Int8, NarrowRange: true}, nil},
		{Spec{Format: Int8, Scale: []float64{0.1}}, nil},
		{Spec{Format: Int8, Scale: []float64{0.2}}, nil},
		{Spec{Format: Int8, Scale: []float64{0.2}, ZeroPoint: []int{1}}, nil},
		{Spec{Format: Int8, Granularity: PerGroup, GroupSize: 4}, nil},
		{Spec{Format: Int8, Granularity: PerGroup, GroupSize: 2}, nil},
		{Spec{Format: FP16}, nil},
		{Spec{Format: BF16}, nil},
		{Spec{Format: FP8E4M3}, nil},
		{Spec{Format: FP8E4M3, DynamicFloatScale: true}, nil},
		{Spec{Format: Int8}, []Option{WithStats(&s1)}},
		{Spec{Format: Int8}, []Option{WithStats(&s2)}},
		{Spec{Format: Int8}, []Option{WithPlainSTE()}},
	}
	seen := map[*gorgonia.Node]int{}
	for i, c := range specs {
		n, err := FakeQuant(x, c.s, c.opts...)
		if err != nil {
			t.Fatal(err)
		}
		if j, dup := seen[n]; dup {
			t.Errorf("spec %d %+v merged with spec %d %+v", i, c.s, j, specs[j].s)
		}
		seen[n] = i
	}
	// The same spec twice is the same node, as Gorgonia intends.
	a, _ := FakeQuant(x, Spec{Format: Int4, Scale: []float64{0.5}})
	b, _ := FakeQuant(x, Spec{Format: Int4, Scale: []float64{0.5}})
	if a != b {
		t.Error("identical FakeQuant nodes were not merged")
	}
}

func TestFakeQuantPlainSTE(t *testing.T) {
	x := dense32([]int{4}, -100, 0.3, 100, float32(math.NaN()))
	dy := dense32([]int{4}, 1, 2, 3, 4)
	_, dx := run(t, x, dy, func(x *gorgonia.Node) (*gorgonia.Node, error) {
		return FakeQuant(x, Spec{Scale: []float64{0.1}}, WithPlainSTE())
	})
	for i, want := range []float64{1, 2, 3, 4} {
		if dx[i] != want {
			t.Errorf("dx[%d] = %v, want %v", i, dx[i], want)
		}
	}
}

// TestFakeQuantSTEFiniteDifferences checks the straight-through gradient
// against central differences of its surrogate, the clamp of x to
// [(qmin−z−½)·s, (qmax−z+½)·s]: PyTorch's mask keeps every x that rounds to
// a code in range, i.e. FakeQuant with the rounding replaced by the
// identity. On both machines, in float64, for each integer format and
// granularity.
func TestFakeQuantSTEFiniteDifferences(t *testing.T) {
	const n = 24
	v := make([]float64, n)
	for i := range v {
		v[i] = math.Sin(float64(i)*2.3) * 1.5 // avoid the clamp's kinks by ≫ eps
	}
	for _, spec := range []Spec{
		{Format: Int8, Scale: []float64{0.01}},
		{Format: UInt8, Scale: []float64{0.004}, ZeroPoint: []int{100}},
		{Format: Int4, Granularity: PerChannel, Axis: 1, Scale: []float64{0.1, 0.2, 0.05, 0.3}, ZeroPoint: []int{0, 1, -2, 7}},
		{Format: UInt4, Granularity: PerGroup, GroupSize: 4, Scale: []float64{0.1, 0.05, 0.2, 0.1, 0.02, 0.3}, ZeroPoint: []int{3, 8, 0, 15, 7, 7}},
	} {
		x := tensor.New(tensor.WithShape(6, 4), tensor.WithBacking(append([]float64(nil), v...)))
		w := make([]float64, n)
		for i := range w {
			w[i] = 0.5 + float64(i%7)/3
		}
		dy := tensor.New(tensor.WithShape(6, 4), tensor.WithBacking(w))
		_, dx := run(t, x, dy, func(x *gorgonia.Node) (*gorgonia.Node, error) { return FakeQuant(x, spec) })
		p, err := newPlan("test", spec, tensor.Shape{6, 4}, tensor.Float64)
		if err != nil {
			t.Fatal(err)
		}
		qmin, qmax := spec.Format.Range(false)
		surrogate := func(i int, xv float64) float64 {
			var k int
			if p.cols {
				k = (i % (p.nparam * p.block)) / p.block
			} else {
				k = (i / p.block) % p.nparam
			}
			s, z := spec.Scale[k], p.zeroPoint(k)
			return w[i] * min(max(xv, (float64(qmin-z)-0.5)*s), (float64(qmax-z)+0.5)*s)
		}
		const eps = 1e-6
		for i := range v {
			fd := (surrogate(i, v[i]+eps) - surrogate(i, v[i]-eps)) / (2 * eps)
			if math.Abs(fd-dx[i]) > 1e-6 {
				t.Errorf("%v %v element %d (x=%v): STE gradient %v, finite difference of the clamp %v", spec.Format, spec.Granularity, i, v[i], dx[i], fd)
			}
		}
	}
}

// TestFakeQuantDynamicAffineWideRange: a float32 range wider than
// MaxFloat32 (hi − lo overflows) gave a dynamic affine scale of +Inf and
// NaN for every element, as PyTorch's rule does; the scale is now
// hi/(qmax−qmin) − lo/(qmax−qmin). The same for an Observer (found by
// FuzzFakeQuant).
func TestFakeQuantDynamicAffineWideRange(t *testing.T) {
	x := dense32([]int{4}, -3e38, 3e38, 1e36, 0)
	y := runForward(t, x, Spec{Format: UInt8}, nil)
	s := float64(float32(3e38)/255 + float32(3e38)/255)
	for i, v := range y {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			t.Fatalf("y = %v: not finite", y)
		}
		if want := float64(x.Float32s()[i]); math.Abs(v-want) > s/2*1.0001 {
			t.Errorf("y[%d] = %v, want %v within s/2 = %v", i, v, want, s/2)
		}
	}
	obs, err := NewObserver(Spec{Format: UInt8}, ObserverConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := obs.Observe(x); err != nil {
		t.Fatal(err)
	}
	spec, err := obs.Spec()
	if err != nil {
		t.Fatal(err)
	}
	if got := runForward(t, x, spec, nil); !slicesAlike(got, y) {
		t.Errorf("observer's spec %+v gives %v, the dynamic rule %v", spec, got, y)
	}
}

func slicesAlike(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
			return false
		}
	}
	return true
}
