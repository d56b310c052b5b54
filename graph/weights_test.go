package graph

import (
	"bytes"
	"errors"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestWeightsEncode round-trips Weights of both dtypes through Encode and
// DecodeWeights.
func TestWeightsEncode(t *testing.T) {
	for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
		g := gorgonia.NewGraph()
		f, err := NewFFN(g, "ffn", FFNConfig{DModel: 3, DHidden: 5, Activation: "relu", Gated: true, Dtype: dt}, WithSeed(9))
		if err != nil {
			t.Fatal(err)
		}
		w, err := Collect(f.Params()...)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := w.Encode(&buf); err != nil {
			t.Fatal(err)
		}
		back, err := DecodeWeights(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if len(back) != len(w) {
			t.Fatalf("%v: %d weights back, want %d", dt, len(back), len(w))
		}
		for name, v := range w {
			if !equalDense(v, back[name]) {
				t.Errorf("%v: %s changed", dt, name)
			}
		}
	}
	if _, err := DecodeWeights(bytes.NewReader([]byte("not gob"))); err == nil {
		t.Error("garbage decoded")
	}
	bad := Weights{"x": tensor.New(tensor.WithShape(2), tensor.WithBacking([]int{1, 2}))}
	if err := bad.Encode(&bytes.Buffer{}); !errors.Is(err, ErrConfig) {
		t.Errorf("int weights: %v", err)
	}
}
