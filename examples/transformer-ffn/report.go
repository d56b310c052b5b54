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

// results is what results.json holds.
type results struct {
	Config   config     `json:"config"`
	Tiers    []tierInfo `json:"tiers"`
	Cohorts  []cohort   `json:"cohorts"`
	Training []training `json:"training"`
	Rows     []row      `json:"results"`
	QAT      []row      `json:"qat,omitempty"`
	Gate     gateResult `json:"gate"`
	Seconds  float64    `json:"seconds"`
}

type tierInfo struct {
	Name string `json:"name"`
	Desc string `json:"description"`
}

// run performs the study and writes its outputs.
func run(cfg config, stdout, stderr io.Writer) error {
	start := time.Now()
	s, err := newStudy(cfg)
	if err != nil {
		return err
	}
	bar := studyio.NewProgress(stderr, cfg.Progress, len(cfg.Activations)*s.unitsPerActivation(), "transformer-ffn")
	s.progress = func(n int, desc string) {
		bar.Describe(desc)
		bar.Add(n)
	}
	acts, err := s.runAll()
	bar.Finish()
	if err != nil {
		return err
	}
	res := results{Config: cfg, Cohorts: s.cohorts}
	for _, t := range s.tiers {
		res.Tiers = append(res.Tiers, tierInfo{t.Name, t.Desc})
	}
	for _, a := range acts {
		res.Training = append(res.Training, a.Training)
		res.Rows = append(res.Rows, a.Rows...)
		res.QAT = append(res.QAT, a.QAT...)
	}
	var standard []row
	for _, r := range res.Rows {
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

// report writes the tables and the gate line.
func report(w *studyio.Report, res results) {
	c := res.Config
	m, t := c.Model, c.Train
	ffn := "plain"
	if m.Gated {
		ffn = "gated"
	}
	w.Printf("transformer-ffn: sorting %d–%d digits; d_model %d, %d heads, d_hidden %d (%s FFN), %d layers, RMSNorm; %d Adam steps of %d sequences, seed %d\n",
		c.Task.MinDigits, c.Task.MaxDigits, m.DModel, m.Heads, m.DHidden, ffn, m.Layers, t.Steps, t.Batch, c.Seed)
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
		w.Item(12, tr.Activation, fmt.Sprintf("loss %.4f, token accuracy %s (%d parameters)", float64(tr.Loss), tr.Accuracy.Pct(2), tr.Params))
	}

	for _, co := range res.Cohorts {
		var tokens, seqs int
		for _, r := range res.Rows {
			if r.Cohort == co.Name {
				tokens, seqs = r.Tokens, r.Seqs
				break
			}
		}
		w.Printf("\n%s: %d sequences, %d answer tokens; drop = fp32's token accuracy − the tier's, in points, ± its standard error\n"+
			"(paired over the same tokens); FFN hidden = the input of W2, after the activation, all layers together (worst layer for the SQNR)\n",
			co.Name, seqs, tokens)
		tb := studyio.Table{Header: []string{"activation", "tier", "token acc", "drop", "±", "seq acc", "loss", "clipped", "zeroed", "SQNR dB", "worst layer dB"}, Left: 2}
		var rows []row
		for _, act := range res.Config.Activations {
			rows = append(rows, filterRows(res.Rows, act, co.Name)...)
		}
		for i, r := range rows {
			if i > 0 && r.Activation != rows[i-1].Activation {
				tb.Add()
			}
			clip, zero, sq, worst := "—", "—", "—", "—"
			if h := r.Hidden; h != nil {
				clip, zero, sq, worst = h.Clipped.SmallPct(), h.Zeroed.Pct(1), h.SQNR.DB(), h.WorstSQNR.DB()
			}
			drop, se := r.Drop.Points(), r.DropSE.Points()
			if r.Tier == "fp32" {
				drop, se = "—", "—"
			}
			tb.Add(r.Activation, r.Tier, r.Accuracy.Pct(2), drop, se, r.SeqAcc.Pct(1), fmt.Sprintf("%.4f", float64(r.Loss)), clip, zero, sq, worst)
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
				r := find(res, act, tier, co.Name)
				cells = append(cells, r.Drop.Points()+" ±"+r.DropSE.Points())
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
	for _, tr := range res.Training {
		for _, site := range hiddenSites(res.Config.Model.Layers) {
			cells := []string{tr.Activation, site, fmt.Sprintf("%.3f", float64(tr.CalibMax[site]))}
			for _, co := range res.Cohorts {
				r := find(res, tr.Activation, static, co.Name)
				var ls layerStats
				if r.Hidden != nil {
					for _, l := range r.Hidden.Layers {
						if l.Site == site {
							ls = l
						}
					}
				}
				rangeRatio := number(math.NaN()) // printed as —
				if ls.RangeRatio != nil {
					rangeRatio = *ls.RangeRatio
				}
				cells = append(cells, rangeRatio.Ratio(), ls.Clipped.SmallPct())
			}
			tb.Add(cells...)
		}
	}
	w.Table(&tb)
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
	for _, act := range res.Config.Activations {
		for _, co := range res.Cohorts {
			base, static := find(res, act, "fp32", co.Name), find(res, act, "w4a8-static", co.Name)
			ctl := find(res, act, controlTier, co.Name)
			cells := []string{act, co.Name, base.Accuracy.Pct(2), static.Accuracy.Pct(2), static.Drop.Points(), ctl.Accuracy.Pct(2), ctl.Drop.Points()}
			for _, m := range modes {
				q := find(res, act, m.Tier, co.Name)
				cells = append(cells, q.Accuracy.Pct(2), q.Drop.Points(), number(100*(ctl.Accuracy-q.Accuracy)).Points())
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
	w.Printf("\nFFN hidden int4 range (scale·qmax): calibrated, and learned by each fine-tune with learnable scales\n")
	tb = studyio.Table{Header: append([]string{"activation", "site", "calibrated"}, learnModes...), Left: 2}
	for _, tr := range res.Training {
		for _, site := range hiddenSites(res.Config.Model.Layers) {
			cells := []string{tr.Activation, site, fmt.Sprintf("%.3f", float64(tr.CalibMax[site]))}
			for _, m := range learnModes {
				v, ok := tr.LearnedMax[m][site]
				if !ok {
					cells = append(cells, "—")
					continue
				}
				cells = append(cells, strings.Replace(fmt.Sprintf("%.3f (%+.1f%%)", float64(v), 100*(float64(v)/float64(tr.CalibMax[site])-1)), "-", "−", 1))
			}
			tb.Add(cells...)
		}
	}
	w.Table(&tb)
}

// filterRows returns the rows of one activation and cohort.
func filterRows(rows []row, act, cohort string) []row {
	var out []row
	for _, r := range rows {
		if r.Activation == act && r.Cohort == cohort {
			out = append(out, r)
		}
	}
	return out
}

// find returns the row of an activation, tier and cohort (a row of NaNs if
// there is none).
func find(res results, act, tier, cohort string) row {
	for _, rows := range [][]row{res.Rows, res.QAT} {
		for _, r := range rows {
			if r.Activation == act && r.Tier == tier && r.Cohort == cohort {
				return r
			}
		}
	}
	nan := number(math.NaN())
	return row{Activation: act, Tier: tier, Cohort: cohort, Accuracy: nan, SeqAcc: nan, Loss: nan, Drop: nan}
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
			value               func(row) float64
		}{
			{"accuracy_drop_%s.png", "Token-accuracy drop against fp32, %s cohort", "points (higher is worse)", dropTiers,
				func(r row) float64 { return float64(r.Drop) }},
			{"ffn_clipped_%s.png", "FFN hidden values clipped, %s cohort", "clipped per million values", tiers,
				func(r row) float64 { return hidden(r, func(h *hiddenStats) number { return h.Clipped }) * 1e6 }},
			{"ffn_zeroed_%s.png", "FFN hidden values flushed to zero, %s cohort", "% of values", tiers,
				func(r row) float64 { return hidden(r, func(h *hiddenStats) number { return h.Zeroed }) * 100 }},
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
					bp.Values[label] = append(bp.Values[label], float64(find(res, act, tierOf[label], co.Name).Drop))
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
							v = 100 * (float64(*ls.RangeRatio) - 1)
						}
					}
				}
				bp.Values[co.Name] = append(bp.Values[co.Name], v)
			}
		}
	}
	return bp.Save(filepath.Join(dir, "ffn_range.png"))
}

// hidden returns a field of a row's FFN hidden statistics (0 without them).
func hidden(r row, f func(*hiddenStats) number) float64 {
	if r.Hidden == nil {
		return 0
	}
	return float64(f(r.Hidden))
}
