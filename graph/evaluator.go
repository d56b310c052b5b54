package graph

import (
	"fmt"

	"github.com/actq/actq/internal/opkit"
	"github.com/actq/actq/quantize"
	"gorgonia.org/gorgonia"
)

// Evaluator runs a model forward on batches of a fixed size, with given
// weights and optionally a quantization plan. It owns one graph and one
// tape machine: use it from one goroutine.
type Evaluator struct {
	p    *program
	vm   gorgonia.VM
	last []int // the argmax predictions of the last batch evaluated
}

// NewEvaluator builds the evaluation graph of cfg with weights w (copied)
// for batches of batch sequences; opts may add a quantization plan
// (WithPlan). Under a plan, the weights are fake-quantized once, here, not
// at every run (the Evaluator's Model then holds the quantized weights).
// Learnable sites take their scales from w when it holds them (a Trainer's
// Weights do), else from the plan (see Quant.Learnable).
func NewEvaluator(cfg Config, w Weights, batch int, opts ...Option) (*Evaluator, error) {
	opts = append(opts[:len(opts):len(opts)], withPrequantizedWeights())
	return newEvaluator("graph.NewEvaluator", cfg, w, batch, opts)
}

func newEvaluator(fn string, cfg Config, w Weights, batch int, opts []Option) (*Evaluator, error) {
	if w == nil {
		return nil, fmt.Errorf("%s: nil weights: %w", fn, ErrConfig)
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	p, err := newProgram(fn, cfg, batch, append([]Option{WithWeights(w)}, opts...))
	if err != nil {
		return nil, err
	}
	opkit.ReuseResults(p.g)
	return &Evaluator{p: p, vm: gorgonia.NewTapeMachine(p.g)}, nil
}

// Sites returns the quantization sites of the evaluated model (none without
// a plan). Their statistics add up over every Eval since the evaluator was
// built or ResetStats was called; weight sites are quantized once, when
// the evaluator is built.
func (e *Evaluator) Sites() []*Site { return e.p.model.Sites() }

// Stats returns every site's statistics by site name.
func (e *Evaluator) Stats() map[string]quantize.StatsSnapshot { return siteStats(e.Sites()) }

// ResetStats sets the counters of every activation site to zero (weight
// sites keep the record of their one quantization).
func (e *Evaluator) ResetStats() { resetActivationStats(e.Sites()) }

// Eval runs the model on b and returns its metrics.
func (e *Evaluator) Eval(b Batch) (Metrics, error) {
	const fn = "graph.Evaluator.Eval"
	count, err := e.p.load(fn, b)
	if err != nil {
		return Metrics{}, err
	}
	defer e.vm.Reset()
	if err := e.vm.RunAll(); err != nil {
		return Metrics{}, fmt.Errorf("%s: %w", fn, err)
	}
	m, pred := e.p.metrics(b, count)
	e.last = pred
	return m, nil
}

// EvalAll evaluates every batch and returns the combined metrics.
func (e *Evaluator) EvalAll(batches []Batch) (Metrics, error) {
	var total Metrics
	for _, b := range batches {
		m, err := e.Eval(b)
		if err != nil {
			return total, err
		}
		total = total.Add(m)
	}
	return total, nil
}

// Predictions returns the argmax token at every position of the last
// batch evaluated (batch·SeqLen values), nil before the first.
func (e *Evaluator) Predictions() []int { return e.last }

// Logits returns a copy of the logits (batch·SeqLen, Vocab) of the last
// batch evaluated, as float64.
func (e *Evaluator) Logits() []float64 {
	if e.p.logits == nil {
		return nil
	}
	switch d := e.p.logits.Data().(type) {
	case []float32:
		out := make([]float64, len(d))
		for i, v := range d {
			out[i] = float64(v)
		}
		return out
	case []float64:
		return append([]float64(nil), d...)
	}
	return nil
}

// Model returns the evaluated model (on the evaluator's graph).
func (e *Evaluator) Model() *Model { return e.p.model }

// Close releases the machine.
func (e *Evaluator) Close() error { return e.vm.Close() }
