package graph

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/actq/actq/ops"
)

// Sampling says how Generator.Generate picks each token from the logits z
// of the model's next-token distribution.
//
// Temperature 0 is greedy decoding: the token with the largest logit, the
// first (lowest index) on ties; a NaN logit never wins. TopK, TopP and Seed
// are then ignored.
//
// Temperature T > 0 draws from p_i ∝ e^((z_i − max z)/T), computed in
// float64, over the candidates left by two cuts, in this order:
//
//   - TopK > 0 keeps the TopK tokens of largest logit (ties broken by
//     index); 0 keeps every token.
//   - 0 < TopP < 1 keeps the nucleus: the smallest set of the most probable
//     candidates (ties broken by index) whose probabilities sum to at least
//     TopP of theirs; 0 and 1 keep every candidate.
//
// The draw takes one uniform variate per token from a PCG generator seeded
// with (Seed, 0), so equal Seeds give equal outputs. With TopK 1 the draw
// is the greedy token.
//
// Non-finite logits: NaN logits are never drawn; if some logits are +Inf,
// they share all the probability equally (the limit of the softmax); −Inf
// logits have probability 0. A step whose logits are all NaN (greedy), or
// all NaN or −Inf (sampling), has no token: Generate returns an error
// wrapping ops.ErrNonFinite.
type Sampling struct {
	Temperature float64 // 0: greedy (argmax)
	TopK        int     // 0: all tokens
	TopP        float64 // 0 or 1: no nucleus cut
	Seed        uint64
}

// check returns an error wrapping ErrConfig for a negative, NaN or
// infinite Temperature, a negative TopK or a TopP outside [0, 1].
func (s Sampling) check() error {
	switch {
	case !(s.Temperature >= 0) || math.IsInf(s.Temperature, 1):
		return fmt.Errorf("Sampling.Temperature = %v, want 0 (greedy) or positive and finite: %w", s.Temperature, ErrConfig)
	case s.TopK < 0:
		return fmt.Errorf("Sampling.TopK = %d, want ≥ 0 (0: every token): %w", s.TopK, ErrConfig)
	case !(s.TopP >= 0 && s.TopP <= 1):
		return fmt.Errorf("Sampling.TopP = %v, want in [0, 1] (0 or 1: no cut): %w", s.TopP, ErrConfig)
	}
	return nil
}

// sampler picks tokens under one Sampling, with its random source and
// scratch space (so that a step allocates nothing).
type sampler struct {
	s    Sampling
	rng  *rand.Rand
	w    []float64 // the candidates' unnormalised probabilities, by token
	cand []int     // candidate tokens
}

func newSampler(s Sampling, vocab int) *sampler {
	sm := &sampler{s: s}
	if s.Temperature > 0 {
		sm.rng = newRand(s.Seed)
		sm.w, sm.cand = make([]float64, vocab), make([]int, 0, vocab)
	}
	return sm
}

// next returns the token picked from logits.
func (sm *sampler) next(logits []float32) (int, error) {
	if sm.s.Temperature == 0 {
		best := argmaxRow(logits)
		if math.IsNaN(float64(logits[best])) {
			return 0, fmt.Errorf("every logit is NaN: %w", ops.ErrNonFinite)
		}
		return best, nil
	}
	cand := sm.cand[:0]
	for i, z := range logits {
		if z == z {
			cand = append(cand, i)
		}
	}
	if k := sm.s.TopK; k > 0 && k < len(cand) {
		// The k largest logits, ties by index: a stable order.
		slices.SortFunc(cand, func(a, b int) int {
			if c := cmp.Compare(logits[b], logits[a]); c != 0 {
				return c
			}
			return cmp.Compare(a, b)
		})
		cand = cand[:k]
	}
	// Unnormalised probabilities, relative to the largest.
	top := math.Inf(-1)
	for _, i := range cand {
		top = max(top, float64(logits[i])/sm.s.Temperature)
	}
	if math.IsInf(top, -1) {
		return 0, fmt.Errorf("every logit is NaN or −Inf, no token has a positive probability: %w", ops.ErrNonFinite)
	}
	w := sm.w
	total := 0.0
	for _, i := range cand {
		z := float64(logits[i]) / sm.s.Temperature
		switch {
		case math.IsInf(top, 1) && math.IsInf(z, 1):
			w[i] = 1
		case math.IsInf(top, 1):
			w[i] = 0
		default:
			w[i] = math.Exp(z - top)
		}
		total += w[i]
	}
	if p := sm.s.TopP; p > 0 && p < 1 {
		slices.SortFunc(cand, func(a, b int) int {
			if c := cmp.Compare(w[b], w[a]); c != 0 {
				return c
			}
			return cmp.Compare(a, b)
		})
		cum := 0.0
		for k, i := range cand {
			cum += w[i]
			if cum >= p*total {
				cand = cand[:k+1]
				break
			}
		}
		total = 0
		for _, i := range cand {
			total += w[i]
		}
	}
	u := sm.rng.Float64() * total
	last := -1
	acc := 0.0
	for _, i := range cand {
		if w[i] == 0 {
			continue
		}
		acc += w[i]
		last = i
		if u < acc {
			return i, nil
		}
	}
	return last, nil // u within rounding of the total
}
