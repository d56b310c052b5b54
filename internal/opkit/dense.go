package opkit

import (
	"fmt"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// DenseOp is an op whose Do (DoDense) returns a new tensor computed from
// its inputs' data by plain kernels over slices, one per float dtype: dst
// is the result, of the shape InferShape gives for the inputs' shapes, and
// in holds the inputs' data, all of dst's dtype; vals are the inputs
// themselves, for a kernel that needs their shapes.
type DenseOp interface {
	gorgonia.Op
	Kernel32(dst []float32, in [][]float32, vals []gorgonia.Value) error
	Kernel64(dst []float64, in [][]float64, vals []gorgonia.Value) error
}

// DoDense is the Do of a DenseOp: it checks the number of inputs, takes the
// result's shape from op.InferShape on the inputs' shapes (so a run-time
// value of the wrong shape is an error wrapping ErrShape) and its dtype
// from the first input, and runs the kernel of that dtype. It returns an
// error wrapping ErrValue for a wrong number of inputs or an unusable
// value, and ErrDtype for a dtype other than Float32 and Float64 or inputs
// of mixed dtypes.
func DoDense(op DenseOp, inputs []gorgonia.Value) (gorgonia.Value, error) {
	if len(inputs) != op.Arity() {
		return nil, fmt.Errorf("%v: got %d inputs, want %d: %w", op, len(inputs), op.Arity(), ErrValue)
	}
	ds := make([]gorgonia.DimSizer, len(inputs))
	for i, v := range inputs {
		if err := Usable(v); err != nil {
			return nil, fmt.Errorf("%v: input %d: %w", op, i, err)
		}
		ds[i] = v.Shape()
	}
	shape, err := op.InferShape(ds...)
	if err != nil {
		return nil, err
	}
	dt := inputs[0].Dtype()
	if dt != tensor.Float32 && dt != tensor.Float64 {
		return nil, fmt.Errorf("%v: dtype %v: %w", op, dt, ErrDtype)
	}
	out := tensor.New(tensor.Of(dt), tensor.WithShape(shape...))
	data, err := FloatData(out)
	if err != nil {
		return nil, err
	}
	switch dst := data.(type) {
	case []float32:
		err = runDense(op, dst, inputs, op.Kernel32)
	case []float64:
		err = runDense(op, dst, inputs, op.Kernel64)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

func runDense[T float32 | float64](op fmt.Stringer, dst []T, inputs []gorgonia.Value,
	kernel func([]T, [][]T, []gorgonia.Value) error) error {
	in, err := Slices[T](op, inputs)
	if err != nil {
		return err
	}
	if err := kernel(dst, in, inputs); err != nil {
		return fmt.Errorf("%v: %w", op, err)
	}
	return nil
}

// Slices returns the data of every value as a []T (see FloatData: a view
// is materialised into a copy). It returns an error wrapping ErrDtype for
// a value of another dtype.
func Slices[T float32 | float64](op fmt.Stringer, vals []gorgonia.Value) ([][]T, error) {
	out := make([][]T, len(vals))
	for i, v := range vals {
		d, err := FloatData(v)
		if err != nil {
			return nil, fmt.Errorf("%v: input %d: %w", op, i, err)
		}
		s, ok := d.([]T)
		if !ok {
			return nil, fmt.Errorf("%v: input %d has dtype %v, want %T: %w", op, i, v.Dtype(), s, ErrDtype)
		}
		out[i] = s
	}
	return out, nil
}

// Allocates gives an op, by embedding, the register hints of one whose Do
// always returns a new value and never writes into its inputs: ReturnsPtr
// and CallsExtern false, OverwritesInput −1. The tape machine then always
// calls Do, never UsePreallocDo, which is the safe choice for an op whose
// result cannot alias an input.
type Allocates struct{}

func (Allocates) ReturnsPtr() bool     { return false }
func (Allocates) CallsExtern() bool    { return false }
func (Allocates) OverwritesInput() int { return -1 }
