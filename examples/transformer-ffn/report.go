package main

import (
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strings"
	"time"

	"github.com/actq/actq/graph"
	"github.com/actq/actq/internal/studyio"
)

// results is what results.json holds: the rows of every seed, and their
// summaries over the seeds, which the report and the gate read.
type results struct {
	Config     config     `json:"config"`
	Tiers      []tierInfo `json:"tiers"`
	Cohorts    []cohort   `json:"cohorts"`
	Training   []training `json:"training"`
	Rows       []row      `json:"results"`
	QAT        []row      `json:"qat,omitempty"`
	Summary    []summary  `json:"summary"`
	QATSummary []summary  `json:"qat_summary,omitempty"`
	Gate       gateResult `json:"gate"`
	Seconds    float64    `json:"seconds"`
}

type tierInfo struct {
	Name string `json:"name"`
	Desc string `json:"description"`
}

// run performs the study, once per seed, and writes its outputs.
func run(cfg config, stdout, stderr io.Writer) error {
	start := time.Now()
	res := results{Config: cfg}
	var bar *studyio.Progress
	for i, seed := range cfg.Seeds {
		s, err := newStudy(cfg, seed)
		if err != nil {
			return err
		}
		if i == 0 {
			res.Cohorts = s.cohorts
			for _, t := range s.tiers {
				res.Tiers = append(res.Tiers, tierInfo{t.Name, t.Desc})
			}
			bar = studyio.NewProgress(stderr, cfg.Progress, len(cfg.Seeds)*len(cfg.Activations)*s.unitsPerActivation(), "transformer-ffn")
		}
		s.progress = func(n int, desc string) {
			if len(cfg.Seeds) > 1 {
				desc = fmt.Sprintf("seed %d: %s", seed, desc)
			}
			bar.Describe(desc)
			bar.Add(n)
		}
		acts, err := s.runAll()
		if err != nil {
			bar.Finish()
			return fmt.Errorf("seed %d: %w", seed, err)
		}
		for _, a := range acts {
			res.Training = append(res.Training, a.Training)
			res.Rows = append(res.Rows, a.Rows...)
			res.QAT = append(res.QAT, a.QAT...)
		}
	}
	bar.Finish()
	res.Summary, res.QATSummary = summarizeSeeds(res.Rows), summarizeSeeds(res.QAT)
	var standard []summary
	for _, r := range res.Summary {
		if r.Tier != "fp32" {
			standard = append(standard, r)
		}
	}
	res.Gate = gate(standard, cfg.GateThreshold)
	res.Seconds = time.Since(start).Seconds()

	if err := studyio.Publish(stdout, cfg.Out, res, func(r *studyio.Report) { report(r, res) }); err != nil {
		return err
	}
	files := []string{"results.json", "results.md"}
	if cfg.Plots {
		if err := plots(cfg.Out, res); err != nil {
			return err
		}
		files = append(files, "*.png")
	}
	studyio.Wrote(stdout, cfg.Out, res.Seconds, files...)
	if cfg.Gate && len(res.Gate.Failures) > 0 {
		return fmt.Errorf("%w: %d combination(s) above %.1f point(s)", studyio.ErrGate, len(res.Gate.Failures), cfg.GateThreshold)
	}
	return nil
}

// Cell formats of the tables: a figure over the seeds, mean ± standard
// error (the mean alone where there is no error).
func pct1(e estimate) string { return e.Format(func(n number) string { return n.Pct(1) }) }
func pct2(e estimate) string { return e.Format(func(n number) string { return n.Pct(2) }) }
func dec4(e estimate) string {
	return e.Format(func(n number) string {
		if math.IsNaN(float64(n)) {
			return "—"
		}
		return fmt.Sprintf("%.4f", float64(n))
	})
}

// report writes the tables and the gate line.
func report(w *studyio.Report, res results) {
	c := res.Config
	m, t := c.Model, c.Train
	ffn := "plain"
	if m.Gated {
		ffn = "gated"
	}
	w.Printf("transformer-ffn: sorting %d–%d digits; d_model %d, %d heads, d_hidden %d (%s FFN), %d layers, RMSNorm; %d Adam steps of %d sequences; seeds %s\n",
		c.Task.MinDigits, c.Task.MaxDigits, m.DModel, m.Heads, m.DHidden, ffn, m.Layers, t.Steps, t.Batch, studyio.JoinSeeds(c.Seeds))
	if len(c.Seeds) > 1 {
		w.Printf("Each seed trains its own models on its own data; every figure is the mean over the %d seeds ± its standard error.\n", len(c.Seeds))
	}
	w.Printf("\ntiers:\n")
	for _, ti := range res.Tiers {
		w.Item(12, ti.Name, ti.Desc)
	}
	w.Printf("cohorts:\n")
	for _, co := range res.Cohorts {
		w.Item(12, co.Name, co.Desc)
	}
	w.Printf("training (last tenth of the steps):\n")
	for _, tr := range res.Training {
		name := tr.Activation
		if len(c.Seeds) > 1 {
			name = fmt.Sprintf("%s, seed %d", tr.Activation, tr.Seed)
		}
		w.Item(18, name, fmt.Sprintf("loss %.4f, token accuracy %s (%d parameters)", float64(tr.Loss), tr.Accuracy.Pct(2), tr.Params))
	}

	for _, co := range res.Cohorts {
		var tokens, seqs int
		for _, r := range res.Rows {
			if r.Cohort == co.Name {
				tokens, seqs = r.Tokens, r.Seqs
				break
			}
		}
		w.Printf("\n%s: %d sequences, %d answer tokens (per seed); drop = fp32's token accuracy − the tier's, in points, ± its standard error\n"+
			"(%s); FFN hidden = the input of W2, after the activation, all layers together (worst layer for the SQNR)\n",
			co.Name, seqs, tokens, seError(len(c.Seeds)))
		tb := studyio.Table{Header: []string{"activation", "tier", "token acc", "drop", "±", "seq acc", "loss", "clipped", "zeroed", "SQNR dB", "worst layer dB"}, Left: 2}
		var rows []summary
		for _, act := range res.Config.Activations {
			rows = append(rows, filterRows(res.Summary, act, co.Name)...)
		}
		for i, r := range rows {
			if i > 0 && r.Activation != rows[i-1].Activation {
				tb.Add()
			}
			clip, zero, sq, worst := "—", "—", "—", "—"
			if h := r.Hidden; h != nil {
				clip, zero, sq, worst = h.Clipped.Format(number.SmallPct), pct1(h.Zeroed), h.SQNR.Format(number.DB), h.WorstSQNR.Format(number.DB)
			}
			drop, se := r.Drop.Mean.Points(), r.Drop.SE.Points()
			if r.Tier == "fp32" {
				drop, se = "—", "—"
			}
			tb.Add(r.Activation, r.Tier, pct2(r.Accuracy), drop, se, pct1(r.SeqAcc), dec4(r.Loss), clip, zero, sq, worst)
		}
		w.Table(&tb)
	}

	// The drop matrices: the summary a reader looks for first.
	tiers := res.Config.Tiers[1:]
	for _, co := range res.Cohorts {
		w.Printf("\ntoken-accuracy drop against fp32 (points ± standard error), %s\n", co.Name)
		tb := studyio.Table{Header: append([]string{"activation"}, tiers...)}
		for _, act := range res.Config.Activations {
			cells := []string{act}
			for _, tier := range tiers {
				cells = append(cells, find(res, act, tier, co.Name).Drop.Format(number.Points))
			}
			tb.Add(cells...)
		}
		w.Table(&tb)
	}

	printStatic(w, res)
	printQAT(w, res)
	w.Printf("\n%s\n", res.Gate)
}

// printStatic writes the static tier's calibration against what each cohort
// reaches.
func printStatic(w *studyio.Report, res results) {
	var static string
	for _, t := range res.Config.Tiers {
		if tier, err := graph.TierByName(t); err == nil && tier.NeedsCalibration() {
			static = t
			break
		}
	}
	if static == "" {
		return
	}
	w.Printf("\n%s: FFN hidden static int4 scales from %d in-distribution sequences; the largest |x| each cohort brings to a site, relative to the calibrated one (above 1.07× it clips), and the fraction clipped\n",
		static, res.Config.CalibSeqs)
	header := []string{"activation", "site", "calibrated max |x|"}
	for _, co := range res.Cohorts {
		header = append(header, co.Name+" range", co.Name+" clipped")
	}
	tb := studyio.Table{Header: header, Left: 2}
	for _, act := range res.Config.Activations {
		for l, site := range hiddenSites(res.Config.Model.Layers) {
			calib := perSeed(res.Config.Seeds, func(seed uint64) float64 { return float64(trainingOf(res, seed, act).CalibMax[site]) })
			cells := []string{act, site, calib.Format(dec3)}
			for _, co := range res.Cohorts {
				rangeRatio, clipped := estimate{Mean: number(math.NaN())}, estimate{Mean: number(math.NaN())}
				if h := find(res, act, static, co.Name).Hidden; h != nil && l < len(h.Layers) {
					if h.Layers[l].RangeRatio != nil {
						rangeRatio = *h.Layers[l].RangeRatio
					}
					clipped = h.Layers[l].Clipped
				}
				cells = append(cells, rangeRatio.Format(number.Ratio), clipped.Format(number.SmallPct))
			}
			tb.Add(cells...)
		}
	}
	w.Table(&tb)
}

func dec3(n number) string {
	if math.IsNaN(float64(n)) {
		return "—"
	}
	return fmt.Sprintf("%.3f", float64(n))
}

// seError says what the ± of a figure is, for n seeds.
func seError(n int) string {
	if n > 1 {
		return fmt.Sprintf("over the %d seeds", n)
	}
	return "paired over the same tokens"
}

// printQAT writes the quantization-aware fine-tunes against their control,
// and the learned FFN hidden ranges.
func printQAT(w *studyio.Report, res results) {
	if len(res.QAT) == 0 {
		return
	}
	t := res.Config.Train
	w.Printf("\nquantization-aware fine-tune: %d more steps at learning rate %g under w4a8-static (straight-through gradients), once per way of\n"+
		"treating the scales; the control takes the same steps on the same data in fp32. Token accuracy, and drop against the original fp32\n"+
		"model in points; gap = control − QAT, the quantization loss left after QAT\n", t.QATSteps, t.QATRate)
	header := []string{"activation", "cohort", "fp32", "w4a8-static", "drop", "control", "drop"}
	var modes []qatMode
	for _, name := range t.QATScales {
		m, _ := qatModeNamed(name)
		modes = append(modes, m)
		w.Item(18, "QAT "+m.Name+":", m.Desc)
		header = append(header, "QAT "+m.Name, "drop", "gap")
	}
	tb := studyio.Table{Header: header, Left: 2}
	pts := func(e estimate) string { return e.Format(number.Points) }
	for _, act := range res.Config.Activations {
		for _, co := range res.Cohorts {
			base, static := find(res, act, "fp32", co.Name), find(res, act, "w4a8-static", co.Name)
			ctl := find(res, act, controlTier, co.Name)
			cells := []string{act, co.Name, pct2(base.Accuracy), pct2(static.Accuracy), pts(static.Drop), pct2(ctl.Accuracy), pts(ctl.Drop)}
			for _, m := range modes {
				q := find(res, act, m.Tier, co.Name)
				gap := perSeed(res.Config.Seeds, func(seed uint64) float64 {
					return 100 * float64(findRow(res, seed, act, controlTier, co.Name).Accuracy-findRow(res, seed, act, m.Tier, co.Name).Accuracy)
				})
				cells = append(cells, pct2(q.Accuracy), pts(q.Drop), pts(gap))
			}
			tb.Add(cells...)
		}
	}
	w.Table(&tb)
	var learnModes []string
	for _, m := range modes {
		if m.learnActs {
			learnModes = append(learnModes, m.Name)
		}
	}
	if len(learnModes) == 0 {
		return
	}
	w.Printf("\nFFN hidden int4 range (scale·qmax): calibrated, and learned by each fine-tune with learnable scales (the change in %%)\n")
	tb = studyio.Table{Header: append([]string{"activation", "site", "calibrated"}, learnModes...), Left: 2}
	seeds := res.Config.Seeds
	for _, act := range res.Config.Activations {
		for _, site := range hiddenSites(res.Config.Model.Layers) {
			calib := func(seed uint64) float64 { return float64(trainingOf(res, seed, act).CalibMax[site]) }
			cells := []string{act, site, perSeed(seeds, calib).Format(dec3)}
			for _, m := range learnModes {
				learned := func(seed uint64) float64 {
					v, ok := trainingOf(res, seed, act).LearnedMax[m][site]
					if !ok {
						return math.NaN()
					}
					return float64(v)
				}
				change := perSeed(seeds, func(seed uint64) float64 { return 100 * (learned(seed)/calib(seed) - 1) })
				c := strings.Replace(fmt.Sprintf("%+.1f%%", float64(change.Mean)), "-", "−", 1)
				if !math.IsNaN(float64(change.SE)) {
					c += fmt.Sprintf(" ±%.1f%%", float64(change.SE))
				}
				cells = append(cells, perSeed(seeds, learned).Format(dec3)+" ("+c+")")
			}
			tb.Add(cells...)
		}
	}
	w.Table(&tb)
}

// filterRows returns the summaries of one activation and cohort.
func filterRows(rows []summary, act, cohort string) []summary {
	var out []summary
	for _, r := range rows {
		if r.Activation == act && r.Cohort == cohort {
			out = append(out, r)
		}
	}
	return out
}

// find returns the summary of an activation, tier and cohort (NaNs if
// there is none).
func find(res results, act, tier, cohort string) summary {
	for _, rows := range [][]summary{res.Summary, res.QATSummary} {
		for _, r := range rows {
			if r.Activation == act && r.Tier == tier && r.Cohort == cohort {
				return r
			}
		}
	}
	nan := estimate{Mean: number(math.NaN()), SE: number(math.NaN())}
	return summary{Activation: act, Tier: tier, Cohort: cohort, Accuracy: nan, SeqAcc: nan, Loss: nan, Drop: nan}
}

// findRow returns one seed's row of an activation, tier and cohort (NaNs
// if there is none).
func findRow(res results, seed uint64, act, tier, cohort string) row {
	for _, rows := range [][]row{res.Rows, res.QAT} {
		for _, r := range rows {
			if r.Seed == seed && r.Activation == act && r.Tier == tier && r.Cohort == cohort {
				return r
			}
		}
	}
	nan := number(math.NaN())
	return row{Seed: seed, Activation: act, Tier: tier, Cohort: cohort, Accuracy: nan, SeqAcc: nan, Loss: nan, Drop: nan, DropSE: nan}
}

// trainingOf returns the training summary of an activation with a seed.
func trainingOf(res results, seed uint64, act string) training {
	for _, tr := range res.Training {
		if tr.Seed == seed && tr.Activation == act {
			return tr
		}
	}
	return training{Seed: seed, Activation: act}
}

// plots draws, per cohort, the accuracy drop and the FFN hidden clipped and
// zeroed fractions by tier, a bar per activation; and the FFN hidden range
// each cohort reaches under the static tier.
func plots(dir string, res results) error {
	tiers := res.Config.Tiers[1:]
	if len(tiers) == 0 {
		return nil
	}
	dropTiers := tiers
	for _, co := range res.Cohorts {
		for _, p := range []struct {
			file, title, ylabel string
			tiers               []string
			value               func(summary) float64
		}{
			{"accuracy_drop_%s.png", "Token-accuracy drop against fp32, %s cohort", "points (higher is worse)", dropTiers,
				func(r summary) float64 { return float64(r.Drop.Mean) }},
			{"ffn_clipped_%s.png", "FFN hidden values clipped, %s cohort", "clipped per million values", tiers,
				func(r summary) float64 { return hidden(r, func(h *hiddenSummary) estimate { return h.Clipped }) * 1e6 }},
			{"ffn_zeroed_%s.png", "FFN hidden values flushed to zero, %s cohort", "% of values", tiers,
				func(r summary) float64 { return hidden(r, func(h *hiddenSummary) estimate { return h.Zeroed }) * 100 }},
		} {
			bp := studyio.BarPlot{Title: fmt.Sprintf(p.title, co.Name), YLabel: p.ylabel, Groups: p.tiers,
				Values: map[string][]float64{}, Order: res.Config.Activations}
			for _, act := range res.Config.Activations {
				for _, tier := range p.tiers {
					bp.Values[act] = append(bp.Values[act], p.value(find(res, act, tier, co.Name)))
				}
			}
			if err := bp.Save(filepath.Join(dir, fmt.Sprintf(p.file, co.Name))); err != nil {
				return err
			}
		}
	}
	if len(res.QAT) > 0 {
		order := []string{"w4a8-static"}
		tierOf := map[string]string{"w4a8-static": "w4a8-static"}
		for _, name := range res.Config.Train.QATScales {
			m, _ := qatModeNamed(name)
			label := "+ QAT, " + m.Name + " scales"
			order = append(order, label)
			tierOf[label] = m.Tier
		}
		order = append(order, "fp32 fine-tune (control)")
		tierOf["fp32 fine-tune (control)"] = controlTier
		for _, co := range res.Cohorts {
			bp := studyio.BarPlot{Title: fmt.Sprintf("Quantization-aware fine-tune, %s cohort", co.Name), YLabel: "drop against fp32, points",
				Groups: res.Config.Activations, Values: map[string][]float64{}, Order: order}
			for _, act := range res.Config.Activations {
				for _, label := range order {
					bp.Values[label] = append(bp.Values[label], float64(find(res, act, tierOf[label], co.Name).Drop.Mean))
				}
			}
			if err := bp.Save(filepath.Join(dir, fmt.Sprintf("qat_%s.png", co.Name))); err != nil {
				return err
			}
		}
	}
	return plotRange(dir, res)
}

// plotRange draws the largest |x| at the FFN hidden sites under the static tier
// relative to the calibrated one, a bar per cohort for each activation and
// layer.
func plotRange(dir string, res results) error {
	var static string
	for _, t := range res.Config.Tiers {
		if tier, err := graph.TierByName(t); err == nil && tier.NeedsCalibration() {
			static = t
		}
	}
	if static == "" {
		return nil
	}
	bp := studyio.BarPlot{Title: "FFN hidden: largest |x| beyond the calibrated range (" + static + "); int4 clips above +7%",
		YLabel: "% beyond the calibrated largest |x|", Values: map[string][]float64{}, Order: cohortNames(res.Cohorts)}
	for _, act := range res.Config.Activations {
		for l, site := range hiddenSites(res.Config.Model.Layers) {
			bp.Groups = append(bp.Groups, fmt.Sprintf("%s L%d", act, l))
			for _, co := range res.Cohorts {
				v := math.NaN()
				if h := find(res, act, static, co.Name).Hidden; h != nil {
					for _, ls := range h.Layers {
						if ls.Site == site && ls.RangeRatio != nil {
							v = 100 * (float64(ls.RangeRatio.Mean) - 1)
						}
					}
				}
				bp.Values[co.Name] = append(bp.Values[co.Name], v)
			}
		}
	}
	return bp.Save(filepath.Join(dir, "ffn_range.png"))
}

// hidden returns the mean of a field of a summary's FFN hidden statistics
// (0 without them).
func hidden(r summary, f func(*hiddenSummary) estimate) float64 {
	if r.Hidden == nil {
		return 0
	}
	return float64(f(r.Hidden).Mean)
}
