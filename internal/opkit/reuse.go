package opkit

import (
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Reuse lets an op, by embedding, keep its result from one run of a graph
// to the next and write the next result into it, instead of allocating
// (and the runtime zeroing) a new tensor on every run: the tape machine's
// Reset forgets every register, so every Do of a run allocates anew.
//
// It is off until ReuseResults is called. It may be turned on only where
// no one holds a result of the op beyond the next run of the op's node:
// a graph owned by one machine, whose values are read out by copying
// (gorgonia.Read) before the next run, as the Trainer and Evaluator of
// package graph do. It is not safe for concurrent use, any more than a
// tape machine is; a node shared by two machines must not reuse.
//
// An op embedding Reuse must use a pointer receiver (the kept tensor is
// per node), and its kernels must write every element of the result.
type Reuse struct {
	on   bool
	kept *tensor.Dense
}

// ReuseResults turns reuse on. It implements ResultReuser.
func (r *Reuse) ReuseResults() { r.on = true }

// ResultReuser is an op that can keep its result from run to run (see
// Reuse).
type ResultReuser interface {
	ReuseResults()
}

// result returns a tensor of dtype dt and the given shape to hold the
// op's result: the kept one when reuse is on and it fits (its data as the
// previous run left it), else a new zero tensor, kept when reuse is on.
func (r *Reuse) result(dt tensor.Dtype, shape tensor.Shape) *tensor.Dense {
	if r.on && r.kept != nil && r.kept.Dtype() == dt && r.kept.Shape().Eq(shape) {
		return r.kept
	}
	t := tensor.New(tensor.Of(dt), tensor.WithShape(shape.Clone()...))
	if r.on {
		r.kept = t
	}
	return t
}

// reuser is an op embedding Reuse.
type reuser interface {
	result(tensor.Dtype, tensor.Shape) *tensor.Dense
}

// NewResult returns the tensor an op's Do writes its result into: op's
// kept one if op embeds Reuse (see Reuse; its elements hold the previous
// result, not zeros), else a new zero tensor of dtype dt and the given
// shape.
func NewResult(op gorgonia.Op, dt tensor.Dtype, shape tensor.Shape) *tensor.Dense {
	if r, ok := op.(reuser); ok {
		return r.result(dt, shape)
	}
	return tensor.New(tensor.Of(dt), tensor.WithShape(shape.Clone()...))
}

// ReuseResults turns on Reuse (ReuseResults) for every op in g that has
// it. The caller owns g and its one machine, and reads values out only by
// copying (see Reuse).
func ReuseResults(g *gorgonia.ExprGraph) {
	for _, n := range g.AllNodes() {
		if r, ok := n.Op().(ResultReuser); ok {
			r.ReuseResults()
		}
	}
}
