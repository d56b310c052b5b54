package graph

import (
	"fmt"
)

// Calibrate returns a copy of plan in which every static site (a Quant with
// Static set, at an activation site) has fixed scales: it runs the model cfg
// with weights w under plan on the batches, with an observer at each static
// site that sees the value arriving there (the site itself passing it on
// unchanged, as PyTorch's observers do during calibration; the plan's other
// sites quantize as usual), and writes each observer's Spec into the copy's
// Sites. Every batch must hold the same number of sequences.
//
// It returns an error wrapping ErrConfig for no batches, batches of
// different sizes, a plan without static sites, or a bad config, and the
// observer's error for a bad spec.
func Calibrate(cfg Config, w Weights, plan *Plan, batches []Batch) (*Plan, error) {
	const fn = "graph.Calibrate"
	switch {
	case plan == nil:
		return nil, fmt.Errorf("%s: plan is nil: %w", fn, ErrConfig)
	case len(batches) == 0:
		return nil, fmt.Errorf("%s: batches is empty, want at least one: %w", fn, ErrConfig)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	batch := len(batches[0].Tokens) / cfg.SeqLen
	ev, err := newEvaluator(fn, cfg, w, batch, []Option{WithPlan(plan), withCalibration(), withPrequantizedWeights()})
	if err != nil {
		return nil, err
	}
	defer ev.Close()
	var static []*Site
	for _, s := range ev.Sites() {
		if s.observer != nil {
			static = append(static, s)
		}
	}
	if len(static) == 0 {
		return nil, fmt.Errorf("%s: plan %q has no static activation site: %w", fn, plan.Name, ErrConfig)
	}
	for i, b := range batches {
		if _, err := ev.Eval(b); err != nil {
			return nil, fmt.Errorf("%s: batch %d: %w", fn, i, err)
		}
	}
	out := plan.Clone()
	if out.Sites == nil {
		out.Sites = map[string]*Quant{}
	}
	for _, s := range static {
		spec, err := s.observer.Spec()
		if err != nil {
			return nil, fmt.Errorf("%s: site %q: %w", fn, s.Name, err)
		}
		q := s.Quant
		q.Spec, q.Static = spec, false
		out.Sites[s.Name] = &q
	}
	return out, nil
}
