package opkit

import (
	"fmt"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// DY stands for the output's gradient among the operands of a Grad.
const DY = -1

// A Grad says how one input's gradient is computed, on both of Gorgonia's
// machines: Op applied to the operands Args, each an index into the op's
// inputs or DY for the output's gradient. A nil Op passes the output's
// gradient itself (an identity). None marks an input that has no gradient
// (such as integer indices; its DiffWRT entry is false).
//
// Writing an op's gradients once, as Grads, gives its SymDiff and its
// DoDiff from the same description (see SymDiff and DoDiff).
type Grad struct {
	Op   GradOp
	Args []int
	None bool
}

// GradOp computes a gradient from values. A gorgonia.Op is one, and
// SymDiff puts it in the graph with gorgonia.ApplyOp, unless it also has
// an Apply method, which SymDiff calls instead to build the gradient's node
// (a gradient made of Gorgonia's own ops, such as gorgonia.Sum).
type GradOp interface {
	Do(...gorgonia.Value) (gorgonia.Value, error)
}

// applier is a GradOp that builds its own node.
type applier interface {
	Apply(...*gorgonia.Node) (*gorgonia.Node, error)
}

// SymDiff is the body of an op's SymDiff (the tape machine): it returns one
// gradient node per input, made as grads say (grads[i] is input i's) from
// the input nodes and dy, the output's gradient node.
func SymDiff(op fmt.Stringer, grads []Grad, inputs gorgonia.Nodes, dy *gorgonia.Node) (gorgonia.Nodes, error) {
	if len(inputs) != len(grads) {
		return nil, fmt.Errorf("%v.SymDiff: got %d inputs, want %d: %w", op, len(inputs), len(grads), ErrValue)
	}
	out := make(gorgonia.Nodes, len(grads))
	for i, g := range grads {
		if g.None {
			continue
		}
		if g.Op == nil {
			out[i] = dy
			continue
		}
		args := make(gorgonia.Nodes, len(g.Args))
		for j, a := range g.Args {
			if a == DY {
				args[j] = dy
			} else {
				args[j] = inputs[a]
			}
		}
		var err error
		switch o := g.Op.(type) {
		case applier:
			out[i], err = o.Apply(args...)
		case gorgonia.Op:
			out[i], err = gorgonia.ApplyOp(o, args...)
		default:
			err = fmt.Errorf("gradient %d: %T is neither a gorgonia.Op nor has an Apply method: %w", i, g.Op, ErrValue)
		}
		if err != nil {
			return nil, fmt.Errorf("%v.SymDiff: %w", op, err)
		}
	}
	return out, nil
}

// DoDiff is the body of an op's DoDiff (the Lisp machine): it computes
// every input's gradient as grads say, from the inputs' values and the
// output's gradient, and adds it into the input's gradient (AddInto).
func DoDiff(op fmt.Stringer, grads []Grad, inputs gorgonia.Nodes, output *gorgonia.Node) error {
	if len(inputs) != len(grads) {
		return fmt.Errorf("%v.DoDiff: got %d inputs, want %d: %w", op, len(inputs), len(grads), ErrValue)
	}
	dy, err := output.Grad()
	if err != nil {
		return fmt.Errorf("%v.DoDiff: output gradient: %w", op, err)
	}
	for i, g := range grads {
		if g.None {
			continue
		}
		dx := dy
		if g.Op != nil {
			args := make([]gorgonia.Value, len(g.Args))
			for j, a := range g.Args {
				if a == DY {
					args[j] = dy
				} else {
					args[j] = inputs[a].Value()
				}
			}
			if dx, err = g.Op.Do(args...); err != nil {
				return fmt.Errorf("%v.DoDiff: %w", op, err)
			}
		}
		if err := addGrad(inputs[i], dx); err != nil {
			return fmt.Errorf("%v.DoDiff: input %d: %w", op, i, err)
		}
	}
	return nil
}

// DoDiffInto is the body of a DoDiff for the Lisp machine: it runs gradOp on
// (input, dy), dy being output's gradient, and adds the result into wrt's
// gradient. Unlike DoDiff, input may be any value, such as the output's
// (softmax's gradient is computed from its output).
func DoDiffInto(gradOp gorgonia.Op, wrt *gorgonia.Node, input gorgonia.Value, output *gorgonia.Node) error {
	dy, err := output.Grad()
	if err != nil {
		return fmt.Errorf("%v: output gradient: %w", gradOp, err)
	}
	dx, err := gradOp.Do(input, dy)
	if err != nil {
		return err
	}
	if err := addGrad(wrt, dx); err != nil {
		return fmt.Errorf("%v: %w", gradOp, err)
	}
	return nil
}

// addGrad adds dx into n's gradient.
func addGrad(n *gorgonia.Node, dx gorgonia.Value) error {
	acc, err := n.Grad()
	if err != nil {
		return fmt.Errorf("input gradient: %w", err)
	}
	return AddInto(acc, dx)
}

// AddInto adds src's elements into dst's storage (dst += src): the Lisp
// machine's DoDiff accumulates into an input's gradient, which may already
// hold other consumers' contributions.
func AddInto(dst, src gorgonia.Value) error {
	if err := Usable(dst); err != nil {
		return fmt.Errorf("gradient: %w", err)
	}
	if d, ok := dst.(*tensor.Dense); ok && d.RequiresIterator() {
		return fmt.Errorf("gradient tensor is a non-contiguous view: %w", ErrValue)
	}
	dd, err := FloatData(dst)
	if err != nil {
		return err
	}
	sd, err := FloatData(src)
	if err != nil {
		return err
	}
	switch dv := dd.(type) {
	case []float32:
		err = accumulate(dv, sd)
	case []float64:
		err = accumulate(dv, sd)
	}
	if err != nil {
		return err
	}
	StoreScalar(dst, dd)
	return nil
}

// accumulate adds src, which must be a []T of dst's length, into dst.
func accumulate[T float32 | float64](dst []T, src any) error {
	sv, ok := src.([]T)
	if !ok || len(sv) != len(dst) {
		return fmt.Errorf("adding %T into %d-element %T: %w", src, len(dst), dst, ErrValue)
	}
	for i, v := range sv {
		dst[i] += v
	}
	return nil
}
