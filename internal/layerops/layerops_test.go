package layerops

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/actq/actq/internal/errtest"
	"github.com/actq/actq/internal/gradcheck"
	"github.com/actq/actq/internal/numtest"
	"github.com/actq/actq/internal/opkit"
	"github.com/actq/actq/ops"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// randDense returns a tensor of standard normal values from seed.
func randDense(seed uint64, dt tensor.Dtype, shape ...int) *tensor.Dense {
	r := rand.New(rand.NewPCG(seed, 1))
	n := tensor.Shape(shape).TotalSize()
	if dt == tensor.Float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(v))
	}
	v := make([]float64, n)
	for i := range v {
		v[i] = r.NormFloat64()
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(v))
}

// floats returns a value's data as float64.
func floats(v gorgonia.Value) []float64 { return numtest.Float64s(v.Data()) }

// run builds f on a new graph holding inputs and returns the values of the
// nodes it returns, from one run of a tape machine.
func run(t *testing.T, inputs []*tensor.Dense, f func(xs gorgonia.Nodes) (gorgonia.Nodes, error)) []gorgonia.Value {
	t.Helper()
	g := gorgonia.NewGraph()
	xs := make(gorgonia.Nodes, len(inputs))
	for i, v := range inputs {
		xs[i] = gorgonia.NodeFromAny(g, v, gorgonia.WithName(fmt.Sprintf("x%d", i)))
	}
	ys, err := f(xs)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]gorgonia.Value, len(ys))
	for i, y := range ys {
		gorgonia.Read(y, &out[i])
	}
	vm := gorgonia.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestBMM compares BMM with gorgonia.BatchedMatMul for every combination
// of transposes, in both dtypes, and checks its gradients against finite
// differences on both machines.
func TestBMM(t *testing.T) {
	const b, h, m, k, n = 2, 3, 4, 5, 6
	for _, tr := range [][2]bool{{false, false}, {false, true}, {true, false}, {true, true}} {
		sa, sb := []int{b, h, m, k}, []int{b, h, k, n}
		if tr[0] {
			sa = []int{b, h, k, m}
		}
		if tr[1] {
			sb = []int{b, h, n, k}
		}
		name := fmt.Sprintf("Aᵀ=%v,Bᵀ=%v", tr[0], tr[1])
		for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
			vs := run(t, []*tensor.Dense{randDense(1, dt, sa...), randDense(2, dt, sb...)}, func(xs gorgonia.Nodes) (gorgonia.Nodes, error) {
				got, err := BMM(xs[0], xs[1], tr[0], tr[1])
				if err != nil {
					return nil, err
				}
				scaled, err := ScaledBMM(xs[0], xs[1], tr[0], tr[1], -0.25)
				if err != nil {
					return nil, err
				}
				want, err := gorgonia.BatchedMatMul(xs[0], xs[1], tr[0], tr[1])
				return gorgonia.Nodes{got, want, scaled}, err
			})
			if !vs[0].Shape().Eq(vs[1].Shape()) || !vs[2].Shape().Eq(vs[1].Shape()) {
				t.Fatalf("%s: shapes %v, %v, want %v", name, vs[0].Shape(), vs[2].Shape(), vs[1].Shape())
			}
			x, y, z := floats(vs[0]), floats(vs[1]), floats(vs[2])
			for i := range x {
				if d := x[i] - y[i]; d > 1e-5 || d < -1e-5 {
					t.Fatalf("%s %v: [%d] = %g, want %g", name, dt, i, x[i], y[i])
				}
				if z[i] != -0.25*x[i] { // a power of two: exact
					t.Fatalf("%s %v: ScaledBMM [%d] = %g, want %g", name, dt, i, z[i], -0.25*x[i])
				}
			}
		}
		inputs := []*tensor.Dense{randDense(3, tensor.Float64, sa...), randDense(4, tensor.Float64, sb...)}
		for _, alpha := range []float64{1, 0.3} {
			if _, err := gradcheck.Check(inputs, func(g *gorgonia.ExprGraph, xs gorgonia.Nodes) (*gorgonia.Node, error) {
				return ScaledBMM(xs[0], xs[1], tr[0], tr[1], alpha)
			}, gradcheck.Options{}); err != nil {
				t.Errorf("%s, α = %g: %v", name, alpha, err)
			}
		}
	}
	g := gorgonia.NewGraph()
	a := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(1, 2, 3, 4), gorgonia.WithName("a"))
	c := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(1, 2, 5, 4), gorgonia.WithName("c"))
	if _, err := BMM(a, c, false, false); !errors.Is(err, opkit.ErrShape) {
		t.Errorf("inner sizes 4 and 5: got %v, want ErrShape", err)
	}
}

// TestMatMul compares MatMul, with and without a bias, with gorgonia.Mul
// and BroadcastAdd in both dtypes, checks its gradients (x, w and the
// bias) on both machines, and its shape errors.
func TestMatMul(t *testing.T) {
	const n, k, m = 7, 5, 6
	for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
		inputs := []*tensor.Dense{randDense(1, dt, n, k), randDense(2, dt, k, m), randDense(3, dt, m)}
		vs := run(t, inputs, func(xs gorgonia.Nodes) (gorgonia.Nodes, error) {
			plain, err := MatMul(xs[0], xs[1], nil)
			if err != nil {
				return nil, err
			}
			biased, err := MatMul(xs[0], xs[1], xs[2])
			if err != nil {
				return nil, err
			}
			mul, err := gorgonia.Mul(xs[0], xs[1])
			if err != nil {
				return nil, err
			}
			add, err := gorgonia.BroadcastAdd(mul, xs[2], nil, []byte{0})
			return gorgonia.Nodes{plain, biased, mul, add}, err
		})
		for i, pair := range [][2]int{{0, 2}, {1, 3}} {
			got, want := floats(vs[pair[0]]), floats(vs[pair[1]])
			if !vs[pair[0]].Shape().Eq(tensor.Shape{n, m}) {
				t.Fatalf("%v: shape %v", dt, vs[pair[0]].Shape())
			}
			for j := range want {
				if d := math.Abs(got[j] - want[j]); d > 1e-5 {
					t.Errorf("%v, bias %v: [%d] = %g, want %g", dt, i == 1, j, got[j], want[j])
				}
			}
		}
	}
	inputs := []*tensor.Dense{randDense(4, tensor.Float64, n, k), randDense(5, tensor.Float64, k, m), randDense(6, tensor.Float64, m)}
	if _, err := gradcheck.Check(inputs, func(g *gorgonia.ExprGraph, xs gorgonia.Nodes) (*gorgonia.Node, error) {
		return MatMul(xs[0], xs[1], xs[2])
	}, gradcheck.Options{}); err != nil {
		t.Error(err)
	}
	g := gorgonia.NewGraph()
	node := func(name string, shape ...int) *gorgonia.Node {
		return gorgonia.NewTensor(g, tensor.Float32, len(shape), gorgonia.WithShape(shape...), gorgonia.WithName(name))
	}
	x, w, bias := node("x", n, k), node("w", k, m), node("bias", m)
	for name, c := range map[string][3]*gorgonia.Node{
		"inner sizes":    {x, node("w2", k+1, m), nil},
		"bias size":      {x, w, node("b2", m+1)},
		"bias rank":      {x, w, node("b3", 1, m)},
		"3-D x":          {node("x3", 1, n, k), w, bias},
		"vector weights": {x, node("w4", k), nil},
	} {
		if _, err := MatMul(c[0], c[1], c[2]); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestCausalMask checks CausalMask's values (−Inf exactly where key j >
// offset+i, the input's bits elsewhere), written in place and into new
// memory, and its gradient on both machines: exactly 0 at masked entries.
func TestCausalMask(t *testing.T) {
	const b, tq, tk = 2, 3, 5
	for _, offset := range []int{0, 2} {
		for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
			x := randDense(1, dt, b, tq, tk)
			var sq, inPlace *gorgonia.Node
			vs := run(t, []*tensor.Dense{x}, func(xs gorgonia.Nodes) (gorgonia.Nodes, error) {
				kept, err := CausalMask(xs[0], offset) // x is an input: into new memory
				if err != nil {
					return nil, err
				}
				if sq, err = gorgonia.Square(xs[0]); err != nil {
					return nil, err
				}
				inPlace, err = CausalMask(sq, offset) // nothing reads sq after: in place
				return gorgonia.Nodes{kept, inPlace}, err
			})
			if a, b := sq.Value().(*tensor.Dense), inPlace.Value().(*tensor.Dense); a.Uintptr() != b.Uintptr() {
				t.Errorf("offset %d, %v: CausalMask of a dead input did not write over it", offset, dt)
			}
			xv := floats(x)
			for k, name := range []string{"new memory", "in place"} {
				for i, got := range floats(vs[k]) {
					q, key := (i/tk)%tq, i%tk
					want := math.Inf(-1)
					if key <= offset+q {
						want = xv[i]
						if k == 1 {
							want = xv[i] * xv[i]
							if dt == tensor.Float32 {
								want = float64(float32(want))
							}
						}
					}
					if got != want {
						t.Fatalf("offset %d, %v, %s: [%d] (query %d, key %d) = %g, want %g", offset, dt, name, i, q, key, got, want)
					}
				}
			}
			if xs := floats(x); !equal(xs, xv) {
				t.Fatal("CausalMask changed its input")
			}
		}
		inputs := []*tensor.Dense{randDense(2, tensor.Float64, b, tq, tk)}
		res, err := gradcheck.Check(inputs, func(g *gorgonia.ExprGraph, xs gorgonia.Nodes) (*gorgonia.Node, error) {
			y, err := CausalMask(xs[0], offset)
			if err != nil {
				return nil, err
			}
			return gorgonia.Exp(y) // exp(−Inf) = 0: a finite cost
		}, gradcheck.Options{})
		if err != nil {
			t.Errorf("offset %d: %v", offset, err)
			continue
		}
		checkMaskedGrad(t, res, offset, tq, tk)
	}
	checkCausalErrors(t, CausalMask)
}

// checkMaskedGrad fails t unless the gradients of both machines in res
// are exactly 0 at the masked entries of (…, tq, tk) scores.
func checkMaskedGrad(t *testing.T, res *gradcheck.Result, offset, tq, tk int) {
	t.Helper()
	for i := range res.Tape[0] {
		if q, k := (i/tk)%tq, i%tk; k > offset+q && (res.Tape[0][i] != 0 || res.Lisp[0][i] != 0) {
			t.Errorf("offset %d: gradient at masked [%d] = %g (tape), %g (Lisp), want 0", offset, i, res.Tape[0][i], res.Lisp[0][i])
		}
	}
}

// checkCausalErrors checks that fn (CausalMask or CausalSoftmax) refuses a
// vector, a negative offset and a nil node.
func checkCausalErrors(t *testing.T, fn func(*gorgonia.Node, int) (*gorgonia.Node, error)) {
	t.Helper()
	g := gorgonia.NewGraph()
	v := gorgonia.NewVector(g, tensor.Float32, gorgonia.WithShape(4), gorgonia.WithName("v"))
	m := gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(2, 2), gorgonia.WithName("m"))
	for _, c := range []struct {
		name   string
		x      *gorgonia.Node
		offset int
		want   error
	}{{"a vector", v, 0, opkit.ErrShape}, {"offset −1", m, -1, opkit.ErrShape}, {"nil", nil, 0, opkit.ErrNilNode}} {
		if _, err := fn(c.x, c.offset); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
}

// TestCausalSoftmax compares CausalSoftmax with ops.Softmax of the masked
// scores (within 4 ULPs: the vector kernels may add a row's exps in
// another order when its length changes), with non-finite values at
// masked entries (they must not matter), written in place and into new
// memory, and checks its gradient on both machines: exactly 0 at masked
// entries.
func TestCausalSoftmax(t *testing.T) {
	const b, tq, tk = 2, 5, 7
	for _, offset := range []int{0, 2} {
		for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
			x := randDense(1, dt, b, tq, tk)
			for i := range b * tq * tk {
				if q, k := (i/tk)%tq, i%tk; k > offset+q {
					v := []float64{math.NaN(), math.Inf(1), 1e30}[i%3]
					if dt == tensor.Float32 {
						x.Float32s()[i] = float32(v)
					} else {
						x.Float64s()[i] = v
					}
				}
			}
			var sq, inPlace *gorgonia.Node
			vs := run(t, []*tensor.Dense{x}, func(xs gorgonia.Nodes) (gorgonia.Nodes, error) {
				got, err := CausalSoftmax(xs[0], offset)
				if err != nil {
					return nil, err
				}
				masked, err := CausalMask(xs[0], offset)
				if err != nil {
					return nil, err
				}
				want, err := ops.Softmax(masked)
				if err != nil {
					return nil, err
				}
				if sq, err = gorgonia.Neg(xs[0]); err != nil {
					return nil, err
				}
				inPlace, err = CausalSoftmax(sq, offset) // nothing reads sq after: in place
				return gorgonia.Nodes{got, want}, err
			})
			if a, b := sq.Value().(*tensor.Dense), inPlace.Value().(*tensor.Dense); a.Uintptr() != b.Uintptr() {
				t.Errorf("offset %d, %v: CausalSoftmax of a dead input did not write over it", offset, dt)
			}
			ulp := map[tensor.Dtype]float64{tensor.Float32: 0x1p-24, tensor.Float64: 0x1p-53}[dt]
			got, want := floats(vs[0]), floats(vs[1])
			for i := range got {
				q, k := (i/tk)%tq, i%tk
				if k > offset+q {
					if got[i] != 0 {
						t.Fatalf("offset %d, %v: masked [%d] = %g, want 0", offset, dt, i, got[i])
					}
					continue
				}
				if d := math.Abs(got[i] - want[i]); !(d <= 4*ulp*want[i]) {
					t.Errorf("offset %d, %v: [%d] = %.17g, ops.Softmax of the masked scores %.17g", offset, dt, i, got[i], want[i])
				}
			}
		}
		inputs := []*tensor.Dense{randDense(2, tensor.Float64, b, tq, tk)}
		res, err := gradcheck.Check(inputs, func(g *gorgonia.ExprGraph, xs gorgonia.Nodes) (*gorgonia.Node, error) {
			return CausalSoftmax(xs[0], offset)
		}, gradcheck.Options{})
		if err != nil {
			t.Errorf("offset %d: %v", offset, err)
			continue
		}
		checkMaskedGrad(t, res, offset, tq, tk)
	}
	checkCausalErrors(t, CausalSoftmax)
}

// TestCausalProducts checks CausalScores (the entries each query sees,
// against a loop; plain and with grouped queries; the tiles above the
// diagonal must be skipped) and CausalValues (BMM's values), and the
// gradients of scores → causal softmax → values on both machines, where
// the backward pass computes the probabilities' gradient only where the
// queries see.
func TestCausalProducts(t *testing.T) {
	const batch, groups, d, n = 2, 2, 3, 5
	for _, tq := range []int{7, 100} { // 100: three row tiles
		for _, offset := range []int{0, 3} {
			for _, queries := range []int{0, tq} {
				rows, tk := tq, tq+offset
				if queries > 0 {
					rows = groups * tq
				}
				vis := func(r int) int { return min(offset+r%tq+1, tk) }
				name := fmt.Sprintf("tq %d, offset %d, queries %d", tq, offset, queries)
				q, k := randDense(1, tensor.Float64, batch, 1, rows, d), randDense(2, tensor.Float64, batch, 1, tk, d)
				p, v := randDense(3, tensor.Float64, batch, 1, rows, tk), randDense(4, tensor.Float64, batch, 1, tk, n)
				vs := run(t, []*tensor.Dense{q, k, p, v}, func(xs gorgonia.Nodes) (gorgonia.Nodes, error) {
					sc, err := CausalScores(xs[0], xs[1], 0.5, offset, queries)
					if err != nil {
						return nil, err
					}
					o, err := CausalValues(xs[2], xs[3], offset, queries)
					if err != nil {
						return nil, err
					}
					want, err := BMM(xs[2], xs[3], false, false)
					return gorgonia.Nodes{sc, o, want}, err
				})
				qs, ks := floats(q), floats(k)
				sc := floats(vs[0])
				untouched := 0
				for b := range batch {
					for r := range rows {
						for j := range tk {
							want := 0.0
							for l := range d {
								want += qs[(b*rows+r)*d+l] * ks[(b*tk+j)*d+l]
							}
							got := sc[(b*rows+r)*tk+j]
							if j >= vis(r) {
								if got == 0 { // a fresh tensor: zero where nothing was computed
									untouched++
								}
								continue
							}
							if math.Abs(got-0.5*want) > 1e-13 {
								t.Fatalf("%s: scores[%d,%d,%d] = %g, want %g", name, b, r, j, got, 0.5*want)
							}
						}
					}
				}
				if tq > tileRows(tq) && untouched == 0 {
					t.Errorf("%s: no tile above the diagonal was skipped", name)
				}
				if !equal(floats(vs[1]), floats(vs[2])) {
					t.Errorf("%s: CausalValues differs from BMM", name)
				}
				if tq > 10 {
					// Against the plain ops (finite differences would be
					// slow here): the same values and gradients.
					compareCausalWithPlain(t, name, batch, rows, tq, tk, d, n, offset, queries)
					continue
				}
				// Gradients through scores, the causal softmax (on the
				// ungrouped view) and values.
				inputs := []*tensor.Dense{randDense(5, tensor.Float64, batch, 1, rows, d), randDense(6, tensor.Float64, batch, 1, tk, d),
					randDense(7, tensor.Float64, batch, 1, tk, n)}
				if _, err := gradcheck.Check(inputs, func(g *gorgonia.ExprGraph, xs gorgonia.Nodes) (*gorgonia.Node, error) {
					sc, err := CausalScores(xs[0], xs[1], 0.7, offset, queries)
					if err != nil {
						return nil, err
					}
					if sc, err = gorgonia.Reshape(sc, tensor.Shape{batch, rows / tq, tq, tk}); err != nil {
						return nil, err
					}
					pr, err := CausalSoftmax(sc, offset)
					if err != nil {
						return nil, err
					}
					if pr, err = gorgonia.Reshape(pr, tensor.Shape{batch, 1, rows, tk}); err != nil {
						return nil, err
					}
					return CausalValues(pr, xs[2], offset, queries)
				}, gradcheck.Options{}); err != nil {
					t.Errorf("%s: %v", name, err)
				}
			}
		}
	}
	// The tiles: a long sequence skips most of the masked part.
	if r := tileRows(512); r != 96 {
		t.Errorf("tileRows(512) = %d, want 96", r)
	}
	g := gorgonia.NewGraph()
	a := gorgonia.NewTensor(g, tensor.Float64, 4, gorgonia.WithShape(1, 1, 6, 2), gorgonia.WithName("a"))
	for name, err := range map[string]error{
		"offset −1":           second(CausalScores(a, a, 1, -1, 0)),
		"queries −1":          second(CausalValues(a, a, 0, -1)),
		"4 queries of 6 rows": second(CausalScores(a, a, 1, 0, 4)),
	} {
		if !errors.Is(err, opkit.ErrShape) {
			t.Errorf("%s: got %v, want ErrShape", name, err)
		}
	}
}

// compareCausalWithPlain runs Σ w ⊙ (values of the causal softmax of the
// scores) built from the causal ops and from the plain ones (ScaledBMM,
// CausalMask, ops.Softmax, BMM) on a tape machine and requires the same
// cost and gradients within float64 rounding.
func compareCausalWithPlain(t *testing.T, name string, batch, rows, tq, tk, d, n, offset, queries int) {
	t.Helper()
	var results [2][]float64
	for c, causalOps := range []bool{true, false} {
		g := gorgonia.NewGraph()
		x := []*gorgonia.Node{
			gorgonia.NodeFromAny(g, randDense(5, tensor.Float64, batch, 1, rows, d), gorgonia.WithName("q")),
			gorgonia.NodeFromAny(g, randDense(6, tensor.Float64, batch, 1, tk, d), gorgonia.WithName("k")),
			gorgonia.NodeFromAny(g, randDense(7, tensor.Float64, batch, 1, tk, n), gorgonia.WithName("v")),
		}
		must := must2(t)
		var sc, o *gorgonia.Node
		if causalOps {
			sc = must(CausalScores(x[0], x[1], 0.7, offset, queries))
		} else {
			sc = must(ScaledBMM(x[0], x[1], false, true, 0.7))
		}
		sc = must(gorgonia.Reshape(sc, tensor.Shape{batch, rows / tq, tq, tk}))
		var p *gorgonia.Node
		if causalOps {
			p = must(CausalSoftmax(sc, offset))
		} else {
			p = must(ops.Softmax(must(CausalMask(sc, offset))))
		}
		p = must(gorgonia.Reshape(p, tensor.Shape{batch, 1, rows, tk}))
		if causalOps {
			o = must(CausalValues(p, x[2], offset, queries))
		} else {
			o = must(BMM(p, x[2], false, false))
		}
		w := gorgonia.NodeFromAny(g, randDense(8, tensor.Float64, batch, 1, rows, n), gorgonia.WithName("w"))
		cost := must(gorgonia.Sum(must(gorgonia.HadamardProd(o, w))))
		grads, err := gorgonia.Grad(cost, x...)
		if err != nil {
			t.Fatal(err)
		}
		vm := gorgonia.NewTapeMachine(g)
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		results[c] = append(results[c], floats(cost.Value())...)
		for _, gr := range grads {
			results[c] = append(results[c], floats(gr.Value())...)
		}
		vm.Close()
	}
	for i := range results[0] {
		if d := math.Abs(results[0][i] - results[1][i]); d > 1e-12*(1+math.Abs(results[1][i])) {
			t.Fatalf("%s: value %d (the cost, then the gradients of q, k, v) is %g with the causal ops, %g with the plain ones", name, i, results[0][i], results[1][i])
		}
	}
}

func second(_ *gorgonia.Node, err error) error { return err }

// TestReuse builds a graph of every op that keeps its result, forward and
// backward, and runs it twice with reuse on (opkit.ReuseResults), with new
// input values before the second run: each op writes into the tensor it
// returned the first time, and the second run's output and gradients equal
// bit for bit those of the same graph without reuse.
func TestReuse(t *testing.T) {
	const n, d = 6, 4
	type program struct {
		g      *gorgonia.ExprGraph
		params gorgonia.Nodes
		reads  []*gorgonia.Value
		vm     gorgonia.VM
	}
	build := func(reuse bool) *program {
		t.Helper()
		p := &program{g: gorgonia.NewGraph()}
		for i, s := range [][]int{{n, d}, {d, d}, {d}, {d}} {
			p.params = append(p.params, gorgonia.NewTensor(p.g, tensor.Float64, len(s), gorgonia.WithShape(s...),
				gorgonia.WithName(fmt.Sprintf("p%d", i)), gorgonia.WithValue(randDense(uint64(i+1), tensor.Float64, s...))))
		}
		x, w, gain, shift := p.params[0], p.params[1], p.params[2], p.params[3]
		must := func(n *gorgonia.Node, err error) *gorgonia.Node {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		h := must(Norm(x, gain, shift, 1e-5))
		h = must(MatMul(h, w, shift))
		h = must(SplitHeads(h, 2, 2))
		s := must(ScaledBMM(h, h, false, true, 0.5))
		s = must(CausalSoftmax(must(gorgonia.Exp(must(CausalMask(s, 0)))), 0))
		c := must(CausalValues(must(CausalSoftmax(must(CausalScores(h, h, 0.5, 0, 0)), 0)), h, 0, 0))
		h = must(MergeHeads(must(gorgonia.Add(must(BMM(s, h, false, false)), c))))
		h = must(ReshapeCopy(h, d, n))
		cost := must(gorgonia.Sum(must(gorgonia.Square(h))))
		grads, err := gorgonia.Grad(cost, p.params...)
		if err != nil {
			t.Fatal(err)
		}
		for _, nd := range append(grads, h) {
			p.reads = append(p.reads, new(gorgonia.Value))
			gorgonia.Read(nd, p.reads[len(p.reads)-1])
		}
		if reuse {
			opkit.ReuseResults(p.g)
		}
		p.vm = gorgonia.NewTapeMachine(p.g)
		return p
	}
	// run runs p once on the inputs of seed and returns what it read and
	// the data of every node that keeps its result.
	run := func(p *program, seed uint64) ([][]float64, map[*gorgonia.Node]*float64) {
		t.Helper()
		for i, nd := range p.params {
			if err := gorgonia.Let(nd, randDense(seed+uint64(i), tensor.Float64, nd.Shape()...)); err != nil {
				t.Fatal(err)
			}
		}
		defer p.vm.Reset()
		if err := p.vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		var out [][]float64
		for _, r := range p.reads {
			out = append(out, floats(*r))
		}
		kept := map[*gorgonia.Node]*float64{}
		for _, nd := range p.g.AllNodes() {
			// (An op that may write over its input returns the input's
			// tensor when the machine lets it.)
			if _, ok := nd.Op().(opkit.ResultReuser); ok && nd.Op().OverwritesInput() < 0 {
				if v, ok := nd.Value().(*tensor.Dense); ok && v.Size() > 0 {
					kept[nd] = &v.Float64s()[0]
				}
			}
		}
		return out, kept
	}
	reusing, fresh := build(true), build(false)
	defer reusing.vm.Close()
	defer fresh.vm.Close()
	_, first := run(reusing, 10)
	got, second := run(reusing, 20)
	want, _ := run(fresh, 20)
	if len(first) < 12 {
		t.Fatalf("only %d nodes keep their result", len(first))
	}
	for nd, p := range first {
		if second[nd] != p {
			t.Errorf("%v: the second run's result is in new memory", nd.Op())
		}
	}
	for i := range want {
		if !equal(got[i], want[i]) {
			t.Errorf("read %d differs from the graph without reuse", i)
		}
	}
}

// TestCrossEntropy compares CrossEntropy with the mean of −log softmax at
// the targets computed directly in float64, with ignored rows holding NaN
// (they must not matter), checks its gradient on both machines, its
// special cases and its errors.
func TestCrossEntropy(t *testing.T) {
	const n, c = 5, 4
	targets := []int{2, -1, 0, 3, -1}
	intVec := func(g *gorgonia.ExprGraph, name string, v []int) *gorgonia.Node {
		return gorgonia.NewVector(g, tensor.Int, gorgonia.WithShape(len(v)), gorgonia.WithName(name),
			gorgonia.WithValue(tensor.New(tensor.WithShape(len(v)), tensor.WithBacking(append([]int(nil), v...)))))
	}
	// loss runs CrossEntropy on logits (n×c, row-major) and targets.
	loss := func(dt tensor.Dtype, logits []float64, targets []int) float64 {
		t.Helper()
		x := randDense(1, dt, n, c)
		for i, v := range logits {
			if dt == tensor.Float32 {
				x.Float32s()[i] = float32(v)
			} else {
				x.Float64s()[i] = v
			}
		}
		g := gorgonia.NewGraph()
		xn := gorgonia.NodeFromAny(g, x, gorgonia.WithName("x"))
		y, err := CrossEntropy(xn, intVec(g, "t", targets))
		if err != nil {
			t.Fatal(err)
		}
		vm := gorgonia.NewTapeMachine(g)
		defer vm.Close()
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		return floats(y.Value())[0]
	}
	logits := floats(randDense(2, tensor.Float64, n, c))
	for i := range c {
		logits[1*c+i], logits[4*c+i] = math.NaN(), math.Inf(1) // ignored rows
	}
	want, count := 0.0, 0
	for i, tg := range targets {
		if tg < 0 {
			continue
		}
		row := logits[i*c : (i+1)*c]
		var se float64
		for _, v := range row {
			se += math.Exp(v)
		}
		want += math.Log(se) - row[tg]
		count++
	}
	want /= float64(count)
	for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
		tol := map[tensor.Dtype]float64{tensor.Float32: 1e-6, tensor.Float64: 1e-14}[dt]
		if got := loss(dt, logits, targets); math.Abs(got-want) > tol*math.Abs(want) {
			t.Errorf("%v: loss %.17g, want %.17g", dt, got, want)
		}
		if got := loss(dt, logits, []int{-1, -1, -1, -1, -1}); got != 0 {
			t.Errorf("%v: no counted row: loss %g, want 0", dt, got)
		}
		masked := append([]float64(nil), logits...)
		masked[0*c+1] = math.Inf(-1) // a masked class: probability 0
		if got := loss(dt, masked, targets); math.IsNaN(got) || math.IsInf(got, 0) {
			t.Errorf("%v: a −Inf logit off the target: loss %g, want finite", dt, got)
		}
		masked[0*c+2] = math.Inf(-1) // the target's own logit
		if got := loss(dt, masked, targets); !math.IsInf(got, 1) {
			t.Errorf("%v: a −Inf logit at the target: loss %g, want +Inf", dt, got)
		}
		masked[2*c+3] = math.NaN()
		if got := loss(dt, masked, targets); !math.IsNaN(got) {
			t.Errorf("%v: NaN in a counted row: loss %g, want NaN", dt, got)
		}
	}
	inputs := []*tensor.Dense{randDense(3, tensor.Float64, n, c)}
	res, err := gradcheck.Check(inputs, func(g *gorgonia.ExprGraph, xs gorgonia.Nodes) (*gorgonia.Node, error) {
		return CrossEntropy(xs[0], intVec(g, "targets", targets))
	}, gradcheck.Options{})
	if err != nil {
		t.Error(err)
	} else {
		for _, r := range []int{1, 4} {
			for i := r * c; i < (r+1)*c; i++ {
				if res.Tape[0][i] != 0 || res.Lisp[0][i] != 0 {
					t.Errorf("gradient of ignored logit %d: %g (tape), %g (Lisp), want 0", i, res.Tape[0][i], res.Lisp[0][i])
				}
			}
		}
	}
	g := gorgonia.NewGraph()
	x := gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(n, c), gorgonia.WithName("x"))
	for name, c := range map[string]struct {
		logits, targets *gorgonia.Node
		want            error
	}{
		"nil targets":   {x, nil, opkit.ErrNilNode},
		"float targets": {x, gorgonia.NewVector(g, tensor.Float32, gorgonia.WithShape(n), gorgonia.WithName("f")), opkit.ErrDtype},
		"short targets": {x, intVec(g, "short", []int{0}), opkit.ErrShape},
		"vector logits": {gorgonia.NewVector(g, tensor.Float32, gorgonia.WithShape(n), gorgonia.WithName("v")), intVec(g, "tv", targets), opkit.ErrShape},
	} {
		if _, err := CrossEntropy(c.logits, c.targets); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", name, err, c.want)
		}
	}
	ce := must2(t)(CrossEntropy(x, intVec(g, "ok", targets))).Op()
	f32 := tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(n, c))
	for name, tg := range map[string][]int{"target = classes": {0, 0, c, 0, 0}, "target −2": {0, -2, 0, 0, 0}} {
		_, err := ce.Do(f32, tensor.New(tensor.WithShape(n), tensor.WithBacking(tg)))
		if !errors.Is(err, opkit.ErrValue) {
			t.Errorf("%s: got %v, want ErrValue", name, err)
		}
	}
}

// must2 returns a function that fails t on a non-nil error and returns n.
func must2(t *testing.T) func(*gorgonia.Node, error) *gorgonia.Node {
	return func(n *gorgonia.Node, err error) *gorgonia.Node {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
}

// TestHeads checks that SplitHeads equals Reshape + Transpose(0, 2, 1, 3),
// that MergeHeads undoes it, and the gradients on both machines.
func TestHeads(t *testing.T) {
	const b, s, h, dh = 2, 3, 4, 5
	x := randDense(1, tensor.Float32, b*s, h*dh)
	vs := run(t, []*tensor.Dense{x}, func(xs gorgonia.Nodes) (gorgonia.Nodes, error) {
		got, err := SplitHeads(xs[0], b, h)
		if err != nil {
			return nil, err
		}
		back, err := MergeHeads(got)
		if err != nil {
			return nil, err
		}
		r, err := gorgonia.Reshape(xs[0], tensor.Shape{b, s, h, dh})
		if err != nil {
			return nil, err
		}
		want, err := gorgonia.Transpose(r, 0, 2, 1, 3)
		return gorgonia.Nodes{got, want, back}, err
	})
	if !vs[0].Shape().Eq(tensor.Shape{b, h, s, dh}) || !equal(floats(vs[0]), floats(vs[1])) {
		t.Error("SplitHeads differs from Reshape + Transpose")
	}
	if !vs[2].Shape().Eq(x.Shape()) || !equal(floats(vs[2]), floats(x)) {
		t.Error("MergeHeads(SplitHeads(x)) ≠ x")
	}
	inputs := []*tensor.Dense{randDense(2, tensor.Float64, b*s, h*dh)}
	if _, err := gradcheck.Check(inputs, func(g *gorgonia.ExprGraph, xs gorgonia.Nodes) (*gorgonia.Node, error) {
		y, err := SplitHeads(xs[0], b, h)
		if err != nil {
			return nil, err
		}
		sq, err := gorgonia.Square(y) // something nonlinear between the two
		if err != nil {
			return nil, err
		}
		return MergeHeads(sq)
	}, gradcheck.Options{}); err != nil {
		t.Error(err)
	}
	g := gorgonia.NewGraph()
	bad := gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(b*s, h*dh+1), gorgonia.WithName("bad"))
	if _, err := SplitHeads(bad, b, h); !errors.Is(err, opkit.ErrShape) {
		t.Errorf("SplitHeads of %d columns into %d heads: got %v, want ErrShape", h*dh+1, h, err)
	}
	if _, err := MergeHeads(bad); !errors.Is(err, opkit.ErrShape) {
		t.Errorf("MergeHeads of a matrix: got %v, want ErrShape", err)
	}
}

func equal(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestNorm compares Norm with the formulas computed directly in float64,
// and checks its gradients with respect to x, g and b on both machines.
func TestNorm(t *testing.T) {
	const n, d, eps = 3, 5, 1e-5
	for _, layer := range []bool{false, true} {
		name := map[bool]string{false: "rms", true: "layer"}[layer]
		inputs := []*tensor.Dense{randDense(1, tensor.Float64, n, d), randDense(2, tensor.Float64, d)}
		if layer {
			inputs = append(inputs, randDense(3, tensor.Float64, d))
		}
		build := func(g *gorgonia.ExprGraph, xs gorgonia.Nodes) (*gorgonia.Node, error) {
			var b *gorgonia.Node
			if layer {
				b = xs[2]
			}
			return Norm(xs[0], xs[1], b, eps)
		}
		vs := run(t, inputs, func(xs gorgonia.Nodes) (gorgonia.Nodes, error) {
			y, err := build(nil, xs)
			return gorgonia.Nodes{y}, err
		})
		x, gain, got := inputs[0].Float64s(), inputs[1].Float64s(), floats(vs[0])
		for r := range n {
			row := x[r*d : (r+1)*d]
			var mu, ss float64
			if layer {
				for _, v := range row {
					mu += v / d
				}
			}
			for _, v := range row {
				ss += (v - mu) * (v - mu) / d
			}
			for j, v := range row {
				want := (v - mu) / math.Sqrt(ss+eps) * gain[j]
				if layer {
					want += inputs[2].Float64s()[j]
				}
				if e := math.Abs(got[r*d+j] - want); e > 1e-12 {
					t.Errorf("%s: y[%d,%d] = %g, want %g", name, r, j, got[r*d+j], want)
				}
			}
		}
		if _, err := gradcheck.Check(inputs, build, gradcheck.Options{}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestReshapeCopy checks that ReshapeCopy's result has the new shape and
// x's values in new memory, and its gradient on both machines.
func TestReshapeCopy(t *testing.T) {
	x := randDense(1, tensor.Float64, 2, 3, 4)
	vs := run(t, []*tensor.Dense{x}, func(xs gorgonia.Nodes) (gorgonia.Nodes, error) {
		y, err := ReshapeCopy(xs[0], 6, 4)
		return gorgonia.Nodes{y}, err
	})
	y := vs[0].(*tensor.Dense)
	if !y.Shape().Eq(tensor.Shape{6, 4}) || !equal(y.Float64s(), x.Float64s()) {
		t.Fatalf("ReshapeCopy gave %v %v", y.Shape(), y.Float64s())
	}
	if &y.Float64s()[0] == &x.Float64s()[0] {
		t.Error("ReshapeCopy shares x's memory")
	}
	if _, err := gradcheck.Check([]*tensor.Dense{x}, func(g *gorgonia.ExprGraph, xs gorgonia.Nodes) (*gorgonia.Node, error) {
		y, err := ReshapeCopy(xs[0], 4, 6)
		if err != nil {
			return nil, err
		}
		return gorgonia.Square(y)
	}, gradcheck.Options{}); err != nil {
		t.Error(err)
	}
}

// TestRuntimeErrors runs every op's Do on bad values (what a Lisp machine
// or a misbuilt graph could hand it): each returns an error naming the op
// and wrapping the right sentinel, and none panics.
func TestRuntimeErrors(t *testing.T) {
	g := gorgonia.NewGraph()
	node := func(name string, shape ...int) *gorgonia.Node {
		return gorgonia.NewTensor(g, tensor.Float32, len(shape), gorgonia.WithShape(shape...), gorgonia.WithName(name))
	}
	must := func(n *gorgonia.Node, err error) gorgonia.Op {
		if err != nil {
			t.Fatal(err)
		}
		return n.Op()
	}
	x, gain, shift := node("x", 6, 4), node("g", 4), node("b", 4)
	a, b := node("a", 1, 2, 3, 4), node("bb", 1, 2, 4, 5)
	rms := must(Norm(x, gain, nil, 1e-5)).(*normOp)
	layer := must(Norm(x, gain, shift, 1e-5)).(*normOp)
	bmm := must(BMM(a, b, false, false))
	split := must(SplitHeads(x, 2, 2))
	merge := must(MergeHeads(a))
	reshape := must(ReshapeCopy(x, 3, 8))
	matmul := must(MatMul(x, node("w", 4, 5), node("bias", 5)))
	rope := must(RoPE(a, 1e4, 3))
	transpose := must(TransposeLast(a))
	dense := func(dt tensor.Dtype, shape ...int) *tensor.Dense {
		return tensor.New(tensor.Of(dt), tensor.WithShape(shape...))
	}
	f32 := func(shape ...int) *tensor.Dense { return dense(tensor.Float32, shape...) }
	var cases []errtest.Case
	add := func(op gorgonia.Op, name, arg string, want error, in ...gorgonia.Value) {
		cases = append(cases, errtest.Case{Name: name, Fn: op.String(), Arg: arg, Want: want,
			Call: func() error { _, err := op.Do(in...); return err }})
	}
	for _, c := range []struct {
		op    gorgonia.Op
		valid []gorgonia.Value
	}{
		{rms, []gorgonia.Value{f32(6, 4), f32(4)}},
		{layer, []gorgonia.Value{f32(6, 4), f32(4), f32(4)}},
		{&normGradOp{fwd: *rms}, []gorgonia.Value{f32(6, 4), f32(4), f32(6, 4)}},
		{&normGradOp{fwd: *layer, wrtG: true}, []gorgonia.Value{f32(6, 4), f32(4), f32(6, 4)}},
		{bmm, []gorgonia.Value{f32(1, 2, 3, 4), f32(1, 2, 4, 5)}},
		{split, []gorgonia.Value{f32(6, 4)}},
		{merge, []gorgonia.Value{f32(1, 2, 3, 4)}},
		{reshape, []gorgonia.Value{f32(6, 4)}},
		{matmul, []gorgonia.Value{f32(6, 4), f32(4, 5), f32(5)}},
		{rope, []gorgonia.Value{f32(1, 2, 3, 4)}},
		{rope.(*ropeOp).grads()[0].Op.(gorgonia.Op), []gorgonia.Value{f32(1, 2, 3, 4)}},
		{transpose, []gorgonia.Value{f32(1, 2, 3, 4)}},
	} {
		add(c.op, "valid", "", nil, c.valid...)
		add(c.op, "no inputs", "got 0 inputs", opkit.ErrValue)
		with := func(i int, v gorgonia.Value) []gorgonia.Value {
			in := append([]gorgonia.Value(nil), c.valid...)
			in[i] = v
			return in
		}
		add(c.op, "nil input", "input 0", opkit.ErrValue, with(0, nil)...)
		add(c.op, "zero tensor.Dense", "uninitialised", opkit.ErrValue, with(0, &tensor.Dense{})...)
		x0 := c.valid[0].Shape()
		add(c.op, "int tensor", "dtype int", opkit.ErrDtype, with(0, dense(tensor.Int, x0...))...)
		add(c.op, "another shape", "shape", opkit.ErrShape, with(0, f32(x0[0]+1, x0.TotalSize()))...)
		if len(c.valid) > 1 {
			last := len(c.valid) - 1
			add(c.op, "mixed dtypes", "dtype float64", opkit.ErrDtype, with(last, dense(tensor.Float64, c.valid[last].Shape()...))...)
		}
	}
	// Σrows takes any matrix, CausalMask any rank ≥ 2.
	sum := &sumRowsOp{}
	add(sum, "valid", "", nil, f32(6, 4))
	add(sum, "no inputs", "got 0 inputs", opkit.ErrValue)
	add(sum, "zero tensor.Dense", "uninitialised", opkit.ErrValue, &tensor.Dense{})
	add(sum, "a vector", "matrix", opkit.ErrShape, f32(6))
	mask := must(CausalMask(a, 0))
	add(mask, "valid", "", nil, f32(2, 3, 3))
	add(mask, "no inputs", "got 0 inputs", opkit.ErrValue)
	add(mask, "nil input", "input 0", opkit.ErrValue, nil)
	add(mask, "int tensor", "dtype int", opkit.ErrDtype, dense(tensor.Int, 2, 3))
	add(mask, "a vector", "rank", opkit.ErrShape, f32(6))
	cases = append(cases, errtest.Case{Name: "preallocated of another shape", Fn: mask.String(), Arg: "preallocated", Want: opkit.ErrValue,
		Call: func() error {
			_, err := mask.(gorgonia.UsePreallocDoer).UsePreallocDo(f32(3, 2), f32(2, 3))
			return err
		}})
	errtest.Run(t, cases)
}
