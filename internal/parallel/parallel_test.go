package parallel

import (
	"errors"
	"sync/atomic"
	"testing"
)

func TestForCoversRangeOnce(t *testing.T) {
	for _, tc := range []struct{ n, minChunk int }{
		{0, 1}, {1, 1}, {7, 1}, {100, 10}, {1000, 3}, {10, 1000}, {1 << 16, 1 << 10},
	} {
		hits := make([]int32, tc.n)
		err := For(tc.n, tc.minChunk, func(lo, hi int) error {
			if hi-lo < min(tc.minChunk, tc.n) {
				t.Errorf("n=%d minChunk=%d: chunk [%d,%d) too small", tc.n, tc.minChunk, lo, hi)
			}
			for i := lo; i < hi; i++ {
				atomic.AddInt32(&hits[i], 1)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for i, h := range hits {
			if h != 1 {
				t.Fatalf("n=%d: index %d visited %d times", tc.n, i, h)
			}
		}
	}
}

func TestForReturnsError(t *testing.T) {
	want := errors.New("boom")
	err := For(1<<12, 1, func(lo, hi int) error {
		if lo > 0 {
			return want
		}
		return nil
	})
	if !errors.Is(err, want) {
		t.Fatalf("got %v, want %v", err, want)
	}
}

func TestForSmallDoesNotAllocate(t *testing.T) {
	body := func(lo, hi int) error { return nil }
	if a := testing.AllocsPerRun(100, func() { _ = For(100, 1000, body) }); a != 0 {
		t.Fatalf("small For allocated %v times", a)
	}
}

func TestForWorkersIndexesWorkers(t *testing.T) {
	for _, tc := range []struct{ n, minChunk int }{{0, 1}, {1, 1}, {9, 2}, {1000, 3}, {10, 1000}} {
		w := Workers(tc.n, tc.minChunk)
		seen := make([]int32, w)
		hits := make([]int32, tc.n)
		err := ForWorkers(tc.n, tc.minChunk, func(worker, lo, hi int) error {
			if worker < 0 || worker >= w {
				t.Errorf("n=%d: worker %d outside [0, %d)", tc.n, worker, w)
				return nil
			}
			atomic.AddInt32(&seen[worker], 1)
			for i := lo; i < hi; i++ {
				atomic.AddInt32(&hits[i], 1)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range seen {
			if s > 1 {
				t.Errorf("n=%d: worker %d ran %d times", tc.n, i, s)
			}
		}
		for i, h := range hits {
			if h != 1 {
				t.Fatalf("n=%d: index %d visited %d times", tc.n, i, h)
			}
		}
	}
}

func TestDynamicCoversRangeOnce(t *testing.T) {
	for _, tc := range []struct{ n, chunk int }{{0, 1}, {1, 1}, {7, 2}, {100, 10}, {1000, 3}, {10, 1000}, {5, 0}} {
		hits := make([]int32, tc.n)
		Dynamic(tc.n, tc.chunk, func(lo, hi int) {
			if hi-lo > max(tc.chunk, 1) && hi-lo != tc.n {
				t.Errorf("n=%d chunk=%d: range [%d,%d) longer than a chunk", tc.n, tc.chunk, lo, hi)
			}
			for i := lo; i < hi; i++ {
				atomic.AddInt32(&hits[i], 1)
			}
		})
		for i, h := range hits {
			if h != 1 {
				t.Fatalf("n=%d chunk=%d: index %d visited %d times", tc.n, tc.chunk, i, h)
			}
		}
	}
	body := func(lo, hi int) {}
	if a := testing.AllocsPerRun(100, func() { Dynamic(100, 1000, body) }); a != 0 {
		t.Fatalf("one-chunk Dynamic allocated %v times", a)
	}
}
