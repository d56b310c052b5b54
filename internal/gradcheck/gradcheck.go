// Package gradcheck checks a graph's analytic gradients against central
// finite differences on both of Gorgonia's machines.
package gradcheck

import (
	"fmt"
	"math"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Build adds the function under test to g, applied to the input nodes xs,
// and returns its output node.
type Build func(g *gorgonia.ExprGraph, xs gorgonia.Nodes) (*gorgonia.Node, error)

// Options tune a check. The zero value is float64, eps 1e-6, tolerance
// 1e-6 absolute + 1e-5 relative.
type Options struct {
	Eps      float64 // central-difference step
	Abs, Rel float64 // |analytic − numeric| ≤ Abs + Rel·|numeric|
	// Skip marks input elements (input, flat index) where the function is
	// not differentiable (a kink within Eps); they are not compared.
	Skip func(input, index int) bool
}

func (o Options) withDefaults() Options {
	if o.Eps == 0 {
		o.Eps = 1e-6
	}
	if o.Abs == 0 && o.Rel == 0 {
		o.Abs, o.Rel = 1e-6, 1e-5
	}
	return o
}

// Result is what a check measured.
type Result struct {
	Tape, Lisp, Numeric [][]float64 // per input, the gradient of the cost
	MaxTapeErr          float64     // max |tape − numeric| / (Abs + Rel·|numeric|)
	MaxLispErr          float64
}

// Check differentiates cost = Σ w ⊙ build(xs), where w is a fixed
// non-uniform weight (so a backward pass that ignores its incoming gradient
// fails), with respect to every input, three ways: gorgonia.Grad on a
// TapeMachine, a LispMachine, and central differences of the cost. The
// inputs must be Float64 *tensor.Dense values; they are not modified.
// It returns an error if any comparison fails.
func Check(inputs []*tensor.Dense, build Build, opts Options) (*Result, error) {
	opts = opts.withDefaults()
	res := &Result{}
	var err error
	if res.Tape, err = tapeGrads(inputs, build); err != nil {
		return res, fmt.Errorf("tape machine: %w", err)
	}
	if res.Lisp, err = lispGrads(inputs, build); err != nil {
		return res, fmt.Errorf("lisp machine: %w", err)
	}
	if res.Numeric, err = numericGrads(inputs, build, opts.Eps); err != nil {
		return res, fmt.Errorf("finite differences: %w", err)
	}
	var failures []string
	for i := range inputs {
		for j, num := range res.Numeric[i] {
			if opts.Skip != nil && opts.Skip(i, j) {
				continue
			}
			tol := opts.Abs + opts.Rel*math.Abs(num)
			for _, m := range []struct {
				name string
				got  float64
				max  *float64
			}{{"tape", res.Tape[i][j], &res.MaxTapeErr}, {"lisp", res.Lisp[i][j], &res.MaxLispErr}} {
				e := math.Abs(m.got-num) / tol
				if math.IsNaN(e) {
					e = math.Inf(1)
				}
				*m.max = math.Max(*m.max, e)
				if e > 1 && len(failures) < 10 {
					failures = append(failures, fmt.Sprintf("input %d[%d]: %s %.10g, numeric %.10g", i, j, m.name, m.got, num))
				}
			}
		}
	}
	if len(failures) > 0 {
		return res, fmt.Errorf("gradient mismatch (max error/tol: tape %.3g, lisp %.3g): %v", res.MaxTapeErr, res.MaxLispErr, failures)
	}
	return res, nil
}

// graph builds the cost graph on fresh copies of the inputs.
func graph(inputs []*tensor.Dense, build Build) (*gorgonia.ExprGraph, gorgonia.Nodes, *gorgonia.Node, error) {
	g := gorgonia.NewGraph()
	xs := make(gorgonia.Nodes, len(inputs))
	for i, in := range inputs {
		if in.Dtype() != tensor.Float64 {
			return nil, nil, nil, fmt.Errorf("input %d has dtype %v, want Float64", i, in.Dtype())
		}
		name := gorgonia.WithName(fmt.Sprintf("gradcheck_x%d", i))
		if in.Shape().IsScalar() {
			// A 0-d tensor would make a tensor-typed node; Gorgonia's
			// scalars are *F64 values.
			xs[i] = gorgonia.NodeFromAny(g, gorgonia.NewF64(in.Float64s()[0]), name)
		} else {
			xs[i] = gorgonia.NodeFromAny(g, in.Clone().(*tensor.Dense), name)
		}
	}
	out, err := build(g, xs)
	if err != nil {
		return nil, nil, nil, err
	}
	var weighted *gorgonia.Node
	if out.IsScalar() {
		w := gorgonia.NewConstant(1.7, gorgonia.WithName("gradcheck_w"))
		weighted, err = gorgonia.Mul(out, w)
	} else {
		n := out.Shape().TotalSize()
		wd := make([]float64, n)
		for k := range wd {
			wd[k] = 0.5 + float64((k*7)%11)/5 // in [0.5, 2.5], non-uniform
		}
		w := gorgonia.NewConstant(tensor.New(tensor.WithShape(out.Shape().Clone()...), tensor.WithBacking(wd)), gorgonia.WithName("gradcheck_w"))
		weighted, err = gorgonia.HadamardProd(out, w)
	}
	if err != nil {
		return nil, nil, nil, err
	}
	cost, err := gorgonia.Sum(weighted)
	if err != nil {
		return nil, nil, nil, err
	}
	return g, xs, cost, nil
}

func tapeGrads(inputs []*tensor.Dense, build Build) ([][]float64, error) {
	g, xs, cost, err := graph(inputs, build)
	if err != nil {
		return nil, err
	}
	grads, err := gorgonia.Grad(cost, xs...)
	if err != nil {
		return nil, err
	}
	m := gorgonia.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		return nil, err
	}
	out := make([][]float64, len(xs))
	for i, gr := range grads {
		if out[i], err = values(gr.Value()); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func lispGrads(inputs []*tensor.Dense, build Build) ([][]float64, error) {
	g, xs, _, err := graph(inputs, build)
	if err != nil {
		return nil, err
	}
	m := gorgonia.NewLispMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		return nil, err
	}
	out := make([][]float64, len(xs))
	for i, x := range xs {
		gv, err := x.Grad()
		if err != nil {
			return nil, err
		}
		if out[i], err = values(gv); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func numericGrads(inputs []*tensor.Dense, build Build, eps float64) ([][]float64, error) {
	g, xs, cost, err := graph(inputs, build)
	if err != nil {
		return nil, err
	}
	m := gorgonia.NewTapeMachine(g)
	defer m.Close()
	eval := func() (float64, error) {
		m.Reset()
		if err := m.RunAll(); err != nil {
			return 0, err
		}
		return cost.Value().Data().(float64), nil
	}
	out := make([][]float64, len(xs))
	for i, x := range xs {
		var get func(j int) float64
		var set func(j int, v float64)
		n := 1
		switch v := x.Value().(type) {
		case *tensor.Dense:
			data := v.Float64s()
			n = len(data)
			get, set = func(j int) float64 { return data[j] }, func(j int, f float64) { data[j] = f }
		case *gorgonia.F64:
			get, set = func(int) float64 { return float64(*v) }, func(_ int, f float64) { *v = gorgonia.F64(f) }
		default:
			return nil, fmt.Errorf("input %d holds %T", i, v)
		}
		out[i] = make([]float64, n)
		for j := range n {
			orig := get(j)
			set(j, orig+eps)
			fp, err := eval()
			if err != nil {
				return nil, err
			}
			set(j, orig-eps)
			fm, err := eval()
			if err != nil {
				return nil, err
			}
			set(j, orig)
			out[i][j] = (fp - fm) / (2 * eps)
		}
	}
	return out, nil
}

func values(v gorgonia.Value) ([]float64, error) {
	switch d := v.Data().(type) {
	case []float64:
		return append([]float64(nil), d...), nil
	case float64:
		return []float64{d}, nil
	}
	return nil, fmt.Errorf("gradient value %T, want float64 data", v.Data())
}
