//go:build !amd64 || (purego && !goexperiment.simd)

package kernel

// Off amd64, or with the purego tag and without GOEXPERIMENT=simd, there
// are no vector kernels: each returns 0, the number of leading elements it
// handled, and the portable loop does the rest.

func geluVec(dst, x []float32) int             { return 0 }
func geluGradVec(dst, x, dy []float32) int     { return 0 }
func siluVec(dst, x []float32) int             { return 0 }
func siluGradVec(dst, x, dy []float32) int     { return 0 }
func geluTanhVec(dst, x []float32) int         { return 0 }
func geluTanhGradVec(dst, x, dy []float32) int { return 0 }
func reluVec(dst, x []float32) int             { return 0 }
func reluGradVec(dst, x, dy []float32) int     { return 0 }

// vecImpl names how this build implements the vector paths: it has none.
const vecImpl = "none"

// vecLevel is vecNone: there is no vector path in this build.
var vecLevel = vecNone
