package ops

import "gorgonia.org/gorgonia"

// ReLU returns a node computing the rectified linear unit of x elementwise
// (PyTorch's F.relu):
//
//	ReLU(x)  = max(x, 0)
//	ReLU′(x) = 1 if x > 0, else 0
//
// The derivative at 0 is 0, as in PyTorch and JAX (Bertoin et al., "Numerical
// influence of ReLU′(0) on backpropagation", NeurIPS 2021). Gorgonia's
// Rectify uses 1 there.
//
// x may be a scalar or a tensor of any rank, Float32 or Float64. The node
// differentiates on the tape machine and the Lisp machine. It is exact.
//
// Special cases are:
//
//	ReLU(+Inf) = +Inf,  ReLU′(+Inf) = 1
//	ReLU(−Inf) = 0,     ReLU′(−Inf) = 0
//	ReLU(±0)   = +0,    ReLU′(±0)   = 0
//	ReLU(NaN)  = NaN,   ReLU′(NaN)  = 1   (the gradient passes, as in PyTorch)
//
// It returns an error wrapping ErrNilNode for a nil x and ErrDtype for a
// dtype other than Float32 and Float64.
func ReLU(x *gorgonia.Node) (*gorgonia.Node, error) { return applyActivation(actReLU, x) }
