package graph

import (
	"fmt"

	"github.com/actq/actq/internal/layerops"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// DefaultNormEps is the ε of RMSNorm and LayerNorm when none is given
// (PyTorch's nn.LayerNorm default).
const DefaultNormEps = 1e-5

// Norm names a normalisation layer: "rms" (RMSNorm, the default) or
// "layer" (LayerNorm).
type Norm string

const (
	NormRMS   Norm = "rms"   // RMSNorm: x/√(mean(x²)+ε)·g
	NormLayer Norm = "layer" // LayerNorm: (x−mean(x))/√(var(x)+ε)·g + b
)

// Normalizer is a normalisation layer over the last axis of an (n, D) input.
type Normalizer interface {
	Forward(x *gorgonia.Node) (*gorgonia.Node, error) // (n, D) → (n, D)
	Params() gorgonia.Nodes
}

// RMSNorm is y = x / √(mean(x²) + ε) ⊙ G over the last axis (Zhang and
// Sennrich 2019, as in LLaMA). It is one fused node with a fused backward
// pass; the row statistics are accumulated in float64.
type RMSNorm struct {
	G   *gorgonia.Node // gain (D), named name+".g", starts at 1
	Eps float64

	name string
	d    int
	b    *builder
}

// LayerNorm is y = (x − mean(x)) / √(var(x) + ε) ⊙ G + B over the last
// axis, with the biased variance (PyTorch's F.layer_norm). It is one fused
// node with a fused backward pass; the row statistics are accumulated in
// float64.
type LayerNorm struct {
	G   *gorgonia.Node // gain (D), named name+".g", starts at 1
	B   *gorgonia.Node // shift (D), named name+".b", starts at 0
	Eps float64

	name string
	d    int
	b    *builder
}

// NewRMSNorm adds an RMSNorm over d features to g; eps ≤ 0 means
// DefaultNormEps. It returns an error wrapping ErrConfig for a nil graph,
// d ≤ 0, a bad dtype or a name already used in g.
func NewRMSNorm(g *gorgonia.ExprGraph, name string, d int, eps float64, dt tensor.Dtype, opts ...Option) (*RMSNorm, error) {
	n, err := newNormFn("graph.NewRMSNorm", g, name, NormRMS, d, eps, dt, opts)
	if err != nil {
		return nil, err
	}
	return n.(*RMSNorm), nil
}

// NewLayerNorm adds a LayerNorm over d features to g; eps ≤ 0 means
// DefaultNormEps. It returns an error wrapping ErrConfig for a nil graph,
// d ≤ 0, a bad dtype or a name already used in g.
func NewLayerNorm(g *gorgonia.ExprGraph, name string, d int, eps float64, dt tensor.Dtype, opts ...Option) (*LayerNorm, error) {
	n, err := newNormFn("graph.NewLayerNorm", g, name, NormLayer, d, eps, dt, opts)
	if err != nil {
		return nil, err
	}
	return n.(*LayerNorm), nil
}

func newNormFn(fn string, g *gorgonia.ExprGraph, name string, kind Norm, d int, eps float64, dt tensor.Dtype, opts []Option) (Normalizer, error) {
	return construct(fn, g, dt, opts, func(b *builder) (Normalizer, error) {
		return newNorm(b, name, kind, d, eps)
	})
}

func newNorm(b *builder, name string, kind Norm, d int, eps float64) (Normalizer, error) {
	if err := positive(name, "d", d); err != nil {
		return nil, err
	}
	if eps <= 0 {
		eps = DefaultNormEps
	}
	switch kind {
	case NormRMS, "":
		n := &RMSNorm{Eps: eps, name: name, d: d, b: b}
		var err error
		if n.G, err = b.param(name+".g", initOnes, d); err != nil {
			return nil, err
		}
		return n, nil
	case NormLayer:
		n := &LayerNorm{Eps: eps, name: name, d: d, b: b}
		var err error
		if n.G, err = b.param(name+".g", initOnes, d); err != nil {
			return nil, err
		}
		if n.B, err = b.param(name+".b", initZeros, d); err != nil {
			return nil, err
		}
		return n, nil
	}
	return nil, fmt.Errorf("%s: unknown norm %q (want %q or %q): %w", name, kind, NormRMS, NormLayer, ErrConfig)
}

// Forward normalises each row of x (n, D).
func (n *RMSNorm) Forward(x *gorgonia.Node) (*gorgonia.Node, error) {
	fn := "graph.RMSNorm(" + n.name + ").Forward"
	if err := checkInput(fn, "x", x, n.b.dt, -1, n.d); err != nil {
		return nil, err
	}
	y, err := n.forward(x)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	return y, nil
}

func (n *RMSNorm) forward(x *gorgonia.Node) (*gorgonia.Node, error) {
	return layerops.Norm(x, n.G, nil, n.Eps)
}

// Params returns G.
func (n *RMSNorm) Params() gorgonia.Nodes { return gorgonia.Nodes{n.G} }

// Forward normalises each row of x (n, D).
func (n *LayerNorm) Forward(x *gorgonia.Node) (*gorgonia.Node, error) {
	fn := "graph.LayerNorm(" + n.name + ").Forward"
	if err := checkInput(fn, "x", x, n.b.dt, -1, n.d); err != nil {
		return nil, err
	}
	y, err := n.forward(x)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	return y, nil
}

func (n *LayerNorm) forward(x *gorgonia.Node) (*gorgonia.Node, error) {
	return layerops.Norm(x, n.G, n.B, n.Eps)
}

// Params returns G and B.
func (n *LayerNorm) Params() gorgonia.Nodes { return gorgonia.Nodes{n.G, n.B} }
