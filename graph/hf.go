package graph

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/actq/actq/internal/hf"
	"github.com/actq/actq/internal/layerops"
	"github.com/actq/actq/internal/opkit"
	"github.com/actq/actq/internal/safetensors"
	"gorgonia.org/tensor"
)

// configFile is the name of a Hugging Face checkpoint's configuration.
const configFile = "config.json"

// LoadHF reads the Hugging Face checkpoint of a Llama-family model
// (transformers' LlamaForCausalLM) in the directory dir: config.json and
// the weights in model.safetensors, or in the shards that
// model.safetensors.index.json lists. It returns the model's Config and
// its Weights (Float32), which NewEvaluator, NewTrainer, Calibrate and the
// plans and tiers take like those of any Model.
//
// The Config is a Llama block: rotary positions (RoPETheta = rope_theta,
// default 10000), grouped-query attention (KVHeads = num_key_value_heads),
// the SwiGLU MLP as a gated "silu" FFN without biases, RMSNorm with
// NormEps = rms_norm_eps, and TieEmbeddings = tie_word_embeddings. SeqLen
// is max_position_embeddings (2048 when absent), the longest context the
// model was made for; as the model has no position embeddings, set SeqLen
// to the length of the batches you evaluate or train on (an Evaluator's
// memory grows with batch·SeqLen·Vocab for the logits and
// batch·Heads·SeqLen² for the attention scores). The special token ids
// (bos_token_id, eos_token_id) are not part of Config.
//
// Supported are the configs that compute exactly that model: "model_type"
// "llama" (architectures, if given, including LlamaForCausalLM),
// "hidden_act" "silu", a head size hidden_size/num_attention_heads that is
// even (and "head_dim", if given, equal to it), num_key_value_heads
// dividing num_attention_heads, rope_theta with no "rope_scaling" (or
// "rope_type": "default", top-level or in transformers 5's
// "rope_parameters"), no attention or MLP biases, no sliding window, no
// quantization_config and no attention dropout. Llama 2 and TinyLlama,
// SmolLM, llama2.c's models converted to HF and most Llama-architecture
// fine-tunes are of this kind. RoPE scaling (Llama 3.1 and later),
// Qwen2's attention biases, Mistral's sliding window, other model types
// and activations, and a head_dim of its own are refused with an error
// wrapping ErrUnsupported whose message says "unsupported:" and names the
// field.
//
// The weights may be stored as F32, F16 or BF16; every value converts to
// float32 exactly. PyTorch's Linear weights, stored (out, in), are
// transposed into actq's (in, out) layout. Each tensor is read straight
// into the memory of its final tensor, a transposed one a block of rows at
// a time through a small buffer, so loading holds the weights once. The
// rotary inverse frequencies that old checkpoints store
// (model.layers.N.self_attn.rotary_emb.inv_freq) are skipped. With tied embeddings the file may leave out lm_head.weight; if
// it holds one, it must equal model.embed_tokens.weight bit for bit, or
// LoadHF refuses the checkpoint (a model whose head differs from its
// embedding is not tied).
//
// Errors name the file and, where one is at fault, the tensor or the
// field. They wrap ErrCheckpoint for a malformed checkpoint (broken JSON,
// a missing or non-positive size, a safetensors file that is truncated,
// whose header length runs past the file or exceeds 100 MB, whose offsets
// overlap or run out of range, a dtype the format does not define or that
// is not F32, F16 or BF16, a tensor whose shape disagrees with the config,
// a missing or extra tensor, a tied lm_head.weight that differs from the
// embedding), ErrUnsupported for a valid checkpoint of a model this
// package does not compute, and the os package's errors (fs.ErrNotExist,
// fs.ErrPermission) for files that cannot be read. LoadHF never panics on
// bad input.
func LoadHF(dir string) (Config, Weights, error) {
	const fn = "graph.LoadHF"
	hc, err := hf.ReadConfig(filepath.Join(dir, configFile))
	if err != nil {
		return Config{}, nil, checkpointError(fn, err)
	}
	set, err := safetensors.OpenDir(dir)
	if err != nil {
		return Config{}, nil, checkpointError(fn, err)
	}
	defer set.Close()
	if err := hc.CheckTensors(set.Tensors()); err != nil {
		return Config{}, nil, checkpointError(fn, err)
	}
	cfg := configFromHF(hc)
	if err := cfg.Validate(); err != nil {
		return Config{}, nil, fmt.Errorf("%s: %s: %w", fn, dir, err)
	}
	ts := hfTensors(hc)
	var rows []float32 // a block of rows of a Linear weight, for the transpose
	w := make(Weights, len(ts))
	for _, t := range ts {
		info, ok := set.Tensor(t.hf)
		if !ok { // an optional tensor (CheckTensors found every other)
			continue
		}
		if t.optional { // lm_head.weight of a tied model: (V, D) like the embedding
			var i int
			if i, rows, err = firstDifference(set, t.hf, w[hfEmbed].Float32s(), rows); err != nil {
				return Config{}, nil, checkpointError(fn, err)
			}
			if i >= 0 {
				return Config{}, nil, fmt.Errorf("%s: %s: tensor %q differs from %q at element %d, but tie_word_embeddings is true: %w",
					fn, info.File, t.hf, "model.embed_tokens.weight", i, ErrCheckpoint)
			}
			continue
		}
		data := make([]float32, info.Len())
		if t.linear {
			rows, err = readTransposed(set, t, data, rows)
		} else {
			err = set.ReadFloat32(t.hf, data)
		}
		if err != nil {
			return Config{}, nil, checkpointError(fn, err)
		}
		w[t.actq] = tensor.New(tensor.WithShape(t.actqShape()...), tensor.WithBacking(data))
	}
	return cfg, w, nil
}

// SaveHF writes the model cfg with weights w as a Hugging Face checkpoint
// in the directory dir (made if missing), which transformers'
// LlamaForCausalLM.from_pretrained and LoadHF read: config.json, in the
// form transformers writes it, and model.safetensors with every tensor in
// F32, or BF16 with the option SaveBF16 (PyTorch's (out, in) layout for
// the Linear weights, no lm_head.weight with tied embeddings), metadata
// {"format": "pt"}. Each file is written under a temporary name and
// renamed when complete, the weights first: a failed write leaves that
// file as it was (a failure at config.json leaves the new weights beside
// the old config). The tensors are streamed from w through a small
// buffer, never copied whole.
//
// A Float64 model's weights are rounded to float32 (to nearest). Names in
// w that are not the model's parameters (the scales of learnable
// quantization sites, say) are not written. max_position_embeddings is
// written as cfg.SeqLen (set SeqLen back to the model's context length
// before saving if you shortened it for batches), torch_dtype as
// "float32" ("bfloat16" with SaveBF16), and the special token ids as null.
//
// Only what LlamaForCausalLM computes can be written: cfg must have rotary
// positions (RoPETheta > 0), RMSNorm, a gated "silu" FFN without biases
// (NoBias); any other config is refused with an error wrapping
// ErrUnsupported that names the field. It returns an error wrapping
// ErrConfig for a cfg that does not validate or weights that are missing,
// of another dtype than cfg's or of the wrong shape (naming the tensor),
// and the os package's errors for files that cannot be written.
func SaveHF(dir string, cfg Config, w Weights, opts ...SaveOption) error {
	const fn = "graph.SaveHF"
	var o saveOptions
	for _, opt := range opts {
		opt(&o)
	}
	hc, err := hfConfig(fn, cfg)
	if err != nil {
		return err
	}
	stDtype := safetensors.F32
	if o.bf16 {
		stDtype, hc.TorchDtype = safetensors.BF16, "bfloat16"
	}
	dt, _ := dtypeOf(fn, cfg.Dtype)
	var tensors []safetensors.Tensor
	for _, t := range hfTensors(hc) {
		if t.optional {
			continue
		}
		v := w[t.actq]
		switch {
		case v == nil:
			return fmt.Errorf("%s: w: no tensor %q (the checkpoint's %q): %w", fn, t.actq, t.hf, ErrConfig)
		case v.Dtype() != dt || !v.Shape().Eq(tensor.Shape(t.actqShape())):
			return fmt.Errorf("%s: w: tensor %q is %v %v, want %v %v: %w", fn, t.actq, v.Dtype(), v.Shape(), dt, tensor.Shape(t.actqShape()), ErrConfig)
		}
		data, err := opkit.FloatData(v) // a view's data materialised, in order
		if err != nil {
			return fmt.Errorf("%s: w: tensor %q: %w", fn, t.actq, err)
		}
		st := safetensors.Tensor{Name: t.hf, Shape: t.shape, Dtype: stDtype}
		switch d := data.(type) {
		case []float32:
			if t.linear {
				st.Fill = fillFrom(d, t.shape)
			} else {
				st.Data = d
			}
		case []float64:
			if t.linear {
				st.Fill = fillFrom(d, t.shape)
			} else {
				st.Fill = fillFrom(d, nil)
			}
		}
		tensors = append(tensors, st)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("%s: %w", fn, err)
	}
	if err := safetensors.Write(filepath.Join(dir, safetensors.ModelFile), tensors, map[string]string{"format": "pt"}); err != nil {
		return fmt.Errorf("%s: %w", fn, err)
	}
	if err := hf.WriteConfig(filepath.Join(dir, configFile), hc); err != nil {
		return fmt.Errorf("%s: %w", fn, err)
	}
	return nil
}

// SaveOption is an option of SaveHF.
type SaveOption func(*saveOptions)

type saveOptions struct{ bf16 bool }

// SaveBF16 makes SaveHF store every tensor in bfloat16, half the bytes of
// float32, as PyTorch's model.to(torch.bfloat16) followed by
// save_pretrained does: each weight rounded to nearest, ties to even
// (values past the largest bfloat16 become ±Inf, NaN stays NaN), and
// torch_dtype "bfloat16" in config.json. LoadHF reads the weights back as
// those rounded values, exactly.
func SaveBF16() SaveOption { return func(o *saveOptions) { o.bf16 = true } }

// loadBlock is how many elements LoadHF reads at a time where it does
// not read a tensor straight into its final place.
const loadBlock = 1 << 16

// readTransposed reads the Linear weight t, stored (out, in), into dst as
// its (in, out) transpose, a block of rows at a time through buf (grown to
// a block of about loadBlock elements if shorter), which it returns for
// reuse.
func readTransposed(set *safetensors.Set, t hfTensor, dst, buf []float32) ([]float32, error) {
	out, in := t.shape[0], t.shape[1]
	block := max(1, loadBlock/in) // rows per read
	if len(buf) < block*in {
		buf = make([]float32, block*in)
	}
	for r := 0; r < out; r += block {
		n := min(block, out-r)
		if err := set.ReadFloat32At(t.hf, buf[:n*in], r*in); err != nil {
			return buf, err
		}
		layerops.TransposeTo(dst[r:], out, buf[:n*in], n, in)
	}
	return buf, nil
}

// fillFrom returns a safetensors Fill function for the data src of an
// actq tensor: with hfShape (out, in), src is the (in, out) transpose of
// the tensor to write; with hfShape nil, it is the tensor itself. Values
// are rounded to float32.
func fillFrom[T float32 | float64](src []T, hfShape []int) func(dst []float32, start int) {
	if hfShape == nil {
		return func(dst []float32, start int) {
			for k, v := range src[start : start+len(dst)] {
				dst[k] = float32(v)
			}
		}
	}
	out, in := hfShape[0], hfShape[1]
	return func(dst []float32, start int) {
		for k := range dst {
			e := start + k // element (e/in, e%in) of the (out, in) tensor
			dst[k] = float32(src[(e%in)*out+e/in])
		}
	}
}

// firstDifference reads the tensor called name, of want's length, a block
// at a time through buf (grown to loadBlock elements if shorter, and
// returned for reuse), and returns the index of its first element whose
// bits differ from want's, or −1.
func firstDifference(set *safetensors.Set, name string, want, buf []float32) (int, []float32, error) {
	if len(buf) < loadBlock {
		buf = make([]float32, loadBlock)
	}
	for lo := 0; lo < len(want); lo += loadBlock {
		part := buf[:min(loadBlock, len(want)-lo)]
		if err := set.ReadFloat32At(name, part, lo); err != nil {
			return -1, buf, err
		}
		for i, x := range part {
			if math.Float32bits(x) != math.Float32bits(want[lo+i]) {
				return lo + i, buf, nil
			}
		}
	}
	return -1, buf, nil
}

// hfEmbed is the actq name of the token embedding.
const hfEmbed = "embed.tok"

// hfTensor is a tensor of a Llama checkpoint and the actq parameter it
// holds.
type hfTensor struct {
	hf, actq string
	shape    []int // in the checkpoint
	// linear: a PyTorch Linear weight, stored (out, in), the transpose of
	// actq's (in, out).
	linear bool
	// optional: lm_head.weight of a tied model, which is embed.tok.
	optional bool
}

// actqShape returns the parameter's shape in actq.
func (t hfTensor) actqShape() []int {
	if t.linear {
		return []int{t.shape[1], t.shape[0]}
	}
	return t.shape
}

// hfLayer maps the tensors of layer i, "model.layers.<i>.<hf>", to actq's
// "block<i>.<actq>".
var hfLayer = map[string]struct {
	actq   string
	linear bool
}{
	"input_layernorm.weight":          {"norm1.g", false},
	"self_attn.q_proj.weight":         {"attn.Wq", true},
	"self_attn.k_proj.weight":         {"attn.Wk", true},
	"self_attn.v_proj.weight":         {"attn.Wv", true},
	"self_attn.o_proj.weight":         {"attn.Wo", true},
	"post_attention_layernorm.weight": {"norm2.g", false},
	"mlp.gate_proj.weight":            {"ffn.W1", true},
	"mlp.up_proj.weight":              {"ffn.W3", true},
	"mlp.down_proj.weight":            {"ffn.W2", true},
}

// hfTensors returns the tensors of a checkpoint of hc (hf.Config.Tensors)
// with the actq parameters they hold.
func hfTensors(hc hf.Config) []hfTensor {
	specs := hc.Tensors()
	out := make([]hfTensor, len(specs))
	for k, s := range specs {
		t := hfTensor{hf: s.Name, shape: s.Shape, optional: s.Optional}
		switch s.Name {
		case "model.embed_tokens.weight":
			t.actq = hfEmbed
		case "model.norm.weight":
			t.actq = "final_norm.g"
		case "lm_head.weight":
			t.actq, t.linear = "head.W", true
			if s.Optional {
				t.actq = hfEmbed
			}
		default: // model.layers.<i>.<rest>
			i, rest, _ := strings.Cut(strings.TrimPrefix(s.Name, "model.layers."), ".")
			l := hfLayer[rest]
			t.actq, t.linear = "block"+i+"."+l.actq, l.linear
		}
		out[k] = t
	}
	return out
}

// configFromHF returns the Config of a Llama checkpoint's config.
func configFromHF(hc hf.Config) Config {
	return Config{
		Vocab: hc.VocabSize, SeqLen: hc.MaxPositionEmbeddings, DModel: hc.HiddenSize,
		Heads: hc.NumAttentionHeads, KVHeads: hc.NumKeyValueHeads, DHidden: hc.IntermediateSize,
		Layers: hc.NumHiddenLayers, Activation: "silu", Gated: true, NoBias: true, Norm: NormRMS,
		NormEps: hc.RMSNormEps, RoPETheta: hc.RopeTheta, TieEmbeddings: hc.TieWordEmbeddings,
		Dtype: tensor.Float32,
	}
}

// hfConfig returns the checkpoint config of cfg, or an error naming fn
// and the field for a cfg that is not valid (ErrConfig) or that a Llama
// checkpoint cannot express (ErrUnsupported).
func hfConfig(fn string, cfg Config) (hf.Config, error) {
	if err := cfg.Validate(); err != nil {
		return hf.Config{}, fmt.Errorf("%s: %w", fn, err)
	}
	unsupported := func(field, why string) error {
		return fmt.Errorf("%s: unsupported: %s: %s; a Llama checkpoint cannot hold it: %w", fn, field, why, ErrUnsupported)
	}
	switch {
	case cfg.RoPETheta == 0:
		return hf.Config{}, unsupported("RoPETheta", "0 (learned position embeddings)")
	case cfg.Norm == NormLayer:
		return hf.Config{}, unsupported("Norm", "LayerNorm")
	case !cfg.NoBias:
		return hf.Config{}, unsupported("NoBias", "false (FFN biases)")
	case cfg.Activation != "silu":
		return hf.Config{}, unsupported("Activation", strconv.Quote(cfg.Activation)+" (Llama's MLP is SwiGLU: \"silu\" with Gated)")
	case !cfg.Gated:
		return hf.Config{}, unsupported("Gated", "false (Llama's MLP is gated)")
	}
	kv, eps := cfg.KVHeads, cfg.NormEps
	if kv == 0 {
		kv = cfg.Heads
	}
	if eps == 0 {
		eps = DefaultNormEps
	}
	hc := hf.Config{
		Architectures: []string{hf.Architecture}, ModelType: "llama", HiddenAct: "silu", TorchDtype: "float32",
		HiddenSize: cfg.DModel, IntermediateSize: cfg.DHidden, NumAttentionHeads: cfg.Heads, NumKeyValueHeads: kv,
		NumHiddenLayers: cfg.Layers, HeadDim: cfg.DModel / cfg.Heads, RMSNormEps: eps, RopeTheta: cfg.RoPETheta,
		VocabSize: cfg.Vocab, MaxPositionEmbeddings: cfg.SeqLen, TieWordEmbeddings: cfg.TieEmbeddings,
	}
	if err := hc.Validate(); err != nil { // not expected after the checks above
		return hf.Config{}, fmt.Errorf("%s: %w: %w", fn, err, ErrConfig)
	}
	return hc, nil
}

// checkpointError returns err, an error of package hf or safetensors,
// prefixed with fn and classified: it also wraps ErrUnsupported for an
// unsupported config, ErrCheckpoint for a malformed checkpoint, and
// nothing more for other errors (those of the os package for files that
// cannot be read).
func checkpointError(fn string, err error) error {
	var kind error
	switch {
	case errors.Is(err, hf.ErrUnsupported):
		kind = ErrUnsupported
	case errors.Is(err, hf.ErrConfig), errors.Is(err, hf.ErrLayout), errors.Is(err, safetensors.ErrFormat),
		errors.Is(err, safetensors.ErrDtype), errors.Is(err, safetensors.ErrShape),
		errors.Is(err, safetensors.ErrNotFound), errors.Is(err, safetensors.ErrName):
		kind = ErrCheckpoint
	default:
		return fmt.Errorf("%s: %w", fn, err)
	}
	return &classified{msg: fn + ": " + err.Error(), err: err, kind: kind}
}

// classified is an error of another package that also wraps one of this
// package's sentinels, without repeating the sentinel in its message.
type classified struct {
	msg       string
	err, kind error
}

func (e *classified) Error() string   { return e.msg }
func (e *classified) Unwrap() []error { return []error{e.err, e.kind} }
