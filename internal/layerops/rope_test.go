package layerops

import (
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/actq/actq/internal/gradcheck"
	"github.com/actq/actq/internal/numtest"
	"github.com/actq/actq/internal/opkit"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// ropeParams are a RoPE golden case's parameters.
type ropeParams struct {
	Theta     float64 `json:"theta"`
	Positions []int   `json:"positions"`
}

// maxRel returns max|got − want| / max|want|.
func maxRel(got, want []float64) float64 {
	var d, s float64
	for i := range want {
		d = math.Max(d, math.Abs(got[i]-want[i]))
		s = math.Max(s, math.Abs(want[i]))
	}
	return d / s
}

// TestRoPEGolden compares RoPE's output and gradient (on both machines)
// with PyTorch's rotate_half formula (scripts/goldens/gen_llama.py), for
// two θ, several shapes and position offsets. Float64 cases use exact
// angles and must agree to rounding. A float32 case is compared with the
// float64 result of its float32 inputs, which it must match to float32
// rounding (the angles here are float64), and, for the record, with
// PyTorch's float32 result, whose float32 angles lose up to p·2⁻²⁴.
func TestRoPEGolden(t *testing.T) {
	g, err := numtest.ReadGolden(filepath.Join("..", "..", "testdata", "llama", "ops.json.gz"))
	if err != nil {
		t.Fatal(err)
	}
	worst := map[string]float64{}
	n := 0
	for _, c := range g.Cases {
		if c.Op != "rope" {
			continue
		}
		n++
		var p ropeParams
		if err := c.ParamsInto(&p); err != nil {
			t.Fatal(err)
		}
		dt := tensor.Float64
		if c.Dtype == "float32" {
			dt = tensor.Float32
		}
		arr := func(name string) []float64 {
			v, err := c.F64(name)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		x := denseOf(dt, c.Shape, arr("x"))
		dy := denseOf(dt, c.Shape, arr("dy"))
		for _, m := range []string{"tape", "lisp"} {
			y, dx := ropeRun(t, m, x, dy, p.Theta, p.Positions[0])
			// Float64: the same formula in the same precision (cos, sin and
			// θ^e may differ in the last bit from PyTorch's). Float32:
			// one rounding of the exact result.
			refs := map[string]float64{"y": 1e-14, "dx": 1e-14}
			if dt == tensor.Float32 {
				refs = map[string]float64{"y64": 1.2e-7, "dx64": 1.2e-7, "y": 2e-6, "dx": 2e-6}
			}
			for ref, tol := range refs {
				got := y
				if strings.HasPrefix(ref, "dx") {
					got = dx
				}
				e := maxRel(got, arr(ref))
				if e > tol {
					t.Errorf("%s (%s): %s differs by %.3g·max|ref|, want ≤ %g", c.Name, m, ref, e, tol)
				}
				key := c.Dtype + " vs " + ref
				worst[key] = math.Max(worst[key], e)
			}
		}
	}
	if n != 16 {
		t.Errorf("%d RoPE cases, want 16", n)
	}
	for k, v := range worst {
		t.Logf("%s: max error %.3g·max|ref|", k, v)
	}
}

// denseOf returns vals as a tensor of dtype dt and the given shape.
func denseOf(dt tensor.Dtype, shape []int, vals []float64) *tensor.Dense {
	if dt == tensor.Float32 {
		v := make([]float32, len(vals))
		for i, x := range vals {
			v[i] = float32(x)
		}
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(v))
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(append([]float64(nil), vals...)))
}

// ropeRun returns y = RoPE(x) and the gradient of Σ y ⊙ dy with respect
// to x, from the tape machine (gorgonia.Grad) or the Lisp machine.
func ropeRun(t *testing.T, machine string, x, dy *tensor.Dense, theta float64, offset int) (y, dx []float64) {
	t.Helper()
	g := gorgonia.NewGraph()
	xn := gorgonia.NodeFromAny(g, x.Clone(), gorgonia.WithName("x"))
	yn, err := RoPE(xn, theta, offset)
	if err != nil {
		t.Fatal(err)
	}
	prod, err := gorgonia.HadamardProd(yn, gorgonia.NodeFromAny(g, dy.Clone(), gorgonia.WithName("dy")))
	if err != nil {
		t.Fatal(err)
	}
	cost, err := gorgonia.Sum(prod)
	if err != nil {
		t.Fatal(err)
	}
	var yv, dxv gorgonia.Value
	gorgonia.Read(yn, &yv)
	var vm gorgonia.VM
	if machine == "tape" {
		grads, err := gorgonia.Grad(cost, xn)
		if err != nil {
			t.Fatal(err)
		}
		gorgonia.Read(grads[0], &dxv)
		vm = gorgonia.NewTapeMachine(g)
	} else {
		vm = gorgonia.NewLispMachine(g)
	}
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	if machine != "tape" {
		if dxv, err = xn.Grad(); err != nil {
			t.Fatal(err)
		}
	}
	return floats(yv), floats(dxv)
}

// TestRoPE checks RoPE's gradient against central differences on both
// machines (with the non-uniform upstream gradient of gradcheck), that a
// rotation keeps each pair's norm and that position 0 is the identity,
// and its argument errors.
func TestRoPE(t *testing.T) {
	for _, offset := range []int{0, 7} {
		inputs := []*tensor.Dense{randDense(1, tensor.Float64, 2, 3, 5, 8)}
		if _, err := gradcheck.Check(inputs, func(g *gorgonia.ExprGraph, xs gorgonia.Nodes) (*gorgonia.Node, error) {
			y, err := RoPE(xs[0], 10000, offset)
			if err != nil {
				return nil, err
			}
			return gorgonia.Square(y) // a nonlinear function of y, so dy varies with x
		}, gradcheck.Options{}); err != nil {
			t.Errorf("offset %d: %v", offset, err)
		}
	}

	const dh = 6
	x := randDense(2, tensor.Float64, 1, 2, 4, dh)
	vs := run(t, []*tensor.Dense{x}, func(xs gorgonia.Nodes) (gorgonia.Nodes, error) {
		y, err := RoPE(xs[0], 500, 0)
		return gorgonia.Nodes{y}, err
	})
	xv, y := x.Float64s(), floats(vs[0])
	for lo := 0; lo < len(xv); lo += dh {
		pos := (lo / dh) % 4
		for i := range dh / 2 {
			a, b := xv[lo+i], xv[lo+i+dh/2]
			c, d := y[lo+i], y[lo+i+dh/2]
			if e := math.Abs(math.Hypot(a, b) - math.Hypot(c, d)); e > 1e-15 {
				t.Errorf("position %d, pair %d: norm %g → %g", pos, i, math.Hypot(a, b), math.Hypot(c, d))
			}
			if pos == 0 && (a != c || b != d) {
				t.Errorf("position 0, pair %d: (%g, %g) → (%g, %g), want unchanged", i, a, b, c, d)
			}
		}
	}

	g := gorgonia.NewGraph()
	node := func(name string, dt tensor.Dtype, shape ...int) *gorgonia.Node {
		return gorgonia.NewTensor(g, dt, len(shape), gorgonia.WithShape(shape...), gorgonia.WithName(name))
	}
	ok := node("ok", tensor.Float32, 1, 2, 3, 4)
	for _, c := range []struct {
		name   string
		x      *gorgonia.Node
		theta  float64
		offset int
		want   error
	}{
		{"nil", nil, 1e4, 0, opkit.ErrNilNode},
		{"int", node("int", tensor.Int, 1, 2, 3, 4), 1e4, 0, opkit.ErrDtype},
		{"rank 3", node("r3", tensor.Float32, 2, 3, 4), 1e4, 0, opkit.ErrShape},
		{"odd dh", node("odd", tensor.Float32, 1, 2, 3, 5), 1e4, 0, opkit.ErrShape},
		{"theta 0", ok, 0, 0, opkit.ErrValue},
		{"theta NaN", ok, math.NaN(), 0, opkit.ErrValue},
		{"theta Inf", ok, math.Inf(1), 0, opkit.ErrValue},
		{"negative offset", ok, 1e4, -1, opkit.ErrValue},
	} {
		if _, err := RoPE(c.x, c.theta, c.offset); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
	// The offset and θ are part of the op's identity: Gorgonia must not
	// merge two rotations of one input.
	a, err := RoPE(ok, 1e4, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		theta  float64
		offset int
	}{{1e4, 1}, {1e4 + 1, 0}} {
		b, err := RoPE(ok, c.theta, c.offset)
		if err != nil {
			t.Fatal(err)
		}
		if a == b {
			t.Errorf("RoPE(θ=%g, offset=%d) merged with RoPE(θ=1e4, offset=0)", c.theta, c.offset)
		}
	}
}

// TestTransposeLast checks TransposeLast against gorgonia.Transpose for
// ranks 2 to 4 (and matrices larger than Transpose's tiles), and its
// gradient on both machines.
func TestTransposeLast(t *testing.T) {
	for _, shape := range [][]int{{3, 5}, {2, 3, 4}, {2, 3, 4, 5}, {2, 37, 70}} {
		r := len(shape)
		perm := make([]int, r)
		for i := range perm {
			perm[i] = i
		}
		perm[r-2], perm[r-1] = r-1, r-2
		for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
			vs := run(t, []*tensor.Dense{randDense(1, dt, shape...)}, func(xs gorgonia.Nodes) (gorgonia.Nodes, error) {
				got, err := TransposeLast(xs[0])
				if err != nil {
					return nil, err
				}
				want, err := gorgonia.Transpose(xs[0], perm...)
				return gorgonia.Nodes{got, want}, err
			})
			if !vs[0].Shape().Eq(vs[1].Shape()) || !equal(floats(vs[0]), floats(vs[1])) {
				t.Errorf("%v %v: TransposeLast differs from Transpose%v", shape, dt, perm)
			}
		}
		if tensor.Shape(shape).TotalSize() > 200 {
			continue
		}
		if _, err := gradcheck.Check([]*tensor.Dense{randDense(2, tensor.Float64, shape...)}, func(g *gorgonia.ExprGraph, xs gorgonia.Nodes) (*gorgonia.Node, error) {
			y, err := TransposeLast(xs[0])
			if err != nil {
				return nil, err
			}
			return gorgonia.Square(y)
		}, gradcheck.Options{}); err != nil {
			t.Errorf("%v: %v", shape, err)
		}
	}
	g := gorgonia.NewGraph()
	v := gorgonia.NewVector(g, tensor.Float32, gorgonia.WithShape(3), gorgonia.WithName("v"))
	if _, err := TransposeLast(v); !errors.Is(err, opkit.ErrShape) {
		t.Errorf("vector: got %v, want ErrShape", err)
	}
	if _, err := TransposeLast(nil); !errors.Is(err, opkit.ErrNilNode) {
		t.Errorf("nil: got %v, want ErrNilNode", err)
	}
}
