//go:build !(goexperiment.simd && amd64)

package kernel

// Without GOEXPERIMENT=simd on amd64 there are no vector softmax kernels:
// vecLevel is vecNone, so vecSoftmax() is false and the stubs below are
// never called.

func max32([]float32) float32                            { panic("kernel: no vector code") }
func expSum32(_, _ []float32, _ float64, _ bool) float64 { panic("kernel: no vector code") }
func scale32([]float32, float64)                         { panic("kernel: no vector code") }
func logOut32(_, _ []float32, _, _ float64)              { panic("kernel: no vector code") }
func dot32(_, _ []float32) float64                       { panic("kernel: no vector code") }
func gradOut32(_, _, _ []float32, _ float64)             { panic("kernel: no vector code") }
func sum32([]float32) float64                            { panic("kernel: no vector code") }
func logGradOut32(_, _, _ []float32, _ float64)          { panic("kernel: no vector code") }
func expVec([]float64)                                   { panic("kernel: no vector code") }
