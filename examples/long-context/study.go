package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"

	"github.com/actq/actq/graph"
	"github.com/actq/actq/internal/studyio"
	"github.com/actq/actq/quantize"
)

type (
	number   = studyio.Number
	estimate = studyio.Estimate
)

// Random streams: each use of randomness has its own, so that changing one
// part of the study (the cohorts, say) leaves the others' data unchanged.
const (
	streamTrain = iota + 1
	streamCalib
	streamEval // + the cohort's length << 8: each cohort its own stream
)

// training summarises one seed's training run.
type training struct {
	Seed   uint64 `json:"seed"`
	Params int    `json:"parameters"`
	// Over the last tenth of the last stage's steps (its training
	// batches):
	Loss     number `json:"final_train_loss"`
	Accuracy number `json:"final_train_accuracy"`
}

// siteStats is what one kind of quantization site did over a cohort,
// every site of the kind (every layer) together.
type siteStats struct {
	Kind     string `json:"kind"`
	Sites    int    `json:"sites"`
	Elements int64  `json:"elements"`
	Clipped  number `json:"clipped_fraction"`
	Zeroed   number `json:"zeroed_fraction"`
	SQNR     number `json:"sqnr_db"`
	// NonFinite counts NaN and ±Inf inputs (the masked −Inf scores of the
	// graph never reach a Generator's sites).
	NonFinite int64 `json:"non_finite"`
}

// row is one seed × tier × cohort result, against fp32 on the same
// sequences. Token figures are over the answer positions.
type row struct {
	Seed     uint64 `json:"seed"`
	Tier     string `json:"tier"`
	Length   int    `json:"length"`
	Seqs     int    `json:"sequences"`
	Tokens   int    `json:"tokens"`
	Accuracy number `json:"accuracy"`
	// Drop is fp32's accuracy minus this one, in points; DropSE its
	// standard error, paired over the same tokens.
	Drop   number `json:"drop_points"`
	DropSE number `json:"drop_se_points"`
	// KLD is the mean KL divergence from fp32's next-token distribution
	// over the tokens whose logits are all finite, KLDSE its standard
	// error (s/√n over the tokens), KLDP99 the 99th percentile
	// (nearest rank) and KLDMax the largest.
	KLD    number `json:"kld"`
	KLDSE  number `json:"kld_se"`
	KLDP99 number `json:"kld_p99"`
	KLDMax number `json:"kld_max"`
	// KLDRight is the mean KLD over the tokens fp32 gets right: the
	// precision effect apart from the positions where the model's own
	// length generalisation fails.
	KLDRight number `json:"kld_fp32_right"`
	// Confidence is the mean probability of the right token (over the
	// tokens with finite logits); fp32's says how sure the model is at
	// this length.
	Confidence number `json:"confidence"`
	// SameTop is the share of tokens whose argmax is fp32's (a token with
	// a non-finite logit counts as different), RMSDp the root mean square
	// of Δp = p(right token) − fp32's p(right token) over the finite ones.
	SameTop number `json:"same_top"`
	RMSDp   number `json:"rms_dp"`
	// NaNRate is the share of sequences with a non-finite logit at an
	// answer position.
	NaNRate number      `json:"nan_rate"`
	Sites   []siteStats `json:"sites,omitempty"`
}

// cohort is the evaluation sequences of one length.
type cohort struct {
	Length int
	Seqs   []sequence
}

// reference is fp32's output on a cohort: per sequence, per answer, the
// log-probabilities of every token, and whether the argmax is right.
type reference struct {
	logp    [][][]float64
	correct []bool // per token, in order
}

// study holds what a run shares: the config, its tiers, the progress bar.
type study struct {
	cfg   config
	dh    int
	tiers []tier // cfg.Tiers

	mu       sync.Mutex
	progress func(n int, desc string) // nil: no progress reports
}

func newStudy(cfg config) (*study, error) {
	s := &study{cfg: cfg, dh: cfg.Model.DModel / cfg.Model.Heads}
	for _, name := range cfg.Tiers {
		t, err := tierByName(name, s.dh)
		if err != nil {
			return nil, err
		}
		s.tiers = append(s.tiers, t)
	}
	return s, nil
}

func (s *study) advance(n int, desc string) {
	if s.progress != nil {
		s.mu.Lock()
		s.progress(n, desc)
		s.mu.Unlock()
	}
}

// modelConfig returns the model for sequences of seqLen tokens.
func (s *study) modelConfig(seqLen int) graph.Config {
	m := s.cfg.Model
	return graph.Config{Vocab: vocab, SeqLen: seqLen, DModel: m.DModel, Heads: m.Heads, KVHeads: m.KVHeads,
		DHidden: m.DHidden, Layers: m.Layers, Activation: "silu", Gated: true, NoBias: true, RoPETheta: m.RoPETheta}
}

// unit is one piece of a sweep: a tier of a seed.
type unit struct {
	Seed uint64
	Tier int // index into cfg.Tiers
}

// units returns the sweep's units in order: seed-major, tiers in order.
func (s *study) units() []unit {
	var u []unit
	for _, seed := range s.cfg.Seeds {
		for i := range s.tiers {
			u = append(u, unit{seed, i})
		}
	}
	return u
}

// work returns the progress bar's total for the given units: training
// steps for each seed they touch, and a step per sequence evaluated
// (fp32's, as the reference, for each seed too).
func (s *study) work(us []unit) int {
	steps := 0
	for _, st := range s.cfg.Stages {
		steps += st.Steps
	}
	per := len(s.cfg.Lengths) * s.cfg.Seqs
	n, last := 0, uint64(0)
	for i, u := range us {
		if i == 0 || u.Seed != last {
			n += steps + per
			last = u.Seed
		}
		if s.tiers[u.Tier].Name != "fp32" {
			n += per
		}
	}
	return n
}

// runUnits runs the given units (consecutive units of a seed share its
// model) and returns their rows and the training summaries of their
// seeds.
func (s *study) runUnits(us []unit) ([]row, []training, error) {
	var rows []row
	var trainings []training
	for lo := 0; lo < len(us); {
		hi := lo
		for hi < len(us) && us[hi].Seed == us[lo].Seed {
			hi++
		}
		var ts []tier
		for _, u := range us[lo:hi] {
			ts = append(ts, s.tiers[u.Tier])
		}
		r, tr, err := s.runSeed(us[lo].Seed, ts)
		if err != nil {
			return nil, nil, fmt.Errorf("seed %d: %w", us[lo].Seed, err)
		}
		rows = append(rows, r...)
		trainings = append(trainings, tr)
		lo = hi
	}
	return rows, trainings, nil
}

// runSeed trains the seed's model and evaluates it under the tiers on
// every cohort.
func (s *study) runSeed(seed uint64, tiers []tier) ([]row, training, error) {
	w, tr, err := s.train(seed)
	if err != nil {
		return nil, tr, err
	}
	cohorts := s.cohorts(seed)
	cfg := s.modelConfig(s.cfg.Stages[len(s.cfg.Stages)-1].Window)
	fp32, err := graph.NewGenerator(cfg, w)
	if err != nil {
		return nil, tr, err
	}
	refs := make([]reference, len(cohorts))
	for i, co := range cohorts {
		if refs[i], err = s.reference(fp32, co, seed); err != nil {
			return nil, tr, fmt.Errorf("fp32, %d tokens: %w", co.Length, err)
		}
	}
	var rows []row
	for _, t := range tiers {
		if t.Name == "fp32" {
			for i, co := range cohorts {
				rows = append(rows, s.fp32Row(seed, co, refs[i]))
			}
			continue
		}
		gen, err := s.generator(t, cfg, w, seed)
		if err != nil {
			return nil, tr, fmt.Errorf("%s: %w", t.Name, err)
		}
		for i, co := range cohorts {
			r, err := s.evaluate(gen, t, co, refs[i], seed)
			if err != nil {
				return nil, tr, fmt.Errorf("%s, %d tokens: %w", t.Name, co.Length, err)
			}
			rows = append(rows, r)
		}
	}
	return rows, tr, nil
}

// train trains the seed's model through the curriculum and returns its
// weights.
func (s *study) train(seed uint64) (graph.Weights, training, error) {
	rng := rand.New(rand.NewPCG(seed, streamTrain))
	var w graph.Weights
	tr := training{Seed: seed}
	for i, st := range s.cfg.Stages {
		t, err := graph.NewTrainer(s.modelConfig(st.Window), w, graph.TrainConfig{Batch: st.Batch, LearnRate: s.cfg.LearnRate, Seed: seed})
		if err != nil {
			return nil, tr, err
		}
		tail := max(1, st.Steps/10)
		var last graph.Metrics
		for step := range st.Steps {
			m, err := t.Step(st.batch(rng))
			if err != nil {
				t.Close()
				return nil, tr, fmt.Errorf("stage %d, step %d: %w", i+1, step, err)
			}
			if step >= st.Steps-tail {
				last = last.Add(m)
			}
			s.advance(1, fmt.Sprintf("seed %d: training, stage %d of %d", seed, i+1, len(s.cfg.Stages)))
		}
		w, err = t.Weights()
		t.Close()
		if err != nil {
			return nil, tr, err
		}
		tr.Loss, tr.Accuracy = number(last.Loss), number(last.Accuracy())
	}
	tr.Params = w.Count()
	return w, tr, nil
}

// cohorts draws the seed's evaluation sequences, each cohort from a
// stream of its own.
func (s *study) cohorts(seed uint64) []cohort {
	out := make([]cohort, len(s.cfg.Lengths))
	for i, n := range s.cfg.Lengths {
		rng := rand.New(rand.NewPCG(seed, streamEval+uint64(n)<<8))
		out[i].Length = n
		for range s.cfg.Seqs {
			out[i].Seqs = append(out[i].Seqs, needleSequence(rng, n, s.cfg.Needle, s.cfg.Gap))
		}
	}
	return out
}

// generator returns the Generator of tier t, with w4a8-static's scales
// calibrated on sequences of the training distribution (the last stage's).
func (s *study) generator(t tier, cfg graph.Config, w graph.Weights, seed uint64) (*graph.Generator, error) {
	var opts []graph.Option
	if p := t.plan(cfg.SeqLen); p != nil {
		if t.needsCalibration() {
			st := s.cfg.Stages[len(s.cfg.Stages)-1]
			st.Batch = min(st.Batch, s.cfg.CalibSeqs)
			rng := rand.New(rand.NewPCG(seed, streamCalib))
			var batches []graph.Batch
			for n := 0; n < s.cfg.CalibSeqs; n += st.Batch {
				batches = append(batches, st.batch(rng))
			}
			var err error
			if p, err = graph.Calibrate(cfg, w, p, batches); err != nil {
				return nil, fmt.Errorf("calibration: %w", err)
			}
		}
		opts = append(opts, graph.WithPlan(p))
	}
	if t.arith != (graph.AttentionArithmetic{}) {
		opts = append(opts, graph.WithAttention(t.arith))
	}
	return graph.NewGenerator(cfg, w, opts...)
}

// logits runs every sequence of co through gen, Workers at a time, and
// returns each one's logits at its answer positions.
func (s *study) logits(gen *graph.Generator, co cohort, desc string) ([][]float64, error) {
	out := make([][]float64, len(co.Seqs))
	err := studyio.Parallel(len(co.Seqs), s.cfg.Workers, func(i int) error {
		var err error
		out[i], err = gen.Logits(co.Seqs[i].Tokens, co.Seqs[i].Positions)
		s.advance(1, desc)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// reference runs fp32 on a cohort.
func (s *study) reference(gen *graph.Generator, co cohort, seed uint64) (reference, error) {
	all, err := s.logits(gen, co, fmt.Sprintf("seed %d: fp32 at %d tokens", seed, co.Length))
	if err != nil {
		return reference{}, err
	}
	ref := reference{logp: make([][][]float64, len(co.Seqs))}
	for i, seq := range co.Seqs {
		for k, target := range seq.Targets {
			lp, ok := logSoftmax(all[i][k*vocab : (k+1)*vocab])
			if !ok {
				return reference{}, fmt.Errorf("sequence %d: fp32 gives a non-finite logit at position %d", i, seq.Positions[k])
			}
			ref.logp[i] = append(ref.logp[i], lp)
			ref.correct = append(ref.correct, argmax(lp) == target)
		}
	}
	return ref, nil
}

// fp32Row is fp32's own row: its accuracy, nothing lost.
func (s *study) fp32Row(seed uint64, co cohort, ref reference) row {
	right := 0
	for _, c := range ref.correct {
		if c {
			right++
		}
	}
	var conf []float64
	for i, seq := range co.Seqs {
		for k, target := range seq.Targets {
			conf = append(conf, math.Exp(ref.logp[i][k][target]))
		}
	}
	c, _ := meanSE(conf)
	return row{Seed: seed, Tier: "fp32", Length: co.Length, Seqs: len(co.Seqs), Tokens: len(ref.correct),
		Accuracy: number(float64(right) / float64(len(ref.correct))), Confidence: c}
}

// evaluate runs tier t's Generator on a cohort and compares it with fp32.
func (s *study) evaluate(gen *graph.Generator, t tier, co cohort, ref reference, seed uint64) (row, error) {
	gen.ResetStats()
	all, err := s.logits(gen, co, fmt.Sprintf("seed %d: %s at %d tokens", seed, t.Name, co.Length))
	if err != nil {
		return row{}, err
	}
	r := row{Seed: seed, Tier: t.Name, Length: co.Length, Seqs: len(co.Seqs)}
	var klds, kldRight, dps, conf []float64
	var correct []bool
	same, right, nanSeqs := 0, 0, 0
	for i, seq := range co.Seqs {
		bad := false
		for k, target := range seq.Targets {
			lq, finite := logSoftmax(all[i][k*vocab : (k+1)*vocab])
			lp := ref.logp[i][k]
			ok := finite && argmax(lq) == target
			correct = append(correct, ok)
			if ok {
				right++
			}
			if !finite {
				bad = true
				continue
			}
			if argmax(lq) == argmax(lp) {
				same++
			}
			d := kld(lp, lq)
			klds = append(klds, d)
			if ref.correct[len(correct)-1] {
				kldRight = append(kldRight, d)
			}
			dps = append(dps, math.Exp(lq[target])-math.Exp(lp[target]))
			conf = append(conf, math.Exp(lq[target]))
		}
		if bad {
			nanSeqs++
		}
	}
	n := len(correct)
	r.Tokens = n
	r.Accuracy = number(float64(right) / float64(n))
	fp32Acc := 0.0
	for _, c := range ref.correct {
		if c {
			fp32Acc++
		}
	}
	r.Drop = number(100 * (fp32Acc - float64(right)) / float64(n))
	r.DropSE = number(studyio.PairedSE(ref.correct, correct))
	r.KLD, r.KLDSE = meanSE(klds)
	r.KLDP99, r.KLDMax = percentile(klds, 0.99), percentile(klds, 1)
	r.KLDRight, _ = meanSE(kldRight)
	r.Confidence, _ = meanSE(conf)
	r.SameTop = number(float64(same) / float64(n))
	r.RMSDp = rms(dps)
	r.NaNRate = number(float64(nanSeqs) / float64(len(co.Seqs)))
	r.Sites = kindStats(gen.Sites())
	return r, nil
}

// logSoftmax returns log softmax(x) in float64, and false if any x is not
// finite.
func logSoftmax(x []float64) ([]float64, bool) {
	m := math.Inf(-1)
	for _, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, false
		}
		m = math.Max(m, v)
	}
	sum := 0.0
	for _, v := range x {
		sum += math.Exp(v - m)
	}
	lse := m + math.Log(sum)
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = v - lse
	}
	return out, true
}

// kld returns Σ p·(log p − log q) for log-probabilities lp and lq.
func kld(lp, lq []float64) float64 {
	d := 0.0
	for i, l := range lp {
		d += math.Exp(l) * (l - lq[i])
	}
	return math.Max(d, 0) // rounding can leave −1e−17 for equal distributions
}

// argmax returns the index of the largest value (the first of equals).
func argmax(x []float64) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

// meanSE returns the mean of x and its standard error s/√n (NaN for no
// values; 0 for one).
func meanSE(x []float64) (number, number) {
	n := float64(len(x))
	if n == 0 {
		return number(math.NaN()), number(math.NaN())
	}
	sum := 0.0
	for _, v := range x {
		sum += v
	}
	mean := sum / n
	if n == 1 {
		return number(mean), 0
	}
	ss := 0.0
	for _, v := range x {
		ss += (v - mean) * (v - mean)
	}
	return number(mean), number(math.Sqrt(ss / (n - 1) / n))
}

// percentile returns the nearest-rank q-quantile of x: the smallest value
// with at least a share q of the values at or below it (q = 1: the
// largest); NaN for no values.
func percentile(x []float64, q float64) number {
	if len(x) == 0 {
		return number(math.NaN())
	}
	s := slices.Clone(x)
	sort.Float64s(s)
	k := int(math.Ceil(q*float64(len(s)))) - 1
	return number(s[min(max(k, 0), len(s)-1)])
}

// rms returns √(Σx²/n) (NaN for no values).
func rms(x []float64) number {
	if len(x) == 0 {
		return number(math.NaN())
	}
	ss := 0.0
	for _, v := range x {
		ss += v * v
	}
	return number(math.Sqrt(ss / float64(len(x))))
}

// kindStats sums the statistics of the sites of each kind, in the order
// the kinds first appear (the order of a forward pass).
func kindStats(sites []*graph.Site) []siteStats {
	var kinds []string
	sum := map[string]quantize.StatsSnapshot{}
	count := map[string]int{}
	for _, site := range sites {
		k := site.Kind.String()
		if _, ok := sum[k]; !ok {
			kinds = append(kinds, k)
		}
		sum[k] = studyio.AddStats(sum[k], site.Stats())
		count[k]++
	}
	out := make([]siteStats, len(kinds))
	for i, k := range kinds {
		st := sum[k]
		out[i] = siteStats{Kind: k, Sites: count[k], Elements: st.Elements, Clipped: number(st.ClippedFraction()),
			Zeroed: number(st.ZeroedFraction()), SQNR: studyio.RoundDB(st.SQNR()), NonFinite: st.NaN + st.Inf}
	}
	return out
}
