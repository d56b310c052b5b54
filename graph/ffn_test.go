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
	worst, report := newWorst(t)
	defer report()
	for _, c := range goldenCases(t, "ffn") {
		t.Run(c.Name, func(t *testing.T) {
			cfg := ffnCaseConfig(t, &c)
			checkModule(t, &c, cfg.Dtype, "ffn.", ffnShapes(cfg.DModel, cfg.DHidden), worst,
				func(g *gorgonia.ExprGraph, w Weights) (module, error) { return NewFFN(g, "ffn", cfg, WithWeights(w)) })
		})
	}
}
