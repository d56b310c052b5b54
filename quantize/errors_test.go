package quantize

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/actq/actq/internal/errtest"
	"github.com/actq/actq/ops"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestErrors is the audit of every exported function and method of
// quantize: each bad input (nil or foreign node, other dtypes,
// every bad Spec field, bad LSQ scale nodes and configs, bad observer
// configs and batches) returns an error wrapping the right sentinel and
// naming the function and the argument or field; valid inputs beside them
// succeed; functions without an error result give their documented value
// on bad input; and nothing panics, including the ops' run-time entry
// points on bad values.
func TestErrors(t *testing.T) {
	g := gorgonia.NewGraph()
	m := gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(4, 6), gorgonia.WithName("m"))
	m64 := gorgonia.NewMatrix(g, tensor.Float64, gorgonia.WithShape(4, 6), gorgonia.WithName("m64"))
	sc := gorgonia.NewScalar(g, tensor.Float32, gorgonia.WithName("sc"))
	empty := gorgonia.NewTensor(g, tensor.Float32, 2, gorgonia.WithShape(0, 6), gorgonia.WithName("empty"))
	loose := gorgonia.NewConstant(tensor.New(tensor.WithShape(4, 6), tensor.WithBacking(make([]float32, 24))))
	dtypes := map[string]*gorgonia.Node{}
	for _, dt := range []tensor.Dtype{tensor.Int, tensor.Int32, tensor.Uint8, tensor.Bool, tensor.Complex128} {
		dtypes[dt.String()] = gorgonia.NewMatrix(g, dt, gorgonia.WithShape(4, 6), gorgonia.WithName("x_"+dt.String()))
	}
	ones := func(n int) []float64 {
		s := make([]float64, n)
		for i := range s {
			s[i] = 1
		}
		return s
	}

	var cases []errtest.Case
	add := func(fn, name, arg string, want error, call func() error) {
		cases = append(cases, errtest.Case{Name: name, Fn: fn, Arg: arg, Want: want, Call: call})
	}
	// FakeQuant, with and without options.
	fq := func(x *gorgonia.Node, s Spec, opts ...Option) func() error {
		return func() error {
			n, err := FakeQuant(x, s, opts...)
			if (n == nil) == (err == nil) {
				return fmt.Errorf("node %v and error %w", n, err)
			}
			return err
		}
	}
	const fqn = "quantize.FakeQuant"
	add(fqn, "nil x", "x", ops.ErrNilNode, fq(nil, Spec{}))
	for name, x := range dtypes {
		add(fqn, name+" x", "x has dtype", ops.ErrDtype, fq(x, Spec{}))
	}
	add(fqn, "x in no graph", "x is in no graph", ops.ErrValue, fq(loose, Spec{}))
	nan, inf := math.NaN(), math.Inf(1)
	for _, c := range []struct {
		name string
		x    *gorgonia.Node
		s    Spec
		want error
		arg  string
	}{
		{"zero scale", m, Spec{Scale: []float64{0}}, ErrSpec, "Spec.Scale[0] = 0 is not positive"},
		{"negative scale", m, Spec{Scale: []float64{-1}}, ErrSpec, "Spec.Scale[0]"},
		{"NaN scale", m, Spec{Scale: []float64{nan}}, ErrSpec, "Spec.Scale[0] = NaN"},
		{"Inf scale", m, Spec{Scale: []float64{inf}}, ErrSpec, "Spec.Scale[0] = +Inf"},
		{"-Inf scale", m, Spec{Scale: []float64{-inf}}, ErrSpec, "Spec.Scale[0]"},
		{"NaN among channel scales", m, Spec{Granularity: PerChannel, Scale: []float64{1, 1, nan, 1}}, ErrSpec, "Spec.Scale[2]"},
		{"scale underflows float32", m, Spec{Scale: []float64{1e-50}}, ErrSpec, "Spec.Scale[0]"},
		{"scale overflows float32", m, Spec{Scale: []float64{1e39}}, ErrSpec, "Spec.Scale[0]"},
		{"scale reciprocal overflows float32", m, Spec{Scale: []float64{1e-45}}, ErrSpec, "Spec.Scale[0]"},
		{"scale reciprocal overflows float64", m64, Spec{Scale: []float64{5e-324}}, ErrSpec, "Spec.Scale[0]"},
		{"scale fine in float64", m64, Spec{Scale: []float64{1e-50}}, nil, ""},
		{"no scales (empty, not nil)", m, Spec{Scale: []float64{}}, ErrSpec, "Spec.Scale has 0 scales, want 1"},
		{"two scales per tensor", m, Spec{Scale: []float64{1, 1}}, ErrSpec, "Spec.Scale has 2 scales, want 1"},
		{"scales per channel", m, Spec{Granularity: PerChannel, Axis: 1, Scale: ones(4)}, ErrSpec, "Spec.Scale has 4 scales, want 6"},
		{"scales per group", m, Spec{Granularity: PerGroup, GroupSize: 3, Scale: ones(4)}, ErrSpec, "Spec.Scale has 4 scales, want 8"},
		{"zero points count", m, Spec{Scale: []float64{1}, ZeroPoint: []int{0, 0}}, ErrSpec, "Spec.ZeroPoint has 2 zero points"},
		{"zero point high", m, Spec{Format: Int4, Scale: []float64{1}, ZeroPoint: []int{8}}, ErrSpec, "Spec.ZeroPoint[0] = 8"},
		{"zero point low", m, Spec{Format: UInt8, Scale: []float64{1}, ZeroPoint: []int{-1}}, ErrSpec, "Spec.ZeroPoint[0] = -1"},
		{"zero point huge", m, Spec{Format: Int8, Scale: []float64{1}, ZeroPoint: []int{math.MaxInt}}, ErrSpec, "Spec.ZeroPoint[0]"},
		{"narrow uint zero point 0", m, Spec{Format: UInt8, NarrowRange: true, Scale: []float64{1}}, ErrSpec, "Spec.ZeroPoint is nil"},
		{"narrow uint symmetric dynamic", m, Spec{Format: UInt4, NarrowRange: true, Symmetric: true}, ErrSpec, "Spec.Symmetric"},
		{"symmetric with zero point", m, Spec{Symmetric: true, Scale: []float64{1}, ZeroPoint: []int{3}}, ErrSpec, "Spec.ZeroPoint[0] = 3 with Symmetric"},
		{"zero point without scale", m, Spec{ZeroPoint: []int{0}}, ErrSpec, "Spec.ZeroPoint given without Scale"},
		{"float zero point", m, Spec{Format: FP8E4M3, Scale: []float64{1}, ZeroPoint: []int{1}}, ErrSpec, "Spec.ZeroPoint[0] = 1"},
		{"float zero points count", m, Spec{Format: FP16, Scale: []float64{1}, ZeroPoint: []int{0, 0}}, ErrSpec, "Spec.ZeroPoint has 2"},
		{"group size 0", m, Spec{Granularity: PerGroup}, ErrSpec, "Spec.GroupSize 0"},
		{"group size negative", m, Spec{Granularity: PerGroup, GroupSize: -2}, ErrSpec, "Spec.GroupSize -2"},
		{"group size not dividing", m, Spec{Granularity: PerGroup, GroupSize: 4}, ErrSpec, "Spec.GroupSize 4 does not divide"},
		{"group size larger than the row", m, Spec{Granularity: PerGroup, GroupSize: 12}, ErrSpec, "Spec.GroupSize 12"},
		{"group size MaxInt", m, Spec{Granularity: PerGroup, GroupSize: math.MaxInt}, ErrSpec, "Spec.GroupSize"},
		{"axis high", m, Spec{Granularity: PerChannel, Axis: 2}, ops.ErrAxis, "Spec.Axis 2"},
		{"axis low", m, Spec{Granularity: PerChannel, Axis: -3}, ops.ErrAxis, "Spec.Axis -3"},
		{"axis MinInt", m, Spec{Granularity: PerChannel, Axis: math.MinInt}, ops.ErrAxis, "Spec.Axis"},
		{"axis MaxInt", m, Spec{Granularity: PerChannel, Axis: math.MaxInt}, ops.ErrAxis, "Spec.Axis"},
		{"axis negative ok", m, Spec{Granularity: PerChannel, Axis: -1, Scale: ones(6)}, nil, ""},
		{"axis ignored per tensor", m, Spec{Axis: 99}, nil, ""},
		{"scalar per channel", sc, Spec{Granularity: PerChannel}, ops.ErrShape, "x is a scalar"},
		{"scalar per group", sc, Spec{Granularity: PerGroup, GroupSize: 1}, ops.ErrShape, "x is a scalar"},
		{"scalar per tensor", sc, Spec{Format: Int4}, nil, ""},
		{"unknown format", m, Spec{Format: Format(42)}, ErrSpec, "Spec.Format is Format(42)"},
		{"negative format", m, Spec{Format: Format(-1)}, ErrSpec, "Spec.Format"},
		{"unknown granularity", m, Spec{Granularity: Granularity(7)}, ErrSpec, "Spec.Granularity is Granularity(7)"},
		{"negative granularity", m, Spec{Granularity: Granularity(-1)}, ErrSpec, "Spec.Granularity"},
		{"empty tensor", empty, Spec{}, nil, ""},
		{"empty tensor per channel", empty, Spec{Granularity: PerChannel, Axis: 0, Scale: []float64{}}, nil, ""},
		{"every format, dynamic", m, Spec{Format: FP8E5M2, DynamicFloatScale: true}, nil, ""},
	} {
		add(fqn, c.name, c.arg, c.want, fq(c.x, c.s))
	}
	add(fqn, "nil options", "", nil, fq(m, Spec{}, nil, WithStats(nil), nil, WithObserver(nil)))

	// FakeQuantLearnable.
	const lqn = "quantize.FakeQuantLearnable"
	s1 := gorgonia.NewScalar(g, tensor.Float32, gorgonia.WithName("s1"))
	s4 := gorgonia.NewVector(g, tensor.Float32, gorgonia.WithShape(4), gorgonia.WithName("s4"))
	s6 := gorgonia.NewVector(g, tensor.Float32, gorgonia.WithShape(6), gorgonia.WithName("s6"))
	v1 := gorgonia.NewVector(g, tensor.Float32, gorgonia.WithShape(1), gorgonia.WithName("v1"))
	s11 := gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(1, 1), gorgonia.WithName("s11"))
	s64 := gorgonia.NewScalar(g, tensor.Float64, gorgonia.WithName("s64"))
	sInt := gorgonia.NewScalar(g, tensor.Int, gorgonia.WithName("sInt"))
	other := gorgonia.NewScalar(gorgonia.NewGraph(), tensor.Float32, gorgonia.WithName("other"))
	looseS := gorgonia.NewConstant(float32(1))
	lq := func(x, s *gorgonia.Node, spec Spec, cfg LSQConfig, opts ...Option) func() error {
		return func() error { _, err := FakeQuantLearnable(x, s, spec, cfg, opts...); return err }
	}
	for _, c := range []struct {
		name string
		x, s *gorgonia.Node
		spec Spec
		cfg  LSQConfig
		want error
		arg  string
	}{
		{"nil x", nil, s1, Spec{}, LSQConfig{}, ops.ErrNilNode, "x"},
		{"nil scale", m, nil, Spec{}, LSQConfig{}, ops.ErrNilNode, "scale"},
		{"int x", dtypes["int"], s1, Spec{}, LSQConfig{}, ops.ErrDtype, "x has dtype"},
		{"int scale", m, sInt, Spec{}, LSQConfig{}, ops.ErrDtype, "scale has dtype"},
		{"scale dtype differs", m, s64, Spec{}, LSQConfig{}, ops.ErrDtype, "scale has dtype"},
		{"x in no graph", loose, s1, Spec{}, LSQConfig{}, ops.ErrValue, "x is in no graph"},
		{"scale in no graph", m, looseS, Spec{}, LSQConfig{}, ops.ErrValue, "scale is in no graph"},
		{"scale in another graph", m, other, Spec{}, LSQConfig{}, ops.ErrValue, "scale is in another graph"},
		{"float format", m, s1, Spec{Format: FP8E4M3}, LSQConfig{}, ErrSpec, "Spec.Format"},
		{"fixed scale set", m, s1, Spec{Scale: []float64{1}}, LSQConfig{}, ErrSpec, "Spec.Scale is set"},
		{"scale shape", m, s4, Spec{}, LSQConfig{}, ops.ErrShape, "scale has shape (4)"},
		{"scale matrix", m, s11, Spec{}, LSQConfig{}, ops.ErrShape, "scale has shape (1, 1)"},
		{"per channel needs 6", m, s4, Spec{Granularity: PerChannel, Axis: 1}, LSQConfig{}, ops.ErrShape, "scale has shape"},
		{"per channel scalar", m, s1, Spec{Granularity: PerChannel, Axis: 1}, LSQConfig{}, ops.ErrShape, "scale has shape"},
		{"per channel bad axis", m, s6, Spec{Granularity: PerChannel, Axis: 5}, LSQConfig{}, ops.ErrAxis, "Spec.Axis 5"},
		{"per group bad size", m, s6, Spec{Granularity: PerGroup, GroupSize: 5}, LSQConfig{}, ErrSpec, "Spec.GroupSize 5"},
		{"zero point range", m, s1, Spec{Format: Int4, ZeroPoint: []int{9}}, LSQConfig{}, ErrSpec, "Spec.ZeroPoint[0] = 9"},
		{"zero points count", m, s1, Spec{ZeroPoint: []int{0, 0}}, LSQConfig{}, ErrSpec, "Spec.ZeroPoint has 2"},
		{"negative grad factor", m, s1, Spec{}, LSQConfig{GradFactor: -1}, ErrSpec, "LSQConfig.GradFactor -1"},
		{"NaN grad factor", m, s1, Spec{}, LSQConfig{GradFactor: nan}, ErrSpec, "LSQConfig.GradFactor NaN"},
		{"Inf grad factor", m, s1, Spec{}, LSQConfig{GradFactor: inf}, ErrSpec, "LSQConfig.GradFactor +Inf"},
		{"grad factor of an empty tensor", m, s1, Spec{}, LSQConfig{GradFactor: LSQGradFactor(0, Int8, false)}, ErrSpec, "LSQConfig.GradFactor NaN"},
		{"negative min scale", m, s1, Spec{}, LSQConfig{MinScale: -1}, ErrSpec, "LSQConfig.MinScale -1"},
		{"NaN min scale", m, s1, Spec{}, LSQConfig{MinScale: nan}, ErrSpec, "LSQConfig.MinScale NaN"},
		{"Inf min scale", m, s1, Spec{}, LSQConfig{MinScale: inf}, ErrSpec, "LSQConfig.MinScale +Inf"},
		{"per tensor ok", m, s1, Spec{}, LSQConfig{}, nil, ""},
		{"per tensor vector ok", m, v1, Spec{}, LSQConfig{LogScale: true}, nil, ""},
		{"per channel ok", m, s4, Spec{Granularity: PerChannel, Axis: 0}, LSQConfig{GradFactor: LSQGradFactor(24, Int8, false)}, nil, ""},
	} {
		add(lqn, c.name, c.arg, c.want, lq(c.x, c.s, c.spec, c.cfg))
	}
	add(lqn, "nil options", "", nil, lq(m, s1, Spec{}, LSQConfig{}, nil, WithPlainSTE(), nil))

	// Observers.
	const non = "quantize.NewObserver"
	for _, c := range []struct {
		name string
		base Spec
		cfg  ObserverConfig
		want error
		arg  string
	}{
		{"unknown format", Spec{Format: 99}, ObserverConfig{}, ErrSpec, "Spec.Format"},
		{"unknown granularity", Spec{Granularity: -1}, ObserverConfig{}, ErrSpec, "Spec.Granularity"},
		{"group size 0", Spec{Granularity: PerGroup}, ObserverConfig{}, ErrSpec, "Spec.GroupSize 0"},
		{"group size negative", Spec{Granularity: PerGroup, GroupSize: -32}, ObserverConfig{}, ErrSpec, "Spec.GroupSize -32"},
		{"narrow unsigned symmetric", Spec{Format: UInt8, NarrowRange: true, Symmetric: true}, ObserverConfig{}, ErrSpec, "Spec.Symmetric"},
		{"unknown kind", Spec{}, ObserverConfig{Kind: 3}, ErrSpec, "ObserverConfig.Kind"},
		{"negative kind", Spec{}, ObserverConfig{Kind: -1}, ErrSpec, "ObserverConfig.Kind"},
		{"averaging negative", Spec{}, ObserverConfig{Kind: MovingAverage, Averaging: -0.5}, ErrSpec, "ObserverConfig.Averaging -0.5"},
		{"averaging above 1", Spec{}, ObserverConfig{Kind: MovingAverage, Averaging: 1.5}, ErrSpec, "ObserverConfig.Averaging 1.5"},
		{"averaging NaN", Spec{}, ObserverConfig{Kind: MovingAverage, Averaging: nan}, ErrSpec, "ObserverConfig.Averaging NaN"},
		{"percentile 50", Spec{}, ObserverConfig{Kind: Percentile, Percentile: 50}, ErrSpec, "ObserverConfig.Percentile 50"},
		{"percentile above 100", Spec{}, ObserverConfig{Kind: Percentile, Percentile: 100.5}, ErrSpec, "ObserverConfig.Percentile 100.5"},
		{"percentile NaN", Spec{}, ObserverConfig{Kind: Percentile, Percentile: nan}, ErrSpec, "ObserverConfig.Percentile NaN"},
		{"percentile negative", Spec{}, ObserverConfig{Kind: Percentile, Percentile: -1}, ErrSpec, "ObserverConfig.Percentile -1"},
		{"scales ignored", Spec{Scale: []float64{-1}, ZeroPoint: []int{1000}}, ObserverConfig{}, nil, ""},
		{"defaults", Spec{}, ObserverConfig{Kind: Percentile}, nil, ""},
	} {
		add(non, c.name, c.arg, c.want, func() error { _, err := NewObserver(c.base, c.cfg); return err })
	}
	const obn = "quantize.Observer.Observe"
	d := func(shape ...int) *tensor.Dense {
		return tensor.New(tensor.WithShape(shape...), tensor.Of(tensor.Float32))
	}
	observe := func(base Spec, batches ...gorgonia.Value) func() error {
		return func() error {
			o, err := NewObserver(base, ObserverConfig{})
			if err != nil {
				return err
			}
			for _, b := range batches {
				if err := o.Observe(b); err != nil {
					return err
				}
			}
			return nil
		}
	}
	perCh := Spec{Granularity: PerChannel, Axis: 1}
	for _, c := range []struct {
		name    string
		base    Spec
		batches []gorgonia.Value
		want    error
		arg     string
	}{
		{"nil x", Spec{}, []gorgonia.Value{nil}, ops.ErrValue, "x: nil value"},
		{"nil *tensor.Dense", Spec{}, []gorgonia.Value{(*tensor.Dense)(nil)}, ops.ErrValue, "x: a nil or uninitialised"},
		{"zero tensor.Dense", Spec{}, []gorgonia.Value{&tensor.Dense{}}, ops.ErrValue, "x: a nil or uninitialised"},
		{"nil *F64", Spec{}, []gorgonia.Value{(*gorgonia.F64)(nil)}, ops.ErrValue, "x: a nil or uninitialised"},
		{"int tensor", Spec{}, []gorgonia.Value{tensor.New(tensor.WithShape(2), tensor.WithBacking([]int{1, 2}))}, ops.ErrDtype, "x: tensor of dtype int"},
		{"int scalar", Spec{}, []gorgonia.Value{gorgonia.NewI(3)}, ops.ErrValue, "x: value of type"},
		{"channels change", perCh, []gorgonia.Value{d(2, 3), d(2, 4)}, ops.ErrShape, "x of shape (2, 4) has 4 channels"},
		{"scalar per channel", perCh, []gorgonia.Value{gorgonia.NewF32(1)}, ops.ErrShape, "x is a scalar"},
		{"axis out of range", Spec{Granularity: PerChannel, Axis: 3}, []gorgonia.Value{d(2, 3)}, ops.ErrAxis, "Spec.Axis 3"},
		{"group does not divide", Spec{Granularity: PerGroup, GroupSize: 2}, []gorgonia.Value{d(2, 3)}, ErrSpec, "Spec.GroupSize 2 does not divide"},
		{"rows may change", perCh, []gorgonia.Value{d(2, 3), d(5, 3)}, nil, ""},
		{"float64 then float32", Spec{}, []gorgonia.Value{gorgonia.NewF64(2), d(2, 3)}, nil, ""},
		{"empty batch", Spec{}, []gorgonia.Value{d(0, 3)}, nil, ""},
	} {
		add(obn, c.name, c.arg, c.want, observe(c.base, c.batches...))
	}
	add("quantize.Observer.Spec", "no data", "", ErrNoData, func() error {
		o, err := NewObserver(Spec{}, ObserverConfig{})
		if err != nil {
			return err
		}
		_, err = o.Spec()
		return err
	})
	add("quantize.Observer.Spec", "only an empty batch: a usable spec", "", nil, func() error {
		o, err := NewObserver(Spec{Format: Int4, Symmetric: true}, ObserverConfig{})
		if err != nil {
			return err
		}
		if err := o.Observe(d(0, 3)); err != nil {
			return err
		}
		s, err := o.Spec()
		if err != nil {
			return err
		}
		_, err = FakeQuant(m, s)
		return err
	})

	// Functions without an error result.
	noErr := func(fn, name string, f func() error) { add(fn, name, "", nil, f) }
	noErr("quantize.LSQGradFactor", "n ≤ 0 or a float format gives NaN", func() error {
		for _, v := range []float64{LSQGradFactor(0, Int8, false), LSQGradFactor(-5, Int4, true), LSQGradFactor(10, FP16, false), LSQGradFactor(10, Format(77), false)} {
			if !math.IsNaN(v) {
				return fmt.Errorf("got %v, want NaN", v)
			}
		}
		return nil
	})
	noErr("quantize.Format", "unknown formats", func() error {
		for _, f := range []Format{-1, 8, 1000} {
			_ = f.String()
			lo, hi := f.Range(true)
			if f.Valid() || f.IsInteger() || f.IsFloat() || f.Bits() != 0 || f.MaxFinite() != 0 || lo != 0 || hi != 0 {
				return fmt.Errorf("%v: not treated as unknown", f)
			}
		}
		return nil
	})
	noErr("quantize.Granularity", "unknown", func() error { _ = Granularity(-3).String(); _ = ObserverKind(9).String(); return nil })
	noErr("quantize.StatsSnapshot", "zero value", func() error {
		var z StatsSnapshot
		_ = z.String()
		if z.ClippedFraction() != 0 || z.ZeroedFraction() != 0 || !math.IsInf(z.SQNR(), 1) {
			return errors.New("zero snapshot: fractions not 0 or SQNR not +Inf")
		}
		return nil
	})
	noErr("quantize.Stats", "zero value", func() error { var s Stats; s.Reset(); _ = s.Snapshot(); return nil })
	noErr("quantize.Observer", "reset before data", func() error {
		o, err := NewObserver(Spec{}, ObserverConfig{})
		if err != nil {
			return err
		}
		o.Reset()
		lo, hi := o.Ranges()
		if len(lo) != 0 || len(hi) != 0 || o.Batches() != 0 {
			return errors.New("not empty")
		}
		return nil
	})
	// Passthrough.
	pt := func(x *gorgonia.Node) func() error {
		return func() error {
			n, err := Passthrough(x, WithStats(&Stats{}))
			if (n == nil) == (err == nil) {
				return fmt.Errorf("node %v and error %w", n, err)
			}
			return err
		}
	}
	const ptn = "quantize.Passthrough"
	add(ptn, "valid", "", nil, pt(m))
	add(ptn, "valid scalar", "", nil, pt(sc))
	add(ptn, "nil x", "x", ops.ErrNilNode, pt(nil))
	for name, x := range dtypes {
		add(ptn, name+" x", "x has dtype", ops.ErrDtype, pt(x))
	}
	add(ptn, "x in no graph", "x is in no graph", ops.ErrValue, pt(loose))
	cases = append(cases, quantizeRuntimeCases(t, m, s1)...)
	errtest.Run(t, cases)
}

// quantizeRuntimeCases run the FakeQuant, LSQ and Passthrough ops' Do (and
// UsePreallocDo) on bad values: errors naming the op, no panic.
func quantizeRuntimeCases(t *testing.T, m, s1 *gorgonia.Node) []errtest.Case {
	must := func(n *gorgonia.Node, err error) gorgonia.Op {
		if err != nil {
			t.Fatal(err)
		}
		return n.Op()
	}
	var st Stats
	fq := must(FakeQuant(m, Spec{Format: Int8, Scale: []float64{0.1}}, WithStats(&st))).(*fakeQuantOp)
	lq := must(FakeQuantLearnable(m, s1, Spec{}, LSQConfig{})).(*lsqOp)
	gq := &fakeQuantGradOp{fq}
	lgx, lgs := &lsqGradOp{fwd: lq, wrt: 0}, &lsqGradOp{fwd: lq, wrt: 1}
	dense := func(dt tensor.Dtype, shape ...int) *tensor.Dense {
		return tensor.New(tensor.Of(dt), tensor.WithShape(shape...))
	}
	x, x64 := dense(tensor.Float32, 4, 6), dense(tensor.Float64, 4, 6)
	one := gorgonia.NewF32(0.5)
	var cases []errtest.Case
	add := func(op gorgonia.Op, name, arg string, want error, in ...gorgonia.Value) {
		cases = append(cases, errtest.Case{Name: "run time: " + name, Fn: op.String(), Arg: arg, Want: want,
			Call: func() error { _, err := op.Do(in...); return err }})
	}
	pt := must(Passthrough(m, WithStats(&st)))
	for _, op := range []gorgonia.Op{fq, lq, pt} {
		n := op.Arity()
		with := func(v gorgonia.Value) []gorgonia.Value {
			if n == 2 {
				return []gorgonia.Value{v, one}
			}
			return []gorgonia.Value{v}
		}
		add(op, "no inputs", "got 0 inputs", ops.ErrValue)
		add(op, "nil x", "nil value", ops.ErrValue, with(nil)...)
		add(op, "zero tensor.Dense", "uninitialised", ops.ErrValue, with(&tensor.Dense{})...)
		add(op, "int tensor", "dtype int", ops.ErrDtype, with(dense(tensor.Int, 4, 6))...)
		if op != pt { // an identity takes any shape
			add(op, "another size", "x has 30 elements", ops.ErrShape, with(dense(tensor.Float32, 5, 6))...)
		}
		add(op, "valid", "", nil, with(x)...)
	}
	add(lq, "nil scale", "scale", ops.ErrValue, x, nil)
	add(lq, "scale of another dtype", "scale value", ops.ErrValue, x, gorgonia.NewF64(1))
	add(lq, "scale vector too long", "scale value", ops.ErrValue, x, dense(tensor.Float32, 3))
	add(lq, "scale NaN: clamped, valid", "", nil, x, gorgonia.NewF32(float32(math.NaN())))
	add(lq, "scale +Inf", "scale", ops.ErrValue, x, gorgonia.NewF32(float32(math.Inf(1))))
	add(gq, "one input", "got 1 inputs", ops.ErrValue, x)
	add(gq, "nil dy", "dy", ops.ErrValue, x, nil)
	add(gq, "dy of another dtype", "dy", ops.ErrValue, x, x64)
	add(gq, "dy of another size", "dy", ops.ErrValue, x, dense(tensor.Float32, 3))
	add(gq, "valid", "", nil, x, x.Clone().(*tensor.Dense))
	for _, op := range []gorgonia.Op{lgx, lgs} {
		add(op, "two inputs", "got 2 inputs", ops.ErrValue, x, one)
		add(op, "nil dy", "input 2", ops.ErrValue, x, one, nil)
		add(op, "dy of another dtype", "dy", ops.ErrValue, x, one, x64)
		add(op, "valid", "", nil, x, one, x.Clone().(*tensor.Dense))
	}
	cases = append(cases,
		errtest.Case{Name: "run time: prealloc over x with stats", Fn: fq.String(), Arg: "cannot overwrite x", Want: ops.ErrValue,
			Call: func() error { _, err := fq.UsePreallocDo(x, x); return err }},
		errtest.Case{Name: "run time: nil prealloc tensor", Fn: fq.String(), Arg: "preallocated", Want: ops.ErrValue,
			Call: func() error { _, err := fq.UsePreallocDo((*tensor.Dense)(nil), x); return err }},
		errtest.Case{Name: "run time: prealloc of another shape", Fn: gq.String(), Arg: "preallocated", Want: ops.ErrValue,
			Call: func() error {
				_, err := gq.UsePreallocDo(dense(tensor.Float32, 6, 4), x, x.Clone().(*tensor.Dense))
				return err
			}},
	)
	return cases
}
