package studyio

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/actq/actq/graph"
	"github.com/actq/actq/quantize"
)

func TestSplitList(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{" , ,", nil},
		{"a", []string{"a"}},
		{" w4a8 ,kv-int8,, fp32 ", []string{"w4a8", "kv-int8", "fp32"}},
	} {
		if got := SplitList(c.in); !slices.Equal(got, c.want) {
			t.Errorf("SplitList(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestParseInts(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []int
		err  string
	}{
		{"", nil, ""},
		{"128, 256,4096", []int{128, 256, 4096}, ""},
		{"-1,0", []int{-1, 0}, ""},
		{"12x", nil, `"12x" is not an integer`},
		{"1,2.5", nil, `"2.5" is not an integer`},
	} {
		got, err := ParseInts(c.in)
		switch {
		case c.err == "" && (err != nil || !slices.Equal(got, c.want)):
			t.Errorf("ParseInts(%q) = %v, %v; want %v", c.in, got, err, c.want)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("ParseInts(%q): error %v, want %q", c.in, err, c.err)
		}
		if c.err == "" {
			if back, err := ParseInts(JoinInts(got)); err != nil || !slices.Equal(back, got) {
				t.Errorf("JoinInts(%v) = %q does not read back", got, JoinInts(got))
			}
		}
	}
}

func TestParallel(t *testing.T) {
	for _, c := range []struct{ n, workers int }{{0, 2}, {1, 4}, {7, 1}, {7, 3}, {20, 0}} {
		var running, most atomic.Int32
		done := make([]int, c.n)
		err := Parallel(c.n, c.workers, func(i int) error {
			r := running.Add(1)
			for {
				m := most.Load()
				if r <= m || most.CompareAndSwap(m, r) {
					break
				}
			}
			done[i]++
			running.Add(-1)
			return nil
		})
		if err != nil {
			t.Errorf("%+v: %v", c, err)
		}
		for i, d := range done {
			if d != 1 {
				t.Errorf("%+v: f(%d) called %d times", c, i, d)
			}
		}
		if m := int(most.Load()); m > max(c.workers, 1) {
			t.Errorf("%+v: %d calls at once", c, m)
		}
	}
	// Every call runs; the error is the lowest index's.
	calls := atomic.Int32{}
	err := Parallel(10, 3, func(i int) error {
		calls.Add(1)
		if i == 4 || i == 8 {
			return fmt.Errorf("item %d: %w", i, errTest)
		}
		return nil
	})
	if !errors.Is(err, errTest) || !strings.Contains(err.Error(), "item 4") || calls.Load() != 10 {
		t.Errorf("error %v after %d calls, want item 4's after 10", err, calls.Load())
	}
}

var errTest = errors.New("test error")

func TestAddStats(t *testing.T) {
	a := quantize.StatsSnapshot{Runs: 1, Elements: 2, Clipped: 3, Zeroed: 4, NaN: 5, Inf: 6, Signal: 7, Noise: 8}
	b := quantize.StatsSnapshot{Runs: 10, Elements: 20, Clipped: 30, Zeroed: 40, NaN: 50, Inf: 60, Signal: 70, Noise: 80}
	if got, want := AddStats(a, b), (quantize.StatsSnapshot{Runs: 11, Elements: 22, Clipped: 33, Zeroed: 44, NaN: 55, Inf: 66, Signal: 77, Noise: 88}); got != want {
		t.Errorf("AddStats: %+v, want %+v", got, want)
	}
	if got := AddStats(quantize.StatsSnapshot{}, a); got != a {
		t.Errorf("AddStats(zero, a) = %+v, want a", got)
	}
}

func TestTierNames(t *testing.T) {
	names := TierNames()
	tiers := graph.Tiers()
	if len(names) != len(tiers) || len(names) == 0 {
		t.Fatalf("TierNames: %d names for %d tiers", len(names), len(tiers))
	}
	for i, tier := range tiers {
		if names[i] != tier.Name {
			t.Errorf("TierNames()[%d] = %q, want %q", i, names[i], tier.Name)
		}
	}
}
