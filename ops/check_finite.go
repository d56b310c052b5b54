package ops

import (
	"errors"
	"fmt"
	"hash"
	"math"

	"github.com/actq/actq/internal/opkit"

	"github.com/actq/actq/ops/kernel"
	"github.com/chewxy/hm"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// ErrNonFinite reports NaN or ±Inf values found by a CheckFinite node. The
// error it wraps is a *NonFiniteError with the details.
var ErrNonFinite = errors.New("non-finite values")

// NonFiniteError describes the NaN and ±Inf values a CheckFinite node found.
type NonFiniteError struct {
	Label    string // the label given to CheckFinite
	Gradient bool   // found in the gradient flowing back, not the forward value
	NaN      int    // number of NaN elements
	PosInf   int    // number of +Inf elements
	NegInf   int    // number of −Inf elements
	Total    int    // number of elements checked
	First    int    // flat (row-major) index of the first non-finite element
	Coord    []int  // the same index as a coordinate in the tensor's shape
	Value    float64
}

func (e *NonFiniteError) Error() string {
	where := "value"
	if e.Gradient {
		where = "gradient"
	}
	return fmt.Sprintf("ops.CheckFinite %q: %s has %d non-finite of %d elements (%d NaN, %d +Inf, %d −Inf); first at index %d %v = %v",
		e.Label, where, e.NaN+e.PosInf+e.NegInf, e.Total, e.NaN, e.PosInf, e.NegInf, e.First, e.Coord, e.Value)
}

// Unwrap lets errors.Is(err, ErrNonFinite) match.
func (e *NonFiniteError) Unwrap() error { return ErrNonFinite }

// FindNonFinite returns the *NonFiniteError in err's chain. Use it on the
// error of a machine's RunAll: Gorgonia's tape machine wraps op errors in a
// type without an Unwrap method, which errors.As cannot see through.
func FindNonFinite(err error) (*NonFiniteError, bool) {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if nf, ok := e.(*NonFiniteError); ok {
			return nf, true
		}
		// Gorgonia's vmContextualError exposes its cause as Err().
		if inner, ok := e.(interface{ Err() error }); ok {
			if nf, ok := FindNonFinite(inner.Err()); ok {
				return nf, true
			}
		}
	}
	return nil, false
}

// CheckFinite returns a node equal to x that stops the run with an error as
// soon as x holds a NaN or an infinity, instead of letting them spread into
// silent garbage. Its gradient is the identity, and the gradient flowing
// back through it is checked the same way.
//
// The error wraps ErrNonFinite and is a *NonFiniteError naming label, the
// counts of NaN, +Inf and −Inf, and the index (flat and as a coordinate) of
// the first one. Gorgonia's machines return it, wrapped, from RunAll; get it
// back with FindNonFinite.
//
// Unlike the tape machine's WithNaNWatch option, CheckFinite watches only the
// nodes you choose, works on both machines, counts, and says where.
//
// It returns an error wrapping ErrNilNode for a nil x and ErrDtype for a
// dtype other than Float32 and Float64.
func CheckFinite(x *gorgonia.Node, label string) (*gorgonia.Node, error) {
	return applyCheckFinite("ops.CheckFinite", x, checkFiniteOp{label: label})
}

// CheckFiniteMasked is CheckFinite for values that carry an additive mask,
// such as causally masked attention scores: −Inf entries are allowed in the
// value (not in the gradient); NaN and +Inf stop the run.
func CheckFiniteMasked(x *gorgonia.Node, label string) (*gorgonia.Node, error) {
	return applyCheckFinite("ops.CheckFiniteMasked", x, checkFiniteOp{label: label, allowNegInf: true})
}

func applyCheckFinite(fn string, x *gorgonia.Node, op checkFiniteOp) (*gorgonia.Node, error) {
	if err := opkit.CheckFloatNode(fn, "x", x); err != nil {
		return nil, err
	}
	n, err := gorgonia.ApplyOp(op, x)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	return n, nil
}

// checkFiniteOp is the identity with a check. With gradient set it is the
// backward op, checking dy; allowNegInf lets −Inf (a mask) pass in the
// forward value.
type checkFiniteOp struct {
	label       string
	gradient    bool
	allowNegInf bool
}

func (op checkFiniteOp) Arity() int { return 1 }

func (op checkFiniteOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(a, a)
}

func (op checkFiniteOp) InferShape(ds ...gorgonia.DimSizer) (tensor.Shape, error) {
	return opkit.SameShape(op, 1, ds)
}

// Do checks x and returns a copy of it.
func (op checkFiniteOp) Do(inputs ...gorgonia.Value) (gorgonia.Value, error) {
	return op.do(nil, inputs)
}

// UsePreallocDo checks x; the tape machine passes x itself as prealloc when
// nothing else reads x, and then no copy is made.
func (op checkFiniteOp) UsePreallocDo(prealloc gorgonia.Value, inputs ...gorgonia.Value) (gorgonia.Value, error) {
	return op.do(prealloc, inputs)
}

func (op checkFiniteOp) do(out gorgonia.Value, inputs []gorgonia.Value) (gorgonia.Value, error) {
	if len(inputs) != 1 {
		return nil, fmt.Errorf("%v: got %d inputs, want 1: %w", op, len(inputs), ErrValue)
	}
	if err := op.check(inputs[0]); err != nil {
		return nil, err
	}
	v, err := elementwise(out, inputs, op)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", op, err)
	}
	return v, nil
}

func (op checkFiniteOp) check(v gorgonia.Value) error {
	data, err := opkit.FloatData(v)
	if err != nil {
		return fmt.Errorf("%v: %w", op, err)
	}
	var nan, pos, neg, first, total int
	var at float64
	switch d := data.(type) {
	case []float32:
		nan, pos, neg, first = kernel.NonFinite(d)
		total = len(d)
		if op.allowNegInf && nan+pos > 0 {
			first = firstNaNOrPosInf(d)
		}
		if first >= 0 {
			at = float64(d[first])
		}
	case []float64:
		nan, pos, neg, first = kernel.NonFinite(d)
		total = len(d)
		if op.allowNegInf && nan+pos > 0 {
			first = firstNaNOrPosInf(d)
		}
		if first >= 0 {
			at = d[first]
		}
	}
	if first < 0 || op.allowNegInf && nan+pos == 0 {
		return nil
	}
	return &NonFiniteError{Label: op.label, Gradient: op.gradient, NaN: nan, PosInf: pos, NegInf: neg,
		Total: total, First: first, Coord: coordOf(first, v.Shape()), Value: at}
}

// firstNaNOrPosInf returns the index of the first NaN or +Inf in x (−1 if
// none): the first bad value when −Inf is allowed.
func firstNaNOrPosInf[T kernel.Float](x []T) int {
	for i, v := range x {
		if v != v || float64(v) > math.MaxFloat64 {
			return i
		}
	}
	return -1
}

// coordOf converts a row-major flat index into a coordinate of shape.
func coordOf(flat int, shape tensor.Shape) []int {
	coord := make([]int, len(shape))
	for i := len(shape) - 1; i >= 0; i-- {
		if shape[i] > 0 {
			coord[i] = flat % shape[i]
			flat /= shape[i]
		}
	}
	return coord
}

func (op checkFiniteOp) kernel32(dst []float32, in [2][]float32) error {
	copy(dst, in[0])
	return nil
}

func (op checkFiniteOp) kernel64(dst []float64, in [2][]float64) error {
	copy(dst, in[0])
	return nil
}

// grain: a copy is memory-bound, like ReLU (see activation.grain).
func (op checkFiniteOp) grain(f32 bool) int { return grainFor(true, f32) }

func (op checkFiniteOp) ReturnsPtr() bool     { return true }
func (op checkFiniteOp) CallsExtern() bool    { return false }
func (op checkFiniteOp) OverwritesInput() int { return 0 }
func (op checkFiniteOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "actq.CheckFinite{%q, grad=%v, masked=%v}", op.label, op.gradient, op.allowNegInf)
}
func (op checkFiniteOp) Hashcode() uint32 { return opkit.Hash(op) }
func (op checkFiniteOp) String() string {
	switch {
	case op.gradient:
		return fmt.Sprintf("CheckFiniteGrad(%q)", op.label)
	case op.allowNegInf:
		return fmt.Sprintf("CheckFiniteMasked(%q)", op.label)
	}
	return fmt.Sprintf("CheckFinite(%q)", op.label)
}

func (op checkFiniteOp) DiffWRT(inputs int) []bool { return []bool{true} }

// SymDiff returns dx = dy through a gradient-checking node.
func (op checkFiniteOp) SymDiff(inputs gorgonia.Nodes, output, grad *gorgonia.Node) (gorgonia.Nodes, error) {
	if len(inputs) != 1 {
		return nil, fmt.Errorf("%v.SymDiff: got %d inputs, want 1: %w", op, len(inputs), ErrValue)
	}
	dx, err := gorgonia.ApplyOp(checkFiniteOp{label: op.label, gradient: true}, grad)
	if err != nil {
		return nil, fmt.Errorf("%v.SymDiff: %w", op, err)
	}
	return gorgonia.Nodes{dx}, nil
}

// DoDiff checks dy and adds it into x's gradient.
func (op checkFiniteOp) DoDiff(ctx gorgonia.ExecutionContext, inputs gorgonia.Nodes, output *gorgonia.Node) error {
	if len(inputs) != 1 {
		return fmt.Errorf("%v.DoDiff: got %d inputs, want 1: %w", op, len(inputs), ErrValue)
	}
	dy, err := output.Grad()
	if err != nil {
		return fmt.Errorf("%v.DoDiff: output gradient: %w", op, err)
	}
	if err := (checkFiniteOp{label: op.label, gradient: true}).check(dy); err != nil {
		return err
	}
	acc, err := inputs[0].Grad()
	if err != nil {
		return fmt.Errorf("%v.DoDiff: input gradient: %w", op, err)
	}
	return opkit.AddInto(acc, dy)
}
