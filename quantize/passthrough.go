package quantize

import (
	"fmt"
	"hash"

	"github.com/actq/actq/internal/opkit"
	"github.com/chewxy/hm"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Passthrough returns a node equal to x that quantizes nothing: an identity
// that takes FakeQuant's options, for a place that is to be watched or
// calibrated without changing its values. Its value is a copy of x (so an
// op writing in place over it cannot change x) and its gradient is the
// output's, unchanged. WithStats counts the elements, NaN, ±Inf and the
// signal Σx² (nothing is clipped or zeroed; the noise is 0, the SQNR +Inf);
// WithObserver shows x to the observer at every run; WithPlainSTE has no
// effect.
//
// It returns an error wrapping ops.ErrNilNode for a nil x, ops.ErrDtype for a
// dtype other than Float32 and Float64, and ops.ErrValue for an x in no graph.
func Passthrough(x *gorgonia.Node, opts ...Option) (*gorgonia.Node, error) {
	const fn = "quantize.Passthrough"
	if err := opkit.CheckFloatNode(fn, "x", x); err != nil {
		return nil, err
	}
	op := &passOp{}
	op.opts.apply(opts)
	n, err := gorgonia.ApplyOp(op, x)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	return n, nil
}

// passOp is Passthrough's op.
type passOp struct {
	opkit.Allocates
	opts options
}

func (op *passOp) Arity() int { return 1 }

func (op *passOp) Type() hm.Type { return opkit.SameType(1) }

func (op *passOp) InferShape(ds ...gorgonia.DimSizer) (tensor.Shape, error) {
	return opkit.SameShape(op, 1, ds)
}

func (op *passOp) Do(inputs ...gorgonia.Value) (gorgonia.Value, error) {
	if len(inputs) != 1 {
		return nil, fmt.Errorf("%v: got %d inputs, want 1: %w", op, len(inputs), opkit.ErrValue)
	}
	return forwardDo(op, &op.opts, nil, inputs[0],
		func(dst, x []float32) error { return pass(op.opts.stats, dst, x) },
		func(dst, x []float64) error { return pass(op.opts.stats, dst, x) })
}

// pass copies x into dst and records the run into st (if not nil).
func pass[T float32 | float64](st *Stats, dst, x []T) error {
	copy(dst, x)
	PassthroughSlice(x, st)
	return nil
}

// WriteHash includes the attached Stats and Observer: two passthrough nodes
// on one x that record into different places are two nodes.
func (op *passOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "actq.Passthrough{stats=%p,obs=%p}", op.opts.stats, op.opts.observer)
}
func (op *passOp) Hashcode() uint32 { return opkit.Hash(op) }
func (op *passOp) String() string   { return "Passthrough" }

func (op *passOp) DiffWRT(int) []bool { return []bool{true} }

// grads: the gradient is the output's, passed on unchanged.
func (op *passOp) grads() []opkit.Grad { return []opkit.Grad{{}} }

func (op *passOp) SymDiff(inputs gorgonia.Nodes, output, grad *gorgonia.Node) (gorgonia.Nodes, error) {
	return opkit.SymDiff(op, op.grads(), inputs, grad)
}

func (op *passOp) DoDiff(ctx gorgonia.ExecutionContext, inputs gorgonia.Nodes, output *gorgonia.Node) error {
	return opkit.DoDiff(op, op.grads(), inputs, output)
}
