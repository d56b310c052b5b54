package graph

import (
	"fmt"

	"github.com/actq/actq/internal/opkit"
	"gorgonia.org/gorgonia"
)

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

// Trainer trains a Model with Adam (NewAdam: Gorgonia's AdamSolver's
// numbers, computed faster) on batches of a fixed size. It owns one graph
// and one tape machine: use it from one goroutine; run several Trainers in
// parallel for parallel studies.
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
	opkit.ReuseResults(p.g)
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

// NewAdam returns an Adam solver with tc's LearnRate (1e-3 when zero),
// Clip and L2: the numbers of Gorgonia's
// gorgonia.NewAdamSolver(gorgonia.WithLearnRate(lr), …), in one pass per
// parameter (see Adam).
func NewAdam(tc TrainConfig) *Adam {
	lr := tc.LearnRate
	if lr == 0 {
		lr = 1e-3
	}
	return &Adam{eta: lr, clip: max(tc.Clip, 0), l2: max(tc.L2, 0)}
}

// SetSolver makes later steps use s. Adam (like Gorgonia's AdamSolver)
// has no way to change its learning rate; a schedule can swap in a new
// solver (its moment estimates start again from zero).
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
	m, _ := t.p.metrics(b, count)
	return m, nil
}

// Steps returns the number of steps taken.
func (t *Trainer) Steps() int { return t.steps }

// Model returns the model being trained (on the trainer's graph).
func (t *Trainer) Model() *Model { return t.p.model }

// Weights returns copies of the current weights.
func (t *Trainer) Weights() (Weights, error) { return t.p.model.Weights() }

// Close releases the machine.
func (t *Trainer) Close() error { return t.vm.Close() }
