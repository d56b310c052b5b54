package graph

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/actq/actq/internal/infer"
	"github.com/actq/actq/quantize"
)

// TestGeneratorLlamaGoldens: greedy continuations of the four test
// checkpoints (GQA, MHA with tied bf16 weights, GQA in f16, MQA tied)
// equal PyTorch's, token for token; and, for two of them, under every
// standard tier, the Evaluator's argmax and logits at every step.
func TestGeneratorLlamaGoldens(t *testing.T) {
	for _, name := range llamaCheckpoints {
		cfg, w, lg, _ := loadLlama(t, name)
		g := newGen(t, cfg, w)
		for _, run := range lg.greedy {
			got, err := g.Generate(run.Prompt, len(run.Tokens), Sampling{})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, run.Tokens) {
				t.Errorf("%s: prompt %v: %v, PyTorch's %v", name, run.Prompt, got, run.Tokens)
			}
		}
		if name != "gqa-f32" && name != "mqa-f32-tied" || raceEnabled {
			continue
		}
		run := lg.greedy[0]
		cfg.SeqLen = 32 // the Evaluator's batch: the prefixes, padded (a multiple of 16: genExact)
		for _, plan := range tierPlans(t, cfg, w) {
			checkGreedy(t, name, cfg, w, plan, run.Prompt, len(run.Tokens))
		}
	}
}

// llamaConfigs are Llama-family variants of today's model: rotary
// positions with GQA and MQA, no biases, tied embeddings, the norm ε; and
// the options with learned positions.
var llamaConfigs = []Config{
	{Vocab: 40, SeqLen: 32, DModel: 32, Heads: 4, KVHeads: 2, DHidden: 64, Layers: 2, Activation: "silu", Gated: true,
		NoBias: true, RoPETheta: 1e4, NormEps: 1e-6, TieEmbeddings: true},
	{Vocab: 36, SeqLen: 32, DModel: 64, Heads: 4, KVHeads: 1, DHidden: 64, Layers: 1, Activation: "gelu", RoPETheta: 500, Norm: NormLayer},
	{Vocab: 30, SeqLen: 32, DModel: 32, Heads: 2, KVHeads: 1, DHidden: 32, Layers: 2, Activation: "relu", NoBias: true, TieEmbeddings: true, NormEps: 1e-3},
}

// TestGeneratorLlamaConfigs: the Llama options under every standard tier:
// greedy tokens and logits equal the Evaluator's.
func TestGeneratorLlamaConfigs(t *testing.T) {
	checkConfigs(t, "llama config", llamaConfigs, 50, []int{2, 7, 1, 8})
}

// kvPlan returns a plan with keys and values sites (nil: none) on top of
// base (nil: none).
func kvPlan(name string, base *Plan, keys, values *Quant) *Plan {
	p := &Plan{}
	if base != nil {
		p = base.Clone()
	}
	p.Name, p.AttnKeys, p.AttnValues = name, keys, values
	return p
}

// TestGeneratorKVTokenSites: key/value sites whose scales each cover one
// position carry over to the cache exactly: greedy tokens and logits equal
// the Evaluator's (two layers, GQA, RoPE).
func TestGeneratorKVTokenSites(t *testing.T) {
	cfg := llamaConfigs[0]
	w := genWeights(t, cfg, 60)
	q := func(s quantize.Spec) *Quant { return &Quant{Spec: s} }
	w8a8 := Tiers()[4].Plan(cfg.SeqLen)
	for _, p := range []*Plan{
		kvPlan("int8 per token", nil,
			q(quantize.Spec{Format: quantize.Int8, Granularity: quantize.PerChannel, Axis: 3, Symmetric: true}),
			q(quantize.Spec{Format: quantize.Int8, Granularity: quantize.PerRow, Symmetric: true})),
		kvPlan("int4 value groups, fp16 keys, w8a8", w8a8,
			q(quantize.Spec{Format: quantize.FP16}),
			q(quantize.Spec{Format: quantize.Int4, Granularity: quantize.PerGroup, GroupSize: 4, Symmetric: true})),
		kvPlan("fp8 per token, affine values per token across heads", nil,
			q(quantize.Spec{Format: quantize.FP8E4M3, Granularity: quantize.PerChannel, Axis: -1, DynamicFloatScale: true}),
			q(quantize.Spec{Format: quantize.UInt8, Granularity: quantize.PerChannel, Axis: 2})),
		kvPlan("fixed per tensor and per head", nil,
			q(quantize.Spec{Format: quantize.Int8, Scale: []float64{0.02}, Symmetric: true}),
			q(quantize.Spec{Format: quantize.Int8, Granularity: quantize.PerChannel, Axis: 1, Scale: []float64{0.01, 0.02}, Symmetric: true})),
		kvPlan("passthrough", nil, Passthrough(), Passthrough()),
	} {
		checkGreedy(t, "kv", cfg, w, p, []int{5, 3}, genSteps+3)
	}
}

// exactLast returns the Evaluator's logits at the last position of seq,
// run as one sequence of exactly its length (rotary positions: SeqLen is
// free), so that scales over the whole sequence see these tokens only.
func exactLast(t *testing.T, cfg Config, w Weights, plan *Plan, seq []int) []float64 {
	t.Helper()
	cfg.SeqLen = len(seq)
	rows := evaluatorRows(t, cfg, w, plan, seq, []int{len(seq)})
	return rows[0]
}

// TestGeneratorKVSpanningSites: keys with scales over positions (KIVI's
// per channel, PerRow on Kᵀ; groups of 16 tokens; a per-tensor dynamic
// scale on the values). A prefill computes what the full pass computes, in
// every layer: equal logits at lengths of whole score blocks (genExact).
// Decoding requantizes the cache at every step: in a one-layer model the
// step computes the full pass over the sequence so far (greedy tokens are
// the argmax of an Evaluator run on exactly that sequence); deeper layers
// read keys and values earlier steps computed under earlier scales (see
// kvHook), which the test measures and logs.
func TestGeneratorKVSpanningSites(t *testing.T) {
	q := func(s quantize.Spec) *Quant { return &Quant{Spec: s} }
	plans := []*Plan{
		kvPlan("int4 keys per channel", nil, q(quantize.Spec{Format: quantize.Int4, Granularity: quantize.PerRow, Symmetric: true}), nil),
		kvPlan("int8 keys per channel, affine", nil, q(quantize.Spec{Format: quantize.Int8, Granularity: quantize.PerRow}), nil),
		kvPlan("int4 keys in groups of 16 tokens", nil, q(quantize.Spec{Format: quantize.Int4, Granularity: quantize.PerGroup, GroupSize: 16, Symmetric: true}), nil),
		kvPlan("int8 values per tensor", nil, nil, q(quantize.Spec{Format: quantize.Int8, Symmetric: true})),
	}
	seq := []int{4, 9, 2, 7, 7, 1, 0, 3, 8, 5, 6, 2, 9, 9, 4, 1, 3, 3, 7, 0, 2, 5, 8, 1, 6, 4, 4, 9, 0, 2, 7, 3, 1, 5, 8, 6, 2, 0, 9, 3, 7, 1, 4, 6, 8, 2, 5, 0}
	for _, cfg := range []Config{llamaConfigs[1], llamaConfigs[0]} { // 1 and 2 layers
		w := genWeights(t, cfg, 61)
		for _, p := range plans {
			what := fmt.Sprintf("%d layers, %s", cfg.Layers, p.Name)
			g := newGen(t, cfg, w, WithPlan(p), withProducts(infer.ProductsGraph)) // the Evaluator's arithmetic
			for _, n := range []int{16, 32, 48} {
				got, err := g.Logits(seq[:n], []int{n - 1})
				if err != nil {
					t.Fatal(err)
				}
				if j := firstDiff(got, exactLast(t, cfg, w, p, seq[:n])); j >= 0 {
					t.Errorf("%s: prefill of %d tokens: logit %d differs from the full pass", what, n, j)
				}
			}
			prompt := seq[:3]
			out, err := g.Generate(prompt, 20, Sampling{})
			if err != nil {
				t.Fatal(err)
			}
			full := append(slices.Clone(prompt), out...)
			worst := 0.0
			for i, tok := range out {
				n := len(prompt) + i
				if g := p.AttnKeys; g != nil && g.Spec.Granularity == quantize.PerGroup && n%g.Spec.GroupSize != 0 {
					continue // the graph needs whole groups of tokens
				}
				want := exactLast(t, cfg, w, p, full[:n])
				a := argmaxRow(want)
				// The last bits of a step's logits may differ from the
				// full pass's (rows of other lengths than whole score
				// blocks): a different token is allowed only at a near
				// tie.
				if cfg.Layers == 1 && a != tok && want[a]-want[tok] > 1e-4*math.Abs(want[a]) {
					t.Errorf("%s: step %d generated %d, the full pass's argmax is %d (margin %g)", what, i, tok, a, want[a]-want[tok])
					break
				}
				if a != tok {
					worst = math.Max(worst, want[a]-want[tok])
				}
			}
			// How far a step's logits are from the full pass's: 31 tokens
			// prefilled, the 32nd decoded.
			st := g.eng.NewState(0)
			last := make([]float32, cfg.Vocab)
			if err := st.Forward(seq[:31], last, []int{30}); err != nil {
				t.Fatal(err)
			}
			if err := st.Forward(seq[31:32], last, []int{0}); err != nil {
				t.Fatal(err)
			}
			want := exactLast(t, cfg, w, p, seq[:32])
			dev, scale := 0.0, 0.0
			for j, v := range want {
				dev, scale = math.Max(dev, math.Abs(float64(last[j])-v)), math.Max(scale, math.Abs(v))
			}
			if cfg.Layers == 1 && dev > 1e-5*scale {
				t.Errorf("%s: a decoding step's logits differ from the full pass by %.3g·max|logit|", what, dev/scale)
			}
			t.Logf("%s: the 32nd token decoded: logits within %.3g·max|logit| of the full pass; greedy left its argmax by up to %.3g", what, dev/scale, worst)
		}
	}
}

// TestGeneratorKVRefused: fixed key/value scales that belong to positions
// are refused.
func TestGeneratorKVRefused(t *testing.T) {
	cfg := llamaConfigs[0]
	w := genWeights(t, cfg, 62)
	for _, p := range []*Plan{
		{AttnKeys: &Quant{Spec: quantize.Spec{Granularity: quantize.PerChannel, Axis: 3, Scale: []float64{1}}}},
		{AttnValues: &Quant{Spec: quantize.Spec{Granularity: quantize.PerRow, Scale: []float64{1}}}},
	} {
		_, err := NewGenerator(cfg, w, WithPlan(p))
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "belong to token positions") {
			t.Errorf("%+v: %v", p, err)
		}
	}
}
