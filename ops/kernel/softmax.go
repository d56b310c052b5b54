package kernel

import (
	"fmt"
	"math"
	"unsafe"
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

// check returns an error wrapping ErrLength unless the slices all have
// length size and a fits an array of that size.
func (a Axis) check(kernel string, size int, others ...int) error {
	if err := checkLengths(kernel, size, others...); err != nil {
		return err
	}
	if size == 0 && a.Lo == 0 && a.Hi == 0 {
		return nil
	}
	if a.N < 1 || a.Inner < 1 || size%(a.N*a.Inner) != 0 {
		return fmt.Errorf("%s: axis of length %d with %d inner elements does not fit %d elements: %w",
			kernel, a.N, a.Inner, size, ErrLength)
	}
	if slices := size / a.N; a.Lo < 0 || a.Hi < a.Lo || a.Hi > slices {
		return fmt.Errorf("%s: slices [%d, %d) outside the array's %d: %w", kernel, a.Lo, a.Hi, slices, ErrLength)
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

// single reports whether T has float32 precision, for which the kernels use
// expSingle instead of math.Exp.
func single[T Float]() bool {
	var z T
	return unsafe.Sizeof(z) == 4
}

// Softmax sets dst to the softmax of x along the slices selected by a
// (elements outside them are not touched):
//
//	y_j = e^(x_j − m) / Σ_k e^(x_k − m),  m = max_k x_k
//
// Subtracting the slice's own maximum m keeps every exponent ≤ 0, so no
// finite input overflows. The arithmetic is in float64 whatever T is: for
// float32, e^z comes from expSingle (relative error below 1e-8) and the
// results are within 1 float32 ULP of the exact value; for float64,
// from math.Exp, the results are within a few float64 ULPs.
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
	if err := a.check("kernel.Softmax", len(dst), len(x)); err != nil {
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
// would lose precision). Accuracy is as for Softmax. Special cases, per
// slice:
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
	if err := a.check("kernel.LogSoftmax", len(dst), len(x)); err != nil {
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
	if err := a.check("kernel.SoftmaxGrad", len(dst), len(y), len(dy)); err != nil {
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
	if err := a.check("kernel.LogSoftmaxGrad", len(dst), len(y), len(dy)); err != nil {
		return err
	}
	a.each(func(off, w int) { logSoftmaxGradRun(dst, y, dy, off, w, a.N, a.Inner) })
	return nil
}

// softmaxRun computes softmax or log-softmax for w adjacent slices of n
// elements, stride inner, starting at off: three passes (max; exp and sum;
// normalise), with the exps of softmax kept in dst between the last two.
func softmaxRun[T Float](dst, x []T, off, w, n, inner int, log bool) {
	var mArr, sArr, zArr [tileWidth]float64
	m, s := mArr[:w], sArr[:w]

	// Pass 1: the maximum of each slice. NaN never compares greater, so
	// it is skipped here and reaches the sum in pass 2 instead.
	if inner == 1 {
		m[0] = float64(maxOf(x[off : off+n]))
	} else {
		for c := range m {
			m[c] = math.Inf(-1)
		}
		for j := range n {
			row := x[off+j*inner : off+j*inner+w]
			for c, v := range row {
				if float64(v) > m[c] {
					m[c] = float64(v)
				}
			}
		}
	}
	for c := range m {
		// A fully masked slice: shift by 0 instead of −Inf (−Inf − −Inf
		// would be NaN), so every exp is 0 and the sum is 0 below.
		if math.IsInf(m[c], -1) {
			m[c] = 0
		}
	}

	// Pass 2: e = exp(x − m) and its sum, per slice. Softmax keeps e in dst.
	sgl := single[T]()
	for j0 := 0; j0 < n; {
		// A block: rows j0.. of the tile, or a stretch of the one slice.
		var z []float64
		var xo int // offset of the block's first element in x
		if inner == 1 {
			z = zArr[:min(tileWidth, n-j0)]
			xo = off + j0
			for i, v := range x[xo : xo+len(z)] {
				z[i] = float64(v) - m[0]
			}
		} else {
			z = zArr[:w]
			xo = off + j0*inner
			for c, v := range x[xo : xo+w] {
				z[c] = float64(v) - m[c]
			}
		}
		expInPlace(z, sgl)
		if !log {
			out := dst[xo : xo+len(z)]
			for i, e := range z {
				out[i] = T(e)
			}
		}
		if inner == 1 {
			s[0] += sum(z)
			j0 += len(z)
		} else {
			for c, e := range z {
				s[c] += e
			}
			j0++
		}
	}

	// Pass 3: normalise. A sum of 0 means a fully masked slice (otherwise
	// the maximum contributes e^0 = 1): scaling by 0, or subtracting +Inf
	// from x − 0 = −Inf, gives its zeros or −Infs without a branch per
	// element. A NaN sum makes the slice NaN.
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
	if inner == 1 {
		xs, out := x[off:off+n], dst[off:off+n]
		if log {
			m, lse := m[0], s[0]
			for j, v := range xs {
				out[j] = T((float64(v) - m) - lse)
			}
		} else {
			inv := s[0]
			for j, e := range out {
				out[j] = T(float64(e) * inv)
			}
		}
		return
	}
	for j := range n {
		xo := off + j*inner
		out := dst[xo : xo+w]
		if log {
			for c, v := range x[xo : xo+w] {
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
		s := dot(ys, ds)
		for j, v := range ys {
			out[j] = T(float64(v) * (float64(ds[j]) - s))
		}
		return
	}
	var sArr [tileWidth]float64
	s := sArr[:w]
	for j := range n {
		o := off + j*inner
		ds := dy[o : o+w]
		for c, v := range y[o : o+w] {
			s[c] += float64(v) * float64(ds[c])
		}
	}
	for j := range n {
		o := off + j*inner
		ds, out := dy[o:o+w], dst[o:o+w]
		for c, v := range y[o : o+w] {
			out[c] = T(float64(v) * (float64(ds[c]) - s[c]))
		}
	}
	zeroMaskedColumns(dst, y, 0, off, w, n, inner)
}

// logSoftmaxGradRun computes dx = dy − exp(y)·Σ dy for w adjacent slices of
// n elements, stride inner, starting at off.
func logSoftmaxGradRun[T Float](dst, y, dy []T, off, w, n, inner int) {
	sgl := single[T]()
	var sArr, zArr [tileWidth]float64
	if inner == 1 {
		ys, ds, out := y[off:off+n], dy[off:off+n], dst[off:off+n]
		if allEqual(ys, T(math.Inf(-1))) {
			clear(out) // fully masked
			return
		}
		total := sum(ds)
		for j0 := 0; j0 < n; j0 += tileWidth {
			z := zArr[:min(tileWidth, n-j0)]
			for i, v := range ys[j0 : j0+len(z)] {
				z[i] = float64(v)
			}
			expInPlace(z, sgl)
			for i, e := range z {
				out[j0+i] = T(float64(ds[j0+i]) - e*total)
			}
		}
		return
	}
	s, z := sArr[:w], zArr[:w]
	for j := range n {
		o := off + j*inner
		for c, v := range dy[o : o+w] {
			s[c] += float64(v)
		}
	}
	for j := range n {
		o := off + j*inner
		for c, v := range y[o : o+w] {
			z[c] = float64(v)
		}
		expInPlace(z, sgl)
		ds, out := dy[o:o+w], dst[o:o+w]
		for c, e := range z {
			out[c] = T(float64(ds[c]) - e*s[c])
		}
	}
	zeroMaskedColumns(dst, y, T(math.Inf(-1)), off, w, n, inner)
}

// zeroMaskedColumns sets dx to +0 in each of the w slices (of n elements,
// stride inner, from off) whose y is masked everywhere, that is, all equal
// to masked: the backward pass of a fully masked slice.
func zeroMaskedColumns[T Float](dst, y []T, masked T, off, w, n, inner int) {
	for c := range w {
		all := true
		for j := 0; j < n && all; j++ {
			all = y[off+c+j*inner] == masked
		}
		if all {
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

// maxOf returns the largest non-NaN element of x, or −Inf if there is none.
func maxOf[T Float](x []T) T {
	m := T(math.Inf(-1))
	for _, v := range x {
		if v > m {
			m = v
		}
	}
	return m
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

// expInPlace sets z[i] = e^z[i]: with expSingle when sgl (float32 results),
// otherwise with math.Exp.
func expInPlace(z []float64, sgl bool) {
	if sgl {
		expSingle(z)
		return
	}
	for i, v := range z {
		z[i] = math.Exp(v)
	}
}

// Constants of expSingle.
const (
	// expShift is 1.5·2^52. Adding it to |t| < 2^51 rounds t to the nearest
	// integer k (ties to even) and leaves k in the low bits of the sum, so
	// neither a rounding instruction nor a float-to-int conversion is needed.
	expShift = 0x1.8p52
	// The exponents outside which e^z is 0 or +Inf in float32: e^−104 is
	// below half the smallest float32 subnormal (2^−150) and e^89 above
	// MaxFloat32 (≈ e^88.72).
	expSingleMin = -104
	expSingleMax = 89
)

// expSingle sets z[i] = e^z[i] to float32 accuracy: the relative error is
// below 1e-8 (measured: 7.0e-9 over every float32 z in [−104, 89]), a
// sixth of float32's half-ULP, so float32(e^z) is the correctly rounded
// float32 value or its neighbour. It is twice as fast as math.Exp because
// it needs less accuracy.
//
// Method (Cephes' expf, in float64): z = k·ln2 + r with k = round(z/ln2)
// and |r| ≤ ln2/2; e^r is its degree-7 Taylor polynomial (truncation error
// |r|^8/8! ≤ 5.2e-9), and 2^k is built in the exponent bits. The reduction
// uses ln2 rounded to float64, whose error, |k|·2^−54 < 1e-14, is
// negligible here.
//
// Special cases: z < −104 gives 0 (and −Inf gives 0), z > 89 gives +Inf,
// NaN gives NaN.
func expSingle(z []float64) {
	for i, v := range z {
		t := v*math.Log2E + expShift
		k := t - expShift
		r := v - k*math.Ln2
		p := 1.0 / 5040
		p = p*r + 1.0/720
		p = p*r + 1.0/120
		p = p*r + 1.0/24
		p = p*r + 1.0/6
		p = p*r + 0.5
		p = (p*r)*r + r + 1
		// 2^k: the low bits of t hold k; k + 1023 is the biased exponent
		// (1 ≤ k+1023 ≤ 2046 for z in [−104, 89]).
		e := p * math.Float64frombits((math.Float64bits(t)+1023)<<52)
		if v < expSingleMin {
			e = 0
		}
		if v > expSingleMax {
			e = math.Inf(1)
		}
		z[i] = e
	}
}
