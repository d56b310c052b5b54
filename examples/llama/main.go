// Command llama shows what actq does with a Hugging Face Llama checkpoint
// (a directory with config.json and model.safetensors, F32, F16 or BF16):
// it loads it into a differentiable Gorgonia graph, evaluates it under
// every precision tier, fine-tunes it a few steps, generates from it
// before and after, and saves it where PyTorch's transformers can load it
// (LlamaForCausalLM.from_pretrained), checking that actq loads the same
// bits back.
//
// The data are token ids, not text (actq has no tokenizer): sequences that
// count up by one from a few starting ids, each target the next id. The
// fine-tuning teaches the model to count, which the generated tokens show.
//
// The default checkpoint is a tiny one with random weights from the tests
// (testdata/llama/gqa-f32, written by scripts/goldens/gen_llama.py); -model
// takes any Llama checkpoint graph.LoadHF supports (see its doc). Bad
// flags exit with status 2, other errors with 1.
//
// Usage:
//
//	go run ./examples/llama [-model dir] [-out dir] [flags]
package main

import (
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"

	"github.com/actq/actq/graph"
	"github.com/actq/actq/internal/studyio"
)

// config is a run's settings.
type config struct {
	Model  string // checkpoint directory
	Out    string // where to save the fine-tuned model; "": a temporary directory, removed
	SeqLen int    // tokens per training and evaluation sequence
	Steps  int    // fine-tuning steps
	LR     float64
	New    int // tokens to generate
}

func parse(args []string, stderr io.Writer) (config, error) {
	c := config{}
	fs := flag.NewFlagSet("llama", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Model, "model", "testdata/llama/gqa-f32", "Hugging Face Llama checkpoint directory (config.json, model.safetensors)")
	fs.StringVar(&c.Out, "out", "", "directory for the fine-tuned checkpoint (default: a temporary one, removed at exit)")
	fs.IntVar(&c.SeqLen, "seq", 16, "tokens per sequence")
	fs.IntVar(&c.Steps, "steps", 8, "fine-tuning steps")
	fs.Float64Var(&c.LR, "lr", 1e-2, "fine-tuning learning rate (Adam)")
	fs.IntVar(&c.New, "new", 8, "tokens to generate")
	if err := studyio.ParseFlags(fs, args); err != nil {
		return c, err
	}
	if c.SeqLen < 2 || c.Steps < 0 || c.New < 1 || !(c.LR > 0) || math.IsInf(c.LR, 1) {
		return c, fmt.Errorf("-seq %d, -steps %d, -new %d, -lr %g: want -seq ≥ 2, -steps ≥ 0, -new ≥ 1 and finite -lr > 0", c.SeqLen, c.Steps, c.New, c.LR)
	}
	return c, nil
}

func main() { studyio.Main("llama", parse, run) }

func run(c config, stdout, _ io.Writer) error {
	cfg, w, err := graph.LoadHF(c.Model)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d layers, d_model %d, %d heads, %d key/value heads, vocabulary %d, %d parameters\n",
		c.Model, cfg.Layers, cfg.DModel, cfg.Heads, cfg.KVHeads, cfg.Vocab, w.Count())
	context := cfg.SeqLen // max_position_embeddings; with RoPE, SeqLen is only a batch's length
	cfg.SeqLen = min(c.SeqLen, context)
	train, test := counting(cfg, []int{3, 40, 77, 120}), counting(cfg, []int{10, 61})
	batch := len(train.Tokens) / cfg.SeqLen
	prompt := test.Tokens[:4]

	// Every precision tier, on the loaded weights.
	for _, tier := range graph.Tiers() {
		plan := tier.Plan(cfg.SeqLen)
		if tier.NeedsCalibration() {
			plan, err = graph.Calibrate(cfg, w, plan, []graph.Batch{train})
			if err != nil {
				return err
			}
		}
		ev, err := graph.NewEvaluator(cfg, w, len(test.Tokens)/cfg.SeqLen, graph.WithPlan(plan))
		if err != nil {
			return err
		}
		m, err := ev.Eval(test)
		ev.Close()
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%-12s loss %.3f  accuracy %5.1f%%\n", tier.Name, m.Loss, 100*m.Accuracy())
	}
	gen, err := graph.NewGenerator(cfg, w)
	if err != nil {
		return err
	}
	before, err := gen.Generate(prompt, c.New, graph.Sampling{})
	if err != nil {
		return err
	}

	// Fine-tuning, then generation from the tuned weights.
	tr, err := graph.NewTrainer(cfg, w, graph.TrainConfig{Batch: batch, LearnRate: c.LR})
	if err != nil {
		return err
	}
	defer tr.Close()
	var losses []float64
	for range c.Steps {
		m, err := tr.Step(train)
		if err != nil {
			return err
		}
		losses = append(losses, m.Loss)
	}
	tuned, err := tr.Weights()
	if err != nil {
		return err
	}
	m, err := evaluate(cfg, tuned, test)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "fine-tuning: training loss %.2f; test loss %.3f, accuracy %.1f%%\n", losses, m.Loss, 100*m.Accuracy())
	tunedGen, err := graph.NewGenerator(cfg, tuned)
	if err != nil {
		return err
	}
	after, err := tunedGen.Generate(prompt, c.New, graph.Sampling{})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "greedy after %v: before fine-tuning %v, after %v\n", prompt, before, after)

	// Save for PyTorch, and load again.
	dir := c.Out
	if dir == "" {
		if dir, err = os.MkdirTemp("", "actq-llama"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	cfg.SeqLen = context
	err = graph.SaveHF(dir, cfg, tuned)
	if err != nil {
		return err
	}
	cfg2, w2, err := graph.LoadHF(dir)
	if err != nil {
		return err
	}
	same := cfg2 == cfg && len(w2) == len(tuned)
	for name, v := range tuned {
		same = same && slices.Equal(v.Float32s(), w2[name].Float32s())
	}
	if !same {
		return fmt.Errorf("the checkpoint saved in %s does not load back as the same model", dir)
	}
	if c.Out != "" {
		fmt.Fprintf(stdout, "saved in %s (loads back bit for bit)\n", dir)
	} else {
		fmt.Fprintln(stdout, "saved and loaded back bit for bit")
	}
	return nil
}

// counting returns sequences of cfg.SeqLen token ids counting up by one
// (modulo the vocabulary) from each start, each target the next id.
func counting(cfg graph.Config, starts []int) graph.Batch {
	var b graph.Batch
	for _, s := range starts {
		for t := range cfg.SeqLen {
			b.Tokens = append(b.Tokens, (s+t)%cfg.Vocab)
			b.Targets = append(b.Targets, (s+t+1)%cfg.Vocab)
		}
	}
	return b
}

// evaluate runs one Evaluator pass over b.
func evaluate(cfg graph.Config, w graph.Weights, b graph.Batch) (graph.Metrics, error) {
	ev, err := graph.NewEvaluator(cfg, w, len(b.Tokens)/cfg.SeqLen)
	if err != nil {
		return graph.Metrics{}, err
	}
	defer ev.Close()
	return ev.Eval(b)
}
