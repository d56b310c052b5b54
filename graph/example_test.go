package graph_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/actq/actq/graph"
	"github.com/actq/actq/quantize"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// A SwiGLU feed-forward layer on 2 rows of width 4.
func ExampleNewFFN() {
	g := gorgonia.NewGraph()
	ffn, err := graph.NewFFN(g, "ffn", graph.FFNConfig{DModel: 4, DHidden: 8, Activation: "silu", Gated: true}, graph.WithSeed(1))
	if err != nil {
		panic(err)
	}
	x := gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(2, 4), gorgonia.WithName("x"),
		gorgonia.WithValue(tensor.New(tensor.WithShape(2, 4), tensor.WithBacking([]float32{1, -1, 0.5, 2, 0, 0.25, -2, 1}))))
	y, err := ffn.Forward(x)
	if err != nil {
		panic(err)
	}
	var out gorgonia.Value
	gorgonia.Read(y, &out) // a copy: the machine may reuse y's memory
	m := gorgonia.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		panic(err)
	}
	fmt.Println(ffn.W1.Name(), ffn.W1.Shape(), ffn.W3.Name(), ffn.W3.Shape(), ffn.W2.Name(), ffn.W2.Shape())
	fmt.Println(y.Shape())
	fmt.Printf("%.4f\n", out.Data())
	// Output:
	// ffn.W1 (4, 8) ffn.W3 (4, 8) ffn.W2 (8, 4)
	// (2, 4)
	// [0.1799 -0.0101 -0.1195 0.0963 0.2004 -0.2477 0.2654 -0.4090]
}

// Causal multi-head attention: the first position attends to itself only.
func ExampleNewAttention() {
	g := gorgonia.NewGraph()
	attn, err := graph.NewAttention(g, "attn", graph.AttentionConfig{DModel: 8, Heads: 2, Causal: true}, graph.WithSeed(1))
	if err != nil {
		panic(err)
	}
	x := gorgonia.NewTensor(g, tensor.Float64, 3, gorgonia.WithShape(1, 3, 8), gorgonia.WithName("x"), gorgonia.WithInit(gorgonia.Gaussian(0, 1)))
	_, err = attn.Forward(x)
	fmt.Println(err != nil) // the layer is Float32; x is Float64

	x = gorgonia.NewTensor(g, tensor.Float32, 3, gorgonia.WithShape(1, 3, 8), gorgonia.WithName("x32"), gorgonia.WithInit(gorgonia.Gaussian(0, 1)))
	y, err := attn.Forward(x)
	if err != nil {
		panic(err)
	}
	fmt.Println(attn.Wq.Name(), attn.Wq.Shape(), y.Shape())
	// Output:
	// true
	// attn.Wq (8, 8) (1, 3, 8)
}

// copyTask makes batches in which the model must repeat 3 digits after a
// separator (10): tokens d1 d2 d3 10 d1 d2, targets scored after the
// separator only.
func copyTask(rng *rand.Rand, batch int) graph.Batch {
	const n, seq = 3, 6
	b := graph.Batch{Tokens: make([]int, batch*seq), Targets: make([]int, batch*seq)}
	for s := range batch {
		full := []int{rng.IntN(10), rng.IntN(10), rng.IntN(10), 10, 0, 0, 0}
		copy(full[n+1:], full[:n])
		for t := range seq {
			b.Tokens[s*seq+t], b.Targets[s*seq+t] = full[t], graph.Ignore
			if t >= n {
				b.Targets[s*seq+t] = full[t+1]
			}
		}
	}
	return b
}

// trainCopy trains a tiny transformer to copy digits (61 Adam steps of 16
// sequences of copyTask) and returns its config, its weights, the metrics
// of the first step and the random source of the batches, for more.
func trainCopy() (graph.Config, graph.Weights, graph.Metrics, *rand.Rand) {
	cfg := graph.Config{Vocab: 11, SeqLen: 6, DModel: 16, Heads: 2, DHidden: 32, Layers: 1, Activation: "gelu"}
	tr, err := graph.NewTrainer(cfg, nil, graph.TrainConfig{Batch: 16, LearnRate: 1e-2, Seed: 1})
	if err != nil {
		panic(err)
	}
	defer tr.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	first, _ := tr.Step(copyTask(rng, 16))
	for range 60 {
		if _, err := tr.Step(copyTask(rng, 16)); err != nil {
			panic(err)
		}
	}
	w, _ := tr.Weights()
	return cfg, w, first, rng
}

// Train a tiny transformer to copy digits, then evaluate it in float32 and
// under int8 weights and activations.
func ExampleNewTrainer() {
	cfg, w, first, rng := trainCopy()
	test := []graph.Batch{copyTask(rng, 16), copyTask(rng, 16)}

	fp32, _ := graph.NewEvaluator(cfg, w, 16)
	defer fp32.Close()
	m32, _ := fp32.EvalAll(test)

	int8 := &graph.Quant{Spec: quantize.Spec{Format: quantize.Int8, Symmetric: true}}
	plan := &graph.Plan{Name: "w8a8", Weights: int8, Head: int8, FFNInput: int8, FFNHidden: int8, BlockOutput: int8}
	q8, _ := graph.NewEvaluator(cfg, w, 16, graph.WithPlan(plan))
	defer q8.Close()
	m8, _ := q8.EvalAll(test)

	fmt.Printf("loss fell below a tenth: %v\n", m32.Loss < first.Loss/10)
	fmt.Printf("fp32 accuracy ≥ 0.9: %v; int8 within 0.05 of it: %v\n", m32.Accuracy() >= 0.9, m8.Accuracy() > m32.Accuracy()-0.05)
	// Output:
	// loss fell below a tenth: true
	// fp32 accuracy ≥ 0.9: true; int8 within 0.05 of it: true
}

// Calibrate static int4 scales at the FFN's hidden layer (after the
// activation), then read what quantization did at each site.
func ExampleCalibrate() {
	cfg := graph.Config{Vocab: 11, SeqLen: 6, DModel: 16, Heads: 2, DHidden: 32, Layers: 1, Activation: "relu"}
	g := gorgonia.NewGraph()
	model, err := graph.NewModel(g, cfg, graph.WithSeed(3)) // untrained, for the example
	if err != nil {
		panic(err)
	}
	w, _ := model.Weights()

	plan := &graph.Plan{
		Name:      "w4a8, static int4 FFN hidden",
		Weights:   &graph.Quant{Spec: quantize.Spec{Format: quantize.Int4, Granularity: quantize.PerGroup, GroupSize: 16, Symmetric: true}},
		FFNInput:  &graph.Quant{Spec: quantize.Spec{Format: quantize.Int8, Symmetric: true}},
		FFNHidden: &graph.Quant{Spec: quantize.Spec{Format: quantize.UInt4}, Static: true},
	}
	rng := rand.New(rand.NewPCG(5, 6))
	cal, err := graph.Calibrate(cfg, w, plan, []graph.Batch{copyTask(rng, 8), copyTask(rng, 8)})
	if err != nil {
		panic(err)
	}
	fmt.Println("calibrated:", len(cal.Sites), "site; static:", cal.Sites["block0.ffn.hidden"].Static, "scales:", len(cal.Sites["block0.ffn.hidden"].Spec.Scale))

	ev, err := graph.NewEvaluator(cfg, w, 8, graph.WithPlan(cal))
	if err != nil {
		panic(err)
	}
	defer ev.Close()
	if _, err := ev.Eval(copyTask(rng, 8)); err != nil {
		panic(err)
	}
	stats := ev.Stats()
	names := make([]string, 0, len(stats))
	for name := range stats {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		st := stats[name]
		fmt.Printf("%-18s runs %d, elements %4d, clipped %.1f%%, SQNR %.0f dB\n", name, st.Runs, st.Elements, 100*st.ClippedFraction(), st.SQNR())
	}
	// Output:
	// calibrated: 1 site; static: false scales: 1
	// block0.attn.Wk     runs 1, elements  256, clipped 0.0%, SQNR 23 dB
	// block0.attn.Wo     runs 1, elements  256, clipped 0.0%, SQNR 24 dB
	// block0.attn.Wq     runs 1, elements  256, clipped 0.0%, SQNR 24 dB
	// block0.attn.Wv     runs 1, elements  256, clipped 0.0%, SQNR 24 dB
	// block0.ffn.W1      runs 1, elements  512, clipped 0.0%, SQNR 24 dB
	// block0.ffn.W2      runs 1, elements  512, clipped 0.0%, SQNR 24 dB
	// block0.ffn.hidden  runs 1, elements 1536, clipped 0.0%, SQNR 25 dB
	// block0.ffn.in      runs 1, elements  768, clipped 0.0%, SQNR 44 dB
}

// Load a Hugging Face Llama checkpoint, evaluate it under every precision
// tier, fine-tune it a few steps, save it for PyTorch and load it again.
// (The checkpoint is a tiny one with random weights, from the tests.)
func ExampleLoadHF() {
	cfg, w, err := graph.LoadHF(filepath.Join("..", "testdata", "llama", "gqa-f32"))
	if err != nil {
		panic(err)
	}
	fmt.Printf("%d layers, %d heads sharing %d key/value heads, RoPE θ = %g, %d parameters\n",
		cfg.Layers, cfg.Heads, cfg.KVHeads, cfg.RoPETheta, w.Count())

	// SeqLen is the model's context (max_position_embeddings); with rotary
	// positions it is only the length of a batch's sequences: use 8.
	context := cfg.SeqLen
	cfg.SeqLen = 8
	// Two sequences counting up from 3 and from 40; each target is the
	// next token.
	var b graph.Batch
	for _, start := range []int{3, 40} {
		for t := range cfg.SeqLen {
			b.Tokens = append(b.Tokens, (start+t)%cfg.Vocab)
			b.Targets = append(b.Targets, (start+t+1)%cfg.Vocab)
		}
	}

	for _, tier := range graph.Tiers() {
		plan := tier.Plan(cfg.SeqLen)
		if tier.NeedsCalibration() {
			if plan, err = graph.Calibrate(cfg, w, plan, []graph.Batch{b}); err != nil {
				panic(err)
			}
		}
		ev, err := graph.NewEvaluator(cfg, w, 2, graph.WithPlan(plan))
		if err != nil {
			panic(err)
		}
		m, err := ev.Eval(b)
		ev.Close()
		if err != nil {
			panic(err)
		}
		fmt.Printf("%-12s loss %.3f\n", tier.Name, m.Loss)
	}

	tr, err := graph.NewTrainer(cfg, w, graph.TrainConfig{Batch: 2, LearnRate: 1e-2})
	if err != nil {
		panic(err)
	}
	defer tr.Close()
	var losses []float64
	for range 5 {
		m, err := tr.Step(b)
		if err != nil {
			panic(err)
		}
		losses = append(losses, m.Loss)
	}
	fmt.Printf("fine-tuning: loss %.2f\n", losses)
	tuned, err := tr.Weights()
	if err != nil {
		panic(err)
	}

	dir, err := os.MkdirTemp("", "actq-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	save := cfg
	save.SeqLen = context // config.json's max_position_embeddings
	if err := graph.SaveHF(dir, save, tuned); err != nil {
		panic(err)
	}
	cfg2, w2, err := graph.LoadHF(dir)
	if err != nil {
		panic(err)
	}
	same := cfg2 == save
	for name, v := range tuned {
		same = same && slices.Equal(v.Float32s(), w2[name].Float32s())
	}
	fmt.Println("saved and loaded again, the same model:", same)
	// Output:
	// 2 layers, 4 heads sharing 2 key/value heads, RoPE θ = 10000, 22688 parameters
	// fp32         loss 4.498
	// bf16         loss 4.500
	// fp16         loss 4.498
	// fp8-e4m3     loss 4.521
	// w8a8         loss 4.495
	// w4a8         loss 4.557
	// w4a8-static  loss 4.455
	// fine-tuning: loss [4.50 2.65 1.62 0.98 0.59]
	// saved and loaded again, the same model: true
}
