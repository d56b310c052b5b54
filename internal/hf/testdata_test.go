package hf_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/actq/actq/internal/hf"
	"github.com/actq/actq/internal/numtest"
	"github.com/actq/actq/internal/safetensors"
)

// The checkpoints scripts/goldens/gen_llama.py writes, with the dtype of
// their weights.
var checkpoints = map[string]safetensors.Dtype{
	"gqa-f32":       safetensors.F32,
	"mha-bf16-tied": safetensors.BF16,
	"gqa-f16":       safetensors.F16,
	"mqa-f32-tied":  safetensors.F32,
}

var torchDtype = map[safetensors.Dtype]string{safetensors.F32: "float32", safetensors.BF16: "bfloat16", safetensors.F16: "float16"}

// goldenParams is the part of a checkpoint golden's params this test
// reads.
type goldenParams struct {
	Checkpoint string            `json:"checkpoint"`
	Tokens     [][]int           `json:"tokens"`
	GradNames  []string          `json:"grad_names"`
	SHA256     map[string]string `json:"sha256"`
	MinMargin  float64           `json:"min_margin"`
	Greedy     []struct {
		Prompt, Tokens []int
		MinMargin      float64 `json:"min_margin"`
	} `json:"greedy"`
}

// TestCheckpoints opens each committed checkpoint as a loader will: it
// parses config.json, opens model.safetensors, checks its tensors against
// the config's layout, and reads every tensor into float32, checking each
// value through the SHA-256 PyTorch recorded. It also checks that
// WriteConfig writes config.json byte for byte as the script (in
// transformers' layout) did, that safetensors.Write reproduces the F32 and
// BF16 files byte for byte, and that the goldens fit the config.
func TestCheckpoints(t *testing.T) {
	for name, dtype := range checkpoints {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("..", "..", "testdata", "llama", name)
			cfgPath := filepath.Join(dir, "config.json")
			cfg, err := hf.ReadConfig(cfgPath)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.TorchDtype != torchDtype[dtype] {
				t.Errorf("torch_dtype %q, want %q", cfg.TorchDtype, torchDtype[dtype])
			}
			raw, _ := os.ReadFile(cfgPath)
			if written, err := cfg.MarshalJSON(); err != nil || !bytes.Equal(written, raw) {
				t.Errorf("MarshalJSON differs from the script's config.json (%v):\n%s\nwant\n%s", err, written, raw)
			}

			set, err := safetensors.OpenDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer set.Close()
			infos := set.Tensors()
			if err := cfg.CheckTensors(infos); err != nil {
				t.Fatal(err)
			}
			if got, want := len(infos), len(cfg.Tensors())-boolInt(cfg.TieWordEmbeddings); got != want {
				t.Errorf("%d tensors, want %d", got, want)
			}

			g, err := numtest.ReadGolden(filepath.Join(dir, "golden.json.gz"))
			if err != nil {
				t.Fatal(err)
			}
			var p goldenParams
			if err := g.Cases[0].ParamsInto(&p); err != nil {
				t.Fatal(err)
			}
			if len(p.SHA256) != len(infos) {
				t.Errorf("the golden has hashes of %d tensors, the file %d", len(p.SHA256), len(infos))
			}
			var tensors []safetensors.Tensor
			for _, info := range infos {
				if info.Dtype != dtype {
					t.Errorf("%s: dtype %v, want %v", info.Name, info.Dtype, dtype)
				}
				dst := make([]float32, info.Len())
				if err := set.ReadFloat32(info.Name, dst); err != nil {
					t.Fatal(err)
				}
				if got := sha256Float32(dst); got != p.SHA256[info.Name] {
					t.Errorf("%s: values read differ from PyTorch's (SHA-256 %s, want %s)", info.Name, got, p.SHA256[info.Name])
				}
				tensors = append(tensors, safetensors.Tensor{Name: info.Name, Shape: info.Shape, Data: dst, Dtype: info.Dtype})
			}
			if dtype != safetensors.F16 {
				again := filepath.Join(t.TempDir(), "model.safetensors")
				if err := safetensors.Write(again, tensors, map[string]string{"format": "pt"}); err != nil {
					t.Fatal(err)
				}
				a, _ := os.ReadFile(again)
				b, _ := os.ReadFile(filepath.Join(dir, safetensors.ModelFile))
				if !bytes.Equal(a, b) {
					t.Errorf("safetensors.Write does not reproduce the script's file (%d and %d bytes)", len(a), len(b))
				}
			}
			checkGolden(t, cfg, g.Cases[0], p)
		})
	}
}

// checkGolden checks that a checkpoint's golden fits its config.
func checkGolden(t *testing.T, cfg hf.Config, c numtest.Case, p goldenParams) {
	t.Helper()
	b, tm := len(p.Tokens), len(p.Tokens[0])
	if !slices.Equal(c.Shape, []int{b, tm, cfg.VocabSize}) {
		t.Errorf("logits shape %v, want [%d %d %d]", c.Shape, b, tm, cfg.VocabSize)
	}
	for _, arr := range []string{"logits64", "logits32"} {
		v, err := c.F64(arr)
		if err != nil || len(v) != b*tm*cfg.VocabSize {
			t.Errorf("%s: %d values, %v", arr, len(v), err)
		}
	}
	if loss, err := c.F64("loss64"); err != nil || len(loss) != 1 || !(loss[0] > 0) || math.IsInf(loss[0], 0) {
		t.Errorf("loss64 = %v, %v", loss, err)
	}
	shapes := map[string][]int{}
	for _, s := range cfg.Tensors() {
		shapes[s.Name] = s.Shape
	}
	for _, name := range p.GradNames {
		g, err := c.F64("grad64." + name)
		n := 1
		for _, d := range shapes[name] {
			n *= d
		}
		if err != nil || len(g) != n {
			t.Errorf("grad64.%s: %d values, want %d (%v)", name, len(g), n, err)
		}
	}
	if len(p.Greedy) != 2 || !(p.MinMargin > 1e-3) {
		t.Errorf("greedy runs %d, smallest margin %g", len(p.Greedy), p.MinMargin)
	}
	for _, r := range p.Greedy {
		if len(r.Tokens) != 16 || r.MinMargin < p.MinMargin {
			t.Errorf("greedy run %v: %d tokens, margin %g", r.Prompt, len(r.Tokens), r.MinMargin)
		}
		for _, tok := range slices.Concat(r.Prompt, r.Tokens) {
			if tok < 0 || tok >= cfg.VocabSize {
				t.Errorf("greedy token %d outside the vocabulary", tok)
			}
		}
	}
}

func sha256Float32(v []float32) string {
	b := make([]byte, 0, 4*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
