package main

import (
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/actq/actq/internal/studyio"
)

// sites are the kinds of quantization site the report shows, in order.
var reportSites = []string{"weight", "ffn_hidden", "attn_scores", "attn_probs", "attn_keys", "attn_values"}

// printReport writes the report of res.
func printReport(w *studyio.Report, res results) {
	c := res.Config
	m := c.Model
	back := fmt.Sprintf("%d to %d tokens back", c.Lengths[0]-c.Needle-1, c.Lengths[len(c.Lengths)-1]-c.Needle-1)
	if c.Gap >= 0 {
		back = fmt.Sprintf("%d tokens back in every cohort (-gap %d: the rest of the filler before the needle)", c.Needle+c.Gap, c.Gap)
	}
	w.Printf("Long contexts × precision: a model trained on sequences of at most %d tokens copies a needle of %d tokens seen once, %s\n\n",
		c.Stages[len(c.Stages)-1].Window, c.Needle, back)
	params := "?"
	if len(res.Training) > 0 {
		params = strconv.Itoa(res.Training[0].Params)
	}
	w.Printf("model: d_model %d, %d heads, %d key/value head(s), SwiGLU %d, %d layers, RMSNorm, no biases, RoPE θ = %g (%s parameters)\n",
		m.DModel, m.Heads, m.KVHeads, m.DHidden, m.Layers, m.RoPETheta, params)
	w.Printf("curriculum (window:needle:batch:steps): %s, Adam at %g\n", joinStages(c.Stages), c.LearnRate)
	w.Printf("seeds: %s; %d sequences per cohort, %d answers each\n", studyio.JoinSeeds(c.Seeds), c.Seqs, c.Needle-1)
	if res.Shard != nil {
		w.Printf("shard %v of the sweep: merge the shards' results.json with -merge for the whole\n", res.Shard)
	}
	w.Printf("\nEvery figure is over the answer positions (the last needle−1 tokens), against fp32 on the same sequences.\n")
	if len(c.Seeds) > 1 {
		w.Printf("± is the standard error of the mean over the %d seeds.\n", len(c.Seeds))
	} else {
		w.Printf("± is the standard error within the one seed, over its tokens (KLD; the drop paired over the same tokens).\n")
	}
	w.Printf("\ntiers (weights/activations/keys/values bits, attention):\n")
	for _, t := range res.Tiers {
		b := t.Bits
		w.Item(18, t.Name, fmt.Sprintf("%s [%d/%d/%d/%d, %s]", t.Desc, b.Weights, b.Acts, b.Keys, b.Values, b.Attention))
	}

	if len(res.Training) > 0 {
		w.Printf("\nTraining (last tenth of the last stage)\n")
		t := studyio.Table{Header: []string{"seed", "parameters", "loss", "accuracy"}}
		for _, tr := range res.Training {
			t.Add(strconv.FormatUint(tr.Seed, 10), strconv.Itoa(tr.Params), fmt.Sprintf("%.4f", float64(tr.Loss)), tr.Accuracy.Pct(2))
		}
		w.Table(&t)
	}
	if len(res.Summary) == 0 {
		return
	}
	lengths := c.Lengths
	byKey := map[string]summary{}
	for _, s := range res.Summary {
		byKey[s.Tier+"@"+strconv.Itoa(s.Length)] = s
	}
	matrix := func(title string, withFP32 bool, cell func(summary) string) {
		w.Printf("\n%s\n", title)
		header := []string{"tier"}
		for _, n := range lengths {
			header = append(header, strconv.Itoa(n))
		}
		t := studyio.Table{Header: header}
		for _, ti := range res.Tiers {
			if ti.Name == "fp32" && !withFP32 {
				continue
			}
			r := []string{ti.Name}
			filled := false
			for _, n := range lengths {
				c := ""
				if s, ok := byKey[ti.Name+"@"+strconv.Itoa(n)]; ok {
					c = cell(s)
				}
				filled = filled || c != ""
				r = append(r, c)
			}
			if filled {
				t.Add(r...)
			}
		}
		w.Table(&t)
	}
	pct := func(e estimate) string { return e.Format(func(n number) string { return n.Pct(1) }) }
	matrix("fp32 by length (the model's own length generalisation): accuracy, and the mean probability of the right token", true, func(s summary) string {
		if s.Tier != "fp32" {
			return ""
		}
		return pct(s.Accuracy) + ", p " + s.Conf.Mean.Pct(1)
	})
	matrix("Mean KLD against fp32 by length", false, func(s summary) string { return s.KLD.Format(number.Sci) })
	matrix("Same top token as fp32 by length", false, func(s summary) string { return pct(s.SameTop) })
	matrix("Accuracy drop against fp32 by length, points", false, func(s summary) string { return s.Drop.Format(number.Points) })
	matrix("Sequences with a non-finite logit by length", false, func(s summary) string { return pct(s.NaNRate) })

	for _, n := range lengths {
		w.Printf("\n%d tokens\n", n)
		t := studyio.Table{Header: []string{"tier", "accuracy", "drop", "KLD", "KLD p99", "KLD max", "KLD fp32 right", "same top", "RMS Δp", "NaN seqs", "pass"}}
		for _, ti := range res.Tiers {
			s, ok := byKey[ti.Name+"@"+strconv.Itoa(n)]
			if !ok {
				continue
			}
			verdict := "yes"
			if !s.Pass {
				verdict = "no"
			}
			if ti.Name == "fp32" {
				t.Add(ti.Name, pct(s.Accuracy), "—", "—", "—", "—", "—", "—", "—", "—", "—")
				continue
			}
			t.Add(ti.Name, pct(s.Accuracy), s.Drop.Format(number.Points), s.KLD.Format(number.Sci), s.KLDP99.Mean.Sci(), s.KLDMax.Mean.Sci(),
				s.KLDRight.Mean.Sci(), pct(s.SameTop), s.RMSDp.Mean.Pct(2), s.NaNRate.Mean.Pct(1), verdict)
		}
		w.Table(&t)
	}

	first, last := lengths[0], lengths[len(lengths)-1]
	w.Printf("\nQuantization sites at %d and %d tokens (every layer's sites of a kind together)\n", first, last)
	t := studyio.Table{Header: []string{"tier", "site", "clipped " + strconv.Itoa(first), "clipped " + strconv.Itoa(last),
		"zeroed " + strconv.Itoa(first), "zeroed " + strconv.Itoa(last), "SQNR dB " + strconv.Itoa(first), "SQNR dB " + strconv.Itoa(last)}, Left: 2}
	for _, ti := range res.Tiers {
		a, okA := byKey[ti.Name+"@"+strconv.Itoa(first)]
		b, okB := byKey[ti.Name+"@"+strconv.Itoa(last)]
		if !okA || !okB {
			continue
		}
		for _, kind := range reportSites {
			sa, sb, ok := siteOf(a, kind), siteOf(b, kind), true
			if sa == nil || sb == nil {
				ok = false
			}
			if ok {
				t.Add(ti.Name, kind, sa.Clipped.Mean.SmallPct(), sb.Clipped.Mean.SmallPct(), sa.Zeroed.Mean.SmallPct(), sb.Zeroed.Mean.SmallPct(),
					sa.SQNR.Mean.DB(), sb.SQNR.Mean.DB())
			}
		}
	}
	w.Table(&t)

	w.Printf("\nRouting: the cheapest tier of each family that passes the gate (mean drop ≤ %g points, mean KLD ≤ %g, no non-finite logit), and the policy %s\n",
		c.Gate.MaxDrop, c.Gate.MaxKLD, joinPolicy(c.Policy))
	w.Printf("cost order, cheapest first: %s\n", ladders(res.Tiers))
	rt := studyio.Table{Header: []string{"length", "model", "KV cache", "attention", "policy", "policy passes"}, Left: 6}
	for _, r := range res.Routing {
		verdict := "yes"
		if !r.Pass {
			verdict = "no"
		}
		if _, ok := byKey[r.Policy+"@"+strconv.Itoa(r.Length)]; !ok {
			verdict = "not run"
		}
		rt.Add(strconv.Itoa(r.Length), orNone(r.Cheapest[familyModel]), orNone(r.Cheapest[familyKV]), orNone(r.Cheapest[familyAttn]), r.Policy, verdict)
	}
	w.Table(&rt)
	w.Printf("\n%v\n", res.Gate)
}

func orNone(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// siteOf returns s's summary of the site kind, nil if it has none.
func siteOf(s summary, kind string) *siteSummary {
	for i := range s.Sites {
		if s.Sites[i].Kind == kind {
			return &s.Sites[i]
		}
	}
	return nil
}

// ladders writes each family's ladder.
func ladders(ts []tierInfo) string {
	var parts []string
	for _, f := range families {
		var names []string
		for rank := 0; rank <= 100; rank++ {
			for _, t := range ts {
				if t.Family == f && t.Rank == rank {
					names = append(names, t.Name)
				}
			}
		}
		parts = append(parts, f+": "+strings.Join(append(names, "fp32"), " < "))
	}
	return strings.Join(parts, "; ")
}

// plot draws, per family, KLD and same-top against length, and the NaN
// rate of the tiers that have any (the attention family if none has).
func plot(dir string, res results) error {
	lengths := make([]float64, len(res.Config.Lengths))
	for i, n := range res.Config.Lengths {
		lengths[i] = float64(n)
	}
	series := func(tiers []string, value func(summary) float64) []studyio.Series {
		var out []studyio.Series
		for _, name := range tiers {
			s := studyio.Series{Name: name}
			for _, sm := range res.Summary {
				if sm.Tier == name {
					s.X = append(s.X, float64(sm.Length))
					s.Y = append(s.Y, value(sm))
				}
			}
			out = append(out, s)
		}
		return out
	}
	familyTiers := func(f string) []string {
		var n []string
		for _, t := range res.Tiers {
			if t.Family == f {
				n = append(n, t.Name)
			}
		}
		return n
	}
	for _, f := range families {
		tiers := familyTiers(f)
		if len(tiers) == 0 {
			continue
		}
		for _, p := range []studyio.LinePlot{
			{Title: "Mean KLD against fp32 at the answer positions: " + f + " tiers", XLabel: "context length (tokens)", YLabel: "mean KLD (nats)",
				LogX: true, LogY: true, XTicks: lengths, Series: series(tiers, func(s summary) float64 { return float64(s.KLD.Mean) })},
			{Title: "Same top token as fp32: " + f + " tiers", XLabel: "context length (tokens)", YLabel: "same top token (%)",
				LogX: true, XTicks: lengths, Series: series(tiers, func(s summary) float64 { return 100 * float64(s.SameTop.Mean) })},
		} {
			name := "kld_" + f + ".png"
			if strings.HasPrefix(p.Title, "Same") {
				name = "same_top_" + f + ".png"
			}
			if err := p.Save(filepath.Join(dir, name)); err != nil && !allUndrawable(p) {
				return err
			}
		}
	}
	var nanTiers []string
	for _, t := range res.Tiers {
		for _, s := range res.Summary {
			if s.Tier == t.Name && s.NaNRate.Mean > 0 {
				nanTiers = append(nanTiers, t.Name)
				break
			}
		}
	}
	title := "Sequences with a non-finite logit"
	if len(nanTiers) == 0 {
		nanTiers = familyTiers(familyAttn)
		title += " (none had any; the attention tiers shown)"
	}
	if len(nanTiers) == 0 {
		return nil
	}
	p := studyio.LinePlot{Title: title, XLabel: "context length (tokens)", YLabel: "sequences (%)", LogX: true, XTicks: lengths,
		Series: series(nanTiers, func(s summary) float64 { return 100 * float64(s.NaNRate.Mean) })}
	return p.Save(filepath.Join(dir, "nan_rate.png"))
}

// allUndrawable reports whether no point of p can be drawn (every KLD 0
// or undefined on a log axis): such a plot is left out, not an error.
func allUndrawable(p studyio.LinePlot) bool {
	for _, s := range p.Series {
		for _, y := range s.Y {
			if !math.IsNaN(y) && !math.IsInf(y, 0) && (!p.LogY || y > 0) {
				return false
			}
		}
	}
	return true
}
