package layerops

import (
	"fmt"
	"hash"

	"github.com/actq/actq/internal/opkit"
	"github.com/chewxy/hm"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TransposeLast returns x (…, m, n) with its last two axes swapped, (…, n,
// m), in new memory: each m×n matrix transposed. It does in one copy loop
// what gorgonia.Transpose(x, 0, …, r−1, r−2) does through Gorgonia's
// generic strided transpose; its gradient is TransposeLast of the output's
// gradient. It returns an error wrapping opkit.ErrNilNode, opkit.ErrDtype
// or opkit.ErrValue for a node that is nil, not Float32 or Float64, or in
// no graph, and opkit.ErrShape for a rank below 2.
func TransposeLast(x *gorgonia.Node) (*gorgonia.Node, error) {
	const fn = "layerops.TransposeLast"
	if err := opkit.CheckFloatNode(fn, "x", x); err != nil {
		return nil, err
	}
	if x.Shape().Dims() < 2 {
		return nil, fmt.Errorf("%s: x of shape %v, want rank ≥ 2: %w", fn, x.Shape(), opkit.ErrShape)
	}
	return gorgonia.ApplyOp(&transposeLastOp{in: x.Shape().Clone()}, x)
}

// transposeLastOp is TransposeLast's op for inputs of shape in.
type transposeLastOp struct {
	opkit.Allocates
	in tensor.Shape
}

func (op *transposeLastOp) out() tensor.Shape {
	s := op.in.Clone()
	r := len(s)
	s[r-2], s[r-1] = s[r-1], s[r-2]
	return s
}

func (op *transposeLastOp) String() string {
	return fmt.Sprintf("TransposeLast(%v→%v)", op.in, op.out())
}

func (op *transposeLastOp) Arity() int { return 1 }

func (op *transposeLastOp) Type() hm.Type { return opkit.SameType(1) }

func (op *transposeLastOp) InferShape(ds ...gorgonia.DimSizer) (tensor.Shape, error) {
	ss, err := opkit.Shapes(op, 1, ds)
	if err != nil {
		return nil, err
	}
	if !ss[0].Eq(op.in) {
		return nil, fmt.Errorf("%v: input shape %v, want %v: %w", op, ss[0], op.in, opkit.ErrShape)
	}
	return op.out(), nil
}

func (op *transposeLastOp) Do(inputs ...gorgonia.Value) (gorgonia.Value, error) {
	return opkit.DoDense(op, inputs)
}

func (op *transposeLastOp) Kernel32(dst []float32, in [][]float32, _ []gorgonia.Value) error {
	r := len(op.in)
	Transpose(dst, in[0], op.in[r-2], op.in[r-1])
	return nil
}

func (op *transposeLastOp) Kernel64(dst []float64, in [][]float64, _ []gorgonia.Value) error {
	r := len(op.in)
	Transpose(dst, in[0], op.in[r-2], op.in[r-1])
	return nil
}

func (op *transposeLastOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "actq.layerops.%v", op) }
func (op *transposeLastOp) Hashcode() uint32      { return opkit.Hash(op) }

func (op *transposeLastOp) DiffWRT(int) []bool { return []bool{true} }

// grads: the output's gradient transposed back.
func (op *transposeLastOp) grads() []opkit.Grad {
	return []opkit.Grad{{Op: &transposeLastOp{in: op.out()}, Args: []int{opkit.DY}}}
}

func (op *transposeLastOp) SymDiff(inputs gorgonia.Nodes, output, grad *gorgonia.Node) (gorgonia.Nodes, error) {
	return opkit.SymDiff(op, op.grads(), inputs, grad)
}

func (op *transposeLastOp) DoDiff(ctx gorgonia.ExecutionContext, inputs gorgonia.Nodes, output *gorgonia.Node) error {
	return opkit.DoDiff(op, op.grads(), inputs, output)
}
