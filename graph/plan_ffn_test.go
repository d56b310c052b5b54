package graph

import (
	"math"
	"slices"
	"testing"

	"github.com/actq/actq/internal/numtest"
	"github.com/actq/actq/quantize"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// ffnRun runs an FFN of the golden case c under plan (nil: none) with
// gradients on the tape machine, and returns the output and gradients and
// the FFN's sites.
func ffnRun(t *testing.T, plan *Plan, name string) (runResult, []*Site) {
	t.Helper()
	var c *numtest.Case
	for _, cc := range goldenCases(t, "ffn") {
		if cc.Name == name {
			c = &cc
		}
	}
	if c == nil {
		t.Fatalf("no golden case %s", name)
	}
	cfg := ffnCaseConfig(t, c)
	dt := cfg.Dtype
	n, d := c.Shape[0], c.Shape[1]
	w := goldenWeights(t, c, dt, "ffn.", ffnShapes(d, cfg.DHidden))
	x := goldenDense(t, c, "x", dt, n, d)
	dy := goldenDense(t, c, "dy", dt, n, d)
	var sites []*Site
	res, err := runGraph(tapeGrad, dt, dy, func(g *gorgonia.ExprGraph) (map[string]*gorgonia.Node, *gorgonia.Node, error) {
		opts := []Option{WithWeights(w)}
		if plan != nil {
			opts = append(opts, WithPlan(plan))
		}
		f, err := NewFFN(g, "ffn", cfg, opts...)
		if err != nil {
			return nil, nil, err
		}
		xn := gorgonia.NewMatrix(g, dt, gorgonia.WithShape(n, d), gorgonia.WithName("x"), gorgonia.WithValue(x.Clone()))
		y, err := f.Forward(xn)
		wrt := map[string]*gorgonia.Node{"x": xn}
		for _, p := range f.Params() {
			wrt[p.Name()] = p
		}
		sites = f.Sites()
		return wrt, y, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return res, sites
}

// TestFFNPassthroughPlan checks that Passthrough sites change neither the
// FFN's output nor any gradient, and count every element.
func TestFFNPassthroughPlan(t *testing.T) {
	for _, name := range []string{"ffn/silu/gated/float32", "ffn/relu/plain/float64"} {
		want, _ := ffnRun(t, nil, name)
		got, sites := ffnRun(t, PassthroughPlan(), name)
		for k, v := range want {
			if !slices.Equal(got[k], v) {
				t.Errorf("%s: %s changed under the passthrough plan", name, k)
			}
		}
		nw := 3
		if name == "ffn/relu/plain/float64" {
			nw = 2
		}
		if len(sites) != nw+2 {
			t.Errorf("%s: %d sites, want %d", name, len(sites), nw+2)
		}
		for _, s := range sites {
			// The graph ran twice (runGraph checks a second run).
			if st := s.Stats(); st.Runs != 2 || st.Elements == 0 || st.Noise != 0 {
				t.Errorf("%s: site %s: %v", name, s.Name, st)
			}
		}
	}
}

// TestFFNInt8Plan checks that int8 weights (per output channel) and
// activations (per tensor, dynamic) change the FFN's output by about the
// quantization noise its sites report, not more: each site's relative
// noise power is 10^(−SQNR/10); independent noises add, so the output's
// relative RMS change should be near √Σ 10^(−SQNR/10) (the layer may
// amplify or damp it; a factor 2 either way is allowed).
func TestFFNInt8Plan(t *testing.T) {
	q := &Quant{Spec: quantize.Spec{Format: quantize.Int8, Symmetric: true}}
	plan := &Plan{Weights: &Quant{Spec: quantize.Spec{Format: quantize.Int8, Granularity: quantize.PerChannel, Symmetric: true}},
		FFNInput: q, FFNHidden: q}
	for _, name := range []string{"ffn/gelu/plain/float32", "ffn/silu/gated/float32", "ffn/relu/plain/float64", "ffn/gelu_tanh/gated/float64"} {
		want, _ := ffnRun(t, nil, name)
		got, sites := ffnRun(t, plan, name)
		var num, den float64
		for i := range want["y"] {
			num += (got["y"][i] - want["y"][i]) * (got["y"][i] - want["y"][i])
			den += want["y"][i] * want["y"][i]
		}
		rel := math.Sqrt(num / den)
		noise := 0.0
		for _, s := range sites {
			st := s.Stats()
			if st.SQNR() < 30 {
				t.Errorf("%s: site %s: %v, want SQNR ≥ 30 dB for int8", name, s.Name, st)
			}
			noise += math.Pow(10, -st.SQNR()/10)
		}
		expect := math.Sqrt(noise)
		t.Logf("%s: relative RMS change %.3g, from the sites' SQNRs %.3g", name, rel, expect)
		if rel < expect/2 || rel > 2*expect {
			t.Errorf("%s: relative RMS change %.3g, want within a factor 2 of %.3g", name, rel, expect)
		}
	}
}

// TestWeightLayout checks that weight specs address the (out, in) matrix:
// per channel, one scale per output feature (a column of W); per group,
// groups of consecutive input features (rows of W) within a column.
func TestWeightLayout(t *testing.T) {
	const in, out, group = 8, 3, 4
	for _, spec := range []quantize.Spec{
		{Format: quantize.Int4, Granularity: quantize.PerChannel, Axis: 0, Symmetric: true},
		{Format: quantize.Int4, Granularity: quantize.PerGroup, GroupSize: group, Symmetric: true},
	} {
		g := gorgonia.NewGraph()
		l, err := NewLinear(g, "lin", in, out, false, tensor.Float32, WithSeed(3), WithPlan(&Plan{Weights: &Quant{Spec: spec}}), withPrequantizedWeights())
		if err != nil {
			t.Fatal(err)
		}
		orig := float64sOf(l.W.Value())
		x := gorgonia.NewMatrix(g, l.b.dt, gorgonia.WithShape(2, in), gorgonia.WithName("x"))
		if _, err := l.Forward(x); err != nil {
			t.Fatal(err)
		}
		q := float64sOf(l.W.Value())
		size := in
		if spec.Granularity == quantize.PerGroup {
			size = group
		}
		for j := range out {
			for g0 := 0; g0 < in; g0 += size {
				amax := 0.0
				for i := g0; i < g0+size; i++ {
					amax = math.Max(amax, math.Abs(orig[i*out+j]))
				}
				s := float32(amax / 7)
				for i := g0; i < g0+size; i++ {
					code := float32(q[i*out+j]) / s
					if math.Abs(float64(code-float32(math.Round(float64(code))))) > 1e-4 || math.Abs(float64(code)) > 7.0001 {
						t.Errorf("%v: W[%d,%d] = %g is not a code of scale %g", spec.Granularity, i, j, q[i*out+j], s)
					}
				}
			}
		}
		if st := l.Sites()[0].Stats(); st.Runs != 1 || st.Elements != in*out {
			t.Errorf("weight site stats %v", st)
		}
	}
}
