package ops

import (
	"fmt"
	"hash"

	"github.com/actq/actq/internal/opkit"

	"github.com/actq/actq/ops/kernel"
	"github.com/chewxy/hm"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// activation names one elementwise activation function. The forward and
// backward kernels of each live in ops/kernel; the public constructor and
// its documentation in this package's file named after it.
type activation uint8

const (
	actGELU activation = iota + 1
	actGELUTanh
	actSiLU
	actReLU
)

func (a activation) String() string {
	switch a {
	case actGELU:
		return "GELU"
	case actGELUTanh:
		return "GELUTanh"
	case actSiLU:
		return "SiLU"
	case actReLU:
		return "ReLU"
	}
	return fmt.Sprintf("activation(%d)", uint8(a))
}

func forward[T kernel.Float](a activation, dst []T, in [2][]T) error {
	switch a {
	case actGELU:
		return kernel.GELU(dst, in[0])
	case actGELUTanh:
		return kernel.GELUTanh(dst, in[0])
	case actSiLU:
		return kernel.SiLU(dst, in[0])
	case actReLU:
		return kernel.ReLU(dst, in[0])
	}
	return fmt.Errorf("unknown %v: %w", a, ErrValue)
}

func backward[T kernel.Float](a activation, dst []T, in [2][]T) error {
	switch a {
	case actGELU:
		return kernel.GELUGrad(dst, in[0], in[1])
	case actGELUTanh:
		return kernel.GELUTanhGrad(dst, in[0], in[1])
	case actSiLU:
		return kernel.SiLUGrad(dst, in[0], in[1])
	case actReLU:
		return kernel.ReLUGrad(dst, in[0], in[1])
	}
	return fmt.Errorf("unknown %v: %w", a, ErrValue)
}

// grain is the fewest elements of a the elementwise ops hand to another
// goroutine (see elementwiseKernels), for float32 data when f32 is true.
// Starting and joining a goroutine costs far more than a short kernel
// call, and more again when the other core is busy, so each grain is about
// 100 µs of work on one core: many more elements for the vector float32
// kernels than for the portable and float64 ones, and more for a
// memory-bound kernel (ReLU) than for an exp-based one. The crossovers come
// from BenchmarkSplit (ops/bench_test.go; bench/RESULTS.md, "Parallel
// split"). Ops on smaller tensors (most per-token activations in a small
// model) stay on the caller.
func (a activation) grain(f32 bool) int {
	return grainFor(a == actReLU, f32)
}

// grainFor returns the grain of a memory-bound (copy-like) or an
// exp-based elementwise kernel.
func grainFor(memoryBound, f32 bool) int {
	fast := f32 && kernel.VectorISA() != ""
	switch {
	case memoryBound && fast:
		return 1 << 20
	case memoryBound:
		return 1 << 17
	case fast:
		return 1 << 18
	}
	return 1 << 14
}

// applyActivation is the body of GELU, GELUTanh, SiLU and ReLU.
func applyActivation(a activation, x *gorgonia.Node) (*gorgonia.Node, error) {
	fn := "ops." + a.String()
	if err := opkit.CheckFloatNode(fn, "x", x); err != nil {
		return nil, err
	}
	n, err := gorgonia.ApplyOp(activationOp{a}, x)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	return n, nil
}

// activationOp is the forward op y = f(x) of an elementwise activation.
// It implements gorgonia.Op, gorgonia.SDOp (tape machine) and
// gorgonia.ADOp (Lisp machine).
type activationOp struct{ act activation }

func (op activationOp) Arity() int { return 1 }

// Type is a → a, which covers scalars and tensors of any rank. It builds a
// new type on every call: Gorgonia recycles the types it is given.
func (op activationOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(a, a)
}

func (op activationOp) InferShape(ds ...gorgonia.DimSizer) (tensor.Shape, error) {
	return opkit.SameShape(op, 1, ds)
}

func (op activationOp) Do(inputs ...gorgonia.Value) (gorgonia.Value, error) {
	return op.do(nil, inputs)
}

// UsePreallocDo writes f(x) into prealloc. The tape machine calls it when
// x's memory is free after this node (as in an inference graph), passing x
// itself, so the activation runs in place.
func (op activationOp) UsePreallocDo(prealloc gorgonia.Value, inputs ...gorgonia.Value) (gorgonia.Value, error) {
	return op.do(prealloc, inputs)
}

func (op activationOp) do(out gorgonia.Value, inputs []gorgonia.Value) (gorgonia.Value, error) {
	if len(inputs) != 1 {
		return nil, fmt.Errorf("%v: got %d inputs, want 1: %w", op, len(inputs), ErrValue)
	}
	v, err := elementwise(out, inputs, op)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", op, err)
	}
	return v, nil
}

func (op activationOp) kernel32(dst []float32, in [2][]float32) error {
	return forward(op.act, dst, in)
}
func (op activationOp) kernel64(dst []float64, in [2][]float64) error {
	return forward(op.act, dst, in)
}
func (op activationOp) grain(f32 bool) int { return op.act.grain(f32) }

// ReturnsPtr and OverwritesInput let the tape machine reuse x's memory for
// the result when nothing reads x afterwards (see UsePreallocDo).
func (op activationOp) ReturnsPtr() bool      { return true }
func (op activationOp) CallsExtern() bool     { return false }
func (op activationOp) OverwritesInput() int  { return 0 }
func (op activationOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "actq.%v", op.act) }
func (op activationOp) Hashcode() uint32      { return opkit.Hash(op) }
func (op activationOp) String() string        { return op.act.String() }

func (op activationOp) DiffWRT(inputs int) []bool { return []bool{true} }

// SymDiff returns dx = dy ⊙ f′(x) as an activationGradOp node.
func (op activationOp) SymDiff(inputs gorgonia.Nodes, output, grad *gorgonia.Node) (gorgonia.Nodes, error) {
	if len(inputs) != 1 {
		return nil, fmt.Errorf("%v.SymDiff: got %d inputs, want 1: %w", op, len(inputs), ErrValue)
	}
	dx, err := gorgonia.ApplyOp(activationGradOp(op), inputs[0], grad)
	if err != nil {
		return nil, fmt.Errorf("%v.SymDiff: %w", op, err)
	}
	return gorgonia.Nodes{dx}, nil
}

// DoDiff adds dy ⊙ f′(x) into x's gradient.
func (op activationOp) DoDiff(ctx gorgonia.ExecutionContext, inputs gorgonia.Nodes, output *gorgonia.Node) error {
	if len(inputs) != 1 {
		return fmt.Errorf("%v.DoDiff: got %d inputs, want 1: %w", op, len(inputs), ErrValue)
	}
	return opkit.DoDiffInto(activationGradOp(op), inputs[0], inputs[0].Value(), output)
}

// activationGradOp is the backward op (x, dy) → dy ⊙ f′(x).
type activationGradOp struct{ act activation }

func (op activationGradOp) Arity() int { return 2 }

func (op activationGradOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(a, a, a)
}

func (op activationGradOp) InferShape(ds ...gorgonia.DimSizer) (tensor.Shape, error) {
	return opkit.SameShape(op, 2, ds)
}

func (op activationGradOp) Do(inputs ...gorgonia.Value) (gorgonia.Value, error) {
	return op.do(nil, inputs)
}

// UsePreallocDo writes dx into prealloc. The tape machine calls it with dy
// itself when nothing reads dy afterwards (the usual case in a backward
// pass), so no new gradient tensor is allocated.
func (op activationGradOp) UsePreallocDo(prealloc gorgonia.Value, inputs ...gorgonia.Value) (gorgonia.Value, error) {
	return op.do(prealloc, inputs)
}

func (op activationGradOp) do(out gorgonia.Value, inputs []gorgonia.Value) (gorgonia.Value, error) {
	if len(inputs) != 2 {
		return nil, fmt.Errorf("%v: got %d inputs, want 2: %w", op, len(inputs), ErrValue)
	}
	v, err := elementwise(out, inputs, op)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", op, err)
	}
	return v, nil
}

func (op activationGradOp) kernel32(dst []float32, in [2][]float32) error {
	return backward(op.act, dst, in)
}
func (op activationGradOp) kernel64(dst []float64, in [2][]float64) error {
	return backward(op.act, dst, in)
}
func (op activationGradOp) grain(f32 bool) int { return op.act.grain(f32) }

// ReturnsPtr and OverwritesInput let the tape machine write dx over dy.
func (op activationGradOp) ReturnsPtr() bool      { return true }
func (op activationGradOp) CallsExtern() bool     { return false }
func (op activationGradOp) OverwritesInput() int  { return 1 }
func (op activationGradOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "actq.%vGrad", op.act) }
func (op activationGradOp) Hashcode() uint32      { return opkit.Hash(op) }
func (op activationGradOp) String() string        { return op.act.String() + "Grad" }
