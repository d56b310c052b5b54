package peakmem

import (
	"slices"
	"testing"
)

// Report reports on b the figures of loading a file of fileBytes bytes,
// measured in child processes (one Result each): the file's size and what
// the loader kept, in MB, and the medians of the peak resident set (MB),
// the overhead (the peak minus the resident set before loading and what
// was kept, MB), the peak over the file size, and the load throughput in
// file MB/s.
func Report(b *testing.B, fileBytes int64, rs []Result) {
	if len(rs) == 0 {
		return
	}
	mb := func(n int64) float64 { return float64(n) / 1e6 }
	med := func(f func(r Result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	b.ReportMetric(mb(fileBytes), "file-MB")
	b.ReportMetric(mb(rs[0].Kept), "f32-MB")
	// /proc counts kB of 1024 bytes.
	b.ReportMetric(med(func(r Result) float64 { return mb(1024 * r.PeakKB) }), "peak-MB")
	b.ReportMetric(med(func(r Result) float64 { return mb(r.OverheadBytes()) }), "overhead-MB")
	b.ReportMetric(med(func(r Result) float64 { return float64(1024*r.PeakKB) / float64(fileBytes) }), "peak/file")
	b.ReportMetric(med(func(r Result) float64 { return mb(fileBytes) / r.Seconds }), "MB/s")
}
