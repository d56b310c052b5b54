package layerops

import (
	"fmt"
	"hash"

	"github.com/actq/actq/internal/opkit"
	"github.com/chewxy/hm"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Norm returns a node normalising each row of x (n, D) with the gain g
// (D): RMSNorm when the shift b is nil, LayerNorm with b (D) otherwise,
//
//	RMSNorm:   y = x·r ⊙ g,         r = 1/√(mean(x²) + ε)
//	LayerNorm: y = (x−μ)·r ⊙ g + b, r = 1/√(mean((x−μ)²) + ε), μ = mean(x)
//
// One node replaces the dozen Gorgonia ops (square, mean, add, sqrt, two
// broadcasts of two ops each) that a composed norm takes, forward and
// backward; each row's statistics are accumulated in float64 whatever the
// dtype. The gradients of x and g are two more ops (see normGradX and
// normGradG), b's is the sum of dy over the rows (one GEMM, see sumRowsOp).
//
// The nodes must be non-nil, of one float dtype, in one graph; shapes
// that do not fit give an error wrapping opkit.ErrShape.
func Norm(x, g, b *gorgonia.Node, eps float64) (*gorgonia.Node, error) {
	if b == nil {
		return gorgonia.ApplyOp(&normOp{eps: eps}, x, g)
	}
	return gorgonia.ApplyOp(&normOp{layer: true, eps: eps}, x, g, b)
}

// normOp is Norm's op: inputs (x, g) for RMSNorm, (x, g, b) for LayerNorm.
type normOp struct {
	opkit.Allocates
	opkit.Reuse
	layer bool
	eps   float64
}

func (op *normOp) String() string {
	if op.layer {
		return fmt.Sprintf("LayerNorm{ε=%g}", op.eps)
	}
	return fmt.Sprintf("RMSNorm{ε=%g}", op.eps)
}

func (op *normOp) Arity() int {
	if op.layer {
		return 3
	}
	return 2
}

func (op *normOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	m, v := gorgonia.TensorType{Dims: 2, Of: a}, gorgonia.TensorType{Dims: 1, Of: a}
	if op.layer {
		return hm.NewFnType(m, v, v, m)
	}
	return hm.NewFnType(m, v, m)
}

func (op *normOp) InferShape(ds ...gorgonia.DimSizer) (tensor.Shape, error) {
	ss, err := normShapes(op, ds, op.Arity(), false)
	if err != nil {
		return nil, err
	}
	return ss[0].Clone(), nil
}

// normShapes checks the input shapes of a norm op, x (n, D) and g (D),
// then b (D) for LayerNorm or, for a gradient op, dy (n, D).
func normShapes(op fmt.Stringer, ds []gorgonia.DimSizer, arity int, grad bool) ([]tensor.Shape, error) {
	ss, err := opkit.Shapes(op, arity, ds)
	if err != nil {
		return nil, err
	}
	x, g := ss[0], ss[1]
	ok := x.Dims() == 2 && g.Dims() == 1 && g[0] == x[1]
	if ok && arity == 3 {
		third := g
		if grad {
			third = x
		}
		ok = ss[2].Eq(third)
	}
	if !ok {
		return nil, fmt.Errorf("%v: input shapes %v: %w", op, ss, opkit.ErrShape)
	}
	return ss, nil
}

func (op *normOp) Do(inputs ...gorgonia.Value) (gorgonia.Value, error) {
	return opkit.DoDense(op, inputs)
}

func (op *normOp) Kernel32(dst []float32, in [][]float32, _ []gorgonia.Value) error {
	normRows(dst, in[0], in[1], shift(op, in), op.eps)
	return nil
}

func (op *normOp) Kernel64(dst []float64, in [][]float64, _ []gorgonia.Value) error {
	normRows(dst, in[0], in[1], shift(op, in), op.eps)
	return nil
}

// shift returns LayerNorm's b, nil for RMSNorm.
func shift[T float32 | float64](op *normOp, in [][]T) []T {
	if op.layer {
		return in[2]
	}
	return nil
}

func (op *normOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "actq.layerops.%v", op) }
func (op *normOp) Hashcode() uint32      { return opkit.Hash(op) }

func (op *normOp) DiffWRT(n int) []bool {
	w := make([]bool, n)
	for i := range w {
		w[i] = true
	}
	return w
}

// grads are dx and dg from normGradOps on (x, g, dy) and, for LayerNorm,
// db = Σ_rows dy.
func (op *normOp) grads() []opkit.Grad {
	args := []int{0, 1, opkit.DY}
	fwd := normOp{layer: op.layer, eps: op.eps} // the parameters, not the kept result
	gs := []opkit.Grad{{Op: &normGradOp{fwd: fwd}, Args: args}, {Op: &normGradOp{fwd: fwd, wrtG: true}, Args: args}}
	if op.layer {
		gs = append(gs, opkit.Grad{Op: &sumRowsOp{}, Args: []int{opkit.DY}})
	}
	return gs
}

func (op *normOp) SymDiff(inputs gorgonia.Nodes, output, grad *gorgonia.Node) (gorgonia.Nodes, error) {
	return opkit.SymDiff(op, op.grads(), inputs, grad)
}

func (op *normOp) DoDiff(ctx gorgonia.ExecutionContext, inputs gorgonia.Nodes, output *gorgonia.Node) error {
	return opkit.DoDiff(op, op.grads(), inputs, output)
}

// normGradOp is the backward op (x, g, dy) → dx (wrtG false) or dg.
type normGradOp struct {
	opkit.Allocates
	opkit.Reuse
	fwd  normOp
	wrtG bool
}

func (op *normGradOp) String() string {
	if op.wrtG {
		return op.fwd.String() + "GradG"
	}
	return op.fwd.String() + "GradX"
}

func (op *normGradOp) Arity() int { return 3 }

func (op *normGradOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	m, v := gorgonia.TensorType{Dims: 2, Of: a}, gorgonia.TensorType{Dims: 1, Of: a}
	if op.wrtG {
		return hm.NewFnType(m, v, m, v)
	}
	return hm.NewFnType(m, v, m, m)
}

func (op *normGradOp) InferShape(ds ...gorgonia.DimSizer) (tensor.Shape, error) {
	ss, err := normShapes(op, ds, 3, true)
	if err != nil {
		return nil, err
	}
	if op.wrtG {
		return ss[1].Clone(), nil
	}
	return ss[0].Clone(), nil
}

func (op *normGradOp) Do(inputs ...gorgonia.Value) (gorgonia.Value, error) {
	return opkit.DoDense(op, inputs)
}

func (op *normGradOp) Kernel32(dst []float32, in [][]float32, _ []gorgonia.Value) error {
	normGrad(op, dst, in)
	return nil
}

func (op *normGradOp) Kernel64(dst []float64, in [][]float64, _ []gorgonia.Value) error {
	normGrad(op, dst, in)
	return nil
}

func normGrad[T float32 | float64](op *normGradOp, dst []T, in [][]T) {
	if op.wrtG {
		normGradG(dst, in[0], in[2], op.fwd.layer, op.fwd.eps)
	} else {
		normGradX(dst, in[0], in[1], in[2], op.fwd.layer, op.fwd.eps)
	}
}

func (op *normGradOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "actq.layerops.%v", op) }
func (op *normGradOp) Hashcode() uint32      { return opkit.Hash(op) }
