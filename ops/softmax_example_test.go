package ops_test

import (
	"fmt"
	"log"
	"math"

	"github.com/actq/actq/ops"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func ExampleSoftmax() {
	g := gorgonia.NewGraph()
	x := gorgonia.NodeFromAny(g, tensor.New(tensor.WithShape(2, 3), tensor.WithBacking([]float64{
		1, 2, 3,
		1000, 0, 0, // Gorgonia's own SoftMax returns NaN for this row
	})), gorgonia.WithName("x"))
	y, err := ops.Softmax(x) // along the last axis
	if err != nil {
		log.Fatal(err)
	}
	m := gorgonia.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%.4f\n", y.Value().Data())
	// Output:
	// [0.0900 0.2447 0.6652 1.0000 0.0000 0.0000]
}

// An additive mask: −Inf entries get probability 0, and a row that is
// entirely masked gives zeros rather than NaN.
func ExampleSoftmax_masked() {
	inf := float32(math.Inf(1))
	g := gorgonia.NewGraph()
	x := gorgonia.NodeFromAny(g, tensor.New(tensor.WithShape(3, 3), tensor.WithBacking([]float32{
		0, 1, 2,
		0, -inf, 2,
		-inf, -inf, -inf,
	})), gorgonia.WithName("scores"))
	p, err := ops.Softmax(x)
	if err != nil {
		log.Fatal(err)
	}
	m := gorgonia.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%.4f\n", p.Value().Data())
	// Output:
	// [0.0900 0.2447 0.6652 0.1192 0.0000 0.8808 0.0000 0.0000 0.0000]
}

// A softmax along the first axis of a matrix (each column sums to 1), and
// its gradient through gorgonia.Grad.
func ExampleSoftmax_axis() {
	g := gorgonia.NewGraph()
	x := gorgonia.NodeFromAny(g, tensor.New(tensor.WithShape(2, 2), tensor.WithBacking([]float64{
		0, 1,
		0, 3,
	})), gorgonia.WithName("x"))
	p, err := ops.Softmax(x, 0)
	if err != nil {
		log.Fatal(err)
	}
	w := gorgonia.NewConstant(tensor.New(tensor.WithShape(2, 2), tensor.WithBacking([]float64{1, 0, 0, 1})), gorgonia.WithName("w"))
	cost := gorgonia.Must(gorgonia.Sum(gorgonia.Must(gorgonia.HadamardProd(p, w))))
	grads, err := gorgonia.Grad(cost, x)
	if err != nil {
		log.Fatal(err)
	}
	m := gorgonia.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("p  = %.4f\n", p.Value().Data())
	fmt.Printf("dx = %.4f\n", grads[0].Value().Data())
	// Output:
	// p  = [0.5000 0.1192 0.5000 0.8808]
	// dx = [0.2500 -0.1050 -0.2500 0.1050]
}

func ExampleLogSoftmax() {
	g := gorgonia.NewGraph()
	x := gorgonia.NodeFromAny(g, tensor.New(tensor.WithShape(3), tensor.WithBacking([]float64{-1, 0, 1000})),
		gorgonia.WithName("x"))
	y, err := ops.LogSoftmax(x)
	if err != nil {
		log.Fatal(err)
	}
	p, err := ops.Softmax(x)
	if err != nil {
		log.Fatal(err)
	}
	logp := gorgonia.Must(gorgonia.Log(p)) // underflows where LogSoftmax does not
	m := gorgonia.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("LogSoftmax(x) = %.4f\n", y.Value().Data())
	fmt.Printf("Log(Softmax)  = %.4f\n", logp.Value().Data())
	// Output:
	// LogSoftmax(x) = [-1001.0000 -1000.0000 0.0000]
	// Log(Softmax)  = [-Inf -Inf 0.0000]
}
