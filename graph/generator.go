package graph

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/actq/actq/internal/infer"
	"github.com/actq/actq/ops"
	"github.com/actq/actq/quantize"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Generator writes text with a model: incremental decoding with a
// key/value cache, so each new token costs attention over the tokens so far
// (O(context)) plus one pass over the weights, not a forward pass over the
// whole sequence. It runs in plain Go over float32 weights (package
// internal/infer), with the graph's kernels: its logits are those an
// Evaluator computes at the last position of the sequence so far, within
// float32 rounding (its matrix products are actq's Sgemm for a prompt and
// gonum's Sgemv for each new token, where graph's layers use actq's Sgemm
// throughout: the logits agree within a few 1e-7 of their largest
// magnitude), and greedy decoding gives their argmax but at near ties.
//
// Under a plan (WithPlan), weight sites are quantized once, when the
// Generator is built, as an Evaluator's are, and activation sites are
// quantized with quantize's own code, row by row, as the last row of the
// Evaluator's graph quantizes them. That is possible where a site's scales
// depend only on its own token (or query row): dynamic scales per token or
// per query row (quantize.PerRow; PerChannel on the token axis; PerGroup),
// fixed scales shared by every token (per tensor, per feature, per head),
// unscaled casts (FP16, BF16) and Passthrough. A site whose dynamic scales
// span tokens (per tensor, or per feature across tokens) would need the
// whole sequence recomputed at every step: NewGenerator refuses it, naming
// the site. The standard tiers all fit (w4a8-static once calibrated). The
// key/value cache sites are the exception: the cache holds float32 keys
// and values, and a site whose scales span positions (KIVI's per-channel
// keys, keys in groups of tokens) requantizes the cached rows those scales
// cover at every step. A step's first layer then reads what a full pass
// over the sequence so far reads; deeper layers read keys and values that
// earlier steps computed under the scales of their time (where the full
// pass recomputes every position with the latest ones), as a requantizing
// KV cache does. A prompt's prefill computes the full pass in every
// layer.
//
// Sites count their statistics as the graph's do, with two differences:
// each quantized slice counts as a run (a token's row, a query row), and
// attention sites count each query row's visible keys only, where the
// graph's also count the masked ones (as ±Inf at scores, as zeros at
// probabilities).
//
// A Generator is safe for concurrent use: each call runs its own cache.
type Generator struct {
	cfg   Config
	eng   *infer.Engine
	sites []*Site
}

// withProducts sets the routines of a Generator's matrix products (the
// tests' infer.ProductsGraph gives the Evaluator's arithmetic).
func withProducts(p infer.Products) Option { return func(o *options) { o.products = p } }

// NewGenerator returns a Generator for the model cfg with weights w (read,
// not kept: later changes to w do not reach it); opts may add a
// quantization plan (WithPlan) and attention arithmetic (WithAttention).
// Learnable sites take their scales from w when it holds them, as an
// Evaluator's do.
//
// It returns an error wrapping ErrConfig for a config that does not
// validate, a Float64 model (the Generator runs float32), nil weights,
// weights that do not fit cfg, a plan site whose scales span tokens (see
// Generator), an unknown AttentionArithmetic.PV, and fp16 P·V with a
// probabilities site; quantize.ErrSpec for a spec that does not fit its
// site.
func NewGenerator(cfg Config, w Weights, opts ...Option) (*Generator, error) {
	const fn = "graph.NewGenerator"
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	if dt, _ := dtypeOf(fn, cfg.Dtype); dt != tensor.Float32 {
		return nil, fmt.Errorf("%s: Config.Dtype %v: the Generator runs Float32 models: %w", fn, dt, ErrConfig)
	}
	if w == nil {
		return nil, fmt.Errorf("%s: nil weights: %w", fn, ErrConfig)
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	model, err := NewModel(gorgonia.NewGraph(), cfg,
		append([]Option{WithWeights(w)}, append(opts[:len(opts):len(opts)], withPrequantizedWeights())...)...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	b, cfg := model.b, model.Config()
	im, err := engineModel(b, model)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	if err := b.opts.attention.check(im); err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	eng, err := infer.New(im, infer.Options{Attention: b.opts.attention.infer(), Products: b.opts.products})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	g := &Generator{cfg: cfg, eng: eng}
	if b.q != nil {
		g.sites = b.q.sites
	}
	return g, nil
}

// engineModel quantizes the model's weight sites (once, as an Evaluator
// does), makes the hooks of its activation sites, and returns the engine's
// view of it. The sites are made in the order of Model.Forward, so that
// Sites lists them as an Evaluator's Sites does.
func engineModel(b *builder, m *Model) (*infer.Model, error) {
	cfg := m.cfg
	check := b.q != nil && b.q.plan.CheckFinite
	weight := func(n *gorgonia.Node, kind SiteKind) ([]float32, error) {
		if _, err := b.site(n.Name(), kind, n); err != nil {
			return nil, err
		}
		return n.Value().Data().([]float32), nil
	}
	// activation records an activation site and returns it (nil: none),
	// with its learnable scales made.
	activation := func(name string, kind SiteKind) (*Site, error) {
		s, err := b.addSite(name, kind, false)
		if err != nil || s == nil {
			return nil, err
		}
		if s.Quant.Learnable != nil {
			if err := b.learnableScale(s, nil); err != nil {
				return nil, fmt.Errorf("site %q: %w", name, err)
			}
		}
		return s, nil
	}
	rows := func(name string, kind SiteKind, cols int) (infer.RowSite, error) {
		s, err := activation(name, kind)
		if err != nil || s == nil {
			return nil, err
		}
		return rowHook(s, cols, check)
	}
	attn := func(name string, kind SiteKind) (infer.AttnSite, error) {
		s, err := activation(name, kind)
		if err != nil || s == nil {
			return nil, err
		}
		return attnHook(s, cfg.Heads, check)
	}
	cache := func(name string, kind SiteKind) (infer.KVSite, error) {
		s, err := activation(name, kind)
		if err != nil || s == nil {
			return nil, err
		}
		return kvHook(s, cfg.KVHeads, cfg.DModel/cfg.Heads, check)
	}
	val := func(n *gorgonia.Node) []float32 {
		if n == nil {
			return nil
		}
		return n.Value().Data().([]float32)
	}
	gain, shift := func(n Normalizer) []float32 { return val(n.Params()[0]) }, func(n Normalizer) []float32 {
		if ln, ok := n.(*LayerNorm); ok {
			return val(ln.B)
		}
		return nil
	}
	im := &infer.Model{
		Vocab: cfg.Vocab, DModel: cfg.DModel, Heads: cfg.Heads, KVHeads: cfg.KVHeads, DHidden: cfg.DHidden,
		Activation: cfg.Activation, Gated: cfg.Gated, LayerNorm: cfg.Norm == NormLayer, NormEps: cfg.NormEps,
		RoPETheta: cfg.RoPETheta, Tok: val(m.Tok), Pos: val(m.Pos),
	}
	if m.Pos != nil {
		im.MaxPos = cfg.SeqLen
	}
	var err error
	for _, bl := range m.Blocks {
		a, f := bl.Attn, bl.FFN
		l := infer.Layer{Norm1G: gain(bl.Norm1), Norm1B: shift(bl.Norm1), Norm2G: gain(bl.Norm2), Norm2B: shift(bl.Norm2),
			B1: val(f.B1), B2: val(f.B2), B3: val(f.B3)}
		steps := []func() error{
			func() (err error) { l.Wq, err = weight(a.Wq, SiteWeight); return },
			func() (err error) { l.Wk, err = weight(a.Wk, SiteWeight); return },
			func() (err error) { l.Wv, err = weight(a.Wv, SiteWeight); return },
			func() (err error) { l.Keys, err = cache(a.name+".keys", SiteAttnKeys); return },
			func() (err error) { l.Values, err = cache(a.name+".values", SiteAttnValues); return },
			func() (err error) { l.Scores, err = attn(a.name+".scores", SiteAttnScores); return },
			func() (err error) { l.Probs, err = attn(a.name+".probs", SiteAttnProbs); return },
			func() (err error) { l.Wo, err = weight(a.Wo, SiteWeight); return },
			func() (err error) { l.FFNIn, err = rows(f.name+".in", SiteFFNInput, cfg.DModel); return },
			func() (err error) { l.W1, err = weight(f.W1, SiteWeight); return },
			func() (err error) {
				if f.W3 != nil {
					l.W3, err = weight(f.W3, SiteWeight)
				}
				return
			},
			func() (err error) { l.FFNHidden, err = rows(f.name+".hidden", SiteFFNHidden, cfg.DHidden); return },
			func() (err error) { l.W2, err = weight(f.W2, SiteWeight); return },
			func() (err error) { l.Out, err = rows(bl.name+".out", SiteBlockOutput, cfg.DModel); return },
		}
		for _, step := range steps {
			if err := step(); err != nil {
				return nil, err
			}
		}
		im.Layers = append(im.Layers, l)
	}
	im.FinalG, im.FinalB = gain(m.Final), shift(m.Final)
	if m.Head != nil {
		if im.Head, err = weight(m.Head.W, SiteHead); err != nil {
			return nil, err
		}
		return im, nil
	}
	// Tied embeddings: the head is embed.tok as it is, or the quantized
	// copy an Evaluator makes of it (the lookup reads it unquantized).
	e, err := b.siteWith("head.W", SiteHead, m.Tok, true)
	if err != nil {
		return nil, err
	}
	im.HeadT = val(e)
	return im, nil
}

// Config returns the generator's model configuration (with defaults filled
// in).
func (g *Generator) Config() Config { return g.cfg }

// MaxContext returns the longest sequence (prompt and generated tokens)
// the model can run: SeqLen, its number of learned positions, or with
// rotary positions math.MaxInt (memory is the limit: the cache holds
// Layers·2·KVHeads·Dh float32 values per position, more with KV sites).
func (g *Generator) MaxContext() int {
	if g.cfg.RoPETheta > 0 {
		return math.MaxInt
	}
	return g.cfg.SeqLen
}

// Sites returns the quantization sites (none without a plan), in the order
// an Evaluator's Sites lists them. Their statistics add up over every call
// since the Generator was built or ResetStats was called; weight sites show
// their one quantization, when the Generator was built.
func (g *Generator) Sites() []*Site { return g.sites }

// Stats returns every site's statistics by site name.
func (g *Generator) Stats() map[string]quantize.StatsSnapshot { return siteStats(g.sites) }

// ResetStats sets the counters of every activation site to zero.
func (g *Generator) ResetStats() { resetActivationStats(g.sites) }

// checkTokens returns an error wrapping ops.ErrValue for a token outside
// [0, Vocab), naming what and the index.
func (g *Generator) checkTokens(fn, what string, tokens []int) error {
	for i, t := range tokens {
		if t < 0 || t >= g.cfg.Vocab {
			return fmt.Errorf("%s: %s[%d] = %d is outside [0, %d): %w", fn, what, i, t, g.cfg.Vocab, ops.ErrValue)
		}
	}
	return nil
}

// Generate returns n tokens that continue prompt, each drawn from the
// model's next-token distribution under s (greedy with Temperature 0; see
// Sampling), with a fixed seed for reproducible draws. The prompt runs in
// one pass (chunked prefill); each new token is then one decoding step
// over the cache.
//
// It returns an error wrapping ops.ErrShape for an empty prompt or a
// sequence longer than MaxContext (len(prompt) + n − 1 positions run);
// ops.ErrValue for a prompt token outside [0, Vocab) or n < 0; ErrConfig
// for a bad Sampling (see Sampling); ops.ErrNonFinite if every logit of a
// step is NaN; and a site's error (ops.ErrNonFinite from a plan's
// CheckFinite). n = 0 returns no tokens and runs nothing.
func (g *Generator) Generate(prompt []int, n int, s Sampling) ([]int, error) {
	const fn = "graph.Generator.Generate"
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	if len(prompt) == 0 {
		return nil, fmt.Errorf("%s: the prompt is empty, want at least one token: %w", fn, ops.ErrShape)
	}
	if n < 0 {
		return nil, fmt.Errorf("%s: n = %d, want ≥ 0: %w", fn, n, ops.ErrValue)
	}
	if err := g.checkTokens(fn, "prompt", prompt); err != nil {
		return nil, err
	}
	if run := len(prompt) + n - 1; n > 0 && run > g.MaxContext() {
		return nil, fmt.Errorf("%s: %d prompt tokens and %d new ones run %d positions, beyond the model's %d: %w",
			fn, len(prompt), n, run, g.MaxContext(), ops.ErrShape)
	}
	out := make([]int, 0, n)
	if n == 0 {
		return out, nil
	}
	// The cache is reserved for the whole run (no growth while decoding)
	// up to maxReserve positions; past that it grows as it fills.
	st := g.eng.NewState(min(len(prompt)+n-1, max(len(prompt), maxReserve)))
	logits := make([]float32, g.cfg.Vocab)
	sm := newSampler(s, g.cfg.Vocab)
	tok, row := []int{0}, []int{0}
	if err := st.Forward(prompt, logits, []int{len(prompt) - 1}); err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	for {
		next, err := sm.next(logits)
		if err != nil {
			return nil, fmt.Errorf("%s: step %d: %w", fn, len(out), err)
		}
		out = append(out, next)
		if len(out) == n {
			return out, nil
		}
		tok[0] = next
		if err := st.Forward(tok, logits, row); err != nil {
			return nil, fmt.Errorf("%s: step %d: %w", fn, len(out), err)
		}
	}
}

// Logits runs tokens as one sequence and returns the logits at the given
// positions (indices into tokens, in any order): len(positions) rows of
// Vocab values, row i for positions[i], the scores of the token after it.
// It computes what Evaluator.Logits gives at those rows for the same
// sequence, chunk by chunk with attention in blocks of query rows, so that
// long sequences take O(block·length) memory per head, and the LM head runs
// only at the positions asked for.
//
// It returns an error wrapping ops.ErrShape for no tokens or more than
// MaxContext, ops.ErrValue for a token outside [0, Vocab) or a position
// outside the tokens, and a site's error.
func (g *Generator) Logits(tokens, positions []int) ([]float64, error) {
	const fn = "graph.Generator.Logits"
	if len(tokens) == 0 || len(tokens) > g.MaxContext() {
		return nil, fmt.Errorf("%s: %d tokens, want 1 to %d: %w", fn, len(tokens), g.MaxContext(), ops.ErrShape)
	}
	if err := g.checkTokens(fn, "tokens", tokens); err != nil {
		return nil, err
	}
	for i, p := range positions {
		if p < 0 || p >= len(tokens) {
			return nil, fmt.Errorf("%s: positions[%d] = %d is outside the %d tokens: %w", fn, i, p, len(tokens), ops.ErrValue)
		}
	}
	out := make([]float32, len(positions)*g.cfg.Vocab)
	if err := g.eng.NewState(len(tokens)).Forward(tokens, out, positions); err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	l := make([]float64, len(out))
	for i, v := range out {
		l[i] = float64(v)
	}
	return l, nil
}

// maxReserve is the most positions Generate reserves the cache for
// before running (a request for a very long generation with rotary
// positions then fails when memory does, not before).
const maxReserve = 1 << 16

// newRand returns the sampler's random source for seed.
func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0)) }
