package ops

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// BenchmarkSoftmaxTape runs forward and backward (Backpropagate with a
// given dy, so nothing else is in the graph) on a tape machine, for
// Softmax and LogSoftmax against Gorgonia's SoftMax and LogSoftMax, on the
// issue's two float32 shapes. Bytes count every slice read or written once
// (x, y; y, dy, dx): 5 per element. Compare the pairs with benchstat; keep
// runs short on the shared machine (-benchtime=20x).
func BenchmarkSoftmaxTape(b *testing.B) {
	for _, sh := range []struct{ rows, cols int }{{512, 1024}, {64, 65536}} {
		for _, impl := range []struct {
			name string
			f    softmaxFn
		}{
			{"actq.Softmax", Softmax},
			{"gorgonia.SoftMax", gorgonia.SoftMax},
			{"actq.LogSoftmax", LogSoftmax},
			{"gorgonia.LogSoftMax", gorgonia.LogSoftMax},
		} {
			b.Run(fmt.Sprintf("%dx%d/%s", sh.rows, sh.cols, impl.name), func(b *testing.B) {
				benchTape(b, impl.f, sh.rows, sh.cols)
			})
		}
	}
}

func benchTape(b *testing.B, f softmaxFn, rows, cols int) {
	r := rand.New(rand.NewPCG(1, 2))
	n := rows * cols
	x, dy := make([]float32, n), make([]float32, n)
	for i := range x {
		x[i] = float32(3 * r.NormFloat64())
		dy[i] = float32(r.NormFloat64())
	}
	g := gorgonia.NewGraph()
	xn := gorgonia.NodeFromAny(g, tensor.New(tensor.WithShape(rows, cols), tensor.WithBacking(x)), gorgonia.WithName("x"))
	dyn := gorgonia.NodeFromAny(g, tensor.New(tensor.WithShape(rows, cols), tensor.WithBacking(dy)), gorgonia.WithName("dy"))
	y, err := f(xn)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := gorgonia.Backpropagate(gorgonia.Nodes{y}, gorgonia.Nodes{dyn}, gorgonia.Nodes{xn}); err != nil {
		b.Fatal(err)
	}
	m := gorgonia.NewTapeMachine(g)
	defer m.Close()
	// Warm up: the first runs grow the heap (4 MB of outputs per run at
	// 512×1024), which would otherwise be charged to whichever benchmark
	// runs first.
	for range 3 {
		m.Reset()
		if err := m.RunAll(); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(5 * 4 * n))
	b.ReportAllocs()
	for b.Loop() {
		m.Reset()
		if err := m.RunAll(); err != nil {
			b.Fatal(err)
		}
	}
}
