package quantize_test

import (
	"fmt"
	"math"

	"github.com/actq/actq/quantize"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// run evaluates y on a tape machine and returns its values.
func run(g *gorgonia.ExprGraph, y *gorgonia.Node) []float32 {
	var v gorgonia.Value
	gorgonia.Read(y, &v)
	m := gorgonia.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		panic(err)
	}
	return v.Data().([]float32)
}

func ExampleFakeQuant() {
	g := gorgonia.NewGraph()
	x := gorgonia.NewTensor(g, tensor.Float32, 1, gorgonia.WithName("x"),
		gorgonia.WithValue(tensor.New(tensor.WithBacking([]float32{0.25, 0.35, 12.75, -3}))))
	// PyTorch's fake_quantize_per_tensor_affine(x, 0.1, 0, -128, 127):
	// 0.25 ties to even (2), 0.35 rounds up, 12.75 clips to 127.
	y, err := quantize.FakeQuant(x, quantize.Spec{Format: quantize.Int8, Scale: []float64{0.1}})
	if err != nil {
		panic(err)
	}
	fmt.Printf("%.2f\n", run(g, y))
	// Output: [0.20 0.40 12.70 -3.00]
}

func ExampleFakeQuant_perGroupInt4() {
	// Int4 per group of 4 with dynamic symmetric scales (llama.cpp's Q4_0
	// layout, with groups of 4 instead of 32): each group's largest
	// magnitude maps to the code 7 (first group: s = 0.1, and 0.35 is the
	// tie 3.5, which goes to the even code 4).
	g := gorgonia.NewGraph()
	x := gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithName("w"), gorgonia.WithValue(
		tensor.New(tensor.WithShape(2, 4), tensor.WithBacking([]float32{0.7, -0.1, 0.26, 0.35, -3.5, 1, 2, 0.2}))))
	y, err := quantize.FakeQuant(x, quantize.Spec{
		Format: quantize.Int4, Granularity: quantize.PerGroup, GroupSize: 4, Symmetric: true,
	})
	if err != nil {
		panic(err)
	}
	fmt.Printf("%.2f\n", run(g, y))
	// Output: [0.70 -0.10 0.30 0.40 -3.50 1.00 2.00 0.00]
}

func ExampleFakeQuant_fp8() {
	g := gorgonia.NewGraph()
	x := gorgonia.NewTensor(g, tensor.Float32, 1, gorgonia.WithName("x"),
		gorgonia.WithValue(tensor.New(tensor.WithBacking([]float32{0.1, 464, 1e5, 3e-3}))))
	// E4M3FN: 0.1 → 0.1015625, 464 ties to 448, 1e5 saturates to 448,
	// 3e-3 = 1.54·2^-9 rounds to the subnormal 2·2^-9.
	y, err := quantize.FakeQuant(x, quantize.Spec{Format: quantize.FP8E4M3})
	if err != nil {
		panic(err)
	}
	fmt.Println(run(g, y))
	// Output: [0.1015625 448 448 0.00390625]
}

func ExampleWithStats() {
	g := gorgonia.NewGraph()
	x := gorgonia.NewTensor(g, tensor.Float32, 1, gorgonia.WithName("x"),
		gorgonia.WithValue(tensor.New(tensor.WithBacking([]float32{0.01, 0.5, 1, 200}))))
	var st quantize.Stats
	y, err := quantize.FakeQuant(x, quantize.Spec{Format: quantize.Int8, Scale: []float64{0.1}}, quantize.WithStats(&st))
	if err != nil {
		panic(err)
	}
	run(g, y)
	// 0.01 becomes 0 (zeroed) and 200 clips to 12.7, whose error
	// dominates: SQNR = 10·log10(40001.25 / 35081.3).
	s := st.Snapshot()
	fmt.Printf("elements %d, clipped %.0f%%, zeroed %.0f%%, SQNR %.1f dB\n",
		s.Elements, 100*s.ClippedFraction(), 100*s.ZeroedFraction(), s.SQNR())
	// Output: elements 4, clipped 25%, zeroed 25%, SQNR 0.6 dB
}

func ExampleObserver() {
	obs, err := quantize.NewObserver(quantize.Spec{Format: quantize.UInt8}, quantize.ObserverConfig{})
	if err != nil {
		panic(err)
	}
	for _, batch := range [][]float32{{-1, 0.5}, {2, 0}} {
		if err := obs.Observe(tensor.New(tensor.WithBacking(batch))); err != nil {
			panic(err)
		}
	}
	spec, _ := obs.Spec()
	fmt.Printf("scale %.9f, zero point %d\n", spec.Scale[0], spec.ZeroPoint[0])
	// Output: scale 0.011764706, zero point 85
}

func ExampleFakeQuantLearnable() {
	g := gorgonia.NewGraph()
	x := gorgonia.NewTensor(g, tensor.Float32, 1, gorgonia.WithName("x"),
		gorgonia.WithValue(tensor.New(tensor.WithBacking([]float32{-3, -0.3, 0.3, 0.6, 2}))))
	s := gorgonia.NewScalar(g, tensor.Float32, gorgonia.WithName("s"), gorgonia.WithValue(float32(0.25)))
	y, err := quantize.FakeQuantLearnable(x, s, quantize.Spec{Format: quantize.Int4}, quantize.LSQConfig{})
	if err != nil {
		panic(err)
	}
	cost, _ := gorgonia.Sum(y)
	grads, err := gorgonia.Grad(cost, x, s)
	if err != nil {
		panic(err)
	}
	m := gorgonia.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		panic(err)
	}
	fmt.Println("y     ", y.Value().Data())
	fmt.Println("dx    ", grads[0].Value().Data())
	fmt.Printf("dscale %.2f\n", grads[1].Value().Data())
	// Output:
	// y      [-2 -0.25 0.25 0.5 1.75]
	// dx     [0 1 1 1 0]
	// dscale -1.40
}

func ExamplePassthrough() {
	g := gorgonia.NewGraph()
	x := gorgonia.NewTensor(g, tensor.Float32, 1, gorgonia.WithName("x"),
		gorgonia.WithValue(tensor.New(tensor.WithBacking([]float32{3, -4, float32(math.Inf(1))}))))
	var st quantize.Stats
	y, err := quantize.Passthrough(x, quantize.WithStats(&st))
	if err != nil {
		panic(err)
	}
	fmt.Println(run(g, y))
	s := st.Snapshot()
	fmt.Printf("elements %d, inf %d, signal %g, SQNR %v dB\n", s.Elements, s.Inf, s.Signal, s.SQNR())
	// Output:
	// [3 -4 +Inf]
	// elements 3, inf 1, signal 25, SQNR +Inf dB
}
