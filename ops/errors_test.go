package ops

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/actq/actq/internal/errtest"
	"github.com/actq/actq/internal/opkit"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestErrors is the audit of every exported function of ops: each bad
// input (nil node, node of another dtype or outside any graph, scalar or
// axis out of range for the softmaxes) returns an error wrapping the right
// sentinel and naming the function and the argument; valid inputs beside
// them succeed; and nothing panics. It also runs each op's
// Do, UsePreallocDo and gradient Do on bad run-time values (which the
// machines, or a caller holding node.Op(), can pass): errors naming the
// op, never panics.
func TestErrors(t *testing.T) {
	g := gorgonia.NewGraph()
	m32 := gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(2, 3), gorgonia.WithName("m32"))
	m64 := gorgonia.NewMatrix(g, tensor.Float64, gorgonia.WithShape(2, 3), gorgonia.WithName("m64"))
	s32 := gorgonia.NewScalar(g, tensor.Float32, gorgonia.WithName("s32"))
	empty := gorgonia.NewTensor(g, tensor.Float32, 3, gorgonia.WithShape(2, 0, 3), gorgonia.WithName("empty"))
	r4 := gorgonia.NewTensor(g, tensor.Float64, 4, gorgonia.WithShape(2, 1, 3, 2), gorgonia.WithName("r4"))
	loose := gorgonia.NewConstant(tensor.New(tensor.WithShape(2, 3), tensor.WithBacking(make([]float32, 6))))
	bad := map[string]*gorgonia.Node{}
	for _, dt := range []tensor.Dtype{tensor.Int, tensor.Int8, tensor.Int32, tensor.Int64, tensor.Uint8, tensor.Bool, tensor.Complex64, tensor.Complex128} {
		bad[dt.String()] = gorgonia.NewMatrix(g, dt, gorgonia.WithShape(2, 3), gorgonia.WithName("x_"+dt.String()))
	}
	bad["int scalar"] = gorgonia.NewScalar(g, tensor.Int, gorgonia.WithName("int_scalar"))

	var cases []errtest.Case
	add := func(fn, name, arg string, want error, call func() error) {
		cases = append(cases, errtest.Case{Name: name, Fn: fn, Arg: arg, Want: want, Call: call})
	}
	type builder func(x *gorgonia.Node) (*gorgonia.Node, error)
	builders := []struct {
		fn      string
		build   builder
		softmax bool
	}{
		{"ops.GELU", GELU, false},
		{"ops.GELUTanh", GELUTanh, false},
		{"ops.SiLU", SiLU, false},
		{"ops.ReLU", ReLU, false},
		{"ops.CheckFinite", func(x *gorgonia.Node) (*gorgonia.Node, error) { return CheckFinite(x, "label") }, false},
		{"ops.CheckFiniteMasked", func(x *gorgonia.Node) (*gorgonia.Node, error) { return CheckFiniteMasked(x, "") }, false},
		{"ops.Softmax", func(x *gorgonia.Node) (*gorgonia.Node, error) { return Softmax(x) }, true},
		{"ops.LogSoftmax", func(x *gorgonia.Node) (*gorgonia.Node, error) { return LogSoftmax(x) }, true},
	}
	node := func(b builder, x *gorgonia.Node) func() error {
		return func() error {
			n, err := b(x)
			if err == nil && n == nil {
				return errors.New("nil node and no error")
			}
			if err != nil && n != nil {
				return fmt.Errorf("a node beside the error %w", err)
			}
			return err
		}
	}
	for _, b := range builders {
		add(b.fn, "nil x", "x", ErrNilNode, node(b.build, nil))
		for name, x := range bad {
			add(b.fn, name+" x", "x has dtype", ErrDtype, node(b.build, x))
		}
		add(b.fn, "x in no graph", "x is in no graph", ErrValue, node(b.build, loose))
		add(b.fn, "float32 matrix", "", nil, node(b.build, m32))
		add(b.fn, "float64 matrix", "", nil, node(b.build, m64))
		add(b.fn, "empty tensor", "", nil, node(b.build, empty))
		if b.softmax {
			add(b.fn, "scalar x", "x is a scalar", ErrShape, node(b.build, s32))
		} else {
			add(b.fn, "scalar x", "", nil, node(b.build, s32))
		}
	}
	softmaxes := map[string]func(*gorgonia.Node, ...int) (*gorgonia.Node, error){"ops.Softmax": Softmax, "ops.LogSoftmax": LogSoftmax}
	for fn, f := range softmaxes {
		for _, c := range []struct {
			axes []int
			want error
		}{
			{[]int{4}, ErrAxis}, {[]int{-5}, ErrAxis}, {[]int{math.MaxInt}, ErrAxis}, {[]int{math.MinInt}, ErrAxis},
			{[]int{0, 1}, ErrAxis}, {[]int{1, 1, 1}, ErrAxis},
			{[]int{0}, nil}, {[]int{3}, nil}, {[]int{-4}, nil}, {[]int{-1}, nil}, {nil, nil},
		} {
			axes := c.axes
			add(fn, fmt.Sprintf("axes %v, rank 4", axes), "axis", c.want, func() error { _, err := f(r4, axes...); return err })
		}
		add(fn, "axis 1 of an empty dimension", "", nil, func() error { _, err := f(empty, 1); return err })
	}
	add("check", "opkit.CheckFloatNode names fn and arg", "arg", ErrNilNode, func() error { return opkit.CheckFloatNode("check", "arg", nil) })
	add("check", "opkit.CheckFloatNode dtype", "arg has dtype", ErrDtype, func() error { return opkit.CheckFloatNode("check", "arg", bad["int"]) })
	add("check", "opkit.CheckFloatNode valid", "", nil, func() error { return opkit.CheckFloatNode("check", "arg", m64) })
	add("ops.FindNonFinite", "nil and foreign errors", "", nil, func() error {
		if _, ok := FindNonFinite(nil); ok {
			return errors.New("found in nil")
		}
		if _, ok := FindNonFinite(errors.New("other")); ok {
			return errors.New("found in another error")
		}
		_ = (&NonFiniteError{}).Error()
		if nf, ok := FindNonFinite(fmt.Errorf("wrapped twice: %w", fmt.Errorf("once: %w", &NonFiniteError{Label: "a"}))); !ok || nf.Label != "a" {
			return errors.New("a wrapped *NonFiniteError not found")
		}
		return nil
	})
	cases = append(cases, runtimeCases()...)
	errtest.Run(t, cases)
}

// runtimeCases are the ops' Do, UsePreallocDo and gradient Do on bad
// values: errors wrapping ErrValue, ErrDtype, ErrShape or ErrAxis that
// name the op, and no panic.
func runtimeCases() []errtest.Case {
	dense := func(dt tensor.Dtype, shape ...int) *tensor.Dense {
		return tensor.New(tensor.Of(dt), tensor.WithShape(shape...))
	}
	f32, f64 := dense(tensor.Float32, 2, 3), dense(tensor.Float64, 2, 3)
	type op interface {
		gorgonia.Op
		UsePreallocDo(prealloc gorgonia.Value, inputs ...gorgonia.Value) (gorgonia.Value, error)
	}
	fwd := []op{activationOp{actGELU}, activationOp{actSiLU}, activationOp{actReLU}, activationOp{actGELUTanh},
		checkFiniteOp{label: "l"}, checkFiniteOp{label: "m", allowNegInf: true}, softmaxOp{axis: 1}, softmaxOp{axis: 1, log: true}}
	bwd := []op{activationGradOp{actGELU}, activationGradOp{actGELUTanh}, activationGradOp{actSiLU}, activationGradOp{actReLU},
		softmaxGradOp{axis: 1}, softmaxGradOp{axis: 1, log: true}}
	var cases []errtest.Case
	add := func(o op, name, arg string, want error, call func() error) {
		cases = append(cases, errtest.Case{Name: "run time: " + name, Fn: o.String(), Arg: arg, Want: want, Call: call})
	}
	do := func(o op, in ...gorgonia.Value) func() error {
		return func() error { _, err := o.Do(in...); return err }
	}
	for _, o := range fwd {
		_, isSoftmax := o.(softmaxOp)
		add(o, "no inputs", "got 0 inputs", ErrValue, do(o))
		add(o, "two inputs", "got 2 inputs", ErrValue, do(o, f32, f32))
		add(o, "nil value", "nil", ErrValue, do(o, nil))
		add(o, "nil *tensor.Dense", "uninitialised", ErrValue, do(o, (*tensor.Dense)(nil)))
		add(o, "zero *tensor.Dense", "uninitialised", ErrValue, do(o, &tensor.Dense{}))
		add(o, "nil *F32", "uninitialised", ErrValue, do(o, (*gorgonia.F32)(nil)))
		add(o, "int tensor", "dtype int", ErrDtype, do(o, dense(tensor.Int, 2, 3)))
		add(o, "prealloc of another shape", "preallocated", ErrValue, func() error { _, err := o.UsePreallocDo(dense(tensor.Float32, 3, 2), f32); return err })
		add(o, "prealloc of another dtype", "preallocated", ErrValue, func() error { _, err := o.UsePreallocDo(f64, f32); return err })
		add(o, "nil prealloc tensor", "preallocated", ErrValue, func() error { _, err := o.UsePreallocDo((*tensor.Dense)(nil), f32); return err })
		add(o, "valid", "", nil, do(o, f32))
		add(o, "valid in place", "", nil, func() error { v := f64.Clone().(*tensor.Dense); _, err := o.UsePreallocDo(v, v); return err })
		if isSoftmax {
			add(o, "scalar", "input 0", ErrShape, do(o, gorgonia.NewF32(1)))
			add(o, "rank 1 for axis 1", "axis 1", ErrAxis, do(o, dense(tensor.Float32, 3)))
		} else {
			add(o, "scalar", "", nil, do(o, gorgonia.NewF64(1)))
		}
	}
	for _, o := range bwd {
		add(o, "one input", "got 1 inputs", ErrValue, do(o, f32))
		add(o, "dy of another size", "input 1", ErrValue, do(o, f32, dense(tensor.Float32, 3, 3)))
		add(o, "dy of another dtype", "input 1", ErrValue, do(o, f32, f64))
		add(o, "nil dy", "input 1", ErrValue, do(o, f32, nil))
		add(o, "zero *tensor.Dense dy", "input 1", ErrValue, do(o, f32, &tensor.Dense{}))
		add(o, "valid", "", nil, do(o, f32, f32))
	}
	return cases
}
