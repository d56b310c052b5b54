// Package blas is actq's BLAS: Implementation satisfies Gorgonia's BLAS
// interface (gonum's blas.Float32, blas.Float64, blas.Complex64 and
// blas.Complex128) with actq's own single- and double-precision matrix
// products, Sgemm and Dgemm, and gonum's implementation of every other
// routine.
//
// The products are blocked and packed as BLIS and GotoBLAS do, around one
// register-blocked micro-kernel with FMA per instruction set: in the
// default build on amd64, AVX2 or AVX-512 assembly chosen by CPU at run
// time; with GOEXPERIMENT=simd, the same kernels written with
// simd/archsimd; with the purego build tag or on other architectures, a
// portable Go kernel. Large products run on up to GOMAXPROCS goroutines.
//
// A Gorgonia user opts in with
//
//	gorgonia.Use(actqblas.Implementation{})
//
// (import actqblas "github.com/actq/actq/blas"), which also makes
// gorgonia.org/tensor use it: gorgonia.Mul, BatchedMatMul and tensor's
// MatMul then call actq's Sgemm and Dgemm. The choice is global, for every
// graph in the program; gorgonia.WhichBLAS returns the BLAS in use, to
// restore it later. Package graph needs none of this: its layers call
// actq's GEMM directly, whatever BLAS Gorgonia is set to use, and never
// change it.
package blas
