package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"

	"github.com/actq/actq/graph"
)

// benchModel is one whole-model row: a graph.Config and a batch size, with
// the same model in bench/torch_model.py.
type benchModel struct {
	name  string
	cfg   graph.Config
	batch int
}

// benchModels are the models of the end-to-end comparison: the
// transformer-ffn study's, a small language model, and long sequences.
var benchModels = []benchModel{
	{"study", graph.Config{Vocab: 12, SeqLen: 16, DModel: 64, Heads: 4, DHidden: 128, Layers: 2, Activation: "gelu"}, 32},
	{"small-lm", graph.Config{Vocab: 256, SeqLen: 128, DModel: 128, Heads: 4, DHidden: 512, Layers: 4, Activation: "gelu"}, 16},
	{"long-seq", graph.Config{Vocab: 256, SeqLen: 512, DModel: 64, Heads: 4, DHidden: 256, Layers: 2, Activation: "gelu"}, 4},
}

// torchSpec is the model as torch_bench.py takes it in a request's shape.
func (m benchModel) torchSpec() []int {
	c := m.cfg
	return []int{c.Vocab, c.SeqLen, c.DModel, c.Heads, c.DHidden, c.Layers, m.batch}
}

// randomBatch returns a batch of uniformly random tokens and targets.
func (m benchModel) randomBatch(rng *rand.Rand) graph.Batch {
	n := m.batch * m.cfg.SeqLen
	b := graph.Batch{Tokens: make([]int, n), Targets: make([]int, n)}
	for i := range n {
		b.Tokens[i], b.Targets[i] = rng.IntN(m.cfg.Vocab), rng.IntN(m.cfg.Vocab)
	}
	return b
}

// benchModelRows times graph.Trainer.Step and graph.Evaluator.Eval at the
// default GOMAXPROCS against PyTorch's training step and evaluation pass at
// 1 and 2 threads (the ratio is to the faster), samples interleaved.
func benchModelRows(c config, names []string, torch *torchServer) {
	fmt.Printf("\n## Whole models: graph.Trainer.Step and graph.Evaluator.Eval against PyTorch (ms per step)\n\n")
	fmt.Printf("actq at GOMAXPROCS %d; PyTorch at 1 and 2 threads, the ratio to the faster.\n\n", runtime.GOMAXPROCS(0))
	fmt.Println("| model | pass | actq | torch 1 thread | torch 2 threads | actq/torch |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, m := range benchModels {
		if !slices.Contains(names, m.name) && !slices.Contains(names, "all") {
			continue
		}
		rng := rand.New(rand.NewPCG(1, 2))
		batches := []graph.Batch{m.randomBatch(rng), m.randomBatch(rng)}
		tr, err := graph.NewTrainer(m.cfg, nil, graph.TrainConfig{Batch: m.batch, Seed: 1})
		if err != nil {
			fatalf("model %s: %v", m.name, err)
		}
		w, err := tr.Weights()
		if err != nil {
			fatalf("model %s: %v", m.name, err)
		}
		ev, err := graph.NewEvaluator(m.cfg, w, m.batch)
		if err != nil {
			fatalf("model %s: %v", m.name, err)
		}
		i := 0
		passes := []struct {
			label, torchOp string
			run            func() error
		}{
			{"train step", "model_train:" + m.cfg.Activation, func() error {
				i++
				_, err := tr.Step(batches[i%2])
				return err
			}},
			{"eval pass", "model_eval:" + m.cfg.Activation, func() error {
				i++
				_, err := ev.Eval(batches[i%2])
				return err
			}},
		}
		for _, p := range passes {
			vs := []variant{{name: "actq", run: p.run}}
			if torch != nil {
				for _, threads := range []int{1, 2} {
					v := torch.variant(p.torchOp, m.torchSpec(), threads, "fwd")
					v.name = fmt.Sprintf("torch%d", threads)
					vs = append(vs, v)
				}
			}
			med := measure(c, vs, median)
			ms := func(name string) float64 { return byName(vs, med, name) / 1e6 }
			best := math.Min(ms("torch1"), ms("torch2")) // NaN without PyTorch
			fmt.Printf("| %s | %s | %s | %s | %s | %s |\n", m.name, p.label,
				num(ms("actq")), num(ms("torch1")), num(ms("torch2")), ratio(ms("actq"), best))
		}
		tr.Close()
		ev.Close()
	}
}
