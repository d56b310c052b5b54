package graph

import (
	"fmt"

	"github.com/actq/actq/ops"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Config configures a tiny decoder-only transformer: token and learned
// position embeddings, Layers causal pre-norm blocks, a final norm and an LM
// head.
type Config struct {
	Vocab      int          // tokens are 0 … Vocab−1
	SeqLen     int          // the longest sequence (number of position embeddings)
	DModel     int          // width of the residual stream
	Heads      int          // attention heads; must divide DModel
	DHidden    int          // FFN hidden width
	Layers     int          // number of blocks
	Activation string       // FFN activation: "gelu", "gelu_tanh", "silu", "relu"
	Gated      bool         // GeGLU / SwiGLU FFNs
	Norm       Norm         // NormRMS (default) or NormLayer
	Dtype      tensor.Dtype // Float32 when zero
}

func (c Config) block() BlockConfig {
	return BlockConfig{DModel: c.DModel, Heads: c.Heads, DHidden: c.DHidden, Activation: c.Activation,
		Gated: c.Gated, Causal: true, Norm: c.Norm, Dtype: c.Dtype}
}

// Validate returns an error wrapping ErrConfig if c cannot be built.
func (c Config) Validate() error {
	if err := positive("graph.Config", "Vocab", c.Vocab, "SeqLen", c.SeqLen, "DModel", c.DModel,
		"Heads", c.Heads, "DHidden", c.DHidden, "Layers", c.Layers); err != nil {
		return err
	}
	if c.DModel%c.Heads != 0 {
		return fmt.Errorf("graph.Config: DModel %d is not divisible by Heads %d: %w", c.DModel, c.Heads, ErrConfig)
	}
	if _, err := activation(c.Activation); err != nil {
		return fmt.Errorf("graph.Config: %w", err)
	}
	if c.Norm != "" && c.Norm != NormRMS && c.Norm != NormLayer {
		return fmt.Errorf("graph.Config: unknown norm %q: %w", c.Norm, ErrConfig)
	}
	_, err := dtypeOf("graph.Config", c.Dtype)
	return err
}

// Model is a tiny decoder-only transformer. Its parameters are named
// "embed.tok" (Vocab, DModel), "embed.pos" (SeqLen, DModel), "block<i>.…"
// (see Block), "final_norm.g" (and ".b" for LayerNorm) and "head.W"
// (DModel, Vocab).
//
// Train it on the tape machine (Trainer does): the token and position
// lookups are Gorgonia's ByIndices, whose Lisp-machine gradient
// (byIndicesOp.DoDiff in v0.9.18) calls its gradient op with too few
// arguments and fails.
type Model struct {
	Tok, Pos *gorgonia.Node
	Blocks   []*Block
	Final    Normalizer
	Head     *Linear

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
	if m.Pos, err = b.param("embed.pos", initNormal, cfg.SeqLen, cfg.DModel); err != nil {
		return nil, err
	}
	for i := range cfg.Layers {
		bl, err := newBlock(b, fmt.Sprintf("block%d", i), cfg.block())
		if err != nil {
			return nil, err
		}
		m.Blocks = append(m.Blocks, bl)
	}
	if m.Final, err = newNorm(b, "final_norm", cfg.Norm, cfg.DModel, 0); err != nil {
		return nil, err
	}
	if m.Head, err = newLinear(b, "head", cfg.DModel, cfg.Vocab, false, SiteHead); err != nil {
		return nil, err
	}
	return m, nil
}

// Config returns the model's configuration (with defaults filled in).
func (m *Model) Config() Config { return m.cfg }

// Params returns every parameter, in a fixed order: the weights, then the
// scale parameters of the plan's learnable sites (Quant.Learnable) made by
// Forward so far, in the order of Sites.
func (m *Model) Params() gorgonia.Nodes {
	out := gorgonia.Nodes{m.Tok, m.Pos}
	for _, bl := range m.Blocks {
		out = append(out, bl.Params()...)
	}
	out = append(out, m.Final.Params()...)
	out = append(out, m.Head.Params()...)
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
// shape (batch, seq) with seq ≤ SeqLen: row b·seq+t holds the scores of the
// token after tokens[b, t]. Token values must lie in [0, Vocab) (Gorgonia
// does not check; an index out of range fails the run).
func (m *Model) Forward(tokens *gorgonia.Node) (*gorgonia.Node, error) {
	const fn = "graph.Model.Forward"
	if tokens == nil {
		return nil, fmt.Errorf("%s: tokens: %w", fn, ops.ErrNilNode)
	}
	if tokens.Dtype() != tensor.Int {
		return nil, fmt.Errorf("%s: tokens have dtype %v, want Int: %w", fn, tokens.Dtype(), ops.ErrDtype)
	}
	s := tokens.Shape()
	if len(s) != 2 || s[1] > m.cfg.SeqLen {
		return nil, fmt.Errorf("%s: tokens have shape %v, want (batch, seq ≤ %d): %w", fn, s, m.cfg.SeqLen, ops.ErrShape)
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
	for _, bl := range m.Blocks {
		if x, err = bl.forward(x, batch, seq); err != nil {
			return nil, err
		}
	}
	if x, err = m.Final.Forward(x); err != nil {
		return nil, err
	}
	return affine(b, x, m.Head.W, nil, SiteHead)
}

// CrossEntropy returns −Σ targets ⊙ LogSoftmax(logits) over all elements, a
// scalar, for logits and targets of shape (n, classes). With targets one-hot
// rows scaled by 1/count (and zero rows for positions that do not count), it
// is the mean cross-entropy of the counted rows (PyTorch's F.cross_entropy
// with ignore_index). It returns an error wrapping ops.ErrShape unless both
// are 2-D of equal shape, and ops.ErrDtype unless they share a float dtype.
func CrossEntropy(logits, targets *gorgonia.Node) (*gorgonia.Node, error) {
	const fn = "graph.CrossEntropy"
	if err := ops.CheckFloatNode(fn, "logits", logits); err != nil {
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
