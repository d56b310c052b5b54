package infer

import (
	"fmt"
	"math"
	"slices"

	"github.com/actq/actq/internal/layerops"
)

// DefaultChunk is the number of tokens Forward runs through the layers at
// once when Options.Chunk is 0: enough rows for the products to run at GEMM
// speed, few enough that a chunk's activations (a few rows of DHidden)
// stay small whatever the sequence length.
const DefaultChunk = 256

// Options configures an Engine.
type Options struct {
	// Attention selects attention's arithmetic (the zero value is the
	// graph's float32 arithmetic).
	Attention Arithmetic
	// Chunk is the most tokens a Forward call runs through the layers at
	// once; longer inputs are run in chunks, each attending to the cache
	// of the ones before. 0 means DefaultChunk.
	Chunk int
	// Products selects the matrix products' routines (the zero value is
	// the fastest).
	Products Products
}

// Engine runs a Model: it holds the model and its settings, read-only, so
// that any number of States may use it at once from different goroutines.
type Engine struct {
	m   *Model
	opt Options
	act func(dst, x []float32) error
	dh  int
	// scale is 1/√Dh rounded to float32, the constant the graph multiplies
	// the scores by.
	scale float32
	// outIn: m's weight matrices are held transposed (ProductsFast).
	outIn bool
}

// New returns an engine for m, which it keeps (the caller must not change
// m's slices while the engine runs); with ProductsFast it keeps its own
// copy, with the weight matrices transposed, and not m's matrices. It returns an error wrapping ErrModel
// for a model that does not fit together and ErrInput for bad options.
func New(m *Model, opt Options) (*Engine, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	if opt.Chunk < 0 {
		return nil, fmt.Errorf("infer.New: Options.Chunk = %d, want ≥ 0: %w", opt.Chunk, ErrInput)
	}
	if opt.Chunk == 0 {
		opt.Chunk = DefaultChunk
	}
	if opt.Products > ProductsGraph {
		return nil, fmt.Errorf("infer.New: Options.Products = %v, an unknown value: %w", opt.Products, ErrInput)
	}
	if err := opt.Attention.check(); err != nil {
		return nil, fmt.Errorf("infer.New: %w", err)
	}
	if opt.Attention.PV != PVFloat32 {
		for i := range m.Layers {
			if m.Layers[i].Probs != nil {
				return nil, fmt.Errorf("infer.New: layer %d has a probabilities hook, and %v P·V has no normalised probabilities: %w", i, opt.Attention.PV, ErrInput)
			}
		}
	}
	act, _ := activation(m.Activation)
	e := &Engine{m: m, opt: opt, act: act, dh: m.Dh(), scale: float32(1 / math.Sqrt(float64(m.Dh())))}
	if opt.Products == ProductsFast {
		e.m, e.outIn = outIn(m), true
	}
	return e, nil
}

// outIn returns a copy of m whose weight matrices are transposed copies,
// in the (out, in) layout of PyTorch's Linear, the head included (as
// HeadT). A one-row product then takes dot products with the weights'
// rows, and a split of its columns over goroutines gives each a
// contiguous part of the matrix to stream, where with (in, out) it would
// take a piece of every row.
func outIn(m *Model) *Model {
	c := *m
	c.Layers = slices.Clone(m.Layers)
	d, f, qd, kd := m.DModel, m.DHidden, m.DModel, m.KVHeads*m.Dh()
	t := func(w []float32, in, out int) []float32 {
		if w == nil {
			return nil
		}
		dst := make([]float32, len(w))
		layerops.Transpose(dst, w, in, out)
		return dst
	}
	for i := range c.Layers {
		l := &c.Layers[i]
		l.Wq, l.Wk, l.Wv, l.Wo = t(l.Wq, d, qd), t(l.Wk, d, kd), t(l.Wv, d, kd), t(l.Wo, qd, d)
		l.W1, l.W2, l.W3 = t(l.W1, d, f), t(l.W2, f, d), t(l.W3, d, f)
	}
	if m.Head != nil {
		c.HeadT, c.Head = t(m.Head, d, m.Vocab), nil
	}
	return &c
}

// linear sets y = x·W + bias for n rows x of in values, W being (in, out)
// as the Model gives it, held (out, in) when outIn; bias (out values) may
// be nil. With ProductsGraph, y starts as the bias and the product is
// added to it, as graph's layers do; otherwise the bias is added after.
func (e *Engine) linear(n, in, out int, x, w, bias, y []float32) {
	var beta float32
	if bias != nil && e.opt.Products == ProductsGraph {
		for lo := 0; lo < n*out; lo += out {
			copy(y[lo:lo+out], bias)
		}
		beta, bias = 1, nil
	}
	if e.outIn {
		e.matmul(true, n, out, in, 1, x, in, w, in, beta, y, out)
	} else {
		e.matmul(false, n, out, in, 1, x, in, w, out, beta, y, out)
	}
	addBias(y[:n*out], bias)
}

// Model returns the engine's model.
func (e *Engine) Model() *Model { return e.m }

// State is one sequence being run: the key/value cache of every layer and
// the buffers of a forward pass. A State is used by one goroutine at a
// time.
type State struct {
	e   *Engine
	n   int // positions run so far
	cap int // positions the caches hold
	// k and v are the float32 caches the layers computed; kq and vq what
	// attention reads: per layer, the same caches without a KV hook, the
	// hook's quantized copies with one.
	k, v, kq, vq []Cache
	ws           workspace
}

// workspace holds the buffers of a chunk of rows.
type workspace struct {
	rows int // rows the buffers hold
	// x is the residual stream, h a norm's output, q/k/v the projections
	// (k and v before they go to the cache), o attention's output, f1/f3
	// the FFN's hidden rows, site a hook's output.
	x, h, q, k, v, o, f1, f3, site []float32
	rot                            []float32     // a row being rotated
	cos, sin                       []float64     // the rows' rotation table
	attn                           []attnScratch // one per worker
}

// NewState returns an empty state whose caches hold capacity positions
// before they grow (0: they grow as needed).
func (e *Engine) NewState(capacity int) *State {
	s := &State{e: e}
	s.grow(max(capacity, 0))
	return s
}

// Len returns the number of positions run so far.
func (s *State) Len() int { return s.n }

// Reset empties the state for a new sequence, keeping its buffers.
func (s *State) Reset() { s.n = 0 }

// Reserve makes the caches hold at least n positions, so that running up
// to n positions allocates nothing more for them.
func (s *State) Reserve(n int) {
	if n > s.cap {
		s.grow(n)
	}
}

// grow makes the caches hold capacity positions, keeping the rows run.
func (s *State) grow(capacity int) {
	m := s.e.m
	kv := m.KVHeads
	resize := func(old []Cache, layer int) Cache {
		c := Cache{Data: make([]float32, kv*capacity*s.e.dh), Heads: kv, Cap: capacity, Dh: s.e.dh}
		if old != nil {
			o := old[layer]
			for h := range kv {
				copy(c.Data[h*capacity*c.Dh:], o.Data[h*o.Cap*o.Dh:(h*o.Cap+s.n)*o.Dh])
			}
		}
		return c
	}
	nl := len(m.Layers)
	k, v := make([]Cache, nl), make([]Cache, nl)
	kq, vq := make([]Cache, nl), make([]Cache, nl)
	for l := range nl {
		k[l], v[l] = resize(s.k, l), resize(s.v, l)
		kq[l], vq[l] = k[l], v[l]
		if m.Layers[l].Keys != nil {
			kq[l] = resize(s.kq, l)
		}
		if m.Layers[l].Values != nil {
			vq[l] = resize(s.vq, l)
		}
	}
	s.k, s.v, s.kq, s.vq, s.cap = k, v, kq, vq, capacity
}

// ensure sizes the workspace for rows rows.
func (w *workspace) ensure(m *Model, rows int) {
	if rows <= w.rows {
		return
	}
	d, e, g, f := m.DModel, m.DModel, m.KVHeads*m.Dh(), m.DHidden
	w.rows = rows
	w.x, w.h, w.o = make([]float32, rows*d), make([]float32, rows*d), make([]float32, rows*e)
	w.q, w.k, w.v = make([]float32, rows*e), make([]float32, rows*g), make([]float32, rows*g)
	w.f1, w.f3 = make([]float32, rows*f), make([]float32, rows*f)
	w.site = make([]float32, rows*max(d, f))
	w.rot = make([]float32, e)
}

// Forward runs tokens, the next len(tokens) positions of the sequence,
// through the model, extending the caches, and writes the logits of the
// rows listed in rows (indices into tokens, in any order) to logits,
// len(rows)·Vocab values in that order. Long inputs run in chunks of
// Options.Chunk tokens; attention over the cache is row-blocked, so memory
// stays O(chunk·positions) whatever the length.
//
// It returns an error wrapping ErrInput, and runs nothing, for a token
// outside [0, Vocab), a row outside tokens, logits of another length than
// len(rows)·Vocab, or positions beyond MaxPos with learned positions; and
// the first error of a hook (the state then holds the chunks before it).
func (s *State) Forward(tokens []int, logits []float32, rows []int) error {
	const fn = "infer.State.Forward"
	m := s.e.m
	for i, t := range tokens {
		if t < 0 || t >= m.Vocab {
			return fmt.Errorf("%s: tokens[%d] = %d is outside [0, %d): %w", fn, i, t, m.Vocab, ErrInput)
		}
	}
	for i, r := range rows {
		if r < 0 || r >= len(tokens) {
			return fmt.Errorf("%s: rows[%d] = %d is outside the %d tokens: %w", fn, i, r, len(tokens), ErrInput)
		}
	}
	if len(logits) != len(rows)*m.Vocab {
		return fmt.Errorf("%s: logits has %d values, want %d (%d rows of %d): %w", fn, len(logits), len(rows)*m.Vocab, len(rows), m.Vocab, ErrInput)
	}
	if end := s.n + len(tokens); m.RoPETheta == 0 && end > m.MaxPos {
		return fmt.Errorf("%s: positions up to %d, beyond the model's %d learned positions: %w", fn, end, m.MaxPos, ErrInput)
	}
	if need := s.n + len(tokens); need > s.cap {
		s.grow(max(need, 2*s.cap))
	}
	chunk := s.e.opt.Chunk
	for lo := 0; lo < len(tokens); lo += chunk {
		hi := min(lo+chunk, len(tokens))
		if err := s.chunk(tokens[lo:hi], lo, logits, rows); err != nil {
			return fmt.Errorf("%s: %w", fn, err)
		}
	}
	return nil
}

// chunk runs tokens (tokens[off:] of the Forward call) through every layer
// and writes the logits of the Forward rows that fall in it.
func (s *State) chunk(tokens []int, off int, logits []float32, rows []int) error {
	e, m := s.e, s.e.m
	n, d := len(tokens), m.DModel
	ws := &s.ws
	ws.ensure(m, n)
	first := s.n
	x := ws.x[:n*d]
	for r, t := range tokens {
		row := x[r*d : (r+1)*d]
		copy(row, m.Tok[t*d:(t+1)*d])
		if m.Pos != nil {
			p := m.Pos[(first+r)*d : (first+r+1)*d]
			for j := range row {
				row[j] += p[j]
			}
		}
	}
	if m.RoPETheta > 0 {
		s.ropeTable(n, first)
	}
	for l := range m.Layers {
		if err := s.layer(l, n, first); err != nil {
			return fmt.Errorf("layer %d: %w", l, err)
		}
	}
	s.n += n
	// The logits of the requested rows in this chunk.
	for i, r := range rows {
		if r < off || r >= off+n {
			continue
		}
		h := ws.h[:d]
		layerops.NormRows(h, x[(r-off)*d:(r-off+1)*d], m.FinalG, m.FinalB, m.NormEps)
		out := logits[i*m.Vocab : (i+1)*m.Vocab]
		if m.Head != nil {
			e.linear(1, d, m.Vocab, h, m.Head, nil, out)
		} else {
			e.matmul(true, 1, m.Vocab, d, 1, h, d, m.HeadT, d, 0, out, m.Vocab)
		}
	}
	return nil
}

// layer runs layer l on the workspace's n rows, positions first…first+n−1.
func (s *State) layer(l, n, first int) error {
	e, m := s.e, s.e.m
	L := &m.Layers[l]
	ws := &s.ws
	d, dh := m.DModel, e.dh
	qd, kd := m.Heads*dh, m.KVHeads*dh
	x, h := ws.x[:n*d], ws.h[:n*d]

	// Attention.
	layerops.NormRows(h, x, L.Norm1G, L.Norm1B, m.NormEps)
	q, k, v := ws.q[:n*qd], ws.k[:n*kd], ws.v[:n*kd]
	e.linear(n, d, qd, h, L.Wq, nil, q)
	e.linear(n, d, kd, h, L.Wk, nil, k)
	e.linear(n, d, kd, h, L.Wv, nil, v)
	if m.RoPETheta > 0 {
		s.rotate(q, k, n)
	}
	// Append to the cache, head-major.
	kc, vc := s.k[l], s.v[l]
	for r := range n {
		for hd := range m.KVHeads {
			copy(kc.Row(hd, first+r), k[r*kd+hd*dh:r*kd+(hd+1)*dh])
			copy(vc.Row(hd, first+r), v[r*kd+hd*dh:r*kd+(hd+1)*dh])
		}
	}
	if L.Keys != nil {
		if err := L.Keys(s.kq[l], kc, first, first+n); err != nil {
			return fmt.Errorf("keys: %w", err)
		}
	}
	if L.Values != nil {
		if err := L.Values(s.vq[l], vc, first, first+n); err != nil {
			return fmt.Errorf("values: %w", err)
		}
	}
	o := ws.o[:n*qd]
	if err := s.attention(l, q, o, n, first); err != nil {
		return err
	}
	e.linear(n, qd, d, o, L.Wo, nil, h)
	add(x, h)

	// FFN.
	layerops.NormRows(h, x, L.Norm2G, L.Norm2B, m.NormEps)
	in, err := s.site(L.FFNIn, h, n, d, first, "FFN input")
	if err != nil {
		return err
	}
	f := m.DHidden
	f1 := ws.f1[:n*f]
	e.linear(n, d, f, in, L.W1, L.B1, f1)
	if err := e.act(f1, f1); err != nil {
		return err
	}
	if m.Gated {
		f3 := ws.f3[:n*f]
		e.linear(n, d, f, in, L.W3, L.B3, f3)
		for i, g := range f3 {
			f1[i] *= g
		}
	}
	hid, err := s.site(L.FFNHidden, f1, n, f, first, "FFN hidden")
	if err != nil {
		return err
	}
	e.linear(n, f, d, hid, L.W2, L.B2, h)
	add(x, h)
	out, err := s.site(L.Out, x, n, d, first, "block output")
	if err != nil {
		return err
	}
	if &out[0] != &x[0] {
		copy(x, out)
	}
	return nil
}

// site applies a row hook to x (rows×cols) and returns its output: x
// itself without a hook, else the workspace's site buffer.
func (s *State) site(hook RowSite, x []float32, rows, cols, first int, what string) ([]float32, error) {
	if hook == nil {
		return x, nil
	}
	dst := s.ws.site[:rows*cols]
	if err := hook(dst, x, rows, cols, first); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return dst, nil
}

// add sets x += y.
func add(x, y []float32) {
	y = y[:len(x)]
	for i := range x {
		x[i] += y[i]
	}
}

// addBias adds b to every row of x (nothing when b is nil).
func addBias(x, b []float32) {
	if b == nil {
		return
	}
	for lo := 0; lo < len(x); lo += len(b) {
		add(x[lo:lo+len(b)], b)
	}
}
