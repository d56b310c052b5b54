package quantize

import (
	"fmt"
	"math"
	"sync"

	"github.com/actq/actq/internal/qkernel"
)

// Stats collects what fake quantization did to the values that went
// through a FakeQuant (or Passthrough) node: attach one with WithStats, run
// the graph, read a Snapshot. The node adds to it at every run, inside the
// op, so the numbers do not depend on node values that Gorgonia may have
// reused and overwritten since. FakeQuantSlice and PassthroughSlice add to
// a Stats as the nodes do.
//
// A Stats may be shared by several nodes (their counts add up) and read or
// reset from any goroutine while graphs run: every method is safe for
// concurrent use. The zero value is ready to use; do not copy a Stats after
// first use.
type Stats struct {
	mu sync.Mutex
	s  StatsSnapshot
}

// StatsSnapshot is a copy of a Stats' counters at one moment. The counts
// cover every element of every run since the last Reset.
type StatsSnapshot struct {
	Runs     int64 // forward runs recorded
	Elements int64 // elements seen, NaN and ±Inf included
	// Clipped counts finite elements outside the representable range:
	// clamped to qmin or qmax (integer formats; exactly PyTorch's mask),
	// or whose rounded magnitude overflowed a float format (to ±Inf for
	// FP16 and BF16, saturated to ±max for FP8).
	Clipped int64
	// Zeroed counts non-zero finite elements that became exactly 0.
	Zeroed int64
	NaN    int64 // NaN elements in the input
	Inf    int64 // ±Inf elements in the input
	// Signal is Σx² and Noise Σ(y−x)² over the finite inputs x and their
	// outputs y.
	Signal, Noise float64
}

// Snapshot returns a copy of the current counters.
func (s *Stats) Snapshot() StatsSnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.s
}

// Reset sets every counter to zero.
func (s *Stats) Reset() {
	s.mu.Lock()
	s.s = StatsSnapshot{}
	s.mu.Unlock()
}

// record adds one run's counts.
func (s *Stats) record(c qkernel.Counts) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.s.Runs++
	s.s.Elements += c.N
	s.s.Clipped += c.Clipped
	s.s.Zeroed += c.Zeroed
	s.s.NaN += c.NaN
	s.s.Inf += c.Inf
	s.s.Signal += c.Signal
	s.s.Noise += c.Noise
}

// identityCounts returns the statistics of y = x: elements, NaN, ±Inf and
// the signal Σx² over the finite elements, summed in order.
func identityCounts[T qkernel.Float](x []T) qkernel.Counts {
	c := qkernel.Counts{N: int64(len(x))}
	for _, v := range x {
		f := float64(v)
		switch {
		case math.IsNaN(f):
			c.NaN++
		case math.IsInf(f, 0):
			c.Inf++
		default:
			c.Signal += f * f
		}
	}
	return c
}

// ClippedFraction returns Clipped/Elements (0 before any element).
func (c StatsSnapshot) ClippedFraction() float64 { return frac(c.Clipped, c.Elements) }

// ZeroedFraction returns Zeroed/Elements (0 before any element).
func (c StatsSnapshot) ZeroedFraction() float64 { return frac(c.Zeroed, c.Elements) }

// SQNR returns the signal-to-quantization-noise ratio in decibels,
// 10·log10(Signal/Noise), over the finite inputs. Special cases are:
//
//	Noise = 0             → +Inf (lossless, including no finite input)
//	Signal = 0, Noise > 0 → −Inf
//	Noise = +Inf          → −Inf (a finite input overflowed to ±Inf)
func (c StatsSnapshot) SQNR() float64 {
	switch {
	case c.Noise == 0:
		return math.Inf(1)
	case c.Signal == 0 || math.IsInf(c.Noise, 1):
		return math.Inf(-1)
	}
	return 10 * math.Log10(c.Signal/c.Noise)
}

// String formats the counts, the clipped and zeroed percentages and the
// SQNR on one line.
func (c StatsSnapshot) String() string {
	return fmt.Sprintf("runs=%d elements=%d clipped=%.4g%% zeroed=%.4g%% nan=%d inf=%d sqnr=%.2fdB",
		c.Runs, c.Elements, 100*c.ClippedFraction(), 100*c.ZeroedFraction(), c.NaN, c.Inf, c.SQNR())
}

func frac(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}
