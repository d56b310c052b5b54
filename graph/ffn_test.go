package graph

import (
	"testing"

	"github.com/actq/actq/internal/numtest"
	"gorgonia.org/gorgonia"
)

func ffnCaseConfig(t *testing.T, c *numtest.Case) FFNConfig {
	var p struct {
		DModel     int    `json:"d_model"`
		DHidden    int    `json:"d_hidden"`
		Activation string `json:"activation"`
		Gated      bool   `json:"gated"`
	}
	if err := c.ParamsInto(&p); err != nil {
		t.Fatal(err)
	}
	return FFNConfig{DModel: p.DModel, DHidden: p.DHidden, Activation: p.Activation, Gated: p.Gated, Dtype: dtypeNamed(c.Dtype)}
}

func ffnShapes(d, h int) map[string][]int {
	return map[string][]int{"W1": {d, h}, "B1": {h}, "W2": {h, d}, "B2": {d}, "W3": {d, h}, "B3": {h}}
}

// TestFFNGolden compares FFN's output and its gradients with respect to x
// and every weight with PyTorch, for each activation, plain and gated, in
// float32 and float64, on the tape machine (forward only and with
// gorgonia.Grad) and the Lisp machine.
func TestFFNGolden(t *testing.T) {
	worst := map[string]*errStat{"float32": {}, "float64": {}}
	for _, c := range goldenCases(t, "ffn") {
		t.Run(c.Name, func(t *testing.T) {
			cfg := ffnCaseConfig(t, &c)
			dt := cfg.Dtype
			n, d := c.Shape[0], c.Shape[1]
			w := goldenWeights(t, &c, dt, "ffn.", ffnShapes(d, cfg.DHidden))
			x := goldenDense(t, &c, "x", dt, n, d)
			dy := goldenDense(t, &c, "dy", dt, n, d)
			for _, m := range []machine{tapeFwd, tapeGrad, lispGrad} {
				res, err := runGraph(m, dt, dy, func(g *gorgonia.ExprGraph) (map[string]*gorgonia.Node, *gorgonia.Node, error) {
					f, err := NewFFN(g, "ffn", cfg, WithWeights(w))
					if err != nil {
						return nil, nil, err
					}
					xn := gorgonia.NewMatrix(g, dt, gorgonia.WithShape(n, d), gorgonia.WithName("x"), gorgonia.WithValue(x.Clone()))
					y, err := f.Forward(xn)
					wrt := map[string]*gorgonia.Node{"x": xn}
					for _, p := range f.Params() {
						wrt[p.Name()[len("ffn."):]] = p
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
