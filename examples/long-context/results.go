package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/actq/actq/internal/studyio"
)

// results is what results.json holds. A run's rows determine everything
// after them (summary, routing, gate), so that a merge of shards, which
// has only their rows, gives what one run gives.
type results struct {
	Config config `json:"config"`
	// Shard is the slice of the sweep this run ran (absent for the whole
	// sweep, and after a merge).
	Shard    *studyio.Shard `json:"shard,omitempty"`
	Tiers    []tierInfo     `json:"tiers"`
	Training []training     `json:"training"`
	Rows     []row          `json:"rows"`
	Summary  []summary      `json:"summary"`
	Routing  []route        `json:"routing"`
	Gate     gateResult     `json:"gate"`
}

// tierInfo describes a tier in results.json.
type tierInfo struct {
	Name   string `json:"name"`
	Family string `json:"family,omitempty"`
	Rank   int    `json:"rank"`
	Desc   string `json:"description"`
	Bits   bits   `json:"bits"`
}

// summary is one tier × cohort over the seeds: each figure the mean of
// the seeds' values ± its standard error (with one seed, the error within
// it where the figure has one: the KLD's over the tokens, the drop's
// paired over the tokens).
type summary struct {
	Tier     string        `json:"tier"`
	Length   int           `json:"length"`
	Accuracy estimate      `json:"accuracy"`
	Drop     estimate      `json:"drop_points"`
	KLD      estimate      `json:"kld"`
	KLDP99   estimate      `json:"kld_p99"`
	KLDMax   estimate      `json:"kld_max"`
	KLDRight estimate      `json:"kld_fp32_right"`
	Conf     estimate      `json:"confidence"`
	SameTop  estimate      `json:"same_top"`
	RMSDp    estimate      `json:"rms_dp"`
	NaNRate  estimate      `json:"nan_rate"`
	Sites    []siteSummary `json:"sites,omitempty"`
	// Pass: the mean drop is at most Gate.MaxDrop points, the mean KLD at
	// most Gate.MaxKLD, and no seed has a sequence with a non-finite
	// logit.
	Pass bool `json:"pass"`
}

// siteSummary is a kind of site over the seeds.
type siteSummary struct {
	Kind    string   `json:"kind"`
	Clipped estimate `json:"clipped_fraction"`
	Zeroed  estimate `json:"zeroed_fraction"`
	SQNR    estimate `json:"sqnr_db"`
}

// route is the routing table's row for a cohort: per family, the
// cheapest tier that passes, and the policy's tier with its verdict.
type route struct {
	Length   int               `json:"length"`
	Cheapest map[string]string `json:"cheapest"` // by family
	Policy   string            `json:"policy_tier"`
	Pass     bool              `json:"policy_pass"`
}

// gateResult lists the cohorts where the policy's tier fails.
type gateResult struct {
	Failures []string `json:"failures"`
}

func (g gateResult) String() string {
	if len(g.Failures) == 0 {
		return "gate: PASS, the policy's tier passes at every cohort"
	}
	return fmt.Sprintf("gate: FAIL, the policy's tier fails at %d cohort(s): %s", len(g.Failures), strings.Join(g.Failures, ", "))
}

// finish puts the rows in order and derives the summary, the routing
// table and the gate from them. The rows go through their JSON form
// first, as a merge's rows do (the infinities become NaN), so that a run
// and a merge of its shards summarise the same values.
func finish(cfg config, shard *studyio.Shard, trainings []training, rows []row) (results, error) {
	raw, err := json.Marshal(rows)
	if err != nil {
		return results{}, err
	}
	rows = nil
	if err := json.Unmarshal(raw, &rows); err != nil {
		return results{}, err
	}
	seedAt := func(s uint64) int { return slices.Index(cfg.Seeds, s) }
	tierAt := func(t string) int { return slices.Index(cfg.Tiers, t) }
	lengthAt := func(n int) int { return slices.Index(cfg.Lengths, n) }
	slices.SortStableFunc(rows, func(a, b row) int {
		if d := seedAt(a.Seed) - seedAt(b.Seed); d != 0 {
			return d
		}
		if d := tierAt(a.Tier) - tierAt(b.Tier); d != 0 {
			return d
		}
		return lengthAt(a.Length) - lengthAt(b.Length)
	})
	slices.SortStableFunc(trainings, func(a, b training) int { return seedAt(a.Seed) - seedAt(b.Seed) })
	res := results{Config: cfg, Shard: shard, Training: trainings, Rows: rows, Gate: gateResult{Failures: []string{}}}
	dh := cfg.Model.DModel / cfg.Model.Heads
	for _, name := range cfg.Tiers {
		t, err := tierByName(name, dh)
		if err != nil {
			return res, err
		}
		res.Tiers = append(res.Tiers, tierInfo{Name: t.Name, Family: t.Family, Rank: t.Rank, Desc: t.Desc, Bits: t.Bits})
	}
	byKey := map[[2]string][]row{}
	for _, r := range rows {
		k := [2]string{r.Tier, fmt.Sprint(r.Length)}
		byKey[k] = append(byKey[k], r)
	}
	pass := map[[2]string]bool{}
	for _, name := range cfg.Tiers {
		for _, n := range cfg.Lengths {
			k := [2]string{name, fmt.Sprint(n)}
			if rs := byKey[k]; len(rs) > 0 {
				sm := summarize(rs, cfg.Gate)
				pass[k] = sm.Pass
				res.Summary = append(res.Summary, sm)
			}
		}
	}
	for _, n := range cfg.Lengths {
		rt := route{Length: n, Cheapest: map[string]string{}, Policy: policyTier(cfg.Policy, n)}
		for _, f := range families {
			best, rank := "", math.MaxInt
			for _, ti := range res.Tiers {
				t, _ := tierByName(ti.Name, dh)
				if t.inLadder(f) && pass[[2]string{t.Name, fmt.Sprint(n)}] && t.Rank < rank {
					best, rank = t.Name, t.Rank
				}
			}
			rt.Cheapest[f] = best
		}
		p, evaluated := pass[[2]string{rt.Policy, fmt.Sprint(n)}]
		rt.Pass = p
		if evaluated && !p {
			res.Gate.Failures = append(res.Gate.Failures, fmt.Sprintf("%s at %d", rt.Policy, n))
		}
		res.Routing = append(res.Routing, rt)
	}
	return res, nil
}

// summarize gives a tier × cohort's figures over its seeds' rows.
func summarize(rs []row, g gateConfig) summary {
	get := func(f func(row) number) []float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = float64(f(r))
		}
		return v
	}
	est := func(f, se func(row) number) estimate {
		if se == nil {
			return studyio.AcrossSeeds(get(f), nil)
		}
		return studyio.AcrossSeeds(get(f), get(se))
	}
	s := summary{Tier: rs[0].Tier, Length: rs[0].Length,
		Accuracy: est(func(r row) number { return r.Accuracy }, nil),
		Drop:     est(func(r row) number { return r.Drop }, func(r row) number { return r.DropSE }),
		KLD:      est(func(r row) number { return r.KLD }, func(r row) number { return r.KLDSE }),
		KLDP99:   est(func(r row) number { return r.KLDP99 }, nil),
		KLDMax:   est(func(r row) number { return r.KLDMax }, nil),
		KLDRight: est(func(r row) number { return r.KLDRight }, nil),
		Conf:     est(func(r row) number { return r.Confidence }, nil),
		SameTop:  est(func(r row) number { return r.SameTop }, nil),
		RMSDp:    est(func(r row) number { return r.RMSDp }, nil),
		NaNRate:  est(func(r row) number { return r.NaNRate }, nil),
	}
	for k, site := range rs[0].Sites {
		at := func(f func(siteStats) number) func(row) number {
			return func(r row) number {
				if k < len(r.Sites) && r.Sites[k].Kind == site.Kind {
					return f(r.Sites[k])
				}
				return number(math.NaN())
			}
		}
		s.Sites = append(s.Sites, siteSummary{Kind: site.Kind,
			Clipped: est(at(func(x siteStats) number { return x.Clipped }), nil),
			Zeroed:  est(at(func(x siteStats) number { return x.Zeroed }), nil),
			SQNR:    est(at(func(x siteStats) number { return x.SQNR }), nil),
		})
	}
	if s.Tier == "fp32" {
		s.Pass = true
		return s
	}
	nanFree := true
	for _, r := range rs {
		nanFree = nanFree && r.NaNRate == 0
	}
	s.Pass = nanFree && float64(s.Drop.Mean) <= g.MaxDrop && float64(s.KLD.Mean) <= g.MaxKLD
	return s
}

// mergeShards reads the results.json of every shard of one sweep and
// returns the results the whole sweep gives. It returns an error if a
// file cannot be read, if the shards are of different sweeps (configs
// differ) or do not cover the sweep exactly once, or if two shards
// disagree on a seed's training.
func mergeShards(paths []string) (results, error) {
	var first *results
	var rows []row
	var trainings []training
	seen := map[int]string{}
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			return results{}, err
		}
		var r results
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			return results{}, fmt.Errorf("%s: %w", p, err)
		}
		if r.Shard == nil {
			return results{}, fmt.Errorf("%s: not the results of a shard (-shard)", p)
		}
		if first == nil {
			first = &r
		} else {
			a, _ := json.Marshal(first.Config)
			b, _ := json.Marshal(r.Config)
			if !bytes.Equal(a, b) {
				return results{}, fmt.Errorf("%s: a shard of another sweep (its config differs from %s's)", p, paths[0])
			}
			if r.Shard.Count != first.Shard.Count {
				return results{}, fmt.Errorf("%s: shard %v, where %s is %v", p, r.Shard, paths[0], first.Shard)
			}
		}
		if q, dup := seen[r.Shard.Index]; dup {
			return results{}, fmt.Errorf("%s and %s are both shard %v", q, p, r.Shard)
		}
		seen[r.Shard.Index] = p
		rows = append(rows, r.Rows...)
	train:
		for _, t := range r.Training {
			for _, u := range trainings {
				if u.Seed == t.Seed {
					a, _ := json.Marshal(u)
					b, _ := json.Marshal(t)
					if !bytes.Equal(a, b) {
						return results{}, fmt.Errorf("%s: seed %d trained differently in another shard", p, t.Seed)
					}
					continue train
				}
			}
			trainings = append(trainings, t)
		}
	}
	if first == nil {
		return results{}, errors.New("no shards to merge")
	}
	cfg := first.Config
	// The shards checked their config when they ran; an edited file gets
	// an error here rather than a crash in the report. Workers and Out are
	// not in results.json.
	check := cfg
	check.Workers, check.Out = 1, "-"
	if err := check.validate(); err != nil {
		return results{}, fmt.Errorf("%s: config: %w", paths[0], err)
	}
	if len(seen) != first.Shard.Count {
		var missing []string
		for i := 1; i <= first.Shard.Count; i++ {
			if _, ok := seen[i]; !ok {
				missing = append(missing, fmt.Sprintf("%d/%d", i, first.Shard.Count))
			}
		}
		return results{}, fmt.Errorf("shard(s) %s missing", strings.Join(missing, ", "))
	}
	// Every seed × tier × cohort once.
	have := map[string]int{}
	for _, r := range rows {
		have[fmt.Sprint(r.Seed, r.Tier, r.Length)]++
	}
	for _, s := range cfg.Seeds {
		for _, t := range cfg.Tiers {
			for _, n := range cfg.Lengths {
				if c := have[fmt.Sprint(s, t, n)]; c != 1 {
					return results{}, fmt.Errorf("seed %d, %s, %d tokens: %d rows in the shards, want 1", s, t, n, c)
				}
			}
		}
	}
	if len(trainings) != len(cfg.Seeds) {
		return results{}, fmt.Errorf("%d seeds' training in the shards, want %d", len(trainings), len(cfg.Seeds))
	}
	return finish(cfg, nil, trainings, rows)
}
