package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"time"

	"github.com/actq/actq/graph"
	"github.com/actq/actq/internal/parallel"
	"gonum.org/v1/gonum/blas/gonum"
	"gorgonia.org/gorgonia"
)

// genModel is one generation row: a Llama-shaped model with random
// weights, a prompt length and the number of tokens generated.
type genModel struct {
	name          string
	cfg           graph.Config
	prompt, steps int
}

// genModels are the generation benchmarks: a model large enough for its
// weights (26M parameters, 103 MB) to stream from memory at every token,
// and a tiny one for quick runs.
var genModels = []genModel{
	{"llama-512", graph.Config{Vocab: 4096, SeqLen: 256, DModel: 512, Heads: 8, KVHeads: 4, DHidden: 1408, Layers: 8,
		Activation: "silu", Gated: true, NoBias: true, RoPETheta: 10000, NormEps: 1e-5}, 64, 128},
	{"llama-tiny", graph.Config{Vocab: 256, SeqLen: 64, DModel: 64, Heads: 4, KVHeads: 2, DHidden: 176, Layers: 2,
		Activation: "silu", Gated: true, NoBias: true, RoPETheta: 10000, NormEps: 1e-5}, 16, 32},
}

// benchGenerateRows times greedy generation with graph.Generator against
// PyTorch's eager decode loop with a KV cache (bench/torch_llama.py) on the
// same weights, written by graph.SaveHF, at each thread count, samples
// interleaved: a whole generation (the prompt's forward pass and one step
// per new token), the prompt's forward pass alone, and reading the model's
// weights once (the memory-bandwidth bar of a decoding step, which reads
// every weight).
func benchGenerateRows(c config, names []string, torch *torchServer) {
	fmt.Printf("\n## Generation: graph.Generator against PyTorch's eager decode loop with a KV cache\n\n")
	fmt.Println("Greedy, float32, random weights (the same on both sides); best of the samples. gen: prompt and every new token, ms;")
	fmt.Println("prefill: the prompt alone, ms; decode: (gen − prefill)/(new tokens − 1), ms per token, and tokens/s;")
	fmt.Println("read: one pass over the weights' bytes (a decoding step's memory traffic), ms, and decode/read.")
	for _, gm := range genModels {
		if !slices.Contains(names, gm.name) && !slices.Contains(names, "all") {
			continue
		}
		benchGenerate(c, gm, torch)
	}
}

func benchGenerate(c config, gm genModel, torch *torchServer) {
	m, err := graph.NewModel(gorgonia.NewGraph(), gm.cfg, graph.WithSeed(1))
	if err != nil {
		fatalf("generate %s: %v", gm.name, err)
	}
	w, err := m.Weights()
	if err != nil {
		fatalf("generate %s: %v", gm.name, err)
	}
	dir, err := os.MkdirTemp("", "actq-bench-"+gm.name+"-")
	if err != nil {
		fatalf("generate %s: %v", gm.name, err)
	}
	defer os.RemoveAll(dir)
	if err := graph.SaveHF(dir, gm.cfg, w); err != nil {
		fatalf("generate %s: %v", gm.name, err)
	}
	gen, err := graph.NewGenerator(gm.cfg, w)
	if err != nil {
		fatalf("generate %s: %v", gm.name, err)
	}
	rng := rand.New(rand.NewPCG(2, 3))
	prompt := make([]int, gm.prompt)
	for i := range prompt {
		prompt[i] = rng.IntN(gm.cfg.Vocab)
	}
	tokens, err := gen.Generate(prompt, gm.steps, graph.Sampling{})
	if err != nil {
		fatalf("generate %s: %v", gm.name, err)
	}
	fmt.Printf("\n%s: %d prompt tokens, %d new ones.", gm.name, gm.prompt, gm.steps)
	if torch != nil {
		compareTokens(gm, dir, prompt, tokens, torch)
	}
	fmt.Println()
	fmt.Println()
	fmt.Println("| model | threads | actq gen | torch gen | actq prefill | torch prefill | actq decode | torch decode | actq tok/s | torch tok/s | actq/torch | read | actq decode/read |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	// The weights' bytes, to read once per sample of the read bar.
	weights := 0
	for name, v := range w {
		if name != "embed.tok" || gm.cfg.TieEmbeddings {
			weights += v.Shape().TotalSize()
		}
	}
	buf := make([]float32, weights)
	for i := range buf {
		buf[i] = 1
	}
	maxProcs := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(maxProcs)
	for _, threads := range c.threads {
		runtime.GOMAXPROCS(threads)
		vs := []variant{
			{name: "actq gen", run: func() error { _, err := gen.Generate(prompt, gm.steps, graph.Sampling{}); return err }},
			{name: "actq prefill", run: func() error { _, err := gen.Logits(prompt, []int{gm.prompt - 1}); return err }},
			{name: "read", run: func() error { readAll(buf); return nil }},
		}
		if torch != nil {
			for op, name := range map[string]string{"generate": "torch gen", "prefill": "torch prefill"} {
				vs = append(vs, variant{name: name, timed: func(d time.Duration) float64 {
					ns, err := torch.timeRequest(map[string]any{"op": op, "shape": []int{gm.prompt, gm.steps},
						"threads": threads, "path": dir, "prompt": prompt}, d)
					if err != nil {
						fmt.Fprintf(os.Stderr, "bench: PyTorch %s: %v\n", op, err)
						return math.NaN()
					}
					return ns
				}})
			}
		}
		med := measure(c, vs, best) // other processes only ever slow a run down
		ms := func(name string) float64 { return byName(vs, med, name) / 1e6 }
		decode := func(who string) float64 { return (ms(who+" gen") - ms(who+" prefill")) / float64(gm.steps-1) }
		ad, td := decode("actq"), decode("torch")
		fmt.Printf("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", gm.name, threads,
			num(ms("actq gen")), num(ms("torch gen")), num(ms("actq prefill")), num(ms("torch prefill")),
			num(ad), num(td), num(1e3/ad), num(1e3/td), ratio(ms("actq gen"), ms("torch gen")),
			num(ms("read")), ratio(ad, ms("read")))
	}
}

// compareTokens prints how many of the Generator's greedy tokens PyTorch's
// loop produces too, before the first difference (random weights make
// near ties, where float32 rounding may choose either token).
func compareTokens(gm genModel, dir string, prompt, tokens []int, torch *torchServer) {
	var r struct {
		Tokens []int `json:"tokens"`
	}
	if err := torch.call(map[string]any{"op": "generate_tokens", "shape": []int{gm.prompt, gm.steps}, "threads": 1,
		"path": dir, "prompt": prompt}, &r); err != nil {
		fmt.Fprintf(os.Stderr, "bench: PyTorch generate_tokens: %v\n", err)
		return
	}
	same := 0
	for same < len(tokens) && same < len(r.Tokens) && tokens[same] == r.Tokens[same] {
		same++
	}
	fmt.Printf(" PyTorch's greedy tokens equal the Generator's for the first %d of %d.", same, len(tokens))
}

// readAll reads buf once, in parallel chunks, with gonum's vector dot
// product of each chunk with itself (one stream from memory: the second
// operand's loads hit the lines the first just brought in): the memory-read
// bar.
func readAll(buf []float32) {
	_ = parallel.For(len(buf), 1<<18, func(lo, hi int) error {
		gonum.Implementation{}.Sdot(hi-lo, buf[lo:hi], 1, buf[lo:hi], 1)
		return nil
	})
}
