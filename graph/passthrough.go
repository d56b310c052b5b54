package graph

import (
	"fmt"
	"hash"
	"hash/fnv"
	"math"
	"sync"

	"github.com/actq/actq/ops"
	"github.com/actq/actq/quantize"
	"github.com/chewxy/hm"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// passCounter counts what went through a passthrough node.
type passCounter struct {
	mu sync.Mutex
	s  quantize.StatsSnapshot
}

func (c *passCounter) snapshot() quantize.StatsSnapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.s
}

func (c *passCounter) reset() {
	c.mu.Lock()
	c.s = quantize.StatsSnapshot{}
	c.mu.Unlock()
}

func (c *passCounter) add(n, nan, inf int64, signal float64) {
	c.mu.Lock()
	c.s.Runs++
	c.s.Elements += n
	c.s.NaN += nan
	c.s.Inf += inf
	c.s.Signal += signal
	c.mu.Unlock()
}

// passthrough returns an identity node on x for site s: its value is a
// copy of x's; it counts into s.pass and shows x to s.observer if set.
func passthrough(s *Site, x *gorgonia.Node) (*gorgonia.Node, error) {
	if err := ops.CheckFloatNode("site "+s.Name, "x", x); err != nil {
		return nil, err
	}
	return gorgonia.ApplyOp(passOp{site: s}, x)
}

// passOp is the identity with side effects of passthrough. Its output is a
// copy, not x itself, so that an op writing in place over it cannot change
// x. The gradient passes unchanged.
type passOp struct{ site *Site }

func (op passOp) Arity() int { return 1 }

func (op passOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(a, a)
}

func (op passOp) InferShape(ds ...gorgonia.DimSizer) (tensor.Shape, error) {
	if len(ds) != 1 {
		return nil, fmt.Errorf("%v: got %d input shapes, want 1: %w", op, len(ds), ops.ErrShape)
	}
	s, ok := ds[0].(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("%v: input shape %v: %w", op, ds[0], ops.ErrShape)
	}
	return s.Clone(), nil
}

func (op passOp) Do(inputs ...gorgonia.Value) (gorgonia.Value, error) {
	if len(inputs) != 1 {
		return nil, fmt.Errorf("%v: got %d inputs, want 1: %w", op, len(inputs), ops.ErrValue)
	}
	x := inputs[0]
	if obs := op.site.observer; obs != nil {
		if err := obs.Observe(x); err != nil {
			return nil, fmt.Errorf("%v: %w", op, err)
		}
	}
	y, err := gorgonia.CloneValue(x)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", op, err)
	}
	switch d := y.Data().(type) {
	case []float32:
		count(op.site.pass, d)
	case []float64:
		count(op.site.pass, d)
	case float32:
		count(op.site.pass, []float32{d})
	case float64:
		count(op.site.pass, []float64{d})
	default:
		return nil, fmt.Errorf("%v: value %T: %w", op, x, ops.ErrValue)
	}
	return y, nil
}

func count[T float32 | float64](c *passCounter, d []T) {
	var nan, inf int64
	var signal float64
	for _, v := range d {
		f := float64(v)
		switch {
		case math.IsNaN(f):
			nan++
		case math.IsInf(f, 0):
			inf++
		default:
			signal += f * f
		}
	}
	c.add(int64(len(d)), nan, inf, signal)
}

func (op passOp) ReturnsPtr() bool     { return false }
func (op passOp) CallsExtern() bool    { return false }
func (op passOp) OverwritesInput() int { return -1 }

// WriteHash includes the site's address: two sites on one node are two
// nodes.
func (op passOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "actq.graph.pass(%s@%p)", op.site.Name, op.site)
}
func (op passOp) String() string { return "Pass(" + op.site.Name + ")" }

func (op passOp) Hashcode() uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}

func (op passOp) DiffWRT(int) []bool { return []bool{true} }

func (op passOp) SymDiff(inputs gorgonia.Nodes, output, grad *gorgonia.Node) (gorgonia.Nodes, error) {
	return gorgonia.Nodes{grad}, nil
}

// DoDiff adds the output's gradient into the input's (Lisp machine).
func (op passOp) DoDiff(ctx gorgonia.ExecutionContext, inputs gorgonia.Nodes, output *gorgonia.Node) error {
	return addGrad(op, inputs[0], output)
}

// addGrad adds output's gradient into input's, elementwise over equal
// sizes (identity and reshape gradients on the Lisp machine).
func addGrad(op fmt.Stringer, input, output *gorgonia.Node) error {
	dy, err := output.Grad()
	if err != nil {
		return err
	}
	dx, err := input.Grad()
	if err != nil {
		return err
	}
	switch d := dx.Data().(type) {
	case []float32:
		s, ok := dy.Data().([]float32)
		if !ok || len(s) != len(d) {
			return fmt.Errorf("%v.DoDiff: gradient %T: %w", op, dy.Data(), ops.ErrValue)
		}
		for i, v := range s {
			d[i] += v
		}
	case []float64:
		s, ok := dy.Data().([]float64)
		if !ok || len(s) != len(d) {
			return fmt.Errorf("%v.DoDiff: gradient %T: %w", op, dy.Data(), ops.ErrValue)
		}
		for i, v := range s {
			d[i] += v
		}
	default:
		return fmt.Errorf("%v.DoDiff: gradient %T: %w", op, dx.Data(), ops.ErrValue)
	}
	return nil
}
