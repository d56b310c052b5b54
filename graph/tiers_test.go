package graph

import (
	"testing"

	"github.com/actq/actq/quantize"
)

// tierPlans are the precision tiers of the planned study (issue 6), as
// plans: every site kind and format combination must build and run.
func tierPlans() []*Plan {
	all := func(name string, q *Quant) *Plan {
		return &Plan{Name: name, Weights: q, Head: q, FFNInput: q, FFNHidden: q, AttnScores: q, AttnProbs: q, BlockOutput: q}
	}
	i8act := &Quant{Spec: quantize.Spec{Format: quantize.Int8, Symmetric: true}}
	w8 := &Quant{Spec: quantize.Spec{Format: quantize.Int8, Granularity: quantize.PerChannel, Axis: 0, Symmetric: true}}
	w4g := &Quant{Spec: quantize.Spec{Format: quantize.Int4, Granularity: quantize.PerGroup, GroupSize: 32, Symmetric: true}}
	acts := func(p *Plan, q *Quant) *Plan {
		p.FFNInput, p.FFNHidden, p.AttnScores, p.BlockOutput = q, q, q, q
		p.AttnProbs = &Quant{Spec: quantize.Spec{Format: quantize.UInt8}}
		return p
	}
	return []*Plan{
		all("bf16", &Quant{Spec: quantize.Spec{Format: quantize.BF16}}),
		all("fp16", &Quant{Spec: quantize.Spec{Format: quantize.FP16}}),
		all("fp8-e4m3 scaled", &Quant{Spec: quantize.Spec{Format: quantize.FP8E4M3, DynamicFloatScale: true}}),
		acts(&Plan{Name: "w8a8", Weights: w8, Head: w8}, i8act),
		acts(&Plan{Name: "w4g32a8", Weights: w4g, Head: w8}, i8act),
		{Name: "w4g32 + static int4 FFN hidden", Weights: w4g, Head: w8, FFNInput: i8act,
			FFNHidden: &Quant{Spec: quantize.Spec{Format: quantize.Int4, Symmetric: true}, Static: true}},
	}
}

// TestTiers evaluates the trained reversal model under each tier. Every
// tier must run; 16-bit floats must not change the accuracy.
func TestTiers(t *testing.T) {
	cfg := reverseConfig(4)
	w := trainedReverse(t)
	test := heldOut(21, 4)
	_, fp32, _ := evalLogits(t, cfg, w, nil, test)
	t.Logf("%-32s %v", "fp32", fp32)
	for _, p := range tierPlans() {
		if p.FFNHidden != nil && p.FFNHidden.Static {
			var err error
			if p, err = Calibrate(cfg, w, p, heldOut(22, 2)); err != nil {
				t.Fatalf("%s: %v", p.Name, err)
			}
		}
		_, m, stats := evalLogits(t, cfg, w, p, test)
		worst, where := 1e9, ""
		for name, s := range stats {
			if q := s.SQNR(); q < worst {
				worst, where = q, name
			}
		}
		t.Logf("%-32s %v; lowest SQNR %.1f dB at %s", p.Name, m, worst, where)
		if (p.Name == "bf16" || p.Name == "fp16") && m.Correct != fp32.Correct {
			t.Errorf("%s: %d tokens correct, fp32 %d", p.Name, m.Correct, fp32.Correct)
		}
	}
}
