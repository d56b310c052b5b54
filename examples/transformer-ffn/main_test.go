package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/actq/actq/internal/studyio"
)

// tinyConfig is a study small enough for the test suite that still learns
// its task (sorting 2–4 digits, 120 steps of a 2-layer model of width 32)
// well enough for TestStudyEndToEnd's checks, with 2 activations and 3
// tiers.
func tinyConfig(t *testing.T) config {
	cfg := defaultConfig()
	cfg.Task = taskConfig{MinDigits: 2, TypicalDigits: 3, MaxDigits: 4}
	cfg.Model = modelConfig{DModel: 32, Heads: 2, DHidden: 64, Layers: 2}
	cfg.Train.Steps, cfg.Train.QATSteps = 120, 5
	cfg.Activations = []string{"gelu", "relu"}
	cfg.Tiers = []string{"fp32", "fp16", "w4a8-static"}
	cfg.EvalSeqs, cfg.CalibSeqs = 64, 32
	cfg.Out = t.TempDir()
	cfg.Progress = false
	return cfg
}

// jsonRow is a row of results.json as a reader sees it.
type jsonRow struct {
	Activation string   `json:"activation"`
	Tier       string   `json:"tier"`
	Cohort     string   `json:"cohort"`
	Accuracy   *float64 `json:"token_accuracy"`
	SeqAcc     *float64 `json:"sequence_accuracy"`
	Loss       *float64 `json:"loss"`
	Drop       *float64 `json:"drop_points"`
	DropSE     *float64 `json:"drop_se_points"`
	Tokens     int      `json:"tokens"`
	Hidden     *struct {
		Clipped float64 `json:"clipped_fraction"`
		Zeroed  float64 `json:"zeroed_fraction"`
		Layers  []struct {
			Site       string   `json:"site"`
			RangeRatio *float64 `json:"range_ratio"`
		} `json:"layers"`
	} `json:"ffn_hidden"`
}

func TestStudyEndToEnd(t *testing.T) {
	cfg := tinyConfig(t)
	cfg.Gate = true
	var stdout bytes.Buffer
	runErr := run(cfg, &stdout, io.Discard)
	if runErr != nil && !errors.Is(runErr, studyio.ErrGate) {
		t.Fatal(runErr)
	}
	for _, f := range []string{"results.json", "results.md", "accuracy_drop_in-dist.png", "accuracy_drop_stressed.png",
		"ffn_clipped_in-dist.png", "ffn_clipped_stressed.png", "ffn_zeroed_in-dist.png", "ffn_zeroed_stressed.png",
		"ffn_range.png", "qat_in-dist.png", "qat_stressed.png"} {
		st, err := os.Stat(filepath.Join(cfg.Out, f))
		if err != nil || st.Size() == 0 {
			t.Errorf("%s missing or empty: %v", f, err)
		}
	}
	raw, err := os.ReadFile(filepath.Join(cfg.Out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Rows     []jsonRow `json:"results"`
		QAT      []jsonRow `json:"qat"`
		Training []struct {
			Activation string                        `json:"activation"`
			CalibMax   map[string]float64            `json:"calibrated_max_abs"`
			LearnedMax map[string]map[string]float64 `json:"qat_learned_max_abs"`
		} `json:"training"`
		Gate struct {
			Failures []struct{ Activation, Tier, Cohort string } `json:"failures"`
		} `json:"gate"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatal(err)
	}
	// -gate fails the run exactly when the gate names a failure.
	if got, want := errors.Is(runErr, studyio.ErrGate), len(res.Gate.Failures) > 0; got != want {
		t.Errorf("run returned %v with %d gate failures", runErr, len(res.Gate.Failures))
	}
	if want := len(cfg.Activations) * len(cfg.Tiers) * 2; len(res.Rows) != want {
		t.Fatalf("%d result rows, want %d", len(res.Rows), want)
	}
	// The control and a fine-tune per -qat-scales mode, on two cohorts.
	if want := len(cfg.Activations) * (1 + len(cfg.Train.QATScales)) * 2; len(res.QAT) != want {
		t.Errorf("%d QAT rows, want %d", len(res.QAT), want)
	}
	// The learnable fine-tune reports a learned range at every static site,
	// moved from the calibrated one but not far in a few steps.
	for _, tr := range res.Training {
		for _, site := range hiddenSites(cfg.Model.Layers) {
			c, l := tr.CalibMax[site], tr.LearnedMax["learnable"][site]
			if !(c > 0) || !(l > 0) || l == c || math.Abs(l/c-1) > 0.2 {
				t.Errorf("%s %s: calibrated range %g, learned %g", tr.Activation, site, c, l)
			}
		}
	}
	for _, r := range append(res.Rows, res.QAT...) {
		if r.Accuracy == nil || *r.Accuracy < 0 || *r.Accuracy > 1 || r.SeqAcc == nil || r.Loss == nil || !(*r.Loss >= 0) || r.Drop == nil || r.DropSE == nil || r.Tokens == 0 {
			t.Errorf("malformed row %+v", r)
			continue
		}
		switch {
		case r.Tier == "fp32" || r.Tier == controlTier:
			if r.Hidden != nil {
				t.Errorf("%s/%s/%s: FFN hidden statistics without quantization", r.Activation, r.Tier, r.Cohort)
			}
		case r.Hidden == nil || len(r.Hidden.Layers) != cfg.Model.Layers:
			t.Errorf("%s/%s/%s: FFN hidden statistics missing: %+v", r.Activation, r.Tier, r.Cohort, r.Hidden)
		case r.Tier == "w4a8-static" && (r.Hidden.Layers[0].RangeRatio == nil || !(*r.Hidden.Layers[0].RangeRatio > 0)):
			t.Errorf("%s/%s/%s: no range ratio at the static site", r.Activation, r.Tier, r.Cohort)
		}
		// The baseline is sound: the model has learned the task, and
		// 16-bit floats change next to nothing.
		if r.Tier == "fp32" && r.Cohort == "in-dist" && *r.Accuracy < 0.95 {
			t.Errorf("%s: fp32 in-distribution token accuracy %.3f, want ≥ 0.95", r.Activation, *r.Accuracy)
		}
		if r.Tier == "fp32" && *r.Drop != 0 {
			t.Errorf("%s/%s: fp32 drops %g points against itself", r.Activation, r.Cohort, *r.Drop)
		}
		if r.Tier == "fp16" && math.Abs(*r.Drop) > 0.5 {
			t.Errorf("%s/%s: fp16 drops %.2f points, want |drop| ≤ 0.5", r.Activation, r.Cohort, *r.Drop)
		}
		if r.Tier == "fp16" && (r.Hidden.Clipped != 0 || r.Hidden.Zeroed > 1e-3) {
			t.Errorf("%s/%s: fp16 clipped %g, zeroed %g of the FFN hidden values", r.Activation, r.Cohort, r.Hidden.Clipped, r.Hidden.Zeroed)
		}
	}
	out := stdout.String()
	for _, want := range []string{"in-dist: ", "stressed: ", "token-accuracy drop against fp32", "w4a8-static: FFN hidden static",
		"quantization-aware fine-tune", "QAT learnable", "FFN hidden int4 range (scale·qmax)", "\ngate: ", "wrote "} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q", want)
		}
	}
	for _, act := range cfg.Activations {
		for _, tier := range cfg.Tiers {
			if !strings.Contains(out, "\n"+padRight(act, len("activation"))+"  "+tier) {
				t.Errorf("stdout has no row for %s under %s", act, tier)
			}
		}
	}
	if t.Failed() {
		t.Logf("stdout:\n%s", out)
	}
}

func padRight(s string, n int) string { return s + strings.Repeat(" ", max(0, n-len(s))) }

func TestGate(t *testing.T) {
	drop := func(v float64) estimate { return estimate{Mean: number(v), SE: 0, Seeds: 2} }
	rows := []summary{
		{Activation: "gelu", Tier: "w8a8", Cohort: "in-dist", Drop: drop(0.5)},
		{Activation: "relu", Tier: "w4a8", Cohort: "stressed", Drop: drop(1.5)},
		{Activation: "silu", Tier: "bf16", Cohort: "in-dist", Drop: drop(math.NaN())},
		{Activation: "silu", Tier: "fp16", Cohort: "in-dist", Drop: drop(-3)},
	}
	g := gate(rows, 1)
	if len(g.Failures) != 2 || g.Failures[0].Activation != "relu" || g.Failures[1].Activation != "silu" {
		t.Errorf("failures %+v, want relu/w4a8/stressed and silu/bf16 (NaN)", g.Failures)
	}
	if s := g.String(); !strings.Contains(s, "FAIL") || !strings.Contains(s, "relu/w4a8/stressed") {
		t.Errorf("gate line %q", s)
	}
	if s := gate(rows[:1], 1).String(); !strings.Contains(s, "PASS") {
		t.Errorf("gate line %q", s)
	}
}

// TestSeeds: with two seeds every row comes twice, once per seed, and each
// summary is the mean of its two rows ± their standard error; the report
// says so.
func TestSeeds(t *testing.T) {
	cfg := tinyConfig(t)
	cfg.Seeds = []uint64{3, 4}
	cfg.Activations = []string{"relu"}
	cfg.Tiers = []string{"fp32", "w8a8"}
	cfg.Train.Steps, cfg.Train.QATSteps = 20, 2
	cfg.EvalSeqs, cfg.CalibSeqs = 32, 16
	cfg.Plots = false
	var stdout bytes.Buffer
	if err := run(cfg, &stdout, io.Discard); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(cfg.Out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res results
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) != 2*len(res.Summary) || len(res.Summary) != 4 || len(res.Training) != 2 {
		t.Fatalf("%d rows, %d summaries, %d trainings", len(res.Rows), len(res.Summary), len(res.Training))
	}
	for _, s := range res.Summary {
		a, b := findRow(res, 3, s.Activation, s.Tier, s.Cohort), findRow(res, 4, s.Activation, s.Tier, s.Cohort)
		mean := (float64(a.Accuracy) + float64(b.Accuracy)) / 2
		se := math.Abs(float64(a.Accuracy)-float64(b.Accuracy)) / 2
		if math.Abs(float64(s.Accuracy.Mean)-mean) > 1e-15 || math.Abs(float64(s.Accuracy.SE)-se) > 1e-15 || s.Accuracy.Seeds != 2 {
			t.Errorf("%s/%s: accuracy %+v from %v and %v", s.Tier, s.Cohort, s.Accuracy, a.Accuracy, b.Accuracy)
		}
	}
	if a, b := findRow(res, 3, "relu", "w8a8", "in-dist"), findRow(res, 4, "relu", "w8a8", "in-dist"); a.Accuracy == b.Accuracy && a.Loss == b.Loss {
		t.Error("the two seeds gave the same model")
	}
	if !strings.Contains(stdout.String(), "mean over the 2 seeds ± its standard error") {
		t.Error("the report does not say what ± is")
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-steps", "0"},
		{"-steps", "x"},
		{"-batch", "0"},
		{"-lr", "0"},
		{"-lr", "NaN"},
		{"-qat-steps", "-1"},
		{"-qat-scales", ""},
		{"-qat-scales", "learned"},
		{"-qat-scales", "fixed,fixed"},
		{"-activations", "tanh"},
		{"-activations", "gelu,gelu"},
		{"-activations", ""},
		{"-tiers", "int3"},
		{"-tiers", "w8a8,w8a8"},
		{"-dmodel", "48", "-heads", "4"}, // not a multiple of 32 with int4 tiers
		{"-dhidden", "100"},
		{"-heads", "5"},
		{"-min-digits", "0"},
		{"-typical-digits", "8"},
		{"-max-digits", "40"},
		{"-eval-seqs", "0"},
		{"-gate-threshold", "-1"},
		{"-workers", "0"},
		{"-seeds", ""},
		{"-seeds", "1,x"},
		{"-out", ""},
		{"-nosuchflag"},
		{"extra"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	if _, err := parseFlags([]string{"-h"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: got %v, want flag.ErrHelp", err)
	}
	cfg, err := parseFlags([]string{"-dmodel", "48", "-heads", "4", "-tiers", "bf16,w8a8"}, io.Discard)
	if err != nil {
		t.Errorf("a width of 48 without int4 tiers: %v", err)
	}
	if strings.Join(cfg.Tiers, ",") != "fp32,bf16,w8a8" {
		t.Errorf("tiers %v, want fp32 first", cfg.Tiers)
	}
	if _, err := parseFlags(nil, io.Discard); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

// TestMainExitCodes runs the command (this test binary, re-executed) with
// bad flags: exit status 2 and a usage hint, no panic.
func TestMainExitCodes(t *testing.T) {
	if os.Getenv("TRANSFORMER_FFN_MAIN") == "1" {
		os.Args = append([]string{"transformer-ffn"}, strings.Fields(os.Getenv("TRANSFORMER_FFN_ARGS"))...)
		main()
		return
	}
	for _, args := range []string{"-steps 0", "-tiers int3", "-nosuchflag"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMainExitCodes$")
		cmd.Env = append(os.Environ(), "TRANSFORMER_FFN_MAIN=1", "TRANSFORMER_FFN_ARGS="+args)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 {
			t.Errorf("%s: %v, want exit status 2", args, err)
		}
		if s := stderr.String(); strings.Contains(s, "panic") || !strings.Contains(s, "-h") {
			t.Errorf("%s: stderr %q", args, s)
		}
	}
}

// TestDeterministic runs one configuration twice, with 1 and with 2
// cores (GOMAXPROCS), and compares results.json (timings aside): a seed fixes
// the results, and the core count must not change them either, although the
// quantization statistics are summed in chunks per core (for tensors of 2¹⁷
// elements and more: here the stressed cohort's FFN hidden layer, 64
// sequences × 8 positions × 256).
func TestDeterministic(t *testing.T) {
	read := func(procs int) []byte {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		cfg := tinyConfig(t)
		cfg.Activations = []string{"silu"}
		cfg.Tiers = []string{"fp32", "bf16", "w4a8-static"}
		cfg.Model.DHidden = 256
		cfg.Train.Steps, cfg.Train.QATSteps = 10, 2
		cfg.EvalSeqs, cfg.CalibSeqs = 64, 16 // the stressed cohort: one batch of 64
		cfg.Plots = false
		if err := run(cfg, io.Discard, io.Discard); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(filepath.Join(cfg.Out, "results.json"))
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatal(err)
		}
		delete(v, "seconds")
		b, _ := json.Marshal(v)
		return b
	}
	if a, b := read(1), read(2); !bytes.Equal(a, b) {
		t.Error("two runs with one seed differ (1 and 2 cores)")
	}
}
