package ops_test

import (
	"fmt"
	"log"

	"github.com/actq/actq/ops"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// GELU in a graph, with its gradient from gorgonia.Grad on the tape machine.
func ExampleGELU() {
	g := gorgonia.NewGraph()
	x := gorgonia.NewVector(g, tensor.Float64, gorgonia.WithShape(5), gorgonia.WithName("x"),
		gorgonia.WithValue(tensor.New(tensor.WithBacking([]float64{-3, -1, 0, 1, 3}))))
	y, err := ops.GELU(x)
	if err != nil {
		log.Fatal(err)
	}
	cost, _ := gorgonia.Sum(y)
	grads, err := gorgonia.Grad(cost, x)
	if err != nil {
		log.Fatal(err)
	}
	m := gorgonia.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("GELU(x)  = %.4f\n", y.Value().Data())
	fmt.Printf("GELU′(x) = %.4f\n", grads[0].Value().Data())
	// Output:
	// GELU(x)  = [-0.0040 -0.1587 0.0000 0.8413 2.9960]
	// GELU′(x) = [-0.0119 -0.0833 0.5000 1.0833 1.0119]
}
