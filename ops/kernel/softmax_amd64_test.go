//go:build amd64 && !goexperiment.simd && !purego

package kernel

// bestSoftmaxAVX2 is softmaxAVX2 as detected from the CPU.
var bestSoftmaxAVX2 = softmaxAVX2

// setSoftmaxAsm turns the AVX2 assembly softmax helpers on (where the CPU
// has AVX2 and FMA) or off.
func setSoftmaxAsm(on bool) { softmaxAVX2 = on && bestSoftmaxAVX2 }
