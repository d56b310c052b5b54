package main

import (
	"math/rand/v2"
	"testing"

	"github.com/actq/actq/graph"
)

// BenchmarkModel times graph.Trainer.Step and graph.Evaluator.Eval on the
// models of go run ./bench -models, as Go benchmarks: for profiles
// (go test ./bench -run '^$' -bench 'Model/small-lm/eval' -cpuprofile …)
// and allocation counts, after one step outside the timing (the first
// allocates what later steps reuse). The comparison with PyTorch is
// go run ./bench.
func BenchmarkModel(b *testing.B) {
	for _, m := range benchModels {
		rng := rand.New(rand.NewPCG(1, 2))
		batches := []graph.Batch{m.randomBatch(rng), m.randomBatch(rng)}
		b.Run(m.name+"/train", func(b *testing.B) {
			tr, err := graph.NewTrainer(m.cfg, nil, graph.TrainConfig{Batch: m.batch, Seed: 1})
			if err != nil {
				b.Fatal(err)
			}
			defer tr.Close()
			loop(b, batches, tr.Step)
		})
		b.Run(m.name+"/eval", func(b *testing.B) {
			ev, err := graph.NewEvaluator(m.cfg, initialWeights(b, m), m.batch)
			if err != nil {
				b.Fatal(err)
			}
			defer ev.Close()
			loop(b, batches, ev.Eval)
		})
	}
}

// loop times step on the batches in turn, after one step outside the
// timing: the first allocates the tensors that later steps reuse.
func loop(b *testing.B, batches []graph.Batch, step func(graph.Batch) (graph.Metrics, error)) {
	if _, err := step(batches[1]); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := step(batches[i%2]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkModelBuild times building a Trainer (graph, gradients, tape
// machine) and an Evaluator for each model.
func BenchmarkModelBuild(b *testing.B) {
	for _, m := range benchModels {
		w := initialWeights(b, m)
		b.Run(m.name, func(b *testing.B) {
			for b.Loop() {
				tr, err := graph.NewTrainer(m.cfg, w, graph.TrainConfig{Batch: m.batch})
				if err != nil {
					b.Fatal(err)
				}
				tr.Close()
				ev, err := graph.NewEvaluator(m.cfg, w, m.batch)
				if err != nil {
					b.Fatal(err)
				}
				ev.Close()
			}
		})
	}
}

// initialWeights returns the weights a Trainer of m starts from (seed 1).
func initialWeights(b *testing.B, m benchModel) graph.Weights {
	tr, err := graph.NewTrainer(m.cfg, nil, graph.TrainConfig{Batch: m.batch, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	w, err := tr.Weights()
	if err != nil {
		b.Fatal(err)
	}
	return w
}
