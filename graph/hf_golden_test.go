package graph

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/actq/actq/internal/numtest"
	"github.com/actq/actq/quantize"
	"gorgonia.org/tensor"
)

// The checkpoints of scripts/goldens/gen_llama.py under testdata/llama:
// random Llama weights, their config and golden.json.gz (PyTorch's
// float64 and float32 logits for a batch of token sequences, the float64
// loss and gradients of a few weights, greedy continuations).
var llamaCheckpoints = []string{"gqa-f32", "mha-bf16-tied", "gqa-f16", "mqa-f32-tied"}

func llamaDir(name string) string { return filepath.Join("..", "testdata", "llama", name) }

// llamaGolden is a checkpoint's golden case and the parameters the tests
// read.
type llamaGolden struct {
	c         numtest.Case
	tokens    [][]int
	gradNames []string
	greedy    []struct{ Prompt, Tokens []int }
}

func readLlamaGolden(t *testing.T, name string) *llamaGolden {
	t.Helper()
	g, err := numtest.ReadGolden(filepath.Join(llamaDir(name), "golden.json.gz"))
	if err != nil {
		t.Fatal(err)
	}
	lg := &llamaGolden{c: g.Cases[0]}
	var p struct {
		Tokens    [][]int  `json:"tokens"`
		GradNames []string `json:"grad_names"`
		Greedy    []struct {
			Prompt []int `json:"prompt"`
			Tokens []int `json:"tokens"`
		} `json:"greedy"`
	}
	if err := lg.c.ParamsInto(&p); err != nil {
		t.Fatal(err)
	}
	lg.tokens, lg.gradNames = p.Tokens, p.GradNames
	for _, r := range p.Greedy {
		lg.greedy = append(lg.greedy, struct{ Prompt, Tokens []int }{r.Prompt, r.Tokens})
	}
	return lg
}

// loadLlama loads the test checkpoint name with LoadHF and reads its
// golden; the config's SeqLen is that of the golden's token sequences,
// which b holds with their next tokens as targets.
func loadLlama(t *testing.T, name string) (cfg Config, w Weights, lg *llamaGolden, b Batch) {
	t.Helper()
	cfg, w, err := LoadHF(llamaDir(name))
	if err != nil {
		t.Fatal(err)
	}
	lg = readLlamaGolden(t, name)
	cfg.SeqLen = len(lg.tokens[0])
	return cfg, w, lg, nextTokenBatch(lg.tokens)
}

func (lg *llamaGolden) array(t *testing.T, name string) []float64 {
	t.Helper()
	v, err := lg.c.F64(name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// nextTokenBatch returns the golden's token sequences as a Batch whose
// targets are the next tokens (the last position ignored): its loss is
// PyTorch's mean next-token cross-entropy.
func nextTokenBatch(tokens [][]int) Batch {
	var b Batch
	for _, seq := range tokens {
		for i, tok := range seq {
			b.Tokens = append(b.Tokens, tok)
			next := Ignore
			if i+1 < len(seq) {
				next = seq[i+1]
			}
			b.Targets = append(b.Targets, next)
		}
	}
	return b
}

// toFloat64 returns w with every tensor converted to Float64 (exactly).
func toFloat64(w Weights) Weights {
	out := make(Weights, len(w))
	for k, v := range w {
		out[k] = denseFrom(tensor.Float64, v.Shape(), numtest.Float64s(v.Data()))
	}
	return out
}

// relErr returns max|got − want| / max|want|.
func relErr(got, want []float64) float64 {
	var d, s float64
	for i := range want {
		e := math.Abs(got[i] - want[i])
		if math.IsNaN(e) {
			e = math.Inf(1)
		}
		d, s = math.Max(d, e), math.Max(s, math.Abs(want[i]))
	}
	return d / s
}

// TestLlamaCheckpointGolden loads each test checkpoint with LoadHF and
// compares, against PyTorch's LlamaForCausalLM formulas:
//
//   - the logits of an Evaluator in float32, within 2e-6·max|logit| of the
//     float64 reference (the target is 2e-4; float32 rounding gives about
//     3e-7), and in float64, within 1e-12;
//   - the loss and the gradients of the golden's weights (norm gains, a
//     key projection, the tied embedding) through NewTrainer's graph in
//     float64, within 1e-12 of the loss and 1e-12·max|gradient|;
//   - the argmax of the last position's logits, the sequence so far fed
//     in full to an Evaluator at every step, against the golden's greedy
//     continuations, token by token (what a Generator must reproduce):
//     all 16 steps, or under the race detector, which makes each new
//     Evaluator slow, the first 4.
func TestLlamaCheckpointGolden(t *testing.T) {
	for _, name := range llamaCheckpoints {
		t.Run(name, func(t *testing.T) {
			cfg, w, lg, b := loadLlama(t, name)
			batch := len(lg.tokens)
			logits64 := lg.array(t, "logits64")
			cfg64, w64 := cfg, toFloat64(w)
			cfg64.Dtype = tensor.Float64
			for _, c := range []struct {
				cfg Config
				w   Weights
				tol float64
			}{{cfg, w, 2e-6}, {cfg64, w64, 1e-12}} {
				ev, err := NewEvaluator(c.cfg, c.w, batch)
				if err != nil {
					t.Fatal(err)
				}
				m, err := ev.Eval(b)
				if err != nil {
					t.Fatal(err)
				}
				e := relErr(ev.Logits(), logits64)
				t.Logf("%v: logits within %.3g·max|logit| of float64 PyTorch (float32 PyTorch: %.3g); loss %.9f", c.cfg.Dtype, e, relErr(lg.array(t, "logits32"), logits64), m.Loss)
				if e > c.tol {
					t.Errorf("%v: logits differ by %.3g·max|logit|, want ≤ %g", c.cfg.Dtype, e, c.tol)
				}
				ev.Close()
			}

			// Loss and gradients through a Trainer's graph, without the
			// solver's step.
			tr, err := NewTrainer(cfg64, w64, TrainConfig{Batch: batch})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			if _, err := tr.p.load("test", b); err != nil {
				t.Fatal(err)
			}
			if err := tr.vm.RunAll(); err != nil {
				t.Fatal(err)
			}
			if got, want := scalar(tr.p.lossOut), lg.array(t, "loss64")[0]; math.Abs(got-want) > 1e-12*want {
				t.Errorf("loss %.17g, want %.17g", got, want)
			}
			hc, err := hfConfig("test", cfg)
			if err != nil {
				t.Fatal(err)
			}
			byHF := map[string]hfTensor{}
			for _, ht := range hfTensors(hc) {
				if !ht.optional {
					byHF[ht.hf] = ht
				}
			}
			for _, gname := range lg.gradNames {
				ht := byHF[gname]
				node := tr.p.g.ByName(ht.actq)[0]
				gv, err := node.Grad()
				if err != nil {
					t.Fatal(err)
				}
				got := float64sOf(gv)
				if ht.linear { // actq's (in, out) gradient, transposed to (out, in)
					tt := make([]float64, len(got))
					for i := range ht.shape[1] {
						for o := range ht.shape[0] {
							tt[o*ht.shape[1]+i] = got[i*ht.shape[0]+o]
						}
					}
					got = tt
				}
				e := relErr(got, lg.array(t, "grad64."+gname))
				t.Logf("gradient of %s (%s): within %.3g·max|gradient|", gname, ht.actq, e)
				if e > 1e-12 {
					t.Errorf("gradient of %s differs by %.3g·max|gradient|", gname, e)
				}
			}

			// Greedy decoding by full forward passes.
			for _, run := range lg.greedy {
				seq := append([]int(nil), run.Prompt...)
				steps := run.Tokens
				if raceEnabled {
					steps = steps[:4]
				}
				for step, want := range steps {
					c := cfg
					c.SeqLen = len(seq)
					ev, err := NewEvaluator(c, w, 1)
					if err != nil {
						t.Fatal(err)
					}
					targets := make([]int, len(seq))
					for i := range targets {
						targets[i] = Ignore
					}
					if _, err := ev.Eval(Batch{Tokens: seq, Targets: targets}); err != nil {
						t.Fatal(err)
					}
					pred := ev.Predictions()
					ev.Close()
					if got := pred[len(seq)-1]; got != want {
						t.Errorf("prompt %v, step %d: argmax %d, want %d", run.Prompt, step, got, want)
						break
					}
					seq = append(seq, want)
				}
			}
		})
	}
}

// TestLlamaFineTune fine-tunes loaded checkpoints (one untied, one with
// tied embeddings, whose embedding gets the gradients of the lookup and
// the head) for 5 Adam steps on one batch, plainly and under the w8a8
// tier (quantization-aware, straight-through gradients): the loss must
// fall by a third, which wrong or unapplied gradients would not do, and an
// Evaluator of the trained weights must see the lower loss.
func TestLlamaFineTune(t *testing.T) {
	for _, name := range []string{"gqa-f32", "mqa-f32-tied"} {
		cfg, w, lg, b := loadLlama(t, name)
		w8a8, err := TierByName("w8a8")
		if err != nil {
			t.Fatal(err)
		}
		for _, plan := range []*Plan{nil, w8a8.Plan(cfg.SeqLen)} {
			tr, err := NewTrainer(cfg, w, TrainConfig{Batch: len(lg.tokens), LearnRate: 1e-2}, WithPlan(plan))
			if err != nil {
				t.Fatal(err)
			}
			var losses []float64
			for range 5 {
				m, err := tr.Step(b)
				if err != nil {
					t.Fatal(err)
				}
				losses = append(losses, m.Loss)
			}
			tw, err := tr.Weights()
			tr.Close()
			if err != nil {
				t.Fatal(err)
			}
			ev, err := NewEvaluator(cfg, tw, len(lg.tokens), WithPlan(plan))
			if err != nil {
				t.Fatal(err)
			}
			after, err := ev.Eval(b)
			ev.Close()
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s, plan %v: loss %.4f → %.4f over 5 steps (%.3v), evaluated after: %.4f", name, plan != nil, losses[0], losses[len(losses)-1], losses, after.Loss)
			if !(after.Loss < losses[0]*2/3) || !(losses[len(losses)-1] < losses[0]*2/3) {
				t.Errorf("%s, plan %v: loss %.4f → %.4f (evaluated %.4f), want a fall by a third", name, plan != nil, losses[0], losses[len(losses)-1], after.Loss)
			}
		}
	}
}

// TestLlamaTiers evaluates loaded checkpoints under every standard tier
// (calibrating the one that needs it) and under KIVI-style int4 key/value
// sites: every plan runs and gives a finite loss, and the 16-bit tiers
// stay within 2% of full precision.
func TestLlamaTiers(t *testing.T) {
	for _, name := range []string{"gqa-f32", "mqa-f32-tied"} {
		cfg, w, lg, b := loadLlama(t, name)
		seq, batch := cfg.SeqLen, len(lg.tokens)
		var err error
		int4 := func(group int) *Quant {
			return &Quant{Spec: quantize.Spec{Format: quantize.Int4, Granularity: quantize.PerGroup, GroupSize: group, Symmetric: true}}
		}
		plans := []*Plan{nil}
		for _, tier := range Tiers()[1:] {
			p := tier.Plan(seq)
			if tier.NeedsCalibration() {
				if p, err = Calibrate(cfg, w, p, []Batch{b}); err != nil {
					t.Fatalf("%s: %s: %v", name, tier.Name, err)
				}
			}
			plans = append(plans, p)
		}
		plans = append(plans, &Plan{Name: "kv-int4 (keys per channel, values per token)", AttnKeys: int4(seq), AttnValues: int4(cfg.DModel / cfg.Heads)})
		var fp32 float64
		for _, p := range plans {
			var opts []Option
			label := "fp32"
			if p != nil {
				opts, label = []Option{WithPlan(p)}, p.Name
			}
			ev, err := NewEvaluator(cfg, w, batch, opts...)
			if err != nil {
				t.Fatalf("%s: %s: %v", name, label, err)
			}
			m, err := ev.Eval(b)
			ev.Close()
			if err != nil {
				t.Fatalf("%s: %s: %v", name, label, err)
			}
			t.Logf("%s %-45s loss %.4f", name, label, m.Loss)
			switch {
			case p == nil:
				fp32 = m.Loss
			case math.IsNaN(m.Loss) || math.IsInf(m.Loss, 0):
				t.Errorf("%s: %s: loss %v", name, label, m.Loss)
			case (label == "bf16" || label == "fp16") && math.Abs(m.Loss-fp32) > 0.02*fp32:
				t.Errorf("%s: %s: loss %.4f, fp32 %.4f", name, label, m.Loss, fp32)
			}
		}
	}
}
