package infer

import (
	"errors"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
)

// shape is a test model's configuration.
type shape struct {
	name                                string
	vocab, d, heads, kv, hidden, layers int
	act                                 string
	gated, layer, bias, tied            bool
	theta                               float64
	maxPos                              int
}

var shapes = []shape{
	{name: "learned-gelu-bias", vocab: 40, d: 32, heads: 4, kv: 4, hidden: 64, layers: 2, act: "gelu", bias: true, maxPos: 80},
	{name: "learned-layernorm-relu", vocab: 33, d: 24, heads: 2, kv: 2, hidden: 40, layers: 1, act: "relu", layer: true, bias: true, maxPos: 80},
	{name: "rope-gqa-swiglu", vocab: 50, d: 32, heads: 4, kv: 2, hidden: 48, layers: 2, act: "silu", gated: true, theta: 10000},
	{name: "rope-mqa-tied-geglu-tanh", vocab: 30, d: 48, heads: 3, kv: 1, hidden: 64, layers: 2, act: "gelu_tanh", gated: true, bias: true, tied: true, theta: 500},
}

// randomModel returns a model of shape sh with weights from seed: matrices
// uniform in ±1/√fan-in, embeddings N(0, 1), gains near 1.
func randomModel(sh shape, seed uint64) *Model {
	rng := rand.New(rand.NewPCG(seed, 7))
	uni := func(n, fanIn int) []float32 {
		v := make([]float32, n)
		b := 1 / math.Sqrt(float64(fanIn))
		for i := range v {
			v[i] = float32((2*rng.Float64() - 1) * b)
		}
		return v
	}
	norm := func(n int, mean, sd float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(mean + sd*rng.NormFloat64())
		}
		return v
	}
	dh := sh.d / sh.heads
	m := &Model{Vocab: sh.vocab, DModel: sh.d, Heads: sh.heads, KVHeads: sh.kv, DHidden: sh.hidden, Activation: sh.act,
		Gated: sh.gated, LayerNorm: sh.layer, NormEps: 1e-5, RoPETheta: sh.theta, MaxPos: sh.maxPos}
	m.Tok = norm(sh.vocab*sh.d, 0, 1)
	if sh.theta == 0 {
		m.Pos = norm(sh.maxPos*sh.d, 0, 1)
	}
	shift := func() []float32 {
		if sh.layer {
			return norm(sh.d, 0, 0.1)
		}
		return nil
	}
	bias := func(n int) []float32 {
		if sh.bias {
			return norm(n, 0, 0.1)
		}
		return nil
	}
	for range sh.layers {
		l := Layer{
			Norm1G: norm(sh.d, 1, 0.1), Norm1B: shift(), Norm2G: norm(sh.d, 1, 0.1), Norm2B: shift(),
			Wq: uni(sh.d*sh.d, sh.d), Wk: uni(sh.d*sh.kv*dh, sh.d), Wv: uni(sh.d*sh.kv*dh, sh.d), Wo: uni(sh.d*sh.d, sh.d),
			W1: uni(sh.d*sh.hidden, sh.d), B1: bias(sh.hidden), W2: uni(sh.hidden*sh.d, sh.hidden), B2: bias(sh.d),
		}
		if sh.gated {
			l.W3, l.B3 = uni(sh.d*sh.hidden, sh.d), bias(sh.hidden)
		}
		m.Layers = append(m.Layers, l)
	}
	m.FinalG, m.FinalB = norm(sh.d, 1, 0.1), shift()
	if sh.tied {
		m.HeadT = m.Tok
	} else {
		m.Head = uni(sh.d*sh.vocab, sh.d)
	}
	return m
}

// reference returns the logits of every position of tokens in float64,
// written out from Model's formulas with no shared code: the engine's
// oracle.
func reference(m *Model, tokens []int) [][]float64 {
	d, dh, H, KV := m.DModel, m.Dh(), m.Heads, m.KVHeads
	f64 := func(v []float32) []float64 {
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = float64(x)
		}
		return out
	}
	mul := func(x []float64, w []float32, out int) []float64 { // x·W, W (len(x), out)
		y := make([]float64, out)
		for i, xi := range x {
			for j := range y {
				y[j] += xi * float64(w[i*out+j])
			}
		}
		return y
	}
	normRow := func(x []float64, g, b []float32) []float64 {
		mu := 0.0
		if b != nil {
			for _, v := range x {
				mu += v
			}
			mu /= float64(len(x))
		}
		ss := 0.0
		for _, v := range x {
			ss += (v - mu) * (v - mu)
		}
		r := 1 / math.Sqrt(ss/float64(len(x))+m.NormEps)
		y := make([]float64, len(x))
		for j, v := range x {
			y[j] = (v - mu) * r * float64(g[j])
			if b != nil {
				y[j] += float64(b[j])
			}
		}
		return y
	}
	act := func(v float64) float64 {
		switch m.Activation {
		case "gelu":
			return 0.5 * v * math.Erfc(-v/math.Sqrt2)
		case "gelu_tanh":
			return 0.5 * v * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(v+0.044715*v*v*v)))
		case "silu":
			return v / (1 + math.Exp(-v))
		}
		return math.Max(v, 0)
	}
	rot := func(x []float64, heads, pos int) {
		if m.RoPETheta == 0 {
			return
		}
		for h := range heads {
			seg := x[h*dh : (h+1)*dh]
			for i := range dh / 2 {
				a := float64(pos) / math.Pow(m.RoPETheta, float64(2*i)/float64(dh))
				x1, x2 := seg[i], seg[i+dh/2]
				seg[i], seg[i+dh/2] = x1*math.Cos(a)-x2*math.Sin(a), x2*math.Cos(a)+x1*math.Sin(a)
			}
		}
	}
	addB := func(y []float64, b []float32) {
		for j := range b {
			y[j] += float64(b[j])
		}
	}
	T := len(tokens)
	xs := make([][]float64, T)
	for t, tok := range tokens {
		xs[t] = f64(m.Tok[tok*d : (tok+1)*d])
		if m.Pos != nil {
			for j := range d {
				xs[t][j] += float64(m.Pos[t*d+j])
			}
		}
	}
	for _, L := range m.Layers {
		qs, ks, vs := make([][]float64, T), make([][]float64, T), make([][]float64, T)
		for t := range T {
			h := normRow(xs[t], L.Norm1G, L.Norm1B)
			qs[t], ks[t], vs[t] = mul(h, L.Wq, H*dh), mul(h, L.Wk, KV*dh), mul(h, L.Wv, KV*dh)
			rot(qs[t], H, t)
			rot(ks[t], KV, t)
		}
		for t := range T {
			o := make([]float64, H*dh)
			for h := range H {
				kv := h / (H / KV)
				s := make([]float64, t+1)
				mx := math.Inf(-1)
				for j := range s {
					for i := range dh {
						s[j] += qs[t][h*dh+i] * ks[j][kv*dh+i]
					}
					s[j] /= math.Sqrt(float64(dh))
					mx = math.Max(mx, s[j])
				}
				sum := 0.0
				for j := range s {
					s[j] = math.Exp(s[j] - mx)
					sum += s[j]
				}
				for j := range s {
					for i := range dh {
						o[h*dh+i] += s[j] / sum * vs[j][kv*dh+i]
					}
				}
			}
			a := mul(o, L.Wo, d)
			for j := range d {
				xs[t][j] += a[j]
			}
			h := normRow(xs[t], L.Norm2G, L.Norm2B)
			f1 := mul(h, L.W1, m.DHidden)
			addB(f1, L.B1)
			for j := range f1 {
				f1[j] = act(f1[j])
			}
			if m.Gated {
				f3 := mul(h, L.W3, m.DHidden)
				addB(f3, L.B3)
				for j := range f1 {
					f1[j] *= f3[j]
				}
			}
			y := mul(f1, L.W2, d)
			addB(y, L.B2)
			for j := range d {
				xs[t][j] += y[j]
			}
		}
	}
	out := make([][]float64, T)
	for t := range T {
		h := normRow(xs[t], m.FinalG, m.FinalB)
		if m.Head != nil {
			out[t] = mul(h, m.Head, m.Vocab)
			continue
		}
		out[t] = make([]float64, m.Vocab)
		for v := range m.Vocab {
			for j := range d {
				out[t][v] += h[j] * float64(m.HeadT[v*d+j])
			}
		}
	}
	return out
}

func randomTokens(n, vocab int, seed uint64) []int {
	rng := rand.New(rand.NewPCG(seed, 3))
	t := make([]int, n)
	for i := range t {
		t[i] = rng.IntN(vocab)
	}
	return t
}

func allRows(n int) []int {
	r := make([]int, n)
	for i := range r {
		r[i] = i
	}
	return r
}

func mustEngine(t testing.TB, m *Model, opt Options) *Engine {
	t.Helper()
	e, err := New(m, opt)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// prefill runs tokens in one Forward call and returns every row's logits.
func prefill(t testing.TB, e *Engine, tokens []int) []float32 {
	t.Helper()
	out := make([]float32, len(tokens)*e.m.Vocab)
	if err := e.NewState(0).Forward(tokens, out, allRows(len(tokens))); err != nil {
		t.Fatal(err)
	}
	return out
}

// decode runs tokens one at a time and returns every step's logits.
func decode(t testing.TB, e *Engine, tokens []int) []float32 {
	t.Helper()
	V := e.m.Vocab
	out := make([]float32, len(tokens)*V)
	s := e.NewState(len(tokens))
	for i, tok := range tokens {
		if err := s.Forward([]int{tok}, out[i*V:(i+1)*V], []int{0}); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestEngineMatchesReference: prefill logits against the float64 oracle,
// for every model shape (learned and rotary positions, MHA, GQA, MQA,
// RMSNorm and LayerNorm, plain and gated FFNs, biases, tied embeddings).
// The engine computes in float32 (with float64 sums in norms and softmax):
// each of its roundings is relative 2^-24 of a value, and the logits
// accumulate a few hundred of them through the layers, so they must agree
// within 1e-5·max|logit| (about 80 float32 ulps of the largest logit); a
// wrong formula is off by far more.
func TestEngineMatchesReference(t *testing.T) {
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			m := randomModel(sh, 1)
			tokens := randomTokens(37, sh.vocab, 2)
			got := prefill(t, mustEngine(t, m, Options{}), tokens)
			want := reference(m, tokens)
			worst := 0.0
			for r := range tokens {
				scale := 0.0
				for _, v := range want[r] {
					scale = math.Max(scale, math.Abs(v))
				}
				for j, v := range want[r] {
					worst = math.Max(worst, math.Abs(float64(got[r*sh.vocab+j])-v)/scale)
				}
			}
			if worst > 1e-5 {
				t.Errorf("largest error %.3g·max|logit|, want ≤ 1e-5", worst)
			}
		})
	}
}

// sameBits32 returns the first index where a and b differ in bits, or −1.
func sameBits32(a, b []float32) int {
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return i
		}
	}
	return -1
}

// TestDecodeEqualsPrefill: decoding one token at a time, prefilling in
// chunks of 7 and prefilling at once give the same logits. With
// ProductsGraph, bit for bit: each row's arithmetic does not depend on how
// many rows run together (see Products), and score rows are softmaxed over
// the same padded length. With ProductsFast, decoding's products (gonum's
// Sgemv) and prefill's (actq's Sgemm, with FMA and blocked sums) round
// differently: each product's elements differ in their last bits, about
// 2^-24·√k relative, which the layers carry to the logits as a few 1e-7
// of max|logit| (measured: up to 3e-7); the bound is 1e-5. Prefill in
// chunks or at once runs the same Sgemm kernels per row: bit for bit.
func TestDecodeEqualsPrefill(t *testing.T) {
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			m := randomModel(sh, 3)
			tokens := randomTokens(45, sh.vocab, 4)
			for _, p := range []Products{ProductsGraph, ProductsFast} {
				whole := prefill(t, mustEngine(t, m, Options{Products: p}), tokens)
				chunked := prefill(t, mustEngine(t, m, Options{Chunk: 7, Products: p}), tokens)
				steps := decode(t, mustEngine(t, m, Options{Products: p}), tokens)
				if i := sameBits32(chunked, whole); i >= 0 {
					t.Errorf("%v: chunked prefill: logit %d = %v, whole %v", p, i, chunked[i], whole[i])
				}
				if p == ProductsGraph {
					if i := sameBits32(steps, whole); i >= 0 {
						t.Errorf("%v: decode: logit %d (row %d) = %v, prefill %v", p, i, i/sh.vocab, steps[i], whole[i])
					}
					continue
				}
				worst := 0.0
				for r := range tokens {
					row, want := steps[r*sh.vocab:(r+1)*sh.vocab], whole[r*sh.vocab:(r+1)*sh.vocab]
					scale := 0.0
					for _, v := range want {
						scale = math.Max(scale, math.Abs(float64(v)))
					}
					for j, v := range want {
						worst = math.Max(worst, math.Abs(float64(row[j]-v))/scale)
					}
				}
				t.Logf("%v: decode within %.2g·max|logit| of prefill", p, worst)
				if worst > 1e-5 {
					t.Errorf("%v: decode differs from prefill by %.3g·max|logit|", p, worst)
				}
			}
		})
	}
}

// TestLogitsAtRows: the logits of chosen rows, in the order asked, are the
// rows of the full prefill.
func TestLogitsAtRows(t *testing.T) {
	sh := shapes[2]
	m := randomModel(sh, 5)
	e := mustEngine(t, m, Options{Chunk: 8})
	tokens := randomTokens(30, sh.vocab, 6)
	whole := prefill(t, e, tokens)
	rows := []int{29, 0, 17, 8, 17}
	out := make([]float32, len(rows)*sh.vocab)
	if err := e.NewState(0).Forward(tokens, out, rows); err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		if j := sameBits32(out[i*sh.vocab:(i+1)*sh.vocab], whole[r*sh.vocab:(r+1)*sh.vocab]); j >= 0 {
			t.Errorf("row %d: logit %d differs", r, j)
		}
	}
}

// TestCacheGrowth: the caches grow as positions are added, keep what they
// hold, and Reset starts a new sequence with the same results.
func TestCacheGrowth(t *testing.T) {
	sh := shapes[0]
	m := randomModel(sh, 8)
	e := mustEngine(t, m, Options{})
	tokens := randomTokens(40, sh.vocab, 9)
	want := decode(t, e, tokens) // with the capacity reserved
	s := e.NewState(3)
	V := sh.vocab
	out := make([]float32, V)
	for i, tok := range tokens {
		if err := s.Forward([]int{tok}, out, []int{0}); err != nil {
			t.Fatal(err)
		}
		if s.Len() != i+1 || s.cap < s.Len() {
			t.Fatalf("after %d tokens: Len %d, capacity %d", i+1, s.Len(), s.cap)
		}
		if j := sameBits32(out, want[i*V:(i+1)*V]); j >= 0 {
			t.Fatalf("step %d (capacity %d): logit %d differs", i, s.cap, j)
		}
	}
	if s.cap < 40 || s.cap > 48 {
		t.Errorf("capacity %d after 40 positions from 3, want doubling (48)", s.cap)
	}
	s.Reset()
	all := make([]float32, len(tokens)*V)
	if err := s.Forward(tokens, all, allRows(len(tokens))); err != nil || sameBits32(all, prefill(t, e, tokens)) >= 0 {
		t.Errorf("after Reset: %v, or the logits differ", err)
	}
}

func TestForwardErrors(t *testing.T) {
	sh := shapes[0] // learned positions: 80
	m := randomModel(sh, 10)
	e := mustEngine(t, m, Options{})
	V := sh.vocab
	for _, c := range []struct {
		name   string
		tokens []int
		logits int
		rows   []int
		msg    string
	}{
		{"token negative", []int{1, -1}, V, []int{1}, "tokens[1] = -1 is outside [0, 40)"},
		{"token too large", []int{40}, V, []int{0}, "tokens[0] = 40"},
		{"row outside", []int{1, 2}, V, []int{2}, "rows[0] = 2 is outside the 2 tokens"},
		{"logits short", []int{1, 2}, V - 1, []int{1}, "logits has 39 values, want 40"},
		{"past learned positions", make([]int, 81), 0, nil, "positions up to 81, beyond the model's 80"},
	} {
		s := e.NewState(0)
		err := s.Forward(c.tokens, make([]float32, c.logits), c.rows)
		if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v, want ErrInput with %q", c.name, err, c.msg)
		}
		if s.Len() != 0 {
			t.Errorf("%s: the state ran %d positions", c.name, s.Len())
		}
	}
}

func TestNewErrors(t *testing.T) {
	good := func() *Model { return randomModel(shapes[2], 1) }
	for _, c := range []struct {
		name string
		edit func(*Model)
		opt  Options
		want error
		msg  string
	}{
		{"heads", func(m *Model) { m.Heads = 5 }, Options{}, ErrModel, "want Heads | DModel"},
		{"kv heads", func(m *Model) { m.KVHeads = 3 }, Options{}, ErrModel, "KVHeads | Heads"},
		{"eps", func(m *Model) { m.NormEps = 0 }, Options{}, ErrModel, "NormEps = 0"},
		{"activation", func(m *Model) { m.Activation = "tanh" }, Options{}, ErrModel, `unknown activation "tanh"`},
		{"theta", func(m *Model) { m.RoPETheta = math.NaN() }, Options{}, ErrModel, "RoPETheta = NaN"},
		{"learned without MaxPos", func(m *Model) { m.RoPETheta = 0 }, Options{}, ErrModel, "MaxPos = 0"},
		{"short Wk", func(m *Model) { m.Layers[1].Wk = m.Layers[1].Wk[:5] }, Options{}, ErrModel, "Layers[1].Wk has 5 values, want 512"},
		{"missing W3", func(m *Model) { m.Layers[0].W3 = nil }, Options{}, ErrModel, "Layers[0].W3 has 0 values"},
		{"shift without LayerNorm", func(m *Model) { m.FinalB = make([]float32, 32) }, Options{}, ErrModel, "with a final shift"},
		{"no layers", func(m *Model) { m.Layers = nil }, Options{}, ErrModel, "no layers"},
		{"two heads", func(m *Model) { m.HeadT = m.Tok }, Options{}, ErrModel, "want exactly one"},
		{"chunk", func(*Model) {}, Options{Chunk: -1}, ErrInput, "Chunk = -1"},
		{"arithmetic", func(*Model) {}, Options{Attention: Arithmetic{PV: 9}}, ErrInput, "PV(9)"},
		{"products", func(*Model) {}, Options{Products: 2}, ErrInput, "Products(2)"},
		{"probs with fp16 P·V", func(m *Model) {
			m.Layers[0].Probs = func(dst, x []float32, h, q int) error { return nil }
		}, Options{Attention: Arithmetic{PV: PVHalf}}, ErrInput, "no normalised probabilities"},
	} {
		m := good()
		c.edit(m)
		_, err := New(m, c.opt)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v, want %v with %q", c.name, err, c.want, c.msg)
		}
	}
}

// TestHooks: every hook sees what its doc says, and what it writes is what
// the engine goes on with.
func TestHooks(t *testing.T) {
	sh := shapes[2] // RoPE, GQA: 4 heads, 2 KV heads, Dh 8
	m := randomModel(sh, 11)
	tokens := randomTokens(20, sh.vocab, 12)
	plain := prefill(t, mustEngine(t, m, Options{}), tokens)

	type call struct{ rows, cols, first, head, query, n, from, visible int }
	var calls []call
	row := func(dst, x []float32, rows, cols, first int) error {
		calls = append(calls, call{rows: rows, cols: cols, first: first})
		copy(dst, x)
		return nil
	}
	attn := func(dst, x []float32, head, query int) error {
		calls = append(calls, call{head: head, query: query, visible: len(x)})
		copy(dst, x)
		return nil
	}
	kv := func(q, master Cache, from, n int) error {
		calls = append(calls, call{from: from, n: n})
		copy(q.Data, master.Data)
		return nil
	}
	for i := range m.Layers {
		l := &m.Layers[i]
		l.FFNIn, l.FFNHidden, l.Out, l.Scores, l.Probs, l.Keys, l.Values = row, row, row, attn, attn, kv, kv
	}
	e := mustEngine(t, m, Options{Chunk: 8})
	if got := prefill(t, e, tokens); sameBits32(got, plain) >= 0 {
		t.Errorf("identity hooks change the logits")
	}
	// Per layer and chunk (8, 8, 4 rows): 2 KV calls, 4 heads × rows × 2
	// attention calls, 3 row calls.
	want := 0
	for _, n := range []int{8, 8, 4} {
		want += len(m.Layers) * (2 + 4*n*2 + 3)
	}
	if len(calls) != want {
		t.Fatalf("%d hook calls, want %d", len(calls), want)
	}
	for _, c := range calls {
		switch {
		case c.rows > 0 && (c.first%8 != 0 || (c.cols != 32 && c.cols != 48)):
			t.Errorf("row hook %+v", c)
		case c.visible > 0 && (c.visible != c.query+1 || c.head >= 4):
			t.Errorf("attention hook %+v: want query+1 visible keys", c)
		case c.n > 0 && (c.from%8 != 0 || c.n-c.from > 8):
			t.Errorf("KV hook %+v", c)
		}
	}
	// A hook's output is used: zeroing the values makes attention output
	// 0, so the logits are those of a model without attention.
	for i := range m.Layers {
		m.Layers[i].FFNIn, m.Layers[i].FFNHidden, m.Layers[i].Out, m.Layers[i].Scores, m.Layers[i].Probs, m.Layers[i].Keys = nil, nil, nil, nil, nil, nil
		m.Layers[i].Values = func(q, master Cache, from, n int) error { clear(q.Data); return nil }
	}
	noAttn := randomModel(sh, 11)
	for i := range noAttn.Layers {
		clear(noAttn.Layers[i].Wv)
	}
	if got, want := prefill(t, mustEngine(t, m, Options{}), tokens), prefill(t, mustEngine(t, noAttn, Options{}), tokens); sameBits32(got, want) >= 0 {
		t.Errorf("zeroed values: the logits are not those of zero value weights")
	}
	// Errors name the hook and the layer.
	m.Layers[1].Values = nil
	m.Layers[1].FFNHidden = func(dst, x []float32, rows, cols, first int) error { return errors.New("boom") }
	err := mustEngine(t, m, Options{}).NewState(0).Forward(tokens[:3], nil, nil)
	if err == nil || !strings.Contains(err.Error(), "layer 1: FFN hidden: boom") {
		t.Errorf("hook error %v", err)
	}
}

// TestKVHooksOnSomeLayers: a layer without a KV hook attends to the keys
// and values it computed, also when other layers have hooks (and so the
// state keeps quantized copies of the caches).
func TestKVHooksOnSomeLayers(t *testing.T) {
	sh := shapes[2]
	m := randomModel(sh, 11)
	tokens := randomTokens(20, sh.vocab, 12)
	plain := prefill(t, mustEngine(t, m, Options{}), tokens)
	identity := func(q, master Cache, from, n int) error {
		copy(q.Data, master.Data)
		return nil
	}
	for _, c := range []struct {
		name        string
		keys, value int // the one layer with each hook
	}{{"keys on layer 0", 0, -1}, {"values on layer 1", -1, 1}, {"keys on 0, values on 1", 0, 1}} {
		for i := range m.Layers {
			m.Layers[i].Keys, m.Layers[i].Values = nil, nil
		}
		if c.keys >= 0 {
			m.Layers[c.keys].Keys = identity
		}
		if c.value >= 0 {
			m.Layers[c.value].Values = identity
		}
		for _, opt := range []Options{{}, {Chunk: 8}} {
			if got := prefill(t, mustEngine(t, m, opt), tokens); sameBits32(got, plain) >= 0 {
				t.Errorf("%s, chunk %d: identity KV hooks change the logits", c.name, opt.Chunk)
			}
		}
	}
}

// TestHalfPV: fp16 P·V agrees with float32 where fp16 suffices, overflows
// where the accumulator passes 65504, and the ln 8 offset keeps that case
// finite.
func TestHalfPV(t *testing.T) {
	sh := shape{name: "one", vocab: 8, d: 16, heads: 1, kv: 1, hidden: 16, layers: 1, act: "relu", maxPos: 200}
	m := randomModel(sh, 13)
	tokens := randomTokens(60, sh.vocab, 14)
	f32 := prefill(t, mustEngine(t, m, Options{}), tokens)
	half := prefill(t, mustEngine(t, m, Options{Attention: Arithmetic{PV: PVHalf}}), tokens)
	scores := prefill(t, mustEngine(t, m, Options{Attention: Arithmetic{ScoresFP16: true}}), tokens)
	for i := range f32 {
		// fp16 keeps 11 bits: the logits (|logit| ≲ 3) move by ~1e-3.
		if d := math.Abs(float64(half[i] - f32[i])); d > 2e-2 || math.IsNaN(d) {
			t.Fatalf("logit %d: fp16 P·V %v, float32 %v", i, half[i], f32[i])
		}
		if d := math.Abs(float64(scores[i] - f32[i])); d > 2e-2 || math.IsNaN(d) {
			t.Fatalf("logit %d: fp16 scores %v, float32 %v", i, scores[i], f32[i])
		}
	}
	if sameBits32(half, f32) < 0 || sameBits32(scores, f32) < 0 {
		t.Errorf("fp16 arithmetic gave float32's bits exactly")
	}

	// Values of 1024 under equal scores: 100 keys sum to 102400 > 65504
	// (every partial sum a multiple of 128 or 1024, so fp16 holds it until
	// it overflows).
	e := mustEngine(t, m, Options{Attention: Arithmetic{PV: PVHalf}})
	eo := mustEngine(t, m, Options{Attention: Arithmetic{PV: PVHalfOffset}})
	sc := attnScratch{w: make([]float64, 100), acc: make([]float64, 16)}
	scoresRow := make([]float32, 100)
	values := make([]float32, 100*16)
	for i := range values {
		values[i] = 1024
	}
	out := make([]float32, 16)
	if err := e.halfPV(&sc, scoresRow, values, out); err != nil {
		t.Fatal(err)
	}
	if !math.IsInf(float64(out[0]), 1) {
		t.Errorf("fp16 accumulator of 102400: output %v, want +Inf", out[0])
	}
	if err := eo.halfPV(&sc, scoresRow, values, out); err != nil {
		t.Fatal(err)
	}
	if out[0] != 1024 {
		t.Errorf("with the ln 8 offset: output %v, want 1024 (12800/12.5)", out[0])
	}
}

// TestLongSequenceMemory: a 3000-token prefill keeps each worker's score
// buffer to a block of attnBlock values (no 3000×3000 matrix), and matches
// decoding its last tokens.
func TestLongSequenceMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("long sequence")
	}
	sh := shape{name: "long", vocab: 16, d: 16, heads: 2, kv: 1, hidden: 32, layers: 1, act: "silu", theta: 10000}
	m := randomModel(sh, 15)
	e := mustEngine(t, m, Options{Chunk: 512})
	tokens := randomTokens(3000, sh.vocab, 16)
	s := e.NewState(0)
	out := make([]float32, 2*sh.vocab)
	if err := s.Forward(tokens[:2990], out[:sh.vocab], []int{2989}); err != nil {
		t.Fatal(err)
	}
	for _, sc := range s.ws.attn {
		if len(sc.s) > attnBlock+16*64 {
			t.Errorf("a worker's score buffer holds %d values, want ≤ a block", len(sc.s))
		}
	}
	whole := make([]float32, sh.vocab)
	if err := e.NewState(0).Forward(tokens, whole, []int{2999}); err != nil {
		t.Fatal(err)
	}
	if err := s.Forward(tokens[2990:], out[sh.vocab:], []int{9}); err != nil {
		t.Fatal(err)
	}
	if i := sameBits32(out[sh.vocab:], whole); i >= 0 {
		t.Errorf("logit %d: decoded %v, prefilled %v", i, out[sh.vocab+i], whole[i])
	}
}

// TestDecodeAllocations: a decode step at one thread allocates nothing.
func TestDecodeAllocations(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	for _, sh := range shapes {
		m := randomModel(sh, 17)
		e := mustEngine(t, m, Options{})
		s := e.NewState(64)
		out := make([]float32, sh.vocab)
		tok, row := []int{1}, []int{0}
		if err := s.Forward(randomTokens(8, sh.vocab, 1), nil, nil); err != nil {
			t.Fatal(err)
		}
		if a := testing.AllocsPerRun(20, func() {
			if err := s.Forward(tok, out, row); err != nil {
				t.Fatal(err)
			}
		}); a != 0 {
			t.Errorf("%s: %v allocations per decode step", sh.name, a)
		}
	}
}
