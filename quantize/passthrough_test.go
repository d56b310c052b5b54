package quantize

import (
	"math"
	"testing"

	"github.com/actq/actq/internal/gradcheck"
	"github.com/actq/actq/internal/numtest"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestPassthrough runs a Passthrough node twice on values with NaN and
// ±Inf: its value is x bit for bit, in other memory; its Stats count every
// element, the NaN, the infinities and the finite signal, with nothing
// clipped or zeroed and no noise; its observer sees x.
func TestPassthrough(t *testing.T) {
	inf := float32(math.Inf(1))
	xs := []float32{0.5, -2, float32(math.NaN()), inf, -inf, 0, -0.25, 3}
	g := gorgonia.NewGraph()
	xv := tensor.New(tensor.WithShape(2, 4), tensor.WithBacking(append([]float32(nil), xs...)))
	x := gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(2, 4), gorgonia.WithName("x"), gorgonia.WithValue(xv))
	var st Stats
	obs, err := NewObserver(Spec{Format: Int8}, ObserverConfig{})
	if err != nil {
		t.Fatal(err)
	}
	y, err := Passthrough(x, WithStats(&st), WithObserver(obs))
	if err != nil {
		t.Fatal(err)
	}
	var yv gorgonia.Value
	gorgonia.Read(y, &yv)
	vm := gorgonia.NewTapeMachine(g)
	defer vm.Close()
	for range 2 {
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		vm.Reset()
	}
	got := yv.Data().([]float32)
	for i, v := range xs {
		if math.Float32bits(got[i]) != math.Float32bits(v) && !(v != v && got[i] != got[i]) {
			t.Errorf("y[%d] = %v, want %v", i, got[i], v)
		}
	}
	if &got[0] == &xv.Float32s()[0] {
		t.Error("y shares x's memory")
	}
	var signal float64
	for _, v := range xs {
		if f := float64(v); !math.IsNaN(f) && !math.IsInf(f, 0) {
			signal += f * f
		}
	}
	want := StatsSnapshot{Runs: 2, Elements: 16, NaN: 2, Inf: 4, Signal: 2 * signal}
	if s := st.Snapshot(); s != want || !math.IsInf(s.SQNR(), 1) {
		t.Errorf("stats %+v (SQNR %v), want %+v (SQNR +Inf)", s, s.SQNR(), want)
	}
	if lo, hi := obs.Ranges(); obs.Batches() != 2 || lo[0] != -2 || hi[0] != 3 {
		t.Errorf("observer saw %d batches, range [%v, %v]; want 2, [-2, 3]", obs.Batches(), lo, hi)
	}
}

// TestPassthroughScalar runs Passthrough on a Float64 scalar.
func TestPassthroughScalar(t *testing.T) {
	g := gorgonia.NewGraph()
	x := gorgonia.NewScalar(g, tensor.Float64, gorgonia.WithName("x"), gorgonia.WithValue(-1.5))
	var st Stats
	y, err := Passthrough(x, WithStats(&st))
	if err != nil {
		t.Fatal(err)
	}
	vm := gorgonia.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	if v, ok := y.Value().Data().(float64); !ok || v != -1.5 {
		t.Errorf("y = %v, want -1.5", y.Value())
	}
	if s := st.Snapshot(); s.Elements != 1 || s.Signal != 2.25 {
		t.Errorf("stats %+v, want 1 element, signal 2.25", s)
	}
}

// TestPassthroughGrad checks that the gradient passes unchanged, on both
// machines, against central differences.
func TestPassthroughGrad(t *testing.T) {
	x := tensor.New(tensor.WithShape(3, 4), tensor.WithBacking([]float64{1, -2, 3, 0.5, -0.1, 7, 2, -4, 0, 1.5, -3, 6}))
	res, err := gradcheck.Check([]*tensor.Dense{x}, func(g *gorgonia.ExprGraph, xs gorgonia.Nodes) (*gorgonia.Node, error) {
		return Passthrough(xs[0], WithStats(&Stats{}))
	}, gradcheck.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The cost is Σ w⊙x: the tape machine's gradient is w exactly, and the
	// Lisp machine's must equal it.
	for i, v := range res.Tape[0] {
		if !numtest.Alike(v, res.Lisp[0][i]) {
			t.Errorf("dx[%d]: tape %v, lisp %v", i, v, res.Lisp[0][i])
		}
	}
}

// TestPassthroughNodes checks that two Passthrough nodes on one x recording
// into different Stats stay two nodes, and with the same Stats are one.
func TestPassthroughNodes(t *testing.T) {
	g := gorgonia.NewGraph()
	x := gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(2, 2), gorgonia.WithName("x"))
	var a, b Stats
	ya, _ := Passthrough(x, WithStats(&a))
	yb, _ := Passthrough(x, WithStats(&b))
	ya2, _ := Passthrough(x, WithStats(&a))
	if ya == yb || ya != ya2 {
		t.Errorf("nodes: a %p, b %p, a again %p; want a ≠ b, a = a again", ya, yb, ya2)
	}
}
