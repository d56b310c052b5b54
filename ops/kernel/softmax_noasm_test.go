//go:build !amd64 || goexperiment.simd || purego

package kernel

// setSoftmaxAsm does nothing: this build has no assembly softmax helpers
// (softmax_amd64.go); its vector softmax, if any, follows vecLevel.
func setSoftmaxAsm(bool) {}
