package ops

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"github.com/actq/actq/internal/gradcheck"
	"github.com/actq/actq/internal/numtest"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

type nodeFn = func(*gorgonia.Node) (*gorgonia.Node, error)

var activationOps = []struct {
	op string // the golden generator's name
	fn nodeFn
}{
	{"gelu", GELU}, {"gelu_tanh", GELUTanh}, {"silu", SiLU}, {"relu", ReLU},
}

// inputNode returns an input node of the given dtype and shape (a scalar for
// an empty shape), bound to data.
func inputNode(g *gorgonia.ExprGraph, name string, dt tensor.Dtype, shape []int, data []float64) (*gorgonia.Node, error) {
	var n *gorgonia.Node
	var v gorgonia.Value
	if len(shape) == 0 {
		n = gorgonia.NewScalar(g, dt, gorgonia.WithName(name))
		if dt == tensor.Float32 {
			v = gorgonia.NewF32(float32(data[0]))
		} else {
			v = gorgonia.NewF64(data[0])
		}
	} else {
		n = gorgonia.NewTensor(g, dt, len(shape), gorgonia.WithShape(shape...), gorgonia.WithName(name))
		v = denseOf(dt, shape, data)
	}
	return n, gorgonia.Let(n, v)
}

func denseOf(dt tensor.Dtype, shape []int, data []float64) *tensor.Dense {
	if dt == tensor.Float32 {
		d := make([]float32, len(data))
		for i, v := range data {
			d[i] = float32(v)
		}
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(d))
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(append([]float64(nil), data...)))
}

func float64s(v gorgonia.Value) []float64 {
	switch d := v.Data().(type) {
	case float32:
		return []float64{float64(d)}
	case float64:
		return []float64{d}
	case []float32:
		out := make([]float64, len(d))
		for i, x := range d {
			out[i] = float64(x)
		}
		return out
	case []float64:
		return append([]float64(nil), d...)
	}
	panic(fmt.Sprintf("unexpected data %T", v.Data()))
}

// forwardBackward builds y = f(x) and cost = Σ y⊙dy, runs it on the tape
// machine (gradient from gorgonia.Grad, i.e. SymDiff) or the Lisp machine
// (DoDiff), and returns y and dx = ∂cost/∂x.
func forwardBackward(f nodeFn, lisp bool, dt tensor.Dtype, shape []int, x, dy []float64) (y, dx []float64, err error) {
	g := gorgonia.NewGraph()
	xn, err := inputNode(g, "x", dt, shape, x)
	if err != nil {
		return nil, nil, err
	}
	yn, err := f(xn)
	if err != nil {
		return nil, nil, err
	}
	dyn, err := inputNode(g, "dy", dt, shape, dy)
	if err != nil {
		return nil, nil, err
	}
	prod, err := gorgonia.HadamardProd(yn, dyn)
	if err != nil {
		return nil, nil, err
	}
	cost, err := gorgonia.Sum(prod)
	if err != nil {
		return nil, nil, err
	}
	var yv gorgonia.Value
	gorgonia.Read(yn, &yv)
	if lisp {
		m := gorgonia.NewLispMachine(g)
		defer m.Close()
		if err := m.RunAll(); err != nil {
			return nil, nil, err
		}
		gv, err := xn.Grad()
		if err != nil {
			return nil, nil, err
		}
		return float64s(yv), float64s(gv), nil
	}
	grads, err := gorgonia.Grad(cost, xn)
	if err != nil {
		return nil, nil, err
	}
	m := gorgonia.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		return nil, nil, err
	}
	return float64s(yv), float64s(grads[0].Value()), nil
}

// TestOpsMatchGoldens runs every golden case through real graphs on both
// machines, in the case's dtype and shape (scalars included), and compares
// with PyTorch within the contract's tolerance (or, where float32 PyTorch
// cancels, with its float64 result; see kernel.TestActivationGoldens).
func TestOpsMatchGoldens(t *testing.T) {
	golden, err := numtest.ReadGolden(filepath.Join("..", "testdata", "activations.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range activationOps {
		n := 0
		for ci := range golden.Cases {
			c := &golden.Cases[ci]
			if c.Op != a.op {
				continue
			}
			n++
			dt := tensor.Float64
			if c.Dtype == "float32" {
				dt = tensor.Float32
			}
			tol := numtest.ContractTol(c.Dtype)
			x, _ := c.F64("x")
			dy, _ := c.F64("dy")
			for _, lisp := range []bool{false, true} {
				y, dx, err := forwardBackward(a.fn, lisp, dt, c.Shape, x, dy)
				if err != nil {
					t.Fatalf("%s (lisp=%v): %v", c.Name, lisp, err)
				}
				for _, out := range []struct {
					what string
					got  []float64
				}{{"y", y}, {"dx", dx}} {
					want, err := c.F64(out.what)
					if err != nil {
						t.Fatal(err)
					}
					ref64, _ := c.F64(out.what + "64")
					for i := range want {
						ok := tol.Close(out.got[i], want[i])
						if !ok && ref64 != nil && !tol.Close(want[i], ref64[i]) {
							ok = tol.Close(out.got[i], ref64[i])
						}
						if !ok {
							t.Errorf("%s (lisp=%v): %s[%d] at x=%g: got %.9g, PyTorch %.9g", c.Name, lisp, out.what, i, x[i], out.got[i], want[i])
							break
						}
					}
				}
			}
		}
		if n == 0 {
			t.Errorf("no goldens for %s", a.op)
		}
	}
}

// TestGradientsFiniteDifference checks gradients through graphs where each
// op is used twice and its output has two consumers (so the machines must
// add the gradient contributions), against central differences, on the tape
// and Lisp machines.
func TestGradientsFiniteDifference(t *testing.T) {
	// Points stay more than eps away from ReLU's kink at 0.
	x := tensor.New(tensor.WithShape(2, 3), tensor.WithBacking([]float64{-2.5, -0.7, 0.2, 0.9, 1.6, 4}))
	w := tensor.New(tensor.WithShape(2, 3), tensor.WithBacking([]float64{0.3, -1.2, 0.8, 1.1, -0.4, 0.6}))
	for _, a := range activationOps {
		t.Run(a.op, func(t *testing.T) {
			build := func(g *gorgonia.ExprGraph, xs gorgonia.Nodes) (*gorgonia.Node, error) {
				h, err := a.fn(xs[0]) // f(x)
				if err != nil {
					return nil, err
				}
				xw, err := gorgonia.HadamardProd(xs[0], xs[1])
				if err != nil {
					return nil, err
				}
				h2, err := a.fn(xw) // the op again, on another input
				if err != nil {
					return nil, err
				}
				hh, err := gorgonia.HadamardProd(h, h2)
				if err != nil {
					return nil, err
				}
				return gorgonia.Add(hh, h) // h has two consumers
			}
			res, err := gradcheck.Check([]*tensor.Dense{x, w}, build, gradcheck.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("max error/tolerance: tape %.3g, lisp %.3g", res.MaxTapeErr, res.MaxLispErr)
		})
	}
}

// TestScalarGradient differentiates f(f(x)) at a scalar on both machines.
func TestScalarGradient(t *testing.T) {
	x := tensor.New(tensor.WithShape(), tensor.WithBacking([]float64{0.8}))
	for _, a := range activationOps {
		_, err := gradcheck.Check([]*tensor.Dense{x}, func(g *gorgonia.ExprGraph, xs gorgonia.Nodes) (*gorgonia.Node, error) {
			h, err := a.fn(xs[0])
			if err != nil {
				return nil, err
			}
			return a.fn(h)
		}, gradcheck.Options{})
		if err != nil {
			t.Errorf("%s: %v", a.op, err)
		}
	}
}

// TestFloat32Graph runs a float32 graph end to end and checks the value and
// gradient against the float64 kernels.
func TestFloat32Graph(t *testing.T) {
	x := []float64{-3, -1, -0.25, 0.5, 2, 7}
	dy := []float64{1, 2, 0.5, -1, 3, 1}
	for _, a := range activationOps {
		y32, dx32, err := forwardBackward(a.fn, false, tensor.Float32, []int{2, 3}, x, dy)
		if err != nil {
			t.Fatal(err)
		}
		y64, dx64, err := forwardBackward(a.fn, false, tensor.Float64, []int{2, 3}, x, dy)
		if err != nil {
			t.Fatal(err)
		}
		for i := range x {
			if !numtest.Contract32.Close(y32[i], y64[i]) || !numtest.Contract32.Close(dx32[i], dx64[i]) {
				t.Errorf("%s at %g: float32 (%g, %g), float64 (%g, %g)", a.op, x[i], y32[i], dx32[i], y64[i], dx64[i])
			}
		}
	}
}

// TestReLUGradAtZeroUnlikeRectify is the regression test for the ReLU′(0)
// convention: ours gives 0 (PyTorch, JAX); Gorgonia's Rectify gives 1.
func TestReLUGradAtZeroUnlikeRectify(t *testing.T) {
	x := []float64{-1, 0, 2}
	_, dx, err := forwardBackward(ReLU, false, tensor.Float64, []int{3}, x, []float64{1, 1, 1})
	if err != nil {
		t.Fatal(err)
	}
	if want := []float64{0, 0, 1}; fmt.Sprint(dx) != fmt.Sprint(want) {
		t.Errorf("ReLU′(%v) = %v, want %v", x, dx, want)
	}
	_, rdx, err := forwardBackward(gorgonia.Rectify, false, tensor.Float64, []int{3}, x, []float64{1, 1, 1})
	if err != nil {
		t.Fatal(err)
	}
	if rdx[1] != 1 {
		t.Logf("Gorgonia's Rectify′(0) is now %v (was 1): the contrast this test documents has changed", rdx[1])
	}
}

// TestBadInput checks that nil nodes and non-float dtypes are errors at
// graph-build time wrapping the sentinel errors, and never panic.
func TestBadInput(t *testing.T) {
	g := gorgonia.NewGraph()
	inputs := []struct {
		name string
		node *gorgonia.Node
		want error
	}{
		{"nil", nil, ErrNilNode},
		{"int", gorgonia.NewMatrix(g, tensor.Int, gorgonia.WithShape(2, 2), gorgonia.WithName("i")), ErrDtype},
		{"int32 scalar", gorgonia.NewScalar(g, tensor.Int32, gorgonia.WithName("i32")), ErrDtype},
		{"bool", gorgonia.NewVector(g, tensor.Bool, gorgonia.WithShape(3), gorgonia.WithName("b")), ErrDtype},
		{"uint8", gorgonia.NewVector(g, tensor.Uint8, gorgonia.WithShape(3), gorgonia.WithName("u8")), ErrDtype},
	}
	for _, a := range activationOps {
		for _, in := range inputs {
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Errorf("%s(%s) panicked: %v", a.op, in.name, r)
					}
				}()
				n, err := a.fn(in.node)
				if !errors.Is(err, in.want) || n != nil {
					t.Errorf("%s(%s) = %v, %v; want nil and %v", a.op, in.name, n, err, in.want)
				}
			}()
		}
	}
}

// TestOpsAreDistinct checks that every forward and gradient op hashes
// differently, so Gorgonia never merges two of them into one node, and that
// applying two different ops to one input gives two nodes.
func TestOpsAreDistinct(t *testing.T) {
	seen := map[uint32]string{}
	for _, a := range []activation{actGELU, actGELUTanh, actSiLU, actReLU} {
		for _, op := range []interface {
			Hashcode() uint32
			String() string
		}{activationOp{a}, activationGradOp{a}} {
			if prev, dup := seen[op.Hashcode()]; dup {
				t.Errorf("%v and %v hash alike", op, prev)
			}
			seen[op.Hashcode()] = op.String()
		}
	}
	g := gorgonia.NewGraph()
	x := gorgonia.NewVector(g, tensor.Float64, gorgonia.WithShape(3), gorgonia.WithName("x"))
	nodes := map[*gorgonia.Node]string{}
	for _, a := range activationOps {
		n, err := a.fn(x)
		if err != nil {
			t.Fatal(err)
		}
		if prev, dup := nodes[n]; dup {
			t.Errorf("%s(x) and %s(x) are one node", a.op, prev)
		}
		nodes[n] = a.op
	}
}

// TestValuesAreNotMutated checks the forward and backward ops leave their
// inputs unchanged.
func TestValuesAreNotMutated(t *testing.T) {
	for _, a := range []activation{actGELU, actGELUTanh, actSiLU, actReLU} {
		x := tensor.New(tensor.WithBacking([]float32{-1, 0, 1, 2}))
		dy := tensor.New(tensor.WithBacking([]float32{1, 2, 3, 4}))
		if _, err := (activationOp{a}).Do(x); err != nil {
			t.Fatal(err)
		}
		if _, err := (activationGradOp{a}).Do(x, dy); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(x.Data(), dy.Data()) != "[-1 0 1 2] [1 2 3 4]" {
			t.Errorf("%v mutated its inputs: %v %v", a, x.Data(), dy.Data())
		}
	}
}

// TestDoRejectsBadValues checks the run-time checks of Do: wrong arity,
// mismatched lengths and non-float values are errors.
func TestDoRejectsBadValues(t *testing.T) {
	op, gop := activationOp{actGELU}, activationGradOp{actGELU}
	f32 := tensor.New(tensor.WithBacking([]float32{1, 2}))
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"no inputs", func() error { _, err := op.Do(); return err }()},
		{"int tensor", func() error { _, err := op.Do(tensor.New(tensor.WithBacking([]int{1}))); return err }()},
		{"grad length mismatch", func() error {
			_, err := gop.Do(f32, tensor.New(tensor.WithBacking([]float32{1, 2, 3})))
			return err
		}()},
		{"grad dtype mismatch", func() error {
			_, err := gop.Do(f32, tensor.New(tensor.WithBacking([]float64{1, 2})))
			return err
		}()},
	} {
		if tc.err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

// TestLargeTensorParallel checks that a tensor large enough to be split
// across goroutines gives the same values as the single-goroutine kernel.
func TestLargeTensorParallel(t *testing.T) {
	for _, a := range []activation{actGELU, actGELUTanh, actSiLU, actReLU} {
		n := 4*a.grain(true) + 17
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(math.Sin(float64(i))) * 6
		}
		got, err := (activationOp{a}).Do(tensor.New(tensor.WithBacking(x)))
		if err != nil {
			t.Fatal(err)
		}
		want := make([]float32, n)
		if err := forward(a, want, [2][]float32{x}); err != nil {
			t.Fatal(err)
		}
		for i, v := range got.Data().([]float32) {
			if v != want[i] {
				t.Fatalf("%v: element %d = %g, want %g", a, i, v, want[i])
			}
		}
	}
}

// TestUsePreallocDo checks the in-place paths the tape machine takes (the
// result written over x, or dx over dy) against Do, and that a value that
// cannot hold the result is refused (the machine then falls back to Do).
func TestUsePreallocDo(t *testing.T) {
	mk := func() (*tensor.Dense, *tensor.Dense) {
		return tensor.New(tensor.WithShape(2, 3), tensor.WithBacking([]float64{-2, -0.5, 0, 0.5, 1, 3})),
			tensor.New(tensor.WithShape(2, 3), tensor.WithBacking([]float64{1, -2, 3, 0.5, 2, -1}))
	}
	for _, a := range []activation{actGELU, actGELUTanh, actSiLU, actReLU} {
		x, dy := mk()
		wantY, err := activationOp{a}.Do(x)
		if err != nil {
			t.Fatal(err)
		}
		wantDx, err := activationGradOp{a}.Do(x, dy)
		if err != nil {
			t.Fatal(err)
		}
		gotY, err := activationOp{a}.UsePreallocDo(x, x)
		if err != nil || gotY != x {
			t.Fatalf("%v forward in place: %v (same value: %v)", a, err, gotY == x)
		}
		x, dy = mk()
		gotDx, err := activationGradOp{a}.UsePreallocDo(dy, x, dy)
		if err != nil || gotDx != dy {
			t.Fatalf("%v backward in place: %v", a, err)
		}
		if fmt.Sprint(gotY.Data(), gotDx.Data()) != fmt.Sprint(wantY.Data(), wantDx.Data()) {
			t.Errorf("%v in place: got %v %v, want %v %v", a, gotY.Data(), gotDx.Data(), wantY.Data(), wantDx.Data())
		}
		s := gorgonia.NewF64(0.5)
		if _, err := (activationOp{a}).UsePreallocDo(s, gorgonia.NewF64(0.5)); err != nil {
			t.Errorf("%v scalar in place: %v", a, err)
		}
		for _, bad := range []gorgonia.Value{
			tensor.New(tensor.WithShape(3, 2), tensor.WithBacking(make([]float64, 6))), // shape
			tensor.New(tensor.WithShape(2, 3), tensor.WithBacking(make([]float32, 6))), // dtype
			gorgonia.NewF64(0), // kind
		} {
			x, _ := mk()
			if _, err := (activationOp{a}).UsePreallocDo(bad, x); !errors.Is(err, ErrValue) {
				t.Errorf("%v into %T %v: got %v, want ErrValue", a, bad, bad.Shape(), err)
			}
		}
	}
}
