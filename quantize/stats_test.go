package quantize

import (
	"math"
	"sync"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// runForward runs y = FakeQuant(x, spec, WithStats(st)) once on a tape
// machine.
func runForward(t *testing.T, x *tensor.Dense, spec Spec, st *Stats) []float64 {
	t.Helper()
	g := gorgonia.NewGraph()
	xn := gorgonia.NodeFromAny(g, x, gorgonia.WithName("x"))
	y, err := FakeQuant(xn, spec, WithStats(st))
	if err != nil {
		t.Fatal(err)
	}
	var yv gorgonia.Value
	gorgonia.Read(y, &yv)
	m := gorgonia.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	return float64s(yv)
}

// TestStatsHandComputed checks each counter on inputs worked out by hand.
func TestStatsHandComputed(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	for _, c := range []struct {
		name string
		spec Spec
		x    []float64
		want StatsSnapshot
	}{{
		// Int8, s = 0.5: 0.2 → 0 (zeroed, noise 0.04), 100 → 63.5 (clipped,
		// noise 36.5²), −64 → −64 (in range: code −128), −64.5 → −64
		// (clipped: −129 < −128), NaN, −Inf, 0 (not zeroed: it was 0),
		// 1.25 → 1 (tie 2.5 → 2; noise 0.0625).
		name: "int8",
		spec: Spec{Format: Int8, Scale: []float64{0.5}},
		x:    []float64{0.2, 100, -64, -64.5, nan, -inf, 0, 1.25},
		want: StatsSnapshot{Runs: 1, Elements: 8, Clipped: 2, Zeroed: 1, NaN: 1, Inf: 1,
			Signal: 0.04 + 10000 + 4096 + 4160.25 + 1.5625, Noise: 0.04 + 36.5*36.5 + 0 + 0.25 + 0.0625},
	}, {
		// UInt4 with zero point 0: −3 clips to 0, so it counts as clipped
		// and as zeroed (a non-zero input became exactly 0); 20 → 15
		// (clipped); 0.4 → 0 (zeroed).
		name: "uint4",
		spec: Spec{Format: UInt4, Scale: []float64{1}},
		x:    []float64{-3, 2, 20, 0.4},
		want: StatsSnapshot{Runs: 1, Elements: 4, Clipped: 2, Zeroed: 2,
			Signal: 9 + 4 + 400 + 0.16, Noise: 9 + 0 + 25 + 0.16},
	}, {
		// FP16: 70000 overflows to +Inf (clipped; the noise is infinite),
		// 1e-9 underflows to 0 (zeroed), +Inf stays +Inf (counted as Inf,
		// not clipped), 0.5 is exact.
		name: "fp16",
		spec: Spec{Format: FP16},
		x:    []float64{70000, 1e-9, inf, 0.5},
		want: StatsSnapshot{Runs: 1, Elements: 4, Clipped: 1, Zeroed: 1, Inf: 1,
			Signal: 70000*70000 + 1e-18 + 0.25, Noise: inf},
	}, {
		// FP8E4M3 saturates: 500 → 448 (clipped), 460 → 448 (rounding, not
		// clipping), Inf → 448 (counted as Inf).
		name: "fp8e4m3",
		spec: Spec{Format: FP8E4M3},
		x:    []float64{500, 460, inf},
		want: StatsSnapshot{Runs: 1, Elements: 3, Clipped: 1, Inf: 1,
			Signal: 250000 + 211600, Noise: 52*52 + 12*12},
	}} {
		var st Stats
		x := tensor.New(tensor.WithShape(len(c.x)), tensor.WithBacking(append([]float64(nil), c.x...)))
		runForward(t, x, c.spec, &st)
		got := st.Snapshot()
		if got.Runs != c.want.Runs || got.Elements != c.want.Elements || got.Clipped != c.want.Clipped ||
			got.Zeroed != c.want.Zeroed || got.NaN != c.want.NaN || got.Inf != c.want.Inf ||
			math.Abs(got.Signal-c.want.Signal) > 1e-9*c.want.Signal ||
			!(got.Noise == c.want.Noise || math.Abs(got.Noise-c.want.Noise) < 1e-9*c.want.Noise) {
			t.Errorf("%s: got %+v\nwant %+v", c.name, got, c.want)
		}
	}
}

func TestStatsDerived(t *testing.T) {
	s := StatsSnapshot{Elements: 8, Clipped: 2, Zeroed: 1, Signal: 100, Noise: 1}
	if s.ClippedFraction() != 0.25 || s.ZeroedFraction() != 0.125 || s.SQNR() != 20 {
		t.Errorf("fractions %v %v, SQNR %v", s.ClippedFraction(), s.ZeroedFraction(), s.SQNR())
	}
	for _, c := range []struct {
		s    StatsSnapshot
		want float64
	}{
		{StatsSnapshot{}, math.Inf(1)},
		{StatsSnapshot{Signal: 1}, math.Inf(1)},
		{StatsSnapshot{Noise: 1}, math.Inf(-1)},
		{StatsSnapshot{Signal: 1, Noise: math.Inf(1)}, math.Inf(-1)},
	} {
		if got := c.s.SQNR(); got != c.want {
			t.Errorf("SQNR(%+v) = %v, want %v", c.s, got, c.want)
		}
	}
	if (StatsSnapshot{}).ClippedFraction() != 0 {
		t.Error("empty stats: clipped fraction not 0")
	}
}

// TestStatsSQNRInt8Uniform: uniform data on the int8 grid's range has
// quantization noise of variance s²/12, so SQNR ≈ 10·log10((range²/12) /
// (s²/12)) = 20·log10(255) ≈ 48.1 dB when the data spans the range.
func TestStatsSQNRInt8Uniform(t *testing.T) {
	n := 1 << 16
	v := make([]float32, n)
	for i := range v {
		v[i] = (float32(i)/float32(n) - 0.5) * 2 // uniform on [−1, 1)
	}
	var st Stats
	runForward(t, dense32([]int{n}, v...), Spec{Format: Int8, Symmetric: true}, &st)
	sq := st.Snapshot().SQNR()
	// signal var 1/3, noise var s²/12 with s = 1/127: SQNR = 10·log10(4·127²) = 48.1 dB.
	want := 10 * math.Log10(4*127*127)
	if math.Abs(sq-want) > 0.1 {
		t.Errorf("SQNR = %.3f dB, want ≈ %.3f", sq, want)
	}
}

// TestStatsConcurrent reads and resets a Stats shared by graphs running in
// several goroutines (run with -race).
func TestStatsConcurrent(t *testing.T) {
	var st Stats
	var wg sync.WaitGroup
	const workers, runs, n = 4, 20, 1000
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := gorgonia.NewGraph()
			v := ramp32(n, -2, 2)
			v[w] = float32(math.NaN())
			x := gorgonia.NodeFromAny(g, dense32([]int{n}, v...), gorgonia.WithName("x"))
			if _, err := FakeQuant(x, Spec{Format: Int4, Scale: []float64{0.1}}, WithStats(&st)); err != nil {
				t.Error(err)
				return
			}
			m := gorgonia.NewTapeMachine(g)
			defer m.Close()
			for range runs {
				m.Reset()
				if err := m.RunAll(); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			default:
				s := st.Snapshot()
				if s.NaN > s.Runs { // one NaN per run
					t.Errorf("inconsistent snapshot %+v", s)
				}
			}
		}
	}()
	wg.Wait()
	close(done)
	s := st.Snapshot()
	if s.Runs != workers*runs || s.Elements != workers*runs*n || s.NaN != workers*runs {
		t.Errorf("after %d runs: %+v", workers*runs, s)
	}
	st.Reset()
	if s := st.Snapshot(); s != (StatsSnapshot{}) {
		t.Errorf("after Reset: %+v", s)
	}
}
