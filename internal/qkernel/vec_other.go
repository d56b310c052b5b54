//go:build !amd64 || (purego && !goexperiment.simd)

package qkernel

// Off amd64, or with -tags purego (and no GOEXPERIMENT=simd), there are no
// vector kernels: each processes nothing and the scalar loops do all the
// work. On amd64 the default build has vec_asm_amd64.go's assembly and
// GOEXPERIMENT=simd vec_amd64.go's simd/archsimd code.

// haveAVX2 is false: no vector kernels (tests set it as on amd64).
var haveAVX2 = false

func fakeQuantIntVec32(dst, x []float32, q Int[float32]) int         { return 0 }
func fakeQuantIntGradVec32(dst, x, dy []float32, q Int[float32]) int { return 0 }
func fakeQuantIntVec64(dst, x []float64, q Int[float64]) int         { return 0 }
func fakeQuantIntGradVec64(dst, x, dy []float64, q Int[float64]) int { return 0 }

func absMaxVec[T Float](x []T) (int, T) { return 0, 0 }

func fakeQuantIntGroupsVec32(dst, x []float32, qs []Int[float32]) bool         { return false }
func fakeQuantIntGroupsGradVec32(dst, x, dy []float32, qs []Int[float32]) bool { return false }

func fakeQuantIntGroupsSymVec32(dst, x, dy []float32, g, qmin, qmax int, minScale float32) bool {
	return false
}

func accumulateFP16Vec(acc, w []float64, v []float32) bool { return false }
