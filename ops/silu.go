package ops

import "gorgonia.org/gorgonia"

// SiLU returns a node computing the sigmoid linear unit (Swish, β = 1) of x
// elementwise (PyTorch's F.silu):
//
//	SiLU(x)  = x·σ(x) = x/(1 + e^(−x))
//	SiLU′(x) = σ(x)·(1 + x·(1 − σ(x)))
//
// x may be a scalar or a tensor of any rank, Float32 or Float64. The node
// differentiates on the tape machine and the Lisp machine.
//
// Accuracy: 1−σ(x) is computed as σ(−x), so nothing cancels. Float32
// results are within one float32 ULP of the true value on the portable
// path and within 3.7 ULP (derivative: 3.1 ULP or 2.3e-7 absolute) on the
// vector paths; see kernel.SiLU. Against PyTorch it agrees within the
// contract's tolerance.
//
// Special cases are:
//
//	SiLU(+Inf) = +Inf,  SiLU′(+Inf) = 1
//	SiLU(−Inf) = −0,    SiLU′(−Inf) = 0   (PyTorch gives NaN for both)
//	SiLU(±0)   = ±0,    SiLU′(±0)   = ½
//	SiLU(NaN)  = NaN,   SiLU′(NaN)  = NaN
//
// It returns an error wrapping ErrNilNode for a nil x and ErrDtype for a
// dtype other than Float32 and Float64.
func SiLU(x *gorgonia.Node) (*gorgonia.Node, error) { return applyActivation(actSiLU, x) }
