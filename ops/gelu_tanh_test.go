package ops_test

import (
	"fmt"
	"log"

	"github.com/actq/actq/ops"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// The tanh approximation next to the exact GELU: they differ by less than
// 5e-4 on this range.
func ExampleGELUTanh() {
	g := gorgonia.NewGraph()
	x := gorgonia.NewVector(g, tensor.Float32, gorgonia.WithShape(4), gorgonia.WithName("x"),
		gorgonia.WithValue(tensor.New(tensor.WithBacking([]float32{-2, -0.5, 0.5, 2}))))
	approx, err := ops.GELUTanh(x)
	if err != nil {
		log.Fatal(err)
	}
	exact, err := ops.GELU(x)
	if err != nil {
		log.Fatal(err)
	}
	diff, _ := gorgonia.Sub(approx, exact)
	// Sub may reuse approx's memory for its result: read approx as it is
	// computed (Gorgonia issue #576).
	var approxValue gorgonia.Value
	gorgonia.Read(approx, &approxValue)
	m := gorgonia.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("GELUTanh(x)           = %.5f\n", approxValue.Data())
	fmt.Printf("GELUTanh(x) − GELU(x) = %.5f\n", diff.Value().Data())
	// Output:
	// GELUTanh(x)           = [-0.04540 -0.15429 0.34571 1.95460]
	// GELUTanh(x) − GELU(x) = [0.00010 -0.00002 -0.00002 0.00010]
}
