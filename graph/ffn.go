package graph

import (
	"fmt"

	"github.com/actq/actq/ops"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// FFNConfig configures a position-wise feed-forward layer.
type FFNConfig struct {
	DModel, DHidden int
	Activation      string       // "gelu", "gelu_tanh", "silu", "relu"
	Gated           bool         // y = (act(x·W1+B1) ⊙ (x·W3+B3))·W2 + B2  (GeGLU / SwiGLU)
	Dtype           tensor.Dtype // Float32 when zero
	NoBias          bool         // no biases: y = act(x·W1)·W2, or (act(x·W1) ⊙ x·W3)·W2 (Llama's MLP)
}

// FFN is a feed-forward layer: y = act(x·W1 + B1)·W2 + B2, or with Gated
// y = (act(x·W1 + B1) ⊙ (x·W3 + B3))·W2 + B2 (GeGLU with gelu, SwiGLU with
// silu; Shazeer 2020). The activation is one of actq's ops. With NoBias
// the biases are left out: Llama's MLP down(silu(gate(x)) ⊙ up(x)) is
// Gated, "silu" and NoBias with W1 = gate, W3 = up, W2 = down (each
// transposed from PyTorch's (out, in) layout).
//
// Its parameters are input nodes named name+".W1", ".B1", ".W2", ".B2",
// ".W3", ".B3"; Gorgonia's Let can set them.
type FFN struct {
	W1, B1, W2, B2, W3, B3 *gorgonia.Node // W3, B3 nil unless Gated; biases nil with NoBias

	cfg  FFNConfig
	name string
	act  func(*gorgonia.Node) (*gorgonia.Node, error)
	b    *builder
}

// Activations returns the names FFNConfig.Activation accepts.
func Activations() []string { return []string{"gelu", "gelu_tanh", "silu", "relu"} }

// activation returns actq's op called name.
func activation(name string) (func(*gorgonia.Node) (*gorgonia.Node, error), error) {
	switch name {
	case "gelu":
		return ops.GELU, nil
	case "gelu_tanh":
		return ops.GELUTanh, nil
	case "silu":
		return ops.SiLU, nil
	case "relu":
		return ops.ReLU, nil
	}
	return nil, fmt.Errorf("unknown activation %q (want one of %q): %w", name, Activations(), ErrConfig)
}

// NewFFN adds an FFN's parameters to g. W1, W3 (DModel, DHidden) and W2
// (DHidden, DModel) start uniform in ±1/√fan-in (PyTorch's nn.Linear
// default), seeded (WithSeed) or given (WithWeights); biases start at zero.
//
// It returns an error wrapping ErrConfig for a nil graph, DModel or DHidden
// ≤ 0, an unknown activation, a dtype other than Float32 and Float64, or a
// parameter name already used in g.
func NewFFN(g *gorgonia.ExprGraph, name string, cfg FFNConfig, opts ...Option) (*FFN, error) {
	return construct("graph.NewFFN", g, cfg.Dtype, opts, func(b *builder) (*FFN, error) {
		return newFFN(b, name, cfg)
	})
}

func newFFN(b *builder, name string, cfg FFNConfig) (*FFN, error) {
	if err := positive(name, "DModel", cfg.DModel, "DHidden", cfg.DHidden); err != nil {
		return nil, err
	}
	act, err := activation(cfg.Activation)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	cfg.Dtype = b.dt
	f := &FFN{cfg: cfg, name: name, act: act, b: b}
	d, h := cfg.DModel, cfg.DHidden
	for _, p := range []struct {
		n     **gorgonia.Node
		name  string
		kind  initKind
		shape []int
		skip  bool
	}{
		{&f.W1, ".W1", initUniform, []int{d, h}, false},
		{&f.B1, ".B1", initZeros, []int{h}, cfg.NoBias},
		{&f.W2, ".W2", initUniform, []int{h, d}, false},
		{&f.B2, ".B2", initZeros, []int{d}, cfg.NoBias},
		{&f.W3, ".W3", initUniform, []int{d, h}, !cfg.Gated},
		{&f.B3, ".B3", initZeros, []int{h}, !cfg.Gated || cfg.NoBias},
	} {
		if p.skip {
			continue
		}
		if *p.n, err = b.param(name+p.name, p.kind, p.shape...); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// Config returns the layer's configuration (with its dtype filled in).
func (f *FFN) Config() FFNConfig { return f.cfg }

// Params returns the parameters: W1, B1, W2, B2 and, if gated, W3, B3
// (without the biases with NoBias).
func (f *FFN) Params() gorgonia.Nodes { return nonNil(f.W1, f.B1, f.W2, f.B2, f.W3, f.B3) }

// Forward returns the layer applied to each row of x (n, DModel): (n,
// DModel). It returns an error wrapping ops.ErrNilNode for a nil x,
// ops.ErrDtype for another dtype than the layer's and ops.ErrShape for
// another rank than 2 or a last dimension other than DModel.
//
// Under a quantization plan (WithPlan), the sites are name+".in" (x,
// before W1 and W3), name+".hidden" (the input of W2: after the
// activation, and after the gate when Gated) and the weights by name.
func (f *FFN) Forward(x *gorgonia.Node) (*gorgonia.Node, error) {
	fn := "graph.FFN(" + f.name + ").Forward"
	if err := checkInput(fn, "x", x, f.b.dt, -1, f.cfg.DModel); err != nil {
		return nil, err
	}
	y, err := f.forward(x)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	return y, nil
}

func (f *FFN) forward(x *gorgonia.Node) (*gorgonia.Node, error) {
	b := f.b
	xq, err := b.site(f.name+".in", SiteFFNInput, x)
	if err != nil {
		return nil, err
	}
	h, err := affine(b, xq, f.W1, f.B1, SiteWeight)
	if err != nil {
		return nil, err
	}
	if h, err = f.act(h); err != nil {
		return nil, err
	}
	if f.cfg.Gated {
		gate, err := affine(b, xq, f.W3, f.B3, SiteWeight)
		if err != nil {
			return nil, err
		}
		if h, err = gorgonia.HadamardProd(h, gate); err != nil {
			return nil, err
		}
	}
	if h, err = b.site(f.name+".hidden", SiteFFNHidden, h); err != nil {
		return nil, err
	}
	return affine(b, h, f.W2, f.B2, SiteWeight)
}

// Sites returns the FFN's quantization sites (none without a plan).
func (f *FFN) Sites() []*Site { return f.b.sitesWithPrefix(f.name + ".") }
