package graph

import (
	"math/rand/v2"
	"sync"
	"testing"
)

// TestConcurrentTrainers trains two models from the same Weights value in
// two goroutines at once (the set-up of gorgonia/gorgonia#549, which panics
// when two graphs share a weight tensor) and checks that they compute the
// same losses and leave the shared Weights unchanged. Under -race it also
// shows that nothing is shared between them.
func TestConcurrentTrainers(t *testing.T) {
	cfg := reverseConfig(4)
	w := trainedReverse(t)
	orig := w.Clone()
	const steps = 4
	losses := make([][]float64, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr, err := NewTrainer(cfg, w, TrainConfig{Batch: 8, LearnRate: 1e-3})
			if err != nil {
				errs[i] = err
				return
			}
			defer tr.Close()
			rng := rand.New(rand.NewPCG(11, 12))
			for range steps {
				m, err := tr.Step(reverseTask(rng, 8, 4))
				if err != nil {
					errs[i] = err
					return
				}
				losses[i] = append(losses[i], m.Loss)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for s := range steps {
		if losses[0][s] != losses[1][s] {
			t.Errorf("step %d: losses %v and %v differ", s, losses[0][s], losses[1][s])
		}
	}
	for _, name := range w.Names() {
		if !equalDense(w[name], orig[name]) {
			t.Errorf("training changed the shared weights' %s", name)
		}
	}
}
