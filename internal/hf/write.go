package hf

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/actq/actq/internal/atomicfile"
)

// MarshalJSON returns c as a config.json that transformers'
// LlamaForCausalLM loads (AutoConfig and LlamaConfig of transformers 4.x
// and 5), laid out as transformers writes one (Python's json.dumps with
// indent=2 and sorted keys, and a final newline): every field that
// changes the model written out (biases false, rope_scaling null, head_dim
// and num_key_value_heads explicit), floats written as Python writes them
// (10000.0, 1e-06). Architectures is written as ["LlamaForCausalLM"],
// an empty TorchDtype as "float32", and empty token ids as null. It
// returns c.Validate's error for a config that is not supported.
func (c Config) MarshalJSON() ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	dtype := c.TorchDtype
	if dtype == "" {
		dtype = "float32"
	}
	fields := []struct {
		key, value string
	}{
		{"architectures", list([]string{jsonString(Architecture)})},
		{"attention_bias", "false"},
		{"attention_dropout", "0.0"},
		{"bos_token_id", tokenIDs(c.BOSTokenID)},
		{"eos_token_id", tokenIDs(c.EOSTokenID)},
		{"head_dim", strconv.Itoa(c.HeadDim)},
		{"hidden_act", jsonString(c.HiddenAct)},
		{"hidden_size", strconv.Itoa(c.HiddenSize)},
		{"initializer_range", "0.02"},
		{"intermediate_size", strconv.Itoa(c.IntermediateSize)},
		{"max_position_embeddings", strconv.Itoa(c.MaxPositionEmbeddings)},
		{"mlp_bias", "false"},
		{"model_type", `"llama"`},
		{"num_attention_heads", strconv.Itoa(c.NumAttentionHeads)},
		{"num_hidden_layers", strconv.Itoa(c.NumHiddenLayers)},
		{"num_key_value_heads", strconv.Itoa(c.NumKeyValueHeads)},
		{"pretraining_tp", "1"},
		{"rms_norm_eps", pyFloat(c.RMSNormEps)},
		{"rope_scaling", "null"},
		{"rope_theta", pyFloat(c.RopeTheta)},
		{"tie_word_embeddings", strconv.FormatBool(c.TieWordEmbeddings)},
		{"torch_dtype", jsonString(dtype)},
		{"use_cache", "true"},
		{"vocab_size", strconv.Itoa(c.VocabSize)},
	}
	var b bytes.Buffer
	b.WriteString("{\n")
	for i, f := range fields {
		fmt.Fprintf(&b, "  %q: %s", f.key, f.value)
		if i+1 < len(fields) {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString("}\n")
	return b.Bytes(), nil
}

// WriteConfig writes c to a config.json at path (see MarshalJSON), under a
// temporary name renamed when complete. It returns c.Validate's error, and
// writes nothing, for a config that is not supported.
func WriteConfig(path string, c Config) error {
	data, err := c.MarshalJSON()
	if err != nil {
		return err
	}
	return atomicfile.Write(path, 0o644, func(w *bufio.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// jsonString returns s as a JSON string.
func jsonString(s string) string {
	b, _ := json.Marshal(s) // a string always marshals
	return string(b)
}

// tokenIDs writes none, one, or several token ids.
func tokenIDs(ids []int) string {
	switch len(ids) {
	case 0:
		return "null"
	case 1:
		return strconv.Itoa(ids[0])
	}
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(id)
	}
	return list(s)
}

// list writes a non-empty list of JSON values as Python's json.dumps does
// with indent=2 at the second level: one item a line.
func list(items []string) string {
	return "[\n    " + strings.Join(items, ",\n    ") + "\n  ]"
}

// pyFloat formats a finite x as Python's repr does: the shortest decimal
// that reads back as x, in positional notation with at least one digit
// after the point when 1e-4 ≤ |x| < 1e16 (10000.0), and in exponent
// notation with two or more exponent digits otherwise (1e-06, 1e+16).
func pyFloat(x float64) string {
	if a := math.Abs(x); x == 0 || (a >= 1e-4 && a < 1e16) {
		s := strconv.FormatFloat(x, 'f', -1, 64)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return s
	}
	return strconv.FormatFloat(x, 'e', -1, 64)
}
