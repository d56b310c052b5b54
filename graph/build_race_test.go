package graph

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"sync"
	"testing"

	"gorgonia.org/gorgonia"
)

// TestConcurrentFirstBuilds builds trainers and evaluators in several
// goroutines at once as the first thing a process does. Gorgonia adds
// package-level constant nodes to every graph (onef32 in gorgonia.Grad) and
// computes their hashes lazily, a write that races between graphs built at
// once unless building is serialised (found by the transformer-ffn study
// under -race). The race shows only the first time those constants are
// hashed, so the check runs in fresh processes (this test binary, re-run),
// and only under the race detector, which makes a racing child fail.
func TestConcurrentFirstBuilds(t *testing.T) {
	if os.Getenv("ACTQ_GRAPH_FIRST_BUILDS") == "1" {
		concurrentFirstBuilds(t)
		return
	}
	if !raceEnabled {
		t.Skip("needs the race detector")
	}
	for range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestConcurrentFirstBuilds$", "-test.count=1")
		cmd.Env = append(os.Environ(), "ACTQ_GRAPH_FIRST_BUILDS=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
	}
}

func concurrentFirstBuilds(t *testing.T) {
	cfg := reverseConfig(2)
	m, err := NewModel(gorgonia.NewGraph(), cfg, WithSeed(1)) // parameters only: no Forward, no constants
	if err != nil {
		t.Fatal(err)
	}
	w, err := m.Weights()
	if err != nil {
		t.Fatal(err)
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if i%2 == 0 {
				tr, err := NewTrainer(cfg, nil, TrainConfig{Batch: 2, Seed: uint64(i)})
				if err == nil {
					_, err = tr.Step(reverseTask(rand.New(rand.NewPCG(1, 2)), 2, 2))
					tr.Close()
				}
				errs[i] = err
				return
			}
			ev, err := NewEvaluator(cfg, w, 2, WithPlan(Tiers()[4].Plan(cfg.SeqLen)))
			if err == nil {
				_, err = ev.Eval(reverseTask(rand.New(rand.NewPCG(1, 2)), 2, 2))
				ev.Close()
			}
			errs[i] = err
		}()
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}
