package graph

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/actq/actq/internal/gradcheck"
	"github.com/actq/actq/internal/numtest"
	"github.com/actq/actq/quantize"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

var (
	llamaOpsOnce sync.Once
	llamaOps     *numtest.Golden
	llamaOpsErr  error
)

// llamaOpCases returns the cases of op in testdata/llama/ops.json.gz
// (written by scripts/goldens/gen_llama.py).
func llamaOpCases(t *testing.T, op string) []numtest.Case {
	t.Helper()
	llamaOpsOnce.Do(func() {
		llamaOps, llamaOpsErr = numtest.ReadGolden(filepath.Join("..", "testdata", "llama", "ops.json.gz"))
	})
	if llamaOpsErr != nil {
		t.Fatal(llamaOpsErr)
	}
	var out []numtest.Case
	for _, c := range llamaOps.Cases {
		if c.Op == op {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no %s cases", op)
	}
	return out
}

// TestGQAGolden compares the attention core (Attention.attend: scores,
// causal mask, softmax, probabilities times values, with the query heads
// of a group sharing a key/value head) with PyTorch's repeat_kv attention,
// output and gradients with respect to q, k and v, on the tape machine
// (forward only and with gorgonia.Grad) and the Lisp machine: grouped,
// multi-query and multi-head cases, and a decoding step with fewer queries
// than keys (queries at positions offset…).
func TestGQAGolden(t *testing.T) {
	worst, report := newWorst(t)
	defer report()
	for _, c := range llamaOpCases(t, "gqa_attention") {
		t.Run(c.Name, func(t *testing.T) {
			var p struct {
				Heads   int `json:"heads"`
				KVHeads int `json:"kv_heads"`
				Tq      int `json:"tq"`
				Tk      int `json:"tk"`
				HeadDim int `json:"head_dim"`
				Offset  int `json:"offset"`
			}
			if err := c.ParamsInto(&p); err != nil {
				t.Fatal(err)
			}
			dt := dtypeNamed(c.Dtype)
			batch := c.Shape[0]
			qs := []int{batch, p.Heads, p.Tq, p.HeadDim}
			ks := []int{batch, p.KVHeads, p.Tk, p.HeadDim}
			in := map[string]*tensor.Dense{
				"q": goldenDense(t, &c, "q", dt, qs...),
				"k": goldenDense(t, &c, "k", dt, ks...),
				"v": goldenDense(t, &c, "v", dt, ks...),
			}
			dy := goldenDense(t, &c, "dy", dt, qs...)
			cfg := AttentionConfig{DModel: p.Heads * p.HeadDim, Heads: p.Heads, KVHeads: p.KVHeads, Causal: true, Dtype: dt}
			for _, m := range []machine{tapeFwd, tapeGrad, lispGrad} {
				res, err := runGraph(m, dt, dy, func(g *gorgonia.ExprGraph) (map[string]*gorgonia.Node, *gorgonia.Node, error) {
					// The layer's weights go on a graph of their own: attend
					// does not use them, and the Lisp machine wants no
					// unused inputs.
					a, err := NewAttention(gorgonia.NewGraph(), "attn", cfg)
					if err != nil {
						return nil, nil, err
					}
					wrt := map[string]*gorgonia.Node{}
					for name, v := range in {
						wrt[name] = gorgonia.NodeFromAny(g, v.Clone(), gorgonia.WithName(name))
					}
					y, err := a.attend(wrt["q"], wrt["k"], wrt["v"], p.Offset)
					return wrt, y, err
				})
				if err != nil {
					t.Fatalf("%s: %v", m, err)
				}
				worst[c.Dtype].merge(checkResult(t, &c, m, res))
			}
		})
	}
}

// TestAttentionRoPEGQAGrad checks the gradients of a whole attention layer
// with rotary positions and grouped-query attention, with respect to its
// input and every weight, against central differences on both machines,
// for grouped (4 heads, 2 key/value heads) and multi-query attention, and
// with the key and value sites of a passthrough plan (whose transposes are
// on the gradient's path).
func TestAttentionRoPEGQAGrad(t *testing.T) {
	for _, c := range []struct {
		kv   int
		plan *Plan
	}{{2, nil}, {1, nil}, {2, PassthroughPlan()}} {
		cfg := AttentionConfig{DModel: 8, Heads: 4, KVHeads: c.kv, RoPETheta: 100, Causal: true, Dtype: tensor.Float64}
		dkv := 2 * c.kv
		r := func(name string, shape ...int) *tensor.Dense {
			return initValue(9, name, initNormal, tensor.Float64, shape...)
		}
		inputs := []*tensor.Dense{r("x", 2, 3, 8), r("Wq", 8, 8), r("Wk", 8, dkv), r("Wv", 8, dkv), r("Wo", 8, 8)}
		_, err := gradcheck.Check(inputs, func(g *gorgonia.ExprGraph, xs gorgonia.Nodes) (*gorgonia.Node, error) {
			nodes := map[string]*gorgonia.Node{"a.Wq": xs[1], "a.Wk": xs[2], "a.Wv": xs[3], "a.Wo": xs[4]}
			a, err := NewAttention(g, "a", cfg, withNodes(nodes), WithPlan(c.plan))
			if err != nil {
				return nil, err
			}
			return a.Forward(xs[0])
		}, gradcheck.Options{})
		if err != nil {
			t.Errorf("KVHeads %d, plan %v: %v", c.kv, c.plan != nil, err)
		}
	}
}

// llamaTestConfig is a small model with every Llama option: rotary
// positions, grouped-query attention, SwiGLU without biases, its own norm
// ε and tied embeddings.
func llamaTestConfig() Config {
	return Config{Vocab: 11, SeqLen: 6, DModel: 32, Heads: 4, KVHeads: 2, DHidden: 64, Layers: 2,
		Activation: "silu", Gated: true, NoBias: true, RoPETheta: 1e4, NormEps: 1e-6, TieEmbeddings: true}
}

// seededWeights returns the initial weights of a model of cfg from seed.
func seededWeights(t *testing.T, cfg Config, seed uint64) Weights {
	t.Helper()
	m, err := NewModel(gorgonia.NewGraph(), cfg, WithSeed(seed))
	if err != nil {
		t.Fatal(err)
	}
	w, err := m.Weights()
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestLlamaModelParams checks the parameters a Llama-family config makes:
// no position embedding, no head, no biases, key and value projections of
// KVHeads heads, and the norm ε everywhere.
func TestLlamaModelParams(t *testing.T) {
	cfg := llamaTestConfig()
	m, err := NewModel(gorgonia.NewGraph(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]int{"embed.tok": {11, 32}, "final_norm.g": {32}}
	for i := range 2 {
		p := fmt.Sprintf("block%d.", i)
		for name, shape := range map[string][]int{
			"norm1.g": {32}, "norm2.g": {32}, "attn.Wq": {32, 32}, "attn.Wk": {32, 16}, "attn.Wv": {32, 16},
			"attn.Wo": {32, 32}, "ffn.W1": {32, 64}, "ffn.W3": {32, 64}, "ffn.W2": {64, 32},
		} {
			want[p+name] = shape
		}
	}
	params := m.Params()
	if len(params) != len(want) {
		t.Errorf("%d parameters, want %d", len(params), len(want))
	}
	for _, p := range params {
		if s, ok := want[p.Name()]; !ok || !p.Shape().Eq(tensor.Shape(s)) {
			t.Errorf("parameter %s %v, want %v", p.Name(), p.Shape(), s)
		}
	}
	if m.Pos != nil || m.Head != nil {
		t.Error("a model with rotary positions and tied embeddings has Pos or Head")
	}
	if got := m.Config(); got.KVHeads != 2 || got.NormEps != 1e-6 || got.Norm != NormRMS {
		t.Errorf("Config() = %+v", got)
	}
	norms := []Normalizer{m.Final}
	for _, bl := range m.Blocks {
		norms = append(norms, bl.Norm1, bl.Norm2)
	}
	for _, n := range norms {
		if eps := n.(*RMSNorm).Eps; eps != 1e-6 {
			t.Errorf("a norm has ε %g, want 1e-6", eps)
		}
	}
	// Defaults: KVHeads 0 means Heads, NormEps 0 DefaultNormEps.
	c := cfg
	c.KVHeads, c.NormEps = 0, 0
	if m, err = NewModel(gorgonia.NewGraph(), c); err != nil {
		t.Fatal(err)
	}
	if got := m.Config(); got.KVHeads != 4 || got.NormEps != DefaultNormEps || !m.Blocks[0].Attn.Wk.Shape().Eq(tensor.Shape{32, 32}) {
		t.Errorf("defaults: Config() = %+v, Wk %v", got, m.Blocks[0].Attn.Wk.Shape())
	}
}

// TestLlamaPlans runs a model with every Llama option under plans: a
// passthrough plan (every site, the key/value sites included, and
// CheckFinite) gives exactly the logits of no plan; a plan quantizing the
// tied head gives the same logits in an Evaluator (which quantizes the
// embedding's copy once) and in a Trainer's graph (which quantizes it at
// every run), and leaves the embedding lookup unquantized; a learnable
// per-channel head learns one scale per vocabulary entry.
func TestLlamaPlans(t *testing.T) {
	cfg := llamaTestConfig()
	w := seededWeights(t, cfg, 4)
	batch := reverseTask(rand.New(rand.NewPCG(1, 1)), 4, 3)
	want, _, _ := evalLogits(t, cfg, w, nil, []Batch{batch})
	pp := PassthroughPlan()
	pp.CheckFinite = true
	got, _, stats := evalLogits(t, cfg, w, pp, []Batch{batch})
	if !slices.Equal(got, want) {
		t.Error("a passthrough plan changed the logits")
	}
	// 2 blocks × (7 weights + in, hidden, keys, values, scores, probs, out) + the head
	if len(stats) != 2*14+1 {
		t.Errorf("%d sites, want 29", len(stats))
	}
	for name, n := range map[string]int64{
		"block0.attn.keys": 4 * 2 * 8 * 6, "block1.attn.values": 4 * 2 * 6 * 8, "head.W": 11 * 32,
	} {
		if st := stats[name]; st.Elements != n {
			t.Errorf("%s: %d elements, want %d", name, st.Elements, n)
		}
	}

	int4 := &Plan{Head: &Quant{Spec: quantize.Spec{Format: quantize.Int4, Granularity: quantize.PerChannel, Axis: 0, Symmetric: true}}}
	evLogits, _, _ := evalLogits(t, cfg, w, int4, []Batch{batch})
	trLogits, _, _ := programLogits(t, cfg, w, int4, batch)
	if !slices.Equal(evLogits, trLogits) {
		t.Error("the quantized tied head gives other logits in an Evaluator than in a Trainer's graph")
	}
	if slices.Equal(evLogits, want) {
		t.Error("int4 head: logits unchanged")
	}
	ev, err := NewEvaluator(cfg, w, 4, WithPlan(int4))
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	if !equalDense(ev.Model().Tok.Value().(*tensor.Dense), w["embed.tok"]) {
		t.Error("quantizing the tied head quantized the embedding lookup's table too")
	}

	lsq := int4.Clone()
	lsq.Head.Learnable = &quantize.LSQConfig{}
	tr, err := NewTrainer(cfg, w, TrainConfig{Batch: 4, LearnRate: 1e-2}, WithPlan(lsq))
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if _, err := tr.Step(batch); err != nil {
		t.Fatal(err)
	}
	tw, err := tr.Weights()
	if err != nil {
		t.Fatal(err)
	}
	s, ok := tw[LearnableScaleName("head.W", false)]
	if !ok || !s.Shape().Eq(tensor.Shape{11}) {
		t.Fatalf("learnable tied head: scale parameter %v, want 11 scales (one per output channel)", s)
	}
	if _, err := NewEvaluator(cfg, tw, 4, WithPlan(lsq)); err != nil {
		t.Errorf("evaluating the learned scales: %v", err)
	}
}

// TestKVSites checks the layouts of the key and value sites through
// Calibrate: with per-group static int8 specs, keys in groups of seq
// (KIVI's per-channel keys) get one scale per sequence, key/value head and
// channel, and values in groups of Dh (per-token values) one per sequence,
// key/value head and token, each max|x|/127 of the keys (after the
// rotation) and values of block 0, computed here by hand from the weights.
func TestKVSites(t *testing.T) {
	cfg := llamaTestConfig()
	cfg.Dtype = tensor.Float64
	const batch, seq, kv, dh, d = 2, 6, 2, 8, 32
	w := seededWeights(t, cfg, 5)
	b := reverseTask(rand.New(rand.NewPCG(2, 2)), batch, 3)
	static := func(group int) *Quant {
		return &Quant{Spec: quantize.Spec{Format: quantize.Int8, Granularity: quantize.PerGroup, GroupSize: group, Symmetric: true}, Static: true}
	}
	cal, err := Calibrate(cfg, w, &Plan{AttnKeys: static(seq), AttnValues: static(dh)}, []Batch{b})
	if err != nil {
		t.Fatal(err)
	}
	keys, values := cal.Sites["block0.attn.keys"].Spec.Scale, cal.Sites["block0.attn.values"].Spec.Scale
	if len(keys) != batch*kv*dh || len(values) != batch*kv*seq {
		t.Fatalf("%d key and %d value scales, want %d and %d", len(keys), len(values), batch*kv*dh, batch*kv*seq)
	}
	// Block 0 by hand: k = rope(rmsnorm(x)·Wk), v = rmsnorm(x)·Wv.
	tok, g := w["embed.tok"].Float64s(), w["block0.norm1.g"].Float64s()
	wk, wv := w["block0.attn.Wk"].Float64s(), w["block0.attn.Wv"].Float64s()
	keyMax := make([]float64, batch*kv*dh)  // [b][head][channel]
	valMax := make([]float64, batch*kv*seq) // [b][head][t]
	for s := range batch {
		for pos := range seq {
			x := tok[b.Tokens[s*seq+pos]*d : (b.Tokens[s*seq+pos]+1)*d]
			var ss float64
			for _, v := range x {
				ss += v * v
			}
			r := 1 / math.Sqrt(ss/d+cfg.NormEps)
			k, v := make([]float64, kv*dh), make([]float64, kv*dh)
			for j := range kv * dh {
				for i := range d {
					h := x[i] * r * g[i]
					k[j] += h * wk[i*kv*dh+j]
					v[j] += h * wv[i*kv*dh+j]
				}
			}
			for head := range kv {
				kh := k[head*dh : (head+1)*dh]
				for i := range dh / 2 {
					angle := float64(pos) / math.Pow(cfg.RoPETheta, float64(2*i)/dh)
					c, sn := math.Cos(angle), math.Sin(angle)
					kh[i], kh[i+dh/2] = kh[i]*c-kh[i+dh/2]*sn, kh[i+dh/2]*c+kh[i]*sn
				}
				for c := range dh {
					at := (s*kv+head)*dh + c
					keyMax[at] = math.Max(keyMax[at], math.Abs(kh[c]))
					at = (s*kv+head)*seq + pos
					valMax[at] = math.Max(valMax[at], math.Abs(v[head*dh+c]))
				}
			}
		}
	}
	for name, c := range map[string]struct{ got, max []float64 }{"keys": {keys, keyMax}, "values": {values, valMax}} {
		for i, s := range c.got {
			if want := c.max[i] / 127; math.Abs(s-want) > 1e-12*want {
				t.Errorf("%s: scale %d = %.15g, want max|x|/127 = %.15g", name, i, s, want)
			}
		}
	}
}
