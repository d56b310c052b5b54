package layerops

import (
	"fmt"
	"hash"
	"math"

	"github.com/actq/actq/internal/opkit"
	"github.com/chewxy/hm"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// RoPE returns x (batch, heads, seq, dh) with rotary position embeddings
// (Su et al. 2021) in Hugging Face's rotate_half layout, the one of
// transformers' Llama: row t of every head is at position p = offset+t
// and element i < dh/2 is rotated together with element i+dh/2,
//
//	y = x·cos(p·ω) + rotate_half(x)·sin(p·ω),  rotate_half(x) = (−x[dh/2:], x[:dh/2])
//	ω_i = ω_{i+dh/2} = θ^(−2i/dh)
//
// that is y_i = x_i·cos − x_{i+dh/2}·sin and y_{i+dh/2} = x_{i+dh/2}·cos +
// x_i·sin. offset is the position of the first row, as in decoding with a
// cache, where new queries come after the cached keys.
//
// The inverse frequencies, the angles p·ω_i and their cosines and sines
// are computed in float64, exactly as written (ω_i = 1/θ^(2i/dh)), once
// when the node is made, and each output element is rounded once from
// float64 products. transformers computes the frequencies and the angles
// in float32 (cos and sin are then off by up to about p·2⁻²⁴, 3e-4 at
// position 5000), so a float32 model here is closer to the exact model
// than transformers' float32 forward pass, not bit-identical to it.
//
// The derivative is the inverse rotation, the transpose:
// dx = dy·cos + rotate_halfᵀ(dy·sin), i.e. dx_i = dy_i·cos + dy_{i+dh/2}·sin
// and dx_{i+dh/2} = dy_{i+dh/2}·cos − dy_i·sin.
//
// It returns an error wrapping opkit.ErrNilNode, opkit.ErrDtype or
// opkit.ErrValue for a node that is nil, not Float32 or Float64, or in no
// graph; opkit.ErrShape unless x is 4-D with an even, positive last
// dimension; and opkit.ErrValue for θ not positive and finite or a
// negative offset.
func RoPE(x *gorgonia.Node, theta float64, offset int) (*gorgonia.Node, error) {
	const fn = "layerops.RoPE"
	if err := opkit.CheckFloatNode(fn, "x", x); err != nil {
		return nil, err
	}
	s := x.Shape()
	if s.Dims() != 4 || s[3] <= 0 || s[3]%2 != 0 {
		return nil, fmt.Errorf("%s: x of shape %v, want (batch, heads, seq, dh) with dh even: %w", fn, s, opkit.ErrShape)
	}
	if !(theta > 0) || math.IsInf(theta, 1) {
		return nil, fmt.Errorf("%s: theta = %v, want positive and finite: %w", fn, theta, opkit.ErrValue)
	}
	if offset < 0 {
		return nil, fmt.Errorf("%s: offset = %d, want ≥ 0: %w", fn, offset, opkit.ErrValue)
	}
	op := &ropeOp{theta: theta, offset: offset, seq: s[2], dh: s[3]}
	op.cos, op.sin = ropeTable(theta, offset, op.seq, op.dh)
	return gorgonia.ApplyOp(op, x)
}

// ropeOp is RoPE's op, or with inverse its gradient. cos and sin are the
// table of ropeTable, shared read-only by the op and its gradient op.
type ropeOp struct {
	opkit.Allocates
	theta    float64
	offset   int
	seq, dh  int
	inverse  bool
	cos, sin []float64
}

func (op *ropeOp) String() string {
	name := "RoPE"
	if op.inverse {
		name = "RoPEᵀ"
	}
	return fmt.Sprintf("%s{θ=%v,offset=%d,seq=%d,dh=%d}", name, op.theta, op.offset, op.seq, op.dh)
}

func (op *ropeOp) Arity() int { return 1 }

func (op *ropeOp) Type() hm.Type { return opkit.SameType(1) }

func (op *ropeOp) InferShape(ds ...gorgonia.DimSizer) (tensor.Shape, error) {
	ss, err := opkit.Shapes(op, 1, ds)
	if err != nil {
		return nil, err
	}
	if s := ss[0]; s.Dims() != 4 || s[2] != op.seq || s[3] != op.dh {
		return nil, fmt.Errorf("%v: input shape %v, want (batch, heads, %d, %d): %w", op, s, op.seq, op.dh, opkit.ErrShape)
	}
	return ss[0].Clone(), nil
}

func (op *ropeOp) Do(inputs ...gorgonia.Value) (gorgonia.Value, error) {
	return opkit.DoDense(op, inputs)
}

func (op *ropeOp) Kernel32(dst []float32, in [][]float32, _ []gorgonia.Value) error {
	rotate(dst, in[0], op.cos, op.sin, op.seq, op.dh, op.inverse)
	return nil
}

func (op *ropeOp) Kernel64(dst []float64, in [][]float64, _ []gorgonia.Value) error {
	rotate(dst, in[0], op.cos, op.sin, op.seq, op.dh, op.inverse)
	return nil
}

func (op *ropeOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "actq.layerops.%v", op) }
func (op *ropeOp) Hashcode() uint32      { return opkit.Hash(op) }

func (op *ropeOp) DiffWRT(int) []bool { return []bool{true} }

// grads: the output's gradient rotated back.
func (op *ropeOp) grads() []opkit.Grad {
	inverse := *op
	inverse.inverse = !op.inverse
	return []opkit.Grad{{Op: &inverse, Args: []int{opkit.DY}}}
}

func (op *ropeOp) SymDiff(inputs gorgonia.Nodes, output, grad *gorgonia.Node) (gorgonia.Nodes, error) {
	return opkit.SymDiff(op, op.grads(), inputs, grad)
}

func (op *ropeOp) DoDiff(ctx gorgonia.ExecutionContext, inputs gorgonia.Nodes, output *gorgonia.Node) error {
	return opkit.DoDiff(op, op.grads(), inputs, output)
}
