package ops

import (
	"fmt"

	"github.com/actq/actq/internal/parallel"
	"github.com/actq/actq/ops/kernel"
	"gorgonia.org/gorgonia"
)

// minParallelChunk is the fewest elements worth handing to another
// goroutine in an elementwise op: starting one costs about a microsecond,
// which is under 1% of the time an exp-based kernel spends on this many
// elements.
const minParallelChunk = 1 << 14

// sliceKernel is an elementwise kernel over equal-length slices: dst and one
// input per op argument.
type sliceKernel[T kernel.Float] func(dst []T, in [][]T) error

// elementwise applies the kernel for the inputs' dtype to their data and
// returns a new value with the type and shape of inputs[0]. All inputs must
// have the same dtype and number of elements. Large inputs are split into
// chunks run in parallel.
func elementwise(inputs []gorgonia.Value, k32 sliceKernel[float32], k64 sliceKernel[float64]) (gorgonia.Value, error) {
	if len(inputs) == 0 {
		return nil, fmt.Errorf("no inputs: %w", ErrValue)
	}
	in := make([]any, len(inputs))
	for i, v := range inputs {
		d, err := floatData(v)
		if err != nil {
			return nil, fmt.Errorf("input %d: %w", i, err)
		}
		in[i] = d
	}
	out, od, err := newLike(inputs[0])
	if err != nil {
		return nil, err
	}
	switch dst := od.(type) {
	case []float32:
		err = runChunks(dst, in, k32)
	case []float64:
		err = runChunks(dst, in, k64)
	}
	if err != nil {
		return nil, err
	}
	storeScalar(out, od)
	return out, nil
}

func runChunks[T kernel.Float](dst []T, in []any, k sliceKernel[T]) error {
	srcs := make([][]T, len(in))
	for i, d := range in {
		s, ok := d.([]T)
		if !ok || len(s) != len(dst) {
			return fmt.Errorf("input %d is %d-element %T, want %d-element %T: %w", i, lenOf(d), d, len(dst), dst, ErrValue)
		}
		srcs[i] = s
	}
	if len(dst) < 2*minParallelChunk {
		return k(dst, srcs)
	}
	return parallel.For(len(dst), minParallelChunk, func(lo, hi int) error {
		sub := make([][]T, len(srcs))
		for i, s := range srcs {
			sub[i] = s[lo:hi]
		}
		return k(dst[lo:hi], sub)
	})
}

func lenOf(data any) int {
	switch d := data.(type) {
	case []float32:
		return len(d)
	case []float64:
		return len(d)
	}
	return 0
}
