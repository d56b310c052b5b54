package blas

// The micro-kernels of the default build on amd64 (gemm_amd64.s and their
// declarations, gemm_stub_amd64.go) are written by the repository's avo
// program, internal/asmgen, a module of its own; the archsimd kernels of
// the GOEXPERIMENT=simd build (kernel_simd_gen_amd64.go) by gen_simd.go.
//go:generate go run -C ../internal/asmgen . blas
//go:generate go run gen_simd.go
