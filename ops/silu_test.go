package ops_test

import (
	"fmt"
	"log"

	"github.com/actq/actq/ops"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// SiLU on the Lisp machine, which differentiates as it runs (DoDiff).
func ExampleSiLU() {
	g := gorgonia.NewGraph()
	x := gorgonia.NewVector(g, tensor.Float64, gorgonia.WithShape(3), gorgonia.WithName("x"),
		gorgonia.WithValue(tensor.New(tensor.WithBacking([]float64{-1, 0, 1}))))
	y, err := ops.SiLU(x)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := gorgonia.Sum(y); err != nil { // the Lisp machine needs a scalar root
		log.Fatal(err)
	}
	m := gorgonia.NewLispMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		log.Fatal(err)
	}
	dx, _ := x.Grad()
	fmt.Printf("SiLU(x)  = %.4f\n", y.Value().Data())
	fmt.Printf("SiLU′(x) = %.4f\n", dx.Data())
	// Output:
	// SiLU(x)  = [-0.2689 0.0000 0.7311]
	// SiLU′(x) = [0.0723 0.5000 0.9277]
}
