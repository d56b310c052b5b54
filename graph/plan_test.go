package graph

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/actq/actq/quantize"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// evalLogits evaluates w under plan on the batches and returns the
// logits of every batch, concatenated, the metrics and the site stats.
func evalLogits(t *testing.T, cfg Config, w Weights, plan *Plan, batches []Batch) ([]float64, Metrics, map[string]quantize.StatsSnapshot) {
	t.Helper()
	var opts []Option
	if plan != nil {
		opts = append(opts, WithPlan(plan))
	}
	ev, err := NewEvaluator(cfg, w, len(batches[0].Tokens)/cfg.SeqLen, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	var logits []float64
	var total Metrics
	for _, b := range batches {
		m, err := ev.Eval(b)
		if err != nil {
			t.Fatal(err)
		}
		total = total.Add(m)
		logits = append(logits, ev.Logits()...)
	}
	return logits, total, ev.Stats()
}

func heldOut(seed uint64, n int) []Batch {
	rng := rand.New(rand.NewPCG(seed, 99))
	out := make([]Batch, n)
	for i := range out {
		out[i] = reverseTask(rng, 16, 4)
	}
	return out
}

// TestPassthroughPlanIsIdentity checks that a plan with a Passthrough node
// at every site gives exactly the logits of no plan, and that every site
// counted every element of every run.
func TestPassthroughPlanIsIdentity(t *testing.T) {
	cfg := reverseConfig(4)
	w := trainedReverse(t)
	batches := heldOut(5, 2)
	want, wm, _ := evalLogits(t, cfg, w, nil, batches)
	ev, err := NewEvaluator(cfg, w, 16, WithPlan(PassthroughPlan()))
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	var got []float64
	var gm Metrics
	for _, b := range batches {
		m, err := ev.Eval(b)
		if err != nil {
			t.Fatal(err)
		}
		gm = gm.Add(m)
		got = append(got, ev.Logits()...)
	}
	if !slices.Equal(got, want) {
		t.Errorf("passthrough plan changed the logits")
	}
	if gm != wm {
		t.Errorf("metrics %v, want %v", gm, wm)
	}
	// 2 layers × (4 attention + 3 FFN weights + in + hidden + keys + values + scores + probs + out) + head
	if n := len(ev.Sites()); n != 2*14+1 {
		t.Errorf("%d sites, want 29", n)
	}
	for _, s := range ev.Sites() {
		st := s.Stats()
		runs := int64(len(batches))
		if s.Kind.isWeight() {
			runs = 1 // once, when the evaluator was built
		}
		if st.Runs != runs || st.Elements == 0 || st.Clipped != 0 || st.Noise != 0 || st.NaN != 0 {
			t.Errorf("%s: %v, want %d runs, elements > 0, nothing lost", s.Name, st, runs)
		}
	}
	// In training too: the same loss at every step.
	rng1, rng2 := rand.New(rand.NewPCG(7, 7)), rand.New(rand.NewPCG(7, 7))
	a, err := NewTrainer(cfg, w, TrainConfig{Batch: 8, LearnRate: 1e-3})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := NewTrainer(cfg, w, TrainConfig{Batch: 8, LearnRate: 1e-3}, WithPlan(PassthroughPlan()))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for i := range 3 {
		ma, err := a.Step(reverseTask(rng1, 8, 4))
		if err != nil {
			t.Fatal(err)
		}
		mb, err := b.Step(reverseTask(rng2, 8, 4))
		if err != nil {
			t.Fatal(err)
		}
		if ma != mb {
			t.Errorf("step %d: passthrough training %v, plain %v", i, mb, ma)
		}
	}
}

// int8Plan: int8 weights per output channel, int8 dynamic activations per
// tensor, symmetric.
func int8Plan() *Plan {
	act := &Quant{Spec: quantize.Spec{Format: quantize.Int8, Symmetric: true}}
	return &Plan{
		Name:        "int8",
		Weights:     &Quant{Spec: quantize.Spec{Format: quantize.Int8, Granularity: quantize.PerChannel, Axis: 0, Symmetric: true}},
		Head:        &Quant{Spec: quantize.Spec{Format: quantize.Int8, Granularity: quantize.PerChannel, Axis: 0, Symmetric: true}},
		FFNInput:    act,
		FFNHidden:   act,
		AttnScores:  act,
		AttnProbs:   &Quant{Spec: quantize.Spec{Format: quantize.UInt8}},
		BlockOutput: act,
	}
}

// TestInt8PlanBounded checks that int8 weights and activations change the
// logits of a trained model by a small amount, bounded by what its sites
// report: each site's relative noise power is 10^(−SQNR/10) (about 1% RMS
// for int8), and the logits' relative RMS change must stay within 2× the
// √Σ of them over the sites (a two-layer pre-norm model neither
// amplifies nor hides them much); the accuracy barely moves.
func TestInt8PlanBounded(t *testing.T) {
	cfg := reverseConfig(4)
	w := trainedReverse(t)
	batches := heldOut(6, 4)
	want, wm, _ := evalLogits(t, cfg, w, nil, batches)
	got, gm, stats := evalLogits(t, cfg, w, int8Plan(), batches)
	var num, den float64
	for i := range want {
		num += (got[i] - want[i]) * (got[i] - want[i])
		den += want[i] * want[i]
	}
	rel := math.Sqrt(num / den)
	noise := 0.0
	for name, s := range stats {
		if q := s.SQNR(); q < 25 {
			t.Errorf("site %s: SQNR %.1f dB, want ≥ 25 for int8", name, q)
		}
		noise += math.Pow(10, -s.SQNR()/10)
	}
	bound := 2 * math.Sqrt(noise)
	t.Logf("relative RMS change of the logits: %.3g (bound %.3g); fp32 %v; int8 %v", rel, bound, wm, gm)
	if rel == 0 || rel > bound {
		t.Errorf("relative RMS change %.3g, want in (0, %.3g]", rel, bound)
	}
	if math.Abs(gm.Accuracy()-wm.Accuracy()) > 0.02 {
		t.Errorf("accuracy moved from %.4f to %.4f", wm.Accuracy(), gm.Accuracy())
	}
}

// TestEvaluatorMatchesInGraphWeights checks that an Evaluator's weights,
// quantized once when it is built, give the same logits as a Model whose
// graph quantizes its weights at every run.
func TestEvaluatorMatchesInGraphWeights(t *testing.T) {
	cfg := reverseConfig(4)
	w := trainedReverse(t)
	plan := int8Plan()
	plan.Weights.Spec = quantize.Spec{Format: quantize.Int4, Granularity: quantize.PerGroup, GroupSize: 16, Symmetric: true}
	b := heldOut(8, 1)[0]
	want, _, _ := evalLogits(t, cfg, w, plan, []Batch{b})
	// The same model through a Trainer's program (weights quantized in the
	// graph), run forward only.
	if got, _, _ := programLogits(t, cfg, w, plan, b); !slices.Equal(got, want) {
		t.Error("in-graph weight quantization and the Evaluator's differ")
	}
}

// TestCalibrate checks that calibration gives fixed scales that cover the
// ranges observed: the symmetric MinMax scale is max|x|/qmax at every
// static site, and at the first static site (block0.ffn.in, with nothing
// quantized before it) the calibrated plan clips nothing on the calibration
// batches.
func TestCalibrate(t *testing.T) {
	cfg := reverseConfig(4)
	w := trainedReverse(t)
	batches := heldOut(9, 3)
	for _, f := range []quantize.Format{quantize.Int8, quantize.Int4} {
		static := &Quant{Spec: quantize.Spec{Format: f, Symmetric: true}, Static: true}
		plan := &Plan{Name: "static " + f.String(), FFNInput: static, FFNHidden: static,
			Weights: &Quant{Spec: quantize.Spec{Format: quantize.Int8, Granularity: quantize.PerChannel, Symmetric: true}}}
		cal, err := Calibrate(cfg, w, plan, batches)
		if err != nil {
			t.Fatal(err)
		}
		if plan.Sites != nil {
			t.Error("Calibrate changed its argument")
		}
		// The observed ranges, from passthrough sites on the same data.
		_, qmax := f.Range(false)
		for _, name := range []string{"block0.ffn.in", "block0.ffn.hidden", "block1.ffn.in", "block1.ffn.hidden"} {
			q := cal.Sites[name]
			if q == nil || q.Static || len(q.Spec.Scale) != 1 {
				t.Fatalf("%s: calibrated quant %+v", name, q)
			}
		}
		// Ranges: evaluate with passthrough at the FFN sites, weights as in the plan.
		obs := plan.Clone()
		obs.FFNInput, obs.FFNHidden = Passthrough(), Passthrough()
		ranges := observedAbsMax(t, cfg, w, obs, batches)
		for name, amax := range ranges {
			s := cal.Sites[name].Spec.Scale[0]
			if s*float64(qmax) < amax*(1-1e-6) {
				t.Errorf("%s %v: scale %g covers %g, observed max |x| %g", name, f, s, s*float64(qmax), amax)
			}
			t.Logf("%v %s: scale·qmax %.4g, observed max|x| %.4g", f, name, s*float64(qmax), amax)
		}
		_, _, stats := evalLogits(t, cfg, w, cal, batches)
		if st := stats["block0.ffn.in"]; st.Clipped != 0 || st.Runs != 3 {
			t.Errorf("%v block0.ffn.in on the calibration data: %v, want nothing clipped", f, st)
		}
	}
	if _, err := Calibrate(cfg, w, int8Plan(), batches); !errors.Is(err, ErrConfig) {
		t.Errorf("plan without static sites: %v", err)
	}
}

// observedAbsMax returns the largest |x| seen at each Passthrough
// activation site, from observers attached in calibration mode.
func observedAbsMax(t *testing.T, cfg Config, w Weights, plan *Plan, batches []Batch) map[string]float64 {
	t.Helper()
	p := plan.Clone()
	for _, q := range []*Quant{p.FFNInput, p.FFNHidden} {
		q.Static, q.Passthrough = true, false
		q.Spec = quantize.Spec{Format: quantize.Int8, Symmetric: true}
	}
	ev, err := newEvaluator("test", cfg, w, len(batches[0].Tokens)/cfg.SeqLen, []Option{WithPlan(p), withCalibration(), withPrequantizedWeights()})
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	if _, err := ev.EvalAll(batches); err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, s := range ev.Sites() {
		if s.observer == nil {
			continue
		}
		lo, hi := s.observer.Ranges()
		out[s.Name] = math.Max(-lo[0], hi[0])
	}
	return out
}

// TestCausalUnderQuantization checks that quantized causal attention stays
// causal with dynamic scales per query row (PerGroup with GroupSize = seq:
// one scale per batch, head and position): the output at position t does
// not change when a later position changes. The masked scores reach the
// site as −Inf, which the dynamic scales ignore; if they were quantized
// before the mask, a later key would move an earlier row's scale. (Per
// tensor, a scale mixes every position and sequence of the batch, so no
// per-tensor dynamic quantization of scores is causal.)
func TestCausalUnderQuantization(t *testing.T) {
	const batch, seq, d = 1, 5, 8
	perRow := quantize.Spec{Granularity: quantize.PerGroup, GroupSize: seq, Symmetric: true}
	for _, f := range []quantize.Format{quantize.Int8, quantize.Int4, quantize.FP8E4M3, quantize.FP16} {
		scores, probs := perRow, perRow
		scores.Format, probs.Format = f, quantize.UInt8
		if f.IsFloat() {
			scores.DynamicFloatScale = true
		}
		plan := &Plan{AttnScores: &Quant{Spec: scores}, AttnProbs: &Quant{Spec: probs}}
		run := func(x *tensor.Dense) []float64 {
			g := gorgonia.NewGraph()
			a, err := NewAttention(g, "attn", AttentionConfig{DModel: d, Heads: 2, Causal: true, Dtype: tensor.Float64}, WithSeed(5), WithPlan(plan))
			if err != nil {
				t.Fatal(err)
			}
			xn := gorgonia.NodeFromAny(g, x, gorgonia.WithName("x"))
			y, err := a.Forward(xn)
			if err != nil {
				t.Fatal(err)
			}
			var out gorgonia.Value
			gorgonia.Read(y, &out)
			m := gorgonia.NewTapeMachine(g)
			defer m.Close()
			if err := m.RunAll(); err != nil {
				t.Fatal(err)
			}
			return float64sOf(out)
		}
		x := initValue(1, "x", initNormal, tensor.Float64, batch, seq, d)
		base := run(x.Clone().(*tensor.Dense))
		// Make the last position's key large: its (masked) scores in the
		// earlier rows would grow and coarsen those rows' scales.
		x2 := x.Clone().(*tensor.Dense)
		for j := range d {
			x2.Float64s()[(seq-1)*d+j] *= 50
		}
		changed := run(x2)
		for i := range (seq - 1) * d {
			if changed[i] != base[i] {
				t.Fatalf("%v: output %d (position %d) changed with the last position", f, i, i/d)
			}
		}
		if slices.Equal(changed, base) {
			t.Fatalf("%v: the last position's output did not change", f)
		}
	}
}

// TestBlockQuantizedGradients runs a Block under an int8 plan on both
// machines (and the tape machine twice, see runGraph): the straight-through
// gradients must agree, which they would not if an op wrote in place into
// memory still in use.
func TestBlockQuantizedGradients(t *testing.T) {
	const batch, seq, d, h = 2, 4, 8, 16
	cfg := BlockConfig{DModel: d, Heads: 2, DHidden: h, Activation: "silu", Gated: true, Causal: true, Dtype: tensor.Float64}
	plan := int8Plan()
	plan.Name = "int8 with plain STE at the block output"
	plan.BlockOutput = &Quant{Spec: quantize.Spec{Format: quantize.Int8, Symmetric: true}, PlainSTE: true}
	x := initValue(3, "x", initNormal, tensor.Float64, batch, seq, d)
	dy := initValue(4, "dy", initNormal, tensor.Float64, batch, seq, d)
	results := map[machine]runResult{}
	for _, m := range []machine{tapeGrad, lispGrad} {
		res, err := runGraph(m, tensor.Float64, dy, func(g *gorgonia.ExprGraph) (map[string]*gorgonia.Node, *gorgonia.Node, error) {
			bl, err := NewBlock(g, "blk", cfg, WithSeed(8), WithPlan(plan))
			if err != nil {
				return nil, nil, err
			}
			xn := gorgonia.NodeFromAny(g, x.Clone().(*tensor.Dense), gorgonia.WithName("x"))
			y, err := bl.Forward(xn)
			wrt := map[string]*gorgonia.Node{"x": xn}
			for _, p := range bl.Params() {
				wrt[p.Name()] = p
			}
			return wrt, y, err
		})
		if err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		results[m] = res
	}
	for k, v := range results[tapeGrad] {
		w := results[lispGrad][k]
		for i := range v {
			if d := math.Abs(v[i] - w[i]); d > 1e-12*(1+math.Abs(w[i])) {
				t.Fatalf("%s[%d]: tape %g, lisp %g", k, i, v[i], w[i])
			}
		}
	}
}
