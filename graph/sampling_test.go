package graph

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/actq/actq/ops"
)

// draw returns counts of n tokens drawn from logits under s.
func draw(t *testing.T, s Sampling, logits []float32, n int) []int {
	t.Helper()
	sm := newSampler(s, len(logits))
	counts := make([]int, len(logits))
	for range n {
		tok, err := sm.next(logits)
		if err != nil {
			t.Fatal(err)
		}
		counts[tok]++
	}
	return counts
}

// chiSquare returns Σ (count − n·p)²/(n·p) over the tokens with p > 0, and
// whether any token with p = 0 was drawn.
func chiSquare(counts []int, p []float64) (float64, bool) {
	n := 0
	for _, c := range counts {
		n += c
	}
	x := 0.0
	for i, c := range counts {
		if p[i] == 0 {
			if c != 0 {
				return x, true
			}
			continue
		}
		e := float64(n) * p[i]
		x += (float64(c) - e) * (float64(c) - e) / e
	}
	return x, false
}

// softmaxOver returns softmax(z/T) restricted to keep (nil: all).
func softmaxOver(z []float32, temp float64, keep []int) []float64 {
	p := make([]float64, len(z))
	sum := 0.0
	for i, v := range z {
		if keep != nil && !slices.Contains(keep, i) {
			continue
		}
		p[i] = math.Exp(float64(v) / temp)
		sum += p[i]
	}
	for i := range p {
		p[i] /= sum
	}
	return p
}

// TestSamplingFollowsSoftmax: 40000 draws (fixed seed) from a fixed logit
// vector follow softmax(z/T), and TopK and TopP cut it as documented. The
// test statistic is χ² with k − 1 degrees of freedom for k candidates; the
// bound 27.9 is its 0.999 quantile for 9 degrees of freedom (the most
// here), so a correct sampler fails for one seed in a thousand: this seed
// passes, and a sampler that draws from the wrong distribution (another
// temperature, the cut not applied) gives statistics in the hundreds.
func TestSamplingFollowsSoftmax(t *testing.T) {
	z := []float32{1.2, -0.3, 2.5, 0.7, 0.7, -1.5, 3.1, 0.0, 1.9, -0.8}
	const n = 40000
	for _, c := range []struct {
		name string
		s    Sampling
		keep []int
	}{
		{"T=1", Sampling{Temperature: 1, Seed: 1}, nil},
		{"T=0.5", Sampling{Temperature: 0.5, Seed: 2}, nil},
		{"T=2.5", Sampling{Temperature: 2.5, Seed: 3}, nil},
		{"TopK 3", Sampling{Temperature: 1, TopK: 3, Seed: 4}, []int{6, 2, 8}},
		// softmax(z) sorted: 6 (.437), 2 (.240), 8 (.132), 0 (.065), …:
		// .437 + .240 = .677 < .75 ≤ .809.
		{"TopP 0.75", Sampling{Temperature: 1, TopP: 0.75, Seed: 5}, []int{6, 2, 8}},
		// TopK 5 keeps 6, 2, 8, 0 and the tied 3 before 4 (e^z: 22.2,
		// 12.2, 6.7, 3.3, 2.0); their cumulative shares .478, .741, .885,
		// .957: TopP 0.95 keeps four.
		{"TopK 5 TopP 0.95", Sampling{Temperature: 1, TopK: 5, TopP: 0.95, Seed: 6}, []int{6, 2, 8, 0}},
	} {
		p := softmaxOver(z, c.s.Temperature, c.keep)
		x, stray := chiSquare(draw(t, c.s, z, n), p)
		if stray || x > 27.9 {
			t.Errorf("%s: χ² = %.1f (drew a cut token: %v)", c.name, x, stray)
		}
		// The wrong distribution is far off: the check has power.
		if wrong, _ := chiSquare(draw(t, c.s, z, n), softmaxOver(z, c.s.Temperature*1.3, c.keep)); wrong < 100 {
			t.Errorf("%s: χ² against T·1.3 only %.1f", c.name, wrong)
		}
	}
}

// TestSamplingEdgeCases: greedy ties and NaN, TopK 1, TopP ties and
// bounds, non-finite logits, reproducible seeds.
func TestSamplingEdgeCases(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	one := func(s Sampling, z ...float32) int {
		t.Helper()
		tok, err := newSampler(s, len(z)).next(z)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	for _, c := range []struct {
		name string
		s    Sampling
		z    []float32
		want int
	}{
		{"greedy first on ties", Sampling{}, []float32{1, 3, 3, 2}, 1},
		{"greedy skips NaN", Sampling{}, []float32{nan, 1, nan, 0.5}, 1},
		{"greedy +Inf", Sampling{}, []float32{1, inf, 2}, 1},
		{"TopK 1 is greedy", Sampling{Temperature: 5, TopK: 1, Seed: 9}, []float32{0.1, 2, 2, nan, -1}, 1},
		{"TopK beyond the vocabulary", Sampling{Temperature: 1e-3, TopK: 99}, []float32{0, 5, 1}, 1},
		{"tiny TopP keeps the top token", Sampling{Temperature: 1, TopP: 1e-9, Seed: 4}, []float32{0, 1, 4, 2}, 2},
		{"TopP ties: the lower index", Sampling{Temperature: 1, TopP: 0.25, Seed: 4}, []float32{3, 3, 3, 3}, 0},
		{"+Inf takes all the probability", Sampling{Temperature: 1, Seed: 4}, []float32{1e30, inf, 5}, 1},
		{"NaN never drawn", Sampling{Temperature: 1, Seed: 4}, []float32{nan, -100, 10, nan}, 2},
	} {
		if got := one(c.s, c.z...); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
	// TopP of exactly half of four equal tokens keeps two: the draws hit
	// both and only them.
	counts := draw(t, Sampling{Temperature: 1, TopP: 0.5, Seed: 8}, []float32{2, 2, 2, 2}, 400)
	if counts[0] == 0 || counts[1] == 0 || counts[2] != 0 || counts[3] != 0 {
		t.Errorf("TopP 0.5 of four equal tokens: counts %v, want tokens 0 and 1 only", counts)
	}
	// 0 and 1 mean no cut.
	for _, p := range []float64{0, 1} {
		if c := draw(t, Sampling{Temperature: 1, TopP: p, Seed: 8}, []float32{2, 2, 2, 2}, 400); slices.Contains(c, 0) {
			t.Errorf("TopP %v: counts %v, want every token", p, c)
		}
	}
	// No token.
	for _, c := range []struct {
		s Sampling
		z []float32
	}{
		{Sampling{}, []float32{nan, nan}},
		{Sampling{Temperature: 1}, []float32{nan, float32(math.Inf(-1))}},
	} {
		if _, err := newSampler(c.s, 2).next(c.z); !errors.Is(err, ops.ErrNonFinite) {
			t.Errorf("%+v on %v: %v, want ErrNonFinite", c.s, c.z, err)
		}
	}
	// Seeds: equal seeds, equal draws; another seed, other draws.
	z := []float32{0.5, 0.1, 0.9, 0.3, 0.2, 0.8}
	seq := func(seed uint64) []int {
		sm := newSampler(Sampling{Temperature: 1, Seed: seed}, len(z))
		var out []int
		for range 50 {
			tok, _ := sm.next(z)
			out = append(out, tok)
		}
		return out
	}
	if !slices.Equal(seq(11), seq(11)) || slices.Equal(seq(11), seq(12)) {
		t.Errorf("seed 11 twice and seed 12: %v, %v, %v", seq(11), seq(11), seq(12))
	}
}

// TestGenerateSampled: Generate with TopK 1 equals greedy, a seed
// reproduces its output, and temperature sampling differs from greedy.
func TestGenerateSampled(t *testing.T) {
	cfg := genConfigs[0]
	g := newGen(t, cfg, genWeights(t, cfg, 21))
	prompt := []int{7, 7, 3}
	greedy, err := g.Generate(prompt, 20, Sampling{})
	if err != nil {
		t.Fatal(err)
	}
	top1, err := g.Generate(prompt, 20, Sampling{Temperature: 3, TopK: 1, Seed: 5})
	if err != nil || !slices.Equal(top1, greedy) {
		t.Errorf("TopK 1: %v (%v), greedy %v", top1, err, greedy)
	}
	a, _ := g.Generate(prompt, 20, Sampling{Temperature: 1.5, Seed: 5})
	b, _ := g.Generate(prompt, 20, Sampling{Temperature: 1.5, Seed: 5})
	if !slices.Equal(a, b) || slices.Equal(a, greedy) {
		t.Errorf("seeded sampling: %v and %v, greedy %v", a, b, greedy)
	}
}
