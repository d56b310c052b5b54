package main

import (
	"math"
	"math/rand/v2"
	"runtime"
	"sync"

	"github.com/actq/actq/internal/studyio"
)

// scoreConfig describes the synthetic attention scores: each row is one
// query's scaled dot products with a sequence's keys,
//
//	score_j = logitStd · ⟨q, k_j⟩/√d,  q, k_j ~ N(0, I_d),
//
// so scores are roughly N(0, logitStd²), and the first `sinks` positions are
// attention sinks whose logit is drawn uniformly from [sinkLo, sinkHi] for
// each row (large outliers, as the BOS token gets in trained LLMs).
type scoreConfig struct {
	Rows, DHead, DValue int
	LogitStd            float64
	Sinks               int
	SinkLo, SinkHi      float64
}

// workload is one sequence length's scores and values.
type workload struct {
	length int
	scores [][]float64 // Rows × length
	values [][]float64 // length × DValue
}

func newWorkload(cfg scoreConfig, length int, rng *rand.Rand) workload {
	w := workload{length: length, scores: make([][]float64, cfg.Rows), values: make([][]float64, length)}
	keys := make([][]float64, length)
	for j := range keys {
		keys[j] = normals(rng, cfg.DHead)
		w.values[j] = normals(rng, cfg.DValue)
	}
	scale := cfg.LogitStd / math.Sqrt(float64(cfg.DHead))
	for r := range w.scores {
		q := normals(rng, cfg.DHead)
		row := make([]float64, length)
		for j, k := range keys {
			var dot float64
			for i := range q {
				dot += q[i] * k[i]
			}
			row[j] = scale * dot
		}
		for j := 0; j < cfg.Sinks && j < length; j++ {
			row[j] = cfg.SinkLo + (cfg.SinkHi-cfg.SinkLo)*rng.Float64()
		}
		w.scores[r] = row
	}
	return w
}

func normals(rng *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = rng.NormFloat64()
	}
	return v
}

// softmaxResult holds one method's metrics at one length.
type softmaxResult struct {
	Method  string         `json:"method"`
	Length  int            `json:"length"`
	Rows    int            `json:"rows"`
	NaNRows studyio.Number `json:"nan_row_rate"`  // rows with any NaN probability
	ZeroRow studyio.Number `json:"zero_row_rate"` // rows whose probabilities are all 0
	// Over the rows without NaN (null in JSON when every row has NaN):
	MassLost  studyio.Number `json:"mass_lost"`        // mean Σ ref_j over the j where p_j = 0 (underflow)
	SumError  studyio.Number `json:"sum_error"`        // mean |Σ_j p_j − 1|
	MaxAbsErr studyio.Number `json:"max_abs_error"`    // max |p_j − ref_j|
	KL        studyio.Number `json:"kl"`               // mean KL(ref ‖ p/Σp) over rows not all zero, p_j = 0 counted as 1e-45
	OutputErr studyio.Number `json:"output_rel_error"` // mean ‖P·V − Pref·V‖ / ‖Pref·V‖
}

// klFloor stands in for a probability that came out exactly 0, so that KL
// stays finite and grows with the mass lost (1e-45 is about the smallest
// float32 subnormal).
const klFloor = 1e-45

// rowMetrics are one row's measurements against the reference.
type rowMetrics struct {
	nan, zero                          bool
	massLost, sumErr, maxAbs, kl, oErr float64
}

func measureRow(p, ref []float64, refOut []float64, values [][]float64) rowMetrics {
	var m rowMetrics
	allZero := true
	var sum float64
	for j, v := range p {
		if math.IsNaN(v) {
			m.nan = true
			return m
		}
		if v != 0 {
			allZero = false
		} else {
			m.massLost += ref[j]
		}
		sum += v
		m.maxAbs = math.Max(m.maxAbs, math.Abs(v-ref[j]))
	}
	m.zero = allZero
	m.sumErr = math.Abs(sum - 1)
	// KL against the method's probabilities renormalised (KL is a
	// divergence between distributions; the sum's own error is sumErr).
	// Exact zeros count as klFloor. Rounding can leave −1e-16: clamp.
	if sum > 0 && !math.IsInf(sum, 0) {
		for j, v := range p {
			if ref[j] > 0 {
				m.kl += ref[j] * (math.Log(ref[j]) - math.Log(math.Max(v/sum, klFloor)))
			}
		}
		m.kl = math.Max(m.kl, 0)
	} else {
		m.kl = math.NaN() // no distribution to compare (all zeros, or an infinite sum)
	}
	out := attend(p, values)
	var num, den float64
	for i := range out {
		d := out[i] - refOut[i]
		num += d * d
		den += refOut[i] * refOut[i]
	}
	m.oErr = math.Sqrt(num / den)
	return m
}

// attend returns P·V for one row of probabilities, in float64: the study
// isolates the error of the probabilities.
func attend(p []float64, values [][]float64) []float64 {
	out := make([]float64, len(values[0]))
	for j, pj := range p {
		if pj == 0 {
			continue
		}
		for i, v := range values[j] {
			out[i] += pj * v
		}
	}
	return out
}

// runSoftmaxStudy evaluates every method on one workload. Rows are spread
// over GOMAXPROCS goroutines; results do not depend on the split.
func runSoftmaxStudy(w workload, ms []method) ([]softmaxResult, error) {
	rows := len(w.scores)
	refs := make([][]float64, rows)
	refOuts := make([][]float64, rows)
	perRow := make([][]rowMetrics, rows) // [row][method]
	errs := make([]error, rows)
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := make([]float64, w.length)
			for r := range next {
				ref := make([]float64, w.length)
				if err := stableFloat64(ref, w.scores[r]); err != nil {
					errs[r] = err
					continue
				}
				refs[r], refOuts[r] = ref, attend(ref, w.values)
				perRow[r] = make([]rowMetrics, len(ms))
				for mi, m := range ms {
					if err := m.probs(p, w.scores[r]); err != nil {
						errs[r] = err
						break
					}
					perRow[r][mi] = measureRow(p, ref, refOuts[r], w.values)
				}
			}
		}()
	}
	for r := range rows {
		next <- r
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	results := make([]softmaxResult, len(ms))
	for mi, m := range ms {
		res := softmaxResult{Method: m.name, Length: w.length, Rows: rows}
		finite, withKL := 0, 0
		for r := range rows {
			rm := perRow[r][mi]
			if rm.nan {
				res.NaNRows++
				continue
			}
			finite++
			if rm.zero {
				res.ZeroRow++
			}
			res.MassLost += studyio.Number(rm.massLost)
			res.SumError += studyio.Number(rm.sumErr)
			res.MaxAbsErr = studyio.Number(math.Max(float64(res.MaxAbsErr), rm.maxAbs))
			if !math.IsNaN(rm.kl) {
				res.KL += studyio.Number(rm.kl)
				withKL++
			}
			res.OutputErr += studyio.Number(rm.oErr)
		}
		res.NaNRows /= studyio.Number(rows)
		res.ZeroRow /= studyio.Number(rows)
		if f := studyio.Number(finite); finite > 0 {
			res.MassLost /= f
			res.SumError /= f
			res.OutputErr /= f
		} else {
			res.MassLost, res.SumError, res.MaxAbsErr, res.OutputErr = nan(), nan(), nan(), nan()
		}
		if withKL > 0 {
			res.KL /= studyio.Number(withKL)
		} else {
			res.KL = nan()
		}
		results[mi] = res
	}
	return results, nil
}

func nan() studyio.Number { return studyio.Number(math.NaN()) }
