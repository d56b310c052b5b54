package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/actq/actq/internal/studyio"
)

// tinyConfig is a configuration small enough for the test suite: a
// one-layer model trained for a few steps (it learns little; the tests
// check the study's plumbing and arithmetic, not the model), two short
// cohorts, one tier of each kind, two seeds.
func tinyConfig(t *testing.T) config {
	cfg := defaultConfig()
	cfg.Model = modelConfig{DModel: 32, Heads: 2, KVHeads: 1, DHidden: 32, Layers: 1, RoPETheta: 1e4}
	cfg.Stages = []stage{{Window: 24, Needle: 4, Batch: 4, Steps: 6}}
	cfg.Lengths = []int{24, 40}
	cfg.Seqs = 3
	cfg.Needle = 5
	cfg.CalibSeqs = 4
	cfg.Tiers = []string{"fp32", "fp16", "w8a8", "w4a8-static", "kv-int8", "k-int4", "attn-pv16", "attn-s16-pv16-ln8"}
	cfg.Seeds = []uint64{1, 2}
	cfg.Policy = []rule{{Tier: "w8a8", UpTo: 24}, {Tier: "kv-int8"}}
	cfg.Out = t.TempDir()
	cfg.Progress = false
	return cfg
}

// runTo runs cfg into dir and returns its results.json.
func runTo(t *testing.T, cfg config, dir string) []byte {
	t.Helper()
	cfg.Out = dir
	if err := run(cfg, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestStudyEndToEnd(t *testing.T) {
	cfg := tinyConfig(t)
	var stdout bytes.Buffer
	if err := run(cfg, &stdout, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"results.json", "results.md", "kld_model.png", "kld_kv.png", "kld_attention.png",
		"same_top_model.png", "same_top_kv.png", "same_top_attention.png", "nan_rate.png"} {
		if st, err := os.Stat(filepath.Join(cfg.Out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s missing or empty: %v", f, err)
		}
	}
	raw, err := os.ReadFile(filepath.Join(cfg.Out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res results
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatal(err)
	}
	if res.Shard != nil || len(res.Training) != 2 || res.Training[0].Seed != 1 || res.Training[0].Params == 0 {
		t.Errorf("shard %v, training %+v", res.Shard, res.Training)
	}
	nSeeds, nTiers, nLengths := len(cfg.Seeds), len(cfg.Tiers), len(cfg.Lengths)
	if len(res.Rows) != nSeeds*nTiers*nLengths || len(res.Summary) != nTiers*nLengths || len(res.Routing) != nLengths {
		t.Fatalf("%d rows, %d summaries, %d routes", len(res.Rows), len(res.Summary), len(res.Routing))
	}
	tokens := cfg.Seqs * (cfg.Needle - 1)
	for i, r := range res.Rows {
		// Canonical order: seed, tier, length.
		want := [3]any{cfg.Seeds[i/(nTiers*nLengths)], cfg.Tiers[i/nLengths%nTiers], cfg.Lengths[i%nLengths]}
		if got := [3]any{r.Seed, r.Tier, r.Length}; got != want {
			t.Fatalf("row %d is %v, want %v", i, got, want)
		}
		if r.Tokens != tokens || r.Seqs != cfg.Seqs || r.Accuracy < 0 || r.Accuracy > 1 || r.Confidence <= 0 || r.Confidence > 1 {
			t.Errorf("row %d: %+v", i, r)
		}
		if r.Tier == "fp32" {
			if r.KLD != 0 || r.Drop != 0 || len(r.Sites) != 0 {
				t.Errorf("fp32 row %+v", r)
			}
			continue
		}
		// Every tier changes something, and the figures hang together.
		if !(r.KLD > 0) || r.KLDSE < 0 || r.KLDP99 < r.KLD && r.KLDP99 < r.KLDMax || r.KLDMax < r.KLDP99 || r.SameTop < 0 || r.SameTop > 1 ||
			r.RMSDp < 0 || r.NaNRate != 0 || math.IsNaN(float64(r.DropSE)) {
			t.Errorf("row %d: %+v", i, r)
		}
		kinds := map[string]bool{}
		for _, s := range r.Sites {
			kinds[s.Kind] = true
			if s.Elements == 0 || s.Clipped < 0 || s.Zeroed < 0 {
				t.Errorf("row %d site %+v", i, s)
			}
		}
		switch r.Tier {
		case "kv-int8":
			if !kinds["attn_keys"] || !kinds["attn_values"] || len(kinds) != 2 {
				t.Errorf("kv-int8 sites %v", kinds)
			}
		case "k-int4":
			if !kinds["attn_keys"] || len(kinds) != 1 {
				t.Errorf("k-int4 sites %v", kinds)
			}
		case "attn-pv16", "attn-s16-pv16-ln8":
			if len(kinds) != 0 {
				t.Errorf("%s sites %v", r.Tier, kinds)
			}
		case "w4a8-static":
			if !kinds["ffn_hidden"] || !kinds["weight"] || !kinds["attn_scores"] {
				t.Errorf("w4a8-static sites %v", kinds)
			}
		}
	}
	// Summaries are the mean over the two seeds, with their spread.
	byKey := map[string][]row{}
	for _, r := range res.Rows {
		k := r.Tier + "@" + string(rune(r.Length))
		byKey[k] = append(byKey[k], r)
	}
	for _, s := range res.Summary {
		rs := byKey[s.Tier+"@"+string(rune(s.Length))]
		mean := (float64(rs[0].KLD) + float64(rs[1].KLD)) / 2
		se := math.Abs(float64(rs[0].KLD)-float64(rs[1].KLD)) / 2 // s/√2 with s = |a−b|/√2
		if math.Abs(float64(s.KLD.Mean)-mean) > 1e-12*mean || math.Abs(float64(s.KLD.SE)-se) > 1e-9*mean+1e-300 || s.KLD.Seeds != 2 {
			t.Errorf("%s at %d: KLD %+v, want mean %g, SE %g", s.Tier, s.Length, s.KLD, mean, se)
		}
		if s.Tier == "fp32" && !s.Pass {
			t.Errorf("fp32 fails the gate at %d", s.Length)
		}
	}
	// The routing table picks, per family, the cheapest tier that passes.
	for _, rt := range res.Routing {
		for _, f := range families {
			best := rt.Cheapest[f]
			if best == "" {
				t.Errorf("%d tokens, %s: no tier passes, not even fp32", rt.Length, f)
				continue
			}
			for _, s := range res.Summary {
				tr, _ := tierByName(s.Tier, 16)
				bt, _ := tierByName(best, 16)
				if s.Length == rt.Length && tr.inLadder(f) && s.Pass && tr.Rank < bt.Rank {
					t.Errorf("%d tokens, %s: %s chosen, but the cheaper %s passes", rt.Length, f, best, s.Tier)
				}
			}
		}
		if want := policyTier(cfg.Policy, rt.Length); rt.Policy != want {
			t.Errorf("%d tokens: policy tier %s, want %s", rt.Length, rt.Policy, want)
		}
	}
	out := stdout.String()
	for _, want := range []string{"Mean KLD against fp32 by length", "Routing", "gate: ", "wrote"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q", want)
		}
	}
	md, _ := os.ReadFile(filepath.Join(cfg.Out, "results.md"))
	if !bytes.Contains(md, []byte("| tier ")) {
		t.Error("results.md has no table")
	}
}

// TestShardsMergeToTheRun: the shards of a sweep, merged, give the
// results.json and results.md of one run, byte for byte (and a run is
// deterministic: two runs give the same bytes). A merge refuses missing,
// repeated and foreign shards.
func TestShardsMergeToTheRun(t *testing.T) {
	cfg := tinyConfig(t)
	cfg.Tiers = []string{"fp32", "w8a8", "kv-int8", "attn-s16-pv16-ln8"}
	cfg.Policy = []rule{{Tier: "w8a8"}}
	cfg.Plots = false
	dir := t.TempDir()
	whole := runTo(t, cfg, filepath.Join(dir, "whole"))
	if again := runTo(t, cfg, filepath.Join(dir, "again")); !bytes.Equal(whole, again) {
		t.Fatal("two runs with the same config differ")
	}
	const n = 3 // 2 seeds × 4 tiers = 8 units: 3, 3 and 2
	var paths []string
	for i := 1; i <= n; i++ {
		c := cfg
		c.Shard = studyio.Shard{Index: i, Count: n}
		p := filepath.Join(dir, "shard", string(rune('0'+i)))
		raw := runTo(t, c, p)
		var r results
		if err := json.Unmarshal(raw, &r); err != nil || r.Shard == nil || *r.Shard != c.Shard {
			t.Fatalf("shard %d: %v, %v", i, err, r.Shard)
		}
		paths = append(paths, filepath.Join(p, "results.json"))
	}
	merged := cfg
	merged.Merge = paths
	got := runTo(t, merged, filepath.Join(dir, "merged"))
	if !bytes.Equal(got, whole) {
		t.Errorf("merged results.json differs from the run's:\n%s\nwant\n%s", got, whole)
	}
	mdA, _ := os.ReadFile(filepath.Join(dir, "whole", "results.md"))
	mdB, _ := os.ReadFile(filepath.Join(dir, "merged", "results.md"))
	if !bytes.Equal(mdA, mdB) {
		t.Error("merged results.md differs from the run's")
	}

	// A foreign shard: another sweep's (another seed list).
	other := cfg
	other.Seeds = []uint64{7}
	other.Shard = studyio.Shard{Index: 3, Count: n}
	foreign := filepath.Join(dir, "foreign")
	runTo(t, other, foreign)
	// A shard edited by hand: no cohort lengths.
	var edited map[string]any
	raw, err := os.ReadFile(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &edited); err != nil {
		t.Fatal(err)
	}
	edited["config"].(map[string]any)["lengths"] = []int{}
	noLengths := filepath.Join(dir, "no-lengths.json")
	if raw, err = json.Marshal(edited); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(noLengths, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		paths []string
		msg   string
	}{
		{"missing", paths[:2], "shard(s) 3/3 missing"},
		{"repeated", []string{paths[0], paths[1], paths[1]}, "are both shard 2/3"},
		{"foreign", []string{paths[0], paths[1], filepath.Join(foreign, "results.json")}, "a shard of another sweep"},
		{"not a shard", []string{filepath.Join(dir, "whole", "results.json")}, "not the results of a shard"},
		{"no file", []string{filepath.Join(dir, "nothing.json")}, "no such file"},
		{"bad config", []string{noLengths}, "-lengths: need at least one length"},
	} {
		if _, err := mergeShards(c.paths); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.msg)
		}
	}
}

func TestExitStatus(t *testing.T) {
	base := []string{"-dmodel", "32", "-heads", "2", "-kv-heads", "1", "-dhidden", "32", "-layers", "1",
		"-curriculum", "24:4:4:3", "-lengths", "24", "-seqs", "2", "-needle", "5", "-calib-seqs", "4",
		"-tiers", "fp32,w8a8", "-progress=false", "-plots=false", "-out"}
	for _, c := range []struct {
		name   string
		args   []string
		status int
		stderr []string // what stderr must say
	}{
		{"passes", []string{"-policy", "fp32", "-gate"}, 0, nil},
		// No tier passes a gate of KLD 0: w8a8 fails.
		{"gate fails", []string{"-policy", "w8a8", "-max-kld", "0", "-gate"}, studyio.ExitGate,
			[]string{"regression gate failed", "w8a8 at 24"}},
		{"gate fails, not enforced", []string{"-policy", "w8a8", "-max-kld", "0"}, 0, nil},
		// A bad flag prints the usage message, with every flag.
		{"bad flag", []string{"-nosuchflag"}, studyio.ExitUsage,
			[]string{"flag provided but not defined: -nosuchflag", "usage: go run ./examples/long-context [flags]", "-full", "-shard", "-merge", "-gate"}},
		{"bad value", []string{"-shard", "0/2"}, studyio.ExitUsage, []string{"-shard", "run with -h for the flags"}},
	} {
		dir := t.TempDir()
		args := append(slices.Clone(base), dir)
		args = append(args, c.args...)
		var stderr bytes.Buffer
		if got := studyio.Run("long-context", args, io.Discard, &stderr, parseFlags, run); got != c.status {
			t.Errorf("%s: status %d, want %d; stderr:\n%s", c.name, got, c.status, &stderr)
		}
		for _, want := range c.stderr {
			if !strings.Contains(stderr.String(), want) {
				t.Errorf("%s: stderr lacks %q:\n%s", c.name, want, &stderr)
			}
		}
		// A run that went through, gate failed or not, has written its results.
		_, err := os.Stat(filepath.Join(dir, "results.json"))
		if ran := c.status != studyio.ExitUsage; ran != (err == nil) {
			t.Errorf("%s: results.json: %v", c.name, err)
		}
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-lengths", "12x"},
		{"-lengths", "40"},          // shorter than 2·needle+1
		{"-lengths", "512,256"},     // not increasing
		{"-seeds", ""},              // no seed
		{"-seeds", "1,1"},           // twice
		{"-tiers", "int3"},          // unknown
		{"-tiers", "w8a8,w8a8"},     // twice
		{"-curriculum", "32:8:32"},  // three fields
		{"-curriculum", "16:8:4:5"}, // window < 2·needle+1
		{"-needle", "1"},
		{"-gap", "-2"},
		{"-gap", "100", "-lengths", "128"}, // shorter than 2·needle+1+gap
		{"-seqs", "0"},
		{"-heads", "3"},
		{"-kv-heads", "3"},
		{"-dmodel", "48", "-heads", "2"}, // int4 weights need multiples of 32
		{"-rope-theta", "0"},
		{"-max-drop", "-1"},
		{"-policy", ""},
		{"-policy", "w4a8:1024"},              // the last tier has no upper length
		{"-policy", "w4a8,w8a8"},              // the first needs one
		{"-policy", "w4a8:x,w8a8"},            // not a length
		{"-policy", "w8a8:512,w4a8:256,bf16"}, // decreasing
		{"-policy", "kv-int4", "-tiers", "w8a8"},
		{"-shard", "4/3"},
		{"-shard", "1/2", "-merge", "a.json"},
		{"-workers", "0"},
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
	cfg, err := parseFlags([]string{"-full", "-tiers", "w8a8", "-policy", "w8a8"}, io.Discard)
	if err != nil || !slices.Equal(cfg.Lengths, fullLengths) || !slices.Equal(cfg.Tiers, []string{"fp32", "w8a8"}) {
		t.Errorf("-full: %v, lengths %v, tiers %v", err, cfg.Lengths, cfg.Tiers)
	}
	if _, err := parseFlags(nil, io.Discard); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

// TestNeedleSequence: BOS, the needle, the filler and the repeat where the
// layout says, the answers the needle's next tokens, each looking back
// needle+gap tokens (the whole haystack with gap −1).
func TestNeedleSequence(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, c := range []struct{ n, m, gap, back int }{
		{100, 8, -1, 91}, {100, 8, 10, 18}, {100, 8, 0, 8}, {17, 8, -1, 8}, {100, 8, 500, 91},
	} {
		s := needleSequence(rng, c.n, c.m, c.gap)
		if len(s.Tokens) != c.n || s.Tokens[0] != bos || len(s.Positions) != c.m-1 || len(s.Targets) != c.m-1 {
			t.Fatalf("%+v: %d tokens, first %d, %d answers", c, len(s.Tokens), s.Tokens[0], len(s.Positions))
		}
		needle := s.Tokens[c.n-c.m:]
		seen := map[int]bool{}
		for i, tok := range needle {
			if tok < 0 || tok >= needleTokens || seen[tok] {
				t.Fatalf("%+v: needle %v", c, needle)
			}
			seen[tok] = true
			if first := c.n - c.m - c.back + i; s.Tokens[first] != tok {
				t.Errorf("%+v: needle token %d is not %d tokens back", c, i, c.back)
			}
		}
		fillers := 0
		for _, tok := range s.Tokens[1 : c.n-c.m] {
			if tok >= needleTokens && tok < bos {
				fillers++
			}
		}
		if fillers != c.n-2*c.m-1 {
			t.Errorf("%+v: %d filler tokens, want %d", c, fillers, c.n-2*c.m-1)
		}
		for k, p := range s.Positions {
			if p != c.n-c.m+k || s.Targets[k] != needle[k+1] {
				t.Errorf("%+v: answer %d at %d → %d", c, k, p, s.Targets[k])
			}
		}
	}
}
