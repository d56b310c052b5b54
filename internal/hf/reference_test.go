package hf_test

import (
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/actq/actq/internal/hf"
	"github.com/actq/actq/internal/numtest"
	"github.com/actq/actq/internal/safetensors"
)

// This file checks the PyTorch goldens of scripts/goldens/gen_llama.py
// against a second implementation: LlamaForCausalLM in float64, written
// as plain loops over one sequence from the formulas (the Llama block as
// transformers computes it), with nothing shared with the script but the
// checkpoint files. The Go model in package graph is tested against the
// same goldens; this test makes sure they say what they claim.

// refModel holds a checkpoint's weights in float64, row-major as stored:
// a linear weight is (out, in).
type refModel struct {
	c hf.Config
	w map[string][]float64
}

func loadRef(t *testing.T, dir string) refModel {
	t.Helper()
	c, err := hf.ReadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	set, err := safetensors.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	m := refModel{c: c, w: map[string][]float64{}}
	for _, info := range set.Tensors() {
		v := make([]float32, info.Len())
		if err := set.ReadFloat32(info.Name, v); err != nil {
			t.Fatal(err)
		}
		w := make([]float64, len(v))
		for i, x := range v {
			w[i] = float64(x)
		}
		m.w[info.Name] = w
	}
	if c.TieWordEmbeddings {
		m.w["lm_head.weight"] = m.w["model.embed_tokens.weight"]
	}
	return m
}

// linear returns w·x for w of shape (len(w)/len(x), len(x)).
func linear(w, x []float64) []float64 {
	out := make([]float64, len(w)/len(x))
	for o := range out {
		var s float64
		for i, xi := range x {
			s += w[o*len(x)+i] * xi
		}
		out[o] = s
	}
	return out
}

func rmsnorm(x, g []float64, eps float64) []float64 {
	var ss float64
	for _, v := range x {
		ss += v * v
	}
	r := 1 / math.Sqrt(ss/float64(len(x))+eps)
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = g[i] * v * r
	}
	return out
}

// rope rotates one head's vector x (in place) for position pos:
// x·cos + rotate_half(x)·sin with angles pos·θ^(−2i/Dh), the half-split
// pairing (i, i + Dh/2).
func rope(x []float64, pos, theta float64) {
	half := len(x) / 2
	for i := range half {
		angle := pos * (1 / math.Pow(theta, float64(2*i)/float64(len(x))))
		c, s := math.Cos(angle), math.Sin(angle)
		a, b := x[i], x[i+half]
		x[i], x[i+half] = a*c-b*s, b*c+a*s
	}
}

// attend returns softmax(q·kⱼ·scale)·vⱼ over the keys j < n.
func attend(q []float64, keys, vals [][]float64, n int) []float64 {
	scale := 1 / math.Sqrt(float64(len(q)))
	s := make([]float64, n)
	mx := math.Inf(-1)
	for j := range n {
		for i, qi := range q {
			s[j] += qi * keys[j][i]
		}
		s[j] *= scale
		mx = max(mx, s[j])
	}
	var z float64
	for j := range s {
		s[j] = math.Exp(s[j] - mx)
		z += s[j]
	}
	out := make([]float64, len(vals[0]))
	for j := range n {
		for i := range out {
			out[i] += s[j] / z * vals[j][i]
		}
	}
	return out
}

// logits returns the logits (T × V) of one token sequence.
func (m refModel) logits(tokens []int) [][]float64 {
	c := m.c
	d, dh, h, kv := c.HiddenSize, c.HeadDim, c.NumAttentionHeads, c.NumKeyValueHeads
	x := make([][]float64, len(tokens))
	for t, tok := range tokens {
		x[t] = slices.Clone(m.w["model.embed_tokens.weight"][tok*d : (tok+1)*d])
	}
	w := func(l int, name string) []float64 { return m.w["model.layers."+strconv.Itoa(l)+"."+name] }
	for l := range c.NumHiddenLayers {
		keys := make([][][]float64, kv) // [kv head][position]
		vals := make([][][]float64, kv)
		qs := make([][]float64, len(tokens))
		for t := range tokens {
			hs := rmsnorm(x[t], w(l, "input_layernorm.weight"), c.RMSNormEps)
			qs[t] = linear(w(l, "self_attn.q_proj.weight"), hs)
			k := linear(w(l, "self_attn.k_proj.weight"), hs)
			v := linear(w(l, "self_attn.v_proj.weight"), hs)
			for j := range kv {
				kj := k[j*dh : (j+1)*dh]
				rope(kj, float64(t), c.RopeTheta)
				keys[j] = append(keys[j], kj)
				vals[j] = append(vals[j], v[j*dh:(j+1)*dh])
			}
		}
		for t := range tokens {
			a := make([]float64, 0, h*dh)
			for hd := range h {
				q := qs[t][hd*dh : (hd+1)*dh]
				rope(q, float64(t), c.RopeTheta)
				j := hd / (h / kv) // repeat_kv: consecutive query heads share a key/value head
				a = append(a, attend(q, keys[j], vals[j], t+1)...)
			}
			o := linear(w(l, "self_attn.o_proj.weight"), a)
			for i := range x[t] {
				x[t][i] += o[i]
			}
			hs := rmsnorm(x[t], w(l, "post_attention_layernorm.weight"), c.RMSNormEps)
			gate := linear(w(l, "mlp.gate_proj.weight"), hs)
			up := linear(w(l, "mlp.up_proj.weight"), hs)
			for i, g := range gate {
				gate[i] = g / (1 + math.Exp(-g)) * up[i]
			}
			down := linear(w(l, "mlp.down_proj.weight"), gate)
			for i := range x[t] {
				x[t][i] += down[i]
			}
		}
	}
	out := make([][]float64, len(tokens))
	for t := range tokens {
		out[t] = linear(m.w["lm_head.weight"], rmsnorm(x[t], m.w["model.norm.weight"], c.RMSNormEps))
	}
	return out
}

func argmax(v []float64) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// TestGoldensAgainstReference recomputes each checkpoint golden's
// float64 logits, loss and greedy continuations.
func TestGoldensAgainstReference(t *testing.T) {
	for name := range checkpoints {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("..", "..", "testdata", "llama", name)
			m := loadRef(t, dir)
			g, err := numtest.ReadGolden(filepath.Join(dir, "golden.json.gz"))
			if err != nil {
				t.Fatal(err)
			}
			c := g.Cases[0]
			var p goldenParams
			if err := c.ParamsInto(&p); err != nil {
				t.Fatal(err)
			}
			want, err := c.F64("logits64")
			if err != nil {
				t.Fatal(err)
			}
			v := m.c.VocabSize
			var maxAbs, maxErr, loss float64
			var n int
			for b, seq := range p.Tokens {
				got := m.logits(seq)
				for tm, row := range got {
					for i, x := range row {
						w := want[(b*len(seq)+tm)*v+i]
						maxAbs = max(maxAbs, math.Abs(w))
						maxErr = max(maxErr, math.Abs(x-w))
					}
					if tm+1 < len(seq) {
						mx := slices.Max(row)
						var z float64
						for _, x := range row {
							z += math.Exp(x - mx)
						}
						loss += mx + math.Log(z) - row[seq[tm+1]]
						n++
					}
				}
			}
			// Float64 sums in another order: agreement to ~1e-15 relative;
			// 1e-11 leaves room, and is 1e7 times smaller than float32's
			// own error.
			if maxErr > 1e-11*maxAbs {
				t.Errorf("logits64: max error %g (%g·max|logit|)", maxErr, maxErr/maxAbs)
			}
			wantLoss, _ := c.F64("loss64")
			if math.Abs(loss/float64(n)-wantLoss[0]) > 1e-11*wantLoss[0] {
				t.Errorf("loss %.15g, golden %.15g", loss/float64(n), wantLoss[0])
			}
			for _, r := range p.Greedy {
				seq := slices.Clone(r.Prompt)
				for range r.Tokens {
					lg := m.logits(seq)
					seq = append(seq, argmax(lg[len(lg)-1]))
				}
				if got := seq[len(r.Prompt):]; !slices.Equal(got, r.Tokens) {
					t.Errorf("greedy from %v: %v, golden %v", r.Prompt, got, r.Tokens)
				}
			}
		})
	}
}

// opsParams is the union of the params of ops.json.gz's cases.
type opsParams struct {
	Theta     float64 `json:"theta"`
	Positions []int   `json:"positions"`
	Heads     int     `json:"heads"`
	KVHeads   int     `json:"kv_heads"`
	Tq        int     `json:"tq"`
	Tk        int     `json:"tk"`
	HeadDim   int     `json:"head_dim"`
	Offset    int     `json:"offset"`
}

// TestOpsGoldensAgainstReference recomputes the float64 forward results
// of the RoPE and grouped-query attention goldens (and of the float32
// cases' float64 twins), and checks that the float32 results are within
// float32 rounding of them.
func TestOpsGoldensAgainstReference(t *testing.T) {
	g, err := numtest.ReadGolden(filepath.Join("..", "..", "testdata", "llama", "ops.json.gz"))
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, c := range g.Cases {
		var p opsParams
		if err := c.ParamsInto(&p); err != nil {
			t.Fatal(err)
		}
		counts[c.Op+" "+c.Dtype]++
		var got []float64
		switch c.Op {
		case "rope":
			x, _ := c.F64("x")
			dh := c.Shape[3]
			got = slices.Clone(x)
			for i := 0; i < len(got); i += dh {
				pos := p.Positions[(i/dh)%c.Shape[2]]
				rope(got[i:i+dh], float64(pos), p.Theta)
			}
		case "gqa_attention":
			q, _ := c.F64("q")
			k, _ := c.F64("k")
			v, _ := c.F64("v")
			dh := p.HeadDim
			for b := range c.Shape[0] {
				for hd := range p.Heads {
					j := hd / (p.Heads / p.KVHeads)
					var keys, vals [][]float64
					for s := range p.Tk {
						off := ((b*p.KVHeads+j)*p.Tk + s) * dh
						keys = append(keys, k[off:off+dh])
						vals = append(vals, v[off:off+dh])
					}
					for i := range p.Tq {
						off := ((b*p.Heads+hd)*p.Tq + i) * dh
						got = append(got, attend(q[off:off+dh], keys, vals, p.Offset+i+1)...)
					}
				}
			}
		default:
			t.Fatalf("case %q: unknown op %q", c.Name, c.Op)
		}
		y64 := "y"
		if c.Dtype == "float32" {
			y64 = "y64"
		}
		want, err := c.F64(y64)
		if err != nil || len(want) != len(got) {
			t.Fatalf("%s: %s has %d values, want %d (%v)", c.Name, y64, len(want), len(got), err)
		}
		for i := range got {
			if math.Abs(got[i]-want[i]) > 1e-12*(1+math.Abs(want[i])) {
				t.Fatalf("%s: %s[%d] = %.17g, reference %.17g", c.Name, y64, i, want[i], got[i])
			}
		}
		if c.Dtype == "float32" {
			y32, _ := c.F64("y")
			for i := range y32 {
				// float32 inputs exact; the float32 computation is within a
				// few ULPs of its exact result (angles in float32 included).
				if math.Abs(y32[i]-got[i]) > 1e-5*(1+math.Abs(got[i])) {
					t.Errorf("%s: float32 y[%d] = %g, exact %g", c.Name, i, y32[i], got[i])
				}
			}
		}
	}
	if counts["rope float64"] != 8 || counts["rope float32"] != 8 || counts["gqa_attention float64"] != 4 || counts["gqa_attention float32"] != 4 {
		t.Errorf("cases: %v", counts)
	}
}
