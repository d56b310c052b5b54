package graph

import (
	"fmt"
	"testing"

	"github.com/actq/actq/internal/gradcheck"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestBMM compares bmm with gorgonia.BatchedMatMul for every combination
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
			g := gorgonia.NewGraph()
			a := gorgonia.NodeFromAny(g, initValue(1, "a", initNormal, dt, sa...), gorgonia.WithName("a"))
			bb := gorgonia.NodeFromAny(g, initValue(2, "b", initNormal, dt, sb...), gorgonia.WithName("b"))
			got, err := bmm(a, bb, tr[0], tr[1])
			if err != nil {
				t.Fatal(err)
			}
			want, err := gorgonia.BatchedMatMul(a, bb, tr[0], tr[1])
			if err != nil {
				t.Fatal(err)
			}
			var gv, wv gorgonia.Value
			gorgonia.Read(got, &gv)
			gorgonia.Read(want, &wv)
			vm := gorgonia.NewTapeMachine(g)
			if err := vm.RunAll(); err != nil {
				t.Fatal(err)
			}
			vm.Close()
			if !got.Shape().Eq(want.Shape()) {
				t.Fatalf("%s: shape %v, want %v", name, got.Shape(), want.Shape())
			}
			x, y := float64sOf(gv), float64sOf(wv)
			for i := range x {
				if d := x[i] - y[i]; d > 1e-5 || d < -1e-5 {
					t.Fatalf("%s %v: [%d] = %g, want %g", name, dt, i, x[i], y[i])
				}
			}
		}
		inputs := []*tensor.Dense{initValue(3, "a", initNormal, tensor.Float64, sa...), initValue(4, "b", initNormal, tensor.Float64, sb...)}
		if _, err := gradcheck.Check(inputs, func(g *gorgonia.ExprGraph, xs gorgonia.Nodes) (*gorgonia.Node, error) {
			return bmm(xs[0], xs[1], tr[0], tr[1])
		}, gradcheck.Options{}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	g := gorgonia.NewGraph()
	a := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(1, 2, 3, 4), gorgonia.WithName("a"))
	c := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(1, 2, 5, 4), gorgonia.WithName("c"))
	if _, err := bmm(a, c, false, false); err == nil {
		t.Error("inner sizes 4 and 5: no error")
	}
}

// TestHeads checks that splitting heads equals Reshape + Transpose(0, 2,
// 1, 3), that merging undoes it, and the gradients on both machines.
func TestHeads(t *testing.T) {
	const b, s, h, dh = 2, 3, 4, 5
	split := headsOp{batch: b, seq: s, heads: h, dh: dh, split: true}
	g := gorgonia.NewGraph()
	x := gorgonia.NodeFromAny(g, initValue(1, "x", initNormal, tensor.Float32, b*s, h*dh), gorgonia.WithName("x"))
	got, err := gorgonia.ApplyOp(split, x)
	if err != nil {
		t.Fatal(err)
	}
	back, err := gorgonia.ApplyOp(split.inverse(), got)
	if err != nil {
		t.Fatal(err)
	}
	r, err := gorgonia.Reshape(x, tensor.Shape{b, s, h, dh})
	if err != nil {
		t.Fatal(err)
	}
	want, err := gorgonia.Transpose(r, 0, 2, 1, 3)
	if err != nil {
		t.Fatal(err)
	}
	var gv, wv, bv gorgonia.Value
	gorgonia.Read(got, &gv)
	gorgonia.Read(want, &wv)
	gorgonia.Read(back, &bv)
	vm := gorgonia.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	if !equalDense(gv.(*tensor.Dense), wv.(*tensor.Dense)) {
		t.Error("split heads differs from Reshape + Transpose")
	}
	if !equalDense(bv.(*tensor.Dense), x.Value().(*tensor.Dense)) {
		t.Error("merge(split(x)) ≠ x")
	}
	inputs := []*tensor.Dense{initValue(2, "x", initNormal, tensor.Float64, b*s, h*dh)}
	if _, err := gradcheck.Check(inputs, func(g *gorgonia.ExprGraph, xs gorgonia.Nodes) (*gorgonia.Node, error) {
		y, err := gorgonia.ApplyOp(split, xs[0])
		if err != nil {
			return nil, err
		}
		sq, err := gorgonia.Square(y) // something nonlinear between the two
		if err != nil {
			return nil, err
		}
		return gorgonia.ApplyOp(split.inverse(), sq)
	}, gradcheck.Options{}); err != nil {
		t.Error(err)
	}
}
