package graph

import (
	"fmt"
	"math"

	"github.com/actq/actq/internal/layerops"
	"github.com/actq/actq/internal/opkit"
	"github.com/actq/actq/ops"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Config configures a decoder-only transformer: a token embedding, learned
// position embeddings or rotary positions, Layers causal pre-norm blocks, a
// final norm and an LM head.
//
// The zero values of the fields after Dtype give actq's original model:
// learned positions, multi-head attention, FFN biases, norms with
// DefaultNormEps and an LM head of its own. A Llama-family model (as
// LoadHF returns) sets them: rotary positions (RoPETheta), grouped-query
// attention (KVHeads), no biases (NoBias), the RMSNorm ε of its config
// (NormEps), and with some checkpoints tied embeddings; its FFN is SwiGLU,
// Activation "silu" with Gated, whose W1, W3 and W2 are Llama's gate, up
// and down projections.
type Config struct {
	Vocab      int          // tokens are 0 … Vocab−1
	SeqLen     int          // the sequence length of a batch; with learned positions also the longest sequence (number of position embeddings)
	DModel     int          // width of the residual stream
	Heads      int          // attention heads; must divide DModel
	DHidden    int          // FFN hidden width
	Layers     int          // number of blocks
	Activation string       // FFN activation: "gelu", "gelu_tanh", "silu", "relu"
	Gated      bool         // GeGLU / SwiGLU FFNs
	Norm       Norm         // NormRMS (default) or NormLayer
	Dtype      tensor.Dtype // Float32 when zero

	// KVHeads is the number of key/value heads of grouped-query attention
	// (Ainslie et al. 2023): query head h uses key/value head
	// h/(Heads/KVHeads). It must divide Heads; 0 means Heads (multi-head
	// attention), 1 is multi-query attention.
	KVHeads int
	// RoPETheta > 0 gives rotary position embeddings with base θ
	// (rope_theta; Hugging Face's rotate_half layout, see Attention) on
	// the queries and keys, and no position embedding "embed.pos"; the
	// head size DModel/Heads must then be even. SeqLen is then only the
	// length of a batch's sequences and may be changed freely: no weight
	// depends on it. 0 gives learned position embeddings.
	RoPETheta float64
	// NoBias leaves out the FFN biases (B1, B2, B3), as Llama does.
	NoBias bool
	// NormEps is the ε of every norm; 0 means DefaultNormEps.
	NormEps float64
	// TieEmbeddings makes the LM head the token embedding transposed:
	// logits = x·embed.tokᵀ, with no "head.W" parameter.
	TieEmbeddings bool
}

func (c Config) block() BlockConfig {
	return BlockConfig{DModel: c.DModel, Heads: c.Heads, DHidden: c.DHidden, Activation: c.Activation,
		Gated: c.Gated, Causal: true, Norm: c.Norm, NormEps: c.NormEps, Dtype: c.Dtype,
		KVHeads: c.KVHeads, RoPETheta: c.RoPETheta, NoBias: c.NoBias}
}

// Validate returns an error wrapping ErrConfig, naming the field, if c
// cannot be built: a size that is not positive, DModel not divisible by
// Heads, KVHeads negative or not dividing Heads, RoPETheta negative, NaN
// or infinite, RoPE with an odd head size, NormEps negative, NaN or
// infinite, an unknown activation or norm, a dtype other than Float32 and
// Float64. Every combination of the other options is valid (tied
// embeddings with learned positions, a gated FFN with biases, …).
func (c Config) Validate() error {
	const fn = "graph.Config"
	if err := positive(fn, "Vocab", c.Vocab, "SeqLen", c.SeqLen, "DModel", c.DModel,
		"Heads", c.Heads, "DHidden", c.DHidden, "Layers", c.Layers); err != nil {
		return err
	}
	if err := checkAttention(fn, c.DModel, c.Heads, c.KVHeads, c.RoPETheta); err != nil {
		return err
	}
	if _, err := activation(c.Activation); err != nil {
		return fmt.Errorf("%s: %w", fn, err)
	}
	if c.Norm != "" && c.Norm != NormRMS && c.Norm != NormLayer {
		return fmt.Errorf("%s: unknown norm %q: %w", fn, c.Norm, ErrConfig)
	}
	if !(c.NormEps >= 0) || math.IsInf(c.NormEps, 1) {
		return fmt.Errorf("%s: NormEps = %v, want ≥ 0 and finite (0: DefaultNormEps): %w", fn, c.NormEps, ErrConfig)
	}
	_, err := dtypeOf(fn, c.Dtype)
	return err
}

// Model is a decoder-only transformer. Its parameters are named
// "embed.tok" (Vocab, DModel), "embed.pos" (SeqLen, DModel; not with
// RoPETheta), "block<i>.…" (see Block), "final_norm.g" (and ".b" for
// LayerNorm) and "head.W" (DModel, Vocab; not with TieEmbeddings, where
// the head is embed.tokᵀ).
//
// Train it on the tape machine (Trainer does): the token and position
// lookups are Gorgonia's ByIndices, whose Lisp-machine gradient
// (byIndicesOp.DoDiff in v0.9.18) calls its gradient op with too few
// arguments and fails.
type Model struct {
	Tok, Pos *gorgonia.Node // Pos is nil with rotary positions
	Blocks   []*Block
	Final    Normalizer
	Head     *Linear // nil with tied embeddings

	cfg Config
	b   *builder
}

// NewModel adds a Model's parameters to g, seeded (WithSeed) or given
// (WithWeights). Embeddings start N(0, 1) (PyTorch's nn.Embedding), matrices
// uniform in ±1/√fan-in, gains at 1 and shifts and biases at 0. It returns an
// error wrapping ErrConfig if cfg does not validate or a name is already
// used in g.
func NewModel(g *gorgonia.ExprGraph, cfg Config, opts ...Option) (*Model, error) {
	const fn = "graph.NewModel"
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	cfg.Dtype, _ = dtypeOf(fn, cfg.Dtype)
	if cfg.Norm == "" {
		cfg.Norm = NormRMS
	}
	if cfg.KVHeads == 0 {
		cfg.KVHeads = cfg.Heads
	}
	if cfg.NormEps == 0 {
		cfg.NormEps = DefaultNormEps
	}
	b, err := newBuilder(fn, g, cfg.Dtype, opts)
	if err != nil {
		return nil, err
	}
	m, err := newModel(b, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	return m, nil
}

func newModel(b *builder, cfg Config) (*Model, error) {
	m := &Model{cfg: cfg, b: b}
	var err error
	if m.Tok, err = b.param("embed.tok", initNormal, cfg.Vocab, cfg.DModel); err != nil {
		return nil, err
	}
	if cfg.RoPETheta == 0 {
		if m.Pos, err = b.param("embed.pos", initNormal, cfg.SeqLen, cfg.DModel); err != nil {
			return nil, err
		}
	}
	for i := range cfg.Layers {
		bl, err := newBlock(b, fmt.Sprintf("block%d", i), cfg.block())
		if err != nil {
			return nil, err
		}
		m.Blocks = append(m.Blocks, bl)
	}
	if m.Final, err = newNorm(b, "final_norm", cfg.Norm, cfg.DModel, cfg.NormEps); err != nil {
		return nil, err
	}
	if !cfg.TieEmbeddings {
		if m.Head, err = newLinear(b, "head", cfg.DModel, cfg.Vocab, false, SiteHead); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Config returns the model's configuration (with defaults filled in).
func (m *Model) Config() Config { return m.cfg }

// Params returns every parameter, in a fixed order: the weights, then the
// scale parameters of the plan's learnable sites (Quant.Learnable) made by
// Forward so far, in the order of Sites.
func (m *Model) Params() gorgonia.Nodes {
	out := nonNil(m.Tok, m.Pos)
	for _, bl := range m.Blocks {
		out = append(out, bl.Params()...)
	}
	out = append(out, m.Final.Params()...)
	if m.Head != nil {
		out = append(out, m.Head.Params()...)
	}
	for _, s := range m.Sites() {
		if s.scale != nil {
			out = append(out, s.scale)
		}
	}
	return out
}

// Weights returns copies of the parameters' current values.
func (m *Model) Weights() (Weights, error) { return Collect(m.Params()...) }

// Forward returns the logits (batch·seq, Vocab) for tokens, an Int node of
// shape (batch, seq), with seq ≤ SeqLen for learned positions (any seq
// with rotary positions): row b·seq+t holds the scores of the token after
// tokens[b, t], at position t. Token values must lie in [0, Vocab)
// (Gorgonia does not check; an index out of range fails the run).
func (m *Model) Forward(tokens *gorgonia.Node) (*gorgonia.Node, error) {
	const fn = "graph.Model.Forward"
	if tokens == nil {
		return nil, fmt.Errorf("%s: tokens: %w", fn, ops.ErrNilNode)
	}
	if tokens.Dtype() != tensor.Int {
		return nil, fmt.Errorf("%s: tokens have dtype %v, want Int: %w", fn, tokens.Dtype(), ops.ErrDtype)
	}
	s := tokens.Shape()
	if len(s) != 2 || (m.Pos != nil && s[1] > m.cfg.SeqLen) {
		want := "(batch, seq)"
		if m.Pos != nil {
			want = fmt.Sprintf("(batch, seq ≤ %d)", m.cfg.SeqLen)
		}
		return nil, fmt.Errorf("%s: tokens have shape %v, want %s: %w", fn, s, want, ops.ErrShape)
	}
	y, err := m.forward(tokens, s[0], s[1])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	return y, nil
}

func (m *Model) forward(tokens *gorgonia.Node, batch, seq int) (*gorgonia.Node, error) {
	b := m.b
	idx, err := gorgonia.Reshape(tokens, tensor.Shape{batch * seq})
	if err != nil {
		return nil, err
	}
	x, err := gorgonia.ByIndices(m.Tok, idx, 0)
	if err != nil {
		return nil, err
	}
	if m.Pos != nil {
		positions := make([]int, batch*seq)
		for i := range positions {
			positions[i] = i % seq
		}
		pidx := gorgonia.NewConstant(tensor.New(tensor.WithBacking(positions)),
			gorgonia.WithName(fmt.Sprintf("actq.positions.%dx%d", batch, seq)))
		p, err := gorgonia.ByIndices(m.Pos, pidx, 0)
		if err != nil {
			return nil, err
		}
		if x, err = gorgonia.Add(x, p); err != nil {
			return nil, err
		}
	}
	for _, bl := range m.Blocks {
		if x, err = bl.forward(x, batch, seq); err != nil {
			return nil, err
		}
	}
	if x, err = m.Final.Forward(x); err != nil {
		return nil, err
	}
	if m.Head != nil {
		return affine(b, x, m.Head.W, nil, SiteHead)
	}
	return m.tiedHead(x)
}

// tiedHead returns the logits x·Eᵀ of the rows x (n, DModel) for the
// token embedding E (Vocab, DModel), through the head's weight site
// ("head.W", quantizing E in its own (out, in) layout). The product is one
// GEMM with E transposed, on (1, 1, …) views of both operands (which only
// BMM and its gradients read), so E is neither copied nor transposed in
// memory.
func (m *Model) tiedHead(x *gorgonia.Node) (*gorgonia.Node, error) {
	e, err := m.b.siteWith("head.W", SiteHead, m.Tok, true)
	if err != nil {
		return nil, err
	}
	n, d, v := x.Shape()[0], m.cfg.DModel, m.cfg.Vocab
	x4, err := gorgonia.Reshape(x, tensor.Shape{1, 1, n, d})
	if err != nil {
		return nil, err
	}
	e4, err := gorgonia.Reshape(e, tensor.Shape{1, 1, v, d})
	if err != nil {
		return nil, err
	}
	y, err := layerops.BMM(x4, e4, false, true)
	if err != nil {
		return nil, err
	}
	return gorgonia.Reshape(y, tensor.Shape{n, v})
}

// CrossEntropy returns −Σ targets ⊙ LogSoftmax(logits) over all elements, a
// scalar, for logits and targets of shape (n, classes). With targets one-hot
// rows scaled by 1/count (and zero rows for positions that do not count), it
// is the mean cross-entropy of the counted rows (PyTorch's F.cross_entropy
// with ignore_index). It returns an error wrapping ops.ErrShape unless both
// are 2-D of equal shape, and ops.ErrDtype unless they share a float dtype.
func CrossEntropy(logits, targets *gorgonia.Node) (*gorgonia.Node, error) {
	const fn = "graph.CrossEntropy"
	if err := opkit.CheckFloatNode(fn, "logits", logits); err != nil {
		return nil, err
	}
	if err := checkInput(fn, "targets", targets, logits.Dtype(), logits.Shape()...); err != nil || logits.Shape().Dims() != 2 {
		if err == nil {
			err = fmt.Errorf("%s: logits have shape %v, want 2-D: %w", fn, logits.Shape(), ops.ErrShape)
		}
		return nil, err
	}
	lp, err := ops.LogSoftmax(logits)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	prod, err := gorgonia.HadamardProd(targets, lp)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	s, err := gorgonia.Sum(prod)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	return gorgonia.Neg(s)
}

// Sites returns the model's quantization sites (none without a plan), in
// the order they were made.
func (m *Model) Sites() []*Site { return m.b.sitesWithPrefix("") }
