package qkernel

import (
	"fmt"
	"math"
	"testing"

	"github.com/actq/actq/internal/errtest"
)

// TestErrors is the audit of every exported function of the package, in
// both dtypes: each bad input returns an error that wraps
// ErrLength (slices, columns, groups) or ErrParam (grids, formats, scales,
// code ranges) and names the kernel and the argument, writes nothing, and
// nothing panics. Valid inputs beside them must succeed, and the functions
// without an error result must not panic on bad input.
func TestErrors(t *testing.T) {
	cases := append(kernelErrorCases[float32](t), kernelErrorCases[float64](t)...)
	// AccumulateFP16 is not generic: its cases once.
	for _, c := range []struct {
		name      string
		acc, w, v int
		arg       string
		want      error
	}{
		{"v short", 4, 2, 7, "len(v) = 7, want len(w)·len(acc) = 2·4", ErrLength},
		{"v long", 4, 2, 9, "len(v) = 9", ErrLength},
		{"no accumulators", 0, 2, 1, "len(v) = 1", ErrLength},
		{"valid", 4, 2, 8, "", nil},
		{"valid empty", 0, 0, 0, "", nil},
	} {
		acc := make([]float64, c.acc)
		for i := range acc {
			acc[i] = 7
		}
		cases = append(cases, errtest.Case{Name: c.name, Fn: "qkernel.AccumulateFP16", Arg: c.arg, Want: c.want, Call: func() error {
			err := AccumulateFP16(acc, make([]float64, c.w), make([]float32, c.v))
			for i, a := range acc {
				if err != nil && a != 7 {
					t.Errorf("AccumulateFP16: acc[%d] written despite the error %v", i, err)
					break
				}
			}
			return err
		}})
	}
	errtest.Run(t, cases)
}

func kernelErrorCases[T Float](t *testing.T) []errtest.Case {
	var cases []errtest.Case
	dt := fmt.Sprintf("%T ", T(0))
	add := func(fn, name, arg string, want error, call func() error) {
		cases = append(cases, errtest.Case{Name: dt + name, Fn: fn, Arg: arg, Want: want, Call: call})
	}
	const sentinel = 7
	dstOf := func(n int) []T {
		d := make([]T, n)
		for i := range d {
			d[i] = sentinel
		}
		return d
	}
	// untouched reports a test error if dst was written.
	untouched := func(err error, dst []T) error {
		for i, v := range dst {
			if err != nil && v != sentinel {
				t.Errorf("dst[%d] written despite the error %v", i, err)
				break
			}
		}
		return err
	}
	nan, inf := T(math.NaN()), T(math.Inf(1))
	good := NewInt[T](0.5, 0, -128, 127)
	grids := []struct {
		name string
		q    Int[T]
	}{
		{"zero Int", Int[T]{}},
		{"scale 0", NewInt[T](0, 0, -128, 127)},
		{"negative scale", NewInt[T](-1, 0, -128, 127)},
		{"NaN scale", NewInt(nan, 0, -128, 127)},
		{"Inf scale", NewInt(inf, 0, -128, 127)},
		{"reciprocal overflows", NewInt(tiny[T](), 0, -128, 127)},
		{"zero point above qmax", NewInt[T](1, 200, -128, 127)},
		{"zero point below qmin", NewInt[T](1, -1, 0, 255)},
		{"qmin above qmax", NewInt[T](1, 0, 5, -5)},
	}

	// Elementwise grid kernels: lengths, then grids.
	type short struct {
		name    string
		d, x, y int
		arg     string
	}
	type gridKernel struct {
		fn    string
		call  func(dst, x, dy []T, q Int[T]) error
		short []short
	}
	dstX := []short{{"dst shorter", 3, 4, 4, "len(x) = 4, want len(dst) = 3"}, {"x shorter", 4, 3, 4, "len(x) = 3"}}
	dstXDy := append(dstX, short{"dy shorter", 4, 4, 3, "len(dy) = 3"})
	xY := func(y string) []short {
		return []short{{"x shorter", 4, 3, 4, "len(" + y + ") = 4, want len(x) = 3"}, {y + " shorter", 4, 4, 3, "len(" + y + ") = 3"}}
	}
	for _, k := range []gridKernel{
		{"qkernel.FakeQuantInt", func(dst, x, _ []T, q Int[T]) error { return FakeQuantInt(dst, x, q) }, dstX},
		{"qkernel.FakeQuantIntGrad", func(dst, x, dy []T, q Int[T]) error { return FakeQuantIntGrad(dst, x, dy, q) }, dstXDy},
		{"qkernel.LSQScaleGrad", func(_, x, dy []T, q Int[T]) error { _, err := LSQScaleGrad(x, dy, q); return err }, xY("dy")},
		{"qkernel.CountInt", func(_, x, y []T, q Int[T]) error { _, err := CountInt(x, y, q); return err }, xY("y")},
	} {
		for _, c := range k.short {
			add(k.fn, c.name, c.arg, ErrLength, func() error {
				dst := dstOf(c.d)
				return untouched(k.call(dst, make([]T, c.x), make([]T, c.y), good), dst)
			})
		}
		for _, g := range grids {
			add(k.fn, g.name, "q has scale", ErrParam, func() error {
				dst := dstOf(4)
				return untouched(k.call(dst, make([]T, 4), make([]T, 4), g.q), dst)
			})
		}
		add(k.fn, "valid", "", nil, func() error { return k.call(make([]T, 4), make([]T, 4), make([]T, 4), good) })
		add(k.fn, "valid empty", "", nil, func() error { return k.call(nil, nil, nil, good) })
	}

	// Per-column and per-group grid kernels: lengths, column counts, grids.
	type colsKernel struct {
		fn         string
		call       func(dst, x, dy []T, qs []Int[T]) error
		checkGrids bool
	}
	for _, k := range []colsKernel{
		{"qkernel.FakeQuantIntCols", func(dst, x, _ []T, qs []Int[T]) error { return FakeQuantIntCols(dst, x, qs) }, true},
		{"qkernel.FakeQuantIntColsGrad", func(dst, x, dy []T, qs []Int[T]) error { return FakeQuantIntColsGrad(dst, x, dy, qs) }, true},
		{"qkernel.FakeQuantIntGroups", func(dst, x, _ []T, qs []Int[T]) error { return FakeQuantIntGroups(dst, x, qs) }, false},
		{"qkernel.FakeQuantIntGroupsGrad", func(dst, x, dy []T, qs []Int[T]) error { return FakeQuantIntGroupsGrad(dst, x, dy, qs) }, false},
		{"qkernel.CountIntCols", func(_, x, y []T, qs []Int[T]) error { _, err := CountIntCols(x, y, qs); return err }, true},
		{"qkernel.LSQScaleGradCols", func(_, x, dy []T, qs []Int[T]) error {
			return LSQScaleGradCols(make([]float64, len(qs)), x, dy, qs)
		}, true},
	} {
		two := []Int[T]{good, good}
		add(k.fn, "x shorter", "len(", ErrLength, func() error {
			dst := dstOf(6)
			return untouched(k.call(dst, make([]T, 4), make([]T, 6), two), dst)
		})
		add(k.fn, "no grids", "len(qs) = 0", ErrLength, func() error {
			dst := dstOf(6)
			return untouched(k.call(dst, make([]T, 6), make([]T, 6), nil), dst)
		})
		add(k.fn, "grids do not divide", "len(qs) = 4", ErrLength, func() error {
			dst := dstOf(6)
			return untouched(k.call(dst, make([]T, 6), make([]T, 6), []Int[T]{good, good, good, good}), dst)
		})
		for _, g := range grids {
			qs := []Int[T]{good, g.q}
			if k.checkGrids {
				add(k.fn, g.name, "qs[1]", ErrParam, func() error {
					dst := dstOf(6)
					return untouched(k.call(dst, make([]T, 6), make([]T, 6), qs), dst)
				})
			} else {
				// Not checked (documented): no panic, no error.
				add(k.fn, g.name+" (unchecked)", "", nil, func() error { return k.call(make([]T, 6), make([]T, 6), make([]T, 6), qs) })
			}
		}
		add(k.fn, "valid", "", nil, func() error { return k.call(make([]T, 6), make([]T, 6), make([]T, 6), two) })
	}
	add("qkernel.FakeQuantIntColsGrad", "dy shorter", "len(dy)", ErrLength, func() error {
		return FakeQuantIntColsGrad(make([]T, 6), make([]T, 6), make([]T, 5), []Int[T]{good})
	})
	add("qkernel.FakeQuantIntGroupsGrad", "dy shorter", "len(dy)", ErrLength, func() error {
		return FakeQuantIntGroupsGrad(make([]T, 6), make([]T, 6), make([]T, 5), []Int[T]{good})
	})
	add("qkernel.LSQScaleGradCols", "dst shorter than qs", "len(dst)", ErrLength, func() error {
		return LSQScaleGradCols(make([]float64, 1), make([]T, 6), make([]T, 6), []Int[T]{good, good})
	})

	// Dynamic symmetric groups.
	for _, k := range []struct {
		fn   string
		call func(dst, x, dy []T, groups, qmin, qmax int, minScale T) error
	}{
		{"qkernel.FakeQuantIntGroupsSymmetric", func(dst, x, _ []T, g, lo, hi int, m T) error {
			return FakeQuantIntGroupsSymmetric(dst, x, g, lo, hi, m)
		}},
		{"qkernel.FakeQuantIntGroupsSymmetricGrad", func(dst, x, dy []T, g, lo, hi int, m T) error {
			return FakeQuantIntGroupsSymmetricGrad(dst, x, dy, g, lo, hi, m)
		}},
	} {
		for _, c := range []struct {
			name           string
			dst, x, dy     int
			groups, lo, hi int
			minScale       T
			arg            string
			want           error
		}{
			{"x shorter", 64, 32, 64, 2, -8, 7, 0x1p-23, "len(x)", ErrLength},
			{"groups 0", 64, 64, 64, 0, -8, 7, 0x1p-23, "groups = 0", ErrLength},
			{"groups negative", 64, 64, 64, -2, -8, 7, 0x1p-23, "groups = -2", ErrLength},
			{"groups do not divide", 64, 64, 64, 3, -8, 7, 0x1p-23, "groups = 3", ErrLength},
			{"qmax 0", 64, 64, 64, 2, -8, 0, 0x1p-23, "qmax = 0", ErrParam},
			{"qmin positive", 64, 64, 64, 2, 1, 15, 0x1p-23, "qmin = 1", ErrParam},
			{"minScale 0", 64, 64, 64, 2, -8, 7, 0, "minScale", ErrParam},
			{"minScale NaN", 64, 64, 64, 2, -8, 7, nan, "minScale", ErrParam},
			{"minScale Inf", 64, 64, 64, 2, -8, 7, inf, "minScale", ErrParam},
			{"minScale negative", 64, 64, 64, 2, -8, 7, -1, "minScale", ErrParam},
			{"valid", 64, 64, 64, 2, -8, 7, 0x1p-23, "", nil},
			{"valid unsigned", 64, 64, 64, 8, 0, 15, 0x1p-23, "", nil},
		} {
			add(k.fn, c.name, c.arg, c.want, func() error {
				dst := dstOf(c.dst)
				return untouched(k.call(dst, make([]T, c.x), make([]T, c.dy), c.groups, c.lo, c.hi, c.minScale), dst)
			})
		}
	}
	add("qkernel.FakeQuantIntGroupsSymmetricGrad", "dy shorter", "len(dy)", ErrLength, func() error {
		return FakeQuantIntGroupsSymmetricGrad(make([]T, 64), make([]T, 64), make([]T, 60), 2, -8, 7, 0x1p-23)
	})

	// Float formats.
	formats := []struct {
		name string
		f    FloatFormat
	}{{"format 0", 0}, {"format 99", 99}}
	scales := []struct {
		name string
		s    T
	}{{"scale 0", 0}, {"scale −1", -1}, {"scale NaN", nan}, {"scale +Inf", inf}}
	for _, k := range []struct {
		fn   string
		call func(dst, x []T, f FloatFormat, s T) error
		ref  string
	}{
		{"qkernel.RoundFloat", func(dst, x []T, f FloatFormat, s T) error { return RoundFloat(dst, x, f, s) }, "len(x)"},
		{"qkernel.CountFloat", func(dst, x []T, f FloatFormat, s T) error { _, err := CountFloat(x, dst, f, s); return err }, "len(y)"},
	} {
		add(k.fn, "lengths differ", k.ref, ErrLength, func() error {
			dst := dstOf(3)
			return untouched(k.call(dst, make([]T, 4), FP16, 1), dst)
		})
		for _, f := range formats {
			add(k.fn, f.name, "f = FloatFormat", ErrParam, func() error {
				dst := dstOf(4)
				return untouched(k.call(dst, make([]T, 4), f.f, 1), dst)
			})
		}
		for _, s := range scales {
			add(k.fn, s.name, "s = ", ErrParam, func() error {
				dst := dstOf(4)
				return untouched(k.call(dst, make([]T, 4), FP8E4M3, s.s), dst)
			})
		}
		add(k.fn, "valid", "", nil, func() error { return k.call(make([]T, 4), make([]T, 4), BF16, 0.5) })
	}
	for _, k := range []struct {
		fn   string
		call func(dst, x []T, f FloatFormat, s []T) error
	}{
		{"qkernel.RoundFloatCols", func(dst, x []T, f FloatFormat, s []T) error { return RoundFloatCols(dst, x, f, s) }},
		{"qkernel.CountFloatCols", func(dst, x []T, f FloatFormat, s []T) error { _, err := CountFloatCols(x, dst, f, s); return err }},
	} {
		add(k.fn, "lengths differ", "len(", ErrLength, func() error {
			dst := dstOf(3)
			return untouched(k.call(dst, make([]T, 4), FP16, []T{1}), dst)
		})
		add(k.fn, "no scales", "len(s) = 0", ErrLength, func() error {
			dst := dstOf(4)
			return untouched(k.call(dst, make([]T, 4), FP16, nil), dst)
		})
		add(k.fn, "scales do not divide", "len(s) = 3", ErrLength, func() error {
			dst := dstOf(4)
			return untouched(k.call(dst, make([]T, 4), FP16, []T{1, 1, 1}), dst)
		})
		for _, f := range formats {
			add(k.fn, f.name, "f = FloatFormat", ErrParam, func() error {
				dst := dstOf(4)
				return untouched(k.call(dst, make([]T, 4), f.f, []T{1, 1}), dst)
			})
		}
		for _, s := range scales {
			add(k.fn, s.name, "s[1] = ", ErrParam, func() error {
				dst := dstOf(4)
				return untouched(k.call(dst, make([]T, 4), FP8E5M2, []T{1, s.s}), dst)
			})
		}
		add(k.fn, "valid", "", nil, func() error { return k.call(make([]T, 4), make([]T, 4), FP16, []T{1, 2}) })
	}

	// Functions without an error result: bad input must not panic, and
	// gives the documented result.
	noError := func(fn, name string, f func() error) { add(fn, name, "", nil, f) }
	for _, g := range grids {
		noError("qkernel.Int", g.name+": methods", func() error {
			_, _ = g.q.FakeQuant(1)
			_, _ = g.q.Bounds()
			_ = g.q.Scale()
			return nil
		})
	}
	noError("qkernel.SymmetricInt", "NaN amax, zero range", func() error { _ = SymmetricInt(nan, 0, 0, 0); return nil })
	noError("qkernel.AbsMax", "nil", func() error { return want(AbsMax[T](nil) == 0, "AbsMax(nil) != 0") })
	noError("qkernel.MinMax", "nil", func() error { _, _, n := MinMax[T](nil); return want(n == 0, "n != 0") })
	noError("qkernel.Percentile", "nil", func() error { return want(Percentile[T](nil, 50, nil) == 0, "≠ 0") })
	noError("qkernel.Percentile", "short scratch", func() error {
		return want(Percentile([]T{3, 1, 2}, 50, nil) == 2, "median of 1, 2, 3 ≠ 2")
	})
	noError("qkernel.Percentile", "p NaN", func() error { return want(math.IsNaN(Percentile([]T{1, 2}, math.NaN(), nil)), "not NaN") })
	noError("qkernel.Percentile", "p outside [0, 100]", func() error {
		return want(Percentile([]T{1, 2}, -5, nil) == 1 && Percentile([]T{1, 2}, 500, nil) == 2, "not clamped")
	})
	for _, f := range formats {
		noError("qkernel.FloatFormat", f.name+": methods", func() error {
			r, _ := f.f.Round(1)
			_ = f.f.String()
			return want(math.IsNaN(r) && f.f.Max() == 0 && f.f.SmallestSubnormal() == 0 && !f.f.Valid() && !f.f.Saturates(),
				"an unknown format should round to NaN and have Max, SmallestSubnormal 0")
		})
	}
	noError("qkernel.Counts", "Add", func() error { var c Counts; c.Add(Counts{N: 1}); return want(c.N == 1, "N ≠ 1") })
	return cases
}

// tiny returns T's smallest positive value, whose reciprocal overflows.
func tiny[T Float]() T {
	if is32[T]() {
		return T(math.SmallestNonzeroFloat32)
	}
	return T(math.SmallestNonzeroFloat64)
}

// want returns nil if ok, else an error saying what went wrong.
func want(ok bool, what string) error {
	if ok {
		return nil
	}
	return fmt.Errorf("%s", what)
}
