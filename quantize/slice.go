package quantize

import (
	"fmt"
	"unsafe"

	"github.com/actq/actq/internal/opkit"
	"github.com/actq/actq/internal/qkernel"
	"gorgonia.org/tensor"
)

// FakeQuantSlice writes to dst the fake quantization of x under s, x being
// the row-major elements of an array of the given shape (nil or empty: a
// scalar), and adds the run's statistics to st if st is not nil. It runs
// the code a FakeQuant node of that shape and x's dtype runs, with the same
// parameters, so the results are the node's, bit for bit: it is FakeQuant
// for code that works on slices instead of graphs, such as an inference
// loop that quantizes one row at a time. Each call counts as one run in st.
//
// dst may be x itself when st is nil; with statistics, which compare x with
// the result, it must not overlap x. It returns an error wrapping ops.ErrShape
// if x or dst does not hold shape's number of elements or shape has a
// negative dimension or too many elements for an int, ops.ErrValue if dst
// is x and st is not nil, and FakeQuant's errors for a spec that does not fit
// the shape (ErrSpec, ops.ErrAxis, ops.ErrShape).
func FakeQuantSlice[T float32 | float64](dst, x []T, shape []int, s Spec, st *Stats) error {
	const fn = "quantize.FakeQuantSlice"
	p, err := newPlan(fn, s, tensor.Shape(shape), dtypeOf[T]())
	if err != nil {
		return err
	}
	if err := p.fits(len(x)); err != nil {
		return fmt.Errorf("%s: x: %w", fn, err)
	}
	if err := p.fits(len(dst)); err != nil {
		return fmt.Errorf("%s: dst: %w", fn, err)
	}
	if st != nil && sameStorage(dst, x) {
		return fmt.Errorf("%s: statistics compare x with the result, so dst cannot be x: %w", fn, opkit.ErrValue)
	}
	if err := newEngine(p, fixedParams[T](p), x).run(dst, x, st); err != nil {
		return fmt.Errorf("%s: %v: %w", fn, p, err)
	}
	return nil
}

// PassthroughSlice adds x to st as a Passthrough node with WithStats counts
// its input: one run of len(x) elements, the NaNs and ±Infs among them and
// the signal Σx² of the finite ones, nothing clipped or zeroed. A nil st
// records nothing.
func PassthroughSlice[T float32 | float64](x []T, st *Stats) {
	if st != nil {
		st.record(identityCounts(x))
	}
}

// dtypeOf returns the tensor dtype of T.
func dtypeOf[T qkernel.Float]() tensor.Dtype {
	var z T
	if unsafe.Sizeof(z) == 4 {
		return tensor.Float32
	}
	return tensor.Float64
}
