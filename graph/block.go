package graph

import (
	"fmt"

	"github.com/actq/actq/internal/layerops"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// BlockConfig configures a pre-norm transformer block.
type BlockConfig struct {
	DModel, Heads, DHidden int
	Activation             string       // the FFN's: "gelu", "gelu_tanh", "silu", "relu"
	Gated                  bool         // GeGLU / SwiGLU FFN
	Causal                 bool         // causal self-attention
	Norm                   Norm         // NormRMS (default) or NormLayer
	NormEps                float64      // DefaultNormEps when ≤ 0
	Dtype                  tensor.Dtype // Float32 when zero
	KVHeads                int          // the attention's key/value heads (AttentionConfig.KVHeads); 0: Heads
	RoPETheta              float64      // the attention's rotary base (AttentionConfig.RoPETheta); 0: none
	NoBias                 bool         // an FFN without biases (FFNConfig.NoBias)
}

func (c BlockConfig) ffn() FFNConfig {
	return FFNConfig{DModel: c.DModel, DHidden: c.DHidden, Activation: c.Activation, Gated: c.Gated, Dtype: c.Dtype, NoBias: c.NoBias}
}

func (c BlockConfig) attention() AttentionConfig {
	return AttentionConfig{DModel: c.DModel, Heads: c.Heads, Causal: c.Causal, Dtype: c.Dtype, KVHeads: c.KVHeads, RoPETheta: c.RoPETheta}
}

// Block is a pre-norm transformer block (as in GPT-2 and LLaMA):
//
//	h = x + Attn(Norm1(x))
//	y = h + FFN(Norm2(h))
//
// Its layers are named name+".norm1", ".attn", ".norm2" and ".ffn", so its
// parameters are "<name>.attn.Wq", "<name>.ffn.W1", "<name>.norm1.g", ….
type Block struct {
	Norm1 Normalizer
	Attn  *Attention
	Norm2 Normalizer
	FFN   *FFN

	cfg  BlockConfig
	name string
	b    *builder
}

// NewBlock adds a Block's parameters to g. It returns an error wrapping
// ErrConfig for any bad size, an unknown activation or norm, DModel not
// divisible by Heads, a bad KVHeads or RoPETheta (see NewAttention), a bad
// dtype or a name already used in g.
func NewBlock(g *gorgonia.ExprGraph, name string, cfg BlockConfig, opts ...Option) (*Block, error) {
	return construct("graph.NewBlock", g, cfg.Dtype, opts, func(b *builder) (*Block, error) {
		return newBlock(b, name, cfg)
	})
}

func newBlock(b *builder, name string, cfg BlockConfig) (*Block, error) {
	cfg.Dtype = b.dt
	if cfg.Norm == "" {
		cfg.Norm = NormRMS
	}
	bl := &Block{cfg: cfg, name: name, b: b}
	var err error
	if bl.Norm1, err = newNorm(b, name+".norm1", cfg.Norm, cfg.DModel, cfg.NormEps); err != nil {
		return nil, err
	}
	if bl.Attn, err = newAttention(b, name+".attn", cfg.attention()); err != nil {
		return nil, err
	}
	if bl.Norm2, err = newNorm(b, name+".norm2", cfg.Norm, cfg.DModel, cfg.NormEps); err != nil {
		return nil, err
	}
	if bl.FFN, err = newFFN(b, name+".ffn", cfg.ffn()); err != nil {
		return nil, err
	}
	return bl, nil
}

// Config returns the block's configuration (with defaults filled in).
func (bl *Block) Config() BlockConfig { return bl.cfg }

// Params returns every parameter of the block.
func (bl *Block) Params() gorgonia.Nodes {
	var out gorgonia.Nodes
	out = append(out, bl.Norm1.Params()...)
	out = append(out, bl.Attn.Params()...)
	out = append(out, bl.Norm2.Params()...)
	return append(out, bl.FFN.Params()...)
}

// Forward returns the block applied to x (batch, seq, DModel): (batch,
// seq, DModel). It returns an error wrapping ops.ErrNilNode for a nil x,
// ops.ErrDtype for another dtype than the block's and ops.ErrShape for
// another rank than 3 or a last dimension other than DModel.
//
// Under a quantization plan (WithPlan) the block's output is the site
// name+".out", besides its FFN's and attention's sites.
func (bl *Block) Forward(x *gorgonia.Node) (*gorgonia.Node, error) {
	fn := "graph.Block(" + bl.name + ").Forward"
	if err := checkInput(fn, "x", x, bl.b.dt, -1, -1, bl.cfg.DModel); err != nil {
		return nil, err
	}
	s := x.Shape()
	batch, seq := s[0], s[1]
	x2, err := layerops.ReshapeCopy(x, batch*seq, bl.cfg.DModel)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	y, err := bl.forward(x2, batch, seq)
	if err == nil {
		y, err = gorgonia.Reshape(y, tensor.Shape{batch, seq, bl.cfg.DModel})
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	return y, nil
}

// forward is Forward on the rows of x (batch·seq, DModel).
func (bl *Block) forward(x *gorgonia.Node, batch, seq int) (*gorgonia.Node, error) {
	h, err := bl.Norm1.Forward(x)
	if err != nil {
		return nil, err
	}
	if h, err = bl.Attn.forward(h, batch, seq); err != nil {
		return nil, err
	}
	if x, err = gorgonia.Add(h, x); err != nil { // h + x: written over h, which nothing reads after
		return nil, err
	}
	if h, err = bl.Norm2.Forward(x); err != nil {
		return nil, err
	}
	if h, err = bl.FFN.forward(h); err != nil {
		return nil, err
	}
	if x, err = gorgonia.Add(h, x); err != nil { // h + x: written over h, which nothing reads after
		return nil, err
	}
	return bl.b.site(bl.name+".out", SiteBlockOutput, x)
}

// Sites returns the block's quantization sites (none without a plan).
func (bl *Block) Sites() []*Site { return bl.b.sitesWithPrefix(bl.name + ".") }
