// Package qkernel holds the numerical kernels of package quantize: plain
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
// float32: the input is multiplied by the reciprocal of the scale, rounded
// half to even and clamped; products are written with explicit
// conversions so that no compiler may fuse them into an FMA, which would
// move ties. Float formats (FP16, BF16, FP8 E4M3FN, FP8 E5M2) are
// emulated by correctly rounded round-to-nearest-even casts with
// subnormals.
//
// The integer kernels (per tensor, per group, dynamic symmetric groups),
// AbsMax and AccumulateFP16 (on four float64 lanes) have AVX2 vector
// paths, chosen at run time on a CPU that has AVX2 and computing the same
// bits as the scalar loops: in the default build, assembly
// (vec_avx2_amd64.s, generated with avo by the repository's
// internal/asmgen, a module of its own: go generate); with
// GOEXPERIMENT=simd, simd/archsimd code (vec_amd64.go). With -tags purego,
// or off amd64, only the scalar loops run.
package qkernel

import (
	"errors"
	"fmt"
	"unsafe"

	okernel "github.com/actq/actq/ops/kernel"
)

// Vectorized reports whether the integer kernels and AbsMax run vector
// code on this CPU in this build (AVX2: assembly in the default build on
// amd64, simd/archsimd with GOEXPERIMENT=simd). Package quantize uses it to
// size the work it hands to each goroutine: the vector kernels run at
// memory speed, where splitting a tensor pays only when it is large.
func Vectorized() bool { return haveAVX2 }

// Float is the set of element types the kernels accept (the same set as
// ops/kernel's).
type Float = okernel.Float

// ErrLength reports slices whose lengths do not match. It is the same
// sentinel as ops/kernel.ErrLength.
var ErrLength = okernel.ErrLength

// ErrParam reports a parameter a kernel cannot use: a grid (Int) whose
// scale is not positive and finite with a finite reciprocal or whose zero
// point lies outside its codes, an unknown FloatFormat, a scale that is not
// positive and finite, or a bad code range or minimum scale.
var ErrParam = errors.New("qkernel: bad parameter")

// arg is a slice argument of a kernel, for checkLengths: its name and
// length.
type arg struct {
	name string
	n    int
}

// checkLengths returns an error naming the kernel, the first of others
// whose length differs from ref's, and both lengths.
func checkLengths(kernel string, ref arg, others ...arg) error {
	for _, a := range others {
		if a.n != ref.n {
			return fmt.Errorf("%s: len(%s) = %d, want len(%s) = %d: %w", kernel, a.name, a.n, ref.name, ref.n, ErrLength)
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
