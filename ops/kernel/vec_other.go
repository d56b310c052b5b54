//go:build !amd64 || (purego && !goexperiment.simd)

package kernel

import "math"

// Off amd64, or with the purego tag and without GOEXPERIMENT=simd, there
// is no vector code: each vector routine (see "Vector paths" in fast32.go)
// handles no element, and the portable code does all the work.

// The activations (fast32.go, relu.go).

func geluVec(dst, x []float32) int             { return 0 }
func geluGradVec(dst, x, dy []float32) int     { return 0 }
func siluVec(dst, x []float32) int             { return 0 }
func siluGradVec(dst, x, dy []float32) int     { return 0 }
func geluTanhVec(dst, x []float32) int         { return 0 }
func geluTanhGradVec(dst, x, dy []float32) int { return 0 }
func reluVec(dst, x []float32) int             { return 0 }
func reluGradVec(dst, x, dy []float32) int     { return 0 }

// The softmax row helpers (softmax.go) and the strided kernels' exp.

func maxVec(x []float32) (int, float32)                                { return 0, float32(math.Inf(-1)) }
func expSumVec(dst, x []float32, m float64, store bool) (int, float64) { return 0, 0 }
func scaleVec(dst []float32, inv twoFloat) int                         { return 0 }
func logOutVec(dst, x []float32, m float64, lse twoFloat) int          { return 0 }
func dotVec(y, dy []float32) (int, float64)                            { return 0, 0 }
func gradOutVec(dst, y, dy []float32, s twoFloat) int                  { return 0 }
func sumVec(x []float32) (int, float64)                                { return 0, 0 }
func logGradOutVec(dst, y, dy []float32, negTotal twoFloat) int        { return 0 }
func expVec(z []float64) int                                           { return 0 }

// vecImpl names how this build implements the vector paths: it has none.
const vecImpl = "none"

// vecLevel is vecNone: there is no vector path in this build.
var vecLevel = vecNone
