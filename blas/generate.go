package blas

// The micro-kernels of the default build on amd64 (gemm_amd64.s and their
// declarations, gemm_stub_amd64.go), and internal/cpupeak's FMA loops, are
// written by the avo program in internal/asmgen, a module of its own; the
// archsimd kernels of the GOEXPERIMENT=simd build
// (kernel_simd_gen_amd64.go) by gen_simd.go.
//go:generate go run -C internal/asmgen . -gemm ../../gemm_amd64.s -gemmstubs ../../gemm_stub_amd64.go -peak ../../../internal/cpupeak/peak_amd64.s -peakstubs ../../../internal/cpupeak/peak_stub_amd64.go
//go:generate go run gen_simd.go
