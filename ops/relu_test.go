package ops_test

import (
	"fmt"
	"log"

	"github.com/actq/actq/ops"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// ReLU's derivative at 0 is 0, as in PyTorch; Gorgonia's Rectify gives 1.
func ExampleReLU() {
	grad := func(f func(*gorgonia.Node) (*gorgonia.Node, error)) gorgonia.Value {
		g := gorgonia.NewGraph()
		x := gorgonia.NewVector(g, tensor.Float64, gorgonia.WithShape(3), gorgonia.WithName("x"),
			gorgonia.WithValue(tensor.New(tensor.WithBacking([]float64{-1, 0, 2}))))
		y, err := f(x)
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
		return grads[0].Value()
	}
	fmt.Println("ops.ReLU′ at [-1 0 2]:         ", grad(ops.ReLU))
	fmt.Println("gorgonia.Rectify′ at [-1 0 2]: ", grad(gorgonia.Rectify))
	// Output:
	// ops.ReLU′ at [-1 0 2]:          [0  0  1]
	// gorgonia.Rectify′ at [-1 0 2]:  [0  1  1]
}
