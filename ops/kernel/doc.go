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
// Float32 kernels evaluate in float64 and round once, so their results are
// within one float32 ULP of the true value (most are correctly rounded);
// the accuracy of each kernel is stated in its doc comment.
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
