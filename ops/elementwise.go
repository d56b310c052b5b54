package ops

import (
	"fmt"

	"github.com/actq/actq/internal/opkit"

	"github.com/actq/actq/internal/parallel"
	"github.com/actq/actq/ops/kernel"
	"gorgonia.org/gorgonia"
)

// elementwiseKernels computes an elementwise op of up to two inputs (x, and
// dy for a gradient; in[1] is nil for a unary op) in each dtype. Passing the
// op itself, not function values, keeps elementwise free of allocations
// beyond its result.
type elementwiseKernels interface {
	kernel32(dst []float32, in [2][]float32) error
	kernel64(dst []float64, in [2][]float64) error
	// grain is the fewest elements worth handing to another goroutine
	// (float32 data when f32 is true, else float64): smaller inputs run on
	// the caller, larger ones are split into chunks of at least this many
	// elements, up to GOMAXPROCS of them.
	grain(f32 bool) int
}

// elementwise applies ks to the data of inputs (one or two values of one
// float dtype and size) and returns the result in out, or in a new value
// with the type and shape of inputs[0] when out is nil. out, if given, must
// match inputs[0] in Go type, dtype and shape; it may be one of the inputs,
// since the kernels allow dst to alias them. Large inputs are split into
// chunks run in parallel.
func elementwise(out gorgonia.Value, inputs []gorgonia.Value, ks elementwiseKernels) (gorgonia.Value, error) {
	if len(inputs) == 0 || len(inputs) > 2 {
		return nil, fmt.Errorf("got %d inputs, want 1 or 2: %w", len(inputs), ErrValue)
	}
	var in [2]any
	for i, v := range inputs {
		d, err := opkit.FloatData(v)
		if err != nil {
			return nil, fmt.Errorf("input %d: %w", i, err)
		}
		in[i] = d
	}
	var od any
	var err error
	if out == nil {
		out, od, err = opkit.NewLike(inputs[0])
	} else {
		od, err = opkit.PreallocData(out, inputs[0])
	}
	if err != nil {
		return nil, err
	}
	switch dst := od.(type) {
	case []float32:
		err = runChunks(dst, in, len(inputs), ks.grain(true), ks.kernel32)
	case []float64:
		err = runChunks(dst, in, len(inputs), ks.grain(false), ks.kernel64)
	}
	if err != nil {
		return nil, err
	}
	opkit.StoreScalar(out, od)
	return out, nil
}

func runChunks[T kernel.Float](dst []T, in [2]any, n, grain int, k func([]T, [2][]T) error) error {
	var srcs [2][]T
	for i := range n {
		s, ok := in[i].([]T)
		if !ok || len(s) != len(dst) {
			return fmt.Errorf("input %d is %d-element %T, want %d-element %T: %w", i, opkit.LenOf(in[i]), in[i], len(dst), dst, ErrValue)
		}
		srcs[i] = s
	}
	if len(dst) < 2*grain {
		return k(dst, srcs)
	}
	return parallel.For(len(dst), grain, func(lo, hi int) error {
		var sub [2][]T
		for i := range n {
			sub[i] = srcs[i][lo:hi]
		}
		return k(dst[lo:hi], sub)
	})
}
