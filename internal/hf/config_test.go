package hf_test

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/actq/actq/internal/hf"
)

// tinyLlama is a config in the form TinyLlama-1.1B publishes (grouped-query
// attention, 4 key/value heads for 32 heads).
const tinyLlama = `{
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "bos_token_id": 1,
  "eos_token_id": 2,
  "hidden_act": "silu",
  "hidden_size": 2048,
  "initializer_range": 0.02,
  "intermediate_size": 5632,
  "max_position_embeddings": 2048,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 22,
  "num_key_value_heads": 4,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": null,
  "rope_theta": 10000.0,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.35.0",
  "use_cache": true,
  "vocab_size": 32000
}`

var tinyLlamaConfig = hf.Config{
	Architectures: []string{"LlamaForCausalLM"}, ModelType: "llama",
	HiddenSize: 2048, IntermediateSize: 5632, NumAttentionHeads: 32, NumKeyValueHeads: 4,
	NumHiddenLayers: 22, HeadDim: 64, RMSNormEps: 1e-5, RopeTheta: 10000, VocabSize: 32000,
	MaxPositionEmbeddings: 2048, HiddenAct: "silu", TorchDtype: "bfloat16",
	BOSTokenID: []int{1}, EOSTokenID: []int{2},
}

// variant returns tinyLlama with the given keys set to raw JSON values, or
// deleted where the value is "".
func variant(t testing.TB, kv ...string) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(tinyLlama), &m); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(m, kv[i])
		} else {
			m[kv[i]] = json.RawMessage(kv[i+1])
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseConfig(t *testing.T) {
	got, err := hf.ParseConfig("config.json", []byte(tinyLlama))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, tinyLlamaConfig) {
		t.Errorf("ParseConfig = %+v\nwant %+v", got, tinyLlamaConfig)
	}
	// Defaults and alternative spellings.
	for _, tc := range []struct {
		name  string
		data  []byte
		check func(c hf.Config) bool
	}{
		{"no num_key_value_heads: multi-head", variant(t, "num_key_value_heads", ""), func(c hf.Config) bool { return c.NumKeyValueHeads == 32 }},
		{"null num_key_value_heads", variant(t, "num_key_value_heads", "null"), func(c hf.Config) bool { return c.NumKeyValueHeads == 32 }},
		{"no rope_theta", variant(t, "rope_theta", ""), func(c hf.Config) bool { return c.RopeTheta == 10000 }},
		{"integer rope_theta", variant(t, "rope_theta", "500000"), func(c hf.Config) bool { return c.RopeTheta == 500000 }},
		{"no rms_norm_eps", variant(t, "rms_norm_eps", ""), func(c hf.Config) bool { return c.RMSNormEps == 1e-6 }},
		{"no max_position_embeddings", variant(t, "max_position_embeddings", ""), func(c hf.Config) bool { return c.MaxPositionEmbeddings == 2048 }},
		{"no hidden_act", variant(t, "hidden_act", ""), func(c hf.Config) bool { return c.HiddenAct == "silu" }},
		{"no architectures", variant(t, "architectures", ""), func(c hf.Config) bool { return c.Architectures == nil }},
		{"head_dim given", variant(t, "head_dim", "64"), func(c hf.Config) bool { return c.HeadDim == 64 }},
		{"head_dim null", variant(t, "head_dim", "null"), func(c hf.Config) bool { return c.HeadDim == 64 }},
		{"tied", variant(t, "tie_word_embeddings", "true"), func(c hf.Config) bool { return c.TieWordEmbeddings }},
		{"eos list", variant(t, "eos_token_id", "[2, 3, 7]"), func(c hf.Config) bool { return reflect.DeepEqual(c.EOSTokenID, []int{2, 3, 7}) }},
		{"null bos", variant(t, "bos_token_id", "null"), func(c hf.Config) bool { return c.BOSTokenID == nil }},
		{"dtype (transformers 5)", variant(t, "torch_dtype", "", "dtype", `"float16"`), func(c hf.Config) bool { return c.TorchDtype == "float16" }},
		{"rope_parameters (transformers 5)", variant(t, "rope_theta", "", "rope_scaling", "", "rope_parameters", `{"rope_type": "default", "rope_theta": 500000.0}`),
			func(c hf.Config) bool { return c.RopeTheta == 500000 }},
		{"rope_parameters and an equal rope_theta", variant(t, "rope_theta", "500000.0", "rope_parameters", `{"rope_type": "default", "rope_theta": 500000.0}`),
			func(c hf.Config) bool { return c.RopeTheta == 500000 }},
		{"rope_scaling of the default type", variant(t, "rope_scaling", `{"rope_type": "default"}`), func(c hf.Config) bool { return c.RopeTheta == 10000 }},
		{"sliding_window null", variant(t, "sliding_window", "null"), func(c hf.Config) bool { return true }},
		{"mlp_bias false", variant(t, "mlp_bias", "false"), func(c hf.Config) bool { return true }},
		{"attention_dropout 0", variant(t, "attention_dropout", "0.0"), func(c hf.Config) bool { return true }},
		{"pretraining_tp 2", variant(t, "pretraining_tp", "2"), func(c hf.Config) bool { return true }},
		{"unknown fields", variant(t, "whatever", `{"x": [1]}`), func(c hf.Config) bool { return true }},
	} {
		c, err := hf.ParseConfig("config.json", tc.data)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
		} else if !tc.check(c) {
			t.Errorf("%s: got %+v", tc.name, c)
		}
	}
}

// TestParseConfigErrors checks that each bad or unsupported config is
// refused with an error wrapping the right sentinel and naming the file
// and the field.
func TestParseConfigErrors(t *testing.T) {
	const file = "ckpt/config.json"
	unsup, bad := hf.ErrUnsupported, hf.ErrConfig
	for _, tc := range []struct {
		name  string
		data  []byte
		want  error
		field string
	}{
		{"empty file", nil, bad, ""},
		{"broken JSON", []byte(`{"hidden_size": 64,`), bad, ""},
		{"not an object", []byte(`[1, 2]`), bad, ""},
		{"null", []byte(`null`), bad, ""},
		{"data after the object", []byte(tinyLlama + `{}`), bad, ""},
		{"hidden_size a string", variant(t, "hidden_size", `"2048"`), bad, "hidden_size"},
		{"hidden_size fractional", variant(t, "hidden_size", `2048.5`), bad, "hidden_size"},
		{"hidden_size written as a float", variant(t, "hidden_size", `2048.0`), bad, "hidden_size"},
		{"rms_norm_eps a string", variant(t, "rms_norm_eps", `"1e-5"`), bad, "rms_norm_eps"},
		{"rope_theta a bool", variant(t, "rope_theta", `true`), bad, "rope_theta"},
		{"tie_word_embeddings a string", variant(t, "tie_word_embeddings", `"false"`), bad, "tie_word_embeddings"},
		{"architectures a string", variant(t, "architectures", `"LlamaForCausalLM"`), bad, "architectures"},
		{"model_type a number", variant(t, "model_type", `1`), bad, "model_type"},
		{"eos a string", variant(t, "eos_token_id", `"2"`), bad, "eos_token_id"},
		{"eos list with a string", variant(t, "eos_token_id", `[2, "3"]`), bad, "eos_token_id"},
		{"eos beyond the vocabulary", variant(t, "eos_token_id", `32000`), bad, "eos_token_id"},
		{"no hidden_size", variant(t, "hidden_size", ""), bad, "hidden_size"},
		{"no vocab_size", variant(t, "vocab_size", ""), bad, "vocab_size"},
		{"no num_hidden_layers", variant(t, "num_hidden_layers", ""), bad, "num_hidden_layers"},
		{"no intermediate_size", variant(t, "intermediate_size", ""), bad, "intermediate_size"},
		{"no num_attention_heads", variant(t, "num_attention_heads", ""), bad, "num_attention_heads"},
		{"no model_type", variant(t, "model_type", ""), bad, "model_type"},
		{"hidden_size 0", variant(t, "hidden_size", "0"), bad, "hidden_size"},
		{"vocab_size negative", variant(t, "vocab_size", "-5"), bad, "vocab_size"},
		{"num_hidden_layers 0", variant(t, "num_hidden_layers", "0"), bad, "num_hidden_layers"},
		{"max_position_embeddings 0", variant(t, "max_position_embeddings", "0"), bad, "max_position_embeddings"},
		{"num_key_value_heads 0", variant(t, "num_key_value_heads", "0"), bad, "num_key_value_heads"},
		{"kv heads do not divide heads", variant(t, "num_key_value_heads", "5"), bad, "num_key_value_heads"},
		{"kv heads above heads", variant(t, "num_key_value_heads", "64"), bad, "num_key_value_heads"},
		{"rms_norm_eps 0", variant(t, "rms_norm_eps", "0"), bad, "rms_norm_eps"},
		{"rms_norm_eps negative", variant(t, "rms_norm_eps", "-1e-6"), bad, "rms_norm_eps"},
		{"rope_theta 0", variant(t, "rope_theta", "0"), bad, "rope_theta"},
		{"odd head size", variant(t, "hidden_size", "288", "num_attention_heads", "32", "num_key_value_heads", "4"), bad, "head_dim"},
		{"rope_theta disagrees with rope_parameters", variant(t, "rope_parameters", `{"rope_type": "default", "rope_theta": 500000.0}`), bad, "rope_parameters"},
		{"rope_parameters not an object", variant(t, "rope_parameters", `[1]`), bad, "rope_parameters"},

		{"linear RoPE scaling", variant(t, "rope_scaling", `{"type": "linear", "factor": 2.0}`), unsup, "rope_scaling"},
		{"Llama 3.1 RoPE scaling", variant(t, "rope_scaling", `{"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0, "original_max_position_embeddings": 8192, "rope_type": "llama3"}`), unsup, "rope_scaling"},
		{"yarn rope_parameters", variant(t, "rope_theta", "", "rope_parameters", `{"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0}`), unsup, "rope_parameters"},
		{"partial rotary", variant(t, "rope_parameters", `{"rope_type": "default", "partial_rotary_factor": 0.5}`), unsup, "partial_rotary_factor"},
		{"attention biases (Qwen2)", variant(t, "attention_bias", "true"), unsup, "attention_bias"},
		{"MLP biases", variant(t, "mlp_bias", "true"), unsup, "mlp_bias"},
		{"sliding window (Mistral)", variant(t, "sliding_window", "4096"), unsup, "sliding_window"},
		{"use_sliding_window", variant(t, "use_sliding_window", "true"), unsup, "use_sliding_window"},
		{"quantized weights", variant(t, "quantization_config", `{"quant_method": "gptq", "bits": 4}`), unsup, "quantization_config"},
		{"attention dropout", variant(t, "attention_dropout", "0.1"), unsup, "attention_dropout"},
		{"model_type mistral", variant(t, "model_type", `"mistral"`), unsup, "model_type"},
		{"model_type qwen2", variant(t, "model_type", `"qwen2"`), unsup, "model_type"},
		{"another architecture", variant(t, "architectures", `["LlamaForSequenceClassification"]`), unsup, "architectures"},
		{"gelu", variant(t, "hidden_act", `"gelu"`), unsup, "hidden_act"},
		{"head_dim of its own", variant(t, "head_dim", "128"), unsup, "head_dim"},
		{"hidden_size not a multiple of heads", variant(t, "hidden_size", "2050"), unsup, "hidden_size"},
	} {
		_, err := hf.ParseConfig(file, tc.data)
		switch {
		case err == nil:
			t.Errorf("%s: no error", tc.name)
		case !errors.Is(err, tc.want):
			t.Errorf("%s: %q does not wrap %q", tc.name, err, tc.want)
		case !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), tc.field):
			t.Errorf("%s: %q does not name %s and %s", tc.name, err, file, tc.field)
		case tc.want == unsup && !strings.Contains(err.Error(), "unsupported: "):
			t.Errorf("%s: %q does not say unsupported", tc.name, err)
		}
	}
}

func TestReadConfigFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	if _, err := hf.ReadConfig(path); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Errorf("ReadConfig(missing) = %v", err)
	}
	if _, err := hf.ReadConfig(dir); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("ReadConfig(a directory) = %v", err)
	}
	os.WriteFile(path, []byte(tinyLlama), 0o644)
	c, err := hf.ReadConfig(path)
	if err != nil || !reflect.DeepEqual(c, tinyLlamaConfig) {
		t.Errorf("ReadConfig = %+v, %v", c, err)
	}
}

// wantWritten is what WriteConfig writes for tinyLlamaConfig: the keys in
// order, Python's float spellings.
const wantWritten = `{
  "architectures": [
    "LlamaForCausalLM"
  ],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 1,
  "eos_token_id": 2,
  "head_dim": 64,
  "hidden_act": "silu",
  "hidden_size": 2048,
  "initializer_range": 0.02,
  "intermediate_size": 5632,
  "max_position_embeddings": 2048,
  "mlp_bias": false,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 22,
  "num_key_value_heads": 4,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": null,
  "rope_theta": 10000.0,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "use_cache": true,
  "vocab_size": 32000
}
`

func TestWriteConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	if err := hf.WriteConfig(path, tinyLlamaConfig); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if string(b) != wantWritten {
		t.Errorf("WriteConfig wrote\n%s\nwant\n%s", b, wantWritten)
	}
	c, err := hf.ReadConfig(path)
	if err != nil || !reflect.DeepEqual(c, tinyLlamaConfig) {
		t.Errorf("read back %+v, %v", c, err)
	}
	// Other values: floats in exponent form, several eos ids, no bos, tied.
	c2 := tinyLlamaConfig
	c2.RMSNormEps, c2.RopeTheta, c2.TieWordEmbeddings = 1e-6, 1e6, true
	c2.BOSTokenID, c2.EOSTokenID, c2.TorchDtype, c2.Architectures = nil, []int{2, 5}, "", nil
	data, err := c2.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`"rms_norm_eps": 1e-06,`, `"rope_theta": 1000000.0,`, `"bos_token_id": null,`, "\"eos_token_id\": [\n    2,\n    5\n  ],", `"tie_word_embeddings": true,`, `"torch_dtype": "float32",`} {
		if !strings.Contains(string(data), s) {
			t.Errorf("MarshalJSON lacks %s:\n%s", s, data)
		}
	}
	back, err := hf.ParseConfig("x", data)
	c2.Architectures, c2.TorchDtype = []string{hf.Architecture}, "float32"
	if err != nil || !reflect.DeepEqual(back, c2) {
		t.Errorf("read back %+v, %v\nwant %+v", back, err, c2)
	}
	// An unsupported config is not written.
	c3 := tinyLlamaConfig
	c3.NumKeyValueHeads = 3
	bad := filepath.Join(t.TempDir(), "config.json")
	if err := hf.WriteConfig(bad, c3); !errors.Is(err, hf.ErrConfig) {
		t.Errorf("WriteConfig(kv=3) = %v", err)
	}
	if _, err := os.Stat(bad); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused config was written: %v", err)
	}
}

// FuzzReadConfig parses arbitrary bytes as config.json. Nothing panics;
// errors wrap ErrConfig or ErrUnsupported; an accepted config is valid and
// survives MarshalJSON and ParseConfig unchanged (Architectures and an
// empty TorchDtype written as their defaults).
func FuzzReadConfig(f *testing.F) {
	f.Add([]byte(tinyLlama))
	f.Add([]byte(wantWritten))
	f.Add(variant(f, "num_key_value_heads", "", "rope_theta", "", "rope_parameters", `{"rope_type": "default", "rope_theta": 500000.0}`))
	f.Add(variant(f, "eos_token_id", "[1, 2]", "rope_scaling", `{"rope_type": "llama3", "factor": 8.0}`))
	f.Add(variant(f, "hidden_size", "64", "num_attention_heads", "4", "num_key_value_heads", "2", "intermediate_size", "96", "vocab_size", "80"))
	f.Add([]byte(`{}`))
	f.Add(variant(f, "eos_token_id", "[]", "torch_dtype", `"\u003c"`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := hf.ParseConfig("fuzz.json", data)
		if err != nil {
			if !errors.Is(err, hf.ErrConfig) && !errors.Is(err, hf.ErrUnsupported) {
				t.Fatalf("error wraps neither sentinel: %v", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted config fails Validate: %v", err)
		}
		out, err := c.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		back, err := hf.ParseConfig("out.json", out)
		if err != nil {
			t.Fatalf("written config does not parse: %v\n%s", err, out)
		}
		c.Architectures = []string{hf.Architecture}
		if c.TorchDtype == "" {
			c.TorchDtype = "float32"
		}
		if !reflect.DeepEqual(back, c) {
			t.Fatalf("round trip changed the config:\n%+v\n%+v", c, back)
		}
	})
}
