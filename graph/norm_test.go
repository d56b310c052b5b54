package graph

import (
	"testing"

	"gorgonia.org/gorgonia"
)

// TestNormGolden compares RMSNorm and LayerNorm (output and gradients with
// respect to x, the gain and the shift) with PyTorch.
func TestNormGolden(t *testing.T) {
	worst, report := newWorst(t)
	defer report()
	for _, c := range goldenCases(t, "norm") {
		t.Run(c.Name, func(t *testing.T) {
			var p struct{ Norm Norm }
			if err := c.ParamsInto(&p); err != nil {
				t.Fatal(err)
			}
			dt := dtypeNamed(c.Dtype)
			d := c.Shape[len(c.Shape)-1]
			checkModule(t, &c, dt, "norm.", map[string][]int{"g": {d}, "b": {d}}, worst,
				func(g *gorgonia.ExprGraph, w Weights) (module, error) {
					b, err := newBuilder("test", g, dt, []Option{WithWeights(w)})
					if err != nil {
						return nil, err
					}
					return newNorm(b, "norm", p.Norm, d, 0)
				})
		})
	}
}
