package graph

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestAdamMatchesGorgonia runs NewAdam and Gorgonia's AdamSolver with the
// same options side by side for several steps on the same parameters and
// gradients (clipped ones, an infinite one and L2 included) and requires
// the same bits in the weights after every step, and zeroed gradients.
func TestAdamMatchesGorgonia(t *testing.T) {
	for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
		for _, tc := range []TrainConfig{{}, {LearnRate: 3e-2, Clip: 0.5}, {L2: 1e-2}, {LearnRate: 1e-2, Clip: 1, L2: 1e-3}} {
			name := fmt.Sprintf("%v lr=%g clip=%g L2=%g", dt, tc.LearnRate, tc.Clip, tc.L2)
			lr := tc.LearnRate
			if lr == 0 {
				lr = 1e-3
			}
			opts := []gorgonia.SolverOpt{gorgonia.WithLearnRate(lr)}
			if tc.Clip > 0 {
				opts = append(opts, gorgonia.WithClip(tc.Clip))
			}
			if tc.L2 > 0 {
				opts = append(opts, gorgonia.WithL2Reg(tc.L2))
			}
			solvers := []gorgonia.Solver{NewAdam(tc), gorgonia.NewAdamSolver(opts...)}
			// Two copies of the parameters, large enough to be split
			// across goroutines, and a small one.
			shapes := [][]int{{3, 5}, {200, 130}}
			var params [2][]*gorgonia.Node
			for c := range params {
				g := gorgonia.NewGraph()
				for i, s := range shapes {
					params[c] = append(params[c], gorgonia.NewTensor(g, dt, len(s), gorgonia.WithShape(s...),
						gorgonia.WithName(fmt.Sprintf("p%d", i)), gorgonia.WithValue(randomDense(dt, uint64(i+1), s...))))
				}
			}
			for step := range 4 {
				for c := range params {
					model := make([]gorgonia.ValueGrad, len(shapes))
					for i, p := range params[c] {
						gr := randomDense(dt, uint64(10*step+i+100), shapes[i]...)
						if step == 1 && i == 0 {
							setAt(gr, 3, math.Inf(1))
						}
						model[i] = valueGrad{p.Value(), gr}
					}
					if err := solvers[c].Step(model); err != nil {
						t.Fatal(err)
					}
					for i := range model {
						for j, v := range floatsOf(model[i].(valueGrad).g) {
							if v != 0 {
								t.Fatalf("%s: solver %d left gradient %d[%d] = %g", name, c, i, j, v)
							}
						}
					}
				}
				for i := range shapes {
					a, b := floatsOf(params[0][i].Value()), floatsOf(params[1][i].Value())
					for j := range a {
						if a[j] != b[j] && !(math.IsNaN(a[j]) && math.IsNaN(b[j])) {
							t.Fatalf("%s, step %d: parameter %d[%d] = %v, Gorgonia's %v", name, step, i, j, a[j], b[j])
						}
					}
				}
			}
		}
	}
}

// TestAdamErrors checks that Adam refuses parameters it cannot update,
// and a model that changes between steps, without changing anything.
func TestAdamErrors(t *testing.T) {
	w := randomDense(tensor.Float32, 1, 4)
	ok := []gorgonia.ValueGrad{valueGrad{w, randomDense(tensor.Float32, 2, 4)}}
	for name, model := range map[string][]gorgonia.ValueGrad{
		"scalar":         {valueGrad{gorgonia.NewF32(1), gorgonia.NewF32(1)}},
		"mixed dtypes":   {valueGrad{w, randomDense(tensor.Float64, 2, 4)}},
		"other size":     {valueGrad{w, randomDense(tensor.Float32, 2, 5)}},
		"int parameters": {valueGrad{tensor.New(tensor.WithBacking([]int{1})), tensor.New(tensor.WithBacking([]int{1}))}},
	} {
		if err := NewAdam(TrainConfig{}).Step(model); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: got %v, want ErrConfig", name, err)
		}
	}
	a := NewAdam(TrainConfig{})
	if err := a.Step(ok); err != nil {
		t.Fatal(err)
	}
	before := append([]float64(nil), floatsOf(w)...)
	for name, model := range map[string][]gorgonia.ValueGrad{
		"more parameters": append(ok, ok...),
		"another shape":   {valueGrad{randomDense(tensor.Float32, 3, 5), randomDense(tensor.Float32, 4, 5)}},
		"another dtype":   {valueGrad{randomDense(tensor.Float64, 3, 4), randomDense(tensor.Float64, 4, 4)}},
	} {
		if err := a.Step(model); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: got %v, want ErrConfig", name, err)
		}
	}
	for j, v := range floatsOf(w) {
		if v != before[j] {
			t.Fatalf("a refused step changed w[%d]", j)
		}
	}
}

// valueGrad is a parameter's value with a given gradient.
type valueGrad struct{ v, g gorgonia.Value }

func (p valueGrad) Value() gorgonia.Value         { return p.v }
func (p valueGrad) Grad() (gorgonia.Value, error) { return p.g, nil }
func randomDense(dt tensor.Dtype, seed uint64, shape ...int) *tensor.Dense {
	r := rand.New(rand.NewPCG(seed, 7))
	vals := make([]float64, tensor.Shape(shape).TotalSize())
	for i := range vals {
		vals[i] = r.NormFloat64()
	}
	return denseFrom(dt, shape, vals)
}

func floatsOf(v gorgonia.Value) []float64 { return float64sOf(v) }

func setAt(d *tensor.Dense, i int, v float64) {
	switch x := d.Data().(type) {
	case []float32:
		x[i] = float32(v)
	case []float64:
		x[i] = v
	}
}
