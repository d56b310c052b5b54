package studyio

import (
	"fmt"
	"strconv"
	"strings"
)

// Shard is one slice of a study's sweep, for running a sweep larger than
// one machine as several independent processes: part Index of Count
// (1 ≤ Index ≤ Count). The zero Shard is the whole sweep.
//
// A study lists its units of work (say seed × model × tier) in a fixed
// order; shard i of n runs the i-th of n contiguous runs of them (Range),
// and a merge step combines the shards' results into what one run gives.
// Contiguous slices keep the units that share a trained model together,
// so that few shards train the same model.
type Shard struct {
	Index int `json:"index"`
	Count int `json:"count"`
}

// ParseShard reads "i/n" (1 ≤ i ≤ n); the empty string is the whole
// sweep.
func ParseShard(s string) (Shard, error) {
	if s == "" {
		return Shard{}, nil
	}
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(strings.TrimSpace(a))
	n, err2 := strconv.Atoi(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil {
		return Shard{}, fmt.Errorf("shard %q: want i/n, such as 2/8", s)
	}
	if n < 1 || i < 1 || i > n {
		return Shard{}, fmt.Errorf("shard %q: want 1 ≤ i ≤ n", s)
	}
	return Shard{Index: i, Count: n}, nil
}

// Whole reports whether s is the whole sweep (the zero Shard, or 1/1).
func (s Shard) Whole() bool { return s.Count <= 1 }

// String returns "i/n", or "" for the zero Shard.
func (s Shard) String() string {
	if s.Count == 0 {
		return ""
	}
	return fmt.Sprintf("%d/%d", s.Index, s.Count)
}

// Range returns the units [lo, hi) of n that s runs: n split into Count
// contiguous runs whose sizes differ by at most one, the larger first.
// The runs of shards 1…Count cover 0…n−1 once each; with more shards than
// units, some shards get none (lo = hi). The whole sweep gets [0, n).
func (s Shard) Range(n int) (lo, hi int) {
	if s.Whole() {
		return 0, n
	}
	k := s.Index - 1
	size, extra := n/s.Count, n%s.Count
	lo = k*size + min(k, extra)
	hi = lo + size
	if k < extra {
		hi++
	}
	return lo, hi
}
