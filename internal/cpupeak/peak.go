// Package cpupeak measures the floating-point peak of the core it runs on:
// the rate of fused multiply-adds in a loop with enough independent
// accumulators that only the FMA units' throughput limits it. Benchmarks
// quote matrix products as a fraction of it.
package cpupeak

import (
	"time"
)

// Rate is a measured peak: flops per second for one core, or ok = false
// when this build or CPU cannot run the loop.
type Rate struct {
	FlopsPerSec float64
	OK          bool
}

// FMA measures the peak of FMAs on float32 (double false) or float64
// (double true) vectors of width bits (256: AVX2 and FMA; 512: AVX-512F),
// each a multiply and an add per lane: the best of reps runs of at least
// d each, on the calling goroutine (pin it with runtime.LockOSThread for a
// steadier figure). It reports ok = false where this build (purego, or
// not amd64) or the CPU lacks the instructions.
func FMA(bits int, double bool, reps int, d time.Duration) Rate {
	loop, flopsPerIter := fmaLoop(bits, double)
	if loop == nil {
		return Rate{}
	}
	best := 0.0
	n := 1 << 10
	for range max(reps, 1) {
		for {
			start := time.Now()
			loop(n)
			el := time.Since(start)
			if el >= d {
				best = max(best, float64(n)*flopsPerIter/el.Seconds())
				break
			}
			n = max(2*n, int(float64(n)*d.Seconds()/max(el.Seconds(), 1e-9)*1.2))
		}
	}
	return Rate{FlopsPerSec: best, OK: true}
}
