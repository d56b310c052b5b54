package graph

import (
	"fmt"
	"hash"
	"hash/fnv"
	"math"

	"github.com/actq/actq/ops"
	"github.com/chewxy/hm"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// normOp is a fused RMSNorm or LayerNorm over the rows of x (n, D):
//
//	rms:   y = x·r ⊙ g,         r = 1/√(mean(x²) + ε)
//	layer: y = (x−μ)·r ⊙ g + b, r = 1/√(mean((x−μ)²) + ε), μ = mean(x)
//
// with inputs (x, g) or (x, g, b). One node replaces the dozen Gorgonia
// ops (square, mean, add, sqrt, two broadcasts of two ops each) that a
// composed norm takes, forward and backward; each row's statistics are
// accumulated in float64 whatever the dtype. The backward pass is two
// grad ops, for x and g (b's gradient is Σ_rows dy).
type normOp struct {
	layer bool
	eps   float64
}

func (op normOp) String() string {
	if op.layer {
		return fmt.Sprintf("LayerNorm{ε=%g}", op.eps)
	}
	return fmt.Sprintf("RMSNorm{ε=%g}", op.eps)
}

func (op normOp) Arity() int {
	if op.layer {
		return 3
	}
	return 2
}

func (op normOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	m, v := gorgonia.TensorType{Dims: 2, Of: a}, gorgonia.TensorType{Dims: 1, Of: a}
	if op.layer {
		return hm.NewFnType(m, v, v, m)
	}
	return hm.NewFnType(m, v, m)
}

func (op normOp) InferShape(ds ...gorgonia.DimSizer) (tensor.Shape, error) {
	return normShapes(op, ds, op.Arity(), 0)
}

// normShapes checks (x (n, D), g (D)[, b or dy]) and returns the shape of
// input out.
func normShapes(op fmt.Stringer, ds []gorgonia.DimSizer, arity, out int) (tensor.Shape, error) {
	if len(ds) != arity {
		return nil, fmt.Errorf("%v: got %d input shapes, want %d: %w", op, len(ds), arity, ops.ErrShape)
	}
	ss := make([]tensor.Shape, len(ds))
	for i, d := range ds {
		s, ok := d.(tensor.Shape)
		if !ok {
			return nil, fmt.Errorf("%v: input %d shape %v: %w", op, i, d, ops.ErrShape)
		}
		ss[i] = s
	}
	x := ss[0]
	if x.Dims() != 2 || ss[1].Dims() != 1 || ss[1][0] != x[1] {
		return nil, fmt.Errorf("%v: shapes %v: %w", op, ss, ops.ErrShape)
	}
	return ss[out].Clone(), nil
}

func (op normOp) Do(inputs ...gorgonia.Value) (gorgonia.Value, error) {
	if len(inputs) != op.Arity() {
		return nil, fmt.Errorf("%v: got %d inputs, want %d: %w", op, len(inputs), op.Arity(), ops.ErrValue)
	}
	x, ok := inputs[0].(*tensor.Dense)
	if !ok {
		return nil, fmt.Errorf("%v: x is %T: %w", op, inputs[0], ops.ErrValue)
	}
	out := tensor.New(tensor.Of(x.Dtype()), tensor.WithShape(x.Shape().Clone()...))
	var err error
	switch dst := out.Data().(type) {
	case []float32:
		err = normForward(op, dst, inputs)
	case []float64:
		err = normForward(op, dst, inputs)
	default:
		err = fmt.Errorf("%v: dtype %v: %w", op, x.Dtype(), ops.ErrDtype)
	}
	return out, err
}

// slices returns the data of the values as []T, checking the dtype.
func slicesOf[T float32 | float64](op fmt.Stringer, vals []gorgonia.Value) ([][]T, error) {
	out := make([][]T, len(vals))
	for i, v := range vals {
		d, ok := v.(*tensor.Dense)
		if ok && d.RequiresIterator() {
			d, ok = d.Materialize().(*tensor.Dense)
		}
		if !ok {
			return nil, fmt.Errorf("%v: input %d is %T: %w", op, i, v, ops.ErrValue)
		}
		if out[i], ok = d.Data().([]T); !ok {
			return nil, fmt.Errorf("%v: input %d has dtype %v: %w", op, i, d.Dtype(), ops.ErrDtype)
		}
	}
	return out, nil
}

// rowStats returns the row's mean (0 for RMSNorm) and r = 1/√(var + ε),
// var being the mean square about the mean, accumulated in float64.
func rowStats[T float32 | float64](layer bool, eps float64, row []T) (mu, r float64) {
	d := float64(len(row))
	if layer {
		for _, v := range row {
			mu += float64(v)
		}
		mu /= d
	}
	var ss float64
	for _, v := range row {
		c := float64(v) - mu
		ss += c * c
	}
	return mu, 1 / math.Sqrt(ss/d+eps)
}

func normForward[T float32 | float64](op normOp, dst []T, inputs []gorgonia.Value) error {
	in, err := slicesOf[T](op, inputs)
	if err != nil {
		return err
	}
	x, g := in[0], in[1]
	d := len(g)
	for lo := 0; lo < len(x); lo += d {
		row, out := x[lo:lo+d], dst[lo:lo+d]
		mu, r := rowStats(op.layer, op.eps, row)
		for j, v := range row {
			out[j] = T((float64(v) - mu) * r * float64(g[j]))
		}
		if op.layer {
			b := in[2]
			for j := range out {
				out[j] += b[j]
			}
		}
	}
	return nil
}

func (op normOp) ReturnsPtr() bool      { return false }
func (op normOp) CallsExtern() bool     { return false }
func (op normOp) OverwritesInput() int  { return -1 }
func (op normOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "actq.graph.%v", op) }
func (op normOp) Hashcode() uint32      { return fnvHash(op) }

func fnvHash(op interface{ WriteHash(hash.Hash) }) uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}

func (op normOp) DiffWRT(n int) []bool {
	w := make([]bool, n)
	for i := range w {
		w[i] = true
	}
	return w
}

// SymDiff returns dx and dg from normGradOps on (x, g, dy) and, for
// LayerNorm, db = Σ_rows dy.
func (op normOp) SymDiff(inputs gorgonia.Nodes, output, grad *gorgonia.Node) (gorgonia.Nodes, error) {
	if len(inputs) != op.Arity() {
		return nil, fmt.Errorf("%v.SymDiff: got %d inputs: %w", op, len(inputs), ops.ErrValue)
	}
	x, g := inputs[0], inputs[1]
	dx, err := gorgonia.ApplyOp(normGradOp{op, false}, x, g, grad)
	if err != nil {
		return nil, err
	}
	dg, err := gorgonia.ApplyOp(normGradOp{op, true}, x, g, grad)
	if err != nil {
		return nil, err
	}
	if !op.layer {
		return gorgonia.Nodes{dx, dg}, nil
	}
	db, err := gorgonia.Sum(grad, 0)
	if err != nil {
		return nil, err
	}
	return gorgonia.Nodes{dx, dg, db}, nil
}

// DoDiff adds the gradients into the inputs' (Lisp machine).
func (op normOp) DoDiff(ctx gorgonia.ExecutionContext, inputs gorgonia.Nodes, output *gorgonia.Node) error {
	dy, err := output.Grad()
	if err != nil {
		return err
	}
	x, g := inputs[0].Value(), inputs[1].Value()
	for i, wrtG := range []bool{false, true} {
		v, err := normGradOp{op, wrtG}.Do(x, g, dy)
		if err != nil {
			return err
		}
		if err := addValue(op, inputs[i], v); err != nil {
			return err
		}
	}
	if op.layer {
		db, err := tensor.Sum(dy.(tensor.Tensor), 0)
		if err != nil {
			return err
		}
		return addValue(op, inputs[2], db)
	}
	return nil
}

// normGradOp is the backward op (x, g, dy) → dx (wrtG false) or dg:
//
//	x̂ = (x − μ)·r,  u = g ⊙ dy
//	dg = Σ_rows dy ⊙ x̂
//	dx = r·(u − x̂·mean(u ⊙ x̂))            (RMSNorm: μ = 0)
//	dx = r·(u − mean(u) − x̂·mean(u ⊙ x̂))  (LayerNorm)
type normGradOp struct {
	fwd  normOp
	wrtG bool
}

func (op normGradOp) String() string {
	if op.wrtG {
		return op.fwd.String() + "GradG"
	}
	return op.fwd.String() + "GradX"
}

func (op normGradOp) Arity() int { return 3 }

func (op normGradOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	m, v := gorgonia.TensorType{Dims: 2, Of: a}, gorgonia.TensorType{Dims: 1, Of: a}
	if op.wrtG {
		return hm.NewFnType(m, v, m, v)
	}
	return hm.NewFnType(m, v, m, m)
}

func (op normGradOp) InferShape(ds ...gorgonia.DimSizer) (tensor.Shape, error) {
	if op.wrtG {
		return normShapes(op, ds, 3, 1)
	}
	return normShapes(op, ds, 3, 0)
}

func (op normGradOp) Do(inputs ...gorgonia.Value) (gorgonia.Value, error) {
	if len(inputs) != 3 {
		return nil, fmt.Errorf("%v: got %d inputs, want 3: %w", op, len(inputs), ops.ErrValue)
	}
	src := inputs[0]
	if op.wrtG {
		src = inputs[1]
	}
	out := tensor.New(tensor.Of(src.Dtype()), tensor.WithShape(src.Shape().Clone()...))
	var err error
	switch dst := out.Data().(type) {
	case []float32:
		err = normBackward(op, dst, inputs)
	case []float64:
		err = normBackward(op, dst, inputs)
	default:
		err = fmt.Errorf("%v: dtype %v: %w", op, src.Dtype(), ops.ErrDtype)
	}
	return out, err
}

func normBackward[T float32 | float64](op normGradOp, dst []T, inputs []gorgonia.Value) error {
	in, err := slicesOf[T](op, inputs)
	if err != nil {
		return err
	}
	x, g, dy := in[0], in[1], in[2]
	d := len(g)
	if len(dy) != len(x) {
		return fmt.Errorf("%v: dy has %d elements, x %d: %w", op, len(dy), len(x), ops.ErrValue)
	}
	var acc []float64
	if op.wrtG {
		acc = make([]float64, d)
	}
	for lo := 0; lo < len(x); lo += d {
		row, drow := x[lo:lo+d], dy[lo:lo+d]
		mu, r := rowStats(op.fwd.layer, op.fwd.eps, row)
		if op.wrtG {
			for j, v := range row {
				acc[j] += float64(drow[j]) * (float64(v) - mu) * r
			}
			continue
		}
		var su, sux float64
		for j, v := range row {
			u := float64(g[j]) * float64(drow[j])
			su += u
			sux += u * (float64(v) - mu) * r
		}
		mu1, mux := su/float64(d), sux/float64(d)
		if !op.fwd.layer {
			mu1 = 0
		}
		out := dst[lo : lo+d]
		for j, v := range row {
			u := float64(g[j]) * float64(drow[j])
			out[j] = T(r * (u - mu1 - (float64(v)-mu)*r*mux))
		}
	}
	if op.wrtG {
		for j, v := range acc {
			dst[j] = T(v)
		}
	}
	return nil
}

func (op normGradOp) ReturnsPtr() bool      { return false }
func (op normGradOp) CallsExtern() bool     { return false }
func (op normGradOp) OverwritesInput() int  { return -1 }
func (op normGradOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "actq.graph.%v", op) }
func (op normGradOp) Hashcode() uint32      { return fnvHash(op) }

// addValue adds v into n's gradient (Lisp machine).
func addValue(op fmt.Stringer, n *gorgonia.Node, v gorgonia.Value) error {
	acc, err := n.Grad()
	if err != nil {
		return err
	}
	switch d := acc.Data().(type) {
	case []float32:
		s, ok := v.Data().([]float32)
		if !ok || len(s) != len(d) {
			return fmt.Errorf("%v.DoDiff: gradient %T: %w", op, v.Data(), ops.ErrValue)
		}
		for i, x := range s {
			d[i] += x
		}
	case []float64:
		s, ok := v.Data().([]float64)
		if !ok || len(s) != len(d) {
			return fmt.Errorf("%v.DoDiff: gradient %T: %w", op, v.Data(), ops.ErrValue)
		}
		for i, x := range s {
			d[i] += x
		}
	default:
		return fmt.Errorf("%v.DoDiff: gradient %T: %w", op, acc.Data(), ops.ErrValue)
	}
	return nil
}
