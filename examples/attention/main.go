// Command attention studies attention numerics: how softmax computed in
// different precisions behaves as the context grows, and what quantizing the
// attention probabilities does to the attention output.
//
// For each sequence length (128 to 65536 by default) it draws realistic
// attention scores — scaled dot products of random query and key vectors,
// with an attention-sink logit at the first position — and computes the
// probabilities in float64 (the reference), float32, fp16 without the max
// subtraction, fp16 with the max subtracted and an fp16 or float32 running
// sum, bf16, and float32 probabilities fake-quantized to int8 or fp8 E4M3
// before P·V. It reports, per method and length, the rate of rows with NaN,
// the rate of all-zero rows, the probability mass lost to underflow, the
// largest probability error, the KL divergence from the reference and the
// relative error of the attention output P·V.
//
// Then it runs the full causal graph.Attention module (lengths up to 2048 by
// default) in float32 under each precision tier of graph.Tiers, with the same
// weights and input as a float64 run, and reports the output's error against
// float64 and what the attention-score and probability sites did.
//
// Output: the report on stdout; results.json, the same report in Markdown
// (results.md) and PNG plots under -out (default out/attention); a progress
// bar on stderr. Bad flags exit with status 2, other errors with 1.
//
// Usage:
//
//	go run ./examples/attention [flags]
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"time"

	"github.com/actq/actq/graph"
	"github.com/actq/actq/internal/studyio"
)

// config is everything a run depends on; the same config and seed give the
// same results.
type config struct {
	Lengths  []int        `json:"lengths"`
	Scores   scoreConfig  `json:"scores"`
	Module   moduleConfig `json:"module"`
	Seed     uint64       `json:"seed"`
	Out      string       `json:"-"`
	Progress bool         `json:"-"`
}

func defaultConfig() config {
	var lengths []int
	for l := 128; l <= 65536; l *= 2 {
		lengths = append(lengths, l)
	}
	return config{
		Lengths: lengths,
		Scores:  scoreConfig{Rows: 64, DHead: 64, DValue: 64, LogitStd: 3, Sinks: 1, SinkLo: 4, SinkHi: 14},
		Module: moduleConfig{Lengths: []int{128, 512, 2048}, DModel: 64, Heads: 4, LogitScale: 9,
			Tiers: []string{"fp32", "bf16", "fp16", "fp8-e4m3", "w8a8", "w4a8"}},
		Seed:     1,
		Out:      filepath.Join("out", "attention"),
		Progress: true,
	}
}

// parseFlags reads the command line into a config. Errors (and -h) come back
// as errors, for a usage message and a non-zero exit.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	cfg := defaultConfig()
	fs := flag.NewFlagSet("attention", flag.ContinueOnError)
	fs.SetOutput(stderr)
	lengths := fs.String("lengths", studyio.JoinInts(cfg.Lengths), "comma-separated sequence lengths")
	fs.IntVar(&cfg.Scores.Rows, "rows", cfg.Scores.Rows, "query rows per length")
	fs.IntVar(&cfg.Scores.DHead, "dhead", cfg.Scores.DHead, "query/key dimension")
	fs.IntVar(&cfg.Scores.DValue, "dvalue", cfg.Scores.DValue, "value dimension")
	fs.Float64Var(&cfg.Scores.LogitStd, "logit-std", cfg.Scores.LogitStd, "standard deviation of the attention logits")
	fs.IntVar(&cfg.Scores.Sinks, "sinks", cfg.Scores.Sinks, "attention-sink positions at the start of each row")
	fs.Float64Var(&cfg.Scores.SinkLo, "sink-lo", cfg.Scores.SinkLo, "smallest sink logit")
	fs.Float64Var(&cfg.Scores.SinkHi, "sink-hi", cfg.Scores.SinkHi, "largest sink logit")
	moduleLengths := fs.String("module-lengths", studyio.JoinInts(cfg.Module.Lengths), "comma-separated lengths for the attention module under the tiers (empty: skip that part)")
	tiers := fs.String("tiers", strings.Join(cfg.Module.Tiers, ","), "comma-separated precision tiers for the module ("+strings.Join(studyio.TierNames(), ", ")+")")
	fs.IntVar(&cfg.Module.DModel, "dmodel", cfg.Module.DModel, "the module's model width")
	fs.IntVar(&cfg.Module.Heads, "heads", cfg.Module.Heads, "the module's attention heads")
	fs.Float64Var(&cfg.Module.LogitScale, "module-logit-scale", cfg.Module.LogitScale, "factor on the module's Wq, sharpening its attention")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "random seed")
	fs.StringVar(&cfg.Out, "out", cfg.Out, "output directory")
	fs.BoolVar(&cfg.Progress, "progress", cfg.Progress, "show a progress bar on stderr")
	if err := studyio.ParseFlags(fs, args); err != nil {
		return cfg, err
	}
	var err error
	if cfg.Lengths, err = studyio.ParseInts(*lengths); err != nil {
		return cfg, fmt.Errorf("-lengths: %w", err)
	}
	if cfg.Module.Lengths, err = studyio.ParseInts(*moduleLengths); err != nil {
		return cfg, fmt.Errorf("-module-lengths: %w", err)
	}
	cfg.Module.Tiers = nil
	for _, t := range strings.Split(*tiers, ",") {
		if t = strings.TrimSpace(t); t != "" {
			cfg.Module.Tiers = append(cfg.Module.Tiers, t)
		}
	}
	return cfg, cfg.validate()
}

func (c config) validate() error {
	s := c.Scores
	switch {
	case len(c.Lengths) == 0:
		return errors.New("-lengths: need at least one length")
	case s.Rows < 1:
		return fmt.Errorf("-rows must be ≥ 1, got %d", s.Rows)
	case s.DHead < 1 || s.DValue < 1:
		return fmt.Errorf("-dhead and -dvalue must be ≥ 1, got %d and %d", s.DHead, s.DValue)
	case !(s.LogitStd >= 0) || s.LogitStd > 1e3:
		return fmt.Errorf("-logit-std must be in [0, 1000], got %g", s.LogitStd)
	case s.Sinks < 0:
		return fmt.Errorf("-sinks must be ≥ 0, got %d", s.Sinks)
	case !(s.SinkLo <= s.SinkHi) || s.SinkHi > 1e4 || s.SinkLo < -1e4:
		return fmt.Errorf("-sink-lo %g and -sink-hi %g: need -1e4 ≤ lo ≤ hi ≤ 1e4", s.SinkLo, s.SinkHi)
	case c.Out == "":
		return errors.New("-out must not be empty")
	}
	for _, l := range c.Lengths {
		if l < 2 || l > 1<<20 {
			return fmt.Errorf("-lengths: %d is outside [2, %d]", l, 1<<20)
		}
	}
	m := c.Module
	for _, l := range m.Lengths {
		if l < 1 || l > 8192 {
			return fmt.Errorf("-module-lengths: %d is outside [1, 8192]", l)
		}
	}
	if len(m.Lengths) > 0 {
		if len(m.Tiers) == 0 {
			return errors.New("-tiers: need at least one tier")
		}
		for _, t := range m.Tiers {
			tier, err := graph.TierByName(t)
			if err != nil {
				return fmt.Errorf("-tiers: %w", err)
			}
			if tier.NeedsCalibration() {
				return fmt.Errorf("-tiers: %s needs calibration on an FFN, which the attention module has not", t)
			}
		}
		if m.DModel < 1 || m.Heads < 1 || m.DModel%m.Heads != 0 {
			return fmt.Errorf("-dmodel %d and -heads %d: need positive sizes, heads dividing dmodel", m.DModel, m.Heads)
		}
		if !(m.LogitScale > 0) || m.LogitScale > 1e3 {
			return fmt.Errorf("-module-logit-scale must be in (0, 1000], got %g", m.LogitScale)
		}
	}
	return nil
}

// results is what results.json holds.
type results struct {
	Config  config          `json:"config"`
	Methods []methodInfo    `json:"methods"`
	Softmax []softmaxResult `json:"softmax"`
	Module  []moduleResult  `json:"module"`
	Seconds float64         `json:"seconds"`
}

type methodInfo struct {
	Name string `json:"name"`
	Desc string `json:"description"`
}

func main() { studyio.Main("attention", parseFlags, run) }

// run performs the study and writes its outputs.
func run(cfg config, stdout, stderr io.Writer) error {
	start := time.Now()
	ms := methods()
	res := results{Config: cfg}
	for _, m := range ms {
		res.Methods = append(res.Methods, methodInfo{m.name, m.desc})
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	bar := studyio.NewProgress(stderr, cfg.Progress, len(cfg.Lengths), "softmax numerics")
	for _, l := range cfg.Lengths {
		bar.Describe(fmt.Sprintf("softmax numerics, length %d", l))
		w := newWorkload(cfg.Scores, l, rng)
		rs, err := runSoftmaxStudy(w, ms)
		if err != nil {
			return fmt.Errorf("length %d: %w", l, err)
		}
		res.Softmax = append(res.Softmax, rs...)
		bar.Add(1)
	}
	bar.Finish()

	if len(cfg.Module.Lengths) > 0 {
		w64, err := moduleWeights(cfg.Module, cfg.Seed)
		if err != nil {
			return err
		}
		bar = studyio.NewProgress(stderr, cfg.Progress, len(cfg.Module.Lengths), "attention module")
		for _, l := range cfg.Module.Lengths {
			bar.Describe(fmt.Sprintf("attention module, length %d", l))
			rs, err := runModuleStudy(cfg.Module, w64, l, rng)
			if err != nil {
				return fmt.Errorf("module, length %d: %w", l, err)
			}
			res.Module = append(res.Module, rs...)
			bar.Add(1)
		}
		bar.Finish()
	}
	res.Seconds = time.Since(start).Seconds()

	report := func(r *studyio.Report) {
		printSoftmax(r, res)
		printModule(r, res)
	}
	if err := studyio.Publish(stdout, cfg.Out, res, report); err != nil {
		return err
	}
	if err := plotSoftmax(cfg.Out, res); err != nil {
		return err
	}
	if len(res.Module) > 0 {
		if err := plotModule(cfg.Out, res); err != nil {
			return err
		}
	}
	studyio.Wrote(stdout, cfg.Out, res.Seconds, "results.json", "results.md", "*.png")
	return nil
}
