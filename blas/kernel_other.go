//go:build !amd64 || purego || goexperiment.simd

package blas

// Off amd64, and with the purego tag, the portable Go kernel is the only
// one.
var (
	kernels32 = kernelSet[float32]{best: goKernel[float32](), all: []kernel[float32]{goKernel[float32]()}}
	kernels64 = kernelSet[float64]{best: goKernel[float64](), all: []kernel[float64]{goKernel[float64]()}}
)
