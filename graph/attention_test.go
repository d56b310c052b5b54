package graph

import (
	"testing"

	"gorgonia.org/gorgonia"
)

// TestAttentionGolden compares Attention's output and its gradients with
// respect to x and every weight with PyTorch, for 1, 2 and 4 heads, causal
// and not, in float32 and float64, on the tape machine (forward only and
// with gorgonia.Grad) and the Lisp machine.
func TestAttentionGolden(t *testing.T) {
	worst := map[string]*errStat{"float32": {}, "float64": {}}
	for _, c := range goldenCases(t, "attention") {
		t.Run(c.Name, func(t *testing.T) {
			var p struct {
				DModel int  `json:"d_model"`
				Heads  int  `json:"heads"`
				Causal bool `json:"causal"`
			}
			if err := c.ParamsInto(&p); err != nil {
				t.Fatal(err)
			}
			dt := dtypeNamed(c.Dtype)
			cfg := AttentionConfig{DModel: p.DModel, Heads: p.Heads, Causal: p.Causal, Dtype: dt}
			bs, seq, d := c.Shape[0], c.Shape[1], c.Shape[2]
			sq := []int{d, d}
			w := goldenWeights(t, &c, dt, "attn.", map[string][]int{"Wq": sq, "Wk": sq, "Wv": sq, "Wo": sq})
			x := goldenDense(t, &c, "x", dt, bs, seq, d)
			dy := goldenDense(t, &c, "dy", dt, bs, seq, d)
			for _, m := range []machine{tapeFwd, tapeGrad, lispGrad} {
				res, err := runGraph(m, dt, dy, func(g *gorgonia.ExprGraph) (map[string]*gorgonia.Node, *gorgonia.Node, error) {
					a, err := NewAttention(g, "attn", cfg, WithWeights(w))
					if err != nil {
						return nil, nil, err
					}
					xn := gorgonia.NewTensor(g, dt, 3, gorgonia.WithShape(bs, seq, d), gorgonia.WithName("x"), gorgonia.WithValue(x.Clone()))
					y, err := a.Forward(xn)
					wrt := map[string]*gorgonia.Node{"x": xn}
					for _, p := range a.Params() {
						wrt[p.Name()[len("attn."):]] = p
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
