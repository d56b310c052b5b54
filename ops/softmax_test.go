package ops

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/actq/actq/internal/gradcheck"
	"github.com/actq/actq/internal/numtest"
	"github.com/actq/actq/ops/kernel"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// softmaxFn is Softmax or LogSoftmax.
type softmaxFn func(x *gorgonia.Node, axis ...int) (*gorgonia.Node, error)

func softmaxOf(log bool) softmaxFn {
	if log {
		return LogSoftmax
	}
	return Softmax
}

// softmaxTape builds y = f(x, axis...) and dx = Backpropagate(y, dy)
// and runs them on a tape machine, returning y and dx.
func softmaxTape(t testing.TB, f softmaxFn, x, dy *tensor.Dense, axis ...int) (y, dx []float64) {
	t.Helper()
	g := gorgonia.NewGraph()
	xn := gorgonia.NodeFromAny(g, x, gorgonia.WithName("x"))
	dyn := gorgonia.NodeFromAny(g, dy, gorgonia.WithName("dy"))
	yn, err := f(xn, axis...)
	if err != nil {
		t.Fatal(err)
	}
	grads, err := gorgonia.Backpropagate(gorgonia.Nodes{yn}, gorgonia.Nodes{dyn}, gorgonia.Nodes{xn})
	if err != nil {
		t.Fatal(err)
	}
	m := gorgonia.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	return float64s(yn.Value()), float64s(grads[0].Value())
}

// softmaxLisp computes y = f(x, axis...) and the gradient of
// Σ w⊙y with respect to x on the Lisp machine (DoDiff), for the given w.
func softmaxLisp(t testing.TB, f softmaxFn, x, w *tensor.Dense, axis ...int) (y, dx []float64) {
	t.Helper()
	g := gorgonia.NewGraph()
	xn := gorgonia.NodeFromAny(g, x, gorgonia.WithName("x"))
	wn := gorgonia.NewConstant(w, gorgonia.WithName("w"))
	yn, err := f(xn, axis...)
	if err != nil {
		t.Fatal(err)
	}
	cost := gorgonia.Must(gorgonia.Sum(gorgonia.Must(gorgonia.HadamardProd(yn, wn))))
	_ = cost
	m := gorgonia.NewLispMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	gv, err := xn.Grad()
	if err != nil {
		t.Fatal(err)
	}
	return float64s(yn.Value()), float64s(gv)
}

// TestSoftmaxGoldens compares forward and backward, on the tape machine,
// with PyTorch 1.13 (testdata/softmax.json, from
// scripts/goldens/gen_softmax.py) within the contract's tolerance, and
// reports the largest error seen per dtype in units of that tolerance.
func TestSoftmaxGoldens(t *testing.T) {
	golden, err := numtest.ReadGolden("../testdata/softmax.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(golden.Cases) == 0 {
		t.Fatal("no cases")
	}
	worst := map[string]float64{}
	worstAt := map[string]string{}
	for _, c := range golden.Cases {
		var p struct{ Axis int }
		if err := c.ParamsInto(&p); err != nil {
			t.Fatal(err)
		}
		arr := func(name string) []float64 {
			v, err := c.F64(name)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		dt := tensor.Float64
		if c.Dtype == "float32" {
			dt = tensor.Float32
		}
		y, dx := softmaxTape(t, softmaxOf(c.Op == "log_softmax"), denseOf(dt, c.Shape, arr("x")), denseOf(dt, c.Shape, arr("dy")), p.Axis)
		tol := numtest.ContractTol(c.Dtype)
		for _, r := range []struct {
			what      string
			got, want []float64
		}{{"y", y, arr("y")}, {"dx", dx, arr("dx")}} {
			for i := range r.want {
				e := tol.Excess(r.got[i], r.want[i])
				key := c.Dtype + " " + r.what
				if e > worst[key] {
					worst[key] = e
					worstAt[key] = fmt.Sprintf("%s[%d]: got %.9g, want %.9g", c.Name, i, r.got[i], r.want[i])
				}
				if e > 1 {
					t.Errorf("%s: %s[%d] = %.9g, want %.9g (%.3g× the tolerance)", c.Name, r.what, i, r.got[i], r.want[i], e)
				}
			}
		}
	}
	for _, key := range []string{"float32 y", "float32 dx", "float64 y", "float64 dx"} {
		t.Logf("largest error, %s: %.3g of the tolerance (%s)", key, worst[key], worstAt[key])
	}
}

// Gorgonia's SoftMax faults, each shown wrong in Gorgonia v0.9.18 and
// right here. If a Gorgonia half fails,
// Gorgonia has fixed its bug and that half can go.

// TestGorgoniaRowMaxFault: Gorgonia's last-axis kernel starts every row's
// maximum from the tensor's first element, so the rows after the first
// overflow (e^1000) or underflow (e^−1000 summed to 0) into NaN.
func TestGorgoniaRowMaxFault(t *testing.T) {
	for _, tc := range []struct {
		dt   tensor.Dtype
		x    []float64
		want []float64
	}{
		{tensor.Float64, []float64{0, 0, 1000, 0}, []float64{0.5, 0.5, 1, 0}},
		{tensor.Float64, []float64{0, 0, -1000, -1001}, []float64{0.5, 0.5, 1 / (1 + math.Exp(-1)), 1 / (1 + math.E)}},
		{tensor.Float32, []float64{0, 0, 100, 0}, []float64{0.5, 0.5, 1, 0}},
	} {
		theirs := runForward(t, gorgonia.SoftMax, denseOf(tc.dt, []int{2, 2}, tc.x))
		if !hasNaN(theirs) {
			t.Errorf("%v %v: gorgonia.SoftMax = %v, expected its NaN bug", tc.dt, tc.x, theirs)
		}
		ours := runForward(t, Softmax, denseOf(tc.dt, []int{2, 2}, tc.x))
		for i := range ours {
			if math.Abs(ours[i]-tc.want[i]) > 1e-7 {
				t.Errorf("%v %v: Softmax = %v, want %v", tc.dt, tc.x, ours, tc.want)
				break
			}
		}
	}
}

func runForward(t *testing.T, f softmaxFn, x *tensor.Dense, axis ...int) []float64 {
	t.Helper()
	g := gorgonia.NewGraph()
	xn := gorgonia.NodeFromAny(g, x, gorgonia.WithName("x"))
	yn, err := f(xn, axis...)
	if err != nil {
		t.Fatal(err)
	}
	m := gorgonia.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	return float64s(yn.Value())
}

func hasNaN(x []float64) bool {
	for _, v := range x {
		if math.IsNaN(v) {
			return true
		}
	}
	return false
}

// TestGorgoniaMergesSoftmaxAndLogSoftmax: Gorgonia's softmaxOp leaves isLog
// out of its hash, so SoftMax(x) and LogSoftMax(x) are one node.
func TestGorgoniaMergesSoftmaxAndLogSoftmax(t *testing.T) {
	g := gorgonia.NewGraph()
	x := gorgonia.NodeFromAny(g, denseOf(tensor.Float64, []int{2, 3}, []float64{1, 2, 3, 4, 5, 7}), gorgonia.WithName("x"))
	gs, gl := gorgonia.Must(gorgonia.SoftMax(x)), gorgonia.Must(gorgonia.LogSoftMax(x))
	if gs != gl {
		t.Errorf("gorgonia.SoftMax(x) and LogSoftMax(x) are distinct nodes: expected them merged")
	}
	os, ol := gorgonia.Must(Softmax(x)), gorgonia.Must(LogSoftmax(x))
	if os == ol {
		t.Fatal("Softmax(x) and LogSoftmax(x) are one node")
	}
	// Different axes are different nodes too; the same axis spelt two
	// ways is one node.
	if gorgonia.Must(Softmax(x, 0)) == os {
		t.Error("Softmax(x, 0) and Softmax(x) are one node")
	}
	if gorgonia.Must(Softmax(x, 1)) != os || gorgonia.Must(Softmax(x, -1)) != os {
		t.Error("Softmax(x, 1), Softmax(x, -1) and Softmax(x) are distinct nodes")
	}
	m := gorgonia.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	p, lp := float64s(os.Value()), float64s(ol.Value())
	for i := range p {
		if math.Abs(math.Log(p[i])-lp[i]) > 1e-14 || p[i] <= 0 || p[i] >= 1 {
			t.Fatalf("Softmax = %v, LogSoftmax = %v", p, lp)
		}
	}
}

// TestGorgoniaLogRewritesSoftmax: Gorgonia's Log(SoftMax(x)) stabilisation
// turns the SoftMax node itself into a LogSoftMax, so every other consumer
// of the probabilities sees log-probabilities.
func TestGorgoniaLogRewritesSoftmax(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    softmaxFn
		bug  bool
	}{{"gorgonia", gorgonia.SoftMax, true}, {"actq", Softmax, false}} {
		g := gorgonia.NewGraph()
		x := gorgonia.NodeFromAny(g, denseOf(tensor.Float64, []int{1, 3}, []float64{1, 2, 3}), gorgonia.WithName("x"))
		p, err := tc.f(x)
		if err != nil {
			t.Fatal(err)
		}
		lp := gorgonia.Must(gorgonia.Log(p))
		m := gorgonia.NewTapeMachine(g)
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		probs, logs := float64s(p.Value()), float64s(lp.Value())
		m.Close()
		negative := false
		for _, v := range probs {
			negative = negative || v < 0
		}
		if negative != tc.bug {
			t.Errorf("%s: p = %v after adding Log(p) (bug expected: %v)", tc.name, probs, tc.bug)
		}
		if !tc.bug {
			want := []float64{0.09003057317038046, 0.24472847105479767, 0.6652409557748219} // softmax([1, 2, 3]), mpmath
			for i := range want {
				if math.Abs(probs[i]-want[i]) > 1e-15 || math.Abs(logs[i]-math.Log(want[i])) > 1e-15 {
					t.Errorf("%s: p = %v, log p = %v", tc.name, probs, logs)
					break
				}
			}
		}
	}
}

// TestGorgoniaColumnVectorGradient: for an (n, 1) column, Gorgonia's
// forward pass takes axis 0 but its backward pass the raw axis −1, so its
// gradient fails the finite-difference check. Ours, asked for axis 0,
// passes it.
func TestGorgoniaColumnVectorGradient(t *testing.T) {
	x := denseOf(tensor.Float64, []int{4, 1}, []float64{0.3, -1.2, 2.0, 0.7})
	_, err := gradcheck.Check([]*tensor.Dense{x}, func(g *gorgonia.ExprGraph, xs gorgonia.Nodes) (*gorgonia.Node, error) {
		return gorgonia.SoftMax(xs[0])
	}, gradcheck.Options{})
	if err == nil {
		t.Error("gorgonia.SoftMax on a column passed the gradient check: expected its axis bug")
	}
	if _, err := gradcheck.Check([]*tensor.Dense{x}, func(g *gorgonia.ExprGraph, xs gorgonia.Nodes) (*gorgonia.Node, error) {
		return Softmax(xs[0], 0)
	}, gradcheck.Options{}); err != nil {
		t.Error(err)
	}
}

// TestFullyMasked: a slice that is entirely −Inf gives zeros (LogSoftmax:
// −Inf) and a zero gradient on both machines; PyTorch gives NaN. The other
// slices, one partly masked, are unaffected.
func TestFullyMasked(t *testing.T) {
	inf := math.Inf(1)
	x := []float64{
		0, 1, 2,
		-inf, -inf, -inf,
		-inf, 0, math.Log(3),
	}
	dy := []float64{1, 2, 3, 4, -5, 6, 7, 1, 2} // w on the Lisp machine
	wantY := []float64{0.09003057317038046, 0.24472847105479767, 0.6652409557748219, 0, 0, 0, 0, 0.25, 0.75}
	wantLogY := []float64{-2.4076059644443806, -1.4076059644443804, -0.4076059644443804, -inf, -inf, -inf, -inf, math.Log(0.25), math.Log(0.75)}
	// dx for rows 0 and 2 from the formulas; row 1 (fully masked) is 0.
	s0 := 1*wantY[0] + 2*wantY[1] + 3*wantY[2]
	wantDx := []float64{wantY[0] * (1 - s0), wantY[1] * (2 - s0), wantY[2] * (3 - s0), 0, 0, 0, 0, 0.25 * (1 - 1.75), 0.75 * (2 - 1.75)}
	wantLogDx := []float64{1 - 6*wantY[0], 2 - 6*wantY[1], 3 - 6*wantY[2], 0, 0, 0, 7, 1 - 10*0.25, 2 - 10*0.75}
	for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
		for _, log := range []bool{false, true} {
			wy, wdx := wantY, wantDx
			if log {
				wy, wdx = wantLogY, wantLogDx
			}
			for _, machine := range []string{"tape", "lisp"} {
				var y, dx []float64
				if machine == "tape" {
					y, dx = softmaxTape(t, softmaxOf(log), denseOf(dt, []int{3, 3}, x), denseOf(dt, []int{3, 3}, dy))
				} else {
					y, dx = softmaxLisp(t, softmaxOf(log), denseOf(dt, []int{3, 3}, x), denseOf(dt, []int{3, 3}, dy))
				}
				for i := range x {
					if !closeOrSame(y[i], wy[i], 1e-6) || !closeOrSame(dx[i], wdx[i], 1e-6) {
						t.Errorf("%v log=%v %s: [%d]: y = %v, dx = %v; want %v, %v", dt, log, machine, i, y[i], dx[i], wy[i], wdx[i])
					}
				}
				for i := 3; i < 6; i++ {
					if math.Float64bits(dx[i]) != 0 {
						t.Errorf("%v log=%v %s: fully masked dx[%d] = %v, want +0", dt, log, machine, i, dx[i])
					}
				}
			}
		}
	}
}

func closeOrSame(got, want, rel float64) bool {
	return got == want || math.Abs(got-want) <= rel*math.Max(1, math.Abs(want))
}

// TestSoftmaxProperties: over random tensors and axes, softmax slices sum
// to 1 with every value in [0, 1], LogSoftmax is the log of Softmax, and
// adding a constant changes nothing (bit for bit, with values chosen so
// that x + c is exact).
func TestSoftmaxProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	shapes := [][]int{{5}, {3, 4}, {2, 3, 4}, {4, 1, 6}, {2, 2, 3, 5}, {40, 300}}
	for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
		for _, shape := range shapes {
			rank := len(shape)
			axis := r.IntN(2*rank) - rank
			size := tensor.Shape(shape).TotalSize()
			x, xc := make([]float64, size), make([]float64, size)
			const c = 4096
			for i := range x {
				x[i] = math.Round(r.NormFloat64()*8*64) / 64 // 1/64 steps: x + c is exact
				xc[i] = x[i] + c
			}
			y := runForward(t, Softmax, denseOf(dt, shape, x), axis)
			yc := runForward(t, Softmax, denseOf(dt, shape, xc), axis)
			ly := runForward(t, LogSoftmax, denseOf(dt, shape, x), axis)
			name := fmt.Sprintf("%v %v axis %d", dt, shape, axis)
			eps := 0x1p-52
			if dt == tensor.Float32 {
				eps = 0x1p-23
			}
			ax := axis
			if ax < 0 {
				ax += rank
			}
			n := shape[ax]
			inner := tensor.Shape(shape[ax+1:]).TotalSize()
			if ax == rank-1 {
				inner = 1
			}
			for s := range size / n {
				o, k := s/inner, s%inner
				var sum float64
				for j := range n {
					sum += y[o*n*inner+j*inner+k]
				}
				if math.Abs(sum-1) > float64(n)*eps {
					t.Errorf("%s: slice %d sums to %v", name, s, sum)
				}
			}
			for i := range y {
				if !(y[i] >= 0 && y[i] <= 1) {
					t.Errorf("%s: y[%d] = %v outside [0, 1]", name, i, y[i])
				}
				if math.Float64bits(y[i]) != math.Float64bits(yc[i]) {
					t.Errorf("%s: Softmax(x+%d)[%d] = %v, Softmax(x) = %v", name, c, i, yc[i], y[i])
				}
				if y[i] > 1e-30 && math.Abs(math.Log(y[i])-ly[i]) > 4*eps*math.Max(1, math.Abs(ly[i])) {
					t.Errorf("%s: LogSoftmax[%d] = %v, log(Softmax) = %v", name, i, ly[i], math.Log(y[i]))
				}
			}
		}
	}
}

// TestSoftmaxGradients checks the analytic gradients against central
// differences on the tape and Lisp machines, for several ranks and axes,
// chained, and with several consumers.
func TestSoftmaxGradients(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	input := func(shape ...int) *tensor.Dense {
		d := make([]float64, tensor.Shape(shape).TotalSize())
		for i := range d {
			d[i] = 2 * r.NormFloat64()
		}
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(d))
	}
	type build = gradcheck.Build
	one := func(f softmaxFn, axis ...int) build {
		return func(g *gorgonia.ExprGraph, xs gorgonia.Nodes) (*gorgonia.Node, error) { return f(xs[0], axis...) }
	}
	for _, tc := range []struct {
		name   string
		inputs []*tensor.Dense
		build  build
	}{
		{"softmax vector", []*tensor.Dense{input(6)}, one(Softmax)},
		{"softmax matrix", []*tensor.Dense{input(3, 5)}, one(Softmax)},
		{"softmax axis 0", []*tensor.Dense{input(3, 5)}, one(Softmax, 0)},
		{"softmax 3-D axis 1", []*tensor.Dense{input(2, 4, 3)}, one(Softmax, 1)},
		{"softmax 4-D axis -3", []*tensor.Dense{input(2, 3, 2, 2)}, one(Softmax, -3)},
		{"log-softmax matrix", []*tensor.Dense{input(3, 5)}, one(LogSoftmax)},
		{"log-softmax 3-D axis 0", []*tensor.Dense{input(3, 2, 4)}, one(LogSoftmax, 0)},
		{"softmax of softmax", []*tensor.Dense{input(3, 4)}, func(g *gorgonia.ExprGraph, xs gorgonia.Nodes) (*gorgonia.Node, error) {
			y, err := Softmax(xs[0])
			if err != nil {
				return nil, err
			}
			return Softmax(y, 0)
		}},
		{"two consumers of x", []*tensor.Dense{input(4, 4)}, func(g *gorgonia.ExprGraph, xs gorgonia.Nodes) (*gorgonia.Node, error) {
			a, err := Softmax(xs[0], 0)
			if err != nil {
				return nil, err
			}
			b, err := LogSoftmax(xs[0], 1)
			if err != nil {
				return nil, err
			}
			return gorgonia.Add(a, b)
		}},
		{"two consumers of y", []*tensor.Dense{input(3, 4)}, func(g *gorgonia.ExprGraph, xs gorgonia.Nodes) (*gorgonia.Node, error) {
			y, err := Softmax(xs[0])
			if err != nil {
				return nil, err
			}
			return gorgonia.HadamardProd(y, y)
		}},
		{"softmax of an intermediate (may run in place)", []*tensor.Dense{input(3, 4)}, func(g *gorgonia.ExprGraph, xs gorgonia.Nodes) (*gorgonia.Node, error) {
			x2, err := gorgonia.Mul(xs[0], gorgonia.NewConstant(1.5, gorgonia.WithName("k")))
			if err != nil {
				return nil, err
			}
			return LogSoftmax(x2, 0)
		}},
		{"log of softmax", []*tensor.Dense{input(3, 4)}, func(g *gorgonia.ExprGraph, xs gorgonia.Nodes) (*gorgonia.Node, error) {
			y, err := Softmax(xs[0])
			if err != nil {
				return nil, err
			}
			return gorgonia.Log(y)
		}},
	} {
		res, err := gradcheck.Check(tc.inputs, tc.build, gradcheck.Options{})
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		t.Logf("%s: max error/tol tape %.3g, lisp %.3g", tc.name, res.MaxTapeErr, res.MaxLispErr)
	}
}

// TestSoftmaxBadInput: bad arguments are errors wrapping the sentinels,
// never panics.
func TestSoftmaxBadInput(t *testing.T) {
	g := gorgonia.NewGraph()
	m := gorgonia.NewMatrix(g, tensor.Float64, gorgonia.WithShape(2, 3), gorgonia.WithName("m"))
	ints := gorgonia.NewMatrix(g, tensor.Int, gorgonia.WithShape(2, 3), gorgonia.WithName("ints"))
	scalar := gorgonia.NewScalar(g, tensor.Float32, gorgonia.WithName("s"))
	for _, f := range []softmaxFn{Softmax, LogSoftmax} {
		for _, tc := range []struct {
			name string
			x    *gorgonia.Node
			axes []int
			want error
		}{
			{"nil", nil, nil, ErrNilNode},
			{"int dtype", ints, nil, ErrDtype},
			{"rank 0", scalar, nil, ErrShape},
			{"axis 2 of rank 2", m, []int{2}, ErrAxis},
			{"axis -3 of rank 2", m, []int{-3}, ErrAxis},
			{"two axes", m, []int{0, 1}, ErrAxis},
		} {
			n, err := f(tc.x, tc.axes...)
			if !errors.Is(err, tc.want) || n != nil {
				t.Errorf("%s: got (%v, %v), want an error wrapping %v", tc.name, n, err, tc.want)
			}
		}
	}

	// Values the ops cannot use, given to Do directly.
	sm := softmaxOp{axis: 1}
	good := denseOf(tensor.Float64, []int{2, 3}, []float64{1, 2, 3, 4, 5, 6})
	for _, tc := range []struct {
		name string
		op   gorgonia.Op
		in   []gorgonia.Value
		want error
	}{
		{"scalar", sm, []gorgonia.Value{gorgonia.NewF64(1)}, ErrShape},
		{"axis beyond the value's rank", softmaxOp{axis: 2}, []gorgonia.Value{good}, ErrAxis},
		{"no inputs", sm, nil, ErrValue},
		{"int tensor", sm, []gorgonia.Value{tensor.New(tensor.WithShape(2, 3), tensor.WithBacking([]int{1, 2, 3, 4, 5, 6}))}, ErrDtype},
		{"grad: shapes differ", softmaxGradOp(sm), []gorgonia.Value{good, denseOf(tensor.Float64, []int{3, 2}, make([]float64, 6))}, ErrValue},
		{"grad: dtypes differ", softmaxGradOp(sm), []gorgonia.Value{good, denseOf(tensor.Float32, []int{2, 3}, make([]float64, 6))}, ErrValue},
		{"grad: one input", softmaxGradOp(sm), []gorgonia.Value{good}, ErrValue},
	} {
		v, err := tc.op.Do(tc.in...)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: got (%v, %v), want an error wrapping %v", tc.name, v, err, tc.want)
		}
	}
	if _, err := sm.InferShape(tensor.Shape{3}); !errors.Is(err, ErrAxis) {
		t.Errorf("InferShape with axis 1 of rank 1: got %v, want ErrAxis", err)
	}
}

// TestSoftmaxHashes: every parameter is in the hash.
func TestSoftmaxHashes(t *testing.T) {
	seen := map[uint32]string{}
	for _, op := range []interface {
		Hashcode() uint32
		String() string
	}{
		softmaxOp{0, false}, softmaxOp{1, false}, softmaxOp{0, true}, softmaxOp{1, true},
		softmaxGradOp{0, false}, softmaxGradOp{1, false}, softmaxGradOp{0, true}, softmaxGradOp{1, true},
	} {
		if prev, ok := seen[op.Hashcode()]; ok {
			t.Errorf("%v and %v hash alike", prev, op)
		}
		seen[op.Hashcode()] = op.String()
	}
}

// TestSoftmaxParallel: inputs large enough to be split over goroutines
// give bit for bit what one kernel call gives, along the last axis and a
// strided one.
func TestSoftmaxParallel(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	// More than two grains of float32, so that the op splits the slices
	// across goroutines whichever kernels this build runs.
	shape := []int{300, 7, 2*grainFor(false, true)/(300*7) + 1}
	size := shape[0] * shape[1] * shape[2]
	x, dy := make([]float64, size), make([]float64, size)
	for i := range x {
		x[i], dy[i] = 3*r.NormFloat64(), r.NormFloat64()
	}
	for _, log := range []bool{false, true} {
		for _, axis := range []int{0, 1, 2} {
			y, dx := softmaxTape(t, softmaxOf(log), denseOf(tensor.Float32, shape, x), denseOf(tensor.Float32, shape, dy), axis)
			inner := 1
			for _, d := range shape[axis+1:] {
				inner *= d
			}
			a := kernel.Along(size, shape[axis], inner)
			x32, dy32 := denseOf(tensor.Float32, shape, x).Float32s(), denseOf(tensor.Float32, shape, dy).Float32s()
			wy, wdx := make([]float32, size), make([]float32, size)
			if log {
				_ = kernel.LogSoftmax(wy, x32, a)
				_ = kernel.LogSoftmaxGrad(wdx, wy, dy32, a)
			} else {
				_ = kernel.Softmax(wy, x32, a)
				_ = kernel.SoftmaxGrad(wdx, wy, dy32, a)
			}
			for i := range wy {
				if float32(y[i]) != wy[i] || float32(dx[i]) != wdx[i] {
					t.Fatalf("log=%v axis %d: [%d]: op (%v, %v), kernel (%v, %v)", log, axis, i, y[i], dx[i], wy[i], wdx[i])
				}
			}
		}
	}
}

// TestSoftmaxUsePreallocDo: the tape machine may pass an input itself as
// prealloc (x for the forward op, dy for the backward one); the result must
// equal Do's. A prealloc of the wrong shape is an error.
func TestSoftmaxUsePreallocDo(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	shape := []int{3, 5, 4}
	x, dy := make([]float64, 60), make([]float64, 60)
	for i := range x {
		x[i], dy[i] = 3*r.NormFloat64(), r.NormFloat64()
	}
	for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
		for _, log := range []bool{false, true} {
			for _, axis := range []int{0, 1, 2} {
				op := softmaxOp{axis: axis, log: log}
				want, err := op.Do(denseOf(dt, shape, x))
				if err != nil {
					t.Fatal(err)
				}
				xv := denseOf(dt, shape, x)
				got, err := op.UsePreallocDo(xv, xv)
				if err != nil {
					t.Fatal(err)
				}
				wantDx, err := softmaxGradOp(op).Do(want, denseOf(dt, shape, dy))
				if err != nil {
					t.Fatal(err)
				}
				dyv := denseOf(dt, shape, dy)
				gotDx, err := softmaxGradOp(op).UsePreallocDo(dyv, want, dyv)
				if err != nil {
					t.Fatal(err)
				}
				for _, pair := range [][2]gorgonia.Value{{got, want}, {gotDx, wantDx}} {
					g, w := float64s(pair[0]), float64s(pair[1])
					for i := range w {
						if !numtest.Alike(g[i], w[i]) {
							t.Fatalf("%v %v: in place [%d] = %v, Do gives %v", dt, op, i, g[i], w[i])
						}
					}
				}
			}
		}
	}
	bad := denseOf(tensor.Float64, []int{60}, x)
	if _, err := (softmaxOp{axis: 0}).UsePreallocDo(bad, denseOf(tensor.Float64, shape, x)); !errors.Is(err, ErrValue) {
		t.Errorf("prealloc of the wrong shape: got %v, want ErrValue", err)
	}
}

// TestSoftmaxDoAllocations: Do allocates the output and a few small
// headers, nothing in proportion to the input beyond the output.
func TestSoftmaxDoAllocations(t *testing.T) {
	x := denseOf(tensor.Float32, []int{512, 1024}, make([]float64, 512*1024))
	dy := denseOf(tensor.Float32, []int{512, 1024}, make([]float64, 512*1024))
	out := int64(512 * 1024 * 4)
	for _, tc := range []struct {
		name string
		do   func() (gorgonia.Value, error)
	}{
		{"forward", func() (gorgonia.Value, error) { return softmaxOp{axis: 1}.Do(x) }},
		{"backward", func() (gorgonia.Value, error) { return softmaxGradOp{axis: 1}.Do(x, dy) }},
		{"log backward", func() (gorgonia.Value, error) { return softmaxGradOp{axis: 1, log: true}.Do(x, dy) }},
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		const runs = 10
		for range runs {
			if _, err := tc.do(); err != nil {
				t.Fatal(err)
			}
		}
		runtime.ReadMemStats(&after)
		perRun := int64(after.TotalAlloc-before.TotalAlloc) / runs
		allocs := (after.Mallocs - before.Mallocs) / runs
		t.Logf("%s: %d bytes in %d allocations per run (output %d bytes)", tc.name, perRun, allocs, out)
		if perRun > out+16<<10 {
			t.Errorf("%s: %d bytes allocated per run, output is %d", tc.name, perRun, out)
		}
	}
}
