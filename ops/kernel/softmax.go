package kernel

import (
	"fmt"
	"math"
)

// Axis selects the one-dimensional slices along one axis of a row-major
// array, for the softmax kernels. The array is viewed as outer×N×Inner:
// N is the length of the axis and Inner the product of the dimensions after
// it (1 for the last axis), so the elements of one slice lie Inner apart and
// no transposed copy is needed. The array holds outer·Inner slices; slice
// s = o·Inner + k (0 ≤ k < Inner) is the N elements
//
//	o·N·Inner + j·Inner + k,  j = 0, …, N−1.
//
// A kernel processes the slices Lo ≤ s < Hi only, so disjoint ranges can run
// on different goroutines. Along builds the Axis that covers a whole array.
type Axis struct {
	N      int // length of the axis: elements per slice
	Inner  int // product of the dimensions after the axis: the stride within a slice
	Lo, Hi int // the slices to process, [Lo, Hi)
}

// Along returns the Axis selecting every slice of an array of size elements
// along an axis of length n followed by inner elements.
func Along(size, n, inner int) Axis {
	a := Axis{N: n, Inner: inner}
	if n > 0 {
		a.Hi = size / n
	}
	return a
}

// check returns an error wrapping ErrLength, naming kernel and the
// argument at fault, unless the slices all have dst's length and a fits an
// array of that size.
func (a Axis) check(kernel string, dst arg, others ...arg) error {
	if err := checkLengths(kernel, dst, others...); err != nil {
		return err
	}
	size := dst.n
	if size == 0 && a.Lo == 0 && a.Hi == 0 {
		return nil
	}
	// N·Inner must divide size; N ≤ size/Inner first, so that the product
	// cannot overflow.
	if a.N < 1 || a.Inner < 1 || a.N > size/a.Inner || size%(a.N*a.Inner) != 0 {
		return fmt.Errorf("%s: a has N = %d and Inner = %d, want N, Inner ≥ 1 with N·Inner dividing len(%s) = %d: %w",
			kernel, a.N, a.Inner, dst.name, size, ErrLength)
	}
	if slices := size / a.N; a.Lo < 0 || a.Hi < a.Lo || a.Hi > slices {
		return fmt.Errorf("%s: a selects slices [%d, %d), want 0 ≤ Lo ≤ Hi ≤ %d (the array's slices): %w",
			kernel, a.Lo, a.Hi, slices, ErrLength)
	}
	return nil
}

// tileWidth is the most adjacent slices a strided kernel (Inner > 1)
// processes together, and the block length of the row kernels. A tile reads
// tileWidth consecutive elements from each of the N rows, so strided
// softmax walks memory in order; its per-slice state (max, sum, exps) lives
// in arrays of this size on the stack.
const tileWidth = 64

// each calls fn(off, w) for runs of w adjacent slices that together cover
// slices [Lo, Hi): off is the offset of the first element of the run's first
// slice. With Inner == 1 every run is one contiguous slice (w = 1);
// otherwise a run has at most tileWidth slices, all in one outer block.
func (a Axis) each(fn func(off, w int)) {
	if a.Inner == 1 {
		for s := a.Lo; s < a.Hi; s++ {
			fn(s*a.N, 1)
		}
		return
	}
	for s := a.Lo; s < a.Hi; {
		o, k := s/a.Inner, s%a.Inner
		w := min(tileWidth, a.Inner-k, a.Hi-s)
		fn(o*a.N*a.Inner+k, w)
		s += w
	}
}

// Softmax sets dst to the softmax of x along the slices selected by a
// (elements outside them are not touched):
//
//	y_j = e^(x_j − m) / Σ_k e^(x_k − m),  m = max_k x_k
//
// Subtracting the slice's own maximum m keeps every exponent ≤ 0, so no
// finite input overflows. It takes three passes (the maximum; e^(x_j − m)
// and its sum; the scaling) rather than the online single-pass
// max-and-sum, which needs two exps per element: the exps dominate the
// time, and a slice of up to 256 KB stays in cache between passes
// (bench/RESULTS.md compares the two).
//
// Every sum is accumulated in float64 whatever T is. For float32, the
// scalar code computes in float64, with a float32-grade exp (expSingle,
// relative error 5.8e-10), and its results are within 2^−23 relative of
// the exact softmax of the input, about 1 ULP. The vector code (AVX2+FMA
// assembly in the default build on amd64, AVX-512 with GOEXPERIMENT=simd),
// which runs on contiguous slices, computes in float32 lanes, as PyTorch
// does, but with the subtraction of m and the float64 scalars carried as
// two float32s (softmax_amd64.go): its results are within 2^−22 relative
// (measured: 2.8·2^−24), so the two agree within 6 ULPs (3 seen). Strided
// slices (a along an inner axis) take float64 lanes on every path. For
// float64, e^z comes from math.Exp and the error is that of the float64
// sum, a few ULPs (below 1e-14 relative in the tests, on slices of up to
// 1000 elements).
//
// Special cases, per slice (other slices are not affected):
//
//	x_j = −Inf, some x_k finite  →  y_j = 0 exactly (an additive mask)
//	every x_j = −Inf             →  every y_j = 0 (PyTorch gives NaN)
//	some x_j = NaN               →  every y_j = NaN
//	some x_j = +Inf              →  every y_j = NaN (as PyTorch and JAX)
//
// dst may be x itself, but may not overlap it otherwise. It does not
// allocate. It returns an error wrapping ErrLength, and writes nothing, if
// the lengths differ or a does not fit them.
func Softmax[T Float](dst, x []T, a Axis) error {
	if err := a.check("kernel.Softmax", arg{"dst", len(dst)}, arg{"x", len(x)}); err != nil {
		return err
	}
	a.each(func(off, w int) { softmaxRun(dst, x, off, w, a.N, a.Inner, false) })
	return nil
}

// LogSoftmax sets dst to the log of the softmax of x along the slices
// selected by a (elements outside them are not touched):
//
//	y_j = (x_j − m) − log Σ_k e^(x_k − m),  m = max_k x_k
//
// evaluated in that order (as PyTorch does: adding m to the log first
// would lose precision). Accuracy is as for Softmax, but relative to
// |x_j − m| + log Σ: the error of log Σ is absolute, the exps' relative
// error times (Σ − 1)/Σ (the term e^0 = 1 is exact), so it matters only
// where y_j is near 0. Special cases, per slice:
//
//	x_j = −Inf, some x_k finite  →  y_j = −Inf
//	every x_j = −Inf             →  every y_j = −Inf (PyTorch gives NaN)
//	some x_j = NaN               →  every y_j = NaN
//	some x_j = +Inf              →  every y_j = NaN
//
// dst may be x itself, but may not overlap it otherwise. It does not
// allocate. It returns an error wrapping ErrLength, and writes nothing, if
// the lengths differ or a does not fit them.
func LogSoftmax[T Float](dst, x []T, a Axis) error {
	if err := a.check("kernel.LogSoftmax", arg{"dst", len(dst)}, arg{"x", len(x)}); err != nil {
		return err
	}
	a.each(func(off, w int) { softmaxRun(dst, x, off, w, a.N, a.Inner, true) })
	return nil
}

// SoftmaxGrad sets dst to the backward pass of Softmax along the slices
// selected by a, given its output y and the gradient dy of the loss with
// respect to y:
//
//	dx_j = y_j·(dy_j − Σ_k y_k·dy_k)
//
// The sum is accumulated in float64. A masked entry (y_j = 0) gets
// dx_j = 0 for finite dy. A slice whose y is all zero (a fully masked
// slice, whose output does not depend on x) gets dx = 0 exactly, whatever
// dy holds. NaN in y or dy gives NaN in the slice.
//
// dst may be y or dy itself, but may not overlap them otherwise. It does not
// allocate. It returns an error wrapping ErrLength, and writes nothing, if
// the lengths differ or a does not fit them.
func SoftmaxGrad[T Float](dst, y, dy []T, a Axis) error {
	if err := a.check("kernel.SoftmaxGrad", arg{"dst", len(dst)}, arg{"y", len(y)}, arg{"dy", len(dy)}); err != nil {
		return err
	}
	a.each(func(off, w int) { softmaxGradRun(dst, y, dy, off, w, a.N, a.Inner) })
	return nil
}

// LogSoftmaxGrad sets dst to the backward pass of LogSoftmax along the
// slices selected by a, given its output y and the gradient dy of the loss
// with respect to y:
//
//	dx_j = dy_j − e^(y_j)·Σ_k dy_k
//
// The sum is accumulated in float64; e^y is computed as in Softmax. At a
// masked entry (y_j = −Inf) the derivative of log-softmax is exactly that
// of the identity, so dx_j = dy_j, as in PyTorch: it is 0 whenever the
// loss gives masked log-probabilities zero weight. A slice whose y is all
// −Inf (fully masked, so its output does not depend on x) gets dx = 0
// exactly, whatever dy holds. NaN in y or dy gives NaN in the slice.
//
// dst may be y or dy itself, but may not overlap them otherwise. It does not
// allocate. It returns an error wrapping ErrLength, and writes nothing, if
// the lengths differ or a does not fit them.
func LogSoftmaxGrad[T Float](dst, y, dy []T, a Axis) error {
	if err := a.check("kernel.LogSoftmaxGrad", arg{"dst", len(dst)}, arg{"y", len(y)}, arg{"dy", len(dy)}); err != nil {
		return err
	}
	a.each(func(off, w int) { logSoftmaxGradRun(dst, y, dy, off, w, a.N, a.Inner) })
	return nil
}

// softmaxRun computes softmax or log-softmax for w adjacent slices of n
// elements, stride inner, starting at off.
func softmaxRun[T Float](dst, x []T, off, w, n, inner int, log bool) {
	if inner == 1 {
		softmaxRow(dst[off:off+n], x[off:off+n], log)
	} else {
		softmaxTile(dst, x, off, w, n, inner, log)
	}
}

// softmaxRow computes softmax or log-softmax of one contiguous slice in
// three passes: the maximum m; e = exp(x − m) and its sum s (softmax keeps
// e in dst); then y = e/s, or (x − m) − log s.
func softmaxRow[T Float](dst, x []T, log bool) {
	// NaN never compares greater, so the maximum skips it and NaN reaches
	// the sum instead. A fully masked slice is shifted by 0 instead of
	// −Inf (−Inf − −Inf would be NaN): every exp is 0 and so is the sum.
	m := float64(rowMax(x))
	if math.IsInf(m, -1) {
		m = 0
	}
	s := rowExpSum(dst, x, m, !log)
	// A sum of 0 means a fully masked slice (otherwise the maximum
	// contributes e^0 = 1): scaling by 0, or subtracting +Inf from
	// x − 0 = −Inf, gives its zeros or −Infs with no test per element.
	// A NaN sum makes the slice NaN.
	if log {
		lse := math.Inf(1)
		if s != 0 {
			lse = math.Log(s)
		}
		rowLogOut(dst, x, m, lse)
		return
	}
	inv := 0.0
	if s != 0 {
		inv = 1 / s
	}
	rowScale(dst, inv)
}

// softmaxTile is softmaxRow for w adjacent slices of n elements, stride
// inner, starting at off: each pass walks the tile row by row, so memory is
// read in order, with the per-slice state in arrays on the stack.
func softmaxTile[T Float](dst, x []T, off, w, n, inner int, log bool) {
	var mArr, sArr, zArr [tileWidth]float64
	m, s, z := mArr[:w], sArr[:w], zArr[:w]
	for c := range m {
		m[c] = math.Inf(-1)
	}
	for j := range n {
		o := off + j*inner
		for c, v := range x[o : o+w] {
			if float64(v) > m[c] {
				m[c] = float64(v)
			}
		}
	}
	for c := range m {
		if math.IsInf(m[c], -1) {
			m[c] = 0
		}
	}
	for j := range n {
		o := off + j*inner
		for c, v := range x[o : o+w] {
			z[c] = float64(v) - m[c]
		}
		expInPlace[T](z)
		if !log {
			out := dst[o : o+w]
			for c, e := range z {
				out[c] = T(e)
			}
		}
		for c, e := range z {
			s[c] += e
		}
	}
	for c, v := range s {
		switch {
		case v == 0 && log:
			s[c] = math.Inf(1)
		case v == 0:
			s[c] = 0
		case log:
			s[c] = math.Log(v)
		default:
			s[c] = 1 / v
		}
	}
	for j := range n {
		o := off + j*inner
		out := dst[o : o+w]
		if log {
			for c, v := range x[o : o+w] {
				out[c] = T((float64(v) - m[c]) - s[c])
			}
		} else {
			for c, e := range out {
				out[c] = T(float64(e) * s[c])
			}
		}
	}
}

// softmaxGradRun computes dx = y⊙(dy − Σ y⊙dy) for w adjacent slices of n
// elements, stride inner, starting at off.
func softmaxGradRun[T Float](dst, y, dy []T, off, w, n, inner int) {
	if inner == 1 {
		ys, ds, out := y[off:off+n], dy[off:off+n], dst[off:off+n]
		if allEqual(ys, 0) {
			clear(out) // fully masked
			return
		}
		rowGradOut(out, ys, ds, rowDot(ys, ds))
		return
	}
	var sArr [tileWidth]float64
	var liveArr [tileWidth]bool // the slice has an unmasked entry
	s, live := sArr[:w], liveArr[:w]
	for j := range n {
		o := off + j*inner
		ds := dy[o : o+w]
		for c, v := range y[o : o+w] {
			s[c] += float64(v) * float64(ds[c])
			live[c] = live[c] || v != 0
		}
	}
	for j := range n {
		o := off + j*inner
		ds, out := dy[o:o+w], dst[o:o+w]
		for c, v := range y[o : o+w] {
			out[c] = T(float64(v) * (float64(ds[c]) - s[c]))
		}
	}
	zeroDeadColumns(dst, live, off, n, inner)
}

// logSoftmaxGradRun computes dx = dy − exp(y)·Σ dy for w adjacent slices of
// n elements, stride inner, starting at off.
func logSoftmaxGradRun[T Float](dst, y, dy []T, off, w, n, inner int) {
	if inner == 1 {
		ys, ds, out := y[off:off+n], dy[off:off+n], dst[off:off+n]
		if allEqual(ys, T(math.Inf(-1))) {
			clear(out) // fully masked
			return
		}
		rowLogGradOut(out, ys, ds, rowSum(ds))
		return
	}
	var sArr, zArr [tileWidth]float64
	var liveArr [tileWidth]bool // the slice has an unmasked entry
	s, z, live := sArr[:w], zArr[:w], liveArr[:w]
	masked := T(math.Inf(-1))
	for j := range n {
		o := off + j*inner
		for c, v := range dy[o : o+w] {
			s[c] += float64(v)
		}
		for c, v := range y[o : o+w] {
			live[c] = live[c] || v != masked
		}
	}
	for j := range n {
		o := off + j*inner
		for c, v := range y[o : o+w] {
			z[c] = float64(v)
		}
		expInPlace[T](z)
		ds, out := dy[o:o+w], dst[o:o+w]
		for c, e := range z {
			out[c] = T(float64(ds[c]) - e*s[c])
		}
	}
	zeroDeadColumns(dst, live, off, n, inner)
}

// zeroDeadColumns sets dx to +0 in each slice c of a tile (n elements,
// stride inner, from off + c) that is not live, that is, fully masked: its
// output does not depend on x. Liveness is found from y before dx is
// written, as dst may be y itself.
func zeroDeadColumns[T Float](dst []T, live []bool, off, n, inner int) {
	for c, l := range live {
		if !l {
			for j := range n {
				dst[off+c+j*inner] = 0
			}
		}
	}
}

// allEqual reports whether every element of x equals v. It stops at the
// first that does not, which is the first for all but masked slices.
func allEqual[T Float](x []T, v T) bool {
	for _, u := range x {
		if u != v {
			return false
		}
	}
	return true
}

// The row helpers below do one pass over one contiguous slice: a float32
// row goes first to the helper's vector routine (maxVec, expSumVec, …; see
// "Vector paths" in fast32.go), and the scalar code here does the elements
// it leaves; a helper returns as soon as none is left, so that a row the
// vector routine finished costs no scalar call and no cleared block array.
// The test is32[T]() is decided at compile time: float64 rows pay nothing
// for it.

// rowMax returns the largest non-NaN element of x, or −Inf if there is
// none.
func rowMax[T Float](x []T) T {
	m := T(math.Inf(-1))
	if is32[T]() {
		i, m32 := maxVec(as32(x))
		x, m = x[i:], T(m32)
	}
	for _, v := range x {
		if v > m {
			m = v
		}
	}
	return m
}

// rowExpSum returns Σ e^(x_j − m) in float64, storing each term in dst if
// store is set. m must be at least every non-NaN x_j (the row's maximum),
// which the AVX2 assembly relies on.
func rowExpSum[T Float](dst, x []T, m float64, store bool) float64 {
	var s float64
	if is32[T]() {
		var i int
		i, s = expSumVec(as32(dst), as32(x), m, store)
		dst, x = dst[i:], x[i:]
	}
	if len(x) == 0 {
		return s
	}
	var zArr [tileWidth]float64
	for j0 := 0; j0 < len(x); j0 += tileWidth {
		z := zArr[:min(tileWidth, len(x)-j0)]
		for j, v := range x[j0 : j0+len(z)] {
			z[j] = float64(v) - m
		}
		expInPlace[T](z)
		if store {
			out := dst[j0 : j0+len(z)]
			for j, e := range z {
				out[j] = T(e)
			}
		}
		s += sum(z)
	}
	return s
}

// rowScale sets dst_j = dst_j·inv. The dst_j are the slice's exps, in
// [0, 1], or NaN: the AVX2 assembly forms the product's rounding error,
// which is NaN for an infinite dst_j.
func rowScale[T Float](dst []T, inv float64) {
	if is32[T]() {
		// inv is 1/s for a sum s ≥ 1 of at most 2^63 terms, 0 or NaN:
		// always in float32's range.
		f, _ := split32(inv)
		dst = dst[scaleVec(as32(dst), f):]
	}
	for j, e := range dst {
		dst[j] = T(float64(e) * inv)
	}
}

// rowLogOut sets dst_j = (x_j − m) − lse.
func rowLogOut[T Float](dst, x []T, m, lse float64) {
	if is32[T]() {
		// lse is log s for a sum s ≥ 1 of at most 2^63 terms, +Inf (a
		// fully masked slice) or NaN: in float32's range or infinite.
		f, _ := split32(lse)
		i := logOutVec(as32(dst), as32(x), m, f)
		dst, x = dst[i:], x[i:]
	}
	dst = dst[:len(x)]
	for j, v := range x {
		dst[j] = T((float64(v) - m) - lse)
	}
}

// rowDot returns Σ y·dy in float64.
func rowDot[T Float](y, dy []T) float64 {
	var s float64
	if is32[T]() {
		var i int
		i, s = dotVec(as32(y), as32(dy))
		y, dy = y[i:], dy[i:]
	}
	if len(y) == 0 {
		return s
	}
	return s + dot(y, dy)
}

// rowGradOut sets dst_j = y_j·(dy_j − s).
func rowGradOut[T Float](dst, y, dy []T, s float64) {
	if f, ok := split32(s); ok && is32[T]() { // not ok: |s| is beyond float32's range
		i := gradOutVec(as32(dst), as32(y), as32(dy), f)
		dst, y, dy = dst[i:], y[i:], dy[i:]
	}
	dst, dy = dst[:len(y)], dy[:len(y)]
	for j, v := range y {
		dst[j] = T(float64(v) * (float64(dy[j]) - s))
	}
}

// rowSum returns Σ x in float64.
func rowSum[T Float](x []T) float64 {
	var s float64
	if is32[T]() {
		var i int
		i, s = sumVec(as32(x))
		x = x[i:]
	}
	if len(x) == 0 {
		return s
	}
	return s + sum(x)
}

// rowLogGradOut sets dst_j = dy_j − e^(y_j)·total.
func rowLogGradOut[T Float](dst, y, dy []T, total float64) {
	if f, ok := split32(-total); ok && is32[T]() { // not ok: |total| is beyond float32's range
		i := logGradOutVec(as32(dst), as32(y), as32(dy), f)
		dst, y, dy = dst[i:], y[i:], dy[i:]
	}
	if len(y) == 0 {
		return
	}
	var zArr [tileWidth]float64
	for j0 := 0; j0 < len(y); j0 += tileWidth {
		z := zArr[:min(tileWidth, len(y)-j0)]
		for j, v := range y[j0 : j0+len(z)] {
			z[j] = float64(v)
		}
		expInPlace[T](z)
		ds, out := dy[j0:j0+len(z)], dst[j0:j0+len(z)]
		for j, e := range z {
			out[j] = T(float64(ds[j]) - e*total)
		}
	}
}

// twoFloat is a float64 scalar of the row helpers, v, with the two
// float32s hi + lo that the vector routines use in its place (split32).
type twoFloat struct {
	v      float64
	hi, lo float32
}

// split32 returns v as a two-float hi + lo (hi = v rounded to float32, lo
// the rest rounded to float32, so hi + lo is v to about 2^−48 relative),
// and whether the pair stands for v: not when v is finite but beyond
// float32's range, where hi is ±Inf. For infinite v, lo is 0 (v − hi would
// be NaN); for NaN, both are NaN.
func split32(v float64) (twoFloat, bool) {
	hi := float32(v)
	if math.IsInf(float64(hi), 0) {
		return twoFloat{v, hi, 0}, math.IsInf(v, 0)
	}
	return twoFloat{v, hi, float32(v - float64(hi))}, true
}

// sum returns Σ x in float64, with four accumulators so that the additions
// do not wait on each other.
func sum[T Float](x []T) float64 {
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(x); i += 4 {
		s0 += float64(x[i])
		s1 += float64(x[i+1])
		s2 += float64(x[i+2])
		s3 += float64(x[i+3])
	}
	for ; i < len(x); i++ {
		s0 += float64(x[i])
	}
	return (s0 + s1) + (s2 + s3)
}

// dot returns Σ y·dy in float64, with four accumulators.
func dot[T Float](y, dy []T) float64 {
	dy = dy[:len(y)]
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(y); i += 4 {
		s0 += float64(y[i]) * float64(dy[i])
		s1 += float64(y[i+1]) * float64(dy[i+1])
		s2 += float64(y[i+2]) * float64(dy[i+2])
		s3 += float64(y[i+3]) * float64(dy[i+3])
	}
	for ; i < len(y); i++ {
		s0 += float64(y[i]) * float64(dy[i])
	}
	return (s0 + s1) + (s2 + s3)
}

// expInPlace sets z[i] = e^z[i] to the precision of T: with math.Exp for
// float64; to float32 accuracy for float32, by expVec and, for what it
// leaves, expSingle.
func expInPlace[T Float](z []float64) {
	if !is32[T]() {
		for i, v := range z {
			z[i] = math.Exp(v)
		}
		return
	}
	expSingle(z[expVec(z):])
}

// Bounds of expSingle: the exponents outside which e^z is 0 or +Inf in
// float32. e^−104 is below half the smallest float32 subnormal (2^−150)
// and e^89 above MaxFloat32 (≈ e^88.72).
const (
	expSingleMin = -104
	expSingleMax = 89
)

// expBits is log2 of expTable's length.
const expBits = 5

// expTable[i] holds the bits of 2^(i/32) less i<<47, so that adding k<<47
// for k = 32·q + i (0 ≤ i < 32) gives the bits of 2^(q + i/32). The
// layout is musl's exp2f_data (src/math/exp2f_data.c).
var expTable = func() (t [1 << expBits]uint64) {
	for i := range t {
		t[i] = math.Float64bits(math.Exp2(float64(i)/(1<<expBits))) - uint64(i)<<(52-expBits)
	}
	return t
}()

// expSingle sets z[i] = e^z[i] to float32 accuracy: the relative error is
// below 1e-9 (measured: 5.8e-10 over every 97th float32 in [−104, 89]), far
// below float32's half-ULP of 6e-8, so float32(e^z) is the correctly
// rounded float32 value or, rarely, its neighbour. Needing less accuracy
// than math.Exp, it is faster.
//
// Method (musl's expf, in float64): z = (32·q + i)·ln2/32 + r with
// 0 ≤ i < 32 and |r| ≤ ln2/64; e^z = 2^q · 2^(i/32) · e^r, with 2^(i/32)
// from expTable and e^r − 1 from its degree-3 Taylor polynomial
// (truncation error r^4/4! ≤ 6e-10). The reduction uses ln2/32 rounded to
// float64, whose error, |32·q + i|·2^−59 < 1e-14, is negligible here.
//
// Special cases: z < −104 gives 0 (and −Inf gives 0), z > 89 gives +Inf,
// NaN gives NaN.
//
// The activations' scalar exp, expBlock (fast32.go), is a different one:
// branch-free, it clamps z to ±700 and so never gives 0, where softmax
// needs e^−Inf = 0 exactly for masked entries and a sum of 0 for a fully
// masked slice.
func expSingle(z []float64) {
	const n = 1 << expBits
	for i, v := range z {
		t := v*(n*math.Log2E) + expShift
		k := math.Float64bits(t) // its low bits hold round(v·32/ln2)
		t -= expShift
		r := v - t*(math.Ln2/n)
		p := r*(1.0/6) + 0.5
		p = (p*r)*r + r // e^r − 1
		scale := math.Float64frombits(expTable[k%n] + k<<(52-expBits))
		e := scale + scale*p
		if v < expSingleMin {
			e = 0
		}
		if v > expSingleMax {
			e = math.Inf(1)
		}
		z[i] = e
	}
}
