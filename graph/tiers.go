package graph

import (
	"fmt"
	"strings"

	"github.com/actq/actq/quantize"
)

// Tier is a named precision setting for a whole model, as a study compares
// them: a Plan for every site kind (nil for full precision).
type Tier struct {
	Name string
	Desc string
	// plan builds the tier's plan for sequences of seqLen tokens.
	plan func(seqLen int) *Plan
}

// Plan returns the tier's plan for sequences of seqLen tokens: nil for the
// full-precision tier. The standard tiers' plans fit any length (their
// per-row scales are quantize.PerRow), so seqLen only matters to tiers
// whose plans depend on it. A tier with Static sites (NeedsCalibration)
// must go through Calibrate before its scales are fixed.
func (t Tier) Plan(seqLen int) *Plan {
	if t.plan == nil {
		return nil
	}
	p := t.plan(seqLen)
	p.Name = t.Name
	return p
}

// NeedsCalibration reports whether the tier has static activation sites.
func (t Tier) NeedsCalibration() bool {
	p := t.Plan(1)
	if p == nil {
		return false
	}
	static := false
	eachSiteKind(func(_ SiteKind, k *siteKind) {
		if q := *k.quant(p); q != nil && q.Static && !k.weight {
			static = true
		}
	})
	return static
}

// Tiers returns the standard precision tiers, from full precision to
// aggressive 4-bit:
//
//	fp32        no quantization
//	bf16        every weight and activation site cast to bfloat16
//	fp16        every site cast to IEEE half precision
//	fp8-e4m3    every site cast to FP8 E4M3 with a dynamic scale (per output
//	            channel for weights, per token for activations, per query row
//	            for attention scores and probabilities)
//	w8a8        int8 weights per output channel; int8 dynamic activations per
//	            token, int8 scores and uint8 probabilities per query row
//	w4a8        int4 weights in groups of 32 along the input dimension (as
//	            GGML's Q4_0, symmetric), the LM head int8 per channel; int8
//	            activations as w8a8
//	w4a8-static w4a8 with the FFN hidden activations (after the activation
//	            function) quantized to int4 with one static scale, which
//	            Calibrate fixes from in-distribution batches
//
// Per-token and per-row scales keep each sequence's result independent of
// the rest of its batch and causal attention causal (see Plan). The model's
// DModel and DHidden must be multiples of 32 for the int4 tiers. No tier
// puts a node at the key/value cache sites (Plan.AttnKeys, AttnValues): a
// study of KV-cache quantization adds its own Quants there.
func Tiers() []Tier {
	perToken := func(f quantize.Format, sym bool) *Quant {
		return &Quant{Spec: quantize.Spec{Format: f, Granularity: quantize.PerChannel, Axis: 0, Symmetric: sym}}
	}
	perRow := func(f quantize.Format, sym bool) *Quant {
		return &Quant{Spec: quantize.Spec{Format: f, Granularity: quantize.PerRow, Symmetric: sym}}
	}
	cast := func(f quantize.Format) func(int) *Plan {
		return func(int) *Plan { return uniformPlan(&Quant{Spec: quantize.Spec{Format: f}}) }
	}
	fp8 := func(int) *Plan {
		tok := &Quant{Spec: quantize.Spec{Format: quantize.FP8E4M3, Granularity: quantize.PerChannel, Axis: 0, DynamicFloatScale: true}}
		row := &Quant{Spec: quantize.Spec{Format: quantize.FP8E4M3, Granularity: quantize.PerRow, DynamicFloatScale: true}}
		p := uniformPlan(tok)
		p.AttnScores, p.AttnProbs = row, row
		return p
	}
	int8Acts := func(p *Plan) *Plan {
		a := perToken(quantize.Int8, true)
		p.FFNInput, p.FFNHidden, p.BlockOutput = a, a, a
		p.AttnScores = perRow(quantize.Int8, true)
		p.AttnProbs = perRow(quantize.UInt8, false)
		return p
	}
	w8 := perToken(quantize.Int8, true) // (out, in) weights: Axis 0 is the output channel
	w4 := &Quant{Spec: quantize.Spec{Format: quantize.Int4, Granularity: quantize.PerGroup, GroupSize: 32, Symmetric: true}}
	return []Tier{
		{Name: "fp32", Desc: "no quantization (the baseline)"},
		{Name: "bf16", Desc: "weights and activations cast to bfloat16", plan: cast(quantize.BF16)},
		{Name: "fp16", Desc: "weights and activations cast to IEEE half", plan: cast(quantize.FP16)},
		{Name: "fp8-e4m3", Desc: "FP8 E4M3 with dynamic scales (per channel, token, query row)", plan: fp8},
		{Name: "w8a8", Desc: "int8 weights per channel, int8 dynamic activations", plan: func(int) *Plan {
			return int8Acts(&Plan{Weights: w8, Head: w8})
		}},
		{Name: "w4a8", Desc: "int4 weights in groups of 32, int8 dynamic activations", plan: func(int) *Plan {
			return int8Acts(&Plan{Weights: w4, Head: w8})
		}},
		{Name: "w4a8-static", Desc: "w4a8 with static int4 FFN hidden activations, calibrated in distribution", plan: func(int) *Plan {
			p := int8Acts(&Plan{Weights: w4, Head: w8})
			p.FFNHidden = &Quant{Spec: quantize.Spec{Format: quantize.Int4, Symmetric: true}, Static: true}
			return p
		}},
	}
}

// tierNames returns the names of Tiers, in order.
func tierNames() []string {
	var names []string
	for _, t := range Tiers() {
		names = append(names, t.Name)
	}
	return names
}

// TierByName returns the standard tier called name. It returns an error
// wrapping ErrConfig, listing the names, for an unknown one.
func TierByName(name string) (Tier, error) {
	for _, t := range Tiers() {
		if t.Name == name {
			return t, nil
		}
	}
	return Tier{}, fmt.Errorf("graph.TierByName: unknown tier %q, want one of %s: %w", name, strings.Join(tierNames(), ", "), ErrConfig)
}
