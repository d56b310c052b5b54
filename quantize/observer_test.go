package quantize

import (
	"errors"
	"math"
	"testing"

	"github.com/actq/actq/ops"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestObserverGoldens compares observers with torch.ao's MinMaxObserver,
// MovingAverageMinMaxObserver and PerChannelMinMaxObserver (symmetric
// specs with TorchSymmetric, PyTorch's rule).
func TestObserverGoldens(t *testing.T) {
	g := readGolden(t)
	n := 0
	for _, c := range g.Cases {
		if c.Op != "observer" {
			continue
		}
		n++
		var p goldenParams
		if err := c.ParamsInto(&p); err != nil {
			t.Fatal(err)
		}
		base := Spec{Format: formatNamed(t, p.Format), Symmetric: p.Symmetric}
		if c.Name[:len("observer/perchannel")] == "observer/perchannel" {
			base.Granularity, base.Axis = PerChannel, p.Axis
		}
		cfg := ObserverConfig{TorchSymmetric: true}
		if p.Kind == "moving" {
			cfg.Kind = MovingAverage
		}
		obs, err := NewObserver(base, cfg)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; ; i++ {
			b, err := c.F64("batch" + string(rune('0'+i)))
			if err != nil {
				break
			}
			if err := obs.Observe(denseOf("float32", c.Shape, b)); err != nil {
				t.Fatal(err)
			}
		}
		spec, err := obs.Spec()
		if err != nil {
			t.Fatal(err)
		}
		for i, want := range p.Scale {
			if spec.Scale[i] != want {
				t.Errorf("%s: scale[%d] = %v, PyTorch %v", c.Name, i, spec.Scale[i], want)
			}
			z := 0
			if spec.ZeroPoint != nil {
				z = spec.ZeroPoint[i]
			}
			if z != p.ZeroPoint[i] {
				t.Errorf("%s: zero point[%d] = %d, PyTorch %d", c.Name, i, z, p.ZeroPoint[i])
			}
		}
	}
	if n == 0 {
		t.Fatal("no observer goldens")
	}
}

func observe(t *testing.T, base Spec, cfg ObserverConfig, batches ...*tensor.Dense) Spec {
	t.Helper()
	obs, err := NewObserver(base, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range batches {
		if err := obs.Observe(b); err != nil {
			t.Fatal(err)
		}
	}
	s, err := obs.Spec()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestObserverFacts checks PyTorch's observer rules on hand-computed cases
// (torch.ao.quantization's MinMaxObserver, float32 arithmetic).
func TestObserverFacts(t *testing.T) {
	// quint8 affine, min −1, max 2 → s = 0.0117647061 (float32), z = 85;
	// fq(0.5) = 0.49411765.
	s := observe(t, Spec{Format: UInt8}, ObserverConfig{}, dense32([]int{3}, -1, 0.5, 2))
	if float32(s.Scale[0]) != float32(3.0)/255 || s.ZeroPoint[0] != 85 {
		t.Errorf("quint8 affine: %v %v", s.Scale, s.ZeroPoint)
	}
	y := runForward(t, dense32([]int{1}, 0.5), s, nil)
	if float32(y[0]) != 0.49411765 {
		t.Errorf("quint8 affine: fq(0.5) = %v", float32(y[0]))
	}
	// qint8 symmetric, amax 1, torch's rule → s = 1/127.5; fq(±1) = ±0.99607849.
	s = observe(t, Spec{Format: Int8, Symmetric: true}, ObserverConfig{TorchSymmetric: true}, dense32([]int{2}, -1, 0.5))
	if float32(s.Scale[0]) != float32(1/127.5) {
		t.Errorf("qint8 symmetric: s = %v", s.Scale[0])
	}
	y = runForward(t, dense32([]int{2}, 1, -1), s, nil)
	if float32(y[0]) != 0.99607849 || float32(y[1]) != -0.99607849 {
		t.Errorf("qint8 symmetric: fq(±1) = %v", y)
	}
	// Our default symmetric rule maps amax to 127: fq(±1) = ±1 exactly.
	s = observe(t, Spec{Format: Int8, Symmetric: true}, ObserverConfig{}, dense32([]int{2}, -1, 0.5))
	if y := runForward(t, dense32([]int{2}, 1, -1), s, nil); y[0] != 1 || y[1] != -1 {
		t.Errorf("amax/127 rule: fq(±1) = %v", y)
	}
	// int4 (−8,7) symmetric, torch's rule → s = 0.13333334, fq(1) =
	// 0.9333334; narrow (−7,7) → s = 1/7, fq(1) = 1.
	s = observe(t, Spec{Format: Int4, Symmetric: true}, ObserverConfig{TorchSymmetric: true}, dense32([]int{1}, 1))
	if float32(s.Scale[0]) != 0.13333334 {
		t.Errorf("int4 symmetric: s = %v", s.Scale[0])
	}
	if y := runForward(t, dense32([]int{1}, 1), s, nil); float32(y[0]) != 0.9333334 {
		t.Errorf("int4 symmetric: fq(1) = %v", float32(y[0]))
	}
	s = observe(t, Spec{Format: Int4, Symmetric: true, NarrowRange: true}, ObserverConfig{TorchSymmetric: true}, dense32([]int{1}, 1))
	if float32(s.Scale[0]) != float32(1.0/7) {
		t.Errorf("int4 symmetric narrow: s = %v", s.Scale[0])
	}
	if y := runForward(t, dense32([]int{1}, 1), s, nil); y[0] != 1 {
		t.Errorf("int4 symmetric narrow: fq(1) = %v", y[0])
	}
	// all zeros, quint8 affine → s = 2^-23, z = 0.
	s = observe(t, Spec{Format: UInt8}, ObserverConfig{}, dense32([]int{4}, 0, 0, 0, 0))
	if s.Scale[0] != 0x1p-23 || s.ZeroPoint[0] != 0 {
		t.Errorf("all zeros: %v %v", s.Scale, s.ZeroPoint)
	}
}

func TestObserverMovingAverageAndPercentile(t *testing.T) {
	b1 := tensor.New(tensor.WithShape(2), tensor.WithBacking([]float64{-1, 3}))
	b2 := tensor.New(tensor.WithShape(2), tensor.WithBacking([]float64{-2, 1}))
	obs, _ := NewObserver(Spec{Format: Int8}, ObserverConfig{Kind: MovingAverage, Averaging: 0.5})
	_ = obs.Observe(b1)
	_ = obs.Observe(b2)
	if lo, hi := obs.Ranges(); lo[0] != -1.5 || hi[0] != 2 {
		t.Errorf("moving average: [%v, %v], want [−1.5, 2]", lo[0], hi[0])
	}
	// Percentile 90 of |x| over 0..10 (11 values) is 9; of the second
	// batch 0..20 step 2 is 18: the average is 13.5. Symmetric Int8: s = 13.5/127.
	v1, v2 := make([]float64, 11), make([]float64, 11)
	for i := range v1 {
		v1[i], v2[i] = float64(i), -2*float64(i)
	}
	v1[3] = math.NaN()
	v1[4] = math.Inf(1)
	s := observe(t, Spec{Format: Int8, Symmetric: true}, ObserverConfig{Kind: Percentile, Percentile: 90},
		tensor.New(tensor.WithShape(11), tensor.WithBacking(v1)), tensor.New(tensor.WithShape(11), tensor.WithBacking(v2)))
	// batch 1 has 9 finite values {0,1,2,5..10}: h = 0.9·8 = 7.2 → 9 + 0.2·1 = 9.2.
	if want := (9.2 + 18) / 2 / 127; math.Abs(s.Scale[0]-want) > 1e-12 {
		t.Errorf("percentile: s = %v, want %v", s.Scale[0], want)
	}
	// Affine percentile: [P10, P90].
	s = observe(t, Spec{Format: UInt8}, ObserverConfig{Kind: Percentile, Percentile: 90},
		tensor.New(tensor.WithShape(11), tensor.WithBacking([]float64{-5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5})))
	if want := 8.0 / 255; math.Abs(s.Scale[0]-want) > 1e-15 {
		t.Errorf("affine percentile: s = %v, want %v", s.Scale[0], want)
	}
}

func TestObserverPerGroupAndErrors(t *testing.T) {
	x := dense32([]int{2, 4}, 1, -2, 0.5, 0, 7, 0, 0, -3.5)
	s := observe(t, Spec{Format: Int4, Granularity: PerGroup, GroupSize: 2, Symmetric: true}, ObserverConfig{}, x)
	for i, want := range []float64{2.0 / 7, 0.5 / 7, 1, 3.5 / 7} {
		if float32(s.Scale[i]) != float32(want) {
			t.Errorf("group %d: s = %v, want %v", i, s.Scale[i], want)
		}
	}
	obs, _ := NewObserver(Spec{Format: Int8, Granularity: PerChannel, Axis: 0}, ObserverConfig{})
	if _, err := obs.Spec(); !errors.Is(err, ErrNoData) {
		t.Errorf("Spec before data: %v", err)
	}
	_ = obs.Observe(dense32([]int{2, 2}, 1, 2, 3, 4))
	if err := obs.Observe(dense32([]int{3, 2}, 1, 2, 3, 4, 5, 6)); !errors.Is(err, ops.ErrShape) {
		t.Errorf("channel count change: %v", err)
	}
	if err := obs.Observe(dense32([]int{2, 3}, 1, 2, 3, 4, 5, 6)); err != nil { // same channels, other batch width
		t.Errorf("same channel count: %v", err)
	}
	obs.Reset()
	if obs.Batches() != 0 {
		t.Error("Reset kept batches")
	}
	for _, cfg := range []ObserverConfig{{Kind: MovingAverage, Averaging: 2}, {Kind: Percentile, Percentile: 40}, {Kind: 9}} {
		if _, err := NewObserver(Spec{}, cfg); !errors.Is(err, ErrSpec) {
			t.Errorf("%+v: %v", cfg, err)
		}
	}
}

// TestObserverInGraph calibrates through WithObserver during graph runs,
// then builds the fixed-scale node.
func TestObserverInGraph(t *testing.T) {
	obs, err := NewObserver(Spec{Format: Int8, Symmetric: true}, ObserverConfig{})
	if err != nil {
		t.Fatal(err)
	}
	g := gorgonia.NewGraph()
	x := gorgonia.NewVector(g, tensor.Float32, gorgonia.WithShape(4), gorgonia.WithName("x"))
	if _, err := FakeQuant(x, Spec{Format: Int8, Symmetric: true}, WithObserver(obs)); err != nil {
		t.Fatal(err)
	}
	m := gorgonia.NewTapeMachine(g)
	defer m.Close()
	for _, b := range [][]float32{{1, 2, -3, 0}, {0.5, -6.35, 2, 1}} {
		if err := gorgonia.Let(x, dense32([]int{4}, b...)); err != nil {
			t.Fatal(err)
		}
		m.Reset()
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
	}
	s, _ := obs.Spec()
	if obs.Batches() != 2 || float32(s.Scale[0]) != float32(6.35)/127 {
		t.Errorf("batches %d, spec %+v", obs.Batches(), s)
	}
}
