package infer

import (
	"errors"
	"fmt"
	"math"

	"github.com/actq/actq/ops/kernel"
)

// ErrModel reports a Model the engine cannot run: sizes that do not fit,
// weights of the wrong length, an unknown activation.
var ErrModel = errors.New("infer: bad model")

// ErrInput reports input the engine cannot take: a token outside the
// vocabulary, a position beyond the model's learned positions, logits
// asked for a row that was not run, a buffer of the wrong length.
var ErrInput = errors.New("infer: bad input")

// Model is a decoder-only transformer as the engine runs it: float32
// weights in the (in, out) layout of package graph (y = x·W), and the hooks
// where a caller quantizes or watches activations. Dh = DModel/Heads.
//
//	x = Tok[token] (+ Pos[position] with learned positions)
//	per layer:  h = Norm1(x); q, k, v = h·Wq, h·Wk, h·Wv; RoPE on q and k
//	            x = x + Attention(q, k, v)·Wo
//	            h = Norm2(x); x = x + FFN(h)
//	logits = Final(x)·Head   (or Final(x)·HeadTᵀ)
//
// Attention is causal; query head i reads key/value head i/(Heads/KVHeads).
// The FFN is act(h·W1 + B1)·W2 + B2, or, gated, (act(h·W1 + B1) ⊙
// (h·W3 + B3))·W2 + B2; a nil bias is zero.
type Model struct {
	Vocab, DModel, Heads, KVHeads, DHidden int
	Activation                             string  // "gelu", "gelu_tanh", "silu" or "relu" (ops/kernel's)
	Gated                                  bool    // a gated FFN (W3, B3)
	LayerNorm                              bool    // LayerNorm (gains and shifts) instead of RMSNorm (gains)
	NormEps                                float64 // the norms' ε, > 0
	// RoPETheta > 0 gives rotary positions (Hugging Face's rotate_half
	// layout) with base θ, and no Pos; 0 gives learned positions from Pos.
	RoPETheta float64
	// MaxPos is the number of learned positions (rows of Pos); 0 with RoPE.
	MaxPos int

	Tok []float32 // (Vocab, DModel)
	Pos []float32 // (MaxPos, DModel); nil with RoPE

	Layers []Layer

	FinalG, FinalB []float32 // the final norm's gain and shift (shift nil for RMSNorm)
	// Head is the LM head (DModel, Vocab), or HeadT its transpose (Vocab,
	// DModel), logits = x·HeadTᵀ: tied embeddings, where HeadT is Tok or a
	// quantized copy of it. Exactly one is set.
	Head, HeadT []float32
}

// Layer is one block's weights and hooks. Shapes, with E = Heads·Dh and
// G = KVHeads·Dh: Wq (DModel, E), Wk and Wv (DModel, G), Wo (E, DModel),
// W1 and W3 (DModel, DHidden), W2 (DHidden, DModel), biases (DHidden) and
// (DModel), norm gains and shifts (DModel).
type Layer struct {
	Norm1G, Norm1B, Norm2G, Norm2B []float32
	Wq, Wk, Wv, Wo                 []float32
	W1, B1, W2, B2, W3, B3         []float32

	// The hooks (nil: none). FFNIn sees the FFN's input rows (after
	// Norm2), FFNHidden the input of W2 (after the activation and the
	// gate), Out the block's output rows (the residual stream).
	FFNIn, FFNHidden, Out RowSite
	// Scores sees each query row's scaled scores Q·Kᵀ/√Dh over its visible
	// keys, Probs its softmax, before P·V.
	Scores, Probs AttnSite
	// Keys and Values see the cache: see KVSite.
	Keys, Values KVSite
}

// RowSite quantizes (or watches) rows×cols activations x, row-major,
// writing the result to dst (dst and x do not overlap). first is the
// position of the first row in the sequence. The engine may call it from
// several goroutines at once.
type RowSite func(dst, x []float32, rows, cols, first int) error

// AttnSite quantizes (or watches) one query row of attention scores or
// probabilities: x holds the row's visible keys, positions 0…len(x)−1, of
// query head head at position query; the result goes to dst (dst and x do
// not overlap). The engine calls it from several goroutines at once.
type AttnSite func(dst, x []float32, head, query int) error

// KVSite quantizes one layer's key or value cache. The cache of a KV head
// h holds its rows, one per position, Dh values each: position t at
// Data[(h·Cap + t)·Dh : …+Dh]. master holds the float32 values the layer
// computed, rows 0…n−1 of every head; the hook writes the quantized rows
// into quant, which has the same layout. Rows from…n−1 are new since the
// last call; a hook whose scales depend only on each row's own position
// writes those, one whose scales span positions (keys per channel) writes
// rows 0…n−1 again from master, since the new rows move the scales. The
// engine then reads keys or values from quant.
type KVSite func(quant, master Cache, from, n int) error

// Cache is one layer's keys or values for every KV head (see KVSite).
type Cache struct {
	Data           []float32
	Heads, Cap, Dh int
}

// Row returns the row of head h at position t.
func (c Cache) Row(h, t int) []float32 {
	o := (h*c.Cap + t) * c.Dh
	return c.Data[o : o+c.Dh : o+c.Dh]
}

// Dh returns the head size.
func (m *Model) Dh() int { return m.DModel / m.Heads }

// activation returns ops/kernel's float32 kernel called name.
func activation(name string) (func(dst, x []float32) error, error) {
	switch name {
	case "gelu":
		return kernel.GELU[float32], nil
	case "gelu_tanh":
		return kernel.GELUTanh[float32], nil
	case "silu":
		return kernel.SiLU[float32], nil
	case "relu":
		return kernel.ReLU[float32], nil
	}
	return nil, fmt.Errorf("unknown activation %q: %w", name, ErrModel)
}

// check returns an error wrapping ErrModel for sizes that do not fit or
// weights of the wrong length.
func (m *Model) check() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("infer.Model: "+format+": %w", append(args, ErrModel)...)
	}
	for _, d := range []struct {
		name string
		v    int
	}{{"Vocab", m.Vocab}, {"DModel", m.DModel}, {"Heads", m.Heads}, {"KVHeads", m.KVHeads}, {"DHidden", m.DHidden}} {
		if d.v <= 0 {
			return bad("%s = %d, want > 0", d.name, d.v)
		}
	}
	if m.DModel%m.Heads != 0 || m.Heads%m.KVHeads != 0 {
		return bad("DModel %d, Heads %d, KVHeads %d: want Heads | DModel and KVHeads | Heads", m.DModel, m.Heads, m.KVHeads)
	}
	if !(m.NormEps > 0) || math.IsInf(m.NormEps, 0) {
		return bad("NormEps = %g, want positive and finite", m.NormEps)
	}
	if _, err := activation(m.Activation); err != nil {
		return fmt.Errorf("infer.Model: %w", err)
	}
	switch {
	case m.RoPETheta < 0 || math.IsNaN(m.RoPETheta) || math.IsInf(m.RoPETheta, 0):
		return bad("RoPETheta = %g, want 0 (learned positions) or positive and finite", m.RoPETheta)
	case m.RoPETheta > 0 && m.Dh()%2 != 0:
		return bad("RoPE needs an even head size, Dh = %d", m.Dh())
	case m.RoPETheta > 0 && (m.MaxPos != 0 || m.Pos != nil):
		return bad("RoPE models have no learned positions (MaxPos %d, %d Pos values)", m.MaxPos, len(m.Pos))
	case m.RoPETheta == 0 && m.MaxPos <= 0:
		return bad("MaxPos = %d with learned positions, want > 0", m.MaxPos)
	}
	d, e, g, f := m.DModel, m.DModel, m.KVHeads*m.Dh(), m.DHidden
	want := func(name string, v []float32, n int, optional bool) error {
		if (v == nil && optional) || len(v) == n {
			return nil
		}
		return bad("%s has %d values, want %d", name, len(v), n)
	}
	checks := []struct {
		name     string
		v        []float32
		n        int
		optional bool
	}{
		{"Tok", m.Tok, m.Vocab * d, false},
		{"Pos", m.Pos, m.MaxPos * d, m.RoPETheta > 0},
		{"FinalG", m.FinalG, d, false},
		{"FinalB", m.FinalB, d, !m.LayerNorm},
		{"Head", m.Head, d * m.Vocab, true},
		{"HeadT", m.HeadT, d * m.Vocab, true},
	}
	for _, c := range checks {
		if err := want(c.name, c.v, c.n, c.optional); err != nil {
			return err
		}
	}
	if (m.Head == nil) == (m.HeadT == nil) {
		return bad("Head has %d values and HeadT %d: want exactly one", len(m.Head), len(m.HeadT))
	}
	if m.LayerNorm != (m.FinalB != nil) {
		return bad("LayerNorm %v with a final shift of %d values", m.LayerNorm, len(m.FinalB))
	}
	if len(m.Layers) == 0 {
		return bad("no layers")
	}
	for i := range m.Layers {
		l := &m.Layers[i]
		for _, c := range []struct {
			name     string
			v        []float32
			n        int
			optional bool
		}{
			{"Norm1G", l.Norm1G, d, false}, {"Norm2G", l.Norm2G, d, false},
			{"Norm1B", l.Norm1B, d, !m.LayerNorm}, {"Norm2B", l.Norm2B, d, !m.LayerNorm},
			{"Wq", l.Wq, d * e, false}, {"Wk", l.Wk, d * g, false}, {"Wv", l.Wv, d * g, false}, {"Wo", l.Wo, e * d, false},
			{"W1", l.W1, d * f, false}, {"B1", l.B1, f, true}, {"W2", l.W2, f * d, false}, {"B2", l.B2, d, true},
			{"W3", l.W3, d * f, !m.Gated}, {"B3", l.B3, f, true},
		} {
			if err := want(fmt.Sprintf("Layers[%d].%s", i, c.name), c.v, c.n, c.optional); err != nil {
				return err
			}
		}
		if m.LayerNorm != (l.Norm1B != nil) || m.LayerNorm != (l.Norm2B != nil) {
			return bad("Layers[%d]: LayerNorm %v with norm shifts of %d and %d values", i, m.LayerNorm, len(l.Norm1B), len(l.Norm2B))
		}
		if !m.Gated && (l.W3 != nil || l.B3 != nil) {
			return bad("Layers[%d]: W3 or B3 without Gated", i)
		}
	}
	return nil
}
