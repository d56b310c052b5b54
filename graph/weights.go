package graph

import (
	"encoding/gob"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/actq/actq/ops"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Weights holds parameter values by node name ("block0.attn.Wq",
// "block1.ffn.W1", "embed.tok", …). A builder given Weights (WithWeights)
// copies each value into its graph, so one Weights may seed any number of
// graphs, in any goroutines, and later changes to either side do not leak:
// Gorgonia must never see one tensor in two graphs (gorgonia/gorgonia#549
// panics in the gradient of a shared weight).
type Weights map[string]*tensor.Dense

// Clone returns a deep copy of w.
func (w Weights) Clone() Weights {
	if w == nil {
		return nil
	}
	out := make(Weights, len(w))
	for k, v := range w {
		out[k] = v.Clone().(*tensor.Dense)
	}
	return out
}

// Names returns the names in w, sorted.
func (w Weights) Names() []string {
	names := make([]string, 0, len(w))
	for k := range w {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// Count returns the number of scalar parameters in w.
func (w Weights) Count() int {
	n := 0
	for _, v := range w {
		n += v.Shape().TotalSize()
	}
	return n
}

// Collect returns a Weights holding copies of the current values of the
// given input nodes, by node name. It returns an error wrapping
// ops.ErrNilNode for a nil node, ops.ErrValue for a node with no value or a
// non-tensor value, and ErrConfig if two nodes share a name.
func Collect(nodes ...*gorgonia.Node) (Weights, error) {
	w := make(Weights, len(nodes))
	for _, n := range nodes {
		if n == nil {
			return nil, fmt.Errorf("graph.Collect: a node is nil: %w", ops.ErrNilNode)
		}
		d, ok := n.Value().(*tensor.Dense)
		if !ok {
			return nil, fmt.Errorf("graph.Collect: node %q holds %T, want *tensor.Dense: %w", n.Name(), n.Value(), ops.ErrValue)
		}
		if _, dup := w[n.Name()]; dup {
			return nil, fmt.Errorf("graph.Collect: two nodes named %q: %w", n.Name(), ErrConfig)
		}
		w[n.Name()] = d.Clone().(*tensor.Dense)
	}
	return w, nil
}

// initKind says how a parameter starts when no Weights supply it.
type initKind uint8

const (
	initZeros   initKind = iota // biases, LayerNorm shifts
	initOnes                    // norm gains
	initUniform                 // U(−1/√fanIn, 1/√fanIn), PyTorch's nn.Linear default
	initNormal                  // N(0, 1), PyTorch's nn.Embedding default
)

// initValue returns the starting value of the parameter called name. The
// random stream depends only on (seed, name), so a model's initial weights
// do not depend on the order in which its layers are built.
func initValue(seed uint64, name string, kind initKind, dt tensor.Dtype, shape ...int) *tensor.Dense {
	n := 1
	for _, s := range shape {
		n *= s
	}
	h := fnv.New64a()
	h.Write([]byte(name))
	rng := rand.New(rand.NewPCG(seed, h.Sum64()))
	vals := make([]float64, n)
	switch kind {
	case initOnes:
		for i := range vals {
			vals[i] = 1
		}
	case initUniform:
		bound := 1 / math.Sqrt(float64(shape[0]))
		for i := range vals {
			vals[i] = (2*rng.Float64() - 1) * bound
		}
	case initNormal:
		for i := range vals {
			vals[i] = rng.NormFloat64()
		}
	}
	return denseFrom(dt, shape, vals)
}

// denseFrom returns a new tensor of dtype dt holding vals (converted).
func denseFrom(dt tensor.Dtype, shape []int, vals []float64) *tensor.Dense {
	if dt == tensor.Float32 {
		v32 := make([]float32, len(vals))
		for i, v := range vals {
			v32[i] = float32(v)
		}
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(v32))
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(slices.Clone(vals)))
}

// weightRecord is one tensor in the encoding of Weights.
type weightRecord struct {
	Name  string
	Shape []int
	F32   []float32
	F64   []float64
}

// Encode writes w to out (encoding/gob, sorted by name), for Decode.
func (w Weights) Encode(out io.Writer) error {
	recs := make([]weightRecord, 0, len(w))
	for _, name := range w.Names() {
		d := w[name]
		r := weightRecord{Name: name, Shape: d.Shape().Clone()}
		switch d.Dtype() {
		case tensor.Float32:
			r.F32 = d.Float32s()
		case tensor.Float64:
			r.F64 = d.Float64s()
		default:
			return fmt.Errorf("graph.Weights.Encode: %s has dtype %v: %w", name, d.Dtype(), ErrConfig)
		}
		recs = append(recs, r)
	}
	return gob.NewEncoder(out).Encode(recs)
}

// DecodeWeights reads Weights written by Encode. It returns an error
// wrapping ops.ErrValue for input that is not such an encoding.
func DecodeWeights(in io.Reader) (Weights, error) {
	var recs []weightRecord
	if err := gob.NewDecoder(in).Decode(&recs); err != nil {
		return nil, fmt.Errorf("graph.DecodeWeights: in: not Weights written by Encode (%v): %w", err, ops.ErrValue)
	}
	w := make(Weights, len(recs))
	for _, r := range recs {
		n := tensor.Shape(r.Shape).TotalSize()
		switch {
		case r.F32 != nil && len(r.F32) == n:
			w[r.Name] = tensor.New(tensor.WithShape(r.Shape...), tensor.WithBacking(r.F32))
		case r.F64 != nil && len(r.F64) == n:
			w[r.Name] = tensor.New(tensor.WithShape(r.Shape...), tensor.WithBacking(r.F64))
		default:
			return nil, fmt.Errorf("graph.DecodeWeights: in: %s: values do not fit shape %v: %w", r.Name, r.Shape, ops.ErrValue)
		}
	}
	return w, nil
}
