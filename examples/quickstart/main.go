// Command quickstart shows actq in a few lines: its ops in a Gorgonia graph,
// then a tiny transformer trained and evaluated under precision tiers.
package main

import (
	"fmt"
	"log"
	"math/rand/v2"

	"github.com/actq/actq/graph"
	"github.com/actq/actq/ops"
	"github.com/actq/actq/quantize"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func main() {
	// GELU, int8 fake quantization and softmax, forward and backward.
	g := gorgonia.NewGraph()
	x := gorgonia.NodeFromAny(g, tensor.New(tensor.WithShape(2, 3), tensor.WithBacking([]float32{-3, 0, 2, 1, 5, -1})), gorgonia.WithName("x"))
	h, err := ops.GELU(x)
	check(err)
	q, err := quantize.FakeQuant(h, quantize.Spec{Format: quantize.Int8, Symmetric: true})
	check(err)
	p, err := ops.Softmax(q) // along the last axis
	check(err)
	pick := gorgonia.NewConstant(tensor.New(tensor.WithShape(2, 3), tensor.WithBacking([]float32{1, 0, 0, 0, 0, 1})))
	cost := gorgonia.Must(gorgonia.Sum(gorgonia.Must(gorgonia.HadamardProd(p, pick)))) // p[0,0] + p[1,2]
	_, err = gorgonia.Grad(cost, x)
	check(err)
	m := gorgonia.NewTapeMachine(g)
	defer m.Close()
	check(m.RunAll())
	dx, err := x.Grad()
	check(err)
	fmt.Printf("p  = %.4f\ndx = %.4f\n", p.Value().Data(), dx.Data())

	// A one-layer transformer learns to reverse 4 digits; then every
	// tier evaluates the same weights on new sequences.
	cfg := graph.Config{Vocab: 11, SeqLen: 8, DModel: 32, Heads: 2, DHidden: 64, Layers: 1, Activation: "gelu"}
	tr, err := graph.NewTrainer(cfg, nil, graph.TrainConfig{Batch: 32, LearnRate: 1e-2, Seed: 1})
	check(err)
	defer tr.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100 {
		_, err := tr.Step(reverse(rng, 32))
		check(err)
	}
	w, err := tr.Weights()
	check(err)
	test := reverse(rng, 256)
	for _, name := range []string{"fp32", "bf16", "fp8-e4m3", "w8a8", "w4a8"} {
		tier, err := graph.TierByName(name)
		check(err)
		ev, err := graph.NewEvaluator(cfg, w, 256, graph.WithPlan(tier.Plan(cfg.SeqLen)))
		check(err)
		met, err := ev.Eval(test)
		check(err)
		ev.Close()
		fmt.Printf("%-9s token accuracy %5.1f%%, loss %.3e\n", name, 100*met.Accuracy(), met.Loss)
	}
}

// reverse returns n sequences "d1 d2 d3 d4 SEP d4 d3 d2" (SEP = 10) whose
// targets, counted after SEP only, are "d4 d3 d2 d1".
func reverse(rng *rand.Rand, n int) graph.Batch {
	b := graph.Batch{}
	for range n {
		d := []int{rng.IntN(10), rng.IntN(10), rng.IntN(10), rng.IntN(10)}
		b.Tokens = append(b.Tokens, d[0], d[1], d[2], d[3], 10, d[3], d[2], d[1])
		b.Targets = append(b.Targets, graph.Ignore, graph.Ignore, graph.Ignore, graph.Ignore, d[3], d[2], d[1], d[0])
	}
	return b
}

// check stops the program at the first error.
func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
