package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tinyConfig is a configuration small enough for the test suite that still
// reaches a length where naive fp16 softmax overflows.
func tinyConfig(t *testing.T) config {
	cfg := defaultConfig()
	cfg.Lengths = []int{128, 4096}
	cfg.Scores.Rows = 16
	cfg.Module.Lengths = []int{32}
	cfg.Module.Tiers = []string{"fp32", "fp16", "w8a8"}
	cfg.Out = t.TempDir()
	cfg.Progress = false
	return cfg
}

func TestStudyEndToEnd(t *testing.T) {
	cfg := tinyConfig(t)
	var stdout bytes.Buffer
	if err := run(cfg, &stdout, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"results.json", "results.md", "softmax_nan_rate.png", "softmax_kl.png", "softmax_mass_lost.png", "module_error.png"} {
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
		Softmax []struct {
			Method    string   `json:"method"`
			Length    int      `json:"length"`
			NaNRows   float64  `json:"nan_row_rate"`
			ZeroRow   float64  `json:"zero_row_rate"`
			KL        *float64 `json:"kl"`
			MaxAbsErr *float64 `json:"max_abs_error"`
			OutputErr *float64 `json:"output_rel_error"`
		} `json:"softmax"`
		Module []struct {
			Tier     string   `json:"tier"`
			Length   int      `json:"length"`
			RelError *float64 `json:"output_rel_error"`
			NaN      float64  `json:"nan_fraction"`
		} `json:"module"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatal(err)
	}
	if want := len(cfg.Lengths) * len(methods()); len(res.Softmax) != want {
		t.Fatalf("%d results, want %d", len(res.Softmax), want)
	}
	longest := cfg.Lengths[len(cfg.Lengths)-1]
	for _, r := range res.Softmax {
		switch r.Method {
		case "float64":
			if r.NaNRows != 0 || r.KL == nil || *r.KL > 1e-12 || *r.MaxAbsErr != 0 {
				t.Errorf("reference at %d is not exact: %+v", r.Length, r)
			}
		case "float32":
			// The stable float32 softmax never gives NaN and stays close.
			if r.NaNRows != 0 || r.ZeroRow != 0 || r.MaxAbsErr == nil || *r.MaxAbsErr > 1e-6 || *r.OutputErr > 1e-5 {
				t.Errorf("float32 at %d: %+v", r.Length, r)
			}
		case "fp16-naive":
			if r.Length == longest && r.NaNRows == 0 {
				t.Errorf("fp16-naive has no NaN rows at length %d: %+v", r.Length, r)
			}
		case "fp16-stable-acc32", "bf16-stable":
			if r.NaNRows != 0 {
				t.Errorf("%s has NaN rows at %d", r.Method, r.Length)
			}
		}
		if r.NaNRows < 0 || r.NaNRows > 1 || r.ZeroRow < 0 || r.ZeroRow > 1 {
			t.Errorf("rates out of [0, 1]: %+v", r)
		}
	}
	if len(res.Module) != len(cfg.Module.Tiers) {
		t.Fatalf("%d module results, want %d", len(res.Module), len(cfg.Module.Tiers))
	}
	for _, r := range res.Module {
		// float32 is within float32 rounding of float64; fp16 within a
		// fraction of a percent; int8 within a few percent; none NaN.
		limit := map[string]float64{"fp32": 1e-5, "fp16": 1e-2, "w8a8": 0.1}[r.Tier]
		if r.RelError == nil || *r.RelError > limit || *r.RelError <= 0 && r.Tier != "fp32" || r.NaN != 0 {
			t.Errorf("module %s at %d: relative error %v (limit %g), NaN %v", r.Tier, r.Length, r.RelError, limit, r.NaN)
		}
	}
	out := stdout.String()
	for _, want := range []string{"length 128", "length 4096", "NaN row rate by length", "fp16-naive", "wrote"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q", want)
		}
	}
}

// TestDeterministic runs the same configuration twice and compares the
// JSON results (timings aside).
func TestDeterministic(t *testing.T) {
	read := func() []byte {
		cfg := tinyConfig(t)
		cfg.Lengths = []int{256}
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
	if a, b := read(), read(); !bytes.Equal(a, b) {
		t.Error("two runs with one seed differ")
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-lengths", "12x"},
		{"-lengths", "1"},
		{"-rows", "0"},
		{"-sink-lo", "5", "-sink-hi", "1"},
		{"-logit-std", "-1"},
		{"-nosuchflag"},
		{"extra"},
		{"-out", ""},
		{"-tiers", "int3"},
		{"-tiers", "w4a8-static"},
		{"-heads", "5"},
		{"-module-lengths", "0"},
	} {
		var stderr bytes.Buffer
		_, err := parseFlags(args, &stderr)
		if err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	if _, err := parseFlags([]string{"-h"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: got %v, want flag.ErrHelp", err)
	}
	if _, err := parseFlags(nil, io.Discard); err != nil {
		t.Errorf("defaults: %v", err)
	}
}
