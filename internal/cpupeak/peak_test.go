package cpupeak

import (
	"fmt"
	"math"
	"testing"
	"time"
)

// TestFMA checks that each loop this build and CPU have runs and reports a
// positive, finite rate.
func TestFMA(t *testing.T) {
	for _, bits := range []int{256, 512} {
		for _, double := range []bool{false, true} {
			loop, _ := fmaLoop(bits, double)
			r := FMA(bits, double, 1, time.Millisecond)
			if r.OK != (loop != nil) {
				t.Errorf("%d bits, double=%v: OK = %v, loop available: %v", bits, double, r.OK, loop != nil)
			}
			if r.OK && !(r.FlopsPerSec > 0 && !math.IsInf(r.FlopsPerSec, 0)) {
				t.Errorf("%d bits, double=%v: %v flop/s", bits, double, r.FlopsPerSec)
			}
		}
	}
}

// BenchmarkFMA reports each loop's rate in GFLOPS.
func BenchmarkFMA(b *testing.B) {
	for _, bits := range []int{256, 512} {
		for _, double := range []bool{false, true} {
			loop, flops := fmaLoop(bits, double)
			if loop == nil {
				continue
			}
			b.Run(fmt.Sprintf("bits=%d/double=%v", bits, double), func(b *testing.B) {
				const n = 1 << 16
				for b.Loop() {
					loop(n)
				}
				b.ReportMetric(flops*n*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
			})
		}
	}
}
