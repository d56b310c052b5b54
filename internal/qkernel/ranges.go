package qkernel

import (
	"math"
	"slices"
)

// AbsMax returns the largest |x[i]| over the finite elements of x, and 0 if
// there are none. NaN and ±Inf are skipped, so that one bad value does not
// wipe out a dynamic scale.
func AbsMax[T Float](x []T) T {
	start, mv := absMaxVec(x)
	m := float64(mv)
	for _, v := range x[start:] {
		// math.Abs clears the sign bit: no branch on the sign, which random
		// data would mispredict half the time.
		a := math.Abs(float64(v))
		if a > m && a <= math.MaxFloat64 { // false for NaN and +Inf
			m = a
		}
	}
	return T(m)
}

// MinMax returns the smallest and largest finite elements of x and how many
// finite elements there are; with none it returns (0, 0, 0).
func MinMax[T Float](x []T) (lo, hi T, n int) {
	inf := T(math.Inf(1))
	first := true
	for _, v := range x {
		if !(v > -inf && v < inf) { // NaN or ±Inf
			continue
		}
		n++
		if first {
			lo, hi, first = v, v, false
			continue
		}
		if v < lo {
			lo = v
		} else if v > hi {
			hi = v
		}
	}
	return lo, hi, n
}

// Percentile returns the p-th percentile (0 ≤ p ≤ 100) of the finite
// elements of x with linear interpolation between order statistics (numpy's
// default, "linear"): with the n finite values sorted as v₀ ≤ … ≤ vₙ₋₁ and
// h = p/100·(n−1), it is v⌊h⌋ + (h−⌊h⌋)·(v⌊h⌋₊₁ − v⌊h⌋). scratch should
// have room for len(x) values; it is overwritten. With no finite element it
// returns 0. Unlike the other kernels it sorts, in O(n log n), and it
// allocates if scratch is too short. A p outside [0, 100] is taken as 0
// or 100; a NaN p gives NaN.
func Percentile[T Float](x []T, p float64, scratch []float64) float64 {
	if math.IsNaN(p) {
		return math.NaN()
	}
	p = min(max(p, 0), 100)
	s := scratch[:0]
	for _, v := range x {
		f := float64(v)
		if !math.IsNaN(f) && !math.IsInf(f, 0) {
			s = append(s, f)
		}
	}
	if len(s) == 0 {
		return 0
	}
	slices.Sort(s)
	h := p / 100 * float64(len(s)-1)
	i := int(math.Floor(h))
	if i >= len(s)-1 {
		return s[len(s)-1]
	}
	if i < 0 {
		return s[0]
	}
	return s[i] + (h-float64(i))*(s[i+1]-s[i])
}
