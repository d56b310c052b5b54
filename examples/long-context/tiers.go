package main

import (
	"fmt"
	"strings"

	"github.com/actq/actq/graph"
	"github.com/actq/actq/quantize"
)

// The tiers fall into three families, each a ladder from cheapest to
// dearest, with fp32 at the top of every ladder. The routing table picks,
// per family and cohort, the cheapest tier that passes the gate.
const (
	familyModel = "model"     // weights and activations: graph.Tiers
	familyKV    = "kv"        // the key/value cache, on the fp32 model
	familyAttn  = "attention" // attention's arithmetic, on the fp32 model
)

// families lists the families in report order.
var families = []string{familyModel, familyKV, familyAttn}

// bits is a tier's storage: bits per weight, per activation at the
// quantized sites, per cached key and value element (scales not counted),
// and the attention arithmetic.
type bits struct {
	Weights, Acts, Keys, Values int
	Attention                   string
}

func (b bits) kv() float64 { return float64(b.Keys+b.Values) / 2 }

// tier is a precision setting of the study: a standard tier of graph.Tiers
// (the model family), a KV-cache quantization on the fp32 model, or an
// attention arithmetic on the fp32 model.
type tier struct {
	Name, Family, Desc string
	Bits               bits
	// Rank orders the family's ladder: lower is cheaper (fp32 is above
	// every family's tiers).
	Rank int

	std          graph.Tier // the model family's standard tier (fp32 too)
	keys, values *graph.Quant
	arith        graph.AttentionArithmetic
}

// plan returns the tier's plan (nil for none), for a model whose
// sequences have seqLen tokens.
func (t tier) plan(seqLen int) *graph.Plan {
	if t.Family == familyModel || t.Name == "fp32" {
		return t.std.Plan(seqLen)
	}
	if t.keys == nil && t.values == nil {
		return nil
	}
	return &graph.Plan{Name: t.Name, AttnKeys: t.keys, AttnValues: t.values}
}

// needsCalibration reports whether the tier has static sites.
func (t tier) needsCalibration() bool { return t.std.NeedsCalibration() }

// kvQuant returns the KV-cache quantization of keys (Kᵀ: batch, KVHeads,
// Dh, seq) or values (batch, KVHeads, seq, Dh) in format f. With group 0
// the scales are dynamic per row of the site's last axis: for keys one
// scale per channel over the whole sequence (KIVI's per-channel keys,
// requantized as the cache grows), for values one per token and head.
// With a group size, groups of that many tokens per channel (keys) or of
// channels per token (values). Integer formats are symmetric (as GGML's
// Q8_0 and Q4_0); FP8 scales its rows so that the largest magnitude lands
// on the format's largest value.
func kvQuant(f quantize.Format, group int) *graph.Quant {
	sp := quantize.Spec{Format: f, Granularity: quantize.PerRow, Symmetric: true}
	if group > 0 {
		sp.Granularity, sp.GroupSize = quantize.PerGroup, group
	}
	if f == quantize.FP8E4M3 {
		sp.DynamicFloatScale = true
	}
	return &graph.Quant{Spec: sp}
}

// studyTiers returns every tier of the study, in report order: fp32, the
// standard tiers, the KV-cache tiers, the attention arithmetics. dh is the
// model's head size (the int4 value groups span it).
func studyTiers(dh int) []tier {
	var out []tier
	modelRank := map[string]int{"w4a8-static": 0, "w4a8": 1, "w8a8": 2, "fp8-e4m3": 3, "bf16": 4, "fp16": 5, "fp32": 100}
	modelBits := map[string]bits{
		"fp32": {32, 32, 32, 32, "float32"}, "bf16": {16, 16, 32, 32, "float32"}, "fp16": {16, 16, 32, 32, "float32"},
		"fp8-e4m3": {8, 8, 32, 32, "float32"}, "w8a8": {8, 8, 32, 32, "float32"}, "w4a8": {4, 8, 32, 32, "float32"},
		"w4a8-static": {4, 8, 32, 32, "float32"},
	}
	for _, t := range graph.Tiers() {
		family := familyModel
		if t.Name == "fp32" {
			family = ""
		}
		out = append(out, tier{Name: t.Name, Family: family, Desc: t.Desc, Bits: modelBits[t.Name], Rank: modelRank[t.Name], std: t})
	}
	i8, i4, f8 := kvQuant(quantize.Int8, 0), kvQuant(quantize.Int4, 32), kvQuant(quantize.FP8E4M3, 0)
	i4v := kvQuant(quantize.Int4, min(32, dh))
	kv := func(name, desc string, rank int, k, v *graph.Quant, kb, vb int) tier {
		return tier{Name: name, Family: familyKV, Desc: desc, Bits: bits{32, 32, kb, vb, "float32"}, Rank: rank, keys: k, values: v}
	}
	out = append(out,
		kv("kv-int4", "keys int4 per channel in groups of 32 tokens, values int4 per token in groups of 32 channels", 0, i4, i4v, 4, 4),
		kv("kv-k8v4", "keys int8 per channel, values int4 per token in groups of 32 channels", 1, i8, i4v, 8, 4),
		kv("kv-int8", "keys int8 per channel (KIVI), values int8 per token", 2, i8, i8, 8, 8),
		kv("kv-fp8", "keys FP8 E4M3 per channel, values FP8 E4M3 per token (scaled)", 3, f8, f8, 8, 8),
		kv("k-int4", "keys only, as kv-int4", 4, i4, nil, 4, 32),
		kv("v-int4", "values only, as kv-int4", 5, nil, i4v, 32, 4),
		kv("k-int8", "keys only, as kv-int8", 6, i8, nil, 8, 32),
		kv("v-int8", "values only, as kv-int8", 7, nil, i8, 32, 8),
		kv("k-fp8", "keys only, as kv-fp8", 8, f8, nil, 8, 32),
		kv("v-fp8", "values only, as kv-fp8", 9, nil, f8, 32, 8),
	)
	attn := func(name, desc string, rank int, a graph.AttentionArithmetic) tier {
		return tier{Name: name, Family: familyAttn, Desc: desc, Bits: bits{32, 32, 32, 32, a.String()}, Rank: rank, arith: a}
	}
	out = append(out,
		attn("attn-s16-pv16-ln8", "fp16 scores, fp16 P·V accumulator with the max offset by ln 8", 0,
			graph.AttentionArithmetic{ScoresFP16: true, PV: graph.PVHalfOffset}),
		attn("attn-s16-pv16", "fp16 scores, fp16 P·V accumulator", 1, graph.AttentionArithmetic{ScoresFP16: true, PV: graph.PVHalf}),
		attn("attn-pv16-ln8", "fp16 P·V accumulator with the max offset by ln 8", 2, graph.AttentionArithmetic{PV: graph.PVHalfOffset}),
		attn("attn-pv16", "fp16 P·V accumulator", 3, graph.AttentionArithmetic{PV: graph.PVHalf}),
		attn("attn-s16", "fp16 scores, float32 softmax and P·V", 4, graph.AttentionArithmetic{ScoresFP16: true}),
	)
	return out
}

// tierNames returns the names of studyTiers, in order.
func tierNames() []string {
	var n []string
	for _, t := range studyTiers(32) {
		n = append(n, t.Name)
	}
	return n
}

// tierHelp describes the tiers for -h.
func tierHelp() string { return strings.Join(tierNames(), ", ") }

// tierByName returns the study tier called name for a model of head size
// dh.
func tierByName(name string, dh int) (tier, error) {
	for _, t := range studyTiers(dh) {
		if t.Name == name {
			return t, nil
		}
	}
	return tier{}, fmt.Errorf("unknown tier %q, want one of %s", name, tierHelp())
}

// inLadder reports whether t is on family f's ladder (fp32 is on all).
func (t tier) inLadder(f string) bool { return t.Family == f || t.Name == "fp32" }
