package ops

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/actq/actq/internal/gradcheck"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// runChecked builds cost = Σ f(CheckFinite(g(x), "after g")) with x bound to
// data and runs it with gradients on the tape machine or the Lisp machine.
func runChecked(lisp bool, data []float64, g, f nodeFn) error {
	gr := gorgonia.NewGraph()
	x := gorgonia.NewTensor(gr, tensor.Float64, 2, gorgonia.WithShape(2, len(data)/2), gorgonia.WithName("x"),
		gorgonia.WithValue(tensor.New(tensor.WithShape(2, len(data)/2), tensor.WithBacking(data))))
	h, err := g(x)
	if err != nil {
		return err
	}
	c, err := CheckFinite(h, "after g")
	if err != nil {
		return err
	}
	out, err := f(c)
	if err != nil {
		return err
	}
	cost, err := gorgonia.Sum(out)
	if err != nil {
		return err
	}
	var m gorgonia.VM
	if lisp {
		m = gorgonia.NewLispMachine(gr)
	} else {
		if _, err := gorgonia.Grad(cost, x); err != nil {
			return err
		}
		m = gorgonia.NewTapeMachine(gr)
	}
	defer m.Close()
	return m.RunAll()
}

func TestCheckFiniteStopsAtFirstBadNode(t *testing.T) {
	for _, lisp := range []bool{false, true} {
		if lisp && raceEnabled {
			t.Log("Lisp machine's error path skipped under -race (a data race inside Gorgonia; see race_test.go)")
			continue
		}
		// Log(0) = −Inf and Log(−1) = NaN reach the check.
		err := runChecked(lisp, []float64{1, 0, 2, -1, 3, 0}, gorgonia.Log, gorgonia.Square)
		nf, ok := FindNonFinite(err)
		if !ok {
			t.Fatalf("lisp=%v: got %v, want a *NonFiniteError", lisp, err)
		}
		if nf.Label != "after g" || nf.Gradient || nf.NaN != 1 || nf.NegInf != 2 || nf.PosInf != 0 || nf.Total != 6 ||
			nf.First != 1 || fmt.Sprint(nf.Coord) != "[0 1]" || !math.IsInf(nf.Value, -1) {
			t.Errorf("lisp=%v: got %+v", lisp, nf)
		}

		// Finite forward values, infinite gradient: Sqrt′(0) = +Inf flows
		// back through the check.
		err = runChecked(lisp, []float64{0, 1, 4, 9}, gorgonia.Square, gorgonia.Sqrt)
		if nf, ok = FindNonFinite(err); !ok || !nf.Gradient {
			t.Fatalf("lisp=%v: got %v, want a gradient NonFiniteError", lisp, err)
		}

		if err := runChecked(lisp, []float64{1, 2, 3, 4}, gorgonia.Log, gorgonia.Square); err != nil {
			t.Errorf("lisp=%v: finite run failed: %v", lisp, err)
		}
	}
}

func TestCheckFiniteIsIdentityWithIdentityGradient(t *testing.T) {
	x := tensor.New(tensor.WithShape(2, 2), tensor.WithBacking([]float64{-1, 0.5, 2, 3}))
	_, err := gradcheck.Check([]*tensor.Dense{x}, func(g *gorgonia.ExprGraph, xs gorgonia.Nodes) (*gorgonia.Node, error) {
		c, err := CheckFinite(xs[0], "x")
		if err != nil {
			return nil, err
		}
		return SiLU(c)
	}, gradcheck.Options{})
	if err != nil {
		t.Fatal(err)
	}
	direct := checkFiniteOp{label: "direct"}.check(tensor.New(tensor.WithBacking([]float32{1, float32(math.Inf(1))})))
	if !errors.Is(direct, ErrNonFinite) {
		t.Errorf("errors.Is(%v, ErrNonFinite) = false", direct)
	}
	in := tensor.New(tensor.WithBacking([]float32{1, 2}))
	out, err := checkFiniteOp{label: "x"}.Do(in)
	if err != nil || out == gorgonia.Value(in) || fmt.Sprint(out.Data()) != "[1 2]" {
		t.Errorf("Do = %v, %v; want a copy [1 2]", out, err)
	}
}

func TestCheckFiniteBadInput(t *testing.T) {
	g := gorgonia.NewGraph()
	if _, err := CheckFinite(nil, "nil"); !errors.Is(err, ErrNilNode) {
		t.Errorf("nil: got %v", err)
	}
	i := gorgonia.NewVector(g, tensor.Int, gorgonia.WithShape(2), gorgonia.WithName("i"))
	if _, err := CheckFinite(i, "int"); !errors.Is(err, ErrDtype) {
		t.Errorf("int: got %v", err)
	}
}

// CheckFinite names the node where values first go bad.
func ExampleCheckFinite() {
	g := gorgonia.NewGraph()
	x := gorgonia.NewVector(g, tensor.Float64, gorgonia.WithShape(4), gorgonia.WithName("x"),
		gorgonia.WithValue(tensor.New(tensor.WithBacking([]float64{1, 0, 2, -1}))))
	logx := gorgonia.Must(gorgonia.Log(x))
	checked := gorgonia.Must(CheckFinite(logx, "log x"))
	gorgonia.Must(gorgonia.Sum(checked))
	m := gorgonia.NewTapeMachine(g)
	defer m.Close()
	err := m.RunAll()
	if nf, ok := FindNonFinite(err); ok {
		fmt.Printf("%q: %d NaN, %d −Inf, first at %v\n", nf.Label, nf.NaN, nf.NegInf, nf.Coord)
	}
	// Output:
	// "log x": 1 NaN, 1 −Inf, first at [1]
}

func TestCheckFiniteMasked(t *testing.T) {
	inf := math.Inf(1)
	op := checkFiniteOp{label: "scores", allowNegInf: true}
	for _, tc := range []struct {
		data  []float64
		bad   bool
		first int
	}{
		{[]float64{1, -inf, 2}, false, -1},
		{[]float64{-inf, -inf}, false, -1},
		{[]float64{-inf, 1, inf}, true, 2},
		{[]float64{-inf, math.NaN(), inf}, true, 1},
	} {
		err := op.check(tensor.New(tensor.WithBacking(tc.data)))
		nf, ok := FindNonFinite(err)
		if ok != tc.bad || ok && nf.First != tc.first {
			t.Errorf("%v: got %v, want bad=%v first=%d", tc.data, err, tc.bad, tc.first)
		}
	}
	// The gradient check does not allow −Inf.
	if err := (checkFiniteOp{label: "scores", gradient: true}).check(tensor.New(tensor.WithBacking([]float64{-inf}))); err == nil {
		t.Error("−Inf in a gradient passed")
	}
	g := gorgonia.NewGraph()
	x := gorgonia.NewVector(g, tensor.Float32, gorgonia.WithShape(2), gorgonia.WithName("x"))
	a, err1 := CheckFinite(x, "x")
	b, err2 := CheckFiniteMasked(x, "x")
	if err1 != nil || err2 != nil || a == b {
		t.Errorf("CheckFinite and CheckFiniteMasked of one input: %v %v, same node %v", err1, err2, a == b)
	}
}
