package graph

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/actq/actq/internal/infer"
	"github.com/actq/actq/ops"
	"github.com/actq/actq/quantize"
	"gorgonia.org/tensor"
)

// genConfigs are the generator tests' models: today's Config in its
// variants (RMSNorm and LayerNorm, plain and gated FFNs, each activation).
// SeqLen is a multiple of 16 and DHidden a multiple of 32 (the int4 tiers'
// groups), so that the Evaluator's kernels run the same vector blocks on
// every row as the Generator's (see genExact).
var genConfigs = []Config{
	{Vocab: 48, SeqLen: 32, DModel: 32, Heads: 2, DHidden: 64, Layers: 2, Activation: "gelu", Gated: true},
	{Vocab: 40, SeqLen: 32, DModel: 32, Heads: 4, DHidden: 96, Layers: 1, Activation: "relu", Norm: NormLayer},
	{Vocab: 30, SeqLen: 48, DModel: 64, Heads: 2, DHidden: 64, Layers: 2, Activation: "silu"},
	{Vocab: 36, SeqLen: 32, DModel: 32, Heads: 1, DHidden: 32, Layers: 2, Activation: "gelu_tanh", Gated: true, Norm: NormLayer},
}

// genWeights returns the initial weights of cfg from seed, with the
// biases and LayerNorm shifts moved off zero so that they matter.
func genWeights(t *testing.T, cfg Config, seed uint64) Weights {
	t.Helper()
	w := seededWeights(t, cfg, seed)
	rng := rand.New(rand.NewPCG(seed, 5))
	for _, name := range w.Names() { // in order: the same draws every run
		if strings.HasSuffix(name, ".B1") || strings.HasSuffix(name, ".B2") || strings.HasSuffix(name, ".B3") || strings.HasSuffix(name, ".b") {
			for i, d := 0, w[name].Float32s(); i < len(d); i++ {
				d[i] = float32(0.1 * rng.NormFloat64())
			}
		}
	}
	return w
}

func newGen(t *testing.T, cfg Config, w Weights, opts ...Option) *Generator {
	t.Helper()
	g, err := NewGenerator(cfg, w, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// prefixBatch returns one sequence per prefix length in lens, each the
// first lens[i] tokens of seq padded with token 0 to SeqLen, and the row
// of each prefix's last position in the batch's logits.
func prefixBatch(cfg Config, seq []int, lens []int) (Batch, []int) {
	b := Batch{Tokens: make([]int, len(lens)*cfg.SeqLen), Targets: make([]int, len(lens)*cfg.SeqLen)}
	rows := make([]int, len(lens))
	for i, n := range lens {
		copy(b.Tokens[i*cfg.SeqLen:], seq[:n])
		rows[i] = i*cfg.SeqLen + n - 1
	}
	for i := range b.Targets {
		b.Targets[i] = Ignore
	}
	return b, rows
}

// evaluatorRows returns the Evaluator's logits (under plan) at the last
// position of each prefix of seq of the given lengths, each prefix run as
// a batch of one sequence padded with token 0 to SeqLen: the Evaluator on
// the sequence so far (causal attention and scales per token or per query
// row keep the padding from reaching the prefix's last row).
func evaluatorRows(t *testing.T, cfg Config, w Weights, plan *Plan, seq []int, lens []int) [][]float64 {
	t.Helper()
	var opts []Option
	if plan != nil {
		opts = append(opts, WithPlan(plan))
	}
	ev, err := NewEvaluator(cfg, w, 1, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	out := make([][]float64, len(lens))
	for i, n := range lens {
		b, rows := prefixBatch(cfg, seq, []int{n})
		if _, err := ev.Eval(b); err != nil {
			t.Fatal(err)
		}
		out[i] = ev.Logits()[rows[0]*cfg.Vocab : (rows[0]+1)*cfg.Vocab]
	}
	return out
}

// tierPlans returns the standard tiers' plans for cfg, calibrated where
// needed (on random sequences), fp32's as nil.
func tierPlans(t *testing.T, cfg Config, w Weights) []*Plan {
	t.Helper()
	var plans []*Plan
	for _, tier := range Tiers() {
		p := tier.Plan(cfg.SeqLen)
		if tier.NeedsCalibration() {
			rng := rand.New(rand.NewPCG(31, 7))
			b := Batch{Tokens: make([]int, 4*cfg.SeqLen), Targets: make([]int, 4*cfg.SeqLen)}
			for i := range b.Tokens {
				b.Tokens[i], b.Targets[i] = rng.IntN(cfg.Vocab), Ignore
			}
			var err error
			if p, err = Calibrate(cfg, w, p, []Batch{b}); err != nil {
				t.Fatal(err)
			}
		}
		plans = append(plans, p)
	}
	return plans
}

// TestGeneratorGreedyMatchesEvaluator: for each model and every standard
// tier, greedy Generate continues a prompt to the model's full length, and
// each generated token is the argmax of the Evaluator's logits at the last
// position of the sequence before it (see evaluatorRows). The Generator's
// logits at those positions equal the Evaluator's bit for bit (genExact).
func TestGeneratorGreedyMatchesEvaluator(t *testing.T) {
	checkConfigs(t, "config", genConfigs, 10, []int{3, 1, 4, 1, 5})
}

// checkConfigs runs checkGreedy on each config (weights from seed0 + its
// index) under every standard tier; under -race, on the first config only
// (the checks are slow there, and run on one goroutine).
func checkConfigs(t *testing.T, what string, configs []Config, seed0 uint64, prompt []int) {
	for ci, cfg := range configs {
		if raceEnabled && ci > 0 {
			break
		}
		w := genWeights(t, cfg, seed0+uint64(ci))
		for _, plan := range tierPlans(t, cfg, w) {
			checkGreedy(t, fmt.Sprintf("%s %d", what, ci), cfg, w, plan, prompt, genSteps)
		}
	}
}

// genSteps is the number of tokens the equality tests generate: past
// the first block of 16 score columns (the softmax's padding), and few
// enough to keep the tests fast under -race.
const genSteps = 14

// checkGreedy generates n tokens after prompt, greedy, under plan, and
// checks them against the Evaluator on the sequence before each (see
// evaluatorRows). With the Evaluator's arithmetic (infer.ProductsGraph),
// each token is its argmax and the Generator's logits at those positions
// are its logits, bit for bit (genExact). With the fast products (actq's
// Sgemm for prefill, gonum's Sgemv for decoding), the logits differ in
// their last bits, which a quantizer may turn into a different code: each
// token is the argmax, or within fastMargin of it, and the logits agree
// within fastTol (fp32; looser under a plan, whose quantizers the
// differences may cross).
func checkGreedy(t *testing.T, what string, cfg Config, w Weights, plan *Plan, prompt []int, n int) {
	t.Helper()
	var opts []Option
	if plan != nil {
		what += " " + plan.Name
		opts = []Option{WithPlan(plan)}
	} else {
		what += " fp32"
	}
	for _, products := range []infer.Products{infer.ProductsGraph, infer.ProductsFast} {
		g := newGen(t, cfg, w, append(opts, withProducts(products))...)
		got, err := g.Generate(prompt, n, Sampling{})
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		seq := append(slices.Clone(prompt), got...)
		lens, last := make([]int, n), make([]int, n)
		for i := range lens {
			lens[i] = len(prompt) + i
			last[i] = lens[i] - 1
		}
		want := evaluatorRows(t, cfg, w, plan, seq, lens)
		logits, err := g.Logits(seq[:lens[n-1]], last)
		if err != nil {
			t.Fatal(err)
		}
		worst := 0.0
		for i, row := range want {
			scale := 0.0
			for _, v := range row {
				scale = math.Max(scale, math.Abs(v))
			}
			a := argmaxRow(row)
			if products == infer.ProductsGraph {
				if a != got[i] {
					t.Errorf("%s: step %d generated %d, the Evaluator's argmax is %d", what, i, got[i], a)
					return
				}
				if j := firstDiff(logits[i*cfg.Vocab:(i+1)*cfg.Vocab], row); j >= 0 {
					t.Errorf("%s: position %d logit %d = %v, the Evaluator's %v", what, last[i], j, logits[i*cfg.Vocab+j], row[j])
					return
				}
				continue
			}
			if a != got[i] && row[a]-row[got[i]] > fastMargin*scale {
				t.Errorf("%s, fast products: step %d generated %d, the Evaluator's argmax is %d by %.3g·max|logit|", what, i, got[i], a, (row[a]-row[got[i]])/scale)
				return
			}
			for j, v := range row {
				worst = math.Max(worst, math.Abs(logits[i*cfg.Vocab+j]-v)/scale)
			}
		}
		if products == infer.ProductsFast {
			t.Logf("%s, fast products: logits within %.2g·max|logit| of the Evaluator's", what, worst)
		}
		if tol := fastTol(plan); products == infer.ProductsFast && worst > tol {
			t.Errorf("%s, fast products: logits differ from the Evaluator's by %.3g·max|logit|, want ≤ %.3g", what, worst, tol)
		}
	}
}

// fastMargin is how close to the Evaluator's argmax (relative to
// max|logit|) a token of the fast products may be when it is not the
// argmax: their rounding differences (a few 1e-7) can only reorder a near
// tie, or under a plan, where they may move a value across a quantizer's
// rounding boundary, a tie within fastTol.
const fastMargin = 2e-2

// fastTol returns the bound on the fast products' logits against the
// Evaluator's, relative to max|logit|: without a plan, float32 rounding
// carried through the layers (measured up to 4.6e-7 here; see also
// internal/infer.TestDecodeEqualsPrefill). Under a plan a rounding
// difference may move a value across a quantizer's rounding boundary,
// which changes it by a whole code: with int8 per token, 1/127 of its
// row's largest value, 8e-3 relative. The logits then move by up to about
// as much (measured up to 1.7e-4 with these weights, and 6.9e-3 under
// w8a8 with others).
func fastTol(plan *Plan) float64 {
	if plan == nil {
		return 1e-5
	}
	return 2e-2
}

// firstDiff returns the first index where a and b differ in bits, or −1.
func firstDiff(a, b []float64) int {
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
			return i
		}
	}
	return -1
}

// genExact documents the conditions of the bit-for-bit equality above:
// the Generator and the Evaluator call the same kernels on the same
// values (actq's Sgemm computes each element in the same order whatever
// the number of rows, and a bias goes in before the product, as in MatMul;
// norms, activations and softmax run the same code), as long as the
// activations' rows are whole vector blocks (DHidden a multiple of 16) and
// the Evaluator's score rows (SeqLen) a multiple of 16, so that a softmax
// over a padded prefix of a row runs the same blocks. Otherwise the two
// differ in the last bits (TestGeneratorLogitsTolerance).
const genExact = "DHidden and SeqLen multiples of 16"

// TestGeneratorLogitsTolerance: where the conditions of genExact fail
// (SeqLen 20, DHidden 40), the Generator's logits still agree with the
// Evaluator's within a few float32 rounding errors: 1e-5·max|logit|, the
// size of the reorderings (an exp or a sum rounded in another order, ~1e-7
// relative each) carried through two layers.
func TestGeneratorLogitsTolerance(t *testing.T) {
	cfg := Config{Vocab: 24, SeqLen: 20, DModel: 24, Heads: 3, DHidden: 40, Layers: 2, Activation: "gelu"}
	w := genWeights(t, cfg, 3)
	rng := rand.New(rand.NewPCG(1, 1))
	seq := make([]int, cfg.SeqLen)
	for i := range seq {
		seq[i] = rng.IntN(cfg.Vocab)
	}
	lens := []int{1, 7, 16, 17, 20}
	want := evaluatorRows(t, cfg, w, nil, seq, lens)
	pos := []int{0, 6, 15, 16, 19}
	got, err := newGen(t, cfg, w).Logits(seq, pos)
	if err != nil {
		t.Fatal(err)
	}
	for i, row := range want {
		scale := 0.0
		for _, v := range row {
			scale = math.Max(scale, math.Abs(v))
		}
		for j, v := range row {
			if d := math.Abs(got[i*cfg.Vocab+j] - v); d > 1e-5*scale {
				t.Errorf("position %d logit %d: %v, the Evaluator's %v (difference %.2g·max)", pos[i], j, got[i*cfg.Vocab+j], v, d/scale)
			}
		}
	}
}

// TestGeneratorStats: the Generator's sites are the Evaluator's, in the
// same order; row sites count what the Evaluator's count on the same
// sequence (exactly: the same slices through the same code), attention
// sites the visible keys, and weight sites their one quantization.
func TestGeneratorStats(t *testing.T) {
	cfg := genConfigs[0]
	cfg.SeqLen = 16 // the Evaluator runs exactly the 16 tokens
	w := genWeights(t, cfg, 40)
	w["embed.pos"] = tensor.New(tensor.WithShape(16, cfg.DModel), tensor.WithBacking(w["embed.pos"].Float32s()[:16*cfg.DModel]))
	plan := tierPlans(t, cfg, w)[4] // w8a8
	g := newGen(t, cfg, w, WithPlan(plan), withProducts(infer.ProductsGraph))
	ev, err := NewEvaluator(cfg, w, 1, WithPlan(plan))
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	seq := []int{5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4}
	b, _ := prefixBatch(cfg, seq, []int{16})
	if _, err := ev.Eval(b); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Logits(seq, []int{15}); err != nil {
		t.Fatal(err)
	}
	gs, es := g.Sites(), ev.Sites()
	if len(gs) != len(es) {
		t.Fatalf("%d sites, the Evaluator %d", len(gs), len(es))
	}
	heads := int64(cfg.Heads)
	for i, s := range gs {
		e := es[i]
		if s.Name != e.Name || s.Kind != e.Kind {
			t.Errorf("site %d: %s (%v), the Evaluator's %s (%v)", i, s.Name, s.Kind, e.Name, e.Kind)
			continue
		}
		got, want := s.Stats(), e.Stats()
		switch s.Kind {
		case SiteAttnScores, SiteAttnProbs:
			// 16 query rows of 1…16 visible keys per head; the Evaluator
			// counts 16×16, the masked ones as −Inf at the scores.
			if got.Elements != heads*16*17/2 || got.Runs != heads*16 || got.Inf != 0 {
				t.Errorf("%s: %+v, want %d visible elements in %d rows", s.Name, got, heads*16*17/2, heads*16)
			}
			if s.Kind == SiteAttnScores && want.Inf != heads*16*15/2 {
				t.Errorf("%s: the Evaluator counted %d −Inf, want %d", s.Name, want.Inf, heads*16*15/2)
			}
		default:
			if got != want {
				t.Errorf("%s: %+v, the Evaluator's %+v", s.Name, got, want)
			}
		}
	}
	g.ResetStats()
	for _, s := range g.Sites() {
		if st := s.Stats(); (st.Runs == 0) != !s.Kind.isWeight() {
			t.Errorf("%s after ResetStats: %+v", s.Name, st)
		}
	}
	if len(g.Stats()) != len(gs) {
		t.Errorf("Stats has %d sites", len(g.Stats()))
	}
}

// TestGeneratorSitesRefused: sites whose scales span tokens or positions
// are refused with an error naming the site; specs the graph would refuse
// are refused too.
func TestGeneratorSitesRefused(t *testing.T) {
	cfg := genConfigs[0]
	w := genWeights(t, cfg, 2)
	q := func(s quantize.Spec) *Quant { return &Quant{Spec: s} }
	for _, c := range []struct {
		name string
		plan *Plan
		want error
		msg  string
	}{
		{"per-tensor dynamic FFN input", &Plan{FFNInput: q(quantize.Spec{Symmetric: true})}, ErrConfig,
			`site "block0.ffn.in" (ffn_input, Int8 PerTensor): its dynamic scale spans every token`},
		{"per-feature dynamic block output", &Plan{BlockOutput: q(quantize.Spec{Granularity: quantize.PerChannel, Axis: -1})}, ErrConfig,
			"per feature (Axis 1) span every token"},
		{"fixed per-token hidden", &Plan{FFNHidden: q(quantize.Spec{Granularity: quantize.PerRow, Scale: make([]float64, 32)})}, ErrConfig,
			"belong to token positions"},
		{"per-tensor dynamic scores", &Plan{AttnScores: q(quantize.Spec{})}, ErrConfig, "spans every query row"},
		{"per-channel dynamic probs", &Plan{AttnProbs: q(quantize.Spec{Format: quantize.UInt8, Granularity: quantize.PerChannel, Axis: 2})}, ErrConfig,
			"axis 2 span several query rows"},
		{"fixed per-key scores", &Plan{AttnScores: q(quantize.Spec{Granularity: quantize.PerChannel, Axis: 3, Scale: []float64{1}})}, ErrConfig,
			"only per-head scales"},
		{"fixed per-head scores of the wrong count", &Plan{AttnScores: q(quantize.Spec{Granularity: quantize.PerChannel, Axis: 1, Scale: []float64{1}})}, quantize.ErrSpec,
			"1 fixed scales per head, the model has 2 heads"},
		{"bad group", &Plan{FFNHidden: q(quantize.Spec{Granularity: quantize.PerGroup, GroupSize: 7})}, quantize.ErrSpec, "does not divide"},
		{"bad weight group", &Plan{Weights: q(quantize.Spec{Granularity: quantize.PerGroup, GroupSize: 7})}, quantize.ErrSpec, "does not divide"},
	} {
		_, err := NewGenerator(cfg, w, WithPlan(c.plan))
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) || !strings.Contains(err.Error(), "graph.NewGenerator") {
			t.Errorf("%s: %v, want %v with %q", c.name, err, c.want, c.msg)
		}
	}
	// Accepted: fixed per-tensor and per-head scales, per-group scores.
	for _, p := range []*Plan{
		{FFNInput: q(quantize.Spec{Scale: []float64{0.05}})},
		{BlockOutput: q(quantize.Spec{Granularity: quantize.PerChannel, Axis: 1, Scale: slices.Repeat([]float64{0.05}, 32)})},
		{AttnScores: q(quantize.Spec{Granularity: quantize.PerChannel, Axis: 1, Scale: []float64{0.1, 0.2}})},
		{AttnScores: q(quantize.Spec{Granularity: quantize.PerGroup, GroupSize: 8, Symmetric: true})},
		{AttnProbs: q(quantize.Spec{Format: quantize.UInt8, Granularity: quantize.PerGroup, GroupSize: 16})},
	} {
		g, err := NewGenerator(cfg, w, WithPlan(p), withProducts(infer.ProductsGraph))
		if err != nil {
			t.Errorf("%+v: %v", p, err)
			continue
		}
		// And they compute the Evaluator's values (with its arithmetic).
		seq := []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}
		want := evaluatorRows(t, cfg, w, p, seq, []int{3, 8, 19})
		got, err := g.Logits(seq, []int{2, 7, 18})
		if err != nil {
			t.Fatal(err)
		}
		for i, row := range want {
			for j, v := range row {
				if got[i*cfg.Vocab+j] != v {
					t.Fatalf("%+v: row %d logit %d: %v, the Evaluator's %v", p, i, j, got[i*cfg.Vocab+j], v)
				}
			}
		}
	}
}

func TestNewGeneratorErrors(t *testing.T) {
	cfg := genConfigs[0]
	w := genWeights(t, cfg, 2)
	f64 := cfg
	f64.Dtype = tensor.Float64
	bad := cfg
	bad.Heads = 5
	short := w.Clone()
	delete(short, "block1.ffn.W2")
	for _, c := range []struct {
		name string
		cfg  Config
		w    Weights
		opts []Option
		msg  string
	}{
		{"float64", f64, w, nil, "the Generator runs Float32 models"},
		{"bad config", bad, w, nil, "not divisible by Heads"},
		{"nil weights", cfg, nil, nil, "nil weights"},
		{"missing weight", cfg, short, nil, `"block1.ffn.W2": not in the given weights`},
		{"probs with fp16 P·V", cfg, w, []Option{WithPlan(&Plan{AttnProbs: Passthrough()}), WithAttention(AttentionArithmetic{PV: PVHalf})}, "no normalised probabilities"},
	} {
		_, err := NewGenerator(c.cfg, c.w, c.opts...)
		if err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v, want %q", c.name, err, c.msg)
		}
	}
}

func TestGenerateErrors(t *testing.T) {
	cfg := genConfigs[0] // Vocab 48, SeqLen 32
	g := newGen(t, cfg, genWeights(t, cfg, 2))
	for _, c := range []struct {
		name   string
		prompt []int
		n      int
		s      Sampling
		want   error
		msg    string
	}{
		{"empty prompt", nil, 3, Sampling{}, ops.ErrShape, "the prompt is empty"},
		{"token", []int{1, 48}, 3, Sampling{}, ops.ErrValue, "prompt[1] = 48 is outside [0, 48)"},
		{"negative token", []int{-1}, 3, Sampling{}, ops.ErrValue, "prompt[0] = -1"},
		{"negative n", []int{1}, -1, Sampling{}, ops.ErrValue, "n = -1"},
		{"too long", []int{1, 2}, 32, Sampling{}, ops.ErrShape, "run 33 positions, beyond the model's 32"},
		{"negative temperature", []int{1}, 1, Sampling{Temperature: -1}, ErrConfig, "Temperature = -1"},
		{"NaN temperature", []int{1}, 1, Sampling{Temperature: math.NaN()}, ErrConfig, "Temperature = NaN"},
		{"infinite temperature", []int{1}, 1, Sampling{Temperature: math.Inf(1)}, ErrConfig, "Temperature = +Inf"},
		{"negative TopK", []int{1}, 1, Sampling{Temperature: 1, TopK: -2}, ErrConfig, "TopK = -2"},
		{"TopP above 1", []int{1}, 1, Sampling{Temperature: 1, TopP: 1.5}, ErrConfig, "TopP = 1.5"},
		{"NaN TopP", []int{1}, 1, Sampling{Temperature: 1, TopP: math.NaN()}, ErrConfig, "TopP = NaN"},
	} {
		_, err := g.Generate(c.prompt, c.n, c.s)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v, want %v with %q", c.name, err, c.want, c.msg)
		}
	}
	// Edge cases that run: n = 0; a prompt filling the model exactly.
	if out, err := g.Generate([]int{1}, 0, Sampling{}); err != nil || len(out) != 0 {
		t.Errorf("n = 0: %v, %v", out, err)
	}
	if out, err := g.Generate(make([]int, 31), 2, Sampling{}); err != nil || len(out) != 2 {
		t.Errorf("31 + 2 tokens (32 positions run): %v, %v", out, err)
	}
	for _, c := range []struct {
		tokens, pos []int
		want        error
	}{
		{nil, nil, ops.ErrShape}, {make([]int, 33), nil, ops.ErrShape}, {[]int{1, 2}, []int{2}, ops.ErrValue}, {[]int{99}, nil, ops.ErrValue},
	} {
		if _, err := g.Logits(c.tokens, c.pos); !errors.Is(err, c.want) {
			t.Errorf("Logits(%v, %v): %v, want %v", c.tokens, c.pos, err, c.want)
		}
	}
}

// TestGeneratorCheckFinite: a plan's CheckFinite stops generation at the
// first site with a non-finite value, naming it.
func TestGeneratorCheckFinite(t *testing.T) {
	cfg := genConfigs[0]
	w := genWeights(t, cfg, 2)
	// Gains of 1e30 overflow the second block's FFN hidden layer.
	g1 := w["block1.norm2.g"].Float32s()
	for i := range g1 {
		g1[i] = 1e30
	}
	p := PassthroughPlan()
	p.CheckFinite = true
	g := newGen(t, cfg, w, WithPlan(p))
	_, err := g.Generate([]int{1, 2}, 3, Sampling{})
	nf, ok := ops.FindNonFinite(err)
	if !errors.Is(err, ops.ErrNonFinite) || !ok || nf.Label != "block1.ffn.hidden" {
		t.Errorf("got %v, want a NonFiniteError at block1.ffn.hidden", err)
	}
}

// TestGeneratorConcurrent: two Generators, and one Generator from two
// goroutines, in parallel (run under -race), give the results they give
// alone.
func TestGeneratorConcurrent(t *testing.T) {
	cfg := genConfigs[0]
	w := genWeights(t, cfg, 7)
	plan := Tiers()[4].Plan(cfg.SeqLen) // w8a8
	gens := []*Generator{newGen(t, cfg, w), newGen(t, cfg, w, WithPlan(plan))}
	s := Sampling{Temperature: 0.8, TopK: 10, Seed: 3}
	want := make([][]int, len(gens))
	for i, g := range gens {
		var err error
		if want[i], err = g.Generate([]int{1, 2, 3}, 20, s); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 4 {
		wg.Add(1)
		go func(g *Generator, want []int) {
			defer wg.Done()
			got, err := g.Generate([]int{1, 2, 3}, 20, s)
			if err == nil && !slices.Equal(got, want) {
				err = errors.New("a different continuation in parallel")
			}
			errs <- err
		}(gens[i%2], want[i%2])
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// TestGenerateAllocations reports the allocations per generated token, at
// one thread, greedy and sampled: 0 without a plan (the cache is reserved
// for the whole run, the sampler's scratch made once).
func TestGenerateAllocations(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("instrumented build")
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	cfg := genConfigs[2]
	g := newGen(t, cfg, genWeights(t, cfg, 9))
	for _, s := range []Sampling{{}, {Temperature: 1, TopK: 5, TopP: 0.9, Seed: 1}} {
		perCall := func(n int) float64 {
			return testing.AllocsPerRun(5, func() {
				if _, err := g.Generate([]int{1, 2, 3}, n, s); err != nil {
					t.Fatal(err)
				}
			})
		}
		if per := (perCall(40) - perCall(10)) / 30; per != 0 {
			t.Errorf("%+v: %.2f allocations per token", s, per)
		}
	}
}
