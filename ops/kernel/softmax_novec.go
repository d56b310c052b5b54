//go:build !amd64 || (purego && !goexperiment.simd)

package kernel

// Off amd64, or on amd64 with the purego tag (and without
// GOEXPERIMENT=simd), there are no vector softmax kernels: vecSoftmax() is
// false and the stubs below are never called.

// vecSoftmax reports whether the float32 row helpers take vector twins:
// never in this build.
func vecSoftmax() bool { return false }

func max32([]float32) float32                            { panic("kernel: no vector code") }
func expSum32(_, _ []float32, _ float64, _ bool) float64 { panic("kernel: no vector code") }
func scale32([]float32, twoFloat)                        { panic("kernel: no vector code") }
func logOut32(_, _ []float32, _ float64, _ twoFloat)     { panic("kernel: no vector code") }
func dot32(_, _ []float32) float64                       { panic("kernel: no vector code") }
func gradOut32(_, _, _ []float32, _ twoFloat)            { panic("kernel: no vector code") }
func sum32([]float32) float64                            { panic("kernel: no vector code") }
func logGradOut32(_, _, _ []float32, _ twoFloat)         { panic("kernel: no vector code") }
func expVec([]float64)                                   { panic("kernel: no vector code") }
