// Package kernel holds the numerical kernels of package quantize: plain
// generic functions over []float32 and []float64 slices, with no Gorgonia
// types. They follow the conventions of actq's ops/kernel:
//
//   - the slice that is written is called dst and comes first;
//   - a kernel never allocates and never keeps a reference to its arguments;
//   - dst may alias x (in-place use), but not dy;
//   - slices of different lengths are reported with an error wrapping
//     ErrLength, never with a panic, and nothing is written.
//
// Every kernel is safe to call from many goroutines on disjoint dst slices.
//
// Integer fake quantization follows PyTorch's CPU kernel to the bit in
// float32 (numerics notes §3.1): the input is multiplied by the reciprocal
// of the scale, rounded half to even and clamped; products are written with
// explicit conversions so that no compiler may fuse them into an FMA, which
// would move ties. Float formats (FP16, BF16, FP8 E4M3FN, FP8 E5M2) are
// emulated by correctly rounded round-to-nearest-even casts with
// subnormals.
package kernel

import (
	"fmt"
	"unsafe"

	okernel "github.com/actq/actq/ops/kernel"
)

// Float is the set of element types the kernels accept (the same set as
// ops/kernel's).
type Float = okernel.Float

// ErrLength reports slices whose lengths do not match. It is the same
// sentinel as ops/kernel.ErrLength.
var ErrLength = okernel.ErrLength

// checkLengths returns an error naming the kernel and the lengths when any
// of the slices differs in length from dst.
func checkLengths(kernel string, n int, others ...int) error {
	for _, m := range others {
		if m != n {
			return fmt.Errorf("%s: len(dst)=%d, input has length %d: %w", kernel, n, m, ErrLength)
		}
	}
	return nil
}

// is32 reports whether T is a 32-bit float.
func is32[T Float]() bool {
	var z T
	return unsafe.Sizeof(z) == 4
}

// roundMagic returns 1.5·2^(p−1) for T's p-bit significand: for |t| below
// 2^(p−2), (t + m) − m is t rounded to an integer, half to even, in the
// default rounding mode, with no conversion to an integer type.
func roundMagic[T Float]() T {
	if is32[T]() {
		return 12582912 // 1.5·2^23
	}
	return 6755399441055744 // 1.5·2^52
}
