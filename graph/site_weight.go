package graph

import (
	"fmt"

	"github.com/actq/actq/quantize"
	"gorgonia.org/gorgonia"
)

// observeWeight returns spec with the scales and zero points of its dynamic
// rule for the value of the weight node w, in the (out, in) layout (w's own
// if outIn, else its transpose).
func observeWeight(spec quantize.Spec, w *gorgonia.Node, outIn bool) (quantize.Spec, error) {
	obs, err := quantize.NewObserver(spec, quantize.ObserverConfig{})
	if err != nil {
		return spec, err
	}
	if _, err := onOwnGraph(w, func(x *gorgonia.Node) (*gorgonia.Node, error) {
		return inWeightLayout(spec, x, outIn, func(t *gorgonia.Node) (*gorgonia.Node, error) {
			return quantize.FakeQuant(t, spec, quantize.WithObserver(obs))
		})
	}); err != nil {
		return spec, err
	}
	return obs.Spec()
}

// quantizeWeight fake-quantizes the weight node w (in, out) as the (out,
// in) matrix (or passes it through). A builder made for evaluation
// (prequant) does it once, now, with a learnable site's current scales, and
// stores the result in w, or for a tied head (whose w the embedding lookup
// reads too) in a new input node named after the site; otherwise it adds
// the nodes to the graph.
func (b *builder) quantizeWeight(s *Site, w *gorgonia.Node) (*gorgonia.Node, error) {
	if b.q.prequant {
		v, err := onOwnGraph(w, func(x *gorgonia.Node) (*gorgonia.Node, error) {
			var scale *gorgonia.Node
			if s.scale != nil {
				c, err := gorgonia.CloneValue(s.scale.Value())
				if err != nil {
					return nil, err
				}
				scale = gorgonia.NodeFromAny(x.Graph(), c, gorgonia.WithName(s.scale.Name()))
			}
			return weightNodes(s, x, scale)
		})
		if err != nil {
			return nil, fmt.Errorf("site %q: %w", s.Name, err)
		}
		if s.tied {
			return gorgonia.NodeFromAny(w.Graph(), v, gorgonia.WithName(s.Name)), nil
		}
		if err := gorgonia.Let(w, v); err != nil {
			return nil, fmt.Errorf("site %q: %w", s.Name, err)
		}
		return w, nil
	}
	y, err := weightNodes(s, w, s.scale)
	if err != nil {
		return nil, fmt.Errorf("site %q: %w", s.Name, err)
	}
	return y, nil
}

// weightNodes adds the site's quantization of w in the (out, in) layout
// (see inWeightLayout), with the scales from the node scale if it is not
// nil.
func weightNodes(s *Site, w, scale *gorgonia.Node) (*gorgonia.Node, error) {
	if s.Quant.Passthrough {
		return s.passthrough(w)
	}
	return inWeightLayout(s.Quant.Spec, w, s.tied, func(t *gorgonia.Node) (*gorgonia.Node, error) { return s.fakeQuant(t, scale) })
}

// inWeightLayout applies f to w in the (out, in) layout: wᵀ, f, transposed
// back. A per-tensor spec, or a w already stored (out, in) (outIn), needs
// no transposes.
func inWeightLayout(spec quantize.Spec, w *gorgonia.Node, outIn bool, f func(*gorgonia.Node) (*gorgonia.Node, error)) (*gorgonia.Node, error) {
	if outIn || spec.Granularity == quantize.PerTensor || w.Shape().Dims() != 2 {
		return f(w)
	}
	t, err := gorgonia.Transpose(w)
	if err != nil {
		return nil, err
	}
	if t, err = f(t); err != nil {
		return nil, err
	}
	return gorgonia.Transpose(t)
}

// onOwnGraph returns the value of the node f makes from a copy of w, run
// once on a graph of its own.
func onOwnGraph(w *gorgonia.Node, f func(x *gorgonia.Node) (*gorgonia.Node, error)) (gorgonia.Value, error) {
	g := gorgonia.NewGraph()
	v, err := gorgonia.CloneValue(w.Value())
	if err != nil {
		return nil, err
	}
	x := gorgonia.NodeFromAny(g, v, gorgonia.WithName(w.Name()))
	y, err := f(x)
	if err != nil {
		return nil, err
	}
	var out gorgonia.Value
	gorgonia.Read(y, &out)
	m := gorgonia.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		return nil, err
	}
	return out, nil
}
