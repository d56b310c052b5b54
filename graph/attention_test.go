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
	worst, report := newWorst(t)
	defer report()
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
			sq := []int{p.DModel, p.DModel}
			checkModule(t, &c, dt, "attn.", map[string][]int{"Wq": sq, "Wk": sq, "Wv": sq, "Wo": sq}, worst,
				func(g *gorgonia.ExprGraph, w Weights) (module, error) {
					return NewAttention(g, "attn", cfg, WithWeights(w))
				})
		})
	}
}
