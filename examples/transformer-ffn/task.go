package main

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/actq/actq/graph"
	"gorgonia.org/tensor"
)

// The task: sort a sequence of decimal digits. A sequence of n digits is
//
//	d₁ … dₙ SEP s₁ … sₙ
//
// with s the digits in ascending order. The model reads the first 2n tokens
// and predicts the next token at each position; only the n answer tokens
// count (the targets at the digits are graph.Ignore), so the loss and the
// accuracy measure sorting alone. Sorting needs attention (to find the next
// digit anywhere in the input) and the FFN (to turn what attention gathered
// into the token to emit), and a 2-layer model learns it to essentially
// 100% token accuracy in a few hundred steps.
const (
	digits = 10      // tokens 0–9 are the digits
	sep    = digits  // separates the input from the answer
	pad    = sep + 1 // fills a training window after a shorter sequence
	vocab  = pad + 1 // the model's vocabulary
)

// seqLen returns the model's window for sequences of n digits.
func seqLen(n int) int { return 2 * n }

// sortSequence returns the token sequence for the digits d (which it does
// not change): d, SEP, then d sorted.
func sortSequence(d []int) []int {
	s := make([]int, 0, 2*len(d)+1)
	s = append(s, d...)
	s = append(s, sep)
	sorted := slices.Clone(d)
	slices.Sort(sorted)
	return append(s, sorted...)
}

// appendSequence appends one sequence of len(d) digits to b in a window of
// window tokens (≥ 2·len(d)): inputs, then PAD tokens with ignored targets.
func appendSequence(b *graph.Batch, d []int, window int) {
	full := sortSequence(d)
	n := len(d)
	for t := range window {
		tok, tgt := pad, graph.Ignore
		if t < 2*n {
			tok = full[t]
			if t >= n {
				tgt = full[t+1]
			}
		}
		b.Tokens = append(b.Tokens, tok)
		b.Targets = append(b.Targets, tgt)
	}
}

// cohort is a family of inputs: which lengths, and how the digits of one
// sequence are drawn.
type cohort struct {
	Name    string `json:"name"`
	Desc    string `json:"description"`
	Lengths []int  `json:"lengths"` // digits per sequence, each equally often
	draw    func(rng *rand.Rand, n int) []int
}

// uniformDigits draws n independent uniform digits.
func uniformDigits(rng *rand.Rand, n int) []int {
	d := make([]int, n)
	for i := range d {
		d[i] = rng.IntN(digits)
	}
	return d
}

// extremeRuns draws n digits of which each is, with probability 3/4, one
// extreme digit (0 or 9, chosen per sequence) and otherwise uniform: long
// runs of one repeated extreme token.
func extremeRuns(rng *rand.Rand, n int) []int {
	x := 9 * rng.IntN(2)
	d := make([]int, n)
	for i := range d {
		d[i] = x
		if rng.IntN(4) == 0 {
			d[i] = rng.IntN(digits)
		}
	}
	return d
}

// span returns lo, lo+1, …, hi.
func span(lo, hi int) []int {
	var s []int
	for n := lo; n <= hi; n++ {
		s = append(s, n)
	}
	return s
}

// cohorts returns the study's two cohorts: in-distribution inputs, of the
// kind calibration sees, and stressed inputs beyond them.
func (c taskConfig) cohorts() []cohort {
	return []cohort{
		{
			Name:    "in-dist",
			Desc:    fmt.Sprintf("%d–%d uniform random digits, as the calibration batches", c.MinDigits, c.TypicalDigits),
			Lengths: span(c.MinDigits, c.TypicalDigits),
			draw:    uniformDigits,
		},
		{
			Name: "stressed",
			Desc: fmt.Sprintf("%d digits (positions %d–%d, which calibration never sees), ¾ of them one repeated extreme digit (0 or 9)",
				c.MaxDigits, seqLen(c.TypicalDigits), seqLen(c.MaxDigits)-1),
			Lengths: []int{c.MaxDigits},
			draw:    extremeRuns,
		},
	}
}

// trainingBatch draws batch sequences of MinDigits–MaxDigits uniform digits
// in the full window.
func (c taskConfig) trainingBatch(rng *rand.Rand, batch int) graph.Batch {
	window := seqLen(c.MaxDigits)
	b := graph.Batch{Tokens: make([]int, 0, batch*window), Targets: make([]int, 0, batch*window)}
	for range batch {
		n := c.MinDigits + rng.IntN(c.MaxDigits-c.MinDigits+1)
		appendSequence(&b, uniformDigits(rng, n), window)
	}
	return b
}

// lengthBatches are a cohort's batches grouped by sequence length: each
// batch holds sequences of one length n in a window of exactly 2n tokens, so
// that nothing but real tokens reaches the quantization sites (a padded
// position's activations would count in the statistics and in calibration).
type lengthBatches struct {
	Digits  int
	Batches []graph.Batch
}

// sample draws about seqs sequences of the cohort, spread evenly over its
// lengths, in batches of at most evalBatch sequences of one length.
func (co cohort) sample(rng *rand.Rand, seqs int) []lengthBatches {
	perLength := (seqs + len(co.Lengths) - 1) / len(co.Lengths)
	size := min(evalBatch, perLength)
	count := (perLength + size - 1) / size
	var out []lengthBatches
	for _, n := range co.Lengths {
		lb := lengthBatches{Digits: n}
		for range count {
			var b graph.Batch
			for range size {
				appendSequence(&b, co.draw(rng, n), seqLen(n))
			}
			lb.Batches = append(lb.Batches, b)
		}
		out = append(out, lb)
	}
	return out
}

// forLength returns cfg and w for a window of seqLen tokens: the position
// embeddings cut to the first seqLen rows (the model is causal, so a shorter
// window computes exactly what the longer one computes at those positions).
func forLength(cfg graph.Config, w graph.Weights, seqLen int) (graph.Config, graph.Weights, error) {
	if seqLen == cfg.SeqLen {
		return cfg, w, nil
	}
	pos, ok := w["embed.pos"]
	if !ok {
		return cfg, nil, fmt.Errorf("weights lack embed.pos")
	}
	cut, err := pos.Slice(tensor.S(0, seqLen))
	if err != nil {
		return cfg, nil, err
	}
	short := make(graph.Weights, len(w))
	for k, v := range w {
		short[k] = v
	}
	short["embed.pos"] = cut.(*tensor.Dense).Materialize().(*tensor.Dense)
	cfg.SeqLen = seqLen
	return cfg, short, nil
}
