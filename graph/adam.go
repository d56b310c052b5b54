package graph

import (
	"fmt"
	"math"

	"github.com/actq/actq/internal/parallel"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Adam is the Adam optimiser (Kingma and Ba 2015) with β₁ = 0.9,
// β₂ = 0.999 and ε = 1e-8, as Gorgonia's AdamSolver computes it, operation
// for operation in the parameters' dtype, so the two give the same bits:
// at step t, for each element of each parameter w with gradient g,
//
//	g ← g + λ·w                        (L2, when λ > 0)
//	g ← clamp(g, −c, c)                (when the clip c > 0)
//	m ← (1−β₁)·g + β₁·m,  v ← (1−β₂)·g² + β₂·v
//	w ← w + (−η·m/(1−β₁ᵗ)) / (√(v/(1−β₂ᵗ)) + ε)
//
// and g is set to zero. Where AdamSolver clones each parameter four times
// per step and passes over it a dozen times, Adam makes one pass per
// parameter (split across goroutines when large) and allocates only its
// moment estimates, on the first step. It implements gorgonia.Solver; use
// one Adam for one model's parameters, from one goroutine.
type Adam struct {
	eta, clip, l2 float64
	iter          int
	moments       []any // per parameter: []float32 or []float64 holding m then v
}

// Step updates every parameter of model (weights with their gradients) and
// zeroes the gradients. The parameters must be the same, in the same order,
// at every step. It returns an error, and changes nothing, if a value or
// gradient is not a float tensor, the two differ in dtype or size, or the
// parameters differ from the first step's.
func (a *Adam) Step(model []gorgonia.ValueGrad) error {
	const fn = "graph.Adam.Step"
	type param struct{ w, g *tensor.Dense }
	ps := make([]param, len(model))
	if a.moments != nil && len(a.moments) != len(model) {
		return fmt.Errorf("%s: %d parameters, %d at the first step: %w", fn, len(model), len(a.moments), ErrConfig)
	}
	for i, n := range model {
		gv, err := n.Grad()
		if err != nil {
			return fmt.Errorf("%s: parameter %d: %w", fn, i, err)
		}
		w, ok1 := n.Value().(*tensor.Dense)
		g, ok2 := gv.(*tensor.Dense)
		if !ok1 || !ok2 || w.Dtype() != g.Dtype() || w.Size() != g.Size() || w.RequiresIterator() || g.RequiresIterator() ||
			(w.Dtype() != tensor.Float32 && w.Dtype() != tensor.Float64) {
			return fmt.Errorf("%s: parameter %d: value %T and gradient %T, want contiguous float tensors of one dtype and size: %w",
				fn, i, n.Value(), gv, ErrConfig)
		}
		if a.moments != nil && !momentsFit(a.moments[i], w) {
			return fmt.Errorf("%s: parameter %d (%v %v) differs from the first step's: %w", fn, i, w.Dtype(), w.Shape(), ErrConfig)
		}
		ps[i] = param{w, g}
	}
	if a.moments == nil {
		a.moments = make([]any, len(ps))
		for i, p := range ps {
			if p.w.Dtype() == tensor.Float32 {
				a.moments[i] = make([]float32, 2*p.w.Size())
			} else {
				a.moments[i] = make([]float64, 2*p.w.Size())
			}
		}
	}
	a.iter++
	c1 := 1 - math.Pow(0.9, float64(a.iter))
	c2 := 1 - math.Pow(0.999, float64(a.iter))
	for i, p := range ps {
		switch mv := a.moments[i].(type) {
		case []float32:
			adamStep(p.w.Float32s(), p.g.Float32s(), mv, newAdamConsts[float32](a, c1, c2))
		case []float64:
			adamStep(p.w.Float64s(), p.g.Float64s(), mv, newAdamConsts[float64](a, c1, c2))
		}
	}
	return nil
}

// momentsFit reports whether moments (m then v) fit the parameter w.
func momentsFit(moments any, w *tensor.Dense) bool {
	switch mv := moments.(type) {
	case []float32:
		return w.Dtype() == tensor.Float32 && len(mv) == 2*w.Size()
	case []float64:
		return w.Dtype() == tensor.Float64 && len(mv) == 2*w.Size()
	}
	return false
}

// adamConsts are one step's constants in the parameters' dtype, rounded as
// AdamSolver rounds them.
type adamConsts[T float32 | float64] struct {
	l2, clip                  T
	useL2, useClip            bool
	beta1, beta2, omb1, omb2  T
	eps, negEta, corr1, corr2 T
}

func newAdamConsts[T float32 | float64](a *Adam, c1, c2 float64) adamConsts[T] {
	return adamConsts[T]{
		l2: T(a.l2), useL2: a.l2 > 0, clip: T(a.clip), useClip: a.clip > 0,
		beta1: T(0.9), beta2: T(0.999), omb1: T(1) - T(0.9), omb2: T(1) - T(0.999),
		eps: T(1e-8), negEta: -T(a.eta), corr1: T(1) / T(c1), corr2: T(1) / T(c2),
	}
}

// adamGrain is the fewest elements worth handing to another goroutine.
const adamGrain = 1 << 14

// adamStep updates w with its gradient g and moments mv (m then v) and
// zeroes g. Every product is rounded before it is added (the conversions
// keep the compiler from fusing them), as in AdamSolver.
func adamStep[T float32 | float64](w, g, mv []T, k adamConsts[T]) {
	n := len(w)
	m, v := mv[:n], mv[n:]
	_ = parallel.For(n, adamGrain, func(lo, hi int) error {
		for i := lo; i < hi; i++ {
			gi := g[i]
			if k.useL2 {
				gi += T(w[i] * k.l2)
			}
			if k.useClip {
				if gi < -k.clip || math.IsInf(float64(gi), -1) {
					gi = -k.clip
				} else if gi > k.clip || math.IsInf(float64(gi), 1) {
					gi = k.clip
				}
			}
			mi := T(gi*k.omb1) + T(m[i]*k.beta1)
			vi := T(T(gi*gi)*k.omb2) + T(v[i]*k.beta2)
			m[i], v[i] = mi, vi
			den := T(math.Sqrt(float64(T(vi*k.corr2)))) + k.eps
			w[i] += T(T(mi*k.corr1)*k.negEta) / den
			g[i] = 0
		}
		return nil
	})
}
