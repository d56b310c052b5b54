package studyio

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// ParseSeeds reads a comma-separated list of seeds ("1,2,3"): at least
// one, each an unsigned integer, none twice. Spaces around a seed are
// ignored.
func ParseSeeds(s string) ([]uint64, error) {
	var seeds []uint64
	for _, f := range SplitList(s) {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("seed %q is not an unsigned integer", f)
		}
		if slices.Contains(seeds, v) {
			return nil, fmt.Errorf("seed %d given twice", v)
		}
		seeds = append(seeds, v)
	}
	if len(seeds) == 0 {
		return nil, fmt.Errorf("need at least one seed")
	}
	return seeds, nil
}

// JoinSeeds writes seeds as ParseSeeds reads them.
func JoinSeeds(seeds []uint64) string {
	s := make([]string, len(seeds))
	for i, v := range seeds {
		s[i] = strconv.FormatUint(v, 10)
	}
	return strings.Join(s, ",")
}

// Estimate is a figure of a study run with several seeds (each seed
// trains its own model on its own data): the mean of the per-seed values
// and the standard error of that mean.
type Estimate struct {
	Mean Number `json:"mean"`
	// SE is the standard error of Mean: across seeds, s/√n with s the
	// sample standard deviation of the n per-seed values; with one seed,
	// the standard error within that seed's run (over its tokens or
	// sequences) if the figure has one; NaN (null in JSON) otherwise.
	SE Number `json:"se"`
	// Seeds is the number of per-seed values, n.
	Seeds int `json:"seeds"`
}

// AcrossSeeds returns the Estimate of a figure from its per-seed values
// and, optionally, each value's standard error within its seed (nil if
// the figure has none; only used when there is one seed). The mean is
// NaN if any value is NaN (a figure undefined for one seed is undefined
// for the set); no values give a NaN mean and SE.
//
// With n ≥ 2 seeds the SE is s/√n, s² = Σ(x_i − x̄)²/(n−1): the spread of
// what different trained models give, which is what another seed would
// see. A seed's within-run SE (sampling noise over its tokens) is part of
// that spread and not added again.
func AcrossSeeds(values, within []float64) Estimate {
	n := len(values)
	e := Estimate{Mean: Number(math.NaN()), SE: Number(math.NaN()), Seeds: n}
	if n == 0 {
		return e
	}
	sum := 0.0
	for _, v := range values {
		sum += v
	}
	mean := sum / float64(n)
	e.Mean = Number(mean)
	switch {
	case n == 1 && len(within) == 1:
		e.SE = Number(within[0])
	case n >= 2:
		ss := 0.0
		for _, v := range values {
			ss += (v - mean) * (v - mean)
		}
		e.SE = Number(math.Sqrt(ss / float64(n-1) / float64(n)))
	}
	if math.IsNaN(mean) {
		e.SE = Number(math.NaN())
	}
	return e
}

// Format writes e with f for both numbers, "mean ±se", or the mean alone
// when the SE is NaN ("—" for a NaN mean, as f writes it).
func (e Estimate) Format(f func(Number) string) string {
	if math.IsNaN(float64(e.Mean)) || math.IsNaN(float64(e.SE)) {
		return f(e.Mean)
	}
	return f(e.Mean) + " ±" + f(e.SE)
}

// PairedSE returns the standard error, in points, of the difference in
// accuracy between two evaluations of the same tokens (base and other,
// right or wrong per token): a paired difference, in which only the
// tokens where they disagree carry information, as in McNemar's test:
// √(b + c − (b−c)²/N) / N · 100, with b tokens right only in base and c
// right only in other. It returns NaN if the two do not line up or are
// empty.
func PairedSE(base, other []bool) float64 {
	if len(base) != len(other) || len(base) == 0 {
		return math.NaN()
	}
	var b, c float64
	for i := range base {
		switch {
		case base[i] && !other[i]:
			b++
		case !base[i] && other[i]:
			c++
		}
	}
	n := float64(len(base))
	return 100 * math.Sqrt(max(0, b+c-(b-c)*(b-c)/n)) / n
}
