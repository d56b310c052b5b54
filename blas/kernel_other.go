//go:build !amd64 || (purego && !goexperiment.simd)

package blas

// Off amd64, and with the purego tag, the portable Go kernel is the only
// one.

// buildKernels names how this build writes its micro-kernels.
const buildKernels = "portable Go"

var (
	kernels32 = cpuKernels32(false, false)
	kernels64 = cpuKernels64(false, false)
)

// cpuKernels32 and cpuKernels64 are the portable kernel whatever the CPU.
func cpuKernels32(avx2, avx512 bool) kernelSet[float32] { return newKernelSet[float32](false, false) }
func cpuKernels64(avx2, avx512 bool) kernelSet[float64] { return newKernelSet[float64](false, false) }

// transposeVec does nothing in this build (it returns 0, the number of
// columns done): packing stays in Go.
func transposeVec[T float](dst []T, ldd int, src []T, lds, rows, cols int) int { return 0 }
