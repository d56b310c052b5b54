package kernel

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
func NewInt[T Float](scale T, zeroPoint, qmin, qmax int) Int[T] {
	return Int[T]{scale: scale, inv: 1 / scale, lo: T(qmin - zeroPoint), hi: T(qmax - zeroPoint)}
}

// Scale returns the grid's scale s.
func (q Int[T]) Scale() T { return q.scale }

// Bounds returns the smallest and largest values on the grid,
// (qmin − z)·s and (qmax − z)·s.
func (q Int[T]) Bounds() (lo, hi T) { return q.lo * q.scale, q.hi * q.scale }

// code returns the rounded, unclamped code relative to the zero point,
// round_half_even(x·(1/s)), clamped to [lo−1, hi+1] so that the result
// fits the rounding trick and ±Inf need no special case; NaN stays NaN.
// The clamp keeps the comparison with [lo, hi] exact: a code outside
// [lo−1, hi+1] before the clamp is still outside [lo, hi] after it.
func (q Int[T]) code(x, magic T) T {
	t := T(x * q.inv) // explicit conversion: no FMA with the add below
	if t < q.lo-1 {
		t = q.lo - 1
	} else if t > q.hi+1 {
		t = q.hi + 1
	}
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
// differ.
func FakeQuantInt[T Float](dst, x []T, q Int[T]) error {
	if err := checkLengths("kernel.FakeQuantInt", len(dst), len(x)); err != nil {
		return err
	}
	start := fakeQuantIntVec(dst, x, q)
	magic := roundMagic[T]()
	lo1, hi1 := q.lo-1, q.hi+1
	dst = dst[:len(x)]
	for i := start; i < len(x); i++ {
		t := T(x[i] * q.inv)
		if t < lo1 {
			t = lo1
		} else if t > hi1 {
			t = hi1
		}
		r := T(t+magic) - magic
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
// lengths differ.
func FakeQuantIntGrad[T Float](dst, x, dy []T, q Int[T]) error {
	if err := checkLengths("kernel.FakeQuantIntGrad", len(dst), len(x), len(dy)); err != nil {
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
// not a multiple of len(qs).
func FakeQuantIntCols[T Float](dst, x []T, qs []Int[T]) error {
	if err := checkCols("kernel.FakeQuantIntCols", len(dst), len(x), len(qs)); err != nil {
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
	if err := checkCols("kernel.FakeQuantIntColsGrad", len(dst), len(x), len(qs)); err != nil {
		return err
	}
	if err := checkLengths("kernel.FakeQuantIntColsGrad", len(dst), len(dy)); err != nil {
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

func checkCols(kernel string, n, m, cols int) error {
	if err := checkLengths(kernel, n, m); err != nil {
		return err
	}
	if cols == 0 || n%cols != 0 {
		return fmt.Errorf("%s: length %d is not a multiple of %d columns: %w", kernel, n, cols, ErrLength)
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
