package quantize

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/actq/actq/ops"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestUsePreallocDoInPlace checks the in-place paths the tape machine takes
// (the result over x, dx over dy) give Do's results for every kind of spec,
// and that an in-place result is refused where statistics need x.
func TestUsePreallocDoInPlace(t *testing.T) {
	const rows, cols = 4, 64
	data := make([]float32, rows*cols)
	dyData := make([]float32, rows*cols)
	for i := range data {
		data[i] = float32(3 * math.Sin(float64(i)*0.37))
		dyData[i] = float32(math.Cos(float64(i)))
	}
	specs := map[string]Spec{
		"int8 fixed":         {Format: Int8, Scale: []float64{0.02}},
		"int8 dynamic sym":   {Format: Int8, Symmetric: true},
		"uint8 dynamic":      {Format: UInt8},
		"int8 per row":       {Format: Int8, Granularity: PerChannel, Axis: 0, Symmetric: true},
		"int8 per column":    {Format: Int8, Granularity: PerChannel, Axis: 1, Symmetric: true},
		"int4 group 32 dyn":  {Format: Int4, Granularity: PerGroup, GroupSize: 32, Symmetric: true},
		"int4 group 32 aff":  {Format: UInt4, Granularity: PerGroup, GroupSize: 32},
		"fp16":               {Format: FP16},
		"fp8 e4m3 scaled":    {Format: FP8E4M3, Scale: []float64{0.01}},
		"fp8 e5m2 dyn scale": {Format: FP8E5M2, DynamicFloatScale: true},
	}
	for name, spec := range specs {
		g := gorgonia.NewGraph()
		x := gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(rows, cols), gorgonia.WithName("x"))
		n, err := FakeQuant(x, spec)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		op := n.Op().(*fakeQuantOp)
		grad := &fakeQuantGradOp{op}
		mk := func(d []float32) *tensor.Dense {
			return tensor.New(tensor.WithShape(rows, cols), tensor.WithBacking(slices.Clone(d)))
		}
		want, err := op.Do(mk(data))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		wantDx, err := grad.Do(mk(data), mk(dyData))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		xv := mk(data)
		got, err := op.UsePreallocDo(xv, xv)
		if err != nil || got != gorgonia.Value(xv) {
			t.Fatalf("%s: forward in place: %v", name, err)
		}
		dyv := mk(dyData)
		gotDx, err := grad.UsePreallocDo(dyv, mk(data), dyv)
		if err != nil || gotDx != gorgonia.Value(dyv) {
			t.Fatalf("%s: backward in place: %v", name, err)
		}
		if !slices.Equal(got.Data().([]float32), want.Data().([]float32)) {
			t.Errorf("%s: forward in place differs from Do", name)
		}
		if !slices.Equal(gotDx.Data().([]float32), wantDx.Data().([]float32)) {
			t.Errorf("%s: backward in place differs from Do", name)
		}
	}

	// With statistics attached, the result may not overwrite x.
	var st Stats
	g := gorgonia.NewGraph()
	x := gorgonia.NewVector(g, tensor.Float64, gorgonia.WithShape(3), gorgonia.WithName("x"))
	n, err := FakeQuant(x, Spec{Format: Int8, Symmetric: true}, WithStats(&st))
	if err != nil {
		t.Fatal(err)
	}
	xv := tensor.New(tensor.WithBacking([]float64{1, -2, 3}))
	if _, err := n.Op().(*fakeQuantOp).UsePreallocDo(xv, xv); !errors.Is(err, ops.ErrValue) {
		t.Errorf("in place with Stats: got %v, want ops.ErrValue", err)
	}
	if _, err := n.Op().(*fakeQuantOp).UsePreallocDo(tensor.New(tensor.WithBacking(make([]float64, 3))), xv); err != nil {
		t.Errorf("separate buffer with Stats: %v", err)
	}
}
