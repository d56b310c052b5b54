package graph

import (
	"fmt"

	"github.com/actq/actq/internal/layerops"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Linear is an affine map y = x·W + B.
type Linear struct {
	W *gorgonia.Node // (In, Out), named name+".W"
	B *gorgonia.Node // (Out), named name+".B"; nil without a bias

	name    string
	in, out int
	kind    SiteKind // the quantization site kind of W
	b       *builder
}

// NewLinear adds a Linear layer's parameters to g: W (in, out) starts
// uniform in ±1/√in (PyTorch's nn.Linear default), B at zero. dt is
// Float32 or Float64 (Float32 when zero).
//
// It returns an error wrapping ErrConfig for a nil graph, non-positive
// sizes, a bad dtype or a name already used in g.
func NewLinear(g *gorgonia.ExprGraph, name string, in, out int, bias bool, dt tensor.Dtype, opts ...Option) (*Linear, error) {
	return construct("graph.NewLinear", g, dt, opts, func(b *builder) (*Linear, error) {
		return newLinear(b, name, in, out, bias, SiteWeight)
	})
}

func newLinear(b *builder, name string, in, out int, bias bool, kind SiteKind) (*Linear, error) {
	if err := positive(name, "in", in, "out", out); err != nil {
		return nil, err
	}
	l := &Linear{name: name, in: in, out: out, kind: kind, b: b}
	var err error
	if l.W, err = b.param(name+".W", initUniform, in, out); err != nil {
		return nil, err
	}
	if bias {
		if l.B, err = b.param(name+".B", initZeros, out); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// Forward returns x·W + B for x of shape (n, In): (n, Out).
func (l *Linear) Forward(x *gorgonia.Node) (*gorgonia.Node, error) {
	fn := "graph.Linear(" + l.name + ").Forward"
	if err := checkInput(fn, "x", x, l.b.dt, -1, l.in); err != nil {
		return nil, err
	}
	y, err := affine(l.b, x, l.W, l.B, l.kind)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	return y, nil
}

// Params returns W and, if present, B.
func (l *Linear) Params() gorgonia.Nodes { return nonNil(l.W, l.B) }

// affine returns x·q(W) + B for a 2-D x, with W's quantization site (of the
// given kind, named after W) and B added to every row; B may be nil. It is
// one node, layerops.MatMul: actq's GEMM (package blas) with the bias
// fused, whatever BLAS Gorgonia is set to use.
func affine(b *builder, x, w, bias *gorgonia.Node, kind SiteKind) (*gorgonia.Node, error) {
	wq, err := b.site(w.Name(), kind, w)
	if err != nil {
		return nil, err
	}
	return layerops.MatMul(x, wq, bias)
}

func nonNil(ns ...*gorgonia.Node) gorgonia.Nodes {
	out := make(gorgonia.Nodes, 0, len(ns))
	for _, n := range ns {
		if n != nil {
			out = append(out, n)
		}
	}
	return out
}

// Sites returns the layer's quantization sites (none without a plan).
func (l *Linear) Sites() []*Site { return l.b.sitesWithPrefix(l.name + ".") }
