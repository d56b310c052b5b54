package graph

import (
	"flag"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"

	"github.com/actq/actq/quantize"
)

var heapSteps = flag.Int("heapsteps", 300, "training steps for TestTrainingHeapIsStable (2000 for a long soak)")

// TestConcurrentTrainersAndEvaluators runs eight goroutines at once, each
// with its own graph and machine (four Trainers, four int8 Evaluators built
// from one shared Weights value), while another goroutine keeps reading
// every site's statistics: under -race it proves the ops, the statistics and
// the builders share nothing unsynchronised. Each goroutine's results must
// equal those of the same work done alone.
func TestConcurrentTrainersAndEvaluators(t *testing.T) {
	cfg := reverseConfig(4)
	w := trainedReverse(t)
	steps := 12
	if testing.Short() {
		steps = 4
	}
	plan := Tiers()[4].Plan(cfg.SeqLen) // w8a8
	work := func(i int, stats chan<- []*Site) (float64, error) {
		rng := rand.New(rand.NewPCG(uint64(i), 7))
		if i%2 == 0 {
			tr, err := NewTrainer(cfg, w, TrainConfig{Batch: 16, LearnRate: 1e-3}, WithPlan(plan))
			if err != nil {
				return 0, err
			}
			defer tr.Close()
			if stats != nil {
				stats <- tr.Model().Sites()
			}
			var loss float64
			for range steps {
				m, err := tr.Step(reverseTask(rng, 16, 4))
				if err != nil {
					return 0, err
				}
				loss = m.Loss
			}
			return loss, nil
		}
		ev, err := NewEvaluator(cfg, w, 16, WithPlan(plan))
		if err != nil {
			return 0, err
		}
		defer ev.Close()
		if stats != nil {
			stats <- ev.Sites()
		}
		var total Metrics
		for range steps {
			m, err := ev.Eval(reverseTask(rng, 16, 4))
			if err != nil {
				return 0, err
			}
			total.Add(m)
		}
		return total.Loss, nil
	}

	const workers = 8
	alone := make([]float64, workers)
	for i := range workers {
		var err error
		if alone[i], err = work(i, nil); err != nil {
			t.Fatal(err)
		}
	}

	together := make([]float64, workers)
	errs := make([]error, workers)
	sites := make(chan []*Site, workers)
	done := make(chan struct{})
	var readers sync.WaitGroup
	readers.Add(1)
	reads := 0
	go func() { // read statistics while the graphs run
		defer readers.Done()
		var all []*Site
		for {
			select {
			case s := <-sites:
				all = append(all, s...)
			case <-done:
				return
			default:
				for _, s := range all {
					_ = s.Stats().SQNR()
					reads++
				}
				runtime.Gosched()
			}
		}
	}()
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			together[i], errs[i] = work(i, sites)
		}()
	}
	wg.Wait()
	close(done)
	readers.Wait()
	for i := range workers {
		if errs[i] != nil {
			t.Fatalf("worker %d: %v", i, errs[i])
		}
		if together[i] != alone[i] {
			t.Errorf("worker %d: loss %v concurrently, %v alone", i, together[i], alone[i])
		}
	}
	t.Logf("%d workers × %d steps; %d statistics reads while they ran", workers, steps, reads)
}

// TestTrainingHeapIsStable trains the tiny model for -heapsteps steps (300
// by default; go test ./graph -run HeapIsStable -heapsteps 2000 for a
// long soak) under an int8 plan with statistics, and checks that
// the live heap after a GC does not grow between the end of the warm-up and
// the end: a training loop must not leak.
func TestTrainingHeapIsStable(t *testing.T) {
	if raceEnabled {
		t.Skip("too slow under -race; the concurrency test covers races")
	}
	cfg := reverseConfig(4)
	tr, err := NewTrainer(cfg, nil, TrainConfig{Batch: 32, LearnRate: 3e-3, Seed: 5}, WithPlan(Tiers()[4].Plan(cfg.SeqLen)))
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	rng := rand.New(rand.NewPCG(1, 1))
	live := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	warm := *heapSteps / 10
	var start uint64
	var samples []uint64
	for i := range *heapSteps {
		if _, err := tr.Step(reverseTask(rng, 32, 4)); err != nil {
			t.Fatal(err)
		}
		if i+1 == warm {
			start = live()
		}
		if (i+1)%(*heapSteps/5) == 0 {
			samples = append(samples, live())
		}
	}
	end := live()
	var st quantize.StatsSnapshot
	for _, s := range tr.Model().Sites() {
		st = s.Stats()
		break
	}
	t.Logf("live heap after %d steps: %.2f MB; at step %d: %.2f MB; samples %v (MB); first site saw %d runs",
		*heapSteps, float64(end)/1e6, warm, float64(start)/1e6, mb(samples), st.Runs)
	// Allow 1 MB of noise (pools, Gorgonia's caches), far below what a leak
	// of one intermediate tensor per step would add over the run.
	if end > start+1<<20 {
		t.Errorf("live heap grew from %.2f MB to %.2f MB over %d steps", float64(start)/1e6, float64(end)/1e6, *heapSteps-warm)
	}
}

func mb(v []uint64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x/10000) / 100
	}
	return out
}
