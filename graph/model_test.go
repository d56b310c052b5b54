package graph

import (
	"fmt"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestModelGolden compares the tiny model's logits, its cross-entropy loss
// (with ignored positions) and the loss's gradient with respect to every
// parameter with PyTorch, on the tape machine. (Gorgonia's ByIndices has
// no working Lisp-machine gradient, so the model trains on the tape
// machine only.)
func TestModelGolden(t *testing.T) {
	worst := map[string]*errStat{"float32": {}, "float64": {}}
	for _, c := range goldenCases(t, "model") {
		t.Run(c.Name, func(t *testing.T) {
			var p struct {
				Vocab      int    `json:"vocab"`
				SeqLen     int    `json:"seq_len"`
				DModel     int    `json:"d_model"`
				Heads      int    `json:"heads"`
				DHidden    int    `json:"d_hidden"`
				Layers     int    `json:"layers"`
				Activation string `json:"activation"`
				Gated      bool   `json:"gated"`
				Norm       Norm   `json:"norm"`
				Batch      int    `json:"batch"`
				Tokens     []int  `json:"tokens"`
				Targets    []int  `json:"targets"`
			}
			if err := c.ParamsInto(&p); err != nil {
				t.Fatal(err)
			}
			dt := dtypeNamed(c.Dtype)
			cfg := Config{Vocab: p.Vocab, SeqLen: p.SeqLen, DModel: p.DModel, Heads: p.Heads, DHidden: p.DHidden,
				Layers: p.Layers, Activation: p.Activation, Gated: p.Gated, Norm: p.Norm, Dtype: dt}
			d, v := p.DModel, p.Vocab
			shapes := map[string][]int{"embed.tok": {v, d}, "embed.pos": {p.SeqLen, d}, "final_norm.g": {d}, "head.W": {d, v}}
			for i := range p.Layers {
				for k, s := range blockShapes(d, p.DHidden, p.Gated, p.Norm) {
					shapes[fmt.Sprintf("block%d.%s", i, k)] = s
				}
			}
			w := goldenWeights(t, &c, dt, "", shapes)
			if len(w) != len(shapes) {
				t.Fatalf("golden has %d of %d weights", len(w), len(shapes))
			}
			for _, grad := range []bool{false, true} {
				tr, err := NewTrainer(cfg, w, TrainConfig{Batch: p.Batch})
				if err != nil {
					t.Fatal(err)
				}
				if !grad {
					// an evaluator: the same graph without the backward pass
					tr.Close()
					ev, err := NewEvaluator(cfg, w, p.Batch)
					if err != nil {
						t.Fatal(err)
					}
					if _, err := ev.Eval(Batch{Tokens: p.Tokens, Targets: p.Targets}); err != nil {
						t.Fatal(err)
					}
					worst[c.Dtype].merge(checkResult(t, &c, "eval", runResult{"logits": ev.Logits(), "loss": []float64{scalar(ev.p.lossOut)}}))
					ev.Close()
					continue
				}
				// Run forward and backward without the solver step, reading
				// the gradients.
				pr := tr.p
				if _, err := pr.load("test", Batch{Tokens: p.Tokens, Targets: p.Targets}); err != nil {
					t.Fatal(err)
				}
				if err := tr.vm.RunAll(); err != nil {
					t.Fatal(err)
				}
				res := runResult{"logits": float64sOf(pr.logits), "loss": []float64{scalar(pr.lossOut)}}
				for _, n := range tr.params {
					gv, err := n.Grad()
					if err != nil {
						t.Fatal(err)
					}
					res["d"+n.Name()] = float64sOf(gv)
				}
				worst[c.Dtype].merge(checkResult(t, &c, "tape", res))
				tr.Close()
			}
		})
	}
	for dt, st := range worst {
		t.Logf("%s: max |error| / max |ref| = %.3g; max error / tolerance = %.3g at %s", dt, st.maxAbs, st.maxExc, st.where)
	}
}

// TestModelBadConfig checks that bad model configurations are errors.
func TestModelBadConfig(t *testing.T) {
	ok := Config{Vocab: 5, SeqLen: 4, DModel: 8, Heads: 2, DHidden: 16, Layers: 1, Activation: "gelu"}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(*Config){
		"heads do not divide": func(c *Config) { c.Heads = 3 },
		"zero heads":          func(c *Config) { c.Heads = 0 },
		"zero vocab":          func(c *Config) { c.Vocab = 0 },
		"zero layers":         func(c *Config) { c.Layers = 0 },
		"zero seq":            func(c *Config) { c.SeqLen = 0 },
		"zero hidden":         func(c *Config) { c.DHidden = 0 },
		"unknown activation":  func(c *Config) { c.Activation = "tanh" },
		"unknown norm":        func(c *Config) { c.Norm = "batch" },
		"dtype":               func(c *Config) { c.Dtype = tensor.Int32 },
	} {
		c := ok
		edit(&c)
		if _, err := NewModel(gorgonia.NewGraph(), c); err == nil {
			t.Errorf("%s: no error", name)
		}
		if _, err := NewTrainer(c, nil, TrainConfig{Batch: 2}); err == nil {
			t.Errorf("%s: NewTrainer gave no error", name)
		}
	}
	if _, err := NewTrainer(ok, nil, TrainConfig{}); err == nil {
		t.Error("zero batch: no error")
	}
	tr, err := NewTrainer(ok, nil, TrainConfig{Batch: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	for name, b := range map[string]Batch{
		"short":         {Tokens: []int{1, 2, 3}, Targets: []int{1, 2, 3}},
		"token range":   {Tokens: []int{1, 2, 3, 5}, Targets: []int{1, 2, 3, 4}},
		"target range":  {Tokens: []int{1, 2, 3, 4}, Targets: []int{1, 2, 3, -2}},
		"missing targs": {Tokens: []int{1, 2, 3, 4}},
	} {
		if _, err := tr.Step(b); err == nil {
			t.Errorf("batch %s: no error", name)
		}
	}
	if _, err := tr.Step(Batch{Tokens: []int{1, 2, 3, 4}, Targets: []int{2, 3, 4, Ignore}}); err != nil {
		t.Errorf("good batch: %v", err)
	}

}
