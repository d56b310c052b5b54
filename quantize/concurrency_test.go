package quantize_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/actq/actq/ops"
	"github.com/actq/actq/quantize"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Sizes of the concurrency test's model: a batch of ccRows rows of ccIn
// features, a hidden layer of ccHidden and ccOut classes.
const ccRows, ccIn, ccHidden, ccOut = 16, 24, 32, 8

// ccModel is one worker's graph: logits = FQ(act(x·FQ_LSQ(W1)))·W2, trained
// on cross-entropy (LogSoftmax) plus a small penalty on the Softmax
// probabilities, by Adam on the tape machine.
type ccModel struct {
	g          *gorgonia.ExprGraph
	w1, w2, s1 *gorgonia.Node // weights and W1's learnable per-channel scales
	loss       *gorgonia.Node
	lossVal    gorgonia.Value
	vm         gorgonia.VM
	solver     gorgonia.Solver
}

// newCCModel builds worker w's model with data and weights from seed,
// Float32 or Float64. Its activation FakeQuant node adds to stats and
// shows its input to obs.
func newCCModel(w int, seed uint64, dt tensor.Dtype, stats *quantize.Stats, obs *quantize.Observer) (*ccModel, error) {
	r := rand.New(rand.NewPCG(seed, 7))
	fill := func(n int, scale float64) any {
		v := make([]float64, n)
		for i := range v {
			v[i] = scale * r.NormFloat64()
		}
		if dt == tensor.Float64 {
			return v
		}
		f := make([]float32, n)
		for i, x := range v {
			f[i] = float32(x)
		}
		return f
	}
	dense := func(data any, shape ...int) *tensor.Dense {
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(data))
	}
	m := &ccModel{g: gorgonia.NewGraph()}
	g := m.g
	x := gorgonia.NodeFromAny(g, dense(fill(ccRows*ccIn, 1), ccRows, ccIn), gorgonia.WithName("x"))
	target := make([]float64, ccRows*ccOut)
	for i := range ccRows {
		target[i*ccOut+r.IntN(ccOut)] = 1
	}
	var tv, pw any = target, make([]float64, ccRows*ccOut)
	if dt == tensor.Float32 {
		t32, p32 := make([]float32, len(target)), make([]float32, len(target))
		for i, v := range target {
			t32[i] = float32(v)
			p32[i] = float32(i%3) * 0.01
		}
		tv, pw = t32, p32
	} else {
		for i := range pw.([]float64) {
			pw.([]float64)[i] = float64(i%3) * 0.01
		}
	}
	tgt := gorgonia.NodeFromAny(g, dense(tv, ccRows, ccOut), gorgonia.WithName("target"))
	penalty := gorgonia.NodeFromAny(g, dense(pw, ccRows, ccOut), gorgonia.WithName("penalty"))
	m.w1 = gorgonia.NewMatrix(g, dt, gorgonia.WithShape(ccIn, ccHidden), gorgonia.WithName("w1"),
		gorgonia.WithValue(dense(fill(ccIn*ccHidden, 1/math.Sqrt(ccIn)), ccIn, ccHidden)))
	m.w2 = gorgonia.NewMatrix(g, dt, gorgonia.WithShape(ccHidden, ccOut), gorgonia.WithName("w2"),
		gorgonia.WithValue(dense(fill(ccHidden*ccOut, 1/math.Sqrt(ccHidden)), ccHidden, ccOut)))
	scales := make([]float64, ccHidden)
	for i := range scales {
		scales[i] = 0.02
	}
	var sv any = scales
	if dt == tensor.Float32 {
		s32 := make([]float32, ccHidden)
		for i := range s32 {
			s32[i] = 0.02
		}
		sv = s32
	}
	m.s1 = gorgonia.NewVector(g, dt, gorgonia.WithShape(ccHidden), gorgonia.WithName("s1"), gorgonia.WithValue(dense(sv, ccHidden)))

	wq, err := quantize.FakeQuantLearnable(m.w1, m.s1, quantize.Spec{Format: quantize.Int8, Granularity: quantize.PerChannel, Axis: 1, Symmetric: true},
		quantize.LSQConfig{GradFactor: quantize.LSQGradFactor(ccIn, quantize.Int8, false)})
	if err != nil {
		return nil, err
	}
	h, err := gorgonia.Mul(x, wq)
	if err != nil {
		return nil, err
	}
	acts := []func(*gorgonia.Node) (*gorgonia.Node, error){ops.GELU, ops.GELUTanh, ops.SiLU, ops.ReLU}
	if h, err = acts[w%len(acts)](h); err != nil {
		return nil, err
	}
	if h, err = quantize.FakeQuant(h, quantize.Spec{Format: quantize.Int8, Symmetric: true}, quantize.WithStats(stats), quantize.WithObserver(obs)); err != nil {
		return nil, err
	}
	if h, err = ops.CheckFinite(h, fmt.Sprintf("worker %d hidden", w)); err != nil {
		return nil, err
	}
	z, err := gorgonia.Mul(h, m.w2)
	if err != nil {
		return nil, err
	}
	logp, err := ops.LogSoftmax(z)
	if err != nil {
		return nil, err
	}
	p, err := ops.Softmax(z, -1)
	if err != nil {
		return nil, err
	}
	ce, err := gorgonia.HadamardProd(logp, tgt)
	if err != nil {
		return nil, err
	}
	pen, err := gorgonia.HadamardProd(p, penalty)
	if err != nil {
		return nil, err
	}
	diff, err := gorgonia.Sub(pen, ce)
	if err != nil {
		return nil, err
	}
	if m.loss, err = gorgonia.Mean(diff); err != nil {
		return nil, err
	}
	gorgonia.Read(m.loss, &m.lossVal)
	if _, err := gorgonia.Grad(m.loss, m.w1, m.w2, m.s1); err != nil {
		return nil, err
	}
	m.vm = gorgonia.NewTapeMachine(g, gorgonia.BindDualValues(m.w1, m.w2, m.s1))
	m.solver = gorgonia.NewAdamSolver(gorgonia.WithLearnRate(0.01))
	return m, nil
}

// train runs steps training steps and returns the losses.
func (m *ccModel) train(steps int) ([]float64, error) {
	defer m.vm.Close()
	losses := make([]float64, steps)
	for i := range steps {
		m.vm.Reset()
		if err := m.vm.RunAll(); err != nil {
			return nil, err
		}
		switch v := m.lossVal.(type) {
		case *gorgonia.F32:
			losses[i] = float64(*v)
		case *gorgonia.F64:
			losses[i] = float64(*v)
		}
		if err := m.solver.Step(gorgonia.NodesToValueGrads(gorgonia.Nodes{m.w1, m.w2, m.s1})); err != nil {
			return nil, err
		}
	}
	return losses, nil
}

// TestConcurrentTraining trains 8 models at once, each in its own graph
// and goroutine: activations, Softmax and LogSoftmax,
// FakeQuant with statistics (workers 0–3 share one Stats, 4–7 have
// their own) and a shared Observer, CheckFinite, an LSQ FakeQuantLearnable
// on the weights, the tape machine, Grad and Adam; while another goroutine
// reads the shared Stats and Observer. Under -race this shows the ops and
// the shared statistics are free of data races; each worker's losses must
// equal, bit for bit, those of the same model trained alone beforehand,
// and every snapshot must be consistent (Elements = Runs × elements per
// run) and never go backwards.
func TestConcurrentTraining(t *testing.T) {
	const workers, steps = 8, 20
	dtypeOf := func(w int) tensor.Dtype {
		if w%2 == 1 {
			return tensor.Float64
		}
		return tensor.Float32
	}
	// Alone first: the reference losses.
	want := make([][]float64, workers)
	for w := range workers {
		m, err := newCCModel(w, uint64(w), dtypeOf(w), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if want[w], err = m.train(steps); err != nil {
			t.Fatal(err)
		}
	}

	var shared quantize.Stats
	own := make([]quantize.Stats, workers)
	obs, err := quantize.NewObserver(quantize.Spec{Format: quantize.Int8, Symmetric: true}, quantize.ObserverConfig{Kind: quantize.MovingAverage})
	if err != nil {
		t.Fatal(err)
	}
	got := make([][]float64, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		st := &shared
		if w >= workers/2 {
			st = &own[w]
		}
		wg.Go(func() {
			m, err := newCCModel(w, uint64(w), dtypeOf(w), st, obs)
			if err == nil {
				got[w], err = m.train(steps)
			}
			errs[w] = err
		})
	}
	done := make(chan struct{})
	var reads int
	var readerErr error
	var rg sync.WaitGroup
	rg.Go(func() {
		var last quantize.StatsSnapshot
		for {
			select {
			case <-done:
				return
			default:
			}
			s := shared.Snapshot()
			reads++
			if s.Elements != s.Runs*ccRows*ccHidden || s.Runs < last.Runs || s.Elements < last.Elements {
				readerErr = fmt.Errorf("snapshot %+v after %+v", s, last)
				return
			}
			_ = s.SQNR()
			last = s
			_, _ = obs.Ranges()
			_ = obs.Batches()
			if _, err := obs.Spec(); err != nil && s.Runs > 0 {
				readerErr = fmt.Errorf("observer spec after %d runs: %w", s.Runs, err)
				return
			}
		}
	})
	wg.Wait()
	close(done)
	rg.Wait()
	if readerErr != nil {
		t.Error(readerErr)
	}
	for w := range workers {
		if errs[w] != nil {
			t.Fatalf("worker %d: %v", w, errs[w])
		}
		for i := range want[w] {
			if math.Float64bits(got[w][i]) != math.Float64bits(want[w][i]) {
				t.Errorf("worker %d step %d: loss %v, alone %v", w, i, got[w][i], want[w][i])
			}
		}
		if !(want[w][steps-1] < want[w][0]) {
			t.Errorf("worker %d: loss %v → %v, not decreasing", w, want[w][0], want[w][steps-1])
		}
	}
	s := shared.Snapshot()
	if s.Runs != workers/2*steps || s.Elements != s.Runs*ccRows*ccHidden {
		t.Errorf("shared stats: %+v, want %d runs", s, workers/2*steps)
	}
	for w := workers / 2; w < workers; w++ {
		if o := own[w].Snapshot(); o.Runs != steps {
			t.Errorf("worker %d's stats: %+v, want %d runs", w, o, steps)
		}
	}
	if b := obs.Batches(); b != workers*steps {
		t.Errorf("observer saw %d batches, want %d", b, workers*steps)
	}
	t.Logf("%d workers × %d steps; %d concurrent snapshots; shared stats %v", workers, steps, reads, s)
}
