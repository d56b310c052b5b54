package hf

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/actq/actq/internal/safetensors"
)

// TensorSpec is a tensor a checkpoint of a Config holds: its Hugging Face
// name and shape. Linear weights are stored as PyTorch's (out_features,
// in_features).
type TensorSpec struct {
	Name  string
	Shape []int
	// Optional marks lm_head.weight of a model with tied embeddings:
	// transformers leaves it out of the file (the output projection is
	// embed_tokens), but a file may hold it.
	Optional bool
}

// Tensors returns the tensors of a LlamaForCausalLM checkpoint with config
// c, in the order of the model: embed_tokens (V, D); per layer i,
// input_layernorm (D), self_attn q_proj (H·Dh, D), k_proj and v_proj
// (KV·Dh, D), o_proj (D, H·Dh), post_attention_layernorm (D), mlp
// gate_proj and up_proj (I, D), down_proj (D, I); model.norm (D); lm_head
// (V, D), optional when the embeddings are tied.
func (c Config) Tensors() []TensorSpec {
	d, kv, i, v := c.HiddenSize, c.NumKeyValueHeads*c.HeadDim, c.IntermediateSize, c.VocabSize
	q := c.NumAttentionHeads * c.HeadDim
	specs := []TensorSpec{{Name: "model.embed_tokens.weight", Shape: []int{v, d}}}
	for l := range c.NumHiddenLayers {
		p := fmt.Sprintf("model.layers.%d.", l)
		specs = append(specs,
			TensorSpec{Name: p + "input_layernorm.weight", Shape: []int{d}},
			TensorSpec{Name: p + "self_attn.q_proj.weight", Shape: []int{q, d}},
			TensorSpec{Name: p + "self_attn.k_proj.weight", Shape: []int{kv, d}},
			TensorSpec{Name: p + "self_attn.v_proj.weight", Shape: []int{kv, d}},
			TensorSpec{Name: p + "self_attn.o_proj.weight", Shape: []int{d, q}},
			TensorSpec{Name: p + "post_attention_layernorm.weight", Shape: []int{d}},
			TensorSpec{Name: p + "mlp.gate_proj.weight", Shape: []int{i, d}},
			TensorSpec{Name: p + "mlp.up_proj.weight", Shape: []int{i, d}},
			TensorSpec{Name: p + "mlp.down_proj.weight", Shape: []int{d, i}},
		)
	}
	return append(specs,
		TensorSpec{Name: "model.norm.weight", Shape: []int{d}},
		TensorSpec{Name: "lm_head.weight", Shape: []int{v, d}, Optional: c.TieWordEmbeddings},
	)
}

// invFreq matches the rotary inverse frequencies that transformers before
// 4.31 saved as a buffer in each layer; they follow from rope_theta and
// the head size, and transformers ignores them when loading.
var invFreq = regexp.MustCompile(`^model\.layers\.(\d+)\.self_attn\.rotary_emb\.inv_freq$`)

// Ignored reports whether a checkpoint tensor called name is one a loader
// skips: the rotary inverse frequencies of older checkpoints
// (model.layers.N.self_attn.rotary_emb.inv_freq), which follow from the
// config.
func Ignored(name string) bool { return invFreq.MatchString(name) }

// CheckTensors compares the tensors of a checkpoint with the layout of c
// (Tensors). It returns nil if every required tensor is present with its
// shape, an optional one is absent or has its shape, and every other
// tensor is Ignored (with shape (Dh/2) and a layer index below
// num_hidden_layers). Otherwise it returns an error wrapping ErrLayout that
// lists the problems (the first ten, and how many more), each naming the tensor and the file holding it (for
// a missing tensor, the files searched).
func (c Config) CheckTensors(have []safetensors.Info) error {
	byName := make(map[string]safetensors.Info, len(have))
	var files []string
	for _, t := range have {
		byName[t.Name] = t
		if !slices.Contains(files, t.File) {
			files = append(files, t.File)
		}
	}
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}
	specs := c.Tensors()
	want := make(map[string]bool, len(specs))
	for _, s := range specs {
		want[s.Name] = true
		t, ok := byName[s.Name]
		switch {
		case !ok && !s.Optional:
			bad("no tensor %q (shape %v) in %s", s.Name, s.Shape, describeFiles(files))
		case ok && !slices.Equal(t.Shape, s.Shape):
			bad("%s: tensor %q has shape %v, the config says %v", t.File, s.Name, t.Shape, s.Shape)
		}
	}
	for _, t := range have {
		if want[t.Name] {
			continue
		}
		if m := invFreq.FindStringSubmatch(t.Name); m != nil {
			if layer, err := strconv.Atoi(m[1]); err != nil || layer >= c.NumHiddenLayers {
				bad("%s: tensor %q is for a layer the config does not have (num_hidden_layers = %d)", t.File, t.Name, c.NumHiddenLayers)
			} else if !slices.Equal(t.Shape, []int{c.HeadDim / 2}) {
				bad("%s: tensor %q has shape %v, want [%d]", t.File, t.Name, t.Shape, c.HeadDim/2)
			}
			continue
		}
		bad("%s: tensor %q is not part of a LlamaForCausalLM with this config", t.File, t.Name)
	}
	if len(errs) == 0 {
		return nil
	}
	if len(errs) > maxProblems {
		errs = append(errs[:maxProblems], fmt.Errorf("and %d more", len(errs)-maxProblems))
	}
	return fmt.Errorf("hf: %w:\n%w", ErrLayout, errors.Join(errs...))
}

// maxProblems is how many problems CheckTensors lists before it counts the
// rest.
const maxProblems = 10

func describeFiles(files []string) string {
	switch len(files) {
	case 0:
		return "a checkpoint without tensors"
	case 1:
		return files[0]
	}
	return strings.Join(files, ", ")
}
