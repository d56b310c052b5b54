package graph

import (
	"testing"

	"gorgonia.org/gorgonia"
)

// TestNormGolden compares RMSNorm and LayerNorm (output and gradients with
// respect to x, the gain and the shift) with PyTorch.
func TestNormGolden(t *testing.T) {
	worst := map[string]*errStat{"float32": {}, "float64": {}}
	for _, c := range goldenCases(t, "norm") {
		t.Run(c.Name, func(t *testing.T) {
			var p struct{ Norm Norm }
			if err := c.ParamsInto(&p); err != nil {
				t.Fatal(err)
			}
			dt := dtypeNamed(c.Dtype)
			n, d := c.Shape[0], c.Shape[1]
			w := goldenWeights(t, &c, dt, "norm.", map[string][]int{"g": {d}, "b": {d}})
			x := goldenDense(t, &c, "x", dt, n, d)
			dy := goldenDense(t, &c, "dy", dt, n, d)
			for _, m := range []machine{tapeFwd, tapeGrad, lispGrad} {
				res, err := runGraph(m, dt, dy, func(g *gorgonia.ExprGraph) (map[string]*gorgonia.Node, *gorgonia.Node, error) {
					b, err := newBuilder("test", g, dt, []Option{WithWeights(w)})
					if err != nil {
						return nil, nil, err
					}
					nl, err := newNorm(b, "norm", p.Norm, d, 0)
					if err != nil {
						return nil, nil, err
					}
					xn := gorgonia.NewMatrix(g, dt, gorgonia.WithShape(n, d), gorgonia.WithName("x"), gorgonia.WithValue(x.Clone()))
					y, err := nl.Forward(xn)
					wrt := map[string]*gorgonia.Node{"x": xn}
					for _, p := range nl.Params() {
						wrt[p.Name()[len("norm."):]] = p
					}
					return wrt, y, err
				})
				if err != nil {
					t.Fatalf("%s: %v", m, err)
				}
				worst[c.Dtype].merge(checkResult(t, &c, m, res))
			}
		})
	}
	for dt, st := range worst {
		t.Logf("%s: max |error| / max |ref| = %.3g; max error / tolerance = %.3g at %s", dt, st.maxAbs, st.maxExc, st.where)
	}
}
