//go:build goexperiment.simd && amd64

package blas

import "simd/archsimd"

// The GOEXPERIMENT=simd build on amd64: the micro-kernels are written with
// simd/archsimd (kernel_simd_gen_amd64.go, from gen_simd.go), AVX-512 or
// AVX2 and FMA, chosen by CPU.

// buildKernels names how this build writes its micro-kernels.
const buildKernels = "simd/archsimd"

var (
	kernels32 = cpuKernels32(archsimd.X86.AVX2() && archsimd.X86.FMA(), archsimd.X86.AVX512())
	kernels64 = cpuKernels64(archsimd.X86.AVX2() && archsimd.X86.FMA(), archsimd.X86.AVX512())
)

// cpuKernels32 and cpuKernels64 are the kernels of a CPU with or without
// AVX2 and FMA, and AVX-512.
func cpuKernels32(avx2, avx512 bool) kernelSet[float32] {
	return newKernelSet(avx2, avx512,
		kernel[float32]{name: "avx512", mr: 3, nr: 32, kc: 384, mc: 144, nc: 4096, run: sgemmSimd512},
		kernel[float32]{name: "avx2", mr: 4, nr: 16, kc: 384, mc: 144, nc: 4096, run: sgemmSimd256},
	)
}

func cpuKernels64(avx2, avx512 bool) kernelSet[float64] {
	return newKernelSet(avx2, avx512,
		kernel[float64]{name: "avx512", mr: 3, nr: 16, kc: 256, mc: 96, nc: 2048, run: dgemmSimd512},
		kernel[float64]{name: "avx2", mr: 4, nr: 8, kc: 256, mc: 96, nc: 2048, run: dgemmSimd256},
	)
}

// transposeVec does nothing in this build (it returns 0, the number of
// columns done): packing stays in Go.
func transposeVec[T float](dst []T, ldd int, src []T, lds, rows, cols int) int { return 0 }
