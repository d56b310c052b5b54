package main

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/actq/actq/internal/studyio"

	"github.com/actq/actq/graph"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// moduleConfig describes the second part of the study: the full causal
// graph.Attention module, float32 under each precision tier, against the
// same module in float64.
type moduleConfig struct {
	Lengths []int    `json:"lengths"`
	DModel  int      `json:"d_model"`
	Heads   int      `json:"heads"`
	Tiers   []string `json:"tiers"`
	// LogitScale multiplies Wq so that the attention logits have a spread
	// like part 1's (the uniform initialisation alone gives logits of
	// standard deviation about 0.3, nearly uniform attention).
	LogitScale float64 `json:"logit_scale"`
}

// moduleResult is one tier at one length.
type moduleResult struct {
	Tier      string         `json:"tier"`
	Length    int            `json:"length"`
	RelError  studyio.Number `json:"output_rel_error"` // ‖O − O₆₄‖ / ‖O₆₄‖
	MaxAbsErr studyio.Number `json:"max_abs_error"`
	NaNFrac   studyio.Number `json:"nan_fraction"` // of output elements
	// At the attention-probabilities site (when the tier quantizes it):
	ProbsZeroed   studyio.Number `json:"probs_zeroed_fraction"` // probabilities that became exactly 0
	ProbsSQNR     studyio.Number `json:"probs_sqnr_db"`
	ScoresSQNR    studyio.Number `json:"scores_sqnr_db"`
	ScoresClipped studyio.Number `json:"scores_clipped_fraction"`
}

// moduleWeights returns the module's float64 weights: graph's seeded
// initialisation with Wq scaled by logitScale.
func moduleWeights(cfg moduleConfig, seed uint64) (graph.Weights, error) {
	g := gorgonia.NewGraph()
	a, err := graph.NewAttention(g, "attn", graph.AttentionConfig{DModel: cfg.DModel, Heads: cfg.Heads, Causal: true, Dtype: tensor.Float64}, graph.WithSeed(seed))
	if err != nil {
		return nil, err
	}
	w, err := graph.Collect(a.Params()...)
	if err != nil {
		return nil, err
	}
	for i, v := range w["attn.Wq"].Float64s() {
		w["attn.Wq"].Float64s()[i] = v * cfg.LogitScale
	}
	return w, nil
}

// asFloat32 returns a copy of w converted to float32.
func asFloat32(w graph.Weights) graph.Weights {
	out := graph.Weights{}
	for name, t := range w {
		src := t.Float64s()
		dst := make([]float32, len(src))
		for i, v := range src {
			dst[i] = float32(v)
		}
		out[name] = tensor.New(tensor.WithShape(t.Shape().Clone()...), tensor.WithBacking(dst))
	}
	return out
}

// runModule builds the causal attention module in dtype dt with weights w
// under plan (nil: none), applies it to x (1, length, DModel) and returns
// the output (as float64) and the module's quantization sites.
func runModule(cfg moduleConfig, w graph.Weights, plan *graph.Plan, x []float64, length int, dt tensor.Dtype) ([]float64, []*graph.Site, error) {
	g := gorgonia.NewGraph()
	a, err := graph.NewAttention(g, "attn", graph.AttentionConfig{DModel: cfg.DModel, Heads: cfg.Heads, Causal: true, Dtype: dt},
		graph.WithWeights(w), graph.WithPlan(plan))
	if err != nil {
		return nil, nil, err
	}
	var xv *tensor.Dense
	if dt == tensor.Float32 {
		x32 := make([]float32, len(x))
		for i, v := range x {
			x32[i] = float32(v)
		}
		xv = tensor.New(tensor.WithShape(1, length, cfg.DModel), tensor.WithBacking(x32))
	} else {
		xv = tensor.New(tensor.WithShape(1, length, cfg.DModel), tensor.WithBacking(append([]float64(nil), x...)))
	}
	xn := gorgonia.NewTensor(g, dt, 3, gorgonia.WithShape(1, length, cfg.DModel), gorgonia.WithName("x"), gorgonia.WithValue(xv))
	out, err := a.Forward(xn)
	if err != nil {
		return nil, nil, err
	}
	m := gorgonia.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		return nil, nil, err
	}
	var o []float64
	switch d := out.Value().Data().(type) {
	case []float32:
		o = make([]float64, len(d))
		for i, v := range d {
			o[i] = float64(v)
		}
	case []float64:
		o = append(o, d...)
	default:
		return nil, nil, fmt.Errorf("attention output holds %T", d)
	}
	return o, a.Sites(), nil
}

// runModuleStudy evaluates every tier at one length.
func runModuleStudy(cfg moduleConfig, w64 graph.Weights, length int, rng *rand.Rand) ([]moduleResult, error) {
	x := normals(rng, length*cfg.DModel)
	ref, _, err := runModule(cfg, w64, nil, x, length, tensor.Float64)
	if err != nil {
		return nil, fmt.Errorf("float64 reference: %w", err)
	}
	w32 := asFloat32(w64)
	var out []moduleResult
	for _, name := range cfg.Tiers {
		tier, err := graph.TierByName(name)
		if err != nil {
			return nil, err
		}
		o, sites, err := runModule(cfg, w32, tier.Plan(length), x, length, tensor.Float32)
		if err != nil {
			return nil, fmt.Errorf("tier %s: %w", name, err)
		}
		r := moduleResult{Tier: name, Length: length, ProbsZeroed: nan(), ProbsSQNR: nan(), ScoresSQNR: nan(), ScoresClipped: nan()}
		var num, den, maxAbs float64
		nans := 0
		for i, v := range o {
			if math.IsNaN(v) {
				nans++
				continue
			}
			d := v - ref[i]
			num += d * d
			den += ref[i] * ref[i]
			maxAbs = math.Max(maxAbs, math.Abs(d))
		}
		r.RelError, r.MaxAbsErr, r.NaNFrac = studyio.Number(math.Sqrt(num/den)), studyio.Number(maxAbs), studyio.Number(float64(nans)/float64(len(o)))
		for _, s := range sites {
			st := s.Stats()
			switch s.Kind {
			case graph.SiteAttnProbs:
				r.ProbsZeroed, r.ProbsSQNR = studyio.Number(st.ZeroedFraction()), studyio.Number(st.SQNR())
			case graph.SiteAttnScores:
				r.ScoresClipped, r.ScoresSQNR = studyio.Number(st.ClippedFraction()), studyio.Number(st.SQNR())
			}
		}
		out = append(out, r)
	}
	return out, nil
}
