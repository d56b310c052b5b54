package quantize

import (
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/actq/actq/internal/numtest"
	"github.com/actq/actq/internal/qkernel"
	"github.com/actq/actq/ops"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// fuzzSpec is one decoded FuzzFakeQuant input.
type fuzzSpec struct {
	spec  Spec
	shape tensor.Shape // nil: a scalar
	dt    tensor.Dtype
	x     []float64
	plain bool
}

// decodeFuzzSpec turns FuzzFakeQuant's arguments into a spec, a shape, a
// dtype and data. format and gran run one past the valid values; flags
// bits are Symmetric, NarrowRange, fixed scales, DynamicFloatScale,
// Float64, zero points, plain STE and one scale too many. dims holds the
// rank (2 bits) and up to three dimensions of 1..8 (3 bits each). Fixed
// scales are |scale|·(1 + k/8) and zero points zp + k for parameter k.
// Each element takes 2 bytes of data, an int16 m: x = m·2^exp, except
// m = −32768 (NaN), 32767 (+Inf) and −32767 (−Inf); missing data is 0.
func decodeFuzzSpec(data []byte, format, gran uint8, axis, group, exp int8, flags uint8, dims uint16, scale float32, zp int16) fuzzSpec {
	var fs fuzzSpec
	s := Spec{
		Format:            Format(int(format) % 9),
		Granularity:       Granularity(int(gran) % 5),
		Axis:              int(axis),
		GroupSize:         int(group),
		Symmetric:         flags&1 != 0,
		NarrowRange:       flags&2 != 0,
		DynamicFloatScale: flags&8 != 0,
	}
	fs.dt = tensor.Float32
	if flags&16 != 0 {
		fs.dt = tensor.Float64
	}
	fs.plain = flags&64 != 0
	n := 1
	if rank := int(dims & 3); rank > 0 {
		fs.shape = make(tensor.Shape, rank)
		for k := range fs.shape {
			fs.shape[k] = 1 + int(dims>>(2+3*k)&7)
			n *= fs.shape[k]
		}
	}
	if flags&4 != 0 {
		np := nparamOf(s, fs.shape, n)
		if flags&128 != 0 {
			np++
		}
		if np >= 0 && np <= 4096 {
			s.Scale = make([]float64, np)
			for k := range s.Scale {
				s.Scale[k] = math.Abs(float64(scale)) * (1 + float64(k)/8)
			}
			if flags&32 != 0 {
				s.ZeroPoint = make([]int, np)
				for k := range s.ZeroPoint {
					s.ZeroPoint[k] = int(zp) + k
				}
			}
		}
	}
	fs.spec = s
	fs.x = make([]float64, n)
	for i := range fs.x {
		if 2*i+2 > len(data) {
			break
		}
		switch m := int16(binary.LittleEndian.Uint16(data[2*i:])); m {
		case -32768:
			fs.x[i] = math.NaN()
		case 32767:
			fs.x[i] = math.Inf(1)
		case -32767:
			fs.x[i] = math.Inf(-1)
		default:
			fs.x[i] = math.Ldexp(float64(m), int(exp))
		}
	}
	return fs
}

// nparamOf returns the number of scales s needs on shape (n elements), or
// −1 if the shape does not fit it.
func nparamOf(s Spec, shape tensor.Shape, n int) int {
	switch s.Granularity {
	case PerChannel:
		ax := s.Axis
		if ax < 0 {
			ax += len(shape)
		}
		if ax < 0 || ax >= len(shape) {
			return -1
		}
		return shape[ax]
	case PerGroup:
		if s.GroupSize <= 0 {
			return -1
		}
		return n / s.GroupSize
	case PerRow:
		if len(shape) == 0 {
			return -1
		}
		return n / shape[len(shape)-1]
	}
	return 1
}

// paramIndex returns the parameter that element i of shape uses under s
// (a valid spec), from the documentation of Spec: the index along Axis per
// channel, i/GroupSize per group.
func paramIndex(s Spec, shape tensor.Shape, i int) int {
	switch s.Granularity {
	case PerChannel:
		ax := s.Axis
		if ax < 0 {
			ax += len(shape)
		}
		inner := 1
		for _, d := range shape[ax+1:] {
			inner *= d
		}
		return (i / inner) % shape[ax]
	case PerGroup:
		return i / s.GroupSize
	case PerRow:
		return i / shape[len(shape)-1]
	}
	return 0
}

// FuzzFakeQuant builds FakeQuant nodes from fuzzed specs, shapes, dtypes
// and data (see decodeFuzzSpec), and runs the op and its gradient op
// directly (no machine):
//
//   - building never panics: it returns a node, or an error wrapping
//     ErrSpec, ops.ErrAxis, ops.ErrShape or ops.ErrDtype that names quantize.FakeQuant;
//   - each element equals the kernel-level reference with the parameters
//     of its tensor, channel or group: the fixed ones, or the ones the
//     documented dynamic rules give for the block's finite values, which
//     must be finite and at least 2^-23;
//   - the gradient is dy inside the range and 0 where clipped (integer
//     formats), dy everywhere for float formats and WithPlainSTE;
//   - Stats count every element, the NaNs and the infinities;
//   - fixed-scale integer specs are idempotent;
//   - an Observer (MinMax) shown the data returns a spec that builds,
//     and for a dynamic spec quantizes exactly as the dynamic rule did.
func FuzzFakeQuant(f *testing.F) {
	ramp := func(n int, step int16) []byte {
		var b []byte
		for i := range n {
			b = binary.LittleEndian.AppendUint16(b, uint16(int16(i-n/2)*step))
		}
		return b
	}
	dims := func(rank int, d ...int) uint16 {
		v := uint16(rank)
		for k, x := range d {
			v |= uint16(x-1) << (2 + 3*k)
		}
		return v
	}
	for _, s := range []struct {
		data             []byte
		format, gran     uint8
		axis, group, exp int8
		flags            uint8
		dims             uint16
		scale            float32
		zp               int16
	}{
		{ramp(24, 37), 0, 0, 0, 0, -8, 0, dims(2, 4, 6), 0, 0},                           // int8 dynamic affine
		{ramp(24, 37), 0, 0, 0, 0, -8, 1, dims(2, 4, 6), 0, 0},                           // symmetric
		{ramp(24, 37), 3, 0, 0, 0, -8, 1 | 2, dims(2, 4, 6), 0, 0},                       // uint4 narrow symmetric: error
		{ramp(24, 37), 2, 1, -1, 0, -8, 4 | 32, dims(2, 4, 6), 0.1, -2},                  // int4 per channel fixed with zero points
		{ramp(24, 37), 1, 1, 0, 0, -8, 4 | 32, dims(2, 4, 6), 0.02, 100},                 // uint8 per channel axis 0
		{ramp(48, 11), 2, 2, 0, 8, -4, 1, dims(3, 2, 3, 8), 0, 0},                        // int4 per group symmetric
		{ramp(48, 11), 0, 2, 0, 4, -4, 4 | 16, dims(3, 2, 3, 8), 0.5, 0},                 // per group fixed float64
		{ramp(48, 11), 6, 0, 0, 0, 0, 8, dims(3, 2, 3, 8), 0, 0},                         // FP8 E4M3 dynamic scale
		{ramp(48, 11), 4, 1, 2, 0, 4, 0, dims(3, 2, 3, 8), 0, 0},                         // FP16 per channel unscaled
		{ramp(8, 4000), 0, 0, 0, 0, 100, 0, dims(1, 8), 0, 0},                            // ±3e34: float32 range
		{ramp(8, 4000), 0, 0, 0, 0, 115, 0, dims(1, 8), 0, 0},                            // ±Inf
		{ramp(1, 1), 5, 0, 0, 0, 0, 0, 0, 0, 0},                                          // scalar BF16
		{ramp(1, 1), 0, 1, 0, 0, 0, 0, 0, 0, 0},                                          // scalar per channel: error
		{ramp(6, 1), 0, 2, 0, 4, 0, 0, dims(1, 6), 0, 0},                                 // group does not divide
		{ramp(6, 1), 0, 1, 5, 0, 0, 0, dims(1, 6), 0, 0},                                 // axis out of range
		{ramp(6, 1), 0, 0, 0, 0, 0, 4 | 128, dims(1, 6), 1, 0},                           // too many scales
		{ramp(48, 11), 0, 3, 0, 0, -4, 0, dims(3, 2, 3, 8), 0, 0},                        // int8 per row affine
		{ramp(48, 11), 1, 3, 0, 0, -4, 4 | 32, dims(2, 6, 8), 0.05, 3},                   // uint8 per row fixed
		{ramp(1, 1), 0, 3, 0, 0, 0, 0, 0, 0, 0},                                          // scalar per row: error
		{ramp(6, 1), 8, 4, 0, 0, 0, 0, dims(1, 6), 0, 0},                                 // unknown format, granularity
		{[]byte{0, 0x80, 0xff, 0x7f, 1, 0x80, 5, 0}, 0, 0, 0, 0, 0, 0, dims(1, 4), 0, 0}, // NaN, +Inf, −Inf, 5
	} {
		f.Add(s.data, s.format, s.gran, s.axis, s.group, s.exp, s.flags, s.dims, s.scale, s.zp)
	}
	f.Fuzz(func(t *testing.T, data []byte, format, gran uint8, axis, group, exp int8, flags uint8, dims uint16, scale float32, zp int16) {
		fs := decodeFuzzSpec(data, format, gran, axis, group, exp, flags, dims, scale, zp)
		if fs.dt == tensor.Float32 {
			fuzzFakeQuant[float32](t, fs)
		} else {
			fuzzFakeQuant[float64](t, fs)
		}
	})
}

func fuzzFakeQuant[T qkernel.Float](t *testing.T, fs fuzzSpec) {
	t.Helper()
	g := gorgonia.NewGraph()
	var xn *gorgonia.Node
	var xv gorgonia.Value
	xs := make([]T, len(fs.x))
	for i, v := range fs.x {
		xs[i] = T(v)
	}
	if fs.shape == nil {
		xn = gorgonia.NewScalar(g, fs.dt, gorgonia.WithName("x"))
		if fs.dt == tensor.Float32 {
			xv = gorgonia.NewF32(float32(xs[0]))
		} else {
			xv = gorgonia.NewF64(float64(xs[0]))
		}
	} else {
		xn = gorgonia.NewTensor(g, fs.dt, len(fs.shape), gorgonia.WithShape(fs.shape...), gorgonia.WithName("x"))
		xv = tensor.New(tensor.WithShape(fs.shape.Clone()...), tensor.WithBacking(append([]T(nil), xs...)))
	}
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("%v spec %+v shape %v x=%v: "+format, append([]any{fs.dt, fs.spec, fs.shape, xs}, args...)...)
	}
	var st Stats
	opts := []Option{WithStats(&st)}
	if fs.plain {
		opts = append(opts, WithPlainSTE())
	}
	yn, err := FakeQuant(xn, fs.spec, opts...)
	if err != nil {
		if !strings.HasPrefix(err.Error(), "quantize.FakeQuant: ") ||
			!(errors.Is(err, ErrSpec) || errors.Is(err, ops.ErrAxis) || errors.Is(err, ops.ErrShape) || errors.Is(err, ops.ErrDtype)) {
			fail("error %q does not name quantize.FakeQuant or wrap a sentinel", err)
		}
		return
	}
	op := yn.Op().(*fakeQuantOp)
	y := runOp[T](t, fail, op, xv)
	dy := make([]T, len(xs))
	for i := range dy {
		dy[i] = T(1 + i%5)
	}
	dyv := valueLike(xv, dy)
	dx := runOp[T](t, fail, &fakeQuantGradOp{op}, xv, dyv)

	s := fs.spec
	isInt := s.Format.IsInteger()
	qmin, qmax := s.Format.Range(s.NarrowRange)
	params := expectedParams(fail, s, fs.shape, xs, qmin, qmax)
	var nan, inf int64
	for i, v := range xs {
		p := params[paramIndex(s, fs.shape, i)]
		want, wantDx := v, dy[i]
		if isInt {
			var inside bool
			want, inside = refInt(v, p.s, p.z, qmin, qmax)
			if !inside && !fs.plain {
				wantDx = 0
			}
		} else {
			r, _ := s.Format.floatFormat().Round(float64(T(v / p.s)))
			want = T(r) * p.s
			if p.s == 1 {
				want = T(r)
			}
		}
		if !numtest.Alike(float64(y[i]), float64(want)) || !numtest.Alike(float64(dx[i]), float64(wantDx)) {
			fail("[%d]: y = %v, dx = %v; want %v, %v (scale %v, zero point %d)", i, y[i], dx[i], want, wantDx, p.s, p.z)
		}
		switch {
		case math.IsNaN(float64(v)):
			nan++
		case math.IsInf(float64(v), 0):
			inf++
		}
	}
	if snap := st.Snapshot(); snap.Runs != 1 || snap.Elements != int64(len(xs)) || snap.NaN != nan || snap.Inf != inf {
		fail("stats %+v: want 1 run, %d elements, %d NaN, %d Inf", snap, len(xs), nan, inf)
	}
	if isInt && s.Scale != nil {
		yy := runOp[T](t, fail, op, valueLike(xv, y))
		for i := range y {
			if lo, hi := params[paramIndex(s, fs.shape, i)].q.Bounds(); !math.IsInf(float64(lo), 0) && !math.IsInf(float64(hi), 0) && !numtest.Alike(float64(yy[i]), float64(y[i])) {
				fail("not idempotent at [%d]: %v → %v → %v", i, xs[i], y[i], yy[i])
			}
		}
	}
	fuzzObserver[T](t, fail, fs, xn, xv, y)
}

// fuzzObserver shows x to a MinMax observer for fs's spec and checks that
// the spec it returns builds and, when fs's spec is dynamic, gives the
// same output y (the observer's rule is the dynamic rule).
func fuzzObserver[T qkernel.Float](t *testing.T, fail func(string, ...any), fs fuzzSpec, xn *gorgonia.Node, xv gorgonia.Value, y []T) {
	t.Helper()
	base := fs.spec
	base.Scale, base.ZeroPoint = nil, nil
	if _, err := FakeQuant(xn, base); err != nil {
		return // no valid dynamic spec of this kind
	}
	obs, err := NewObserver(base, ObserverConfig{})
	if err != nil {
		fail("NewObserver: %v", err)
	}
	if err := obs.Observe(xv); err != nil {
		fail("Observe: %v", err)
	}
	spec, err := obs.Spec()
	if err != nil {
		fail("Observer.Spec: %v", err)
	}
	on, err := FakeQuant(xn, spec)
	if err != nil {
		fail("the observer's spec %+v does not build: %v", spec, err)
	}
	dynamic := fs.spec.Scale == nil && (fs.spec.Format.IsInteger() || fs.spec.DynamicFloatScale)
	if !dynamic {
		return
	}
	oy := runOp[T](t, fail, on.Op().(*fakeQuantOp), xv)
	for i := range y {
		if !numtest.Alike(float64(oy[i]), float64(y[i])) {
			fail("[%d]: observer's spec %+v gives %v, the dynamic rule %v", i, spec, oy[i], y[i])
		}
	}
}

// fuzzParam is one tensor's, channel's or group's parameters in T.
type fuzzParam[T qkernel.Float] struct {
	s T
	z int
	q qkernel.Int[T]
}

// expectedParams returns the parameters of each tensor, channel or group:
// the spec's fixed ones, 1 for unscaled float formats, or the documented
// dynamic rules (FakeQuant's doc) computed in T over the block's finite
// values, which must give a finite scale of at least 2^-23.
func expectedParams[T qkernel.Float](fail func(string, ...any), s Spec, shape tensor.Shape, xs []T, qmin, qmax int) []fuzzParam[T] {
	n := max(nparamOf(s, shape, len(xs)), 1)
	ps := make([]fuzzParam[T], n)
	mk := func(sc T, z int) fuzzParam[T] {
		return fuzzParam[T]{s: sc, z: z, q: qkernel.NewInt(sc, z, qmin, qmax)}
	}
	switch {
	case s.Scale != nil:
		for k := range ps {
			z := 0
			if s.ZeroPoint != nil {
				z = s.ZeroPoint[k]
			}
			ps[k] = mk(T(s.Scale[k]), z)
		}
		return ps
	case s.Format.IsFloat() && !s.DynamicFloatScale:
		for k := range ps {
			ps[k] = mk(1, 0)
		}
		return ps
	}
	lo, hi, amax := make([]T, n), make([]T, n), make([]T, n)
	for i, v := range xs {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			continue
		}
		k := paramIndex(s, shape, i)
		lo[k], hi[k] = min(lo[k], v), max(hi[k], v) // from 0: min(x, 0), max(x, 0)
		amax[k] = max(amax[k], T(math.Abs(float64(v))))
	}
	const eps = 0x1p-23
	for k := range ps {
		var sc T
		z := 0
		switch {
		case s.Format.IsFloat():
			sc = amax[k] / T(s.Format.MaxFinite())
		case s.Symmetric && qmin >= 0:
			sc = hi[k] / T(qmax)
		case s.Symmetric:
			sc = amax[k] / T(qmax)
		default:
			d := T(qmax - qmin)
			sc = (hi[k] - lo[k]) / d
			if math.IsInf(float64(sc), 0) { // the range overflowed T
				sc = hi[k]/d - lo[k]/d
			}
			sc = max(sc, eps)
			z = min(max(qmin-int(math.RoundToEven(float64(lo[k]/sc))), qmin), qmax)
		}
		sc = max(sc, eps)
		if math.IsInf(float64(sc), 0) || math.IsNaN(float64(sc)) {
			fail("dynamic scale of parameter %d is %v (range [%v, %v])", k, sc, lo[k], hi[k])
		}
		ps[k] = mk(sc, z)
	}
	return ps
}

// refInt is PyTorch's formula written out in T (see the kernel's tests).
func refInt[T qkernel.Float](x, s T, zp, qmin, qmax int) (T, bool) {
	t := T(x * (1 / s))
	qf := float64(zp) + math.RoundToEven(float64(t))
	q := math.Max(math.Min(qf, float64(qmax)), float64(qmin))
	if math.IsNaN(qf) {
		q = float64(qmin)
	}
	return T(q-float64(zp)) * s, float64(qmin) <= qf && qf <= float64(qmax)
}

// runOp runs op.Do and returns the result's data.
func runOp[T qkernel.Float](t *testing.T, fail func(string, ...any), op gorgonia.Op, in ...gorgonia.Value) []T {
	t.Helper()
	v, err := op.Do(in...)
	if err != nil {
		fail("%v.Do: %v", op, err)
	}
	switch d := v.(type) {
	case *tensor.Dense:
		return d.Data().([]T)
	case *gorgonia.F32:
		return []T{T(*d)}
	case *gorgonia.F64:
		return []T{T(*d)}
	}
	fail("%v.Do returned %T", op, v)
	return nil
}

// valueOf wraps a scalar as a Gorgonia value of its type.
func valueOf[T qkernel.Float](v T) gorgonia.Value {
	if _, ok := any(v).(float32); ok {
		return gorgonia.NewF32(float32(v))
	}
	return gorgonia.NewF64(float64(v))
}

// valueLike returns data as a value of like's kind and shape.
func valueLike[T qkernel.Float](like gorgonia.Value, data []T) gorgonia.Value {
	if _, ok := like.(*tensor.Dense); ok {
		return tensor.New(tensor.WithShape(like.Shape().Clone()...), tensor.WithBacking(append([]T(nil), data...)))
	}
	return valueOf(data[0])
}
