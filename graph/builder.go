package graph

import (
	"fmt"

	"github.com/actq/actq/internal/infer"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// An Option changes how a builder (NewLinear, NewFFN, NewAttention,
// NewBlock, NewModel, …) makes its parameters and quantization sites.
type Option func(*options)

type options struct {
	seed    uint64
	weights Weights
	nodes   map[string]*gorgonia.Node // parameters given as existing nodes (tests)
	plan    *Plan
	// calibrate: static sites observe instead of quantizing (Calibrate);
	// prequant: weights are quantized once at build time (Evaluator).
	calibrate, prequant bool
	attention           AttentionArithmetic // the Generator's (WithAttention)
	products            infer.Products      // the Generator's (withProducts)
}

// WithSeed sets the seed of the initial weights (default 0). Each
// parameter's values depend only on the seed and the parameter's name.
func WithSeed(seed uint64) Option { return func(o *options) { o.seed = seed } }

// WithWeights gives the parameters' values by name; each is copied into the
// graph. Every parameter the builder makes must be present, with its shape
// and dtype; names in w that the builder does not make are ignored.
func WithWeights(w Weights) Option { return func(o *options) { o.weights = w } }

// builder makes the parameters, constants and quantization sites of one
// layer or model on one graph.
type builder struct {
	g      *gorgonia.ExprGraph
	dt     tensor.Dtype
	opts   options
	params gorgonia.Nodes // every parameter made, in order
	q      *quantizer     // nil without a plan
}

func newBuilder(fn string, g *gorgonia.ExprGraph, dt tensor.Dtype, opts []Option) (*builder, error) {
	if g == nil {
		return nil, fmt.Errorf("%s: nil graph: %w", fn, ErrConfig)
	}
	b := &builder{g: g, dt: dt}
	for _, o := range opts {
		if o != nil {
			o(&b.opts)
		}
	}
	if b.opts.plan != nil {
		b.q = &quantizer{plan: b.opts.plan, byName: map[string]*Site{}, calibrate: b.opts.calibrate, prequant: b.opts.prequant}
	}
	return b, nil
}

// param makes the input node for a parameter: its value comes from the
// builder's Weights if it has any, else from the seeded initialisation.
func (b *builder) param(name string, kind initKind, shape ...int) (*gorgonia.Node, error) {
	return b.paramOr(name, shape, false, func() *tensor.Dense { return initValue(b.opts.seed, name, kind, b.dt, shape...) })
}

// paramOr makes the input node for a parameter whose value comes from the
// builder's Weights if it has any (a copy), else from start. If optional,
// Weights that lack the name are not an error: start gives the value.
func (b *builder) paramOr(name string, shape []int, optional bool, start func() *tensor.Dense) (*gorgonia.Node, error) {
	if n, ok := b.opts.nodes[name]; ok {
		if n.Dtype() != b.dt || !n.Shape().Eq(tensor.Shape(shape)) {
			return nil, fmt.Errorf("parameter %q: given node %v %v, want %v %v: %w", name, n.Dtype(), n.Shape(), b.dt, tensor.Shape(shape), ErrConfig)
		}
		b.params = append(b.params, n)
		return n, nil
	}
	if len(b.g.ByName(name)) > 0 {
		// Gorgonia merges input nodes of equal name and shape into one,
		// which would silently tie two layers' weights together.
		return nil, fmt.Errorf("parameter %q: a node of that name is already in the graph: %w", name, ErrConfig)
	}
	var v *tensor.Dense
	w, ok := b.opts.weights[name]
	switch {
	case ok && w != nil:
		if w.Dtype() != b.dt || !w.Shape().Eq(tensor.Shape(shape)) {
			return nil, fmt.Errorf("parameter %q: given %v %v, want %v %v: %w", name, w.Dtype(), w.Shape(), b.dt, tensor.Shape(shape), ErrConfig)
		}
		v = w.Clone().(*tensor.Dense)
	case b.opts.weights != nil && !optional:
		return nil, fmt.Errorf("parameter %q: not in the given weights: %w", name, ErrConfig)
	default:
		v = start()
	}
	n := gorgonia.NewTensor(b.g, b.dt, len(shape), gorgonia.WithShape(shape...), gorgonia.WithName(name), gorgonia.WithValue(v))
	b.params = append(b.params, n)
	return n, nil
}
