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
// from the first input, and runs the kernel of that dtype on the result,
// a new zero tensor or, for an op that embeds Reuse, its kept one (see
// NewResult): the kernels must write every element of dst. It returns an
// error wrapping ErrValue for a wrong number of inputs or an unusable
// value, and ErrDtype for a dtype other than Float32 and Float64 or inputs
// of mixed dtypes.
func DoDense(op DenseOp, inputs []gorgonia.Value) (gorgonia.Value, error) {
	return doDense(op, nil, inputs)
}

// DoDenseInto is DoDense writing the result into out (a UsePreallocDo),
// which must be a contiguous tensor of the result's dtype and shape (else
// the error wraps ErrValue). out may be one of the inputs if the kernel
// allows dst to alias it.
func DoDenseInto(op DenseOp, out gorgonia.Value, inputs []gorgonia.Value) (gorgonia.Value, error) {
	if err := Usable(out); err != nil {
		return nil, fmt.Errorf("%v: preallocated value: %w", op, err)
	}
	return doDense(op, out, inputs)
}

func doDense(op DenseOp, out gorgonia.Value, inputs []gorgonia.Value) (gorgonia.Value, error) {
	shape, err := ResultShape(op, inputs)
	if err != nil {
		return nil, err
	}
	dt := inputs[0].Dtype()
	if dt != tensor.Float32 && dt != tensor.Float64 {
		return nil, fmt.Errorf("%v: dtype %v: %w", op, dt, ErrDtype)
	}
	if out == nil {
		out = NewResult(op, dt, shape)
	} else if d, ok := out.(*tensor.Dense); !ok || d.Dtype() != dt || !d.Shape().Eq(shape) || d.RequiresIterator() {
		return nil, fmt.Errorf("%v: preallocated %T %v %v cannot hold a %v result of shape %v: %w",
			op, out, out.Dtype(), out.Shape(), dt, shape, ErrValue)
	}
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

// ResultShape checks the inputs of op's Do and returns the shape of its
// result, op.InferShape of the inputs' shapes. It returns an error
// wrapping ErrValue for a number of inputs other than op.Arity() or an
// unusable input (see Usable), and InferShape's error for shapes op does
// not accept.
func ResultShape(op gorgonia.Op, inputs []gorgonia.Value) (tensor.Shape, error) {
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
	return op.InferShape(ds...)
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
