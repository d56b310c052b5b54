package main

import (
	"path/filepath"
	"strconv"

	"github.com/actq/actq/graph"
	"github.com/actq/actq/internal/studyio"
)

// printSoftmax writes the per-length tables and the two summary matrices.
func printSoftmax(w *studyio.Report, res results) {
	w.Printf("Softmax numerics: %d rows per length, logits ~ N(0, %.3g²), %d sink(s) with logit in [%g, %g], d_head %d\n\n",
		res.Config.Scores.Rows, res.Config.Scores.LogitStd, res.Config.Scores.Sinks, res.Config.Scores.SinkLo, res.Config.Scores.SinkHi, res.Config.Scores.DHead)
	for _, m := range res.Methods {
		w.Item(18, m.Name, m.Desc)
	}
	byLength := map[int][]softmaxResult{}
	var lengths []int
	for _, r := range res.Softmax {
		if _, ok := byLength[r.Length]; !ok {
			lengths = append(lengths, r.Length)
		}
		byLength[r.Length] = append(byLength[r.Length], r)
	}
	for _, l := range lengths {
		w.Printf("\nlength %d\n", l)
		t := studyio.Table{Header: []string{"method", "NaN rows", "zero rows", "mass lost", "|Σp − 1|", "max |Δp|", "KL", "P·V rel err"}}
		for _, r := range byLength[l] {
			t.Add(r.Method, r.NaNRows.Pct(1), r.ZeroRow.Pct(1), r.MassLost.Sci(), r.SumError.Sci(), r.MaxAbsErr.Sci(), r.KL.Sci(), r.OutputErr.Sci())
		}
		w.Table(&t)
	}
	for _, summary := range []struct {
		title string
		cell  func(softmaxResult) string
	}{
		{"NaN row rate by length", func(r softmaxResult) string { return r.NaNRows.Pct(1) }},
		{"KL(reference ‖ method) by length", func(r softmaxResult) string { return r.KL.Sci() }},
	} {
		w.Printf("\n%s\n", summary.title)
		header := []string{"method"}
		for _, l := range lengths {
			header = append(header, strconv.Itoa(l))
		}
		t := studyio.Table{Header: header}
		for mi, m := range res.Methods {
			row := []string{m.Name}
			for _, l := range lengths {
				row = append(row, summary.cell(byLength[l][mi]))
			}
			t.Add(row...)
		}
		w.Table(&t)
	}
}

// plotSoftmax draws NaN rate, KL and lost mass against length, one line per
// method.
func plotSoftmax(dir string, res results) error {
	for _, p := range []struct {
		file, title, ylabel string
		logY                bool
		value               func(softmaxResult) float64
	}{
		{"softmax_nan_rate.png", "Rows with NaN", "fraction of rows", false, func(r softmaxResult) float64 { return float64(r.NaNRows) }},
		{"softmax_kl.png", "KL(float64 reference ‖ method)", "mean KL (nats)", true, func(r softmaxResult) float64 { return float64(r.KL) }},
		{"softmax_mass_lost.png", "Probability mass lost to underflow", "mean mass", true, func(r softmaxResult) float64 { return float64(r.MassLost) }},
	} {
		lp := studyio.LinePlot{Title: p.title, XLabel: "sequence length", YLabel: p.ylabel, LogX: true, LogY: p.logY}
		for _, m := range res.Methods[1:] { // not the reference against itself
			s := studyio.Series{Name: m.Name}
			for _, r := range res.Softmax {
				if r.Method == m.Name {
					s.X = append(s.X, float64(r.Length))
					s.Y = append(s.Y, p.value(r))
				}
			}
			lp.Series = append(lp.Series, s)
		}
		if err := lp.Save(filepath.Join(dir, p.file)); err != nil {
			return err
		}
	}
	return nil
}

// printModule writes the attention module's table: one row per tier and
// length.
func printModule(w *studyio.Report, res results) {
	if len(res.Module) == 0 {
		return
	}
	m := res.Config.Module
	w.Printf("\nCausal graph.Attention module (d_model %d, %d heads, Wq ×%g), float32 under each tier against float64\n",
		m.DModel, m.Heads, m.LogitScale)
	for _, t := range m.Tiers {
		if tier, err := graph.TierByName(t); err == nil {
			w.Item(10, tier.Name, tier.Desc)
		}
	}
	t := studyio.Table{Header: []string{"tier", "length", "rel err", "max |Δ|", "NaN", "scores clipped", "scores SQNR dB", "P→0", "P SQNR dB"}}
	for _, r := range res.Module {
		t.Add(r.Tier, strconv.Itoa(r.Length), r.RelError.Sci(), r.MaxAbsErr.Sci(), r.NaNFrac.Pct(1), r.ScoresClipped.Pct(1), r.ScoresSQNR.DB(), r.ProbsZeroed.Pct(1), r.ProbsSQNR.DB())
	}
	w.Printf("\n")
	w.Table(&t)
}

// plotModule draws the module's output error against length, a line per
// tier.
func plotModule(dir string, res results) error {
	lp := studyio.LinePlot{Title: "Causal attention module: output error against float64", XLabel: "sequence length",
		YLabel: "‖O − O₆₄‖ / ‖O₆₄‖", LogX: true, LogY: true}
	for _, t := range res.Config.Module.Tiers {
		s := studyio.Series{Name: t}
		for _, r := range res.Module {
			if r.Tier == t {
				s.X = append(s.X, float64(r.Length))
				s.Y = append(s.Y, float64(r.RelError))
			}
		}
		lp.Series = append(lp.Series, s)
	}
	return lp.Save(filepath.Join(dir, "module_error.png"))
}
