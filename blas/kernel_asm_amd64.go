//go:build amd64 && !goexperiment.simd && !purego

package blas

import "golang.org/x/sys/cpu"

// The default build on amd64: the micro-kernels are assembly written by
// internal/asmgen (gemm_amd64.s), AVX2+FMA and AVX-512, chosen by CPU.

// buildKernels names how this build writes its micro-kernels.
const buildKernels = "assembly"

var (
	kernels32 = cpuKernels32(cpu.X86.HasAVX2 && cpu.X86.HasFMA, cpu.X86.HasAVX512F)
	kernels64 = cpuKernels64(cpu.X86.HasAVX2 && cpu.X86.HasFMA, cpu.X86.HasAVX512F)
)

// cpuKernels32 and cpuKernels64 are the kernels of a CPU with or without
// AVX2 and FMA, and AVX-512F.
func cpuKernels32(avx2, avx512 bool) kernelSet[float32] {
	return newKernelSet(avx2, avx512,
		kernel[float32]{name: "avx512", mr: 12, nr: 32, kc: 384, mc: 144, nc: 4096, run: sgemmAVX512Go},
		kernel[float32]{name: "avx2", mr: 6, nr: 16, kc: 384, mc: 144, nc: 4096, packTransA: true, run: sgemmAVX2Go},
	)
}

func cpuKernels64(avx2, avx512 bool) kernelSet[float64] {
	return newKernelSet(avx2, avx512,
		kernel[float64]{name: "avx512", mr: 12, nr: 16, kc: 256, mc: 96, nc: 2048, run: dgemmAVX512Go},
		kernel[float64]{name: "avx2", mr: 6, nr: 8, kc: 256, mc: 96, nc: 2048, packTransA: true, run: dgemmAVX2Go},
	)
}

func sgemmAVX2Go(k int, a []float32, rsA, csA int, b []float32, rsB int, c []float32, ldc int, alpha, beta float32) {
	sgemmAVX2(k, &a[0], rsA, csA, &b[0], rsB, &c[0], ldc, alpha, beta)
}

func sgemmAVX512Go(k int, a []float32, rsA, csA int, b []float32, rsB int, c []float32, ldc int, alpha, beta float32) {
	sgemmAVX512(k, &a[0], rsA, csA, &b[0], rsB, &c[0], ldc, alpha, beta)
}

func dgemmAVX2Go(k int, a []float64, rsA, csA int, b []float64, rsB int, c []float64, ldc int, alpha, beta float64) {
	dgemmAVX2(k, &a[0], rsA, csA, &b[0], rsB, &c[0], ldc, alpha, beta)
}

func dgemmAVX512Go(k int, a []float64, rsA, csA int, b []float64, rsB int, c []float64, ldc int, alpha, beta float64) {
	dgemmAVX512(k, &a[0], rsA, csA, &b[0], rsB, &c[0], ldc, alpha, beta)
}

// hasAVX reports whether the CPU has AVX, which transposeVec needs.
var hasAVX = cpu.X86.HasAVX

// transposeVec sets dst[c·ldd + r] = src[r·lds + c] for r < rows and the
// first cols &^ 7 (float32) or cols &^ 3 (float64) columns c, with AVX,
// and returns how many columns it did: 0 without AVX or when rows is not
// a multiple of the block (8 or 4).
func transposeVec[T float](dst []T, ldd int, src []T, lds, rows, cols int) int {
	switch d := any(dst).(type) {
	case []float32:
		done := cols &^ 7
		if !hasAVX || rows%8 != 0 || done == 0 {
			return 0
		}
		s := any(src).([]float32)
		_, _ = d[(done-1)*ldd+rows-1], s[(rows-1)*lds+done-1]
		transpose32AVX(&d[0], ldd, &s[0], lds, rows, done)
		return done
	case []float64:
		done := cols &^ 3
		if !hasAVX || rows%4 != 0 || done == 0 {
			return 0
		}
		s := any(src).([]float64)
		_, _ = d[(done-1)*ldd+rows-1], s[(rows-1)*lds+done-1]
		transpose64AVX(&d[0], ldd, &s[0], lds, rows, done)
		return done
	}
	return 0
}
