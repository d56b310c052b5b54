package graph

import (
	"math/rand/v2"
	"testing"

	"gorgonia.org/gorgonia"
)

// benchConfig is the tiny model of the benchmarks: the reversal task's
// model (2 layers, DModel 32, 2 heads, SwiGLU-style gated GELU FFN of 64).
func benchConfig() Config { return reverseConfig(4) }

// BenchmarkTrainStep measures one training step (forward, backward, Adam)
// of the tiny model on a batch of 32 sequences of 8 tokens.
func BenchmarkTrainStep(b *testing.B) {
	cfg := benchConfig()
	tr, err := NewTrainer(cfg, nil, TrainConfig{Batch: 32, LearnRate: 1e-3, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	rng := rand.New(rand.NewPCG(1, 1))
	batches := []Batch{reverseTask(rng, 32, 4), reverseTask(rng, 32, 4)}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := tr.Step(batches[i%2]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkEvalInt8 measures one evaluation of the tiny model under an int8
// plan (weights per channel, quantized once; activations dynamic per
// tensor) on a batch of 32 sequences, and BenchmarkEvalFP32 the same
// without a plan.
func BenchmarkEvalInt8(b *testing.B) { benchEval(b, int8Plan()) }

func BenchmarkEvalFP32(b *testing.B) { benchEval(b, nil) }

func benchEval(b *testing.B, plan *Plan) {
	cfg := benchConfig()
	m, err := NewModel(gorgonia.NewGraph(), cfg, WithSeed(1))
	if err != nil {
		b.Fatal(err)
	}
	w, err := m.Weights()
	if err != nil {
		b.Fatal(err)
	}
	var opts []Option
	if plan != nil {
		opts = append(opts, WithPlan(plan))
	}
	ev, err := NewEvaluator(cfg, w, 32, opts...)
	if err != nil {
		b.Fatal(err)
	}
	defer ev.Close()
	batch := reverseTask(rand.New(rand.NewPCG(2, 2)), 32, 4)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ev.Eval(batch); err != nil {
			b.Fatal(err)
		}
	}
}
