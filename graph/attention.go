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
	// KVHeads is the number of key/value heads (grouped-query attention):
	// it must divide Heads; 0 means Heads.
	KVHeads int
	// RoPETheta > 0 rotates the queries and keys by their positions
	// (rotary position embeddings with base θ); the head size
	// DModel/Heads must then be even. 0: no rotation.
	RoPETheta float64
}

// Attention is multi-head self-attention without biases (Vaswani et al.
// 2017), optionally with grouped-query attention (Ainslie et al. 2023) and
// rotary positions (Su et al. 2021) as in Llama:
//
//	Q = x·Wq, K = x·Wk, V = x·Wv
//	P_h = Softmax(R(Q_h)·R(K_g)ᵀ/√Dh + M)   query head h: columns [h·Dh, (h+1)·Dh) of Q, Dh = DModel/Heads
//	y = concat_h(P_h·V_g)·Wo                key/value head g = h/(Heads/KVHeads): columns [g·Dh, (g+1)·Dh) of K, V
//
// where M is 0, or −Inf above the diagonal when Causal, and R rotates each
// row of a head by its position when RoPETheta > 0 (see layerops.RoPE:
// Hugging Face's rotate_half layout, element i paired with i+Dh/2, angle
// t·θ^(−2i/Dh) at position t) and is the identity otherwise. Softmax is
// actq's (ops.Softmax; with Causal, layerops.CausalSoftmax, the same kernel
// over each row's visible scores only): a masked entry gets exactly 0
// probability and 0 gradient. The query heads sharing a key/value head
// multiply it as one stacked matrix, so the shared keys and values are
// never copied.
//
// Its parameters are input nodes named name+".Wq" (DModel, DModel),
// ".Wk" and ".Wv" (DModel, KVHeads·Dh), ".Wo" (DModel, DModel);
// Gorgonia's Let can set them.
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
// ≤ 0, DModel not divisible by Heads, KVHeads negative or not dividing
// Heads, RoPETheta negative, NaN or infinite, RoPE with an odd head size,
// a dtype other than Float32 and Float64, or a parameter name already used
// in g.
func NewAttention(g *gorgonia.ExprGraph, name string, cfg AttentionConfig, opts ...Option) (*Attention, error) {
	return construct("graph.NewAttention", g, cfg.Dtype, opts, func(b *builder) (*Attention, error) {
		return newAttention(b, name, cfg)
	})
}

func newAttention(b *builder, name string, cfg AttentionConfig) (*Attention, error) {
	if err := positive(name, "DModel", cfg.DModel, "Heads", cfg.Heads); err != nil {
		return nil, err
	}
	if err := checkAttention(name, cfg.DModel, cfg.Heads, cfg.KVHeads, cfg.RoPETheta); err != nil {
		return nil, err
	}
	cfg.Dtype = b.dt
	if cfg.KVHeads == 0 {
		cfg.KVHeads = cfg.Heads
	}
	a := &Attention{cfg: cfg, name: name, b: b}
	d, kv := cfg.DModel, cfg.KVHeads*(cfg.DModel/cfg.Heads)
	for _, p := range []struct {
		n    **gorgonia.Node
		name string
		out  int
	}{{&a.Wq, ".Wq", d}, {&a.Wk, ".Wk", kv}, {&a.Wv, ".Wv", kv}, {&a.Wo, ".Wo", d}} {
		var err error
		if *p.n, err = b.param(name+p.name, initUniform, d, p.out); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// checkAttention returns an error wrapping ErrConfig, naming fn and the
// field, unless Heads divides DModel (both positive), KVHeads (0: Heads)
// divides Heads, and RoPETheta is 0 or positive and finite with an even
// head size.
func checkAttention(fn string, d, heads, kvHeads int, theta float64) error {
	switch {
	case d%heads != 0:
		return fmt.Errorf("%s: DModel %d is not divisible by Heads %d: %w", fn, d, heads, ErrConfig)
	case kvHeads < 0 || (kvHeads > 0 && heads%kvHeads != 0):
		return fmt.Errorf("%s: KVHeads %d does not divide Heads %d (0 means Heads): %w", fn, kvHeads, heads, ErrConfig)
	case !(theta >= 0) || math.IsInf(theta, 1):
		return fmt.Errorf("%s: RoPETheta = %v, want 0 (no rotary positions) or a positive, finite base: %w", fn, theta, ErrConfig)
	case theta > 0 && (d/heads)%2 != 0:
		return fmt.Errorf("%s: RoPETheta %v with head size DModel/Heads = %d: rotary positions rotate pairs and need an even head size: %w", fn, theta, d/heads, ErrConfig)
	}
	return nil
}

// Config returns the layer's configuration (with its dtype filled in).
func (a *Attention) Config() AttentionConfig { return a.cfg }

// Params returns Wq, Wk, Wv and Wo.
func (a *Attention) Params() gorgonia.Nodes { return gorgonia.Nodes{a.Wq, a.Wk, a.Wv, a.Wo} }

// Forward returns the attention output for x (batch, seq, DModel): (batch,
// seq, DModel); with RoPETheta, row t of each sequence is at position t.
// It returns an error wrapping ops.ErrNilNode for a nil x, ops.ErrDtype
// for another dtype than the layer's and ops.ErrShape for another rank
// than 3 or a last dimension other than DModel.
//
// Under a quantization plan (WithPlan) the sites are name+".keys" (the
// keys after the rotation, seen as Kᵀ: (batch, KVHeads, Dh, seq)),
// name+".values" (V: (batch, KVHeads, seq, Dh)), name+".scores"
// (Q·Kᵀ/√Dh + mask, (batch, Heads, seq, seq): masked entries reach it as
// −Inf, which quantize's dynamic scales ignore and its statistics count as
// Inf; the softmax after it reads only the visible scores, so they keep
// exactly 0 probability), name+".probs" (P, before P·V) and the weights by name.
// See Plan for the layouts' use.
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
	b, d, heads, kv := a.b, a.cfg.DModel, a.cfg.Heads, a.cfg.KVHeads
	dh := d / heads
	// project returns x·W as (batch, n, seq, Dh), rotated if rotate.
	project := func(w *gorgonia.Node, n int, rotate bool) (*gorgonia.Node, error) {
		m, err := affine(b, x, w, nil, SiteWeight)
		if err != nil {
			return nil, err
		}
		if n == 1 { // the same memory order: a view is enough
			m, err = gorgonia.Reshape(m, tensor.Shape{batch, 1, seq, dh})
		} else {
			m, err = layerops.SplitHeads(m, batch, n)
		}
		if err != nil || !rotate {
			return m, err
		}
		return layerops.RoPE(m, a.cfg.RoPETheta, 0)
	}
	rope := a.cfg.RoPETheta > 0
	q, err := project(a.Wq, heads, rope)
	if err != nil {
		return nil, err
	}
	k, err := project(a.Wk, kv, rope)
	if err != nil {
		return nil, err
	}
	v, err := project(a.Wv, kv, false)
	if err != nil {
		return nil, err
	}
	if k, err = a.keysSite(k); err != nil {
		return nil, err
	}
	if v, err = b.site(a.name+".values", SiteAttnValues, v); err != nil {
		return nil, err
	}
	o, err := a.attend(q, k, v, 0) // (batch, heads, seq, Dh)
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

// keysSite puts the keys site on k (batch, KVHeads, seq, Dh), which sees
// them transposed, as Kᵀ (batch, KVHeads, Dh, seq), and returns the keys
// in k's layout. Without a site there it returns k, with no transposes.
func (a *Attention) keysSite(k *gorgonia.Node) (*gorgonia.Node, error) {
	name := a.name + ".keys"
	if !a.b.hasSite(name, SiteAttnKeys) {
		return k, nil
	}
	kt, err := layerops.TransposeLast(k)
	if err != nil {
		return nil, err
	}
	if kt, err = a.b.site(name, SiteAttnKeys, kt); err != nil {
		return nil, err
	}
	return layerops.TransposeLast(kt)
}

// attend returns softmax(q·kᵀ/√Dh + mask)·v, (batch, Heads, tq, Dh), for
// the queries q (batch, Heads, tq, Dh) at positions offset … offset+tq−1
// and the keys and values k, v (batch, KVHeads, tk, Dh) at positions 0 …
// tk−1, with the scores and probabilities sites. With Causal, query i
// sees the keys j ≤ offset+i.
//
// The Heads/KVHeads query heads that share a key/value head are
// consecutive, so q viewed as (batch, KVHeads, group·tq, Dh) stacks each
// group's queries into one matrix: one product with the group's keys gives
// the scores of all its heads, (batch, KVHeads, group·tq, tk), which is
// (batch, Heads, tq, tk) in memory; the probabilities times the values
// likewise. Only views are made, and nothing is copied per query head.
//
// With Causal, the products skip the tiles above the diagonal
// (layerops.CausalScores, CausalValues: row r of a stacked matrix is the
// query at offset + r mod tq), and the softmax reads only the visible
// scores (layerops.CausalSoftmax), giving the others exactly 0
// probability and 0 gradient. A probs site, which reads all of P, makes
// the product with the values a full one.
func (a *Attention) attend(q, k, v *gorgonia.Node, offset int) (*gorgonia.Node, error) {
	b := a.b
	qs, ks := q.Shape(), k.Shape()
	batch, heads, tq, dh := qs[0], qs[1], qs[2], qs[3]
	kv := ks[1]
	group := heads / kv
	// grouped views x (batch, heads, rows, cols) as (batch, kv, group·rows,
	// cols), and back with inverse.
	grouped := func(x *gorgonia.Node, inverse bool) (*gorgonia.Node, error) {
		if group == 1 {
			return x, nil
		}
		s := x.Shape()
		if inverse {
			return gorgonia.Reshape(x, tensor.Shape{batch, heads, s[2] / group, s[3]})
		}
		return gorgonia.Reshape(x, tensor.Shape{batch, kv, group * s[2], s[3]})
	}
	qg, err := grouped(q, false)
	if err != nil {
		return nil, err
	}
	alpha := 1 / math.Sqrt(float64(dh))
	var s *gorgonia.Node
	if a.cfg.Causal {
		s, err = layerops.CausalScores(qg, k, alpha, offset, tq)
	} else {
		s, err = layerops.ScaledBMM(qg, k, false, true, alpha)
	}
	if err != nil {
		return nil, err
	}
	if s, err = grouped(s, true); err != nil { // (batch, heads, tq, tk)
		return nil, err
	}
	// The scores site sees the masked scores, so that a dynamic scale
	// comes from the visible scores only (a later token must not move an
	// earlier token's quantization); quantize ignores ±Inf when it chooses
	// scales. CausalSoftmax reads only the visible scores, so what the
	// site makes of the masked ones does not matter, and without a site
	// the scores are not masked at all.
	scores, probs := a.name+".scores", a.name+".probs"
	if a.cfg.Causal && b.hasSite(scores, SiteAttnScores) {
		if s, err = layerops.CausalMask(s, offset); err != nil {
			return nil, err
		}
	}
	if s, err = b.site(scores, SiteAttnScores, s); err != nil {
		return nil, err
	}
	var p *gorgonia.Node
	if a.cfg.Causal {
		p, err = layerops.CausalSoftmax(s, offset)
	} else {
		p, err = ops.Softmax(s)
	}
	if err != nil {
		return nil, err
	}
	if p, err = b.site(probs, SiteAttnProbs, p); err != nil {
		return nil, err
	}
	if p, err = grouped(p, false); err != nil {
		return nil, err
	}
	var o *gorgonia.Node // (batch, kv, group·tq, Dh)
	if a.cfg.Causal && !b.hasSite(probs, SiteAttnProbs) {
		o, err = layerops.CausalValues(p, v, offset, tq)
	} else {
		o, err = layerops.BMM(p, v, false, false)
	}
	if err != nil {
		return nil, err
	}
	return grouped(o, true)
}

// Sites returns the attention layer's quantization sites (none without a
// plan).
func (a *Attention) Sites() []*Site { return a.b.sitesWithPrefix(a.name + ".") }
