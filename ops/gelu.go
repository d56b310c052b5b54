package ops

import "gorgonia.org/gorgonia"

// GELU returns a node computing the exact Gaussian error linear unit of x
// elementwise (PyTorch's F.gelu with approximate='none'):
//
//	GELU(x)  = x·Φ(x) = ½·x·erfc(−x/√2)
//	GELU′(x) = Φ(x) + x·φ(x),  φ(x) = exp(−x²/2)/√(2π)
//
// x may be a scalar or a tensor of any rank, Float32 or Float64. The node
// differentiates on the tape machine (gorgonia.Grad) and the Lisp machine.
//
// Accuracy: evaluated with the erfc form, which keeps its relative accuracy
// in the negative tail where PyTorch's ½·x·(1+erf(x/√2)) cancels to −0
// (x ≲ −5.54 in float32). Float32 results are within one float32 ULP of the
// true value on the portable path and within 7 ULP (GELU′: 2.4 ULP or
// 1.4e-7 absolute) on the vector paths (AVX2 assembly in the default build
// on amd64, AVX-512 with GOEXPERIMENT=simd); see kernel.GELU. Against PyTorch it agrees within the contract's tolerance
// (float32 1e-6 + 2e-5·|ref|, float64 1e-12 + 1e-10·|ref|).
//
// Special cases are:
//
//	GELU(+Inf) = +Inf,  GELU′(+Inf) = 1
//	GELU(−Inf) = −0,    GELU′(−Inf) = 0   (PyTorch gives NaN for both)
//	GELU(±0)   = ±0,    GELU′(±0)   = ½
//	GELU(NaN)  = NaN,   GELU′(NaN)  = NaN
//
// It returns an error wrapping ErrNilNode for a nil x and ErrDtype for a
// dtype other than Float32 and Float64.
func GELU(x *gorgonia.Node) (*gorgonia.Node, error) { return applyActivation(actGELU, x) }
