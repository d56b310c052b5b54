package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"

	"github.com/actq/actq/graph"
	"github.com/actq/actq/internal/studyio"
	"github.com/actq/actq/quantize"
)

type number = studyio.Number

// Random streams: each use of randomness has its own, so that changing one
// part of the study (say, the number of evaluation sequences) leaves the
// others' data unchanged.
const (
	streamTrain = iota + 1
	streamCalib
	streamEval
	streamQAT
)

// controlTier names the rows of the quantization-aware fine-tune's
// control: the model fine-tuned the same way in fp32.
const controlTier = "fp32+finetune"

// qatMode is a way the quantization-aware fine-tune treats the scales
// (-qat-scales); its rows are those of tier Tier.
type qatMode struct {
	Name, Tier, Desc string
	// learnActs: the static (calibrated) activation sites learn their
	// scales; learnWeights: the weight and head sites too, from the scales
	// of their dynamic rule.
	learnActs, learnWeights bool
}

// qatModes are the -qat-scales values.
var qatModes = []qatMode{
	{"fixed", "w4a8-static+qat", "calibrated scales fixed", false, false},
	{"learnable", "w4a8-static+qat-lsq", "static activation scales learned (LSQ, log scale) from the calibrated ones", true, false},
	{"learnable-all", "w4a8-static+qat-lsq-all", "static activation scales, int4 weight group scales and int8 head channel scales learned (LSQ, log scale)", true, true},
}

// qatModeNamed returns the mode called name.
func qatModeNamed(name string) (qatMode, bool) {
	for _, m := range qatModes {
		if m.Name == name {
			return m, true
		}
	}
	return qatMode{}, false
}

// apply makes p's sites learn their scales as the mode says.
func (m qatMode) apply(p *graph.Plan) {
	lsq := quantize.LSQConfig{LogScale: true}
	set := func(q *graph.Quant) {
		if q != nil {
			c := lsq
			q.Learnable = &c
		}
	}
	if m.learnActs {
		for _, q := range p.Sites {
			set(q)
		}
	}
	if m.learnWeights {
		set(p.Weights)
		set(p.Head)
	}
}

// evalBatch is the largest number of sequences an Evaluator runs at once.
const evalBatch = 64

// row is one seed × activation × tier × cohort result.
type row struct {
	Seed       uint64       `json:"seed"`
	Activation string       `json:"activation"`
	Tier       string       `json:"tier"`
	Cohort     string       `json:"cohort"`
	Accuracy   number       `json:"token_accuracy"`
	SeqAcc     number       `json:"sequence_accuracy"`
	Loss       number       `json:"loss"`
	Drop       number       `json:"drop_points"`    // fp32's token accuracy minus this one, in points, same cohort
	DropSE     number       `json:"drop_se_points"` // its standard error (paired, over the same tokens)
	Tokens     int          `json:"tokens"`
	Seqs       int          `json:"sequences"`
	Hidden     *hiddenStats `json:"ffn_hidden,omitempty"` // nil without quantization (fp32)
}

// hiddenStats is what quantization did at the FFN hidden sites (the input
// of W2, after the activation), over every layer together and per layer.
type hiddenStats struct {
	Clipped   number       `json:"clipped_fraction"`
	Zeroed    number       `json:"zeroed_fraction"`
	SQNR      number       `json:"sqnr_db"`
	WorstSQNR number       `json:"worst_layer_sqnr_db"`
	Layers    []layerStats `json:"layers"`
}

type layerStats struct {
	Site    string `json:"site"`
	Clipped number `json:"clipped_fraction"`
	Zeroed  number `json:"zeroed_fraction"`
	SQNR    number `json:"sqnr_db"`
	// RangeRatio (static sites): the largest |x| reaching the site on the
	// cohort over the largest |x| calibration saw there. Above 1 the
	// cohort goes beyond the calibrated range; values beyond
	// (qmax+½)/qmax of it (1.07 for int4) clip.
	RangeRatio *number `json:"range_ratio,omitempty"`
}

// training summarises one activation's training run with one seed.
type training struct {
	Seed       uint64 `json:"seed"`
	Activation string `json:"activation"`
	Params     int    `json:"parameters"`
	// Over the last tenth of the steps (the training batches):
	Loss     number `json:"final_train_loss"`
	Accuracy number `json:"final_train_token_accuracy"`
	// The static sites' calibrated largest |x| (scale·qmax), by site.
	CalibMax map[string]number `json:"calibrated_max_abs,omitempty"`
	// After each fine-tune with learnable activation scales, by -qat-scales
	// mode: the static sites' learned largest |x| (scale·qmax), by site.
	LearnedMax map[string]map[string]number `json:"qat_learned_max_abs,omitempty"`
}

// actResult is everything one activation contributes.
type actResult struct {
	Training training
	Rows     []row
	QAT      []row
}

// study holds what every activation's run with one seed shares: the
// config, the seed and the evaluation and calibration data (read-only).
type study struct {
	cfg     config
	seed    uint64
	cohorts []cohort
	eval    map[string][]lengthBatches // by cohort name
	calib   []lengthBatches
	tiers   []graph.Tier

	mu       sync.Mutex               // serialises progress
	progress func(n int, desc string) // nil: no progress reports
}

func newStudy(cfg config, seed uint64) (*study, error) {
	s := &study{cfg: cfg, seed: seed, cohorts: cfg.Task.cohorts(), eval: map[string][]lengthBatches{}}
	for _, name := range cfg.Tiers {
		t, err := graph.TierByName(name)
		if err != nil {
			return nil, err
		}
		s.tiers = append(s.tiers, t)
	}
	rng := rand.New(rand.NewPCG(seed, streamEval))
	for _, co := range s.cohorts {
		s.eval[co.Name] = co.sample(rng, cfg.EvalSeqs)
	}
	s.calib = s.cohorts[0].sample(rand.New(rand.NewPCG(seed, streamCalib)), cfg.CalibSeqs)
	return s, nil
}

// modelConfig returns the transformer for one activation.
func (s *study) modelConfig(act string) graph.Config {
	m := s.cfg.Model
	return graph.Config{Vocab: vocab, SeqLen: seqLen(s.cfg.Task.MaxDigits), DModel: m.DModel, Heads: m.Heads,
		DHidden: m.DHidden, Layers: m.Layers, Activation: act, Gated: m.Gated}
}

// unitsPerActivation is the progress bar's count for one activation: a unit
// per training step and per evaluation of a tier on a cohort.
func (s *study) unitsPerActivation() int {
	n := s.cfg.Train.Steps + len(s.tiers)*len(s.cohorts)
	if s.cfg.Train.QATSteps > 0 {
		n += (1 + len(s.cfg.Train.QATScales)) * (s.cfg.Train.QATSteps + len(s.cohorts)) // the control and each QAT
	}
	return n
}

func (s *study) advance(n int, desc string) {
	if s.progress != nil {
		s.mu.Lock()
		s.progress(n, desc)
		s.mu.Unlock()
	}
}

// train trains the model of one activation from the seed and returns its
// weights.
func (s *study) train(act string) (graph.Weights, training, error) {
	cfg, tc := s.modelConfig(act), s.cfg.Train
	tr, err := graph.NewTrainer(cfg, nil, graph.TrainConfig{Batch: tc.Batch, LearnRate: tc.LearnRate, Seed: s.seed})
	if err != nil {
		return nil, training{}, err
	}
	defer tr.Close()
	rng := rand.New(rand.NewPCG(s.seed, streamTrain)) // the same data for every activation
	decay := int(math.Round(tc.DecayAt * float64(tc.Steps)))
	tail := max(1, tc.Steps/10)
	var last graph.Metrics
	for step := range tc.Steps {
		if step == decay {
			// Gorgonia's Adam cannot change its rate: a new solver takes over.
			tr.SetSolver(graph.NewAdam(graph.TrainConfig{LearnRate: tc.LearnRate / 5}))
		}
		m, err := tr.Step(s.cfg.Task.trainingBatch(rng, tc.Batch))
		if err != nil {
			return nil, training{}, fmt.Errorf("%s: step %d: %w", act, step, err)
		}
		if step >= tc.Steps-tail {
			last = last.Add(m)
		}
		s.advance(1, "training "+act)
	}
	w, err := tr.Weights()
	if err != nil {
		return nil, training{}, err
	}
	return w, training{Seed: s.seed, Activation: act, Params: w.Count(), Loss: number(last.Loss), Accuracy: number(last.Accuracy())}, nil
}

// plan returns the tier's plan for windows of seqLen tokens with the
// calibrated static sites (nil for full precision).
func plan(t graph.Tier, seqLen int, static map[string]*graph.Quant) *graph.Plan {
	p := t.Plan(seqLen)
	if p == nil {
		return nil
	}
	p = p.Clone()
	if len(static) > 0 {
		p.Sites = map[string]*graph.Quant{}
		for name, q := range static {
			c := *q
			p.Sites[name] = &c
		}
	}
	return p
}

// tierPlan returns plan for tier t and the static sites, as a function of
// the window length.
func tierPlan(t graph.Tier, static map[string]*graph.Quant) func(seqLen int) *graph.Plan {
	return func(n int) *graph.Plan { return plan(t, n, static) }
}

// calibrate fixes the static sites of tier t on batches grouped by length
// and returns them by site name. The tier's observers are MinMax, whose scale
// over several batches is the largest of the batches' scales, so calibrating
// each length apart and keeping the largest scale is calibrating on all of
// them at once.
func calibrate(cfg graph.Config, w graph.Weights, t graph.Tier, data []lengthBatches) (map[string]*graph.Quant, error) {
	out := map[string]*graph.Quant{}
	for _, lb := range data {
		n := seqLen(lb.Digits)
		p := plan(t, n, nil)
		for _, q := range []*graph.Quant{p.FFNInput, p.FFNHidden, p.AttnScores, p.AttnProbs, p.BlockOutput} {
			if q != nil && q.Static && q.Observer.Kind != quantize.MinMax {
				return nil, fmt.Errorf("tier %s: calibration across lengths needs MinMax observers", t.Name)
			}
		}
		cfgL, wL, err := forLength(cfg, w, n)
		if err != nil {
			return nil, err
		}
		cp, err := graph.Calibrate(cfgL, wL, p, lb.Batches)
		if err != nil {
			return nil, fmt.Errorf("tier %s, %d digits: %w", t.Name, lb.Digits, err)
		}
		for name, q := range cp.Sites {
			if q == nil || len(q.Spec.Scale) == 0 {
				continue
			}
			if prev, ok := out[name]; !ok || largest(q.Spec.Scale) > largest(prev.Spec.Scale) {
				out[name] = q
			}
		}
	}
	return out, nil
}

func largest(v []float64) float64 {
	m := math.Inf(-1)
	for _, x := range v {
		m = math.Max(m, x)
	}
	return m
}

// maxAbs returns the largest |x| an observer sees at each static site of
// tier t over data: the calibrated scale times qmax.
func maxAbs(cfg graph.Config, w graph.Weights, t graph.Tier, data []lengthBatches) (map[string]float64, error) {
	sites, err := calibrate(cfg, w, t, data)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for name, q := range sites {
		_, qmax := q.Spec.Format.Range(q.Spec.NarrowRange)
		out[name] = largest(q.Spec.Scale) * float64(qmax)
	}
	return out, nil
}

// evaluation is what evaluate measures.
type evaluation struct {
	m       graph.Metrics
	stats   map[string]quantize.StatsSnapshot // every site's, combined over the batches
	correct []bool                            // per counted token, in order: was the prediction right?
}

// evaluate runs the model under the plans planFor gives for each window
// length (nil: full precision) on a cohort's batches, each length in a
// window of its own size.
func evaluate(cfg graph.Config, w graph.Weights, planFor func(seqLen int) *graph.Plan, data []lengthBatches) (evaluation, error) {
	e := evaluation{stats: map[string]quantize.StatsSnapshot{}}
	for _, lb := range data {
		n := seqLen(lb.Digits)
		cfgL, wL, err := forLength(cfg, w, n)
		if err != nil {
			return e, err
		}
		var opts []graph.Option
		if p := planFor(n); p != nil {
			opts = append(opts, graph.WithPlan(p))
		}
		ev, err := graph.NewEvaluator(cfgL, wL, len(lb.Batches[0].Tokens)/n, opts...)
		if err != nil {
			return e, err
		}
		for _, b := range lb.Batches {
			m, err := ev.Eval(b)
			if err != nil {
				ev.Close()
				return e, fmt.Errorf("%d digits: %w", lb.Digits, err)
			}
			e.m = e.m.Add(m)
			for i, p := range ev.Predictions() {
				if b.Targets[i] != graph.Ignore {
					e.correct = append(e.correct, p == b.Targets[i])
				}
			}
		}
		for name, st := range ev.Stats() {
			e.stats[name] = studyio.AddStats(e.stats[name], st)
		}
		if err := ev.Close(); err != nil {
			return e, err
		}
	}
	return e, nil
}

// hiddenSites returns the FFN hidden site names of a model with the given
// number of layers.
func hiddenSites(layers int) []string {
	names := make([]string, layers)
	for i := range names {
		names[i] = fmt.Sprintf("block%d.ffn.hidden", i)
	}
	return names
}

// summarize reduces the statistics to the FFN hidden sites (nil if there are
// none, as in fp32).
func summarize(stats map[string]quantize.StatsSnapshot, layers int, ratio map[string]float64) *hiddenStats {
	var all quantize.StatsSnapshot
	h := &hiddenStats{WorstSQNR: number(math.Inf(1))}
	for _, name := range hiddenSites(layers) {
		st, ok := stats[name]
		if !ok {
			continue
		}
		all = studyio.AddStats(all, st)
		ls := layerStats{Site: name, Clipped: number(st.ClippedFraction()), Zeroed: number(st.ZeroedFraction()), SQNR: studyio.RoundDB(st.SQNR())}
		if r, ok := ratio[name]; ok {
			v := number(r)
			ls.RangeRatio = &v
		}
		h.Layers = append(h.Layers, ls)
		h.WorstSQNR = min(h.WorstSQNR, ls.SQNR)
	}
	if len(h.Layers) == 0 {
		return nil
	}
	h.Clipped, h.Zeroed, h.SQNR = number(all.ClippedFraction()), number(all.ZeroedFraction()), studyio.RoundDB(all.SQNR())
	return h
}

// runActivation trains one activation's model and evaluates it under every
// tier on every cohort (and, optionally, after a quantization-aware
// fine-tune).
func (s *study) runActivation(act string) (actResult, error) {
	w, tr, err := s.train(act)
	if err != nil {
		return actResult{}, err
	}
	res := actResult{Training: tr}
	cfg := s.modelConfig(act)
	fp32 := map[string]evaluation{} // by cohort
	var staticTier *graph.Tier
	var static map[string]*graph.Quant
	var calibMax map[string]float64
	for _, t := range s.tiers {
		var sites map[string]*graph.Quant
		if t.NeedsCalibration() {
			if sites, err = calibrate(cfg, w, t, s.calib); err != nil {
				return res, fmt.Errorf("%s: %w", act, err)
			}
			calibMax = map[string]float64{}
			res.Training.CalibMax = map[string]number{}
			for name, q := range sites {
				_, qmax := q.Spec.Format.Range(q.Spec.NarrowRange)
				calibMax[name] = largest(q.Spec.Scale) * float64(qmax)
				res.Training.CalibMax[name] = number(calibMax[name])
			}
			if staticTier == nil {
				tt := t
				staticTier, static = &tt, sites
			}
		}
		for _, co := range s.cohorts {
			data := s.eval[co.Name]
			e, err := evaluate(cfg, w, tierPlan(t, sites), data)
			if err != nil {
				return res, fmt.Errorf("%s, %s, %s: %w", act, t.Name, co.Name, err)
			}
			var ratio map[string]float64
			if sites != nil {
				seen, err := maxAbs(cfg, w, t, data)
				if err != nil {
					return res, fmt.Errorf("%s, %s, %s: %w", act, t.Name, co.Name, err)
				}
				ratio = map[string]float64{}
				for name, v := range seen {
					ratio[name] = v / calibMax[name]
				}
			}
			if t.Name == "fp32" {
				fp32[co.Name] = e
			}
			res.Rows = append(res.Rows, s.row(act, t.Name, co.Name, e, summarize(e.stats, cfg.Layers, ratio), fp32[co.Name]))
			s.advance(1, fmt.Sprintf("evaluating %s under %s", act, t.Name))
		}
	}
	if s.cfg.Train.QATSteps > 0 && staticTier != nil {
		if res.QAT, res.Training.LearnedMax, err = s.qat(act, w, *staticTier, static, fp32); err != nil {
			return res, fmt.Errorf("%s, QAT: %w", act, err)
		}
	}
	return res, nil
}

func (s *study) row(act, tier, cohort string, e evaluation, h *hiddenStats, fp32 evaluation) row {
	m := e.m
	return row{Seed: s.seed, Activation: act, Tier: tier, Cohort: cohort, Accuracy: number(m.Accuracy()), SeqAcc: number(m.SeqAccuracy()),
		Loss: number(m.Loss), Drop: number(100 * (fp32.m.Accuracy() - m.Accuracy())), DropSE: number(studyio.PairedSE(fp32.correct, e.correct)),
		Tokens: m.Tokens, Seqs: m.Seqs, Hidden: h}
}

// qat fine-tunes the model for QATSteps under tier t with its calibrated
// static scales, every site passing gradients straight through
// (Quant.PlainSTE), on the training distribution, once per -qat-scales
// mode (scales fixed, or learned with the weights), and evaluates each
// result under the same plan, with its learned scales. The control takes
// the same steps on the same data without quantization and is evaluated in
// fp32: more training alone changes the accuracy too, and the control
// tells how much. It also returns, per learnable mode, the static sites'
// learned largest |x| (scale·qmax).
func (s *study) qat(act string, w graph.Weights, t graph.Tier, static map[string]*graph.Quant, fp32 map[string]evaluation) ([]row, map[string]map[string]number, error) {
	cfg := s.modelConfig(act)
	type run struct {
		name    string
		planFor func(seqLen int) *graph.Plan // nil: fp32
		mode    qatMode
	}
	runs := []run{{name: controlTier, planFor: func(int) *graph.Plan { return nil }}}
	for _, name := range s.cfg.Train.QATScales {
		m, _ := qatModeNamed(name) // validated with the flags
		runs = append(runs, run{m.Tier, func(n int) *graph.Plan {
			p := plan(t, n, static)
			m.apply(p)
			return p
		}, m})
	}
	var rows []row
	learned := map[string]map[string]number{}
	for _, r := range runs {
		var opts []graph.Option
		if p := r.planFor(cfg.SeqLen); p != nil {
			for _, q := range append([]*graph.Quant{p.Weights, p.Head, p.FFNInput, p.FFNHidden, p.AttnScores, p.AttnProbs, p.BlockOutput}, mapValues(p.Sites)...) {
				if q != nil {
					q.PlainSTE = true
				}
			}
			opts = append(opts, graph.WithPlan(p))
		}
		wf, sites, err := s.finetune(act, w, opts...)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", r.name, err)
		}
		if r.mode.learnActs {
			learned[r.mode.Name] = map[string]number{}
			for _, site := range sites {
				if _, ok := static[site.Name]; ok && site.ScaleNode() != nil {
					_, qmax := site.Quant.Spec.Format.Range(site.Quant.Spec.NarrowRange)
					learned[r.mode.Name][site.Name] = number(largest(site.Scale()) * float64(qmax))
				}
			}
		}
		for _, co := range s.cohorts {
			e, err := evaluate(cfg, wf, r.planFor, s.eval[co.Name])
			if err != nil {
				return nil, nil, fmt.Errorf("%s, %s: %w", r.name, co.Name, err)
			}
			rows = append(rows, s.row(act, r.name, co.Name, e, summarize(e.stats, cfg.Layers, nil), fp32[co.Name]))
			s.advance(1, "evaluating "+act+" after fine-tuning")
		}
	}
	return rows, learned, nil
}

// finetune continues training w for QATSteps at QATRate on the QAT data
// stream (the same batches for every call) and returns the new weights
// (with the learned scales of learnable sites) and the trained model's
// quantization sites.
func (s *study) finetune(act string, w graph.Weights, opts ...graph.Option) (graph.Weights, []*graph.Site, error) {
	cfg, tc := s.modelConfig(act), s.cfg.Train
	tr, err := graph.NewTrainer(cfg, w, graph.TrainConfig{Batch: tc.Batch, LearnRate: tc.QATRate}, opts...)
	if err != nil {
		return nil, nil, err
	}
	defer tr.Close()
	rng := rand.New(rand.NewPCG(s.seed, streamQAT))
	for step := range tc.QATSteps {
		if _, err := tr.Step(s.cfg.Task.trainingBatch(rng, tc.Batch)); err != nil {
			return nil, nil, fmt.Errorf("step %d: %w", step, err)
		}
		s.advance(1, "fine-tuning "+act)
	}
	wf, err := tr.Weights()
	return wf, tr.Model().Sites(), err
}

func mapValues(m map[string]*graph.Quant) []*graph.Quant {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]*graph.Quant, len(keys))
	for i, k := range keys {
		out[i] = m[k]
	}
	return out
}

// runAll studies every activation, Workers at a time, and returns the
// results in the order of the activations.
func (s *study) runAll() ([]actResult, error) {
	acts := s.cfg.Activations
	out := make([]actResult, len(acts))
	err := studyio.Parallel(len(acts), s.cfg.Workers, func(i int) error {
		var err error
		out[i], err = s.runActivation(acts[i])
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// gateFailure names a combination whose drop exceeds the threshold.
type gateFailure struct {
	Activation string `json:"activation"`
	Tier       string `json:"tier"`
	Cohort     string `json:"cohort"`
	Drop       number `json:"drop_points"`
}

func (g gateFailure) String() string {
	return fmt.Sprintf("%s/%s/%s (%.1f)", g.Activation, g.Tier, g.Cohort, float64(g.Drop))
}

// gateResult is the regression gate over the standard tiers' rows.
type gateResult struct {
	Threshold number        `json:"threshold_points"`
	Failures  []gateFailure `json:"failures"`
}

// gate names every combination whose drop, the mean over the seeds,
// exceeds threshold points.
func gate(rows []summary, threshold float64) gateResult {
	g := gateResult{Threshold: number(threshold), Failures: []gateFailure{}}
	for _, r := range rows {
		// NaN (no tokens) fails too: a drop that cannot be measured passes nothing.
		if d := float64(r.Drop.Mean); d > threshold || math.IsNaN(d) {
			g.Failures = append(g.Failures, gateFailure{r.Activation, r.Tier, r.Cohort, r.Drop.Mean})
		}
	}
	return g
}

func (g gateResult) String() string {
	if len(g.Failures) == 0 {
		return fmt.Sprintf("gate: PASS, no accuracy drop above %.1f point(s) against fp32", float64(g.Threshold))
	}
	names := make([]string, len(g.Failures))
	for i, f := range g.Failures {
		names[i] = f.String()
	}
	return fmt.Sprintf("gate: FAIL, %d combination(s) drop more than %.1f point(s) against fp32: %s",
		len(g.Failures), float64(g.Threshold), strings.Join(names, ", "))
}

// cohortNames returns the names of the cohorts in order.
func cohortNames(cs []cohort) []string {
	var n []string
	for _, c := range cs {
		n = append(n, c.Name)
	}
	return n
}
