package layerops

import (
	"fmt"
	"hash"

	"github.com/actq/actq/internal/opkit"
	"github.com/chewxy/hm"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// CrossEntropy returns the mean cross-entropy of the rows of logits (n,
// classes) against the target classes in targets, an Int vector (n), a
// scalar:
//
//	loss = −(1/c)·Σ_{i: t_i ≥ 0} log Softmax(logits_i)[t_i]
//
// where c is the number of rows with a target t_i ≥ 0; a negative target
// (−1) marks a row that does not count (PyTorch's F.cross_entropy with
// ignore_index), and the loss is 0 when no row counts. One node replaces
// LogSoftmax, a product with one-hot targets (n, classes) and a sum: each
// counted row is read once forward (its log-sum-exp, accumulated in
// float64, as ops.LogSoftmax computes it) and once backward. The gradient
// with respect to the logits is
//
//	dlogits_i = (dy/c)·(Softmax(logits_i) − onehot(t_i))
//
// for counted rows and 0 for the others; targets have none.
//
// Special cases (per counted row): an infinite or NaN logit in a counted
// row makes the loss NaN, as ops.LogSoftmax does the row's log-probabilities
// (a logit of −Inf at a class other than the target is a masked class,
// with probability 0); a target class whose logit is −Inf gives +Inf.
// Rows that do not count never affect the loss or the gradient, whatever
// they hold.
//
// logits must be a 2-D Float32 or Float64 node, targets an Int vector of
// its rows; other nodes give an error wrapping opkit.ErrNilNode,
// opkit.ErrDtype or opkit.ErrShape. A target ≥ classes (or below −1) fails
// the run with an error wrapping opkit.ErrValue.
func CrossEntropy(logits, targets *gorgonia.Node) (*gorgonia.Node, error) {
	const fn = "layerops.CrossEntropy"
	if err := opkit.CheckFloatNode(fn, "logits", logits); err != nil {
		return nil, err
	}
	if targets == nil {
		return nil, fmt.Errorf("%s: targets: %w", fn, opkit.ErrNilNode)
	}
	if targets.Dtype() != tensor.Int {
		return nil, fmt.Errorf("%s: targets have dtype %v, want Int: %w", fn, targets.Dtype(), opkit.ErrDtype)
	}
	ls, ts := logits.Shape(), targets.Shape()
	if ls.Dims() != 2 || ts.Dims() != 1 || ts[0] != ls[0] {
		return nil, fmt.Errorf("%s: logits of shape %v and targets of shape %v, want (n, classes) and (n): %w", fn, ls, ts, opkit.ErrShape)
	}
	return gorgonia.ApplyOp(&crossEntropyOp{}, logits, targets)
}

// crossEntropyOp is CrossEntropy's op (logits, targets) → loss, and with
// grad its gradient's, (logits, targets, dy) → dlogits.
type crossEntropyOp struct {
	opkit.Allocates
	opkit.Reuse
	grad bool
}

func (op *crossEntropyOp) String() string {
	if op.grad {
		return "CrossEntropyGrad"
	}
	return "CrossEntropy"
}

func (op *crossEntropyOp) Arity() int {
	if op.grad {
		return 3
	}
	return 2
}

func (op *crossEntropyOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	m, t := gorgonia.TensorType{Dims: 2, Of: a}, gorgonia.TensorType{Dims: 1, Of: tensor.Int}
	if op.grad {
		return hm.NewFnType(m, t, a, m)
	}
	return hm.NewFnType(m, t, a)
}

func (op *crossEntropyOp) InferShape(ds ...gorgonia.DimSizer) (tensor.Shape, error) {
	ss, err := opkit.Shapes(op, op.Arity(), ds)
	if err != nil {
		return nil, err
	}
	if ss[0].Dims() != 2 || ss[1].Dims() != 1 || ss[1][0] != ss[0][0] || (op.grad && !ss[2].IsScalar()) {
		return nil, fmt.Errorf("%v: input shapes %v: %w", op, ss, opkit.ErrShape)
	}
	if op.grad {
		return ss[0].Clone(), nil
	}
	return tensor.ScalarShape(), nil
}

func (op *crossEntropyOp) Do(inputs ...gorgonia.Value) (gorgonia.Value, error) {
	shape, err := opkit.ResultShape(op, inputs)
	if err != nil {
		return nil, err
	}
	t, ok := inputs[1].(*tensor.Dense)
	if !ok || t.Dtype() != tensor.Int || t.RequiresIterator() {
		return nil, fmt.Errorf("%v: targets are %T, want a contiguous Int tensor: %w", op, inputs[1], opkit.ErrDtype)
	}
	classes := inputs[0].Shape()[1]
	targets := t.Ints()
	for i, c := range targets {
		if c < -1 || c >= classes {
			return nil, fmt.Errorf("%v: target %d is %d, outside [−1, %d): %w", op, i, c, classes, opkit.ErrValue)
		}
	}
	lg, err := opkit.FloatData(inputs[0])
	if err != nil {
		return nil, fmt.Errorf("%v: logits: %w", op, err)
	}
	var dy any
	if op.grad {
		if inputs[2].Dtype() != inputs[0].Dtype() {
			return nil, fmt.Errorf("%v: dy has dtype %v, logits %v: %w", op, inputs[2].Dtype(), inputs[0].Dtype(), opkit.ErrDtype)
		}
		if dy, err = opkit.FloatData(inputs[2]); err != nil {
			return nil, fmt.Errorf("%v: dy: %w", op, err)
		}
	}
	switch l := lg.(type) {
	case []float32:
		return crossEntropyDo(op, l, targets, classes, dy, inputs[0].Dtype(), shape)
	case []float64:
		return crossEntropyDo(op, l, targets, classes, dy, inputs[0].Dtype(), shape)
	}
	return nil, fmt.Errorf("%v: logits of dtype %v: %w", op, inputs[0].Dtype(), opkit.ErrDtype)
}

func crossEntropyDo[T float32 | float64](op *crossEntropyOp, logits []T, targets []int, classes int, dy any, dt tensor.Dtype, shape tensor.Shape) (gorgonia.Value, error) {
	if !op.grad {
		loss := crossEntropyLoss(logits, targets, classes)
		if dt == tensor.Float32 {
			return gorgonia.NewF32(float32(loss)), nil
		}
		return gorgonia.NewF64(loss), nil
	}
	d, ok := dy.([]T)
	if !ok || len(d) != 1 {
		return nil, fmt.Errorf("%v: dy is %T, want one %v: %w", op, dy, dt, opkit.ErrValue)
	}
	out := opkit.NewResult(op, dt, shape)
	crossEntropyGrad(out.Data().([]T), logits, targets, classes, float64(d[0]))
	return out, nil
}

func (op *crossEntropyOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "actq.layerops.%v", op) }
func (op *crossEntropyOp) Hashcode() uint32      { return opkit.Hash(op) }

func (op *crossEntropyOp) DiffWRT(n int) []bool {
	w := make([]bool, n)
	w[0] = true
	return w
}

func (op *crossEntropyOp) grads() []opkit.Grad {
	return []opkit.Grad{{Op: &crossEntropyOp{grad: true}, Args: []int{0, 1, opkit.DY}}, {None: true}}
}

func (op *crossEntropyOp) SymDiff(inputs gorgonia.Nodes, output, grad *gorgonia.Node) (gorgonia.Nodes, error) {
	return opkit.SymDiff(op, op.grads(), inputs, grad)
}

func (op *crossEntropyOp) DoDiff(ctx gorgonia.ExecutionContext, inputs gorgonia.Nodes, output *gorgonia.Node) error {
	return opkit.DoDiff(op, op.grads(), inputs, output)
}
