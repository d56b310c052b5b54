package graph

import (
	"fmt"

	"github.com/actq/actq/quantize"
)

// SiteKind names a kind of place in a transformer where a plan may put a
// quantization node.
type SiteKind uint8

const (
	SiteWeight      SiteKind = iota + 1 // a block's weight matrix: W1, W2, W3, Wq, Wk, Wv, Wo
	SiteHead                            // the LM head's weight matrix
	SiteFFNInput                        // an FFN's input, before W1 (and W3): "<ffn>.in"
	SiteFFNHidden                       // an FFN's hidden layer, the input of W2 (after the activation and the gate): "<ffn>.hidden"
	SiteAttnScores                      // Q·Kᵀ/√Dh with the causal mask's −Inf: "<attn>.scores"
	SiteAttnProbs                       // Softmax(scores), before P·V: "<attn>.probs"
	SiteBlockOutput                     // a block's output, the residual stream: "<block>.out"
	SiteAttnKeys                        // the attention keys after the rotation, what a KV cache holds, seen as Kᵀ (batch, KVHeads, Dh, seq): "<attn>.keys"
	SiteAttnValues                      // the attention values, what a KV cache holds, (batch, KVHeads, seq, Dh): "<attn>.values"
)

// siteKind describes a site kind.
type siteKind struct {
	name string
	// weight: a weight matrix, quantized in the (out, in) layout (once, by
	// an Evaluator); never calibrated.
	weight bool
	// masked: the value carries the causal mask's −Inf, which CheckFinite
	// allows there.
	masked bool
	// kvCache: a key/value cache site, which the standard tiers leave
	// alone (uniformPlan skips it).
	kvCache bool
	// quant is the Plan field holding the kind's Quant.
	quant func(*Plan) **Quant
}

// siteKinds indexes every site kind: String, Plan.For, Plan.Clone,
// PassthroughPlan, Tier.NeedsCalibration, the tiers and the site builder
// read it, so that a new kind is a constant, a Plan field and one entry
// here.
var siteKinds = [...]siteKind{
	SiteWeight:      {name: "weight", weight: true, quant: func(p *Plan) **Quant { return &p.Weights }},
	SiteHead:        {name: "head", weight: true, quant: func(p *Plan) **Quant { return &p.Head }},
	SiteFFNInput:    {name: "ffn_input", quant: func(p *Plan) **Quant { return &p.FFNInput }},
	SiteFFNHidden:   {name: "ffn_hidden", quant: func(p *Plan) **Quant { return &p.FFNHidden }},
	SiteAttnScores:  {name: "attn_scores", masked: true, quant: func(p *Plan) **Quant { return &p.AttnScores }},
	SiteAttnProbs:   {name: "attn_probs", quant: func(p *Plan) **Quant { return &p.AttnProbs }},
	SiteBlockOutput: {name: "block_output", quant: func(p *Plan) **Quant { return &p.BlockOutput }},
	SiteAttnKeys:    {name: "attn_keys", kvCache: true, quant: func(p *Plan) **Quant { return &p.AttnKeys }},
	SiteAttnValues:  {name: "attn_values", kvCache: true, quant: func(p *Plan) **Quant { return &p.AttnValues }},
}

// info returns k's entry in siteKinds, nil for an unknown kind.
func (k SiteKind) info() *siteKind {
	if k == 0 || int(k) >= len(siteKinds) {
		return nil
	}
	return &siteKinds[k]
}

// eachSiteKind calls f on every site kind, in order.
func eachSiteKind(f func(SiteKind, *siteKind)) {
	for k := SiteWeight; int(k) < len(siteKinds); k++ {
		f(k, &siteKinds[k])
	}
}

// String returns the kind's name ("weight", "ffn_input", …).
func (k SiteKind) String() string {
	if i := k.info(); i != nil {
		return i.name
	}
	return fmt.Sprintf("SiteKind(%d)", uint8(k))
}

func (k SiteKind) isWeight() bool {
	i := k.info()
	return i != nil && i.weight
}

// Quant is what a Plan puts at a site.
type Quant struct {
	// Spec is the fake quantization (quantize.FakeQuant) of the site's
	// value. Weight sites apply it to the weight in PyTorch's and
	// llama.cpp's (out, in) layout, whatever the graph's (in, out): with
	// PerChannel, Axis 0 (or −2) gives a scale per output feature; PerGroup
	// groups run along the input (reduction) dimension, as in GGML's Q4_0
	// and Q8_0 blocks.
	Spec quantize.Spec
	// Passthrough puts an identity node at the site instead of FakeQuant:
	// values pass unchanged (a float32 graph stays float32) while the
	// site still counts its elements, NaN and ±Inf and can be calibrated.
	// Spec is ignored.
	Passthrough bool
	// Static (activation sites): the site's scales are to be fixed by
	// Calibrate from the ranges an observer (configured by Observer) sees on
	// sample batches. Until then the site quantizes with Spec, dynamic if
	// Spec.Scale is nil.
	Static   bool
	Observer quantize.ObserverConfig
	// PlainSTE makes the backward pass pass gradients through clipped
	// elements too (quantization-aware training; see quantize.WithPlainSTE).
	PlainSTE bool
	// Learnable makes the site's scales parameters of the model, learned
	// with the weights (LSQ, quantize.FakeQuantLearnable, configured by
	// *Learnable): the site's node takes its scales from an input node
	// named LearnableScaleName(site, Learnable.LogScale), of shape (n) for
	// n scales (one per tensor, channel or group, as Spec.Scale), which the
	// model's Params include, a Trainer updates with Adam and Weights carry
	// (a layer built on its own, without a Model, gives the node as
	// Site.ScaleNode). Spec must be an integer format (Int8, UInt8, Int4,
	// UInt4), at any granularity; Spec.ZeroPoint stays fixed.
	//
	// The scales start from the given Weights if they hold the parameter
	// (so an Evaluator built from a Trainer's Weights uses the learned
	// scales), else from Spec.Scale: the calibrated scales of a Static
	// site after Calibrate, or fixed ones. A weight site with Spec.Scale
	// nil starts from the scales the dynamic rule gives for the weight's
	// initial value, so that at its start a learnable site computes
	// exactly what the fixed or dynamic site would. An activation site
	// needs Spec.Scale (LSQ's data-based start 2·mean|x|/√qmax is not
	// used: the builder sees no data). While Calibrate observes a Static
	// site, Learnable has no effect there; Calibrate keeps it in the
	// calibrated plan.
	Learnable *quantize.LSQConfig
}

// LearnableScaleName returns the name of the parameter that holds the
// learnable scales of the site called site: site+".scale", or
// site+".log_scale" when the parameter holds log s (LSQConfig.LogScale).
func LearnableScaleName(site string, logScale bool) string {
	if logScale {
		return site + ".log_scale"
	}
	return site + ".scale"
}

// Passthrough returns a Quant that leaves values unchanged (see
// Quant.Passthrough).
func Passthrough() *Quant { return &Quant{Passthrough: true} }

// Plan says which quantization goes where in a Model (or a layer built
// WithPlan): a Quant per kind of site, nil meaning no node at all, and
// per-site overrides by site name. A Plan is read when a graph is built and
// not kept; building never changes it.
//
// Dynamic scales (Spec.Scale nil) come from the tensor at the site, which
// holds the whole batch: per tensor, one sequence's result depends on the
// other sequences in its batch, and in attention on later positions. For a
// scale per token use PerChannel with Axis 0 (or quantize.PerRow) at the
// (batch·seq, DModel) sites (FFN input and hidden, block output); at the
// (batch, heads, seq, seq) attention sites, quantize.PerRow gives a scale
// per query row, which keeps causal attention causal, whatever seq is.
//
// The key/value cache sites (AttnKeys, AttnValues) are laid out so that
// PerGroup, whose groups run along the last axis, expresses KIVI's
// conventions (Liu et al. 2024) and keeps the sequences of a batch
// independent:
//
//   - keys are seen transposed, as Kᵀ (batch, KVHeads, Dh, seq): PerGroup
//     with GroupSize = seq gives one scale per channel of each key/value
//     head and sequence (KIVI's per-channel keys); a GroupSize dividing seq
//     (32, say) gives a scale per channel and group of consecutive tokens;
//   - values are (batch, KVHeads, seq, Dh): PerGroup with GroupSize = Dh
//     gives one scale per token and key/value head (KIVI's per-token
//     values); a GroupSize dividing Dh gives groups of channels.
//
// A per-channel key scale taken over a whole sequence depends on every
// token in it, so later tokens move the quantization of earlier keys: in
// this full-sequence forward pass a query at position t sees keys
// quantized with statistics of positions after t. Its decode-time
// equivalent is a cache whose per-channel scales are recomputed, and the
// cache requantized, as it grows; a cache that keeps each key as it was
// quantized when written needs token groups (GroupSize < seq) or fixed
// scales (Calibrate, or Spec.Scale). Per-token value scales have no such
// effect. The standard Tiers leave these sites unquantized.
//
// Site names are "<layer>.in" and "<layer>.hidden" (FFN), "<layer>.keys",
// "<layer>.values", "<layer>.scores" and "<layer>.probs" (Attention),
// "<block>.out" (Block), and each weight's node name ("block0.ffn.W1",
// "head.W"; with tied embeddings the head's weight site is also called
// "head.W"). In a Model the layers are "block<i>.attn" and "block<i>.ffn".
type Plan struct {
	Name string // for reports

	Weights     *Quant // every block weight matrix (Wq, Wk, Wv, Wo, W1, W2, W3); not biases, norms or embeddings
	Head        *Quant // the LM head's weight (with tied embeddings, the token embedding as the head uses it; the lookup stays unquantized)
	FFNInput    *Quant
	FFNHidden   *Quant
	AttnScores  *Quant
	AttnProbs   *Quant
	BlockOutput *Quant
	AttnKeys    *Quant // the keys after the rotation, as Kᵀ (batch, KVHeads, Dh, seq)
	AttnValues  *Quant // the values, (batch, KVHeads, seq, Dh)

	// Sites overrides the kind's Quant at single sites, by site name; a
	// nil entry removes the site's node. Calibrate writes the calibrated
	// sites here.
	Sites map[string]*Quant

	// CheckFinite puts an ops.CheckFinite node, labelled with the site's
	// name, after every site's node: a run stops with an error naming the
	// first site whose value, or the gradient flowing back through it,
	// holds a NaN or an infinity (see ops.FindNonFinite). At attention
	// scores, which carry the causal mask, −Inf is allowed
	// (ops.CheckFiniteMasked). With PassthroughPlan it watches every site
	// without quantizing anything.
	CheckFinite bool
}

// PassthroughPlan returns a plan with a Passthrough node at every site:
// the model computes exactly what it computes without a plan, and every
// site counts its elements, NaN and ±Inf.
func PassthroughPlan() *Plan {
	p := &Plan{Name: "fp32-passthrough"}
	eachSiteKind(func(_ SiteKind, k *siteKind) { *k.quant(p) = Passthrough() })
	return p
}

// uniformPlan returns a plan that puts q at every kind of site but the
// key/value cache's (the standard tiers' plans).
func uniformPlan(q *Quant) *Plan {
	p := &Plan{}
	eachSiteKind(func(_ SiteKind, k *siteKind) {
		if !k.kvCache {
			*k.quant(p) = q
		}
	})
	return p
}

// Clone returns a copy of p whose Quants and Sites map are copies, so that
// changing one does not change the other.
func (p *Plan) Clone() *Plan {
	if p == nil {
		return nil
	}
	c := *p
	eachSiteKind(func(_ SiteKind, k *siteKind) {
		q := k.quant(&c)
		*q = cloneQuant(*q)
	})
	if p.Sites != nil {
		c.Sites = make(map[string]*Quant, len(p.Sites))
		for k, q := range p.Sites {
			c.Sites[k] = cloneQuant(q)
		}
	}
	return &c
}

func cloneQuant(q *Quant) *Quant {
	if q == nil {
		return nil
	}
	c := *q
	c.Spec.Scale = append([]float64(nil), q.Spec.Scale...)
	c.Spec.ZeroPoint = append([]int(nil), q.Spec.ZeroPoint...)
	if q.Spec.Scale == nil {
		c.Spec.Scale = nil
	}
	if q.Spec.ZeroPoint == nil {
		c.Spec.ZeroPoint = nil
	}
	if q.Learnable != nil {
		l := *q.Learnable
		c.Learnable = &l
	}
	return &c
}

// For returns the Quant the plan puts at the site called name, of the given
// kind (nil: none).
func (p *Plan) For(name string, kind SiteKind) *Quant {
	if p == nil {
		return nil
	}
	if q, ok := p.Sites[name]; ok {
		return q
	}
	if k := kind.info(); k != nil {
		return *k.quant(p)
	}
	return nil
}

// WithPlan inserts the quantization nodes that p asks for (nil: none). p is
// copied.
func WithPlan(p *Plan) Option {
	return func(o *options) { o.plan = p.Clone() }
}
