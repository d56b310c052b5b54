// Command long-context studies whether low precision hurts long contexts
// more than short ones, on a trained model.
//
// It trains a small Llama-style model (rotary positions, SwiGLU, RMSNorm,
// no biases, multi-query attention) to copy a needle seen once far back
// (see the task in task.go), on a curriculum of sequences up to 512 tokens, once per
// seed (-seeds), and evaluates it with graph.Generator — chunked prefill,
// row-blocked attention, a KV cache — on cohorts of sequences from 128 to
// 4096 tokens (16384 with -full), under each tier: the standard tiers of
// graph.Tiers, KV-cache quantizations (int8, int4 and FP8 keys and values,
// together and apart), and fp16 attention arithmetic (fp16 scores, fp16
// P·V accumulation with and without llama.cpp's max offset).
//
// For every seed × tier × cohort it reports what llama.cpp's perplexity
// tool reports against the full-precision model, at the answer positions:
// the mean KL divergence with its standard error, its 99th percentile and
// maximum, the share of positions whose top token agrees, the RMS of Δp
// (the change in the probability of the right token), the accuracy and
// its drop against fp32 at the same length, the share of sequences with a
// non-finite logit, and what each kind of quantization site did (clipped,
// zeroed, SQNR). With several seeds every figure is the mean over the
// seeds ± its standard error. A routing table gives, per cohort and
// family of tiers, the cheapest tier that passes the gate (-max-drop,
// -max-kld, no NaN), and checks a routing policy (-policy); -gate exits
// with status 3 if the policy's tier fails at any cohort.
//
// A sweep can be split over machines: -shard i/n runs one contiguous slice
// of the seed × tier units, and -merge combines the slices' results.json
// into the output a single run gives.
//
// Output: the report on stdout; results.json, the same report in Markdown
// (results.md) and PNG plots under -out (default out/long-context); a
// progress bar on stderr. Bad flags exit with status 2, other errors with
// 1, a failed gate (with -gate) with 3.
//
// Usage:
//
//	go run ./examples/long-context [flags]
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/actq/actq/internal/studyio"
)

// modelConfig is the shape of the trained model.
type modelConfig struct {
	DModel    int     `json:"d_model"`
	Heads     int     `json:"heads"`
	KVHeads   int     `json:"kv_heads"`
	DHidden   int     `json:"d_hidden"`
	Layers    int     `json:"layers"`
	RoPETheta float64 `json:"rope_theta"`
}

// gateConfig is what a tier must do, against fp32 at the same length, to
// pass at a cohort.
type gateConfig struct {
	MaxDrop float64 `json:"max_drop_points"` // accuracy drop, in points (mean over the seeds)
	MaxKLD  float64 `json:"max_kld"`         // mean KLD (mean over the seeds)
}

// rule is one entry of a routing policy: Tier for cohorts of at most
// UpTo tokens (0: every longer cohort).
type rule struct {
	Tier string `json:"tier"`
	UpTo int    `json:"up_to,omitempty"`
}

// config is everything a run depends on: the same config gives the same
// results.json.
type config struct {
	Model     modelConfig `json:"model"`
	Stages    []stage     `json:"curriculum"`
	LearnRate float64     `json:"learn_rate"`
	Lengths   []int       `json:"lengths"`
	Seqs      int         `json:"sequences_per_cohort"`
	Needle    int         `json:"needle"`
	Gap       int         `json:"gap"` // filler tokens between the needle and its repeat; −1: all of it
	CalibSeqs int         `json:"calib_sequences"`
	Tiers     []string    `json:"tiers"`
	Seeds     []uint64    `json:"seeds"`
	Gate      gateConfig  `json:"gate"`
	Policy    []rule      `json:"policy"`

	Shard    studyio.Shard `json:"-"`
	Merge    []string      `json:"-"` // results.json files to merge instead of running
	Enforce  bool          `json:"-"` // -gate
	Workers  int           `json:"-"`
	Out      string        `json:"-"`
	Plots    bool          `json:"-"`
	Progress bool          `json:"-"`
}

// defaultLengths and fullLengths are the cohorts of the default run and
// of -full.
var (
	defaultLengths = []int{128, 256, 512, 1024, 2048, 4096}
	fullLengths    = []int{128, 256, 512, 1024, 2048, 4096, 8192, 16384}
)

func defaultConfig() config {
	return config{
		Model: modelConfig{DModel: 64, Heads: 2, KVHeads: 1, DHidden: 128, Layers: 2, RoPETheta: 1e8},
		Stages: []stage{{Window: 32, Needle: 8, Batch: 32, Steps: 400}, {Window: 128, Needle: 32, Batch: 16, Steps: 200},
			{Window: 512, Needle: 32, Batch: 4, Steps: 150}},
		LearnRate: 3e-3,
		Lengths:   defaultLengths,
		Seqs:      16,
		Needle:    32,
		Gap:       -1,
		CalibSeqs: 64,
		Tiers:     tierNames(),
		Seeds:     []uint64{1},
		Gate:      gateConfig{MaxDrop: 1, MaxKLD: 0.01},
		Policy:    []rule{{Tier: "w4a8"}},
		Workers:   runtime.GOMAXPROCS(0),
		Out:       filepath.Join("out", "long-context"),
		Plots:     true,
		Progress:  true,
	}
}

// parseFlags reads the command line into a config. Errors (and -h) come
// back as errors, for a usage message and a non-zero exit.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	cfg := defaultConfig()
	fs := flag.NewFlagSet("long-context", flag.ContinueOnError)
	fs.SetOutput(stderr)
	full := fs.Bool("full", false, "cohorts up to 16384 tokens ("+studyio.JoinInts(fullLengths)+") unless -lengths is given")
	lengths := fs.String("lengths", studyio.JoinInts(cfg.Lengths), "comma-separated cohort lengths in tokens")
	tiers := fs.String("tiers", strings.Join(cfg.Tiers, ","), "comma-separated tiers ("+tierHelp()+"); fp32, the baseline, is always evaluated")
	seeds := fs.String("seeds", studyio.JoinSeeds(cfg.Seeds), "comma-separated seeds: a model is trained and evaluated per seed, and figures are the mean ± standard error over them")
	stages := fs.String("curriculum", joinStages(cfg.Stages), "training stages window:needle:batch:steps, comma-separated")
	fs.Float64Var(&cfg.LearnRate, "lr", cfg.LearnRate, "Adam learning rate")
	fs.IntVar(&cfg.Seqs, "seqs", cfg.Seqs, "sequences per cohort")
	fs.IntVar(&cfg.Needle, "needle", cfg.Needle, "needle tokens in the evaluation sequences (needle−1 answers each)")
	fs.IntVar(&cfg.Gap, "gap", cfg.Gap, "filler tokens between the needle and its repeat in the evaluation sequences, the rest of the filler before the needle (−1: the needle right after BOS, all the filler between)")
	fs.IntVar(&cfg.CalibSeqs, "calib-seqs", cfg.CalibSeqs, "training-distribution sequences that calibrate w4a8-static")
	fs.IntVar(&cfg.Model.DModel, "dmodel", cfg.Model.DModel, "model width (a multiple of 32 for the int4 tiers)")
	fs.IntVar(&cfg.Model.Heads, "heads", cfg.Model.Heads, "attention heads")
	fs.IntVar(&cfg.Model.KVHeads, "kv-heads", cfg.Model.KVHeads, "key/value heads (dividing -heads)")
	fs.IntVar(&cfg.Model.DHidden, "dhidden", cfg.Model.DHidden, "SwiGLU hidden width (a multiple of 32 for the int4 tiers)")
	fs.IntVar(&cfg.Model.Layers, "layers", cfg.Model.Layers, "transformer blocks")
	fs.Float64Var(&cfg.Model.RoPETheta, "rope-theta", cfg.Model.RoPETheta, "rotary base θ")
	fs.Float64Var(&cfg.Gate.MaxDrop, "max-drop", cfg.Gate.MaxDrop, "gate: largest accuracy drop against fp32, in points")
	fs.Float64Var(&cfg.Gate.MaxKLD, "max-kld", cfg.Gate.MaxKLD, "gate: largest mean KL divergence from fp32")
	policy := fs.String("policy", joinPolicy(cfg.Policy), "routing policy that -gate checks: tier:upto,…,tier (each tier for cohorts up to upto tokens, the last for the rest)")
	fs.BoolVar(&cfg.Enforce, "gate", cfg.Enforce, "exit with status 3 if the policy's tier fails the gate at any cohort")
	shard := fs.String("shard", "", "run slice i/n of the seed × tier units (results.json then holds that slice, for -merge)")
	merge := fs.String("merge", "", "comma-separated results.json files of the shards of one sweep: merge them into -out instead of running")
	fs.IntVar(&cfg.Workers, "workers", cfg.Workers, "sequences evaluated in parallel")
	fs.StringVar(&cfg.Out, "out", cfg.Out, "output directory")
	fs.BoolVar(&cfg.Plots, "plots", cfg.Plots, "draw the PNG plots (results.json is always written)")
	fs.BoolVar(&cfg.Progress, "progress", cfg.Progress, "show a progress bar on stderr")
	if err := studyio.ParseFlags(fs, args); err != nil {
		return cfg, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	if *full && !set["lengths"] {
		cfg.Lengths = fullLengths
	} else if cfg.Lengths, err = studyio.ParseInts(*lengths); err != nil {
		return cfg, fmt.Errorf("-lengths: %w", err)
	}
	if cfg.Seeds, err = studyio.ParseSeeds(*seeds); err != nil {
		return cfg, fmt.Errorf("-seeds: %w", err)
	}
	if cfg.Stages, err = parseStages(*stages); err != nil {
		return cfg, fmt.Errorf("-curriculum: %w", err)
	}
	if cfg.Policy, err = parsePolicy(*policy); err != nil {
		return cfg, fmt.Errorf("-policy: %w", err)
	}
	if cfg.Shard, err = studyio.ParseShard(*shard); err != nil {
		return cfg, fmt.Errorf("-shard: %w", err)
	}
	cfg.Merge = studyio.SplitList(*merge)
	if len(cfg.Merge) > 0 && set["shard"] {
		return cfg, errors.New("-merge and -shard: a merge runs nothing, give one or the other")
	}
	// fp32 is the baseline of every comparison: always there, and first.
	cfg.Tiers = append([]string{"fp32"}, slices.DeleteFunc(studyio.SplitList(*tiers), func(t string) bool { return t == "fp32" })...)
	return cfg, cfg.validate()
}

func (c config) validate() error {
	m := c.Model
	switch {
	case m.DModel < 1 || m.Heads < 1 || m.DModel%m.Heads != 0 || m.DModel > 1024:
		return fmt.Errorf("-dmodel %d and -heads %d: need heads dividing dmodel, dmodel ≤ 1024", m.DModel, m.Heads)
	case (m.DModel/m.Heads)%2 != 0:
		return fmt.Errorf("-dmodel %d and -heads %d: rotary positions need an even head size", m.DModel, m.Heads)
	case m.KVHeads < 1 || m.Heads%m.KVHeads != 0:
		return fmt.Errorf("-kv-heads %d must divide -heads %d", m.KVHeads, m.Heads)
	case m.DHidden < 1 || m.DHidden > 4096 || m.Layers < 1 || m.Layers > 16:
		return fmt.Errorf("-dhidden %d and -layers %d: need 1 ≤ dhidden ≤ 4096, 1 ≤ layers ≤ 16", m.DHidden, m.Layers)
	case !(m.RoPETheta > 1) || m.RoPETheta > 1e12:
		return fmt.Errorf("-rope-theta must be in (1, 1e12], got %g", m.RoPETheta)
	case !(c.LearnRate > 0) || c.LearnRate > 1:
		return fmt.Errorf("-lr must be in (0, 1], got %g", c.LearnRate)
	case len(c.Lengths) == 0:
		return errors.New("-lengths: need at least one length")
	case c.Seqs < 1 || c.Seqs > 1<<16 || c.CalibSeqs < 1 || c.CalibSeqs > 1<<16:
		return fmt.Errorf("-seqs %d and -calib-seqs %d: need 1 to 65536", c.Seqs, c.CalibSeqs)
	case c.Needle < 2 || c.Needle > needleTokens:
		return fmt.Errorf("-needle %d: want 2 to %d tokens", c.Needle, needleTokens)
	case c.Gap < -1:
		return fmt.Errorf("-gap %d: want −1 (all the filler) or a number of tokens", c.Gap)
	case !(c.Gate.MaxDrop >= 0) || c.Gate.MaxDrop > 100 || !(c.Gate.MaxKLD >= 0) || c.Gate.MaxKLD > 1e6:
		return fmt.Errorf("-max-drop %g and -max-kld %g: need 0 ≤ drop ≤ 100 points, 0 ≤ KLD", c.Gate.MaxDrop, c.Gate.MaxKLD)
	case c.Workers < 1:
		return fmt.Errorf("-workers must be ≥ 1, got %d", c.Workers)
	case c.Out == "":
		return errors.New("-out must not be empty")
	}
	if len(c.Stages) == 0 {
		return errors.New("-curriculum: need at least one stage")
	}
	for _, s := range c.Stages {
		if err := s.check(); err != nil {
			return fmt.Errorf("-curriculum: %w", err)
		}
	}
	prev := 0
	for _, l := range c.Lengths {
		if l < 2*c.Needle+1+max(c.Gap, 0) || l > 1<<17 {
			return fmt.Errorf("-lengths: %d is outside [2·needle+1+gap = %d, %d]", l, 2*c.Needle+1+max(c.Gap, 0), 1<<17)
		}
		if l <= prev {
			return fmt.Errorf("-lengths: %d after %d, want increasing lengths", l, prev)
		}
		prev = l
	}
	dh := m.DModel / m.Heads
	int4 := false
	seen := map[string]bool{}
	for _, name := range c.Tiers {
		t, err := tierByName(name, dh)
		if err != nil {
			return fmt.Errorf("-tiers: %w", err)
		}
		if seen[name] {
			return fmt.Errorf("-tiers: %q given twice", name)
		}
		seen[name] = true
		int4 = int4 || t.Bits.Weights == 4
		if t.Bits.Values == 4 && dh > 32 && dh%32 != 0 {
			return fmt.Errorf("-tiers: %s quantizes values in groups of 32 channels, and the head size %d is not a multiple of 32", name, dh)
		}
	}
	if int4 && (m.DModel%32 != 0 || m.DHidden%32 != 0) {
		return fmt.Errorf("-dmodel %d and -dhidden %d: the int4 weight tiers quantize in groups of 32, so both must be multiples of 32", m.DModel, m.DHidden)
	}
	for i, r := range c.Policy {
		if _, err := tierByName(r.Tier, dh); err != nil {
			return fmt.Errorf("-policy: %w", err)
		}
		if !seen[r.Tier] && len(c.Merge) == 0 {
			return fmt.Errorf("-policy: tier %s is not among -tiers", r.Tier)
		}
		if i > 0 && r.UpTo != 0 && r.UpTo <= c.Policy[i-1].UpTo {
			return fmt.Errorf("-policy: %d after %d, want increasing lengths", r.UpTo, c.Policy[i-1].UpTo)
		}
	}
	return nil
}

// parseStages reads window:needle:batch:steps stages.
func parseStages(s string) ([]stage, error) {
	var out []stage
	for _, f := range studyio.SplitList(s) {
		parts := strings.Split(f, ":")
		if len(parts) != 4 {
			return nil, fmt.Errorf("stage %q: want window:needle:batch:steps", f)
		}
		var v [4]int
		for i, p := range parts {
			n, err := strconv.Atoi(p)
			if err != nil {
				return nil, fmt.Errorf("stage %q: %q is not an integer", f, p)
			}
			v[i] = n
		}
		out = append(out, stage{Window: v[0], Needle: v[1], Batch: v[2], Steps: v[3]})
	}
	return out, nil
}

func joinStages(st []stage) string {
	s := make([]string, len(st))
	for i, x := range st {
		s[i] = x.String()
	}
	return strings.Join(s, ",")
}

// parsePolicy reads tier:upto,…,tier; the last entry (alone: the only
// one) has no upper length.
func parsePolicy(s string) ([]rule, error) {
	entries := studyio.SplitList(s)
	if len(entries) == 0 {
		return nil, errors.New("need at least one tier")
	}
	var out []rule
	for i, e := range entries {
		name, upto, has := strings.Cut(e, ":")
		r := rule{Tier: strings.TrimSpace(name)}
		last := i == len(entries)-1
		switch {
		case has && last:
			return nil, fmt.Errorf("%q: the last tier covers every longer cohort, give it without :upto", e)
		case !has && !last:
			return nil, fmt.Errorf("%q: every tier but the last needs :upto", e)
		case has:
			n, err := strconv.Atoi(strings.TrimSpace(upto))
			if err != nil || n < 1 {
				return nil, fmt.Errorf("%q: %q is not a positive length", e, upto)
			}
			r.UpTo = n
		}
		out = append(out, r)
	}
	return out, nil
}

func joinPolicy(p []rule) string {
	s := make([]string, len(p))
	for i, r := range p {
		s[i] = r.Tier
		if r.UpTo > 0 {
			s[i] += ":" + strconv.Itoa(r.UpTo)
		}
	}
	return strings.Join(s, ",")
}

// policyTier returns the policy's tier for a cohort of n tokens.
func policyTier(p []rule, n int) string {
	for _, r := range p {
		if r.UpTo == 0 || n <= r.UpTo {
			return r.Tier
		}
	}
	return ""
}

func main() { studyio.Main("long-context", parseFlags, run) }

// run performs the study (or merges shards) and writes its outputs.
func run(cfg config, stdout, stderr io.Writer) error {
	start := time.Now()
	var res results
	var err error
	if len(cfg.Merge) > 0 {
		if res, err = mergeShards(cfg.Merge); err != nil {
			return fmt.Errorf("-merge: %w", err)
		}
	} else {
		s, err := newStudy(cfg)
		if err != nil {
			return err
		}
		us := s.units()
		lo, hi := cfg.Shard.Range(len(us))
		us = us[lo:hi]
		bar := studyio.NewProgress(stderr, cfg.Progress, s.work(us), "long-context")
		s.progress = func(n int, desc string) {
			bar.Describe(desc)
			bar.Add(n)
		}
		rows, trainings, err := s.runUnits(us)
		bar.Finish()
		if err != nil {
			return err
		}
		var shard *studyio.Shard
		if !cfg.Shard.Whole() {
			shard = &cfg.Shard
		}
		if res, err = finish(cfg, shard, trainings, rows); err != nil {
			return err
		}
	}
	if err := studyio.Publish(stdout, cfg.Out, res, func(r *studyio.Report) { printReport(r, res) }); err != nil {
		return err
	}
	files := []string{"results.json", "results.md"}
	if cfg.Plots && res.Shard == nil && len(res.Summary) > 0 {
		if err := plot(cfg.Out, res); err != nil {
			return err
		}
		files = append(files, "*.png")
	}
	studyio.Wrote(stdout, cfg.Out, time.Since(start).Seconds(), files...)
	if cfg.Enforce && len(res.Gate.Failures) > 0 {
		return fmt.Errorf("%w: %s", studyio.ErrGate, strings.Join(res.Gate.Failures, ", "))
	}
	return nil
}
