package ops

import (
	"fmt"
	"math"
	"testing"

	"github.com/actq/actq/internal/parallel"
	"github.com/actq/actq/ops/kernel"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

const benchN = 1 << 20

// Gorgonia compositions of the same functions, for comparison. Gorgonia has
// no erf, so exact GELU has no composite.
var composites = map[string]nodeFn{
	"gelu_tanh": func(x *gorgonia.Node) (*gorgonia.Node, error) {
		// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
		dt := x.Dtype()
		c := func(v float64, name string) *gorgonia.Node {
			if dt == tensor.Float32 {
				return gorgonia.NewConstant(float32(v), gorgonia.WithName(name))
			}
			return gorgonia.NewConstant(v, gorgonia.WithName(name))
		}
		x3, err := gorgonia.Cube(x)
		if err != nil {
			return nil, err
		}
		k := gorgonia.Must(gorgonia.Mul(x3, c(0.044715, "kappa")))
		inner := gorgonia.Must(gorgonia.Mul(gorgonia.Must(gorgonia.Add(x, k)), c(math.Sqrt(2/math.Pi), "beta")))
		t := gorgonia.Must(gorgonia.Tanh(inner))
		onePlus := gorgonia.Must(gorgonia.Add(t, c(1, "one")))
		return gorgonia.Mul(gorgonia.Must(gorgonia.HadamardProd(x, onePlus)), c(0.5, "half"))
	},
	"silu": func(x *gorgonia.Node) (*gorgonia.Node, error) {
		s, err := gorgonia.Sigmoid(x)
		if err != nil {
			return nil, err
		}
		return gorgonia.HadamardProd(x, s)
	},
	"relu": gorgonia.Rectify,
}

// benchTrainStep runs y = f(x), cost = Σy, and its gradient (forward plus
// backward) on a tape machine over 1M float32 elements.
func benchTrainStep(b *testing.B, f nodeFn) {
	g := gorgonia.NewGraph()
	data := make([]float32, benchN)
	for i := range data {
		data[i] = float32(6 * math.Sin(float64(i)*0.618))
	}
	x := gorgonia.NewVector(g, tensor.Float32, gorgonia.WithShape(benchN), gorgonia.WithName("x"),
		gorgonia.WithValue(tensor.New(tensor.WithBacking(data))))
	y, err := f(x)
	if err != nil {
		b.Fatal(err)
	}
	cost, err := gorgonia.Sum(y)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := gorgonia.Grad(cost, x); err != nil {
		b.Fatal(err)
	}
	m := gorgonia.NewTapeMachine(g)
	defer m.Close()
	b.SetBytes(benchN * 4)
	b.ReportAllocs()
	for b.Loop() {
		m.Reset()
		if err := m.RunAll(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTrainStep compares each op's forward+backward step with the
// Gorgonia composite of the same function (composite/…). baseline is the
// same program with y = x: the cost Σy, its gradient and the tape's own
// bookkeeping, which every step pays whatever f is. Subtracting it from a
// step leaves the time f's forward and backward take.
func BenchmarkTrainStep(b *testing.B) {
	b.Run("baseline", func(b *testing.B) {
		benchTrainStep(b, func(x *gorgonia.Node) (*gorgonia.Node, error) { return x, nil })
	})
	for _, a := range activationOps {
		b.Run("actq/"+a.op, func(b *testing.B) { benchTrainStep(b, a.fn) })
		if c, ok := composites[a.op]; ok {
			b.Run("composite/"+a.op, func(b *testing.B) { benchTrainStep(b, c) })
		}
	}
}

// BenchmarkSplit measures where splitting an elementwise kernel across
// goroutines starts to pay: each kernel at several sizes, on the calling
// goroutine (serial) and split in two (split; run with -cpu 2 or more).
// The grains in activation.go come from its crossovers.
func BenchmarkSplit(b *testing.B) {
	kernels := []struct {
		name string
		f    func(dst, x, dy []float32) error
	}{
		{"relu_fwd", func(d, x, _ []float32) error { return kernel.ReLU(d, x) }},
		{"relu_bwd", kernel.ReLUGrad[float32]},
		{"silu_fwd", func(d, x, _ []float32) error { return kernel.SiLU(d, x) }},
		{"gelu_bwd", kernel.GELUGrad[float32]},
	}
	for _, k := range kernels {
		for _, n := range []int{1 << 11, 1 << 13, 1 << 15, 1 << 17, 1 << 19} {
			x, dy, dst := make([]float32, n), make([]float32, n), make([]float32, n)
			for i := range x {
				x[i], dy[i] = float32(6*math.Sin(float64(i)*0.618)), 1
			}
			b.Run(fmt.Sprintf("%s/n=%d/serial", k.name, n), func(b *testing.B) {
				for b.Loop() {
					_ = k.f(dst, x, dy)
				}
			})
			b.Run(fmt.Sprintf("%s/n=%d/split", k.name, n), func(b *testing.B) {
				for b.Loop() {
					_ = parallel.For(n, n/2, func(lo, hi int) error { return k.f(dst[lo:hi], x[lo:hi], dy[lo:hi]) })
				}
			})
		}
	}
}
