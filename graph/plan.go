package graph

import (
	"fmt"
	"math"
	"slices"

	"github.com/actq/actq/ops"
	"github.com/actq/actq/quantize"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
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
)

func (k SiteKind) String() string {
	switch k {
	case SiteWeight:
		return "weight"
	case SiteHead:
		return "head"
	case SiteFFNInput:
		return "ffn_input"
	case SiteFFNHidden:
		return "ffn_hidden"
	case SiteAttnScores:
		return "attn_scores"
	case SiteAttnProbs:
		return "attn_probs"
	case SiteBlockOutput:
		return "block_output"
	}
	return fmt.Sprintf("SiteKind(%d)", uint8(k))
}

func (k SiteKind) isWeight() bool { return k == SiteWeight || k == SiteHead }

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
// scale per token use PerChannel with Axis 0 at the (batch·seq, DModel)
// sites (FFN input and hidden, block output); at the (batch, heads, seq,
// seq) attention sites, PerGroup with GroupSize = seq gives a scale per
// query row, which keeps causal attention causal.
//
// Site names are "<layer>.in" and "<layer>.hidden" (FFN), "<layer>.scores"
// and "<layer>.probs" (Attention), "<block>.out" (Block), and each weight's
// node name ("block0.ffn.W1", "head.W"). In a Model the layers are
// "block<i>.attn" and "block<i>.ffn".
type Plan struct {
	Name string // for reports

	Weights     *Quant // every block weight matrix (Wq, Wk, Wv, Wo, W1, W2, W3); not biases, norms or embeddings
	Head        *Quant // the LM head's W
	FFNInput    *Quant
	FFNHidden   *Quant
	AttnScores  *Quant
	AttnProbs   *Quant
	BlockOutput *Quant

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
	return &Plan{Name: "fp32-passthrough", Weights: Passthrough(), Head: Passthrough(), FFNInput: Passthrough(),
		FFNHidden: Passthrough(), AttnScores: Passthrough(), AttnProbs: Passthrough(), BlockOutput: Passthrough()}
}

// Clone returns a copy of p whose Quants and Sites map are copies, so that
// changing one does not change the other.
func (p *Plan) Clone() *Plan {
	if p == nil {
		return nil
	}
	c := *p
	for _, q := range []**Quant{&c.Weights, &c.Head, &c.FFNInput, &c.FFNHidden, &c.AttnScores, &c.AttnProbs, &c.BlockOutput} {
		*q = cloneQuant(*q)
	}
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
	switch kind {
	case SiteWeight:
		return p.Weights
	case SiteHead:
		return p.Head
	case SiteFFNInput:
		return p.FFNInput
	case SiteFFNHidden:
		return p.FFNHidden
	case SiteAttnScores:
		return p.AttnScores
	case SiteAttnProbs:
		return p.AttnProbs
	case SiteBlockOutput:
		return p.BlockOutput
	}
	return nil
}

// Site is one quantization site of a built graph: its name, kind, the Quant
// the plan put there, and what the node did at every run since it was built
// or last reset. For a learnable site, Quant.Spec.Scale and ZeroPoint hold
// the scales and zero points it started from; Scale gives the current ones.
type Site struct {
	Name  string
	Kind  SiteKind
	Quant Quant

	stats    quantize.Stats     // counted inside the site's node at every run
	observer *quantize.Observer // static sites while calibrating
	scale    *gorgonia.Node     // learnable sites: the scale parameter
}

// ScaleNode returns the parameter node holding a learnable site's scales
// (their logarithms with LSQConfig.LogScale), named
// LearnableScaleName(s.Name, …); nil for a site that is not learnable.
func (s *Site) ScaleNode() *gorgonia.Node { return s.scale }

// Scale returns the scales the site quantizes with: for a learnable site
// the current value of its scale parameter as the node uses it (exp of
// it with LogScale, raised to LSQConfig.MinScale when below it); for other
// sites Quant.Spec.Scale, nil for dynamic scales.
func (s *Site) Scale() []float64 {
	if s.scale == nil {
		return slices.Clone(s.Quant.Spec.Scale)
	}
	switch d := s.scale.Value().Data().(type) {
	case []float32:
		return quantize.LSQEffectiveScales(d, *s.Quant.Learnable)
	case []float64:
		return quantize.LSQEffectiveScales(d, *s.Quant.Learnable)
	}
	return nil
}

// Stats returns the site's statistics. Passthrough sites count elements,
// NaN, ±Inf and the signal Σx², with nothing clipped, zeroed or lost.
// Weight sites of an Evaluator are quantized once, when it is built, and
// show that one run.
func (s *Site) Stats() quantize.StatsSnapshot { return s.stats.Snapshot() }

// ResetStats sets the site's counters to zero.
func (s *Site) ResetStats() { s.stats.Reset() }

// SiteStats returns the statistics of sites by site name.
func SiteStats(sites []*Site) map[string]quantize.StatsSnapshot {
	out := make(map[string]quantize.StatsSnapshot, len(sites))
	for _, s := range sites {
		out[s.Name] = s.Stats()
	}
	return out
}

// quantizer is a builder's plan and the sites it has made.
type quantizer struct {
	plan      *Plan
	sites     []*Site
	byName    map[string]*Site
	calibrate bool // static sites observe instead of quantizing
	prequant  bool // weights are quantized once, at build time
}

// WithPlan inserts the quantization nodes that p asks for (nil: none). p is
// copied.
func WithPlan(p *Plan) Option {
	return func(o *options) { o.plan = p.Clone() }
}

// site inserts the plan's node for the site called name, of the given kind,
// on x and returns its output; without a plan, or when the plan puts
// nothing there, it returns x.
func (b *builder) site(name string, kind SiteKind, x *gorgonia.Node) (*gorgonia.Node, error) {
	y, err := b.siteNode(name, kind, x)
	if err != nil || y == x || !b.q.plan.CheckFinite {
		return y, err
	}
	check := ops.CheckFinite
	if kind == SiteAttnScores {
		check = ops.CheckFiniteMasked // the causal mask's −Inf is expected there
	}
	c, err := check(y, name)
	if err != nil {
		return nil, fmt.Errorf("site %q: %w", name, err)
	}
	return c, nil
}

// siteNode is site without the CheckFinite node.
func (b *builder) siteNode(name string, kind SiteKind, x *gorgonia.Node) (*gorgonia.Node, error) {
	q := b.q
	if q == nil {
		return x, nil
	}
	qt := q.plan.For(name, kind)
	if qt == nil {
		return x, nil
	}
	if _, dup := q.byName[name]; dup {
		return nil, fmt.Errorf("quantization site %q made twice: %w", name, ErrConfig)
	}
	s := &Site{Name: name, Kind: kind, Quant: *cloneQuant(qt)}
	q.sites = append(q.sites, s)
	q.byName[name] = s
	switch {
	case q.calibrate && qt.Static && !kind.isWeight():
		obs, err := quantize.NewObserver(qt.Spec, qt.Observer)
		if err != nil {
			return nil, fmt.Errorf("site %q: %w", name, err)
		}
		s.observer = obs
		return s.passthrough(x)
	case qt.Learnable != nil:
		if err := b.learnableScale(s, x); err != nil {
			return nil, fmt.Errorf("site %q: %w", name, err)
		}
	}
	switch {
	case kind.isWeight():
		return b.quantizeWeight(s, x)
	case qt.Passthrough:
		return s.passthrough(x)
	}
	y, err := s.fakeQuant(x, s.scale)
	if err != nil {
		return nil, fmt.Errorf("site %q: %w", name, err)
	}
	return y, nil
}

// passthrough returns the site's identity node on x, which counts into the
// site's statistics and shows x to its observer, if any.
func (s *Site) passthrough(x *gorgonia.Node) (*gorgonia.Node, error) {
	y, err := quantize.Passthrough(x, quantize.WithStats(&s.stats), quantize.WithObserver(s.observer))
	if err != nil {
		return nil, fmt.Errorf("site %q: %w", s.Name, err)
	}
	return y, nil
}

// fakeQuant applies the site's quantization to x (a weight in the (out,
// in) layout): FakeQuant with the site's spec, or, given a scale node,
// FakeQuantLearnable with the scales from it.
func (s *Site) fakeQuant(x, scale *gorgonia.Node) (*gorgonia.Node, error) {
	opts := []quantize.Option{quantize.WithStats(&s.stats)}
	if s.Quant.PlainSTE {
		opts = append(opts, quantize.WithPlainSTE())
	}
	if scale == nil {
		return quantize.FakeQuantWith(x, s.Quant.Spec, opts...)
	}
	spec := s.Quant.Spec
	spec.Scale = nil
	return quantize.FakeQuantLearnable(x, scale, spec, *s.Quant.Learnable, opts...)
}

// learnableScale makes the scale parameter of the learnable site s, whose
// value node is x, and records the scales it starts from in s.Quant.Spec.
// It returns an error wrapping ErrConfig for a site that cannot learn its
// scales.
func (b *builder) learnableScale(s *Site, x *gorgonia.Node) error {
	q := &s.Quant
	switch {
	case q.Passthrough:
		return fmt.Errorf("Learnable with Passthrough: a passthrough site has no scale to learn: %w", ErrConfig)
	case !q.Spec.Format.IsInteger():
		return fmt.Errorf("Learnable with format %v: learnable scales need an integer format (int8, uint8, int4, uint4): %w", q.Spec.Format, ErrConfig)
	case q.Spec.Scale == nil && q.Static:
		return fmt.Errorf("Learnable and Static without a scale: Calibrate the plan first, the calibrated scales are where learning starts: %w", ErrConfig)
	case q.Spec.Scale == nil && !s.Kind.isWeight():
		return fmt.Errorf("Learnable without Spec.Scale: a learnable activation site needs the scales it starts from (make it Static and Calibrate, or set Spec.Scale): %w", ErrConfig)
	case q.Spec.Scale == nil:
		spec, err := observeWeight(q.Spec, x)
		if err != nil {
			return err
		}
		q.Spec.Scale, q.Spec.ZeroPoint = spec.Scale, spec.ZeroPoint
	}
	start := make([]float64, len(q.Spec.Scale))
	for i, v := range q.Spec.Scale {
		if !(v > 0) || math.IsInf(v, 0) {
			return fmt.Errorf("Learnable: Spec.Scale[%d] = %g, want positive and finite: %w", i, v, ErrConfig)
		}
		start[i] = v
		if q.Learnable.LogScale {
			start[i] = math.Log(v)
		}
	}
	n, err := b.paramOr(LearnableScaleName(s.Name, q.Learnable.LogScale), []int{len(start)}, true,
		func() *tensor.Dense { return denseFrom(b.dt, []int{len(start)}, start) })
	if err != nil {
		return err
	}
	s.scale = n
	return nil
}

// observeWeight returns spec with the scales and zero points of its dynamic
// rule for the value of the weight node w, in the (out, in) layout.
func observeWeight(spec quantize.Spec, w *gorgonia.Node) (quantize.Spec, error) {
	obs, err := quantize.NewObserver(spec, quantize.ObserverConfig{})
	if err != nil {
		return spec, err
	}
	if _, err := onOwnGraph(w, func(x *gorgonia.Node) (*gorgonia.Node, error) {
		return inWeightLayout(spec, x, func(t *gorgonia.Node) (*gorgonia.Node, error) {
			return quantize.FakeQuantWith(t, spec, quantize.WithObserver(obs))
		})
	}); err != nil {
		return spec, err
	}
	return obs.Spec()
}

// quantizeWeight fake-quantizes the weight node w (in, out) as the (out,
// in) matrix (or passes it through). A builder made for evaluation
// (prequant) does it once, now, with a learnable site's current scales, and
// stores the result in w; otherwise it adds the nodes to the graph.
func (b *builder) quantizeWeight(s *Site, w *gorgonia.Node) (*gorgonia.Node, error) {
	if b.q.prequant {
		v, err := onOwnGraph(w, func(x *gorgonia.Node) (*gorgonia.Node, error) {
			var scale *gorgonia.Node
			if s.scale != nil {
				c, err := gorgonia.CloneValue(s.scale.Value())
				if err != nil {
					return nil, err
				}
				scale = gorgonia.NodeFromAny(x.Graph(), c, gorgonia.WithName(s.scale.Name()))
			}
			return weightNodes(s, x, scale)
		})
		if err != nil {
			return nil, fmt.Errorf("site %q: %w", s.Name, err)
		}
		if err := gorgonia.Let(w, v); err != nil {
			return nil, fmt.Errorf("site %q: %w", s.Name, err)
		}
		return w, nil
	}
	y, err := weightNodes(s, w, s.scale)
	if err != nil {
		return nil, fmt.Errorf("site %q: %w", s.Name, err)
	}
	return y, nil
}

// weightNodes adds the site's quantization of w in the (out, in) layout
// (see inWeightLayout), with the scales from the node scale if it is not
// nil.
func weightNodes(s *Site, w, scale *gorgonia.Node) (*gorgonia.Node, error) {
	if s.Quant.Passthrough {
		return s.passthrough(w)
	}
	return inWeightLayout(s.Quant.Spec, w, func(t *gorgonia.Node) (*gorgonia.Node, error) { return s.fakeQuant(t, scale) })
}

// inWeightLayout applies f to w in the (out, in) layout: wᵀ, f, transposed
// back. A per-tensor spec needs no transposes.
func inWeightLayout(spec quantize.Spec, w *gorgonia.Node, f func(*gorgonia.Node) (*gorgonia.Node, error)) (*gorgonia.Node, error) {
	if spec.Granularity == quantize.PerTensor || w.Shape().Dims() != 2 {
		return f(w)
	}
	t, err := gorgonia.Transpose(w)
	if err != nil {
		return nil, err
	}
	if t, err = f(t); err != nil {
		return nil, err
	}
	return gorgonia.Transpose(t)
}

// onOwnGraph returns the value of the node f makes from a copy of w, run
// once on a graph of its own.
func onOwnGraph(w *gorgonia.Node, f func(x *gorgonia.Node) (*gorgonia.Node, error)) (gorgonia.Value, error) {
	g := gorgonia.NewGraph()
	v, err := gorgonia.CloneValue(w.Value())
	if err != nil {
		return nil, err
	}
	x := gorgonia.NodeFromAny(g, v, gorgonia.WithName(w.Name()))
	y, err := f(x)
	if err != nil {
		return nil, err
	}
	var out gorgonia.Value
	gorgonia.Read(y, &out)
	m := gorgonia.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		return nil, err
	}
	return out, nil
}

// Sites returns the quantization sites made so far by the builder, in the
// order they were made, whose names start with prefix.
func (b *builder) sitesWithPrefix(prefix string) []*Site {
	if b.q == nil {
		return nil
	}
	var out []*Site
	for _, s := range b.q.sites {
		if len(s.Name) >= len(prefix) && s.Name[:len(prefix)] == prefix {
			out = append(out, s)
		}
	}
	return out
}

// withCalibration makes static sites observe instead of quantizing.
func withCalibration() Option { return func(o *options) { o.calibrate = true } }

// withPrequantizedWeights quantizes weights once, at build time.
func withPrequantizedWeights() Option { return func(o *options) { o.prequant = true } }
