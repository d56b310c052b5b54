package blas

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// benchShapes are m×k×n: the four of the speed target and attention-like
// small ones (seq×Dh×seq).
var benchShapes = [][3]int{
	{2048, 128, 512}, {2048, 512, 128}, {512, 512, 512}, {1024, 1024, 1024},
	{128, 32, 128}, {512, 64, 512},
}

func randSlice32(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = rng.Float32()*2 - 1
	}
	return s
}

func BenchmarkSgemm(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	procs := runtime.GOMAXPROCS(0)
	threadCounts := []int{1}
	if procs > 1 {
		threadCounts = append(threadCounts, procs)
	}
	for _, sh := range benchShapes {
		m, k, n := sh[0], sh[1], sh[2]
		a, bb, c := randSlice32(rng, m*k), randSlice32(rng, k*n), randSlice32(rng, m*n)
		flops := 2 * float64(m) * float64(n) * float64(k)
		for _, threads := range threadCounts {
			name := fmt.Sprintf("%dx%dx%d/threads=%d", m, k, n, threads)
			for _, kern := range kernels32.all {
				b.Run(name+"/actq-"+kern.name, func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						op := newGemmOp(&kern, false, false, m, n, k, 1, a, k, bb, n, 0, c, n)
						op.run(threads)
					}
					b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
				})
			}
			b.Run(name+"/gonum", func(b *testing.B) {
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(threads))
				for b.Loop() {
					gonum.Implementation{}.Sgemm(blas.NoTrans, blas.NoTrans, m, n, k, 1, a, k, bb, n, 0, c, n)
				}
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
			})
		}
	}
}
