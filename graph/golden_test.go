package graph

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/actq/actq/internal/numtest"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

var (
	goldenOnce sync.Once
	goldenData *numtest.Golden
	goldenErr  error
)

// golden returns testdata/graph.json (written by scripts/goldens/gen_graph.py).
func golden(t testing.TB) *numtest.Golden {
	t.Helper()
	goldenOnce.Do(func() {
		goldenData, goldenErr = numtest.ReadGolden(filepath.Join("..", "testdata", "graph.json"))
	})
	if goldenErr != nil {
		t.Fatal(goldenErr)
	}
	return goldenData
}

// goldenCases returns the cases of op.
func goldenCases(t testing.TB, op string) []numtest.Case {
	var out []numtest.Case
	for _, c := range golden(t).Cases {
		if c.Op == op {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no golden cases for %q", op)
	}
	return out
}

func dtypeNamed(name string) tensor.Dtype {
	if name == "float32" {
		return tensor.Float32
	}
	return tensor.Float64
}

// goldenDense returns the case's array name as a tensor of dtype dt and
// the given shape.
func goldenDense(t testing.TB, c *numtest.Case, name string, dt tensor.Dtype, shape ...int) *tensor.Dense {
	t.Helper()
	v, err := c.F64(name)
	if err != nil {
		t.Fatal(err)
	}
	if n := tensor.Shape(shape).TotalSize(); n != len(v) {
		t.Fatalf("case %s: array %s has %d values, want %d for shape %v", c.Name, name, len(v), n, shape)
	}
	return denseFrom(dt, shape, v)
}

// goldenWeights returns the weights of a case: the arrays whose names are
// in shapes, renamed with prefix.
func goldenWeights(t testing.TB, c *numtest.Case, dt tensor.Dtype, prefix string, shapes map[string][]int) Weights {
	t.Helper()
	w := Weights{}
	for name, shape := range shapes {
		if _, ok := c.Arrays[name]; !ok {
			continue
		}
		w[prefix+name] = goldenDense(t, c, name, dt, shape...)
	}
	return w
}

// machine is one of the ways a graph is run in the golden tests.
type machine string

const (
	tapeGrad machine = "tape"     // TapeMachine with gorgonia.Grad (SymDiff)
	lispGrad machine = "lisp"     // LispMachine (DoDiff)
	tapeFwd  machine = "tape-fwd" // TapeMachine, forward only: register reuse as in evaluation
)

// runResult maps "y" and "d"+name to values read from a run.
type runResult map[string][]float64

// runGraph builds a graph with build, which returns the named inputs whose
// gradients are wanted (inputs and weights, by the golden's names) and the
// output y, then adds cost = Σ y ⊙ dy and runs it on m. It returns y and,
// unless m is tapeFwd, the gradients.
func runGraph(m machine, dt tensor.Dtype, dy *tensor.Dense,
	build func(g *gorgonia.ExprGraph) (wrt map[string]*gorgonia.Node, y *gorgonia.Node, err error)) (runResult, error) {
	g := gorgonia.NewGraph()
	wrt, y, err := build(g)
	if err != nil {
		return nil, err
	}
	if !y.Shape().Eq(dy.Shape()) {
		return nil, fmt.Errorf("output shape %v, want %v", y.Shape(), dy.Shape())
	}
	dyn := gorgonia.NewConstant(dy, gorgonia.WithName("test.dy"))
	prod, err := gorgonia.HadamardProd(y, dyn)
	if err != nil {
		return nil, err
	}
	cost, err := gorgonia.Sum(prod)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(wrt))
	for k := range wrt {
		names = append(names, k)
	}
	slices.Sort(names)
	reads := map[string]*gorgonia.Value{"y": new(gorgonia.Value)}
	gorgonia.Read(y, reads["y"])
	var vm gorgonia.VM
	switch m {
	case tapeGrad:
		nodes := make(gorgonia.Nodes, len(names))
		for i, k := range names {
			nodes[i] = wrt[k]
		}
		grads, err := gorgonia.Grad(cost, nodes...)
		if err != nil {
			return nil, err
		}
		for i, k := range names {
			reads["d"+k] = new(gorgonia.Value)
			gorgonia.Read(grads[i], reads["d"+k])
		}
		vm = gorgonia.NewTapeMachine(g)
	case lispGrad:
		vm = gorgonia.NewLispMachine(g)
	case tapeFwd:
		vm = gorgonia.NewTapeMachine(g)
	}
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		return nil, err
	}
	out := runResult{}
	for k, v := range reads {
		out[k] = float64sOf(*v)
	}
	if m != lispGrad {
		// A second run must give the same numbers: an op writing in place
		// into memory that is still in use (an input, a weight, a reshape's
		// source) shows up here.
		vm.Reset()
		if err := vm.RunAll(); err != nil {
			return nil, err
		}
		for k, v := range reads {
			if again := float64sOf(*v); !slices.Equal(again, out[k]) {
				return nil, fmt.Errorf("%s differs in a second run of the same graph: %v vs %v", k, again[:4], out[k][:4])
			}
		}
	}
	if m == lispGrad {
		for _, k := range names {
			gv, err := wrt[k].Grad()
			if err != nil {
				return nil, fmt.Errorf("gradient of %s: %w", k, err)
			}
			out["d"+k] = float64sOf(gv)
		}
	}
	return out, nil
}

func float64sOf(v gorgonia.Value) []float64 { return numtest.Float64s(v.Data()) }

// goldenTol is the tolerance of the graph goldens: |got − want| ≤ Abs·s +
// Rel·|want|, where s is the largest |want| in the array. The reference
// sums in another order than Gorgonia (BLAS blocking, PyTorch's
// reductions), so an element that is a small difference of large terms
// carries an error relative to the array's scale rather than its own; the
// Abs·s term allows for it.
type goldenTol struct{ Abs, Rel float64 }

var goldenTols = map[string]goldenTol{
	// float32: a few ULPs (2^−24 ≈ 6e-8) per accumulated term, summed over
	// up to a few dozen terms per element, with the softmax and norms in
	// between.
	"float32": {Abs: 2e-6, Rel: 2e-5},
	// float64: the same at 2^−53 ≈ 1.1e-16.
	"float64": {Abs: 1e-13, Rel: 1e-11},
}

// errStat is the largest deviation found in one comparison.
type errStat struct {
	maxAbs   float64 // max |got − want| / s (relative to the array's scale)
	maxExc   float64 // max |got − want| / (Abs·s + Rel·|want|): ≤ 1 passes
	where    string
	got, ref float64
}

func (e *errStat) merge(o errStat) {
	if o.maxExc > e.maxExc {
		e.maxExc, e.where, e.got, e.ref = o.maxExc, o.where, o.got, o.ref
	}
	e.maxAbs = math.Max(e.maxAbs, o.maxAbs)
}

func compareArray(name string, got, want []float64, tol goldenTol) errStat {
	var st errStat
	if len(got) != len(want) {
		return errStat{maxExc: math.Inf(1), where: fmt.Sprintf("%s: %d values, want %d", name, len(got), len(want))}
	}
	s := 0.0
	for _, w := range want {
		s = math.Max(s, math.Abs(w))
	}
	if s == 0 {
		s = 1
	}
	for i := range got {
		d := math.Abs(got[i] - want[i])
		if math.IsNaN(d) {
			d = math.Inf(1)
		}
		st.maxAbs = math.Max(st.maxAbs, d/s)
		if e := d / (tol.Abs*s + tol.Rel*math.Abs(want[i])); e > st.maxExc {
			st.maxExc, st.where, st.got, st.ref = e, fmt.Sprintf("%s[%d]", name, i), got[i], want[i]
		}
	}
	return st
}

// checkResult compares every array of res with the case's arrays of the
// same name, and for float32 also with the float64 reference (name+"64"),
// which float32 results must match within the same tolerance. It returns the
// largest deviation from PyTorch.
func checkResult(t *testing.T, c *numtest.Case, m machine, res runResult) errStat {
	t.Helper()
	tol := goldenTols[c.Dtype]
	var worst errStat
	names := make([]string, 0, len(res))
	for k := range res {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		for _, ref := range []string{k, k + "64"} {
			if ref == k+"64" && c.Dtype != "float32" {
				continue
			}
			want, err := c.F64(ref)
			if err != nil {
				t.Errorf("%s: %v", m, err)
				continue
			}
			st := compareArray(ref, res[k], want, tol)
			if st.maxExc > 1 {
				t.Errorf("%s: %s = %.9g, want %.9g (%.3g of the tolerance)", m, st.where, st.got, st.ref, st.maxExc)
			}
			if !strings.HasSuffix(ref, "64") || c.Dtype != "float32" {
				worst.merge(st)
			}
		}
	}
	return worst
}

// module is what the golden tests need of a layer: its output for an input
// and its parameters, named prefix + the golden's weight name.
type module interface {
	Forward(x *gorgonia.Node) (*gorgonia.Node, error)
	Params() gorgonia.Nodes
}

// checkModule runs the layer that build makes in a new graph, with the
// case's weights (named prefix+name, of the given shapes) and its x and dy,
// on each machine, compares the output and the gradients with respect to x
// and every parameter with the golden, and folds the largest deviation into
// worst.
func checkModule(t *testing.T, c *numtest.Case, dt tensor.Dtype, prefix string, shapes map[string][]int,
	worst map[string]*errStat, build func(g *gorgonia.ExprGraph, w Weights) (module, error)) {
	t.Helper()
	w := goldenWeights(t, c, dt, prefix, shapes)
	x := goldenDense(t, c, "x", dt, c.Shape...)
	dy := goldenDense(t, c, "dy", dt, c.Shape...)
	for _, m := range []machine{tapeFwd, tapeGrad, lispGrad} {
		res, err := runGraph(m, dt, dy, func(g *gorgonia.ExprGraph) (map[string]*gorgonia.Node, *gorgonia.Node, error) {
			l, err := build(g, w)
			if err != nil {
				return nil, nil, err
			}
			xn := gorgonia.NewTensor(g, dt, len(c.Shape), gorgonia.WithShape(c.Shape...), gorgonia.WithName("x"), gorgonia.WithValue(x.Clone()))
			y, err := l.Forward(xn)
			wrt := map[string]*gorgonia.Node{"x": xn}
			for _, p := range l.Params() {
				wrt[strings.TrimPrefix(p.Name(), prefix)] = p
			}
			return wrt, y, err
		})
		if err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		worst[c.Dtype].merge(checkResult(t, c, m, res))
	}
}

// newWorst returns the per-dtype largest deviations that checkModule fills
// in, and a function that logs them.
func newWorst(t *testing.T) (map[string]*errStat, func()) {
	worst := map[string]*errStat{"float32": {}, "float64": {}}
	return worst, func() {
		for dt, st := range worst {
			t.Logf("%s: max |error| / max |ref| = %.3g; max error / tolerance = %.3g at %s", dt, st.maxAbs, st.maxExc, st.where)
		}
	}
}
