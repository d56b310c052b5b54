// Package hf reads and writes the config.json of a Hugging Face
// LlamaForCausalLM checkpoint and knows the names and shapes of its
// tensors (the weights themselves are read by package safetensors).
//
// # Supported configs
//
// A config is supported when the model is the Llama block as transformers'
// LlamaForCausalLM computes it with these settings:
//
//   - "model_type" is "llama"; "architectures", if given, includes
//     "LlamaForCausalLM";
//   - "hidden_act" is "silu" (the default);
//   - "hidden_size", "intermediate_size", "num_attention_heads",
//     "num_hidden_layers" and "vocab_size" are given and positive;
//     "max_position_embeddings" is positive (default 2048);
//   - "num_key_value_heads" divides "num_attention_heads" (absent or null:
//     equal to it, plain multi-head attention);
//   - "hidden_size" is a multiple of "num_attention_heads", the quotient
//     (the head size) is even, and "head_dim", if given, equals it;
//   - "rms_norm_eps" is positive (default 1e-6) and "rope_theta" positive
//     (default 10000), either at the top level or, as transformers 5
//     writes it, in "rope_parameters" with "rope_type" "default";
//   - "rope_scaling" is absent or null (or says "rope_type": "default");
//   - "attention_bias" and "mlp_bias" are false or absent, and
//     "sliding_window", "quantization_config" are absent or null,
//     "use_sliding_window" is not true, "attention_dropout" is 0.
//
// "tie_word_embeddings" (default false), "torch_dtype" (or "dtype"),
// "bos_token_id" and "eos_token_id" (a number, a list or null) are read;
// "pretraining_tp" is ignored (it only splits the same products), and so
// are fields that do not change the model ("initializer_range",
// "use_cache", "pad_token_id", "transformers_version", …).
//
// Any other setting of the fields above is refused: a config that breaks a
// rule of the format (a missing or non-positive size, heads that key/value
// heads do not divide, a field of the wrong JSON type, broken JSON) with an
// error wrapping ErrConfig, and a valid config of another model (RoPE
// scaling as in Llama 3.1, Qwen2's attention biases, Mistral's sliding
// window, another model_type or activation, a head_dim of its own) with
// one wrapping ErrUnsupported, whose message starts "unsupported:". Every
// error names the file and the field.
package hf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
)

var (
	// ErrConfig reports a config.json that is not a valid Llama config:
	// broken JSON, a field of the wrong type, a missing or non-positive
	// size, key/value heads that do not divide the heads.
	ErrConfig = errors.New("bad config")
	// ErrUnsupported reports a valid config of a model this package does
	// not support (see the package doc).
	ErrUnsupported = errors.New("unsupported config")
	// ErrLayout reports checkpoint tensors that disagree with the config:
	// missing, extra, or of the wrong shape.
	ErrLayout = errors.New("tensors disagree with the config")
)

// Architecture is the transformers class this package reads and writes.
const Architecture = "LlamaForCausalLM"

// Config is the model part of a LlamaForCausalLM config.json. Field names
// follow the JSON keys.
type Config struct {
	Architectures         []string // "architectures"; written as [Architecture]
	ModelType             string   // "llama"
	HiddenSize            int      // D, the model width
	IntermediateSize      int      // the SwiGLU width
	NumAttentionHeads     int      // H
	NumKeyValueHeads      int      // KV, dividing H
	NumHiddenLayers       int
	HeadDim               int     // D/H
	RMSNormEps            float64 // ε in x/√(mean(x²)+ε)
	RopeTheta             float64 // the RoPE base θ
	VocabSize             int
	MaxPositionEmbeddings int
	TieWordEmbeddings     bool   // lm_head is embed_tokens
	HiddenAct             string // "silu"
	TorchDtype            string // "float32", "float16", "bfloat16", or "" if not given
	BOSTokenID            []int  // none, one, or (eos) several token ids
	EOSTokenID            []int
}

// Defaults of LlamaConfig for the optional fields.
const (
	defaultRMSNormEps            = 1e-6
	defaultRopeTheta             = 10000
	defaultMaxPositionEmbeddings = 2048
)

// ReadConfig reads and validates the config.json at path (see the package
// doc for what is supported). The error names path and the field at fault
// and wraps ErrConfig, ErrUnsupported, or the os package's error for a
// file that cannot be read.
func ReadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("hf: %w", err)
	}
	return ParseConfig(path, data)
}

// ParseConfig parses and validates a config.json held in data; name is the
// file's name for errors. See ReadConfig.
func ParseConfig(name string, data []byte) (Config, error) {
	r := reader{name: name}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&r.fields); err != nil {
		return Config{}, fmt.Errorf("hf: %s: not a JSON object: %v: %w", name, err, ErrConfig)
	}
	if r.fields == nil {
		return Config{}, fmt.Errorf("hf: %s: not a JSON object: %w", name, ErrConfig)
	}
	if _, err := dec.Token(); err == nil {
		return Config{}, fmt.Errorf("hf: %s: data after the JSON object: %w", name, ErrConfig)
	}
	c := Config{
		ModelType:             r.str("model_type", ""),
		Architectures:         r.strs("architectures"),
		HiddenAct:             r.str("hidden_act", "silu"),
		HiddenSize:            r.int("hidden_size", 0),
		IntermediateSize:      r.int("intermediate_size", 0),
		NumAttentionHeads:     r.int("num_attention_heads", 0),
		NumKeyValueHeads:      r.int("num_key_value_heads", 0),
		NumHiddenLayers:       r.int("num_hidden_layers", 0),
		HeadDim:               r.int("head_dim", 0),
		VocabSize:             r.int("vocab_size", 0),
		MaxPositionEmbeddings: r.int("max_position_embeddings", defaultMaxPositionEmbeddings),
		RMSNormEps:            r.float("rms_norm_eps", defaultRMSNormEps),
		RopeTheta:             r.float("rope_theta", 0),
		TieWordEmbeddings:     r.bool("tie_word_embeddings"),
		TorchDtype:            r.str("torch_dtype", r.str("dtype", "")),
		BOSTokenID:            r.ints("bos_token_id"),
		EOSTokenID:            r.ints("eos_token_id"),
	}
	r.rope(&c)
	if r.err != nil {
		return Config{}, r.err
	}
	// Fields of other models, refused rather than ignored.
	for _, key := range []string{"attention_bias", "mlp_bias", "use_sliding_window"} {
		if r.bool(key) {
			r.unsupported(key, "true (biases and sliding windows are not supported)")
		}
	}
	for _, key := range []string{"sliding_window", "quantization_config"} {
		if r.present(key) {
			r.unsupported(key, "%s (must be null or absent)", r.fields[key])
		}
	}
	if p := r.float("attention_dropout", 0); p != 0 {
		r.unsupported("attention_dropout", "%v (no dropout is applied)", p)
	}
	if r.err != nil {
		return Config{}, r.err
	}
	if c.NumKeyValueHeads == 0 && !r.present("num_key_value_heads") {
		c.NumKeyValueHeads = c.NumAttentionHeads
	}
	if c.HeadDim == 0 && !r.present("head_dim") && c.NumAttentionHeads > 0 {
		c.HeadDim = c.HiddenSize / c.NumAttentionHeads
	}
	if err := c.validate(name); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Validate checks c as ParseConfig checks a parsed file (see the package
// doc). WriteConfig calls it.
func (c Config) Validate() error { return c.validate("config") }

func (c Config) validate(name string) error {
	bad := func(sentinel error, field, format string, args ...any) error {
		prefix := ""
		if sentinel == ErrUnsupported {
			prefix = "unsupported: "
		}
		return fmt.Errorf("hf: %s: %s%s %s: %w", name, prefix, field, fmt.Sprintf(format, args...), sentinel)
	}
	switch {
	case c.ModelType == "":
		return bad(ErrConfig, "model_type", "is missing")
	case c.ModelType != "llama":
		return bad(ErrUnsupported, "model_type", "%q (only \"llama\")", c.ModelType)
	case len(c.Architectures) > 0 && !slices.Contains(c.Architectures, Architecture):
		return bad(ErrUnsupported, "architectures", "%q (only %q)", c.Architectures, Architecture)
	case c.HiddenAct != "silu":
		return bad(ErrUnsupported, "hidden_act", "%q (only \"silu\")", c.HiddenAct)
	}
	for _, f := range []struct {
		key string
		v   int
	}{
		{"hidden_size", c.HiddenSize}, {"intermediate_size", c.IntermediateSize},
		{"num_attention_heads", c.NumAttentionHeads}, {"num_key_value_heads", c.NumKeyValueHeads},
		{"num_hidden_layers", c.NumHiddenLayers}, {"vocab_size", c.VocabSize},
		{"max_position_embeddings", c.MaxPositionEmbeddings}, {"head_dim", c.HeadDim},
	} {
		if f.v <= 0 {
			return bad(ErrConfig, f.key, "= %d, want > 0 (absent or null counts as 0 where there is no default)", f.v)
		}
	}
	switch {
	case c.NumAttentionHeads%c.NumKeyValueHeads != 0:
		return bad(ErrConfig, "num_key_value_heads", "= %d does not divide num_attention_heads = %d", c.NumKeyValueHeads, c.NumAttentionHeads)
	case c.HiddenSize%c.NumAttentionHeads != 0:
		return bad(ErrUnsupported, "hidden_size", "= %d is not a multiple of num_attention_heads = %d", c.HiddenSize, c.NumAttentionHeads)
	case c.HeadDim != c.HiddenSize/c.NumAttentionHeads:
		return bad(ErrUnsupported, "head_dim", "= %d ≠ hidden_size/num_attention_heads = %d", c.HeadDim, c.HiddenSize/c.NumAttentionHeads)
	case c.HeadDim%2 != 0:
		return bad(ErrConfig, "head_dim", "= %d is odd; rotary embeddings rotate pairs", c.HeadDim)
	case !(c.RMSNormEps > 0) || math.IsInf(c.RMSNormEps, 0):
		return bad(ErrConfig, "rms_norm_eps", "= %v, want a positive number", c.RMSNormEps)
	case !(c.RopeTheta > 0) || math.IsInf(c.RopeTheta, 0):
		return bad(ErrConfig, "rope_theta", "= %v, want a positive number", c.RopeTheta)
	}
	for _, id := range slices.Concat(c.BOSTokenID, c.EOSTokenID) {
		if id < 0 || id >= c.VocabSize {
			return bad(ErrConfig, "bos_token_id/eos_token_id", "%d is not a token id below vocab_size = %d", id, c.VocabSize)
		}
	}
	return nil
}

// reader reads fields of a config's top-level object, keeping the first
// error.
type reader struct {
	name   string
	fields map[string]json.RawMessage
	err    error
}

func (r *reader) fail(sentinel error, key, format string, args ...any) {
	if r.err == nil {
		prefix := ""
		if sentinel == ErrUnsupported {
			prefix = "unsupported: "
		}
		r.err = fmt.Errorf("hf: %s: %s%s %s: %w", r.name, prefix, key, fmt.Sprintf(format, args...), sentinel)
	}
}

func (r *reader) unsupported(key, format string, args ...any) {
	r.fail(ErrUnsupported, key, format, args...)
}

// present reports whether key is given and not null.
func (r *reader) present(key string) bool {
	v, ok := r.fields[key]
	return ok && string(v) != "null"
}

func (r *reader) str(key, def string) string {
	if !r.present(key) {
		return def
	}
	var s string
	if err := json.Unmarshal(r.fields[key], &s); err != nil {
		r.fail(ErrConfig, key, "= %s, want a string", r.fields[key])
	}
	return s
}

func (r *reader) strs(key string) []string {
	if !r.present(key) {
		return nil
	}
	var s []string
	if err := json.Unmarshal(r.fields[key], &s); err != nil {
		r.fail(ErrConfig, key, "= %s, want a list of strings", r.fields[key])
	}
	return s
}

// integer parses raw as a JSON integer (no fraction, no exponent).
func integer(raw json.RawMessage) (int, bool) {
	v, err := strconv.ParseInt(string(raw), 10, 0)
	return int(v), err == nil
}

func (r *reader) int(key string, def int) int {
	if !r.present(key) {
		return def
	}
	v, ok := integer(r.fields[key])
	if !ok {
		r.fail(ErrConfig, key, "= %s, want an integer", r.fields[key])
	}
	return v
}

// ints reads a token id field: an integer, a list of integers, or null.
func (r *reader) ints(key string) []int {
	if !r.present(key) {
		return nil
	}
	raw := r.fields[key]
	if v, ok := integer(raw); ok {
		return []int{v}
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil || raw[0] != '[' {
		r.fail(ErrConfig, key, "= %s, want an integer or a list of integers", raw)
		return nil
	}
	if len(list) == 0 {
		return nil
	}
	out := make([]int, len(list))
	for i, e := range list {
		v, ok := integer(e)
		if !ok {
			r.fail(ErrConfig, key, "= %s, want an integer or a list of integers", raw)
			return nil
		}
		out[i] = v
	}
	return out
}

func (r *reader) float(key string, def float64) float64 {
	if !r.present(key) {
		return def
	}
	raw := r.fields[key]
	v, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || raw[0] == '"' {
		r.fail(ErrConfig, key, "= %s, want a number", raw)
	}
	return v
}

func (r *reader) bool(key string) bool {
	if !r.present(key) {
		return false
	}
	switch string(r.fields[key]) {
	case "true":
		return true
	case "false":
		return false
	}
	r.fail(ErrConfig, key, "= %s, want true or false", r.fields[key])
	return false
}

// rope sets c.RopeTheta from "rope_theta" and the RoPE dictionaries
// ("rope_parameters", transformers 5; "rope_scaling", earlier), refusing
// any RoPE type but "default".
func (r *reader) rope(c *Config) {
	theta := c.RopeTheta
	for _, key := range []string{"rope_parameters", "rope_scaling"} {
		if !r.present(key) {
			continue
		}
		var p map[string]json.RawMessage
		if err := json.Unmarshal(r.fields[key], &p); err != nil || p == nil {
			r.fail(ErrConfig, key, "= %s, want an object or null", r.fields[key])
			return
		}
		sub := reader{name: r.name, fields: p}
		typ := sub.str("rope_type", sub.str("type", "default"))
		if f := sub.float("partial_rotary_factor", 1); sub.err == nil && f != 1 {
			r.unsupported(key, "partial_rotary_factor %v (only 1)", f)
			return
		}
		t := sub.float("rope_theta", 0)
		if sub.err != nil {
			r.fail(ErrConfig, key, "= %s has a field of the wrong type", r.fields[key])
			return
		}
		if typ != "default" {
			r.unsupported(key, "%s (RoPE scaling is not supported; only rope_type \"default\")", r.fields[key])
			return
		}
		if t != 0 {
			if theta != 0 && theta != t {
				r.fail(ErrConfig, key, "rope_theta %v disagrees with rope_theta %v", t, theta)
				return
			}
			theta = t
		}
	}
	if theta == 0 && !r.present("rope_theta") {
		theta = defaultRopeTheta
	}
	c.RopeTheta = theta
}
