package qkernel

import (
	"fmt"
	"math"
)

// Int holds the constants of one integer quantization grid: a scale s > 0,
// a zero point z and the code range [qmin, qmax]. Make one with NewInt.
//
// The fake-quantized value of x is
//
//	q = clamp(round_half_even(x·(1/s)) + z, qmin, qmax)
//	y = (q − z)·s
//
// computed in T with the reciprocal of s, as PyTorch's
// fake_quantize_per_tensor_affine does; in float32 the result is the same
// bits as PyTorch's.
type Int[T Float] struct {
	scale, inv T // s and 1/s rounded to T
	lo, hi     T // qmin − z and qmax − z: the integer grid relative to z
}

// NewInt returns the grid of scale s, zero point z and codes [qmin, qmax].
// It does not check its arguments: s must be positive and finite in T with a
// finite reciprocal, and qmin ≤ z ≤ qmax (package quantize checks specs).
// The kernels return an error wrapping ErrParam for a grid that breaks
// these conditions (the zero Int included).
func NewInt[T Float](scale T, zeroPoint, qmin, qmax int) Int[T] {
	return Int[T]{scale: scale, inv: 1 / scale, lo: T(qmin - zeroPoint), hi: T(qmax - zeroPoint)}
}

// Scale returns the grid's scale s.
func (q Int[T]) Scale() T { return q.scale }

// Bounds returns the smallest and largest values on the grid,
// (qmin − z)·s and (qmax − z)·s.
func (q Int[T]) Bounds() (lo, hi T) { return q.lo * q.scale, q.hi * q.scale }

// code returns the rounded code relative to the zero point,
// round_half_even(x·(1/s)), by the magic-number trick: (t + m) − m with
// m = 1.5·2^(p−1) rounds t to an integer, half to even, for |t| < 2^(p−2).
// Larger |t| come out wrong but still larger than 2^(p−2) − 2 in
// magnitude, far outside every code range, so the clamp and the mask that
// follow are right anyway; ±Inf stay ±Inf and NaN stays NaN.
func (q Int[T]) code(x, magic T) T {
	t := T(x * q.inv) // explicit conversion: no FMA with the add below
	return T(t+magic) - magic
}

// FakeQuant returns the fake-quantized value of one element and whether it
// was inside the range (PyTorch's mask: qmin ≤ round(x/s)+z ≤ qmax).
//
// Special cases are:
//
//	x = NaN:  y = (qmin − z)·s, inside = false  (as PyTorch: fmax(NaN, qmin) = qmin)
//	x = +Inf: y = (qmax − z)·s, inside = false
//	x = −Inf: y = (qmin − z)·s, inside = false
func (q Int[T]) FakeQuant(x T) (y T, inside bool) {
	r := q.code(x, roundMagic[T]())
	inside = r >= q.lo && r <= q.hi
	if !(r >= q.lo) { // below the range, or NaN
		r = q.lo
	} else if r > q.hi {
		r = q.hi
	}
	return r * q.scale, inside
}

// FakeQuantInt sets dst[i] to the fake-quantized x[i] on grid q (see Int).
//
// dst may alias x. It returns an error wrapping ErrLength if the lengths
// differ and ErrParam for an invalid q (see NewInt), and writes nothing
// then.
func FakeQuantInt[T Float](dst, x []T, q Int[T]) error {
	if err := checkLengths("qkernel.FakeQuantInt", arg{"dst", len(dst)}, arg{"x", len(x)}); err != nil {
		return err
	}
	if err := checkInt("qkernel.FakeQuantInt", "q", q); err != nil {
		return err
	}
	start := fakeQuantIntVec(dst, x, q)
	magic := roundMagic[T]()
	dst = dst[:len(x)]
	for i := start; i < len(x); i++ {
		r := q.code(x[i], magic)
		if !(r >= q.lo) {
			r = q.lo
		} else if r > q.hi {
			r = q.hi
		}
		dst[i] = r * q.scale
	}
	return nil
}

// FakeQuantIntGrad sets dst[i] = dy[i] where x[i] is inside grid q's range
// and 0 where it was clipped (or is NaN): the straight-through estimator
// with PyTorch's mask. Unlike PyTorch's dy·mask, a NaN or infinite dy at a
// clipped element gives 0, not NaN.
//
// dst may alias x or dy. It returns an error wrapping ErrLength if the
// lengths differ and ErrParam for an invalid q (see NewInt).
func FakeQuantIntGrad[T Float](dst, x, dy []T, q Int[T]) error {
	if err := checkLengths("qkernel.FakeQuantIntGrad", arg{"dst", len(dst)}, arg{"x", len(x)}, arg{"dy", len(dy)}); err != nil {
		return err
	}
	if err := checkInt("qkernel.FakeQuantIntGrad", "q", q); err != nil {
		return err
	}
	start := fakeQuantIntGradVec(dst, x, dy, q)
	magic := roundMagic[T]()
	dst = dst[:len(x)]
	dy = dy[:len(x)]
	for i := start; i < len(x); i++ {
		r := q.code(x[i], magic)
		if r >= q.lo && r <= q.hi {
			dst[i] = dy[i]
		} else {
			dst[i] = 0
		}
	}
	return nil
}

// FakeQuantIntCols is FakeQuantInt with one grid per column: x is a
// row-major matrix with len(qs) columns, and element i uses qs[i%len(qs)].
// It is the kernel of per-channel quantization along the last axis.
//
// It returns an error wrapping ErrLength if the lengths differ or len(x) is
// not a multiple of len(qs) (or qs is empty), and ErrParam for an invalid
// grid.
func FakeQuantIntCols[T Float](dst, x []T, qs []Int[T]) error {
	if err := checkCols("qkernel.FakeQuantIntCols", arg{"dst", len(dst)}, arg{"x", len(x)}, "len(qs)", len(qs)); err != nil {
		return err
	}
	if err := checkInts("qkernel.FakeQuantIntCols", qs); err != nil {
		return err
	}
	magic := roundMagic[T]()
	for lo := 0; lo < len(x); lo += len(qs) {
		row, out := x[lo:lo+len(qs)], dst[lo:lo+len(qs)]
		for j, v := range row {
			q := &qs[j]
			r := q.code(v, magic)
			if !(r >= q.lo) {
				r = q.lo
			} else if r > q.hi {
				r = q.hi
			}
			out[j] = r * q.scale
		}
	}
	return nil
}

// FakeQuantIntColsGrad is FakeQuantIntGrad with one grid per column, as in
// FakeQuantIntCols.
func FakeQuantIntColsGrad[T Float](dst, x, dy []T, qs []Int[T]) error {
	if err := checkCols("qkernel.FakeQuantIntColsGrad", arg{"dst", len(dst)}, arg{"x", len(x)}, "len(qs)", len(qs)); err != nil {
		return err
	}
	if err := checkLengths("qkernel.FakeQuantIntColsGrad", arg{"dst", len(dst)}, arg{"dy", len(dy)}); err != nil {
		return err
	}
	if err := checkInts("qkernel.FakeQuantIntColsGrad", qs); err != nil {
		return err
	}
	magic := roundMagic[T]()
	for lo := 0; lo < len(x); lo += len(qs) {
		row, g, out := x[lo:lo+len(qs)], dy[lo:lo+len(qs)], dst[lo:lo+len(qs)]
		for j, v := range row {
			q := &qs[j]
			r := q.code(v, magic)
			if r >= q.lo && r <= q.hi {
				out[j] = g[j]
			} else {
				out[j] = 0
			}
		}
	}
	return nil
}

// checkCols returns an error naming the kernel and the argument at fault
// unless b has a's length and cols (named as given, e.g. "len(qs)") is
// positive and divides it.
func checkCols(kernel string, a, b arg, colsName string, cols int) error {
	if err := checkLengths(kernel, a, b); err != nil {
		return err
	}
	if cols <= 0 || a.n%cols != 0 {
		return fmt.Errorf("%s: %s = %d, want a positive divisor of len(%s) = %d: %w", kernel, colsName, cols, a.name, a.n, ErrLength)
	}
	return nil
}

// valid reports whether q satisfies NewInt's conditions: a positive finite
// scale with a finite reciprocal, and qmin ≤ z ≤ qmax.
func (q Int[T]) valid() bool {
	s, inv := float64(q.scale), float64(q.inv)
	return s > 0 && s <= math.MaxFloat64 && inv <= math.MaxFloat64 && q.lo <= 0 && q.hi >= 0
}

// checkInt returns an error naming the kernel and the grid argument (name)
// unless q is valid.
func checkInt[T Float](kernel, name string, q Int[T]) error {
	if q.valid() {
		return nil
	}
	return fmt.Errorf("%s: %s has scale %v and codes [%v, %v] about its zero point, want a positive finite scale with a finite reciprocal and qmin ≤ z ≤ qmax (see NewInt): %w",
		kernel, name, q.scale, q.lo, q.hi, ErrParam)
}

// checkInts is checkInt for each grid of qs.
func checkInts[T Float](kernel string, qs []Int[T]) error {
	for i := range qs {
		if !qs[i].valid() {
			return checkInt(kernel, fmt.Sprintf("qs[%d]", i), qs[i])
		}
	}
	return nil
}

// roundEven is T's round half to even, for the reference paths.
func roundEven[T Float](x T) T { return T(math.RoundToEven(float64(x))) }

// fakeQuantIntVec runs the vector kernel for T's width, if there is one, on
// a prefix of x and returns its length.
func fakeQuantIntVec[T Float](dst, x []T, q Int[T]) int {
	switch d := any(dst).(type) {
	case []float32:
		return fakeQuantIntVec32(d, any(x).([]float32), any(q).(Int[float32]))
	case []float64:
		return fakeQuantIntVec64(d, any(x).([]float64), any(q).(Int[float64]))
	}
	return 0
}

func fakeQuantIntGradVec[T Float](dst, x, dy []T, q Int[T]) int {
	switch d := any(dst).(type) {
	case []float32:
		return fakeQuantIntGradVec32(d, any(x).([]float32), any(dy).([]float32), any(q).(Int[float32]))
	case []float64:
		return fakeQuantIntGradVec64(d, any(x).([]float64), any(dy).([]float64), any(q).(Int[float64]))
	}
	return 0
}

// FakeQuantIntGroups is FakeQuantInt with one grid per group of
// consecutive elements: x splits into len(qs) groups of len(x)/len(qs)
// elements, and group g uses qs[g]. It is the kernel of per-group
// quantization (and of per-channel quantization along the first axis).
//
// It returns an error wrapping ErrLength if the lengths differ or len(x) is
// not a multiple of len(qs) (or qs is empty). Unlike the other kernels it
// does not check its grids, which come one per group of as few as 32
// elements: checking each would slow the per-group forward pass markedly
// (BenchmarkForward/int4-group32-fixed in package quantize). Each must
// satisfy NewInt's conditions; an invalid one (the zero Int) gives NaN or garbage
// in its group, but never a panic.
func FakeQuantIntGroups[T Float](dst, x []T, qs []Int[T]) error {
	if err := checkCols("qkernel.FakeQuantIntGroups", arg{"dst", len(dst)}, arg{"x", len(x)}, "len(qs)", len(qs)); err != nil {
		return err
	}
	g := len(x) / len(qs)
	if fakeQuantIntGroupsVec(dst, x, qs) {
		return nil
	}
	magic := roundMagic[T]()
	for k := range qs {
		q := qs[k]
		out, in := dst[k*g:(k+1)*g], x[k*g:(k+1)*g]
		for i, v := range in {
			r := q.code(v, magic)
			if !(r >= q.lo) {
				r = q.lo
			} else if r > q.hi {
				r = q.hi
			}
			out[i] = r * q.scale
		}
	}
	return nil
}

// FakeQuantIntGroupsGrad is FakeQuantIntGrad with one grid per group, as
// in FakeQuantIntGroups (whose grids are not checked either).
func FakeQuantIntGroupsGrad[T Float](dst, x, dy []T, qs []Int[T]) error {
	if err := checkCols("qkernel.FakeQuantIntGroupsGrad", arg{"dst", len(dst)}, arg{"x", len(x)}, "len(qs)", len(qs)); err != nil {
		return err
	}
	if err := checkLengths("qkernel.FakeQuantIntGroupsGrad", arg{"dst", len(dst)}, arg{"dy", len(dy)}); err != nil {
		return err
	}
	g := len(x) / len(qs)
	if fakeQuantIntGroupsGradVec(dst, x, dy, qs) {
		return nil
	}
	magic := roundMagic[T]()
	for k := range qs {
		q := qs[k]
		out, in, d := dst[k*g:(k+1)*g], x[k*g:(k+1)*g], dy[k*g:(k+1)*g]
		for i, v := range in {
			r := q.code(v, magic)
			if r >= q.lo && r <= q.hi {
				out[i] = d[i]
			} else {
				out[i] = 0
			}
		}
	}
	return nil
}

// fakeQuantIntGroupsVec runs the whole grouped kernel with vectors when T
// is float32 and the group length a multiple of the vector width, and
// reports whether it did.
func fakeQuantIntGroupsVec[T Float](dst, x []T, qs []Int[T]) bool {
	d, ok := any(dst).([]float32)
	if !ok {
		return false
	}
	return fakeQuantIntGroupsVec32(d, any(x).([]float32), any(qs).([]Int[float32]))
}

func fakeQuantIntGroupsGradVec[T Float](dst, x, dy []T, qs []Int[T]) bool {
	d, ok := any(dst).([]float32)
	if !ok {
		return false
	}
	return fakeQuantIntGroupsGradVec32(d, any(x).([]float32), any(dy).([]float32), any(qs).([]Int[float32]))
}

// FakeQuantIntGroupsSymmetric fake-quantizes x in groups of len(x)/groups
// consecutive elements, each on its own symmetric grid computed from the
// group: zero point 0 and s = max(amax/qmax, minScale), with amax the
// largest finite |x| of the group (llama.cpp's Q4_0 with qmin −8, qmax 7,
// groups of 32, but with the largest magnitude on +qmax). It is
// FakeQuantIntGroups with the grids of package quantize's dynamic
// symmetric rule, fused so that each group is read while it is in cache.
//
// It returns an error wrapping ErrLength if the lengths differ or groups
// is not a positive divisor of len(x), and ErrParam unless qmin ≤ 0 < qmax
// and minScale is positive with a finite reciprocal.
func FakeQuantIntGroupsSymmetric[T Float](dst, x []T, groups, qmin, qmax int, minScale T) error {
	if err := checkCols("qkernel.FakeQuantIntGroupsSymmetric", arg{"dst", len(dst)}, arg{"x", len(x)}, "groups", groups); err != nil {
		return err
	}
	if err := checkSymmetric("qkernel.FakeQuantIntGroupsSymmetric", qmin, qmax, minScale); err != nil {
		return err
	}
	g := len(x) / groups
	if fakeQuantIntGroupsSymVec(dst, x, nil, g, qmin, qmax, minScale) {
		return nil
	}
	for k := range groups {
		out, in := dst[k*g:(k+1)*g], x[k*g:(k+1)*g]
		q := SymmetricInt(AbsMax(in), qmin, qmax, minScale)
		_ = FakeQuantInt(out, in, q)
	}
	return nil
}

// FakeQuantIntGroupsSymmetricGrad is FakeQuantIntGrad on the grids of
// FakeQuantIntGroupsSymmetric.
func FakeQuantIntGroupsSymmetricGrad[T Float](dst, x, dy []T, groups, qmin, qmax int, minScale T) error {
	if err := checkCols("qkernel.FakeQuantIntGroupsSymmetricGrad", arg{"dst", len(dst)}, arg{"x", len(x)}, "groups", groups); err != nil {
		return err
	}
	if err := checkLengths("qkernel.FakeQuantIntGroupsSymmetricGrad", arg{"dst", len(dst)}, arg{"dy", len(dy)}); err != nil {
		return err
	}
	if err := checkSymmetric("qkernel.FakeQuantIntGroupsSymmetricGrad", qmin, qmax, minScale); err != nil {
		return err
	}
	g := len(x) / groups
	if fakeQuantIntGroupsSymVec(dst, x, dy, g, qmin, qmax, minScale) {
		return nil
	}
	for k := range groups {
		out, in, d := dst[k*g:(k+1)*g], x[k*g:(k+1)*g], dy[k*g:(k+1)*g]
		q := SymmetricInt(AbsMax(in), qmin, qmax, minScale)
		_ = FakeQuantIntGrad(out, in, d, q)
	}
	return nil
}

// checkSymmetric returns an error naming the kernel and the argument at
// fault unless qmin ≤ 0 < qmax and minScale is positive with a finite
// reciprocal (so that every grid SymmetricInt makes is valid).
func checkSymmetric[T Float](kernel string, qmin, qmax int, minScale T) error {
	switch m := float64(minScale); {
	case qmin > 0 || qmax <= 0:
		return fmt.Errorf("%s: qmin = %d and qmax = %d, want qmin ≤ 0 < qmax (zero point 0 must be a code): %w", kernel, qmin, qmax, ErrParam)
	case !(m > 0) || m > math.MaxFloat64 || math.IsInf(float64(1/minScale), 0):
		return fmt.Errorf("%s: minScale = %v, want a positive finite scale with a finite reciprocal: %w", kernel, minScale, ErrParam)
	}
	return nil
}

// SymmetricInt returns the grid of the dynamic symmetric rule for data of
// largest magnitude amax: zero point 0, s = max(amax/qmax, minScale)
// computed in T.
func SymmetricInt[T Float](amax T, qmin, qmax int, minScale T) Int[T] {
	s := amax / T(qmax)
	if !(s >= minScale) {
		s = minScale
	}
	return NewInt(s, 0, qmin, qmax)
}

// fakeQuantIntGroupsSymVec runs the forward pass (dy nil) or the backward
// pass with vectors, if it can, and reports whether it did.
func fakeQuantIntGroupsSymVec[T Float](dst, x, dy []T, g, qmin, qmax int, minScale T) bool {
	d, ok := any(dst).([]float32)
	if !ok {
		return false
	}
	return fakeQuantIntGroupsSymVec32(d, any(x).([]float32), any(dy).([]float32), g, qmin, qmax, float32(minScale))
}
