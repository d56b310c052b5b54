package blas

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// benchShapes are m×k×n, a trailing t for B transposed (given n×k): the
// four of the speed target and attention-like products (seq×Dh×seq, Q·Kᵀ
// and P·V).
var benchShapes = []string{
	"2048x128x512", "2048x512x128", "512x512x512", "1024x1024x1024",
	"128x32x128", "128x32x128t", "512x64x512", "512x64x512t",
}

func parseShape(s string) (m, k, n int, bTrans bool) {
	s, bTrans = strings.CutSuffix(s, "t")
	if _, err := fmt.Sscanf(s, "%dx%dx%d", &m, &k, &n); err != nil {
		panic(err)
	}
	return m, k, n, bTrans
}

func randSlice[T float](rng *rand.Rand, n int) []T {
	s := make([]T, n)
	for i := range s {
		s[i] = T(rng.Float64()*2 - 1)
	}
	return s
}

// threadCounts are 1 and GOMAXPROCS.
func threadCounts() []int {
	if p := runtime.GOMAXPROCS(0); p > 1 {
		return []int{1, p}
	}
	return []int{1}
}

// benchGemm times C = A·op(B) for each shape and thread count (set as
// GOMAXPROCS): Implementation (actq), each kernel this build and CPU have
// (kernel=…), and gonum; each reports GFLOPS.
func benchGemm[T float](b *testing.B, set kernelSet[T], call func(g gemmer, tB blas.Transpose, m, n, k int, a []T, lda int, bb []T, ldb int, c []T)) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, shape := range benchShapes {
		m, k, n, bTrans := parseShape(shape)
		a, bb, c := randSlice[T](rng, m*k), randSlice[T](rng, k*n), randSlice[T](rng, m*n)
		tB, ldb := blas.NoTrans, n
		if bTrans {
			tB, ldb = blas.Trans, k
		}
		flops := 2 * float64(m) * float64(n) * float64(k)
		report := func(b *testing.B) {
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
		}
		for _, threads := range threadCounts() {
			name := fmt.Sprintf("%s/threads=%d", shape, threads)
			b.Run(name+"/actq", func(b *testing.B) {
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(threads))
				b.ReportAllocs()
				for b.Loop() {
					call(Implementation{}, tB, m, n, k, a, k, bb, ldb, c)
				}
				report(b)
			})
			for _, kern := range set.all {
				b.Run(name+"/kernel="+kern.name, func(b *testing.B) {
					defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(threads))
					for b.Loop() {
						op := newGemmOp(&kern, false, bTrans, m, n, k, 1, a, k, bb, ldb, 0, c, n)
						op.run(threads)
					}
					report(b)
				})
			}
			b.Run(name+"/gonum", func(b *testing.B) {
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(threads))
				for b.Loop() {
					call(gonum.Implementation{}, tB, m, n, k, a, k, bb, ldb, c)
				}
				report(b)
			})
		}
	}
}

func BenchmarkSgemm(b *testing.B) {
	benchGemm(b, kernels32, func(g gemmer, tB blas.Transpose, m, n, k int, a []float32, lda int, bb []float32, ldb int, c []float32) {
		g.Sgemm(blas.NoTrans, tB, m, n, k, 1, a, lda, bb, ldb, 0, c, n)
	})
}

func BenchmarkDgemm(b *testing.B) {
	benchGemm(b, kernels64, func(g gemmer, tB blas.Transpose, m, n, k int, a []float64, lda int, bb []float64, ldb int, c []float64) {
		g.Dgemm(blas.NoTrans, tB, m, n, k, 1, a, lda, bb, ldb, 0, c, n)
	})
}

// BenchmarkPackB times packing B into nr-column slivers, as it is and
// transposed, in ns per element.
func BenchmarkPackB(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, sh := range [][2]int{{128, 32}, {512, 64}, {512, 384}} {
		n, k := sh[0], sh[1]
		src := randSlice[float32](rng, n*k)
		for _, kern := range kernels32.all {
			nr := kern.nr
			d := make([]float32, roundUp(n, nr)*k)
			for _, trans := range []bool{false, true} {
				rsB, csB, name := n, 1, "N"
				if trans {
					rsB, csB, name = 1, k, "T"
				}
				b.Run(fmt.Sprintf("%s/n=%d/k=%d/nr=%d", name, n, k, nr), func(b *testing.B) {
					for b.Loop() {
						for j := 0; j < n; j += nr {
							packB(d[j*k:], src, rsB, csB, 0, k, j, min(nr, n-j), nr)
						}
					}
					b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n*k), "ns/elem")
				})
			}
		}
	}
}

// BenchmarkKernel times each micro-kernel alone on packed operands that
// stay in L1 and L2 (k = 256, C += A·B), in GFLOPS: the ceiling of the
// driver.
func BenchmarkKernel(b *testing.B) {
	benchKernels(b, kernels32)
	benchKernels(b, kernels64)
}

func benchKernels[T float](b *testing.B, set kernelSet[T]) {
	const k = 256
	for _, kern := range set.all {
		a, bb, c := make([]T, kern.mr*k), make([]T, kern.nr*k), make([]T, kern.mr*kern.nr)
		var z T
		b.Run(fmt.Sprintf("%T/%s", z, kern.name), func(b *testing.B) {
			for b.Loop() {
				kern.run(k, a, 1, kern.mr, bb, kern.nr, c, kern.nr, 1, 1)
			}
			b.ReportMetric(float64(2*kern.mr*kern.nr*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
		})
	}
}
