package ops

import "gorgonia.org/gorgonia"

// GELUTanh returns a node computing the tanh approximation of GELU
// elementwise (PyTorch's F.gelu with approximate='tanh'; JAX's default):
//
//	GELUTanh(x)  = ½·x·(1 + tanh(u)),  u = √(2/π)·(x + 0.044715·x³)
//	GELUTanh′(x) = ½(1+tanh(u)) + ½·x·(1−tanh²(u))·√(2/π)·(1 + 0.134145·x²)
//
// x may be a scalar or a tensor of any rank, Float32 or Float64. The node
// differentiates on the tape machine and the Lisp machine.
//
// Accuracy: evaluated as x·σ(2u), which equals the tanh form without its
// cancellation for negative x. Float32 results are within one float32 ULP
// of the formula on the portable path and within 3.6 ULP (derivative:
// 3.4 ULP or 2.6e-7 absolute) on the vector paths; see kernel.GELUTanh.
// Against PyTorch it agrees within the contract's tolerance.
//
// Special cases are:
//
//	GELUTanh(+Inf) = +Inf,  GELUTanh′(+Inf) = 1
//	GELUTanh(−Inf) = −0,    GELUTanh′(−Inf) = 0   (PyTorch gives NaN)
//	GELUTanh(±0)   = ±0,    GELUTanh′(±0)   = ½
//	GELUTanh(NaN)  = NaN,   GELUTanh′(NaN)  = NaN
//
// It returns an error wrapping ErrNilNode for a nil x and ErrDtype for a
// dtype other than Float32 and Float64.
func GELUTanh(x *gorgonia.Node) (*gorgonia.Node, error) { return applyActivation(actGELUTanh, x) }
