package graph

import (
	"errors"
	"testing"

	"github.com/actq/actq/ops"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestFFNBadConfig checks that every bad FFN configuration is an error
// wrapping ErrConfig, never a panic.
func TestFFNBadConfig(t *testing.T) {
	ok := FFNConfig{DModel: 4, DHidden: 8, Activation: "gelu"}
	for _, tc := range []struct {
		name string
		edit func(*FFNConfig)
	}{
		{"zero DModel", func(c *FFNConfig) { c.DModel = 0 }},
		{"negative DHidden", func(c *FFNConfig) { c.DHidden = -1 }},
		{"unknown activation", func(c *FFNConfig) { c.Activation = "swish" }},
		{"empty activation", func(c *FFNConfig) { c.Activation = "" }},
		{"int dtype", func(c *FFNConfig) { c.Dtype = tensor.Int }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.edit(&cfg)
			_, err := NewFFN(gorgonia.NewGraph(), "ffn", cfg)
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("got %v, want an error wrapping ErrConfig", err)
			}
		})
	}
	if _, err := NewFFN(nil, "ffn", ok); !errors.Is(err, ErrConfig) {
		t.Errorf("nil graph: got %v, want ErrConfig", err)
	}
	g := gorgonia.NewGraph()
	if _, err := NewFFN(g, "ffn", ok); err != nil {
		t.Fatal(err)
	}
	if _, err := NewFFN(g, "ffn", ok); !errors.Is(err, ErrConfig) {
		t.Errorf("second FFN of the same name: got %v, want ErrConfig", err)
	}
	if _, err := NewFFN(gorgonia.NewGraph(), "ffn", ok, WithWeights(Weights{})); !errors.Is(err, ErrConfig) {
		t.Errorf("weights missing: got %v, want ErrConfig", err)
	}
}

// TestFFNBadInput checks Forward's errors for inputs of the wrong rank,
// width or dtype.
func TestFFNBadInput(t *testing.T) {
	g := gorgonia.NewGraph()
	f, err := NewFFN(g, "ffn", FFNConfig{DModel: 4, DHidden: 8, Activation: "relu"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		x    *gorgonia.Node
		want error
	}{
		{"nil", nil, ops.ErrNilNode},
		{"rank 1", gorgonia.NewVector(g, tensor.Float32, gorgonia.WithShape(4), gorgonia.WithName("v")), ops.ErrShape},
		{"rank 3", gorgonia.NewTensor(g, tensor.Float32, 3, gorgonia.WithShape(2, 3, 4), gorgonia.WithName("t3")), ops.ErrShape},
		{"width", gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(3, 5), gorgonia.WithName("w5")), ops.ErrShape},
		{"dtype", gorgonia.NewMatrix(g, tensor.Float64, gorgonia.WithShape(3, 4), gorgonia.WithName("f64")), ops.ErrDtype},
	} {
		if _, err := f.Forward(tc.x); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
}

// TestSeededInit checks that initial weights depend on the seed and the
// name only.
func TestSeededInit(t *testing.T) {
	cfg := FFNConfig{DModel: 4, DHidden: 8, Activation: "silu", Gated: true}
	build := func(seed uint64, other bool) Weights {
		g := gorgonia.NewGraph()
		if other { // another layer first must not change this one's values
			if _, err := NewLinear(g, "first", 3, 3, true, tensor.Float32, WithSeed(seed)); err != nil {
				t.Fatal(err)
			}
		}
		f, err := NewFFN(g, "ffn", cfg, WithSeed(seed))
		if err != nil {
			t.Fatal(err)
		}
		w, err := Collect(f.Params()...)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	a, b, c := build(1, false), build(1, true), build(2, false)
	for _, name := range a.Names() {
		if !equalDense(a[name], b[name]) {
			t.Errorf("%s differs when built after another layer", name)
		}
		if name[len(name)-2] == 'W' && equalDense(a[name], c[name]) {
			t.Errorf("%s is the same under seeds 1 and 2", name)
		}
	}
	if len(a) != 6 {
		t.Errorf("gated FFN has %d parameters, want 6", len(a))
	}
}

func equalDense(a, b *tensor.Dense) bool {
	if !a.Shape().Eq(b.Shape()) || a.Dtype() != b.Dtype() {
		return false
	}
	x, y := float64sOf(a), float64sOf(b)
	for i := range x {
		if x[i] != y[i] {
			return false
		}
	}
	return true
}

// TestAttentionBadConfig checks Attention's configuration and input errors.
func TestAttentionBadConfig(t *testing.T) {
	for name, cfg := range map[string]AttentionConfig{
		"heads do not divide": {DModel: 10, Heads: 4},
		"zero heads":          {DModel: 8},
		"negative heads":      {DModel: 8, Heads: -2},
		"zero DModel":         {Heads: 2},
		"dtype":               {DModel: 8, Heads: 2, Dtype: tensor.Int},
	} {
		if _, err := NewAttention(gorgonia.NewGraph(), "attn", cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: got %v, want ErrConfig", name, err)
		}
	}
	g := gorgonia.NewGraph()
	a, err := NewAttention(g, "attn", AttentionConfig{DModel: 8, Heads: 2, Causal: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		x    *gorgonia.Node
		want error
	}{
		{"nil", nil, ops.ErrNilNode},
		{"rank 2", gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(3, 8), gorgonia.WithName("m")), ops.ErrShape},
		{"rank 4", gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(1, 2, 3, 8), gorgonia.WithName("t4")), ops.ErrShape},
		{"width", gorgonia.NewTensor(g, tensor.Float32, 3, gorgonia.WithShape(2, 3, 6), gorgonia.WithName("w6")), ops.ErrShape},
		{"dtype", gorgonia.NewTensor(g, tensor.Float64, 3, gorgonia.WithShape(2, 3, 8), gorgonia.WithName("f64")), ops.ErrDtype},
	} {
		if _, err := a.Forward(tc.x); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
}

// TestBlockBadConfig checks Block's configuration errors.
func TestBlockBadConfig(t *testing.T) {
	ok := BlockConfig{DModel: 8, Heads: 2, DHidden: 16, Activation: "silu"}
	for name, edit := range map[string]func(*BlockConfig){
		"heads do not divide": func(c *BlockConfig) { c.Heads = 3 },
		"zero hidden":         func(c *BlockConfig) { c.DHidden = 0 },
		"unknown activation":  func(c *BlockConfig) { c.Activation = "elu" },
		"unknown norm":        func(c *BlockConfig) { c.Norm = "group" },
	} {
		c := ok
		edit(&c)
		if _, err := NewBlock(gorgonia.NewGraph(), "blk", c); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: got %v, want ErrConfig", name, err)
		}
	}
	g := gorgonia.NewGraph()
	bl, err := NewBlock(g, "blk", ok)
	if err != nil {
		t.Fatal(err)
	}
	x := gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(4, 8), gorgonia.WithName("x2"))
	if _, err := bl.Forward(x); !errors.Is(err, ops.ErrShape) {
		t.Errorf("rank-2 input: got %v, want ErrShape", err)
	}
}
