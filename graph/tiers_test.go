package graph

import (
	"errors"
	"testing"
)

// TestTiers evaluates the trained reversal model under each tier. Every
// tier must run; 16-bit floats must not change the accuracy.
func TestTiers(t *testing.T) {
	cfg := reverseConfig(4)
	w := trainedReverse(t)
	test := heldOut(21, 4)
	_, fp32, _ := evalLogits(t, cfg, w, nil, test)
	t.Logf("%-32s %v", "fp32", fp32)
	for _, tier := range Tiers()[1:] {
		p := tier.Plan(cfg.SeqLen)
		if tier.NeedsCalibration() {
			var err error
			if p, err = Calibrate(cfg, w, p, heldOut(22, 2)); err != nil {
				t.Fatalf("%s: %v", tier.Name, err)
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

func TestTierByName(t *testing.T) {
	for _, name := range tierNames() {
		tier, err := TierByName(name)
		if err != nil || tier.Name != name {
			t.Errorf("TierByName(%q) = %v, %v", name, tier.Name, err)
		}
	}
	if _, err := TierByName("int3"); !errors.Is(err, ErrConfig) {
		t.Errorf("unknown tier: got %v, want ErrConfig", err)
	}
	if p := Tiers()[0].Plan(8); p != nil {
		t.Errorf("fp32 tier has a plan: %+v", p)
	}
	for _, tier := range Tiers() {
		if got, want := tier.NeedsCalibration(), tier.Name == "w4a8-static"; got != want {
			t.Errorf("%s: NeedsCalibration = %v", tier.Name, got)
		}
	}
}
