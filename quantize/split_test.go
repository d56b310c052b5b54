package quantize

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestSplitMatchesOneGoroutine runs FakeQuant forward and backward on a
// tensor large enough to be split over two goroutines for every format
// (plan.chunk: from 2^21 elements for the vector integer kernels, 2^17
// for the others) and
// checks that the results are the bits of the same run on one goroutine
// (GOMAXPROCS 1): fixed and dynamic parameters, per tensor (whose dynamic
// range is itself gathered in parallel), per group and per channel,
// integer and float.
func TestSplitMatchesOneGoroutine(t *testing.T) {
	if testing.Short() {
		t.Skip("2^21-element tensors")
	}
	const n = 1<<21 + 64
	r := rand.New(rand.NewPCG(41, 42))
	xs, dys := make([]float32, n), make([]float32, n)
	for i := range xs {
		xs[i] = float32(3 * r.NormFloat64())
		dys[i] = float32(r.NormFloat64())
	}
	xs[12345] = 40 // beyond the fixed scales' range: clipped, zero gradient
	for _, c := range []struct {
		name string
		s    Spec
	}{
		{"int8 fixed", Spec{Format: Int8, Scale: []float64{0.05}}},
		{"uint8 dynamic", Spec{Format: UInt8}},
		{"int4 groups of 32 dynamic", Spec{Format: Int4, Symmetric: true, Granularity: PerGroup, GroupSize: 32}},
		{"int4 groups of 4 dynamic (scalar loops)", Spec{Format: Int4, Symmetric: true, Granularity: PerGroup, GroupSize: 4}},
		{"int8 per channel of the last axis, dynamic (column kernels)", Spec{Format: Int8, Granularity: PerChannel, Axis: 1}},
		{"fp8 e4m3", Spec{Format: FP8E4M3}},
	} {
		s := c.s
		t.Run(c.name, func(t *testing.T) {
			eval := func(procs int) (y, dx []float64) {
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
				x := tensor.New(tensor.WithShape(n/64, 64), tensor.WithBacking(append([]float32(nil), xs...)))
				dy := tensor.New(tensor.WithShape(n/64, 64), tensor.WithBacking(append([]float32(nil), dys...)))
				return runTape(t, x, dy, func(x *gorgonia.Node) (*gorgonia.Node, error) { return FakeQuant(x, s) })
			}
			y1, dx1 := eval(1)
			y2, dx2 := eval(2)
			for i := range y1 {
				if math.Float64bits(y1[i]) != math.Float64bits(y2[i]) || math.Float64bits(dx1[i]) != math.Float64bits(dx2[i]) {
					t.Fatalf("element %d: one goroutine y=%v dx=%v, split y=%v dx=%v", i, y1[i], dx1[i], y2[i], dx2[i])
				}
			}
		})
	}
}

// TestSplitSumsRepeatable runs nodes whose float sums are gathered from
// parallel chunks (the statistics' signal and noise; an LSQ node's scale
// gradient with channels spread over the chunks) several times on four
// goroutines: each run must give the same bits, the chunks' partial sums
// being added in order rather than as the goroutines finish.
func TestSplitSumsRepeatable(t *testing.T) {
	const rows, ch, blk = 1 << 10, 16, 20 // 327680 elements: 4 chunks of the scalar loops
	r := rand.New(rand.NewPCG(43, 44))
	xs, dys := make([]float32, rows*ch*blk), make([]float32, rows*ch*blk)
	for i := range xs {
		xs[i] = float32(3 * r.NormFloat64())
		dys[i] = float32(r.NormFloat64())
	}
	scales := make([]float32, ch)
	for i := range scales {
		scales[i] = 0.02 + 0.001*float32(i)
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	var first []uint64
	for run := range 4 {
		g := gorgonia.NewGraph()
		x := gorgonia.NewTensor(g, tensor.Float32, 3, gorgonia.WithShape(rows, ch, blk), gorgonia.WithName("x"),
			gorgonia.WithValue(tensor.New(tensor.WithShape(rows, ch, blk), tensor.WithBacking(xs))))
		s := gorgonia.NewVector(g, tensor.Float32, gorgonia.WithShape(ch), gorgonia.WithName("s"),
			gorgonia.WithValue(tensor.New(tensor.WithShape(ch), tensor.WithBacking(scales))))
		var st Stats
		y, err := FakeQuant(x, Spec{Format: Int4, Symmetric: true, Granularity: PerGroup, GroupSize: 4}, WithStats(&st))
		if err != nil {
			t.Fatal(err)
		}
		l, err := FakeQuantLearnable(x, s, Spec{Format: Int8, Granularity: PerChannel, Axis: 1}, LSQConfig{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := y.Op().Do(x.Value()); err != nil {
			t.Fatal(err)
		}
		dy := tensor.New(tensor.WithShape(rows, ch, blk), tensor.WithBacking(dys))
		ds, err := (&lsqGradOp{fwd: l.Op().(*lsqOp), wrt: 1}).Do(x.Value(), s.Value(), dy)
		if err != nil {
			t.Fatal(err)
		}
		snap := st.Snapshot()
		bits := []uint64{math.Float64bits(snap.Signal), math.Float64bits(snap.Noise)}
		for _, v := range ds.Data().([]float32) {
			bits = append(bits, uint64(math.Float32bits(v)))
		}
		if run == 0 {
			first = bits
			continue
		}
		for i := range bits {
			if bits[i] != first[i] {
				t.Fatalf("run %d: sum %d has bits %x, run 0 had %x", run, i, bits[i], first[i])
			}
		}
	}
}
