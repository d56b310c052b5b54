package graph

import (
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"gorgonia.org/gorgonia"
)

// reverseTask makes batches of the sequence-reversal task: n random digits
// (0–9), a separator (10), then the digits reversed. The model sees the
// first 2n tokens and predicts the next token at each position; only the
// reversed digits are scored.
func reverseTask(rng *rand.Rand, batch, n int) Batch {
	seq := 2 * n
	b := Batch{Tokens: make([]int, batch*seq), Targets: make([]int, batch*seq)}
	full := make([]int, seq+1)
	for s := range batch {
		for i := range n {
			full[i] = rng.IntN(10)
			full[2*n-i] = full[i]
		}
		full[n] = 10
		for t := range seq {
			b.Tokens[s*seq+t] = full[t]
			b.Targets[s*seq+t] = Ignore
			if t >= n {
				b.Targets[s*seq+t] = full[t+1]
			}
		}
	}
	return b
}

func reverseConfig(n int) Config {
	return Config{Vocab: 11, SeqLen: 2 * n, DModel: 32, Heads: 2, DHidden: 64, Layers: 2, Activation: "gelu", Gated: true}
}

// TestLearnReverse trains the tiny model on reversing 4 digits (100 Adam
// steps of 32 sequences, seed 42) and checks that the loss on held-out
// sequences falls far below its value at initialisation (about ln 11 ≈ 2.4
// nats for a model that knows nothing) and the token accuracy far above
// chance (0.1).
func TestLearnReverse(t *testing.T) {
	cfg := reverseConfig(4)
	trained := trainedReverse(t)
	g := gorgonia.NewGraph()
	m, err := NewModel(g, cfg, WithSeed(trainSeed)) // the trainer's starting point
	if err != nil {
		t.Fatal(err)
	}
	initial, err := m.Weights()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	held := []Batch{reverseTask(rng, 32, 4), reverseTask(rng, 32, 4)}
	eval := func(w Weights) Metrics {
		ev, err := NewEvaluator(cfg, w, 32)
		if err != nil {
			t.Fatal(err)
		}
		defer ev.Close()
		m, err := ev.EvalAll(held)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	before, after := eval(initial), eval(trained)
	t.Logf("%d steps in %v (%v/step)", trainSteps, trainedTime, trainedTime/trainSteps)
	t.Logf("held out, before: %v", before)
	t.Logf("held out, after:  %v", after)
	if math.Abs(before.Loss-math.Log(11)) > 1 {
		t.Errorf("initial loss %.3f is far from ln 11 = %.3f", before.Loss, math.Log(11))
	}
	if after.Loss > before.Loss/2 {
		t.Errorf("loss fell from %.3f to %.3f only, want below half", before.Loss, after.Loss)
	}
	if after.Accuracy() < 0.5 {
		t.Errorf("token accuracy %.3f after training, want ≥ 0.5 (chance: 0.1)", after.Accuracy())
	}
}

const (
	trainSeed  = 42
	trainSteps = 100
)

var (
	trainedOnce sync.Once
	trainedW    Weights
	trainedErr  error
	trainedTime time.Duration
)

// trainedReverse returns the weights of a model of reverseConfig(4)
// trained for trainSteps steps from seed trainSeed (trained once per test
// binary).
func trainedReverse(t testing.TB) Weights {
	t.Helper()
	trainedOnce.Do(func() {
		tr, err := NewTrainer(reverseConfig(4), nil, TrainConfig{Batch: 32, LearnRate: 3e-3, Seed: trainSeed})
		if err != nil {
			trainedErr = err
			return
		}
		defer tr.Close()
		rng := rand.New(rand.NewPCG(3, 4))
		start := time.Now()
		defer func() { trainedTime = time.Since(start) }()
		for range trainSteps {
			if _, err := tr.Step(reverseTask(rng, 32, 4)); err != nil {
				trainedErr = err
				return
			}
		}
		trainedW, trainedErr = tr.Weights()
	})
	if trainedErr != nil {
		t.Fatal(trainedErr)
	}
	return trainedW
}
