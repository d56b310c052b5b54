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
	// tied marks the weight site of a tied LM head, whose node is the
	// token embedding (Vocab, DModel): already in the (out, in) layout,
	// and read unquantized by the embedding lookup, so that an Evaluator
	// quantizes a copy of it instead of the node itself.
	tied bool
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

// siteStats returns the statistics of sites by site name.
func siteStats(sites []*Site) map[string]quantize.StatsSnapshot {
	out := make(map[string]quantize.StatsSnapshot, len(sites))
	for _, s := range sites {
		out[s.Name] = s.Stats()
	}
	return out
}

// resetActivationStats sets the counters of every activation site among
// sites to zero; weight sites keep the record of their one quantization.
func resetActivationStats(sites []*Site) {
	for _, s := range sites {
		if !s.Kind.isWeight() {
			s.ResetStats()
		}
	}
}

// quantizer is a builder's plan and the sites it has made.
type quantizer struct {
	plan      *Plan
	sites     []*Site
	byName    map[string]*Site
	calibrate bool // static sites observe instead of quantizing
	prequant  bool // weights are quantized once, at build time
}

// hasSite reports whether the builder's plan puts a node at the site
// called name, of the given kind.
func (b *builder) hasSite(name string, kind SiteKind) bool {
	return b.q != nil && b.q.plan.For(name, kind) != nil
}

// site inserts the plan's node for the site called name, of the given kind,
// on x and returns its output; without a plan, or when the plan puts
// nothing there, it returns x.
func (b *builder) site(name string, kind SiteKind, x *gorgonia.Node) (*gorgonia.Node, error) {
	return b.siteWith(name, kind, x, false)
}

// siteWith is site; tied marks the weight site of a tied LM head (see
// Site.tied).
func (b *builder) siteWith(name string, kind SiteKind, x *gorgonia.Node, tied bool) (*gorgonia.Node, error) {
	y, err := b.siteNode(name, kind, x, tied)
	if err != nil || y == x || !b.q.plan.CheckFinite {
		return y, err
	}
	check := ops.CheckFinite
	if k := kind.info(); k != nil && k.masked {
		check = ops.CheckFiniteMasked // the causal mask's −Inf is expected there
	}
	c, err := check(y, name)
	if err != nil {
		return nil, fmt.Errorf("site %q: %w", name, err)
	}
	return c, nil
}

// addSite records the site called name, of the given kind, with a copy of
// the Quant the plan puts there, and returns it; nil without a plan, or
// when the plan puts nothing there. tied marks the weight site of a tied
// LM head (see Site.tied).
func (b *builder) addSite(name string, kind SiteKind, tied bool) (*Site, error) {
	q := b.q
	if q == nil {
		return nil, nil
	}
	qt := q.plan.For(name, kind)
	if qt == nil {
		return nil, nil
	}
	if _, dup := q.byName[name]; dup {
		return nil, fmt.Errorf("quantization site %q made twice: %w", name, ErrConfig)
	}
	s := &Site{Name: name, Kind: kind, Quant: *cloneQuant(qt), tied: tied}
	q.sites = append(q.sites, s)
	q.byName[name] = s
	return s, nil
}

// siteNode is siteWith without the CheckFinite node.
func (b *builder) siteNode(name string, kind SiteKind, x *gorgonia.Node, tied bool) (*gorgonia.Node, error) {
	s, err := b.addSite(name, kind, tied)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return x, nil
	}
	q, qt := b.q, &s.Quant
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
		return quantize.FakeQuant(x, s.Quant.Spec, opts...)
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
		spec, err := observeWeight(q.Spec, x, s.tied)
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

// sitesWithPrefix returns the quantization sites made so far by the
// builder, in the order they were made, whose names start with prefix.
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
