package graph

import (
	"fmt"
	"math"
	"sync"

	"github.com/actq/actq/ops"
	"github.com/actq/actq/quantize"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Ignore marks a target position that does not count in the loss or the
// accuracy (PyTorch's ignore_index).
const Ignore = -1

// Batch is a batch of sequences of the model's SeqLen, row-major: token t
// of sequence s is Tokens[s·SeqLen+t], and Targets[s·SeqLen+t] is the token
// that should follow it, or Ignore.
type Batch struct {
	Tokens, Targets []int
}

// Metrics are a model's loss and accuracy over the counted (not Ignore)
// target positions of one or more batches.
type Metrics struct {
	Loss    float64 // mean cross-entropy per counted token (nats)
	Correct int     // counted tokens whose argmax prediction is the target
	Tokens  int     // counted tokens
	SeqOK   int     // sequences whose counted tokens are all correct
	Seqs    int     // sequences
}

// Accuracy returns Correct/Tokens (NaN for no tokens).
func (m Metrics) Accuracy() float64 { return float64(m.Correct) / float64(m.Tokens) }

// SeqAccuracy returns SeqOK/Seqs (NaN for no sequences).
func (m Metrics) SeqAccuracy() float64 { return float64(m.SeqOK) / float64(m.Seqs) }

// Add returns the metrics of the union of m's and o's batches.
func (m Metrics) Add(o Metrics) Metrics {
	r := Metrics{Correct: m.Correct + o.Correct, Tokens: m.Tokens + o.Tokens, SeqOK: m.SeqOK + o.SeqOK, Seqs: m.Seqs + o.Seqs}
	if r.Tokens > 0 {
		r.Loss = (m.Loss*float64(m.Tokens) + o.Loss*float64(o.Tokens)) / float64(r.Tokens)
	}
	return r
}

func (m Metrics) String() string {
	return fmt.Sprintf("loss %.4f, token accuracy %.4f (%d/%d), sequence accuracy %.4f (%d/%d)",
		m.Loss, m.Accuracy(), m.Correct, m.Tokens, m.SeqAccuracy(), m.SeqOK, m.Seqs)
}

// buildMu makes Trainers and Evaluators build their graphs one at a time
// (they run in parallel). Gorgonia adds package-level constant nodes to
// every graph it differentiates (onef32 in gorgonia.Grad) and computes a
// node's hash lazily, on first use: two graphs built at once race on that
// write (seen under -race with trainers started in parallel; see
// TestConcurrentFirstBuilds).
var buildMu sync.Mutex

// program is a model on its own graph with a fixed batch size: inputs,
// the loss and the logits read out at run time.
type program struct {
	cfg     Config
	batch   int
	g       *gorgonia.ExprGraph
	model   *Model
	tokens  *gorgonia.Node // Int (batch, SeqLen)
	targets *gorgonia.Node // (batch·SeqLen, Vocab): one-hot / count
	loss    *gorgonia.Node
	tokVal  *tensor.Dense
	tgtVal  *tensor.Dense
	lossOut gorgonia.Value // read by gorgonia.Read: intermediate values may be overwritten
	logits  gorgonia.Value
}

func newProgram(fn string, cfg Config, batch int, opts []Option) (*program, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	if err := positive(fn, "batch", batch); err != nil {
		return nil, err
	}
	p := &program{batch: batch, g: gorgonia.NewGraph()}
	m, err := NewModel(p.g, cfg, opts...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	p.model, p.cfg = m, m.Config()
	n, v, dt := batch*cfg.SeqLen, cfg.Vocab, p.cfg.Dtype
	p.tokVal = tensor.New(tensor.WithShape(batch, cfg.SeqLen), tensor.WithBacking(make([]int, n)))
	p.tgtVal = tensor.New(tensor.Of(dt), tensor.WithShape(n, v))
	p.tokens = gorgonia.NewMatrix(p.g, tensor.Int, gorgonia.WithShape(batch, cfg.SeqLen), gorgonia.WithName("tokens"), gorgonia.WithValue(p.tokVal))
	p.targets = gorgonia.NewMatrix(p.g, dt, gorgonia.WithShape(n, v), gorgonia.WithName("targets"), gorgonia.WithValue(p.tgtVal))
	logits, err := m.Forward(p.tokens)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	if p.loss, err = CrossEntropy(logits, p.targets); err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	gorgonia.Read(p.loss, &p.lossOut)
	gorgonia.Read(logits, &p.logits)
	return p, nil
}

// load writes a batch into the input tensors. It returns the number of
// counted targets.
func (p *program) load(fn string, b Batch) (int, error) {
	n := p.batch * p.cfg.SeqLen
	if len(b.Tokens) != n || len(b.Targets) != n {
		return 0, fmt.Errorf("%s: Batch.Tokens has %d and Batch.Targets %d elements, want %d (%d×%d): %w",
			fn, len(b.Tokens), len(b.Targets), n, p.batch, p.cfg.SeqLen, ops.ErrShape)
	}
	v := p.cfg.Vocab
	count := 0
	for i, tok := range b.Tokens {
		if tok < 0 || tok >= v {
			return 0, fmt.Errorf("%s: Batch.Tokens[%d] = %d is outside [0, %d): %w", fn, i, tok, v, ops.ErrValue)
		}
		if t := b.Targets[i]; t != Ignore {
			if t < 0 || t >= v {
				return 0, fmt.Errorf("%s: Batch.Targets[%d] = %d is outside [0, %d) and not Ignore: %w", fn, i, t, v, ops.ErrValue)
			}
			count++
		}
	}
	copy(p.tokVal.Ints(), b.Tokens)
	w := 0.0
	if count > 0 {
		w = 1 / float64(count)
	}
	switch d := p.tgtVal.Data().(type) {
	case []float32:
		fillTargets(d, b.Targets, v, float32(w))
	case []float64:
		fillTargets(d, b.Targets, v, w)
	}
	return count, nil
}

func fillTargets[T float32 | float64](dst []T, targets []int, v int, w T) {
	clear(dst)
	for i, t := range targets {
		if t != Ignore {
			dst[i*v+t] = w
		}
	}
}

// metrics returns the metrics of the last run on b.
func (p *program) metrics(b Batch, count int) Metrics {
	m := Metrics{Tokens: count, Seqs: p.batch, Loss: scalar(p.lossOut)}
	v, seq := p.cfg.Vocab, p.cfg.SeqLen
	pred := argmaxRows(p.logits, v)
	for s := range p.batch {
		ok := true
		for t := range seq {
			i := s*seq + t
			if b.Targets[i] == Ignore {
				continue
			}
			if pred[i] == b.Targets[i] {
				m.Correct++
			} else {
				ok = false
			}
		}
		if ok {
			m.SeqOK++
		}
	}
	return m
}

func scalar(v gorgonia.Value) float64 {
	switch d := v.Data().(type) {
	case float32:
		return float64(d)
	case float64:
		return d
	}
	return math.NaN()
}

// argmaxRows returns the index of the largest element of each row of a
// (rows, v) value (the first on ties; NaN never wins).
func argmaxRows(val gorgonia.Value, v int) []int {
	switch d := val.Data().(type) {
	case []float32:
		return argmax(d, v)
	case []float64:
		return argmax(d, v)
	}
	return nil
}

func argmax[T float32 | float64](d []T, v int) []int {
	out := make([]int, len(d)/v)
	for r := range out {
		row := d[r*v : (r+1)*v]
		best := 0
		for j, x := range row {
			if x > row[best] || (row[best] != row[best] && x == x) {
				best = j
			}
		}
		out[r] = best
	}
	return out
}

// TrainConfig configures a Trainer.
type TrainConfig struct {
	Batch     int     // sequences per step
	LearnRate float64 // Adam's step size; 1e-3 when zero
	Clip      float64 // clip each gradient element to ±Clip (0: no clipping)
	L2        float64 // L2 regularisation (0: none)
	Seed      uint64  // the initial weights' seed when no Weights are given
	// Solver replaces the Adam solver built from LearnRate, Clip and L2
	// (for another Gorgonia solver, or Adam with other β or ε).
	Solver gorgonia.Solver
}

// Trainer trains a Model with Adam (Gorgonia's AdamSolver) on batches of a
// fixed size. It owns one graph and one tape machine: use it from one
// goroutine; run several Trainers in parallel for parallel studies.
type Trainer struct {
	p      *program
	vm     gorgonia.VM
	solver gorgonia.Solver
	params gorgonia.Nodes
	steps  int
}

// NewTrainer builds the training graph of cfg with batches of tc.Batch
// sequences. The weights start from w (copied) or, if w is nil, from
// tc.Seed. opts may add a quantization plan (quantization-aware training
// with straight-through gradients); the scales of its learnable sites
// (Quant.Learnable) are parameters that Adam updates with the weights, and
// Weights returns them.
func NewTrainer(cfg Config, w Weights, tc TrainConfig, opts ...Option) (*Trainer, error) {
	const fn = "graph.NewTrainer"
	if err := positive(fn, "TrainConfig.Batch", tc.Batch); err != nil {
		return nil, err
	}
	if w != nil {
		opts = append([]Option{WithWeights(w)}, opts...)
	} else {
		opts = append([]Option{WithSeed(tc.Seed)}, opts...)
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	p, err := newProgram(fn, cfg, tc.Batch, opts)
	if err != nil {
		return nil, err
	}
	params := p.model.Params()
	if _, err := gorgonia.Grad(p.loss, params...); err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	solver := tc.Solver
	if solver == nil {
		solver = NewAdam(tc)
	}
	return &Trainer{
		p:      p,
		vm:     gorgonia.NewTapeMachine(p.g, gorgonia.BindDualValues(params...)),
		solver: solver,
		params: params,
	}, nil
}

// NewAdam returns Gorgonia's Adam solver with tc's LearnRate (1e-3 when
// zero), Clip and L2.
func NewAdam(tc TrainConfig) *gorgonia.AdamSolver {
	lr := tc.LearnRate
	if lr == 0 {
		lr = 1e-3
	}
	sopts := []gorgonia.SolverOpt{gorgonia.WithLearnRate(lr)}
	if tc.Clip > 0 {
		sopts = append(sopts, gorgonia.WithClip(tc.Clip))
	}
	if tc.L2 > 0 {
		sopts = append(sopts, gorgonia.WithL2Reg(tc.L2))
	}
	return gorgonia.NewAdamSolver(sopts...)
}

// SetSolver makes later steps use s. Gorgonia's AdamSolver has no way to
// change its learning rate; a schedule can swap in a new solver (its
// moment estimates start again from zero).
func (t *Trainer) SetSolver(s gorgonia.Solver) { t.solver = s }

// Step runs one training step on b: forward, backward and an Adam update.
// The metrics are those of the forward pass, before the update.
func (t *Trainer) Step(b Batch) (Metrics, error) {
	const fn = "graph.Trainer.Step"
	count, err := t.p.load(fn, b)
	if err != nil {
		return Metrics{}, err
	}
	defer t.vm.Reset()
	if err := t.vm.RunAll(); err != nil {
		return Metrics{}, fmt.Errorf("%s: %w", fn, err)
	}
	if err := t.solver.Step(gorgonia.NodesToValueGrads(t.params)); err != nil {
		return Metrics{}, fmt.Errorf("%s: %w", fn, err)
	}
	t.steps++
	return t.p.metrics(b, count), nil
}

// Steps returns the number of steps taken.
func (t *Trainer) Steps() int { return t.steps }

// Model returns the model being trained (on the trainer's graph).
func (t *Trainer) Model() *Model { return t.p.model }

// Weights returns copies of the current weights.
func (t *Trainer) Weights() (Weights, error) { return t.p.model.Weights() }

// Close releases the machine.
func (t *Trainer) Close() error { return t.vm.Close() }

// Evaluator runs a model forward on batches of a fixed size, with given
// weights and optionally a quantization plan. It owns one graph and one
// tape machine: use it from one goroutine.
type Evaluator struct {
	p    *program
	vm   gorgonia.VM
	last []int
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
	return &Evaluator{p: p, vm: gorgonia.NewTapeMachine(p.g)}, nil
}

// Sites returns the quantization sites of the evaluated model (none without
// a plan). Their statistics add up over every Eval since the evaluator was
// built or ResetStats was called; weight sites are quantized once, when
// the evaluator is built.
func (e *Evaluator) Sites() []*Site { return e.p.model.Sites() }

// Stats returns every site's statistics by site name.
func (e *Evaluator) Stats() map[string]quantize.StatsSnapshot { return SiteStats(e.Sites()) }

// ResetStats sets the counters of every activation site to zero (weight
// sites keep the record of their one quantization).
func (e *Evaluator) ResetStats() {
	for _, s := range e.Sites() {
		if !s.Kind.isWeight() {
			s.ResetStats()
		}
	}
}

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
	e.last = nil
	return e.p.metrics(b, count), nil
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
// batch evaluated (batch·SeqLen values).
func (e *Evaluator) Predictions() []int {
	if e.last == nil && e.p.logits != nil {
		e.last = argmaxRows(e.p.logits, e.p.cfg.Vocab)
	}
	return e.last
}

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
