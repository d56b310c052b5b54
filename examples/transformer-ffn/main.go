// Command transformer-ffn studies what the FFN activation function and the
// numeric precision do to a small transformer.
//
// It trains a tiny decoder-only transformer (graph.Trainer) to sort
// sequences of decimal digits, once per activation function (gelu,
// gelu_tanh, silu, relu by default), with the same seed, initial weights and
// data. Each trained model is then evaluated under every precision tier of
// graph.Tiers — fp32, bf16, fp16, fp8-e4m3, w8a8, w4a8 and w4a8-static, whose
// static int4 FFN-hidden scales are calibrated on in-distribution batches —
// on two cohorts: in-distribution inputs, and stressed inputs (longer, with
// runs of a repeated extreme digit) that reach positions and patterns the
// calibration batches never contain.
//
// For every activation × tier × cohort it reports the token and sequence
// accuracy, the loss, the accuracy drop in points against fp32 on the same
// cohort, and what quantization did at the FFN hidden sites (the input of the
// second FFN matrix, after the activation): the fraction of values clipped,
// the fraction of non-zero values flushed to zero, and the
// signal-to-quantization-noise ratio. A gate line names every combination
// whose drop exceeds -gate-threshold points. Optionally (-qat-steps > 0)
// each model is fine-tuned for a few steps under the calibrated w4a8-static
// plan (quantization-aware training with straight-through gradients), once
// per -qat-scales mode — the calibrated scales fixed, or learned with the
// weights (LSQ, graph.Quant.Learnable) — and evaluated again, against an
// fp32 fine-tune on the same batches.
//
// With -seeds 1,2,3 the whole study runs once per seed (each seed its own
// initial weights, training data, evaluation and calibration sequences)
// and every figure is reported as the mean over the seeds ± its standard
// error; with one seed, the drops' errors are paired over the tokens.
//
// Output: the report on stdout; results.json, the same report in Markdown
// (results.md) and PNG plots under -out (default out/transformer-ffn); a
// progress bar on stderr. The exit status is 0 whatever the gate finds,
// unless -gate is given: then 3 if any combination fails it. Bad flags exit
// with status 2, other errors with 1.
//
// Usage:
//
//	go run ./examples/transformer-ffn [flags]
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/actq/actq/graph"
	"github.com/actq/actq/internal/studyio"
)

// taskConfig sets the lengths of the digit sequences.
type taskConfig struct {
	MinDigits     int `json:"min_digits"`     // shortest sequence, in training and in distribution
	TypicalDigits int `json:"typical_digits"` // longest in-distribution (and calibration) sequence
	MaxDigits     int `json:"max_digits"`     // longest trained sequence: the stressed cohort's length
}

// modelConfig is the transformer's shape (the activation varies).
type modelConfig struct {
	DModel  int  `json:"d_model"`
	Heads   int  `json:"heads"`
	DHidden int  `json:"d_hidden"`
	Layers  int  `json:"layers"`
	Gated   bool `json:"gated"`
}

// trainConfig is the training recipe: Adam at LearnRate, then at
// LearnRate/5 from DecayAt·Steps on.
type trainConfig struct {
	Steps     int     `json:"steps"`
	Batch     int     `json:"batch"`
	LearnRate float64 `json:"learn_rate"`
	DecayAt   float64 `json:"decay_at"`
	QATSteps  int     `json:"qat_steps"`
	QATRate   float64 `json:"qat_learn_rate"`
	// QATScales: a fine-tune per mode (qatModes): "fixed", "learnable",
	// "learnable-all".
	QATScales []string `json:"qat_scales"`
}

// config is everything a run depends on; the same config gives the same
// results.json (timings aside).
type config struct {
	Task          taskConfig  `json:"task"`
	Model         modelConfig `json:"model"`
	Train         trainConfig `json:"train"`
	Activations   []string    `json:"activations"`
	Tiers         []string    `json:"tiers"`
	EvalSeqs      int         `json:"eval_sequences"`  // per cohort
	CalibSeqs     int         `json:"calib_sequences"` // in-distribution sequences for calibration
	GateThreshold float64     `json:"gate_threshold_points"`
	Seeds         []uint64    `json:"seeds"`
	Gate          bool        `json:"-"`
	Workers       int         `json:"-"`
	Out           string      `json:"-"`
	Plots         bool        `json:"-"`
	Progress      bool        `json:"-"`
}

func defaultConfig() config {
	return config{
		Task:  taskConfig{MinDigits: 3, TypicalDigits: 6, MaxDigits: 8},
		Model: modelConfig{DModel: 64, Heads: 4, DHidden: 128, Layers: 2},
		Train: trainConfig{Steps: 600, Batch: 32, LearnRate: 5e-3, DecayAt: 0.7, QATSteps: 100, QATRate: 1e-3,
			QATScales: []string{"fixed", "learnable"}},
		Activations:   []string{"gelu", "gelu_tanh", "silu", "relu"},
		Tiers:         studyio.TierNames(),
		EvalSeqs:      512,
		CalibSeqs:     128,
		GateThreshold: 1,
		Seeds:         []uint64{1},
		Workers:       runtime.GOMAXPROCS(0),
		Out:           filepath.Join("out", "transformer-ffn"),
		Plots:         true,
		Progress:      true,
	}
}

// parseFlags reads the command line into a config. Errors (and -h) come
// back as errors, for a usage message and a non-zero exit.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	cfg := defaultConfig()
	fs := flag.NewFlagSet("transformer-ffn", flag.ContinueOnError)
	fs.SetOutput(stderr)
	acts := fs.String("activations", strings.Join(cfg.Activations, ","), "comma-separated FFN activations ("+strings.Join(graph.Activations(), ", ")+")")
	tiers := fs.String("tiers", strings.Join(cfg.Tiers, ","), "comma-separated precision tiers ("+strings.Join(studyio.TierNames(), ", ")+"); fp32, the baseline, is always evaluated")
	fs.IntVar(&cfg.Train.Steps, "steps", cfg.Train.Steps, "training steps per activation")
	fs.IntVar(&cfg.Train.Batch, "batch", cfg.Train.Batch, "training sequences per step")
	fs.Float64Var(&cfg.Train.LearnRate, "lr", cfg.Train.LearnRate, "Adam learning rate (divided by 5 for the last 30% of the steps)")
	fs.IntVar(&cfg.Train.QATSteps, "qat-steps", cfg.Train.QATSteps, "quantization-aware fine-tuning steps under w4a8-static, with an fp32 control (0, or without that tier: skip)")
	qatScales := fs.String("qat-scales", strings.Join(cfg.Train.QATScales, ","), "comma-separated ways the fine-tune treats the scales, a fine-tune each: "+qatModeHelp())
	fs.Float64Var(&cfg.Train.QATRate, "qat-lr", cfg.Train.QATRate, "Adam learning rate of the quantization-aware fine-tune")
	fs.IntVar(&cfg.Task.MinDigits, "min-digits", cfg.Task.MinDigits, "shortest sequence")
	fs.IntVar(&cfg.Task.TypicalDigits, "typical-digits", cfg.Task.TypicalDigits, "longest in-distribution (and calibration) sequence")
	fs.IntVar(&cfg.Task.MaxDigits, "max-digits", cfg.Task.MaxDigits, "longest trained sequence, the stressed cohort's length")
	fs.IntVar(&cfg.Model.DModel, "dmodel", cfg.Model.DModel, "model width (a multiple of 32 for the int4 tiers)")
	fs.IntVar(&cfg.Model.Heads, "heads", cfg.Model.Heads, "attention heads")
	fs.IntVar(&cfg.Model.DHidden, "dhidden", cfg.Model.DHidden, "FFN hidden width (a multiple of 32 for the int4 tiers)")
	fs.IntVar(&cfg.Model.Layers, "layers", cfg.Model.Layers, "transformer blocks")
	fs.BoolVar(&cfg.Model.Gated, "gated", cfg.Model.Gated, "gated FFNs (GeGLU, SwiGLU, ReGLU)")
	fs.IntVar(&cfg.EvalSeqs, "eval-seqs", cfg.EvalSeqs, "evaluation sequences per cohort")
	fs.IntVar(&cfg.CalibSeqs, "calib-seqs", cfg.CalibSeqs, "in-distribution calibration sequences")
	fs.Float64Var(&cfg.GateThreshold, "gate-threshold", cfg.GateThreshold, "accuracy drop against fp32, in points, that the gate reports")
	fs.BoolVar(&cfg.Gate, "gate", cfg.Gate, "exit with status 3 if any drop exceeds -gate-threshold")
	seeds := fs.String("seeds", studyio.JoinSeeds(cfg.Seeds), "comma-separated seeds (weights and data): the study runs once per seed, and every figure is the mean ± standard error over them")
	fs.IntVar(&cfg.Workers, "workers", cfg.Workers, "activations studied in parallel")
	fs.StringVar(&cfg.Out, "out", cfg.Out, "output directory")
	fs.BoolVar(&cfg.Plots, "plots", cfg.Plots, "draw the PNG plots (results.json is always written)")
	fs.BoolVar(&cfg.Progress, "progress", cfg.Progress, "show a progress bar on stderr")
	if err := studyio.ParseFlags(fs, args); err != nil {
		return cfg, err
	}
	var err error
	if cfg.Seeds, err = studyio.ParseSeeds(*seeds); err != nil {
		return cfg, fmt.Errorf("-seeds: %w", err)
	}
	cfg.Activations = studyio.SplitList(*acts)
	cfg.Tiers = studyio.SplitList(*tiers)
	cfg.Train.QATScales = studyio.SplitList(*qatScales)
	// fp32 is the baseline of every drop: always there, and first.
	cfg.Tiers = append([]string{"fp32"}, slices.DeleteFunc(cfg.Tiers, func(t string) bool { return t == "fp32" })...)
	return cfg, cfg.validate()
}

func (c config) validate() error {
	t, m, tr := c.Task, c.Model, c.Train
	switch {
	case len(c.Activations) == 0:
		return errors.New("-activations: need at least one")
	case t.MinDigits < 1 || t.MinDigits > t.TypicalDigits || t.TypicalDigits >= t.MaxDigits || t.MaxDigits > 32:
		return fmt.Errorf("-min-digits %d, -typical-digits %d, -max-digits %d: need 1 ≤ min ≤ typical < max ≤ 32",
			t.MinDigits, t.TypicalDigits, t.MaxDigits)
	case m.DModel < 1 || m.Heads < 1 || m.DModel%m.Heads != 0:
		return fmt.Errorf("-dmodel %d and -heads %d: need positive sizes, heads dividing dmodel", m.DModel, m.Heads)
	case m.DHidden < 1 || m.Layers < 1 || m.Layers > 16 || m.DModel > 1024 || m.DHidden > 4096:
		return fmt.Errorf("-dhidden %d and -layers %d: need 1 ≤ dhidden ≤ 4096 (dmodel ≤ 1024), 1 ≤ layers ≤ 16", m.DHidden, m.Layers)
	case tr.Steps < 1 || tr.Batch < 1 || tr.Batch > 4096:
		return fmt.Errorf("-steps %d and -batch %d: need ≥ 1 (batch ≤ 4096)", tr.Steps, tr.Batch)
	case !(tr.LearnRate > 0) || tr.LearnRate > 1:
		return fmt.Errorf("-lr must be in (0, 1], got %g", tr.LearnRate)
	case tr.QATSteps < 0:
		return fmt.Errorf("-qat-steps must be ≥ 0, got %d", tr.QATSteps)
	case tr.QATSteps > 0 && (!(tr.QATRate > 0) || tr.QATRate > 1):
		return fmt.Errorf("-qat-lr must be in (0, 1], got %g", tr.QATRate)
	case tr.QATSteps > 0 && len(tr.QATScales) == 0:
		return errors.New("-qat-scales: need at least one (or -qat-steps 0)")
	case c.EvalSeqs < 1 || c.CalibSeqs < 1 || c.EvalSeqs > 1<<20 || c.CalibSeqs > 1<<20:
		return fmt.Errorf("-eval-seqs %d and -calib-seqs %d: need ≥ 1", c.EvalSeqs, c.CalibSeqs)
	case !(c.GateThreshold >= 0) || c.GateThreshold > 100:
		return fmt.Errorf("-gate-threshold must be in [0, 100] points, got %g", c.GateThreshold)
	case c.Workers < 1:
		return fmt.Errorf("-workers must be ≥ 1, got %d", c.Workers)
	case c.Out == "":
		return errors.New("-out must not be empty")
	}
	seenMode := map[string]bool{}
	for _, m := range c.Train.QATScales {
		if _, ok := qatModeNamed(m); !ok {
			return fmt.Errorf("-qat-scales: unknown mode %q, want %s", m, qatModeHelp())
		}
		if seenMode[m] {
			return fmt.Errorf("-qat-scales: %q given twice", m)
		}
		seenMode[m] = true
	}
	known := graph.Activations()
	seen := map[string]bool{}
	for _, a := range c.Activations {
		if !slices.Contains(known, a) {
			return fmt.Errorf("-activations: unknown activation %q, want one of %s", a, strings.Join(known, ", "))
		}
		if seen[a] {
			return fmt.Errorf("-activations: %q given twice", a)
		}
		seen[a] = true
	}
	int4 := false
	seenTier := map[string]bool{}
	for _, name := range c.Tiers {
		if _, err := graph.TierByName(name); err != nil {
			return fmt.Errorf("-tiers: %w", err)
		}
		if seenTier[name] {
			return fmt.Errorf("-tiers: %q given twice", name)
		}
		seenTier[name] = true
		int4 = int4 || strings.HasPrefix(name, "w4")
	}
	if int4 && (m.DModel%32 != 0 || m.DHidden%32 != 0) {
		return fmt.Errorf("-dmodel %d and -dhidden %d: the int4 tiers quantize weights in groups of 32, so both must be multiples of 32", m.DModel, m.DHidden)
	}
	return nil
}

func main() { studyio.Main("transformer-ffn", parseFlags, run) }

// qatModeHelp lists the -qat-scales modes.
func qatModeHelp() string {
	var parts []string
	for _, m := range qatModes {
		parts = append(parts, fmt.Sprintf("%s (%s)", m.Name, m.Desc))
	}
	return strings.Join(parts, "; ")
}
