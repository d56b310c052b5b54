package hf_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/actq/actq/internal/hf"
	"github.com/actq/actq/internal/safetensors"
)

// small is a config with grouped-query attention (4 heads, 2 key/value
// heads of size 8) and a distinct intermediate size, so that every shape
// in the layout is different from the others it could be mistaken for.
var small = hf.Config{
	ModelType: "llama", HiddenSize: 32, IntermediateSize: 48, NumAttentionHeads: 4, NumKeyValueHeads: 2,
	NumHiddenLayers: 2, HeadDim: 8, RMSNormEps: 1e-6, RopeTheta: 10000, VocabSize: 40,
	MaxPositionEmbeddings: 64, HiddenAct: "silu",
}

func TestTensors(t *testing.T) {
	specs := small.Tensors()
	if len(specs) != 1+9*2+2 {
		t.Fatalf("%d tensors, want 21", len(specs))
	}
	want := map[string][]int{
		"model.embed_tokens.weight":                      {40, 32},
		"model.layers.0.input_layernorm.weight":          {32},
		"model.layers.1.self_attn.q_proj.weight":         {32, 32},
		"model.layers.1.self_attn.k_proj.weight":         {16, 32},
		"model.layers.0.self_attn.v_proj.weight":         {16, 32},
		"model.layers.0.self_attn.o_proj.weight":         {32, 32},
		"model.layers.1.post_attention_layernorm.weight": {32},
		"model.layers.0.mlp.gate_proj.weight":            {48, 32},
		"model.layers.0.mlp.up_proj.weight":              {48, 32},
		"model.layers.1.mlp.down_proj.weight":            {32, 48},
		"model.norm.weight":                              {32},
		"lm_head.weight":                                 {40, 32},
	}
	for _, s := range specs {
		if w, ok := want[s.Name]; ok && !slices.Equal(s.Shape, w) {
			t.Errorf("%s: shape %v, want %v", s.Name, s.Shape, w)
		}
		delete(want, s.Name)
		if s.Optional {
			t.Errorf("%s optional in an untied model", s.Name)
		}
	}
	if len(want) > 0 {
		t.Errorf("missing from the layout: %v", want)
	}
	tied := small
	tied.TieWordEmbeddings = true
	last := tied.Tensors()[len(specs)-1]
	if last.Name != "lm_head.weight" || !last.Optional {
		t.Errorf("tied: last tensor %+v, want an optional lm_head.weight", last)
	}
}

// infos returns the layout of c as a checkpoint in one file would list it.
func infos(c hf.Config, file string) []safetensors.Info {
	var out []safetensors.Info
	for _, s := range c.Tensors() {
		out = append(out, safetensors.Info{Name: s.Name, Shape: slices.Clone(s.Shape), Dtype: safetensors.F32, File: file})
	}
	return out
}

func TestCheckTensors(t *testing.T) {
	const file = "ckpt/model.safetensors"
	tied := small
	tied.TieWordEmbeddings = true
	without := func(in []safetensors.Info, name string) []safetensors.Info {
		return slices.DeleteFunc(slices.Clone(in), func(i safetensors.Info) bool { return i.Name == name })
	}
	reshaped := func(in []safetensors.Info, name string, shape ...int) []safetensors.Info {
		out := slices.Clone(in)
		for i := range out {
			if out[i].Name == name {
				out[i].Shape = shape
			}
		}
		return out
	}
	with := func(in []safetensors.Info, name string, shape ...int) []safetensors.Info {
		return append(slices.Clone(in), safetensors.Info{Name: name, Shape: shape, File: file})
	}
	full := infos(small, file)
	for _, tc := range []struct {
		name  string
		c     hf.Config
		have  []safetensors.Info
		names []string // empty: valid
	}{
		{"complete", small, full, nil},
		{"tied, lm_head left out", tied, without(full, "lm_head.weight"), nil},
		{"tied, lm_head kept", tied, full, nil},
		{"old rotary buffers", small, with(with(full, "model.layers.0.self_attn.rotary_emb.inv_freq", 4), "model.layers.1.self_attn.rotary_emb.inv_freq", 4), nil},
		{"missing lm_head", small, without(full, "lm_head.weight"), []string{`"lm_head.weight"`, file}},
		{"missing k_proj", small, without(full, "model.layers.1.self_attn.k_proj.weight"), []string{`"model.layers.1.self_attn.k_proj.weight"`, file}},
		{"k_proj of multi-head shape", small, reshaped(full, "model.layers.0.self_attn.k_proj.weight", 32, 32), []string{`"model.layers.0.self_attn.k_proj.weight"`, "[32 32]", "[16 32]", file}},
		{"transposed down_proj", small, reshaped(full, "model.layers.1.mlp.down_proj.weight", 48, 32), []string{`"model.layers.1.mlp.down_proj.weight"`, file}},
		{"norm as a matrix", small, reshaped(full, "model.norm.weight", 1, 32), []string{`"model.norm.weight"`}},
		{"tied lm_head of the wrong shape", tied, reshaped(full, "lm_head.weight", 32, 40), []string{`"lm_head.weight"`}},
		{"extra layer", small, with(full, "model.layers.2.input_layernorm.weight", 32), []string{`"model.layers.2.input_layernorm.weight"`, file}},
		{"biases", small, with(full, "model.layers.0.self_attn.q_proj.bias", 32), []string{`"model.layers.0.self_attn.q_proj.bias"`}},
		{"rotary buffer of a layer too many", small, with(full, "model.layers.2.self_attn.rotary_emb.inv_freq", 4), []string{"rotary_emb", "num_hidden_layers"}},
		{"rotary buffer of the wrong size", small, with(full, "model.layers.0.self_attn.rotary_emb.inv_freq", 8), []string{"rotary_emb", "[8]"}},
		{"rotary buffer, absurd layer", small, with(full, "model.layers.99999999999999999999.self_attn.rotary_emb.inv_freq", 4), []string{"rotary_emb"}},
		{"several problems", small, with(without(full, "model.norm.weight"), "extra", 1), []string{`"model.norm.weight"`, `"extra"`}},
		{"empty checkpoint", small, nil, []string{`"model.embed_tokens.weight"`, "and 11 more"}},
	} {
		err := tc.c.CheckTensors(tc.have)
		switch {
		case len(tc.names) == 0 && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case len(tc.names) == 0:
		case !errors.Is(err, hf.ErrLayout):
			t.Errorf("%s: %v, want ErrLayout", tc.name, err)
		default:
			for _, s := range tc.names {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("%s: %q does not name %s", tc.name, err, s)
				}
			}
		}
	}
	if !hf.Ignored("model.layers.3.self_attn.rotary_emb.inv_freq") || hf.Ignored("model.layers.3.self_attn.q_proj.weight") {
		t.Error("Ignored")
	}
}

func ExampleConfig_Tensors() {
	c := hf.Config{
		ModelType: "llama", HiddenSize: 64, IntermediateSize: 96, NumAttentionHeads: 4, NumKeyValueHeads: 2,
		NumHiddenLayers: 1, HeadDim: 16, RMSNormEps: 1e-5, RopeTheta: 10000, VocabSize: 80,
		MaxPositionEmbeddings: 128, HiddenAct: "silu", TieWordEmbeddings: true,
	}
	for _, s := range c.Tensors() {
		fmt.Println(s.Name, s.Shape, s.Optional)
	}
	// Output:
	// model.embed_tokens.weight [80 64] false
	// model.layers.0.input_layernorm.weight [64] false
	// model.layers.0.self_attn.q_proj.weight [64 64] false
	// model.layers.0.self_attn.k_proj.weight [32 64] false
	// model.layers.0.self_attn.v_proj.weight [32 64] false
	// model.layers.0.self_attn.o_proj.weight [64 64] false
	// model.layers.0.post_attention_layernorm.weight [64] false
	// model.layers.0.mlp.gate_proj.weight [96 64] false
	// model.layers.0.mlp.up_proj.weight [96 64] false
	// model.layers.0.mlp.down_proj.weight [64 96] false
	// model.norm.weight [64] false
	// lm_head.weight [80 64] true
}
