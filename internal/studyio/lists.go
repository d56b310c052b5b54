package studyio

import (
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/actq/actq/graph"
	"github.com/actq/actq/quantize"
)

// SplitList returns the items of a comma-separated flag value, each with
// the spaces around it removed; empty items are dropped, so "" gives none.
func SplitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// ParseInts reads a comma-separated list of integers (the items of
// SplitList); it checks no range, which is the caller's to check.
func ParseInts(s string) ([]int, error) {
	var out []int
	for _, f := range SplitList(s) {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not an integer", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// JoinInts writes v as ParseInts reads it.
func JoinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

// Parallel calls f(i) for every i in [0, n), on at most workers
// goroutines at a time (at least one), and returns when all calls have
// returned: the error of the lowest i that failed, or nil. f must be safe
// to call from several goroutines at once; writing only to its own index
// of a shared slice is.
func Parallel(n, workers int, f func(i int) error) error {
	errs := make([]error, n)
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(max(workers, 1), n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				errs[i] = f(i)
			}
		}()
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// AddStats returns the counters of a and b together, as one
// quantize.Stats that saw both would hold them: several sites of a kind,
// or several runs, summed.
func AddStats(a, b quantize.StatsSnapshot) quantize.StatsSnapshot {
	return quantize.StatsSnapshot{Runs: a.Runs + b.Runs, Elements: a.Elements + b.Elements, Clipped: a.Clipped + b.Clipped,
		Zeroed: a.Zeroed + b.Zeroed, NaN: a.NaN + b.NaN, Inf: a.Inf + b.Inf, Signal: a.Signal + b.Signal, Noise: a.Noise + b.Noise}
}

// TierNames returns the names of graph's standard tiers (graph.Tiers), in
// order.
func TierNames() []string {
	var names []string
	for _, t := range graph.Tiers() {
		names = append(names, t.Name)
	}
	return names
}
