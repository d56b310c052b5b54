package main

import (
	"fmt"
	"math/rand/v2"

	"github.com/actq/actq/graph"
)

// The task: copy a needle seen once, far back. A sequence of length L with
// a needle of m tokens is
//
//	BOS n₁ … nₘ f₁ … f_g n₁ n₂ … nₘ
//
// with n₁ … nₘ distinct needle tokens, f a haystack of g = L − 2m − 1
// filler tokens, and the needle repeated at the end. The model predicts
// the next token everywhere; only the m − 1 positions of the repeat whose
// next token is the needle's (n₂ … nₘ, after the cue n₁) count: each
// answer is the token that followed the same token L − m − 1 positions
// back, and nothing in between tells it. Filler tokens never occur in a
// needle, so the only way to an answer is attention to the first copy.
//
// The mechanism that solves it is an induction circuit (Olsson et al.
// 2022): a previous-token head writes each token's predecessor into its
// position, and a second-layer head at nᵢ attends to the position whose
// predecessor is nᵢ and copies its token. Nothing in it depends on the
// length, so a model trained on short sequences can run it on long ones:
// how well it does is the fp32 accuracy per cohort.
const (
	needleTokens = 64                          // tokens 0–63 make up needles
	fillerTokens = 63                          // tokens 64–126 fill the haystack
	bos          = needleTokens + fillerTokens // 127 starts every sequence
	vocab        = bos + 1
)

// sequence is one evaluation sequence and its answers.
type sequence struct {
	Tokens    []int
	Positions []int // the answer positions, in order
	Targets   []int // the token each answer position should predict
}

// needleSequence draws a sequence of length n with a needle of m tokens
// (n ≥ 2m + 1, m ≤ needleTokens) and gap filler tokens between the needle
// and its repeat: the rest of the filler goes before the needle. gap < 0
// puts the needle right after BOS, the whole haystack between (the
// layout above); a gap ≥ 0 makes the distance the answers look back m +
// gap tokens whatever n is, so that a long context need not mean a long
// distance.
func needleSequence(rng *rand.Rand, n, m, gap int) sequence {
	s := sequence{Tokens: make([]int, n)}
	s.Tokens[0] = bos
	needle := rng.Perm(needleTokens)[:m]
	filler := n - 2*m - 1
	if gap < 0 || gap > filler {
		gap = filler
	}
	before := filler - gap
	for i := range filler {
		at := 1 + i
		if i >= before {
			at += m // after the needle
		}
		s.Tokens[at] = needleTokens + rng.IntN(fillerTokens)
	}
	copy(s.Tokens[1+before:], needle)
	at := n - m
	copy(s.Tokens[at:], needle)
	for i := range m - 1 {
		s.Positions = append(s.Positions, at+i)
		s.Targets = append(s.Targets, needle[i+1])
	}
	return s
}

// stage is one stage of the training curriculum: Steps Adam steps on
// batches of Batch sequences in windows of Window tokens, each sequence of
// a length drawn uniformly from 2·Needle+1 to Window, with needles of
// Needle tokens, followed by filler whose targets are ignored. Half the
// sequences have the needle right after BOS (the longest distance their
// length allows); the others a gap between needle and repeat drawn
// uniformly from 0 to all the filler, so that the model finds the needle
// by its content wherever it is.
type stage struct {
	Window int `json:"window"`
	Needle int `json:"needle"`
	Batch  int `json:"batch"`
	Steps  int `json:"steps"`
}

func (s stage) String() string {
	return fmt.Sprintf("%d:%d:%d:%d", s.Window, s.Needle, s.Batch, s.Steps)
}

// check returns an error for a stage that does not fit together.
func (s stage) check() error {
	switch {
	case s.Needle < 2 || s.Needle > needleTokens:
		return fmt.Errorf("stage %v: needle %d, want 2 to %d tokens", s, s.Needle, needleTokens)
	case s.Window < 2*s.Needle+1 || s.Window > 4096:
		return fmt.Errorf("stage %v: window %d, want 2·needle+1 = %d to 4096", s, s.Window, 2*s.Needle+1)
	case s.Batch < 1 || s.Batch > 1024 || s.Steps < 1:
		return fmt.Errorf("stage %v: want 1 to 1024 sequences a batch and at least one step", s)
	}
	return nil
}

// batch draws one training batch of the stage.
func (s stage) batch(rng *rand.Rand) graph.Batch {
	b := graph.Batch{Tokens: make([]int, 0, s.Batch*s.Window), Targets: make([]int, 0, s.Batch*s.Window)}
	for range s.Batch {
		n := 2*s.Needle + 1 + rng.IntN(s.Window-2*s.Needle)
		gap := -1
		if rng.IntN(2) == 0 {
			gap = rng.IntN(n - 2*s.Needle)
		}
		seq := needleSequence(rng, n, s.Needle, gap)
		targets := make([]int, s.Window)
		for i := range targets {
			targets[i] = graph.Ignore
		}
		for i, p := range seq.Positions {
			targets[p] = seq.Targets[i]
		}
		b.Tokens = append(b.Tokens, seq.Tokens...)
		for range s.Window - n {
			b.Tokens = append(b.Tokens, needleTokens+rng.IntN(fillerTokens))
		}
		b.Targets = append(b.Targets, targets...)
	}
	return b
}
