package graph

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/actq/actq/internal/errtest"
	"github.com/actq/actq/ops"
	"github.com/actq/actq/quantize"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// calibratedPlan returns int8Plan with static int4 FFN hidden sites,
// calibrated on held-out batches of the trained reversal model.
func calibratedPlan(t *testing.T) *Plan {
	t.Helper()
	p := int8Plan()
	p.FFNHidden = &Quant{Spec: quantize.Spec{Format: quantize.Int4, Symmetric: true}, Static: true}
	cal, err := Calibrate(reverseConfig(4), trainedReverse(t), p, heldOut(9, 2))
	if err != nil {
		t.Fatal(err)
	}
	return cal
}

// learnable returns a copy of p whose named sites (every Sites entry when
// names is empty) and, if head, LM head learn their scales with cfg.
func learnable(p *Plan, cfg quantize.LSQConfig, head bool, names ...string) *Plan {
	c := p.Clone()
	for name, q := range c.Sites {
		if len(names) == 0 || slices.Contains(names, name) {
			q.Learnable = &cfg
		}
	}
	if head {
		c.Head.Learnable = &cfg
	}
	return c
}

// programLogits runs the model with weights w under plan forward once on b
// through a Trainer's program (weights quantized in the graph) and returns
// the logits, the loss and the sites.
func programLogits(t *testing.T, cfg Config, w Weights, plan *Plan, b Batch) ([]float64, float64, []*Site) {
	t.Helper()
	p, err := newProgram("test", cfg, len(b.Tokens)/cfg.SeqLen, []Option{WithWeights(w), WithPlan(plan)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.load("test", b); err != nil {
		t.Fatal(err)
	}
	m := gorgonia.NewTapeMachine(p.g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	return float64sOf(p.logits), scalar(p.lossOut), p.model.Sites()
}

func maxAbsDiff(a, b []float64) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(a[i]-b[i]))
	}
	return d
}

// TestLearnableStartsAsFixed: a learnable site at its starting scales
// computes what the fixed (or, for weights, dynamic) site computes, in the
// training graph and in an Evaluator, and reports those scales.
func TestLearnableStartsAsFixed(t *testing.T) {
	cfg := reverseConfig(4)
	w := trainedReverse(t)
	fixed := calibratedPlan(t)
	b := heldOut(11, 1)[0]
	wantProg, _, _ := programLogits(t, cfg, w, fixed, b)
	wantEval, _, _ := evalLogits(t, cfg, w, fixed, []Batch{b})
	for _, c := range []struct {
		name string
		plan *Plan
		tol  float64 // on the logits: 0 for a scale held as it is; log s rounds s in float32
	}{
		{"hidden sites", learnable(fixed, quantize.LSQConfig{}, false), 0},
		{"hidden sites, log scale", learnable(fixed, quantize.LSQConfig{LogScale: true}, false), 1e-4},
		{"hidden sites and head (dynamic per-channel start)", learnable(fixed, quantize.LSQConfig{}, true), 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, _, sites := programLogits(t, cfg, w, c.plan, b)
			if d := maxAbsDiff(got, wantProg); d > c.tol {
				t.Errorf("training graph: logits differ from the fixed plan's by %g, want ≤ %g", d, c.tol)
			}
			gotEval, _, _ := evalLogits(t, cfg, w, c.plan, []Batch{b})
			if d := maxAbsDiff(gotEval, wantEval); d > c.tol {
				t.Errorf("Evaluator: logits differ from the fixed plan's by %g, want ≤ %g", d, c.tol)
			}
			n := 0
			for _, s := range sites {
				if s.ScaleNode() == nil {
					continue
				}
				n++
				got, want := s.Scale(), s.Quant.Spec.Scale
				if len(got) != len(want) || maxAbsDiff(got, want) > 1e-7*largestAbs(want) {
					t.Errorf("%s: Scale() %v, starting scale %v", s.Name, head(got), head(want))
				}
				if fs := fixed.Sites[s.Name]; fs != nil && !slices.Equal(want, fs.Spec.Scale) {
					t.Errorf("%s: starts from %v, calibrated %v", s.Name, want, fs.Spec.Scale)
				}
			}
			if want := 2 + boolInt(c.plan.Head.Learnable != nil); n != want {
				t.Errorf("%d learnable sites, want %d", n, want)
			}
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func largestAbs(v []float64) float64 {
	m := 0.0
	for _, x := range v {
		m = math.Max(m, math.Abs(x))
	}
	return m
}

func head(v []float64) []float64 { return v[:min(len(v), 4)] }

// TestLearnableScaleGradient checks ∂cost/∂(scale parameter) through a
// whole graph: a learnable site, then an FFN and a causal Block, in
// float64, against central differences of the same graph with the site
// replaced by LSQ's surrogate y = M⊙x + s·C (M the in-range mask, C =
// round(x/s) − x/s inside the range and qmin−z or qmax−z where x clips,
// frozen at the point: the rounding's straight-through estimate), which
// equals the site's output at s. The surrogate graph's cost at s must
// equal the real graph's.
func TestLearnableScaleGradient(t *testing.T) {
	const batch, seq, d, h = 2, 4, 8, 16
	x := initValue(3, "x", initNormal, tensor.Float64, batch*seq, d)
	for i, v := range x.Float64s() {
		x.Float64s()[i] = 0.5 * v
	}
	for _, c := range []struct {
		name  string
		spec  quantize.Spec
		scale []float64
		cfg   quantize.LSQConfig
	}{
		{"int4 per tensor", quantize.Spec{Format: quantize.Int4, Symmetric: true}, []float64{0.1}, quantize.LSQConfig{}},
		{"int4 per tensor, log scale, g=0.3", quantize.Spec{Format: quantize.Int4, Symmetric: true}, []float64{0.1}, quantize.LSQConfig{LogScale: true, GradFactor: 0.3}},
		{"uint8 per channel, affine, log scale", quantize.Spec{Format: quantize.UInt8, Granularity: quantize.PerChannel, Axis: 1,
			ZeroPoint: []int{128, 100, 140, 128, 0, 128, 120, 255}}, []float64{0.004, 0.01, 0.006, 0.008, 0.005, 0.007, 0.003, 0.009}, quantize.LSQConfig{LogScale: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec := c.spec
			spec.Scale = c.scale
			plan := &Plan{FFNInput: &Quant{Spec: spec, Learnable: &c.cfg}}
			theta := slices.Clone(c.scale)
			if c.cfg.LogScale {
				for i := range theta {
					theta[i] = math.Log(theta[i])
				}
			}
			g := gorgonia.NewGraph()
			b, err := newBuilder("test", g, tensor.Float64, []Option{WithPlan(plan)})
			if err != nil {
				t.Fatal(err)
			}
			xn := gorgonia.NodeFromAny(g, x.Clone().(*tensor.Dense), gorgonia.WithName("x"))
			y, err := b.site("probe.in", SiteFFNInput, xn)
			if err != nil {
				t.Fatal(err)
			}
			cost, err := downstream(g, y, batch, seq, d, h)
			if err != nil {
				t.Fatal(err)
			}
			sn := b.q.sites[0].ScaleNode()
			grads, err := gorgonia.Grad(cost, sn)
			if err != nil {
				t.Fatal(err)
			}
			m := gorgonia.NewTapeMachine(g)
			defer m.Close()
			if err := m.RunAll(); err != nil {
				t.Fatal(err)
			}
			analytic := float64sOf(grads[0].Value())
			real := scalar(cost.Value())
			if !slices.Equal(sn.Value().Data().([]float64), theta) {
				t.Fatalf("scale parameter %v, want %v", sn.Value().Data(), theta)
			}
			sur := surrogateCost(t, x, spec, c.cfg, theta, batch, seq, d, h)
			if got := sur(theta); math.Abs(got-real) > 1e-12*math.Abs(real) {
				t.Fatalf("surrogate cost %v at the point, real %v", got, real)
			}
			const eps = 1e-5
			for i := range theta {
				tp, tm := slices.Clone(theta), slices.Clone(theta)
				tp[i] += eps
				tm[i] -= eps
				g := c.cfg.GradFactor
				if g == 0 {
					g = 1
				}
				fd := g * (sur(tp) - sur(tm)) / (2 * eps)
				if e := math.Abs(analytic[i] - fd); e > 1e-9+1e-6*math.Abs(fd) || fd == 0 {
					t.Errorf("∂cost/∂θ[%d] = %.10g, finite difference %.10g", i, analytic[i], fd)
				}
			}
			t.Logf("∂cost/∂θ = %.6g", head(analytic))
		})
	}
}

// downstream adds the rest of the test graph after the site: an FFN on y
// (batch·seq, d), a causal Block on its output reshaped to (batch, seq,
// d), and cost = Σ w⊙out for a fixed non-uniform w.
func downstream(g *gorgonia.ExprGraph, y *gorgonia.Node, batch, seq, d, h int) (*gorgonia.Node, error) {
	f, err := NewFFN(g, "ffn", FFNConfig{DModel: d, DHidden: h, Activation: "gelu", Dtype: tensor.Float64}, WithSeed(8))
	if err != nil {
		return nil, err
	}
	if y, err = f.Forward(y); err != nil {
		return nil, err
	}
	if y, err = gorgonia.Reshape(y, tensor.Shape{batch, seq, d}); err != nil {
		return nil, err
	}
	bl, err := NewBlock(g, "blk", BlockConfig{DModel: d, Heads: 2, DHidden: h, Activation: "silu", Causal: true, Dtype: tensor.Float64}, WithSeed(9))
	if err != nil {
		return nil, err
	}
	if y, err = bl.Forward(y); err != nil {
		return nil, err
	}
	wd := make([]float64, batch*seq*d)
	for k := range wd {
		wd[k] = 0.5 + float64((k*7)%11)/5
	}
	w := gorgonia.NewConstant(tensor.New(tensor.WithShape(batch, seq, d), tensor.WithBacking(wd)), gorgonia.WithName("w"))
	if y, err = gorgonia.HadamardProd(y, w); err != nil {
		return nil, err
	}
	return gorgonia.Sum(y)
}

// surrogateCost returns the cost of the downstream graph on LSQ's
// surrogate of the site (see TestLearnableScaleGradient), frozen at the
// scale parameters theta0, as a function of the scale parameters. spec is
// PerTensor or PerChannel along the last axis of x (n, d).
func surrogateCost(t *testing.T, x *tensor.Dense, spec quantize.Spec, cfg quantize.LSQConfig, theta0 []float64, batch, seq, d, h int) func([]float64) float64 {
	xs := x.Float64s()
	k := len(theta0)
	qmin, qmax := spec.Format.Range(spec.NarrowRange)
	kept := make([]float64, len(xs)) // M⊙x
	coef := make([][]float64, k)     // C, split by scale
	for j := range coef {
		coef[j] = make([]float64, len(xs))
	}
	for i, v := range xs {
		j := (i % d) % k
		s := theta0[j]
		if cfg.LogScale {
			s = math.Exp(s)
		}
		z := 0
		if spec.ZeroPoint != nil {
			z = spec.ZeroPoint[j]
		}
		r := math.RoundToEven(v * (1 / s))
		switch q := int(r) + z; {
		case q < qmin:
			coef[j][i] = float64(qmin - z)
		case q > qmax:
			coef[j][i] = float64(qmax - z)
		default:
			kept[i], coef[j][i] = v, r-v/s
		}
	}
	g := gorgonia.NewGraph()
	y := gorgonia.NewConstant(tensor.New(tensor.WithShape(batch*seq, d), tensor.WithBacking(kept)), gorgonia.WithName("kept"))
	params := make([]*gorgonia.Node, k)
	for j := range k {
		params[j] = gorgonia.NewScalar(g, tensor.Float64, gorgonia.WithName(fmt.Sprintf("theta%d", j)), gorgonia.WithValue(theta0[j]))
		s := params[j]
		var err error
		if cfg.LogScale {
			if s, err = gorgonia.Exp(s); err != nil {
				t.Fatal(err)
			}
		}
		cj := gorgonia.NewConstant(tensor.New(tensor.WithShape(batch*seq, d), tensor.WithBacking(coef[j])), gorgonia.WithName(fmt.Sprintf("C%d", j)))
		term, err := gorgonia.Mul(cj, s)
		if err != nil {
			t.Fatal(err)
		}
		if y, err = gorgonia.Add(y, term); err != nil {
			t.Fatal(err)
		}
	}
	cost, err := downstream(g, y, batch, seq, d, h)
	if err != nil {
		t.Fatal(err)
	}
	m := gorgonia.NewTapeMachine(g)
	t.Cleanup(func() { m.Close() })
	return func(theta []float64) float64 {
		for j, p := range params {
			if err := gorgonia.Let(p, theta[j]); err != nil {
				t.Fatal(err)
			}
		}
		m.Reset()
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		return scalar(cost.Value())
	}
}

// TestLearnableTraining trains the reversal model under the calibrated
// int4 plan with learnable hidden scales (and, in one case, a learnable
// head): the scales move, the held-out loss falls, the Trainer's Weights
// carry the scales, and an Evaluator built from them reproduces the
// training graph's logits and reports the learned scales, while one built
// from weights without them starts again from the calibrated scales.
func TestLearnableTraining(t *testing.T) {
	cfg := reverseConfig(4)
	w0 := trainedReverse(t)
	fixed := calibratedPlan(t)
	held := heldOut(12, 2)
	_, before, _ := evalLogits(t, cfg, w0, fixed, held)
	for _, c := range []struct {
		name string
		plan *Plan
	}{
		{"hidden", learnable(fixed, quantize.LSQConfig{}, false)},
		{"hidden, log scale, PlainSTE", learnable(fixed, quantize.LSQConfig{LogScale: true}, false)},
		{"hidden and head", learnable(fixed, quantize.LSQConfig{LogScale: true}, true)},
	} {
		t.Run(c.name, func(t *testing.T) {
			plan := c.plan
			if strings.Contains(c.name, "PlainSTE") {
				for _, q := range plan.Sites {
					q.PlainSTE = true
				}
			}
			const steps = 20
			tr, err := NewTrainer(cfg, w0, TrainConfig{Batch: 16, LearnRate: 2e-3}, WithPlan(plan))
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			rng := rand.New(rand.NewPCG(5, 6))
			for range steps {
				if _, err := tr.Step(reverseTask(rng, 16, 4)); err != nil {
					t.Fatal(err)
				}
			}
			w, err := tr.Weights()
			if err != nil {
				t.Fatal(err)
			}
			learned := map[string][]float64{}
			for _, s := range tr.Model().Sites() {
				if s.ScaleNode() == nil {
					if s.Kind == SiteFFNHidden {
						t.Errorf("%s: no scale node", s.Name)
					}
					continue
				}
				name := LearnableScaleName(s.Name, s.Quant.Learnable.LogScale)
				if w[name] == nil {
					t.Errorf("Trainer.Weights lacks %s", name)
				}
				got, start := s.Scale(), s.Quant.Spec.Scale
				moved := 0.0
				for i := range got {
					moved = math.Max(moved, math.Abs(got[i]/start[i]-1))
				}
				if moved < 1e-3 {
					t.Errorf("%s: scale %v moved by %.2g from %v, want ≥ 0.1%%", s.Name, head(got), moved, head(start))
				}
				if st := s.Stats(); st.Runs != steps || st.Elements == 0 {
					t.Errorf("%s: stats %v after %d steps", s.Name, st, steps)
				}
				learned[s.Name] = got
				t.Logf("%s: scale %.4g → %.4g (largest relative move %.3g)", s.Name, head(start), head(got), moved)
			}
			// The Evaluator from the trained weights: the same logits as
			// the training graph, the learned scales.
			b := held[0]
			want, _, _ := programLogits(t, cfg, w, plan, b)
			ev, err := NewEvaluator(cfg, w, 16, WithPlan(plan))
			if err != nil {
				t.Fatal(err)
			}
			defer ev.Close()
			if _, err := ev.Eval(b); err != nil {
				t.Fatal(err)
			}
			if d := maxAbsDiff(ev.Logits(), want); d > 1e-6 {
				t.Errorf("Evaluator's logits differ from the training graph's by %g", d)
			}
			for _, s := range ev.Sites() {
				if l, ok := learned[s.Name]; ok && !slices.Equal(s.Scale(), l) {
					t.Errorf("%s: Evaluator's scale %v, learned %v", s.Name, head(s.Scale()), head(l))
				}
			}
			_, after, _ := evalLogits(t, cfg, w, plan, held)
			t.Logf("held-out loss %.4f → %.4f, accuracy %.4f → %.4f", before.Loss, after.Loss, before.Accuracy(), after.Accuracy())
			if !(after.Loss < before.Loss) {
				t.Errorf("held-out loss %.4f after %d steps, %.4f before", after.Loss, steps, before.Loss)
			}
			// Weights without the scales: the calibrated start again.
			ev0, err := NewEvaluator(cfg, w0, 16, WithPlan(plan))
			if err != nil {
				t.Fatal(err)
			}
			defer ev0.Close()
			for _, s := range ev0.Sites() {
				if fs := fixed.Sites[s.Name]; fs != nil && maxAbsDiff(s.Scale(), fs.Spec.Scale) > 1e-7*fs.Spec.Scale[0] {
					t.Errorf("%s: Evaluator without learned scales uses %v, want the calibrated %v", s.Name, s.Scale(), fs.Spec.Scale)
				}
			}
		})
	}
}

// TestLearnableCalibrate: Calibrate observes a learnable static site (the
// statistics keep counting) and keeps Learnable in the calibrated plan.
func TestLearnableCalibrate(t *testing.T) {
	cfg := reverseConfig(4)
	p := int8Plan()
	p.FFNHidden = &Quant{Spec: quantize.Spec{Format: quantize.Int4, Symmetric: true}, Static: true, Learnable: &quantize.LSQConfig{LogScale: true}}
	cal, err := Calibrate(cfg, trainedReverse(t), p, heldOut(9, 2))
	if err != nil {
		t.Fatal(err)
	}
	want := calibratedPlan(t)
	for _, name := range []string{"block0.ffn.hidden", "block1.ffn.hidden"} {
		q := cal.Sites[name]
		if q == nil || q.Learnable == nil || !q.Learnable.LogScale || q.Static || !slices.Equal(q.Spec.Scale, want.Sites[name].Spec.Scale) {
			t.Errorf("%s: calibrated %+v, want learnable with scale %v", name, q, want.Sites[name].Spec.Scale)
		}
	}
	_, _, stats := evalLogits(t, cfg, trainedReverse(t), cal, heldOut(9, 2))
	if st := stats["block0.ffn.hidden"]; st.Runs != 2 || st.Elements == 0 {
		t.Errorf("block0.ffn.hidden stats %v, want 2 runs", st)
	}
}

// TestLearnableErrors: plans whose sites cannot learn their scales fail
// when the graph is built, naming the problem; nothing panics.
func TestLearnableErrors(t *testing.T) {
	cfg := reverseConfig(4)
	w := trainedReverse(t)
	lsq := &quantize.LSQConfig{}
	withHidden := func(q *Quant) *Plan { return &Plan{FFNHidden: q} }
	int4 := func(scale ...float64) quantize.Spec {
		return quantize.Spec{Format: quantize.Int4, Symmetric: true, Scale: scale}
	}
	trainer := func(p *Plan, w Weights) func() error {
		return func() error {
			tr, err := NewTrainer(cfg, w, TrainConfig{Batch: 2}, WithPlan(p))
			if err == nil {
				tr.Close()
			}
			return err
		}
	}
	badW := w.Clone()
	badW["block0.ffn.hidden.scale"] = tensor.New(tensor.WithShape(2), tensor.WithBacking([]float32{1, 2}))
	c := func(name, arg string, want error, p *Plan, w Weights) errtest.Case {
		return errtest.Case{Name: name, Fn: "graph.NewTrainer", Arg: arg, Want: want, Call: trainer(p, w)}
	}
	errtest.Run(t, []errtest.Case{
		c("float format", "integer format", ErrConfig, withHidden(&Quant{Spec: quantize.Spec{Format: quantize.FP8E4M3, Scale: []float64{1}}, Learnable: lsq}), w),
		c("passthrough", "Passthrough", ErrConfig, withHidden(&Quant{Passthrough: true, Learnable: lsq}), w),
		c("static, not calibrated", "Calibrate", ErrConfig, withHidden(&Quant{Spec: int4(), Static: true, Learnable: lsq}), w),
		c("activation without a scale", "Spec.Scale", ErrConfig, withHidden(&Quant{Spec: int4(), Learnable: lsq}), w),
		c("zero scale", "Spec.Scale[0] = 0", ErrConfig, withHidden(&Quant{Spec: int4(0), Learnable: lsq}), w),
		c("NaN scale, log", "Spec.Scale[0] = NaN", ErrConfig, withHidden(&Quant{Spec: int4(math.NaN()), Learnable: &quantize.LSQConfig{LogScale: true}}), w),
		c("three scales per tensor", "scale has shape (3)", ops.ErrShape, withHidden(&Quant{Spec: int4(1, 2, 3), Learnable: lsq}), w),
		c("negative grad factor", "GradFactor", quantize.ErrSpec, withHidden(&Quant{Spec: int4(0.1), Learnable: &quantize.LSQConfig{GradFactor: -1}}), w),
		c("weights give a scale of the wrong shape", "block0.ffn.hidden.scale", ErrConfig, withHidden(&Quant{Spec: int4(0.1), Learnable: lsq}), badW),
		c("learnable weights start from their dynamic scales", "", nil, &Plan{Weights: &Quant{Spec: quantize.Spec{Format: quantize.Int4, Granularity: quantize.PerGroup, GroupSize: 16, Symmetric: true}, Learnable: lsq}}, w),
		c("fixed activation scale", "", nil, withHidden(&Quant{Spec: int4(0.1), Learnable: lsq}), w),
	})
}
