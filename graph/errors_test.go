package graph

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/actq/actq/internal/errtest"
	"github.com/actq/actq/ops"
	"github.com/actq/actq/quantize"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestErrors is the audit of graph's exported constructors and functions:
// every bad config, node, weight set, plan and batch returns an
// error wrapping the right sentinel and naming the function and the
// argument or field; valid inputs beside them succeed; nothing panics.
func TestErrors(t *testing.T) {
	var cases []errtest.Case
	add := func(fn, name, arg string, want error, call func() error) {
		cases = append(cases, errtest.Case{Name: name, Fn: fn, Arg: arg, Want: want, Call: call})
	}
	g := gorgonia.NewGraph()
	mat := func(name string, dt tensor.Dtype, shape ...int) *gorgonia.Node {
		return gorgonia.NewTensor(g, dt, len(shape), gorgonia.WithShape(shape...), gorgonia.WithName(name))
	}
	newG := gorgonia.NewGraph

	// Layer constructors: configs.
	ffn := func(cfg FFNConfig, opts ...Option) func() error {
		return func() error { _, err := NewFFN(newG(), "f", cfg, opts...); return err }
	}
	const nf = "graph.NewFFN"
	good := FFNConfig{DModel: 8, DHidden: 16, Activation: "gelu"}
	add(nf, "valid", "", nil, ffn(good))
	add(nf, "zero DModel", "DModel", ErrConfig, ffn(FFNConfig{DHidden: 16, Activation: "gelu"}))
	add(nf, "negative DHidden", "DHidden", ErrConfig, ffn(FFNConfig{DModel: 8, DHidden: -1, Activation: "gelu"}))
	add(nf, "unknown activation", "swish7", ErrConfig, ffn(FFNConfig{DModel: 8, DHidden: 16, Activation: "swish7"}))
	add(nf, "int dtype", "dtype", ErrConfig, ffn(FFNConfig{DModel: 8, DHidden: 16, Activation: "gelu", Dtype: tensor.Int}))
	add(nf, "nil graph", "graph", ErrConfig, func() error { _, err := NewFFN(nil, "f", good); return err })
	add(nf, "weights missing", "f.W1", ErrConfig, ffn(good, WithWeights(Weights{})))
	att := func(cfg AttentionConfig) func() error {
		return func() error { _, err := NewAttention(newG(), "a", cfg); return err }
	}
	const na = "graph.NewAttention"
	add(na, "valid", "", nil, att(AttentionConfig{DModel: 8, Heads: 2}))
	add(na, "heads not dividing", "Heads", ErrConfig, att(AttentionConfig{DModel: 8, Heads: 3}))
	add(na, "zero heads", "Heads", ErrConfig, att(AttentionConfig{DModel: 8}))
	add(na, "float16 dtype", "dtype", ErrConfig, att(AttentionConfig{DModel: 8, Heads: 2, Dtype: tensor.Uint16}))
	const nb = "graph.NewBlock"
	add(nb, "unknown norm", "batch", ErrConfig, func() error {
		_, err := NewBlock(newG(), "b", BlockConfig{DModel: 8, Heads: 2, DHidden: 16, Activation: "relu", Norm: "batch"})
		return err
	})
	const nl = "graph.NewLinear"
	add(nl, "zero out", "out", ErrConfig, func() error { _, err := NewLinear(newG(), "l", 4, 0, true, tensor.Float32); return err })
	add(nl, "duplicate name", "l.W", ErrConfig, func() error {
		gg := newG()
		if _, err := NewLinear(gg, "l", 4, 2, true, tensor.Float32); err != nil {
			return err
		}
		_, err := NewLinear(gg, "l", 4, 2, true, tensor.Float32)
		return err
	})
	add("graph.NewRMSNorm", "zero width", "d", ErrConfig, func() error { _, err := NewRMSNorm(newG(), "n", 0, 0, tensor.Float32); return err })
	add("graph.NewLayerNorm", "bool dtype", "dtype", ErrConfig, func() error { _, err := NewLayerNorm(newG(), "n", 4, 0, tensor.Bool); return err })

	// Forward methods: nodes.
	f32, err := NewFFN(g, "f32", good)
	if err != nil {
		t.Fatal(err)
	}
	const ff = "graph.FFN(f32).Forward"
	fwd := func(x *gorgonia.Node) func() error { return func() error { _, err := f32.Forward(x); return err } }
	add(ff, "valid", "", nil, fwd(mat("x", tensor.Float32, 3, 8)))
	add(ff, "nil x", "x", ops.ErrNilNode, fwd(nil))
	add(ff, "float64 x", "x", ops.ErrDtype, fwd(mat("x64", tensor.Float64, 3, 8)))
	add(ff, "rank 3 x", "x", ops.ErrShape, fwd(mat("x3", tensor.Float32, 1, 3, 8)))
	add(ff, "width 7", "x", ops.ErrShape, fwd(mat("x7", tensor.Float32, 3, 7)))
	a32, err := NewAttention(g, "a32", AttentionConfig{DModel: 8, Heads: 2, Causal: true})
	if err != nil {
		t.Fatal(err)
	}
	const af = "graph.Attention(a32).Forward"
	afwd := func(x *gorgonia.Node) func() error { return func() error { _, err := a32.Forward(x); return err } }
	add(af, "valid", "", nil, afwd(mat("ax", tensor.Float32, 2, 5, 8)))
	add(af, "nil x", "x", ops.ErrNilNode, afwd(nil))
	add(af, "rank 2 x", "x", ops.ErrShape, afwd(mat("ax2", tensor.Float32, 5, 8)))
	add(af, "int x", "x", ops.ErrDtype, afwd(mat("axi", tensor.Int, 2, 5, 8)))
	const ce = "graph.CrossEntropy"
	add(ce, "nil logits", "logits", ops.ErrNilNode, func() error { _, err := CrossEntropy(nil, mat("t", tensor.Float32, 3, 4)); return err })
	add(ce, "shapes differ", "targets", ops.ErrShape, func() error {
		_, err := CrossEntropy(mat("l1", tensor.Float32, 3, 4), mat("t1", tensor.Float32, 3, 5))
		return err
	})
	add(ce, "dtypes differ", "targets", ops.ErrDtype, func() error {
		_, err := CrossEntropy(mat("l2", tensor.Float32, 3, 4), mat("t2", tensor.Float64, 3, 4))
		return err
	})

	// Models, trainers, evaluators, plans, weights.
	cfg := Config{Vocab: 5, SeqLen: 4, DModel: 8, Heads: 2, DHidden: 16, Layers: 1, Activation: "silu"}
	const nm = "graph.NewModel"
	bad := cfg
	bad.Vocab = 0
	add(nm, "zero vocab", "Vocab", ErrConfig, func() error { _, err := NewModel(newG(), bad); return err })
	add("graph.Config", "zero layers", "Layers", ErrConfig, func() error { c := cfg; c.Layers = 0; return c.Validate() })
	// The Llama-family options, alone and combined.
	llama := Config{Vocab: 5, SeqLen: 4, DModel: 8, Heads: 4, DHidden: 16, Layers: 1, Activation: "silu", Gated: true,
		KVHeads: 2, RoPETheta: 1e4, NoBias: true, NormEps: 1e-6, TieEmbeddings: true}
	for _, c := range []struct {
		name, arg string
		want      error
		edit      func(*Config)
	}{
		{"llama", "", nil, func(*Config) {}},
		{"multi-query", "", nil, func(c *Config) { c.KVHeads = 1 }},
		{"KVHeads = Heads", "", nil, func(c *Config) { c.KVHeads = 4 }},
		{"tied with learned positions", "", nil, func(c *Config) { c.RoPETheta = 0 }},
		{"learned positions, odd head size", "", nil, func(c *Config) { c.RoPETheta, c.DModel = 0, 12 }},
		{"biases with RoPE and GQA", "", nil, func(c *Config) { c.NoBias = false }},
		{"no bias, not gated, LayerNorm", "", nil, func(c *Config) { c.Gated, c.Norm = false, NormLayer }},
		{"KVHeads not dividing", "KVHeads", ErrConfig, func(c *Config) { c.KVHeads = 3 }},
		{"KVHeads above Heads", "KVHeads", ErrConfig, func(c *Config) { c.KVHeads = 8 }},
		{"negative KVHeads", "KVHeads", ErrConfig, func(c *Config) { c.KVHeads = -2 }},
		{"negative RoPETheta", "RoPETheta", ErrConfig, func(c *Config) { c.RoPETheta = -1 }},
		{"NaN RoPETheta", "RoPETheta", ErrConfig, func(c *Config) { c.RoPETheta = math.NaN() }},
		{"infinite RoPETheta", "RoPETheta", ErrConfig, func(c *Config) { c.RoPETheta = math.Inf(1) }},
		{"RoPE with an odd head size", "RoPETheta", ErrConfig, func(c *Config) { c.DModel = 12 }},
		{"negative NormEps", "NormEps", ErrConfig, func(c *Config) { c.NormEps = -1e-6 }},
		{"NaN NormEps", "NormEps", ErrConfig, func(c *Config) { c.NormEps = math.NaN() }},
		{"infinite NormEps", "NormEps", ErrConfig, func(c *Config) { c.NormEps = math.Inf(1) }},
	} {
		lc := llama
		c.edit(&lc)
		add("graph.Config", c.name, c.arg, c.want, lc.Validate)
		add(nm, c.name, c.arg, c.want, func() error { _, err := NewModel(newG(), lc); return err })
	}
	add(na, "KVHeads not dividing", "KVHeads", ErrConfig, att(AttentionConfig{DModel: 8, Heads: 4, KVHeads: 3}))
	add(na, "RoPE with an odd head size", "RoPETheta", ErrConfig, att(AttentionConfig{DModel: 6, Heads: 2, RoPETheta: 1e4}))
	add(na, "valid GQA with RoPE", "", nil, att(AttentionConfig{DModel: 8, Heads: 4, KVHeads: 2, RoPETheta: 1e4}))
	tr, err := NewTrainer(cfg, nil, TrainConfig{Batch: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	const ts = "graph.Trainer.Step"
	okBatch := Batch{Tokens: []int{0, 1, 2, 3, 4, 3, 2, 1}, Targets: []int{1, 2, 3, Ignore, 3, 2, 1, 0}}
	add(ts, "valid", "", nil, func() error { _, err := tr.Step(okBatch); return err })
	add(ts, "too few tokens", "Tokens", ops.ErrShape, func() error { _, err := tr.Step(Batch{Tokens: []int{1}, Targets: []int{1}}); return err })
	add(ts, "token out of range", "Tokens", ops.ErrValue, func() error {
		_, err := tr.Step(Batch{Tokens: []int{0, 1, 2, 9, 0, 1, 2, 3}, Targets: okBatch.Targets})
		return err
	})
	add(ts, "target out of range", "Targets", ops.ErrValue, func() error {
		_, err := tr.Step(Batch{Tokens: okBatch.Tokens, Targets: []int{1, 2, 3, 7, 3, 2, 1, 0}})
		return err
	})
	add("graph.NewTrainer", "zero batch", "TrainConfig.Batch", ErrConfig, func() error { _, err := NewTrainer(cfg, nil, TrainConfig{}); return err })
	const ne = "graph.NewEvaluator"
	add(ne, "nil weights", "weights", ErrConfig, func() error { _, err := NewEvaluator(cfg, nil, 2); return err })
	add(ne, "weights of another model", "embed.tok", ErrConfig, func() error {
		_, err := NewEvaluator(cfg, Weights{"x": tensor.New(tensor.WithShape(1), tensor.WithBacking([]float32{1}))}, 2)
		return err
	})
	w, err := tr.Weights()
	if err != nil {
		t.Fatal(err)
	}
	add(ne, "negative batch", "batch", ErrConfig, func() error { _, err := NewEvaluator(cfg, w, -1); return err })
	wrongShape := w.Clone()
	wrongShape["head.W"] = tensor.New(tensor.WithShape(3, 3), tensor.WithBacking(make([]float32, 9)))
	add(ne, "weight of the wrong shape", "head.W", ErrConfig, func() error { _, err := NewEvaluator(cfg, wrongShape, 2); return err })
	badPlan := &Plan{FFNHidden: &Quant{Spec: quantize.Spec{Format: quantize.Int8, Scale: []float64{-1}}}}
	add(ne, "plan with a negative scale", "Scale", quantize.ErrSpec, func() error { _, err := NewEvaluator(cfg, w, 2, WithPlan(badPlan)); return err })
	ev, err := NewEvaluator(cfg, w, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	add("graph.Evaluator.Eval", "targets too short", "Targets", ops.ErrShape, func() error {
		_, err := ev.Eval(Batch{Tokens: okBatch.Tokens, Targets: okBatch.Targets[:3]})
		return err
	})
	const cal = "graph.Calibrate"
	static := &Plan{FFNHidden: &Quant{Spec: quantize.Spec{Format: quantize.Int4, Symmetric: true}, Static: true}}
	add(cal, "valid", "", nil, func() error { _, err := Calibrate(cfg, w, static, []Batch{okBatch}); return err })
	add(cal, "no batches", "batches", ErrConfig, func() error { _, err := Calibrate(cfg, w, static, nil); return err })
	add(cal, "no static site", "plan", ErrConfig, func() error { _, err := Calibrate(cfg, w, PassthroughPlan(), []Batch{okBatch}); return err })
	add("graph.TierByName", "unknown tier", "int3", ErrConfig, func() error { _, err := TierByName("int3"); return err })
	add("graph.DecodeWeights", "not gob", "in", ops.ErrValue, func() error { _, err := DecodeWeights(strings.NewReader("not gob")); return err })
	add("graph.DecodeWeights", "valid", "", nil, func() error {
		var buf bytes.Buffer
		if err := w.Encode(&buf); err != nil {
			return err
		}
		_, err := DecodeWeights(&buf)
		return err
	})
	add("graph.Collect", "nil node", "node", ops.ErrNilNode, func() error { _, err := Collect(nil); return err })
	add("graph.Collect", "node without a value", "novalue", ops.ErrValue, func() error { _, err := Collect(mat("novalue", tensor.Float32, 2)); return err })

	counts := errtest.Run(t, cases)
	if counts.Panics != 0 {
		t.Errorf("%d panics", counts.Panics)
	}
}
