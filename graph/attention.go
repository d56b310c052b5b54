package graph

import (
	"fmt"
	"math"

	"github.com/actq/actq/internal/layerops"
	"github.com/actq/actq/ops"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// AttentionConfig configures multi-head self-attention.
type AttentionConfig struct {
	DModel, Heads int
	Causal        bool         // position i attends to positions ≤ i only
	Dtype         tensor.Dtype // Float32 when zero
}

// Attention is multi-head self-attention without biases (Vaswani et al.
// 2017):
//
//	Q = x·Wq, K = x·Wk, V = x·Wv
//	P_h = Softmax(Q_h·K_hᵀ/√Dh + M)         head h: columns [h·Dh, (h+1)·Dh), Dh = DModel/Heads
//	y = concat_h(P_h·V_h)·Wo
//
// where M is 0, or −Inf above the diagonal when Causal. Softmax is actq's
// (ops.Softmax; with Causal, layerops.CausalSoftmax, the same kernel over
// each row's visible scores only): a masked entry gets exactly 0
// probability and 0 gradient.
//
// Its parameters are input nodes named name+".Wq", ".Wk", ".Wv", ".Wo",
// each (DModel, DModel); Gorgonia's Let can set them.
type Attention struct {
	Wq, Wk, Wv, Wo *gorgonia.Node

	cfg  AttentionConfig
	name string
	b    *builder
}

// NewAttention adds an Attention layer's parameters to g. The weights start
// uniform in ±1/√DModel, seeded (WithSeed) or given (WithWeights).
//
// It returns an error wrapping ErrConfig for a nil graph, DModel or Heads
// ≤ 0, DModel not divisible by Heads, a dtype other than Float32 and
// Float64, or a parameter name already used in g.
func NewAttention(g *gorgonia.ExprGraph, name string, cfg AttentionConfig, opts ...Option) (*Attention, error) {
	return construct("graph.NewAttention", g, cfg.Dtype, opts, func(b *builder) (*Attention, error) {
		return newAttention(b, name, cfg)
	})
}

func newAttention(b *builder, name string, cfg AttentionConfig) (*Attention, error) {
	if err := positive(name, "DModel", cfg.DModel, "Heads", cfg.Heads); err != nil {
		return nil, err
	}
	if cfg.DModel%cfg.Heads != 0 {
		return nil, fmt.Errorf("%s: DModel %d is not divisible by Heads %d: %w", name, cfg.DModel, cfg.Heads, ErrConfig)
	}
	cfg.Dtype = b.dt
	a := &Attention{cfg: cfg, name: name, b: b}
	d := cfg.DModel
	for _, p := range []struct {
		n    **gorgonia.Node
		name string
	}{{&a.Wq, ".Wq"}, {&a.Wk, ".Wk"}, {&a.Wv, ".Wv"}, {&a.Wo, ".Wo"}} {
		var err error
		if *p.n, err = b.param(name+p.name, initUniform, d, d); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// Config returns the layer's configuration (with its dtype filled in).
func (a *Attention) Config() AttentionConfig { return a.cfg }

// Params returns Wq, Wk, Wv and Wo.
func (a *Attention) Params() gorgonia.Nodes { return gorgonia.Nodes{a.Wq, a.Wk, a.Wv, a.Wo} }

// Forward returns the attention output for x (batch, seq, DModel): (batch,
// seq, DModel). It returns an error wrapping ops.ErrNilNode for a nil x,
// ops.ErrDtype for another dtype than the layer's and ops.ErrShape for
// another rank than 3 or a last dimension other than DModel.
//
// Under a quantization plan (WithPlan) the sites are name+".scores"
// (Q·Kᵀ/√Dh + mask: masked entries reach it as −Inf, which quantize's
// dynamic scales ignore and its statistics count as Inf; the softmax after
// it reads only the visible scores, so they keep exactly 0 probability),
// name+".probs" (P,
// before P·V) and the weights by name.
func (a *Attention) Forward(x *gorgonia.Node) (*gorgonia.Node, error) {
	fn := "graph.Attention(" + a.name + ").Forward"
	if err := checkInput(fn, "x", x, a.b.dt, -1, -1, a.cfg.DModel); err != nil {
		return nil, err
	}
	s := x.Shape()
	batch, seq := s[0], s[1]
	x2, err := layerops.ReshapeCopy(x, batch*seq, a.cfg.DModel)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	y, err := a.forward(x2, batch, seq)
	if err == nil {
		y, err = gorgonia.Reshape(y, tensor.Shape{batch, seq, a.cfg.DModel})
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	return y, nil
}

// forward is Forward on the rows of x (batch·seq, DModel), sequence by
// sequence; it returns (batch·seq, DModel).
func (a *Attention) forward(x *gorgonia.Node, batch, seq int) (*gorgonia.Node, error) {
	b, d, heads := a.b, a.cfg.DModel, a.cfg.Heads
	dh := d / heads
	// split returns x·W as (batch, heads, seq, Dh).
	split := func(w *gorgonia.Node) (*gorgonia.Node, error) {
		m, err := affine(b, x, w, nil, SiteWeight)
		if err != nil {
			return nil, err
		}
		if heads == 1 { // the same memory order: a view is enough
			return gorgonia.Reshape(m, tensor.Shape{batch, 1, seq, dh})
		}
		return layerops.SplitHeads(m, batch, heads)
	}
	q, err := split(a.Wq)
	if err != nil {
		return nil, err
	}
	k, err := split(a.Wk)
	if err != nil {
		return nil, err
	}
	v, err := split(a.Wv)
	if err != nil {
		return nil, err
	}
	// With Causal, the products skip the tiles above the diagonal: the
	// scores (batch, heads, seq, seq) are computed where the queries see,
	// and the probabilities' gradient likewise unless a probs site, which
	// would read all of it, is in between.
	hasSite := func(name string, kind SiteKind) bool { return b.q != nil && b.q.plan.For(name, kind) != nil }
	var s *gorgonia.Node
	if a.cfg.Causal {
		s, err = layerops.CausalScores(q, k, 1/math.Sqrt(float64(dh)), 0, 0)
	} else {
		s, err = layerops.ScaledBMM(q, k, false, true, 1/math.Sqrt(float64(dh)))
	}
	if err != nil {
		return nil, err
	}
	// The scores site sees the masked scores, so that a dynamic scale
	// comes from the visible scores only (a later token must not move an
	// earlier token's quantization); quantize ignores ±Inf when it chooses
	// scales. CausalSoftmax reads only the visible scores, so what the
	// site makes of the masked ones does not matter, and without a site
	// the scores are not masked at all.
	if a.cfg.Causal && hasSite(a.name+".scores", SiteAttnScores) {
		if s, err = layerops.CausalMask(s, 0); err != nil {
			return nil, err
		}
	}
	if s, err = b.site(a.name+".scores", SiteAttnScores, s); err != nil {
		return nil, err
	}
	var p *gorgonia.Node
	if a.cfg.Causal {
		p, err = layerops.CausalSoftmax(s, 0)
	} else {
		p, err = ops.Softmax(s)
	}
	if err != nil {
		return nil, err
	}
	if p, err = b.site(a.name+".probs", SiteAttnProbs, p); err != nil {
		return nil, err
	}
	var o *gorgonia.Node // (batch, heads, seq, Dh)
	if a.cfg.Causal && !hasSite(a.name+".probs", SiteAttnProbs) {
		o, err = layerops.CausalValues(p, v, 0, 0)
	} else {
		o, err = layerops.BMM(p, v, false, false)
	}
	if err != nil {
		return nil, err
	}
	if heads == 1 {
		o, err = gorgonia.Reshape(o, tensor.Shape{batch * seq, d})
	} else {
		o, err = layerops.MergeHeads(o)
	}
	if err != nil {
		return nil, err
	}
	return affine(b, o, a.Wo, nil, SiteWeight)
}

// Sites returns the attention layer's quantization sites (none without a
// plan).
func (a *Attention) Sites() []*Site { return a.b.sitesWithPrefix(a.name + ".") }
