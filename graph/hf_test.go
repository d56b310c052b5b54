package graph

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/actq/actq/internal/safetensors"
	"gorgonia.org/tensor"
)

// copyCheckpoint copies the test checkpoint name (config.json and
// model.safetensors) into a new temporary directory and returns it.
func copyCheckpoint(t *testing.T, name string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{configFile, safetensors.ModelFile} {
		data, err := os.ReadFile(filepath.Join(llamaDir(name), f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// editConfig rewrites dir's config.json after edit changes its fields.
func editConfig(t *testing.T, dir string, edit func(map[string]any)) {
	t.Helper()
	path := filepath.Join(dir, configFile)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	if data, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// editHeader rewrites the JSON header of dir's model.safetensors after
// edit changes it, keeping the data section as it is.
func editHeader(t *testing.T, dir string, edit func(map[string]map[string]any)) {
	t.Helper()
	path := filepath.Join(dir, safetensors.ModelFile)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(raw)
	var h map[string]map[string]any
	if err := json.Unmarshal(raw[8:8+n], &h); err != nil {
		t.Fatal(err)
	}
	edit(h)
	hdr, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	for len(hdr)%8 != 0 {
		hdr = append(hdr, ' ')
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
	out = append(append(out, hdr...), raw[8+n:]...)
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// rewriteTensors rewrites dir's model.safetensors (an F32 one) with its
// tensors, after edit changes the list.
func rewriteTensors(t *testing.T, dir string, edit func([]safetensors.Tensor) []safetensors.Tensor) {
	t.Helper()
	path := filepath.Join(dir, safetensors.ModelFile)
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var ts []safetensors.Tensor
	for _, info := range f.Tensors() {
		d := make([]float32, info.Len())
		if err := f.ReadFloat32(info.Name, d); err != nil {
			t.Fatal(err)
		}
		ts = append(ts, safetensors.Tensor{Name: info.Name, Shape: info.Shape, Data: d})
	}
	f.Close()
	if err := safetensors.Write(path, edit(ts), map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
}

// TestLoadHFErrors writes broken checkpoints and checks that LoadHF
// returns an error wrapping the right sentinel and naming the file and,
// where one is at fault, the tensor or the field; and that the harmless
// variants (rotary inverse frequencies of old checkpoints, a tied
// lm_head.weight equal to the embedding) load.
func TestLoadHFErrors(t *testing.T) {
	const model, config = safetensors.ModelFile, configFile
	header := func(edit func(map[string]map[string]any)) func(*testing.T, string) {
		return func(t *testing.T, dir string) { editHeader(t, dir, edit) }
	}
	conf := func(edit func(map[string]any)) func(*testing.T, string) {
		return func(t *testing.T, dir string) { editConfig(t, dir, edit) }
	}
	tensors := func(edit func([]safetensors.Tensor) []safetensors.Tensor) func(*testing.T, string) {
		return func(t *testing.T, dir string) { rewriteTensors(t, dir, edit) }
	}
	prefix := func(n uint64) func(*testing.T, string) {
		return func(t *testing.T, dir string) {
			path := filepath.Join(dir, model)
			raw, _ := os.ReadFile(path)
			binary.LittleEndian.PutUint64(raw, n)
			os.WriteFile(path, raw, 0o644)
		}
	}
	const q0 = "model.layers.0.self_attn.q_proj.weight"
	for _, c := range []struct {
		name       string
		checkpoint string
		edit       func(*testing.T, string)
		want       error
		mentions   []string // besides the file
		file       string
	}{
		{"valid", "gqa-f32", func(*testing.T, string) {}, nil, nil, ""},
		{"no config.json", "gqa-f32", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, config)) }, fs.ErrNotExist, nil, config},
		{"config.json unreadable (a directory)", "gqa-f32", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, config))
			os.Mkdir(filepath.Join(dir, config), 0o755)
		}, nil, nil, config},
		{"broken JSON", "gqa-f32", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, config), []byte(`{"model_type": "llama", "hidden_size": 32,`), 0o644)
		}, ErrCheckpoint, nil, config},
		{"missing size", "gqa-f32", conf(func(m map[string]any) { delete(m, "hidden_size") }), ErrCheckpoint, []string{"hidden_size"}, config},
		{"RoPE scaling", "gqa-f32", conf(func(m map[string]any) {
			m["rope_scaling"] = map[string]any{"rope_type": "llama3", "factor": 8.0}
		}), ErrUnsupported, []string{"unsupported:", "rope_scaling"}, config},
		{"attention biases", "gqa-f32", conf(func(m map[string]any) { m["attention_bias"] = true }), ErrUnsupported, []string{"attention_bias"}, config},
		{"another model type", "gqa-f32", conf(func(m map[string]any) { m["model_type"] = "mistral" }), ErrUnsupported, []string{"model_type"}, config},
		{"no model.safetensors", "gqa-f32", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, model)) }, fs.ErrNotExist, []string{model}, "."},
		{"truncated", "gqa-f32", func(t *testing.T, dir string) {
			path := filepath.Join(dir, model)
			raw, _ := os.ReadFile(path)
			os.WriteFile(path, raw[:len(raw)-100], 0o644)
		}, ErrCheckpoint, []string{"model.norm.weight"}, model},
		{"header length beyond the file", "gqa-f32", prefix(1 << 20), ErrCheckpoint, []string{"header length"}, model},
		{"header length over 100 MB", "gqa-f32", prefix(200_000_000), ErrCheckpoint, []string{"header length"}, model},
		{"overlapping offsets", "gqa-f32", header(func(h map[string]map[string]any) {
			h["model.norm.weight"]["data_offsets"] = h["model.layers.1.input_layernorm.weight"]["data_offsets"]
		}), ErrCheckpoint, []string{"overlap"}, model},
		{"offsets out of range", "gqa-f32", header(func(h map[string]map[string]any) {
			off := h["model.norm.weight"]["data_offsets"].([]any)
			h["model.norm.weight"]["data_offsets"] = []any{off[0].(float64) + 1<<30, off[1].(float64) + 1<<30}
		}), ErrCheckpoint, []string{"model.norm.weight"}, model},
		{"unknown dtype", "gqa-f32", header(func(h map[string]map[string]any) { h[q0]["dtype"] = "Q4_K" }), ErrCheckpoint, []string{q0, "Q4_K"}, model},
		{"integer dtype", "gqa-f32", header(func(h map[string]map[string]any) { h["model.norm.weight"]["dtype"] = "I32" }), ErrCheckpoint, []string{"model.norm.weight", "I32"}, model},
		{"shape disagrees with config.json", "gqa-f32", conf(func(m map[string]any) { m["intermediate_size"] = 32.0 }), ErrCheckpoint, []string{"model.layers.0.mlp.gate_proj.weight"}, model},
		{"missing tensor", "gqa-f32", tensors(func(ts []safetensors.Tensor) []safetensors.Tensor {
			return slices.DeleteFunc(ts, func(x safetensors.Tensor) bool { return x.Name == q0 })
		}), ErrCheckpoint, []string{q0}, model},
		{"extra tensor", "gqa-f32", tensors(func(ts []safetensors.Tensor) []safetensors.Tensor {
			return append(ts, safetensors.Tensor{Name: "model.layers.0.self_attn.q_proj.bias", Shape: []int{32}, Data: make([]float32, 32)})
		}), ErrCheckpoint, []string{"model.layers.0.self_attn.q_proj.bias"}, model},
		{"rotary frequencies of an old checkpoint", "gqa-f32", tensors(func(ts []safetensors.Tensor) []safetensors.Tensor {
			return append(ts, safetensors.Tensor{Name: "model.layers.1.self_attn.rotary_emb.inv_freq", Shape: []int{4}, Data: []float32{1, 0.1, 0.01, 0.001}})
		}), nil, nil, ""},
		{"tied, lm_head equal to the embedding", "mqa-f32-tied", tensors(func(ts []safetensors.Tensor) []safetensors.Tensor {
			e := ts[slices.IndexFunc(ts, func(x safetensors.Tensor) bool { return x.Name == "model.embed_tokens.weight" })]
			return append(ts, safetensors.Tensor{Name: "lm_head.weight", Shape: e.Shape, Data: e.Data})
		}), nil, nil, ""},
		{"tied, lm_head not the embedding", "mqa-f32-tied", tensors(func(ts []safetensors.Tensor) []safetensors.Tensor {
			e := ts[slices.IndexFunc(ts, func(x safetensors.Tensor) bool { return x.Name == "model.embed_tokens.weight" })]
			head := slices.Clone(e.Data)
			head[17] += 1
			return append(ts, safetensors.Tensor{Name: "lm_head.weight", Shape: e.Shape, Data: head})
		}), ErrCheckpoint, []string{"lm_head.weight", "element 17"}, model},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := copyCheckpoint(t, c.checkpoint)
			c.edit(t, dir)
			cfg, w, err := func() (cfg Config, w Weights, err error) {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("LoadHF panicked: %v", r)
					}
				}()
				return LoadHF(dir)
			}()
			if c.file == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if len(w) == 0 || cfg.Validate() != nil {
					t.Fatalf("loaded %d weights, config %+v", len(w), cfg)
				}
				return
			}
			switch {
			case err == nil:
				t.Fatal("no error")
			case c.want != nil && !errors.Is(err, c.want):
				t.Errorf("%v does not wrap %v", err, c.want)
			case !strings.HasPrefix(err.Error(), "graph.LoadHF: "):
				t.Errorf("%v does not name graph.LoadHF", err)
			case !strings.Contains(err.Error(), filepath.Join(dir, c.file)):
				t.Errorf("%v does not name the file %s", err, filepath.Join(dir, c.file))
			}
			t.Log(err)
			for _, m := range c.mentions {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("%v does not mention %q", err, m)
				}
			}
			if w != nil {
				t.Error("weights returned with an error")
			}
		})
	}
}

// TestLoadHFSharded splits a checkpoint into two shards with an index and
// checks that LoadHF reads the same weights as from the single file.
func TestLoadHFSharded(t *testing.T) {
	_, want, err := LoadHF(llamaDir("gqa-f32"))
	if err != nil {
		t.Fatal(err)
	}
	dir := copyCheckpoint(t, "gqa-f32")
	f, err := safetensors.Open(filepath.Join(dir, safetensors.ModelFile))
	if err != nil {
		t.Fatal(err)
	}
	shards := [2][]safetensors.Tensor{}
	index := map[string]string{}
	for i, info := range f.Tensors() {
		d := make([]float32, info.Len())
		if err := f.ReadFloat32(info.Name, d); err != nil {
			t.Fatal(err)
		}
		shards[i%2] = append(shards[i%2], safetensors.Tensor{Name: info.Name, Shape: info.Shape, Data: d})
		index[info.Name] = []string{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}[i%2]
	}
	f.Close()
	os.Remove(filepath.Join(dir, safetensors.ModelFile))
	for i, ts := range shards {
		name := []string{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}[i]
		if err := safetensors.Write(filepath.Join(dir, name), ts, map[string]string{"format": "pt"}); err != nil {
			t.Fatal(err)
		}
	}
	data, _ := json.Marshal(map[string]any{"metadata": map[string]any{}, "weight_map": index})
	if err := os.WriteFile(filepath.Join(dir, safetensors.IndexFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
	_, got, err := LoadHF(dir)
	if err != nil {
		t.Fatal(err)
	}
	sameWeights(t, got, want)
}

// sameWeights reports every tensor of want that got lacks or holds with
// other bits, and every extra tensor of got.
func sameWeights(t *testing.T, got, want Weights) {
	t.Helper()
	for name, v := range want {
		g, ok := got[name]
		if !ok {
			t.Errorf("%s: missing", name)
			continue
		}
		if !g.Shape().Eq(v.Shape()) || g.Dtype() != v.Dtype() || !bitsEqual(g, v) {
			t.Errorf("%s: %v %v differs from %v %v", name, g.Dtype(), g.Shape(), v.Dtype(), v.Shape())
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s: extra", name)
		}
	}
}

func bitsEqual(a, b *tensor.Dense) bool {
	x, y := float64sOf(a), float64sOf(b)
	for i := range x {
		if math.Float64bits(x[i]) != math.Float64bits(y[i]) {
			return false
		}
	}
	return len(x) == len(y)
}

// TestSaveHFRoundTrip saves each test checkpoint's model and loads it
// again: the same config and the same bits. From an F32 checkpoint,
// model.safetensors comes out byte for byte as PyTorch's script wrote it
// (the reference writer's layout). A Llama model made here (with every
// option) and a Float64 one (rounded to float32) round-trip as well.
func TestSaveHFRoundTrip(t *testing.T) {
	for _, name := range llamaCheckpoints {
		cfg, w, err := LoadHF(llamaDir(name))
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), "out") // SaveHF makes it
		if err := SaveHF(dir, cfg, w); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		cfg2, w2, err := LoadHF(dir)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if cfg2 != cfg {
			t.Errorf("%s: config %+v, want %+v", name, cfg2, cfg)
		}
		sameWeights(t, w2, w)
		if strings.Contains(name, "f32") {
			a, _ := os.ReadFile(filepath.Join(llamaDir(name), safetensors.ModelFile))
			b, _ := os.ReadFile(filepath.Join(dir, safetensors.ModelFile))
			if !bytes.Equal(a, b) {
				t.Errorf("%s: model.safetensors differs from the original", name)
			}
		}
	}

	cfg := llamaTestConfig()
	w := seededWeights(t, cfg, 8)
	dir := t.TempDir()
	if err := SaveHF(dir, cfg, w); err != nil {
		t.Fatal(err)
	}
	cfg2, w2, err := LoadHF(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := cfg
	want.Norm, want.Dtype = NormRMS, tensor.Float32 // the defaults, filled in
	if cfg2 != want {
		t.Errorf("config %+v, want %+v", cfg2, want)
	}
	sameWeights(t, w2, w)

	cfg64 := cfg
	cfg64.Dtype = tensor.Float64
	w64 := toFloat64(w)
	for _, v := range w64 {
		d := v.Float64s()
		for i := range d {
			d[i] += 1e-12 // not a float32: rounded on the way out
		}
	}
	if err := SaveHF(dir, cfg64, w64); err != nil {
		t.Fatal(err)
	}
	if _, w2, err = LoadHF(dir); err != nil {
		t.Fatal(err)
	}
	for name, v := range w64 {
		want := make([]float64, 0, v.Shape().TotalSize())
		for _, x := range v.Float64s() {
			want = append(want, float64(float32(x)))
		}
		if got := float64sOf(w2[name]); !slices.Equal(got, want) {
			t.Errorf("float64 %s: not rounded to float32 as expected", name)
		}
	}

	// A weight given as a non-contiguous view (the transpose of its
	// transpose) is written as the values it shows.
	const sq = "block0.attn.Wq" // (DModel, DModel)
	wt := w[sq].Clone().(*tensor.Dense)
	if err := wt.T(); err != nil {
		t.Fatal(err)
	}
	tt := wt.Materialize().(*tensor.Dense)
	if err := tt.T(); err != nil {
		t.Fatal(err)
	}
	if !tt.RequiresIterator() {
		t.Fatalf("%s: the test's view is contiguous", sq)
	}
	view := w.Clone()
	view[sq] = tt
	if err := SaveHF(dir, cfg, view); err != nil {
		t.Fatal(err)
	}
	if _, w2, err = LoadHF(dir); err != nil {
		t.Fatal(err)
	}
	sameWeights(t, w2, w)
}

// TestSaveHFErrors checks that SaveHF refuses configs a Llama checkpoint
// cannot express and bad weights, naming the field or tensor, and writes
// nothing then.
func TestSaveHFErrors(t *testing.T) {
	cfg := llamaTestConfig()
	w := seededWeights(t, cfg, 8)
	without := func(name string) Weights { c := w.Clone(); delete(c, name); return c }
	reshaped := w.Clone()
	reshaped["block1.attn.Wk"] = tensor.New(tensor.WithShape(16, 32), tensor.WithBacking(make([]float32, 512)))
	wrongType := w.Clone()
	wrongType["final_norm.g"] = tensor.New(tensor.WithShape(32), tensor.WithBacking(make([]float64, 32)))
	for _, c := range []struct {
		name  string
		edit  func(*Config)
		w     Weights
		want  error
		field string
	}{
		{"learned positions", func(c *Config) { c.RoPETheta = 0 }, w, ErrUnsupported, "RoPETheta"},
		{"LayerNorm", func(c *Config) { c.Norm = NormLayer }, w, ErrUnsupported, "Norm"},
		{"FFN biases", func(c *Config) { c.NoBias = false }, w, ErrUnsupported, "NoBias"},
		{"GELU", func(c *Config) { c.Activation = "gelu" }, w, ErrUnsupported, "Activation"},
		{"not gated", func(c *Config) { c.Gated = false }, w, ErrUnsupported, "Gated"},
		{"invalid config", func(c *Config) { c.KVHeads = 3 }, w, ErrConfig, "KVHeads"},
		{"missing weight", func(*Config) {}, without("block0.ffn.W3"), ErrConfig, "block0.ffn.W3"},
		{"weight of the wrong shape", func(*Config) {}, reshaped, ErrConfig, "block1.attn.Wk"},
		{"weight of the wrong dtype", func(*Config) {}, wrongType, ErrConfig, "final_norm.g"},
	} {
		dir := filepath.Join(t.TempDir(), "out")
		cc := cfg
		c.edit(&cc)
		err := SaveHF(dir, cc, c.w)
		if !errors.Is(err, c.want) || !strings.HasPrefix(err.Error(), "graph.SaveHF: ") || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: got %v, want an error wrapping %v naming %s", c.name, err, c.want, c.field)
		}
		if _, statErr := os.Stat(dir); !errors.Is(statErr, fs.ErrNotExist) {
			t.Errorf("%s: %s was made", c.name, dir)
		}
	}
}

// TestSaveHFBF16 saves with SaveBF16: PyTorch's BF16 checkpoint comes out
// byte for byte as its script wrote it, and a float32 model (with values
// at a rounding tie, past the largest bfloat16, and NaN) loads back as its
// weights rounded to nearest even, at half the file size.
func TestSaveHFBF16(t *testing.T) {
	cfg, w, err := LoadHF(llamaDir("mha-bf16-tied"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := SaveHF(dir, cfg, w, SaveBF16()); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(filepath.Join(llamaDir("mha-bf16-tied"), safetensors.ModelFile))
	b, _ := os.ReadFile(filepath.Join(dir, safetensors.ModelFile))
	if !bytes.Equal(a, b) {
		t.Error("mha-bf16-tied: model.safetensors saved in BF16 differs from PyTorch's")
	}
	if c, err := os.ReadFile(filepath.Join(dir, "config.json")); err != nil || !bytes.Contains(c, []byte(`"torch_dtype": "bfloat16"`)) {
		t.Errorf("config.json without torch_dtype bfloat16 (%v):\n%s", err, c)
	}

	cfg = llamaTestConfig()
	w = seededWeights(t, cfg, 8)
	g := w["final_norm.g"].Float32s()
	g[0] = math.Float32frombits(0x3f808000) // 1 + 2^-8: a tie, to even (1)
	g[1] = math.Float32frombits(0x3f818000) // 1 + 3·2^-8: a tie, to even (1 + 2^-6)
	g[2] = math.MaxFloat32                  // past the largest bfloat16: +Inf
	g[3] = float32(math.NaN())
	dir32, dir16 := t.TempDir(), t.TempDir()
	if err := SaveHF(dir32, cfg, w); err != nil {
		t.Fatal(err)
	}
	if err := SaveHF(dir16, cfg, w, SaveBF16()); err != nil {
		t.Fatal(err)
	}
	cfg2, w2, err := LoadHF(dir16)
	if err != nil {
		t.Fatal(err)
	}
	want := cfg
	want.Norm, want.Dtype = NormRMS, tensor.Float32
	if cfg2 != want {
		t.Errorf("config %+v, want %+v", cfg2, want)
	}
	for name, v := range w {
		for i, x := range v.Float32s() {
			r := safetensors.BFloat16ToFloat32(safetensors.Float32ToBFloat16(x))
			if got := w2[name].Float32s()[i]; math.Float32bits(got) != math.Float32bits(r) && !(x != x && got != got) {
				t.Fatalf("%s[%d] = %v saved as %v, want %v", name, i, x, got, r)
			}
		}
	}
	if got := w2["final_norm.g"].Float32s()[:4]; got[0] != 1 || got[1] != 1+0x1p-6 || !math.IsInf(float64(got[2]), 1) || got[3] == got[3] {
		t.Errorf("ties, overflow and NaN saved as %v", got)
	}
	s32, _ := os.Stat(filepath.Join(dir32, safetensors.ModelFile))
	s16, _ := os.Stat(filepath.Join(dir16, safetensors.ModelFile))
	if s16.Size() >= s32.Size()*55/100 { // the data halves; the header does not
		t.Errorf("BF16 file %d bytes, F32 %d", s16.Size(), s32.Size())
	}
}
