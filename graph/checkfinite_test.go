package graph

import (
	"math"
	"testing"

	"github.com/actq/actq/ops"
	"gorgonia.org/gorgonia"
)

// TestPlanCheckFinite poisons one weight with +Inf and checks that a plan
// with CheckFinite stops evaluation at the first site downstream of it,
// naming it, while the same plan on healthy weights changes nothing.
func TestPlanCheckFinite(t *testing.T) {
	cfg := reverseConfig(4)
	g := gorgonia.NewGraph()
	m, err := NewModel(g, cfg, WithSeed(3))
	if err != nil {
		t.Fatal(err)
	}
	w, err := m.Weights()
	if err != nil {
		t.Fatal(err)
	}
	batch := heldOut(7, 1)[0]
	plan := PassthroughPlan()
	plan.CheckFinite = true

	want, _, _ := evalLogits(t, cfg, w, nil, []Batch{batch})
	got, _, _ := evalLogits(t, cfg, w, plan, []Batch{batch})
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("CheckFinite changed logit %d: %g, want %g", i, got[i], want[i])
		}
	}

	poisoned := w.Clone()
	w2 := poisoned["block1.ffn.W2"].Float32s()
	w2[5] = float32(math.Inf(1))
	ev, err := NewEvaluator(cfg, poisoned, len(batch.Tokens)/cfg.SeqLen, WithPlan(plan))
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	_, err = ev.Eval(batch)
	nf, ok := ops.FindNonFinite(err)
	if !ok {
		t.Fatalf("Eval with an Inf weight: got %v, want a NonFiniteError", err)
	}
	// W2 feeds block1's output: the first site after it is block1.out.
	if nf.Label != "block1.out" || nf.Gradient || nf.PosInf+nf.NegInf+nf.NaN == 0 {
		t.Errorf("stopped at %q (gradient %v, %d NaN, %d +Inf, %d -Inf); want block1.out", nf.Label, nf.Gradient, nf.NaN, nf.PosInf, nf.NegInf)
	}
}
