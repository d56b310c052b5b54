package ops

import (
	"fmt"
	"hash"

	"github.com/actq/actq/internal/opkit"
	"github.com/actq/actq/internal/parallel"
	"github.com/actq/actq/ops/kernel"
	"github.com/chewxy/hm"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Softmax returns a node computing the softmax of x along one axis (the
// last by default; a negative axis counts from the end), as PyTorch's
// F.softmax(x, dim=axis):
//
//	Softmax(x)_j = e^(x_j − m) / Σ_k e^(x_k − m),  m = max_k x_k
//
// over each slice of x along the axis. Subtracting the slice's own maximum
// keeps every exponent ≤ 0, so finite input never overflows. The backward
// pass is fused and needs only the output y:
//
//	dx_j = y_j·(dy_j − Σ_k y_k·dy_k)
//
// x must be a tensor of rank ≥ 1, Float32 or Float64. The node
// differentiates on the tape machine (gorgonia.Grad) and the Lisp machine.
//
// Accuracy: every sum is in float64 whatever the dtype. Float32 results
// are within 2^−22 relative (2–4 ULPs; measured 2.8·2^−24) of the exact
// softmax of the input on the vector code (AVX2 or AVX-512), which works
// in float32 lanes with x − max and the float64 scalars carried as two
// floats, and within 2^−23 on the portable code, which works in float64
// (see kernel.Softmax); float64 results within a few ULPs. Against PyTorch
// the results agree within the contract's tolerance (float32 1e-6 +
// 2e-5·|ref|, float64 1e-12 + 1e-10·|ref|), forward and backward, using at
// most 0.18 of it.
//
// Special cases, per slice along the axis (other slices are not affected):
//
//	x_j = −Inf, some x_k finite  →  y_j = 0 exactly, dx_j = 0 (an additive mask)
//	every x_j = −Inf             →  every y_j = 0, dx = 0 (PyTorch gives NaN)
//	some x_j = NaN               →  every y_j = NaN
//	some x_j = +Inf              →  every y_j = NaN (as PyTorch and JAX)
//
// (dx_j = 0 at masked entries holds for finite dy; a fully masked slice
// gets dx = 0 whatever dy is, since its output does not depend on x.)
//
// Unlike gorgonia.SoftMax, each slice takes its own maximum (Gorgonia's
// last-axis kernel starts every row's maximum from the tensor's first
// element and returns NaN for [[0, 0], [1000, 0]]), Softmax and LogSoftmax
// of one input are distinct nodes, and gorgonia.Log of a Softmax node
// leaves the Softmax node unchanged.
//
// Large inputs are split over independent slices and run on up to
// GOMAXPROCS goroutines. No scratch memory is allocated: only the output
// (and about 1 KB of headers per call, most of it Gorgonia's), and on the
// tape machine not even that when nothing else reads x (y is written over
// it) or, in the backward pass, dy (dx is written over it). Built with
// GOEXPERIMENT=simd and run on an AVX-512 CPU, float32 uses vector kernels,
// 2.5–5 times as fast as the scalar ones.
//
// It returns an error wrapping ErrNilNode for a nil x, ErrDtype for a dtype
// other than Float32 and Float64, ErrShape for a scalar (rank 0) x, and
// ErrAxis for an axis outside [−rank, rank) or more than one axis.
func Softmax(x *gorgonia.Node, axis ...int) (*gorgonia.Node, error) {
	return applySoftmax(false, x, axis)
}

// LogSoftmax returns a node computing the log of the softmax of x along one
// axis (the last by default; a negative axis counts from the end), as
// PyTorch's F.log_softmax(x, dim=axis):
//
//	LogSoftmax(x)_j = (x_j − m) − log Σ_k e^(x_k − m),  m = max_k x_k
//
// evaluated in that order (adding m to the log first would lose
// precision), so it is accurate where log(Softmax(x)) underflows to −Inf.
// The backward pass is fused and needs only the output y:
//
//	dx_j = dy_j − e^(y_j)·Σ_k dy_k
//
// Types, accuracy and errors are as for Softmax. Special cases, per slice
// along the axis:
//
//	x_j = −Inf, some x_k finite  →  y_j = −Inf, dx_j = dy_j
//	every x_j = −Inf             →  every y_j = −Inf, dx = 0 (PyTorch gives NaN)
//	some x_j = NaN               →  every y_j = NaN
//	some x_j = +Inf              →  every y_j = NaN
//
// At a masked entry the derivative of log-softmax is that of the identity
// (∂y_j/∂x_j = 1 − e^(y_j) = 1), so dx_j = dy_j as in PyTorch; it is 0
// whenever the loss gives masked log-probabilities zero weight, as any
// finite loss must.
func LogSoftmax(x *gorgonia.Node, axis ...int) (*gorgonia.Node, error) {
	return applySoftmax(true, x, axis)
}

// applySoftmax is the body of Softmax and LogSoftmax.
func applySoftmax(log bool, x *gorgonia.Node, axes []int) (*gorgonia.Node, error) {
	fn := "ops.Softmax"
	if log {
		fn = "ops.LogSoftmax"
	}
	if err := opkit.CheckFloatNode(fn, "x", x); err != nil {
		return nil, err
	}
	rank := x.Shape().Dims()
	if rank == 0 {
		return nil, fmt.Errorf("%s: x is a scalar; softmax needs rank ≥ 1: %w", fn, ErrShape)
	}
	if len(axes) > 1 {
		return nil, fmt.Errorf("%s: got %d axes %v, want at most one: %w", fn, len(axes), axes, ErrAxis)
	}
	axis := -1
	if len(axes) == 1 {
		axis = axes[0]
	}
	if axis < -rank || axis >= rank {
		return nil, fmt.Errorf("%s: axis %d out of range for rank %d: %w", fn, axis, rank, ErrAxis)
	}
	if axis < 0 {
		axis += rank
	}
	n, err := gorgonia.ApplyOp(softmaxOp{axis: axis, log: log}, x)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	return n, nil
}

// softmaxOp is the forward op y = Softmax(x) or LogSoftmax(x) along axis
// (non-negative: Softmax and LogSoftmax resolve negative axes against the
// input's rank). It implements gorgonia.Op, gorgonia.SDOp (tape machine)
// and gorgonia.ADOp (Lisp machine).
type softmaxOp struct {
	axis int
	log  bool
}

func (op softmaxOp) Arity() int { return 1 }

// Type is a → a. It builds a new type on every call: Gorgonia recycles the
// types it is given.
func (op softmaxOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(a, a)
}

func (op softmaxOp) InferShape(ds ...gorgonia.DimSizer) (tensor.Shape, error) {
	s, err := opkit.SameShape(op, 1, ds)
	if err == nil && op.axis >= s.Dims() {
		err = fmt.Errorf("%v: axis %d out of range for shape %v: %w", op, op.axis, s, ErrAxis)
	}
	return s, err
}

func (op softmaxOp) Do(inputs ...gorgonia.Value) (gorgonia.Value, error) {
	return op.do(nil, inputs)
}

// UsePreallocDo writes y into prealloc. The tape machine calls it with x
// itself when nothing reads x afterwards (the backward pass needs only y),
// so the softmax runs in place.
func (op softmaxOp) UsePreallocDo(prealloc gorgonia.Value, inputs ...gorgonia.Value) (gorgonia.Value, error) {
	return op.do(prealloc, inputs)
}

func (op softmaxOp) do(out gorgonia.Value, inputs []gorgonia.Value) (gorgonia.Value, error) {
	if len(inputs) != 1 {
		return nil, fmt.Errorf("%v: got %d inputs, want 1: %w", op, len(inputs), ErrValue)
	}
	k32, k64 := kernel.Softmax[float32], kernel.Softmax[float64]
	if op.log {
		k32, k64 = kernel.LogSoftmax[float32], kernel.LogSoftmax[float64]
	}
	v, err := alongAxis(out, op.axis, inputs,
		func(dst []float32, in [2][]float32, a kernel.Axis) error { return k32(dst, in[0], a) },
		func(dst []float64, in [2][]float64, a kernel.Axis) error { return k64(dst, in[0], a) })
	if err != nil {
		return nil, fmt.Errorf("%v: %w", op, err)
	}
	return v, nil
}

// ReturnsPtr and OverwritesInput let the tape machine reuse x's memory for
// y when nothing reads x afterwards (see UsePreallocDo).
func (op softmaxOp) ReturnsPtr() bool     { return true }
func (op softmaxOp) CallsExtern() bool    { return false }
func (op softmaxOp) OverwritesInput() int { return 0 }

// WriteHash writes the op's name and every parameter: Gorgonia merges nodes
// with equal hashes and inputs, and Softmax and LogSoftmax of one input (or
// softmaxes along different axes) must stay apart.
func (op softmaxOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "actq.Softmax{axis=%d,log=%t}", op.axis, op.log)
}
func (op softmaxOp) Hashcode() uint32 { return opkit.Hash(op) }

func (op softmaxOp) String() string {
	if op.log {
		return fmt.Sprintf("LogSoftmax{axis=%d}", op.axis)
	}
	return fmt.Sprintf("Softmax{axis=%d}", op.axis)
}

func (op softmaxOp) DiffWRT(inputs int) []bool { return []bool{true} }

// SymDiff returns dx as a softmaxGradOp node on (y, dy): the backward pass
// needs the output only, not x.
func (op softmaxOp) SymDiff(inputs gorgonia.Nodes, output, grad *gorgonia.Node) (gorgonia.Nodes, error) {
	if len(inputs) != 1 {
		return nil, fmt.Errorf("%v.SymDiff: got %d inputs, want 1: %w", op, len(inputs), ErrValue)
	}
	dx, err := gorgonia.ApplyOp(softmaxGradOp(op), output, grad)
	if err != nil {
		return nil, fmt.Errorf("%v.SymDiff: %w", op, err)
	}
	return gorgonia.Nodes{dx}, nil
}

// DoDiff adds dx, computed from the output y and its gradient dy, into x's
// gradient.
func (op softmaxOp) DoDiff(ctx gorgonia.ExecutionContext, inputs gorgonia.Nodes, output *gorgonia.Node) error {
	if len(inputs) != 1 {
		return fmt.Errorf("%v.DoDiff: got %d inputs, want 1: %w", op, len(inputs), ErrValue)
	}
	return opkit.DoDiffInto(softmaxGradOp(op), inputs[0], output.Value(), output)
}

// softmaxGradOp is the fused backward op (y, dy) → dx of softmaxOp with the
// same parameters: y⊙(dy − Σ y⊙dy), or dy − e^y·Σ dy for log-softmax.
type softmaxGradOp struct {
	axis int
	log  bool
}

func (op softmaxGradOp) Arity() int { return 2 }

func (op softmaxGradOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(a, a, a)
}

func (op softmaxGradOp) InferShape(ds ...gorgonia.DimSizer) (tensor.Shape, error) {
	return opkit.SameShape(op, 2, ds)
}

func (op softmaxGradOp) Do(inputs ...gorgonia.Value) (gorgonia.Value, error) {
	return op.do(nil, inputs)
}

// UsePreallocDo writes dx into prealloc. The tape machine calls it with dy
// itself when nothing reads dy afterwards (the usual case in a backward
// pass), so no new gradient tensor is allocated.
func (op softmaxGradOp) UsePreallocDo(prealloc gorgonia.Value, inputs ...gorgonia.Value) (gorgonia.Value, error) {
	return op.do(prealloc, inputs)
}

func (op softmaxGradOp) do(out gorgonia.Value, inputs []gorgonia.Value) (gorgonia.Value, error) {
	if len(inputs) != 2 {
		return nil, fmt.Errorf("%v: got %d inputs, want 2: %w", op, len(inputs), ErrValue)
	}
	k32, k64 := kernel.SoftmaxGrad[float32], kernel.SoftmaxGrad[float64]
	if op.log {
		k32, k64 = kernel.LogSoftmaxGrad[float32], kernel.LogSoftmaxGrad[float64]
	}
	v, err := alongAxis(out, op.axis, inputs,
		func(dst []float32, in [2][]float32, a kernel.Axis) error { return k32(dst, in[0], in[1], a) },
		func(dst []float64, in [2][]float64, a kernel.Axis) error { return k64(dst, in[0], in[1], a) })
	if err != nil {
		return nil, fmt.Errorf("%v: %w", op, err)
	}
	return v, nil
}

// ReturnsPtr and OverwritesInput let the tape machine write dx over dy.
func (op softmaxGradOp) ReturnsPtr() bool     { return true }
func (op softmaxGradOp) CallsExtern() bool    { return false }
func (op softmaxGradOp) OverwritesInput() int { return 1 }
func (op softmaxGradOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "actq.SoftmaxGrad{axis=%d,log=%t}", op.axis, op.log)
}
func (op softmaxGradOp) Hashcode() uint32 { return opkit.Hash(op) }
func (op softmaxGradOp) String() string   { return softmaxOp(op).String() + "Grad" }

// axisKernel is a softmax kernel over the slices along one axis: dst and
// one or two inputs, all of the same length.
type axisKernel[T kernel.Float] func(dst []T, in [2][]T, a kernel.Axis) error

// alongAxis applies the kernel for the inputs' dtype to their data along
// axis and returns the result in out, or in a new tensor with the shape of
// inputs[0] when out is nil. The inputs must be tensors of one shape and
// dtype; out, if given, must match them, and may be one of them (the
// kernels allow dst to be an input). Inputs of more than two grains are
// split over slices run in parallel, with the grain of an exp-based kernel
// (grainFor) for all four kernels: the softmax gradient has no exp, but
// its float64 dot product makes it compute-bound too, and splitting it as
// the forward pass is split made softmax forward+backward faster at 2
// threads than the memory-bound grain, which did not split it, and no
// slower at 1 (bench/RESULTS.md).
func alongAxis(out gorgonia.Value, axis int, inputs []gorgonia.Value, k32 axisKernel[float32], k64 axisKernel[float64]) (gorgonia.Value, error) {
	if len(inputs) == 0 || len(inputs) > 2 {
		return nil, fmt.Errorf("got %d inputs, want 1 or 2: %w", len(inputs), ErrValue)
	}
	for i, v := range inputs {
		if err := opkit.Usable(v); err != nil {
			return nil, fmt.Errorf("input %d: %w", i, err)
		}
	}
	first, ok := inputs[0].(*tensor.Dense)
	if !ok {
		return nil, fmt.Errorf("input 0 is %T, want a *tensor.Dense of rank ≥ 1: %w", inputs[0], ErrShape)
	}
	shape := first.Shape()
	if axis < 0 || axis >= shape.Dims() {
		return nil, fmt.Errorf("axis %d out of range for shape %v: %w", axis, shape, ErrAxis)
	}
	var in [2]any
	for i, v := range inputs {
		t, ok := v.(*tensor.Dense)
		if !ok || !t.Shape().Eq(shape) || t.Dtype() != first.Dtype() {
			return nil, fmt.Errorf("input %d is %v, want a %v tensor of shape %v: %w", i, describe(v), first.Dtype(), shape, ErrValue)
		}
		d, err := opkit.FloatData(t)
		if err != nil {
			return nil, fmt.Errorf("input %d: %w", i, err)
		}
		in[i] = d
	}
	var od any
	var err error
	if out == nil {
		out, od, err = opkit.NewLike(first)
	} else {
		od, err = opkit.PreallocData(out, first)
	}
	if err != nil {
		return nil, err
	}
	inner := 1
	for _, d := range shape[axis+1:] {
		inner *= d
	}
	a := kernel.Along(shape.TotalSize(), shape[axis], inner)
	switch dst := od.(type) {
	case []float32:
		err = runSlices(dst, in, len(inputs), a, grainFor(false, true), k32)
	case []float64:
		err = runSlices(dst, in, len(inputs), a, grainFor(false, false), k64)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// runSlices runs k over all of a's slices: on the caller for fewer than two
// grains of elements, otherwise split into ranges of whole slices holding
// at least a grain each, on up to GOMAXPROCS goroutines.
func runSlices[T kernel.Float](dst []T, in [2]any, n int, a kernel.Axis, grain int, k axisKernel[T]) error {
	var srcs [2][]T
	for i := range n {
		s, ok := in[i].([]T)
		if !ok || len(s) != len(dst) {
			return fmt.Errorf("input %d is %d-element %T, want %d-element %T: %w", i, opkit.LenOf(in[i]), in[i], len(dst), dst, ErrValue)
		}
		srcs[i] = s
	}
	if len(dst) < 2*grain {
		return k(dst, srcs, a)
	}
	perSlice := max(a.N, 1)
	return parallel.For(a.Hi, (grain+perSlice-1)/perSlice, func(lo, hi int) error {
		part := a
		part.Lo, part.Hi = lo, hi
		return k(dst, srcs, part)
	})
}

// describe names a value's type, dtype and shape for error messages.
func describe(v gorgonia.Value) string {
	if t, ok := v.(tensor.Tensor); ok {
		return fmt.Sprintf("%T of %v %v", v, t.Dtype(), t.Shape())
	}
	return fmt.Sprintf("%T", v)
}
