package main

import (
	"math"

	"github.com/actq/actq/internal/studyio"
)

type estimate = studyio.Estimate

// summary is one activation × tier × cohort over the seeds: each figure
// the mean of the seeds' values ± its standard error (with one seed, the
// drop's error paired over the tokens; the others have none).
type summary struct {
	Activation string         `json:"activation"`
	Tier       string         `json:"tier"`
	Cohort     string         `json:"cohort"`
	Accuracy   estimate       `json:"token_accuracy"`
	SeqAcc     estimate       `json:"sequence_accuracy"`
	Loss       estimate       `json:"loss"`
	Drop       estimate       `json:"drop_points"`
	Hidden     *hiddenSummary `json:"ffn_hidden,omitempty"` // nil without quantization (fp32)
}

// hiddenSummary is hiddenStats over the seeds.
type hiddenSummary struct {
	Clipped   estimate       `json:"clipped_fraction"`
	Zeroed    estimate       `json:"zeroed_fraction"`
	SQNR      estimate       `json:"sqnr_db"`
	WorstSQNR estimate       `json:"worst_layer_sqnr_db"`
	Layers    []layerSummary `json:"layers"`
}

// layerSummary is layerStats over the seeds.
type layerSummary struct {
	Site       string    `json:"site"`
	Clipped    estimate  `json:"clipped_fraction"`
	Zeroed     estimate  `json:"zeroed_fraction"`
	SQNR       estimate  `json:"sqnr_db"`
	RangeRatio *estimate `json:"range_ratio,omitempty"`
}

// summarizeSeeds groups rows by activation, tier and cohort, in the order each
// group first appears, and summarises each group over its seeds.
func summarizeSeeds(rows []row) []summary {
	type key struct{ act, tier, cohort string }
	var order []key
	groups := map[key][]row{}
	for _, r := range rows {
		k := key{r.Activation, r.Tier, r.Cohort}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	out := make([]summary, len(order))
	for i, k := range order {
		out[i] = summarizeGroup(groups[k])
	}
	return out
}

// summarizeGroup summarises the rows of one activation × tier × cohort,
// one per seed.
func summarizeGroup(rs []row) summary {
	est := func(f func(row) number, se func(row) number) estimate {
		v := make([]float64, len(rs))
		var w []float64
		for i, r := range rs {
			v[i] = float64(f(r))
			if se != nil {
				w = append(w, float64(se(r)))
			}
		}
		return studyio.AcrossSeeds(v, w)
	}
	s := summary{Activation: rs[0].Activation, Tier: rs[0].Tier, Cohort: rs[0].Cohort,
		Accuracy: est(func(r row) number { return r.Accuracy }, nil),
		SeqAcc:   est(func(r row) number { return r.SeqAcc }, nil),
		Loss:     est(func(r row) number { return r.Loss }, nil),
		Drop:     est(func(r row) number { return r.Drop }, func(r row) number { return r.DropSE }),
	}
	if rs[0].Hidden == nil {
		return s
	}
	hid := func(f func(*hiddenStats) number) estimate {
		return est(func(r row) number {
			if r.Hidden == nil {
				return number(math.NaN())
			}
			return f(r.Hidden)
		}, nil)
	}
	h := &hiddenSummary{
		Clipped:   hid(func(h *hiddenStats) number { return h.Clipped }),
		Zeroed:    hid(func(h *hiddenStats) number { return h.Zeroed }),
		SQNR:      hid(func(h *hiddenStats) number { return h.SQNR }),
		WorstSQNR: hid(func(h *hiddenStats) number { return h.WorstSQNR }),
	}
	for l, ls := range rs[0].Hidden.Layers {
		layer := func(f func(layerStats) number) estimate {
			return hid(func(h *hiddenStats) number {
				if l >= len(h.Layers) {
					return number(math.NaN())
				}
				return f(h.Layers[l])
			})
		}
		sum := layerSummary{Site: ls.Site,
			Clipped: layer(func(x layerStats) number { return x.Clipped }),
			Zeroed:  layer(func(x layerStats) number { return x.Zeroed }),
			SQNR:    layer(func(x layerStats) number { return x.SQNR }),
		}
		if ls.RangeRatio != nil {
			rr := layer(func(x layerStats) number {
				if x.RangeRatio == nil {
					return number(math.NaN())
				}
				return *x.RangeRatio
			})
			sum.RangeRatio = &rr
		}
		h.Layers = append(h.Layers, sum)
	}
	s.Hidden = h
	return s
}

// perSeed returns the estimate over the seeds of f(seed) (NaN where f has
// no value for a seed), for figures derived from several rows of one seed.
func perSeed(seeds []uint64, f func(seed uint64) float64) estimate {
	v := make([]float64, len(seeds))
	for i, s := range seeds {
		v[i] = f(s)
	}
	return studyio.AcrossSeeds(v, nil)
}
