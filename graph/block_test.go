package graph

import (
	"fmt"
	"slices"
	"testing"

	"github.com/actq/actq/internal/gradcheck"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// withNodes makes the builder use existing nodes as the named parameters.
func withNodes(nodes map[string]*gorgonia.Node) Option {
	return func(o *options) { o.nodes = nodes }
}

func blockShapes(d, h int, gated bool, norm Norm) map[string][]int {
	sq := []int{d, d}
	s := map[string][]int{
		"norm1.g": {d}, "norm2.g": {d},
		"attn.Wq": sq, "attn.Wk": sq, "attn.Wv": sq, "attn.Wo": sq,
		"ffn.W1": {d, h}, "ffn.B1": {h}, "ffn.W2": {h, d}, "ffn.B2": {d},
	}
	if gated {
		s["ffn.W3"], s["ffn.B3"] = []int{d, h}, []int{h}
	}
	if norm == NormLayer {
		s["norm1.b"], s["norm2.b"] = []int{d}, []int{d}
	}
	return s
}

// TestBlockGolden compares a causal pre-norm Block (RMSNorm + GELU FFN, and
// LayerNorm + SwiGLU) with PyTorch: output and gradients with respect to x
// and every parameter.
func TestBlockGolden(t *testing.T) {
	worst, report := newWorst(t)
	defer report()
	for _, c := range goldenCases(t, "block") {
		t.Run(c.Name, func(t *testing.T) {
			var p struct {
				DModel     int    `json:"d_model"`
				Heads      int    `json:"heads"`
				DHidden    int    `json:"d_hidden"`
				Activation string `json:"activation"`
				Gated      bool   `json:"gated"`
				Norm       Norm   `json:"norm"`
			}
			if err := c.ParamsInto(&p); err != nil {
				t.Fatal(err)
			}
			dt := dtypeNamed(c.Dtype)
			cfg := BlockConfig{DModel: p.DModel, Heads: p.Heads, DHidden: p.DHidden, Activation: p.Activation,
				Gated: p.Gated, Causal: true, Norm: p.Norm, Dtype: dt}
			checkModule(t, &c, dt, "blk.", blockShapes(p.DModel, p.DHidden, p.Gated, p.Norm), worst,
				func(g *gorgonia.ExprGraph, w Weights) (module, error) { return NewBlock(g, "blk", cfg, WithWeights(w)) })
		})
	}
}

// TestBlockGradcheck checks the gradients of a whole Block with respect to
// its input and every parameter against central finite differences in
// float64, on the tape and Lisp machines, for each norm and FFN kind.
func TestBlockGradcheck(t *testing.T) {
	const batch, seq, d, h = 2, 3, 4, 6
	for _, cfg := range []BlockConfig{
		{DModel: d, Heads: 2, DHidden: h, Activation: "gelu", Causal: true, Norm: NormRMS},
		{DModel: d, Heads: 1, DHidden: h, Activation: "silu", Gated: true, Norm: NormLayer},
		{DModel: d, Heads: 2, DHidden: h, Activation: "gelu_tanh", Gated: true, Causal: true, Norm: NormLayer},
	} {
		cfg.Dtype = tensor.Float64
		t.Run(fmt.Sprintf("%s/gated=%v/%s/causal=%v", cfg.Activation, cfg.Gated, cfg.Norm, cfg.Causal), func(t *testing.T) {
			shapes := blockShapes(d, h, cfg.Gated, cfg.Norm)
			names := make([]string, 0, len(shapes))
			for k := range shapes {
				names = append(names, k)
			}
			slices.Sort(names)
			// Inputs: x, then the parameters (random, gains near 1).
			inputs := []*tensor.Dense{initValue(1, "x", initNormal, tensor.Float64, batch, seq, d)}
			for _, k := range names {
				v := initValue(7, k, initNormal, tensor.Float64, shapes[k]...)
				data := v.Float64s()
				for i := range data {
					data[i] *= 0.5
					if k[len(k)-2:] == ".g" {
						data[i] += 1
					}
				}
				inputs = append(inputs, v)
			}
			res, err := gradcheck.Check(inputs, func(g *gorgonia.ExprGraph, xs gorgonia.Nodes) (*gorgonia.Node, error) {
				nodes := map[string]*gorgonia.Node{}
				for i, k := range names {
					nodes["blk."+k] = xs[i+1]
				}
				bl, err := NewBlock(g, "blk", cfg, withNodes(nodes))
				if err != nil {
					return nil, err
				}
				return bl.Forward(xs[0])
			}, gradcheck.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("max error/tolerance: tape %.3g, lisp %.3g", res.MaxTapeErr, res.MaxLispErr)
		})
	}
}
