// Package kernel holds actq's numerical kernels: plain generic functions over
// []float32 and []float64 slices, with no Gorgonia types.
//
// Conventions (after gonum's floats package):
//   - the slice that is written is called dst and comes first;
//   - a kernel never allocates and never keeps a reference to its arguments;
//   - dst may alias x (in-place use), but not dy;
//   - slices of different lengths are reported with an error wrapping
//     ErrLength, never with a panic, and nothing is written.
//
// Every kernel is safe to call from many goroutines on disjoint dst slices.
// Float64 kernels use the math package. Float32 GELU, GELUTanh and SiLU use
// branch-free polynomial approximations of exp and erfc (fast32.go): in
// portable Go, evaluated in float64 and within one float32 ULP; in float32
// vectors, within a few ULPs, on a CPU with AVX2 and FMA: 8 lanes of
// assembly in the default build on amd64 (the purego build tag turns it
// off), or with GOEXPERIMENT=simd, simd/archsimd code on 16 lanes (AVX-512)
// or 8 (AVX2), which gives the same bits as the assembly. VectorISA says
// which path runs. ReLU is exact on all of them. The
// accuracy of each kernel, measured over every float32 input in its range,
// is stated in its doc comment.
package kernel

import (
	"errors"
	"fmt"
)

// Float is the set of element types the kernels accept.
type Float interface {
	~float32 | ~float64
}

// ErrLength reports slices whose lengths do not match.
var ErrLength = errors.New("kernel: slice lengths differ")

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
