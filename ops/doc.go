// Package ops provides Gorgonia ops for activations and softmax: GELU (exact
// and tanh form), SiLU, ReLU, Softmax and LogSoftmax; and CheckFinite, an
// identity node that stops a run at the first NaN or Inf.
//
// Each op is a single Gorgonia node (not a composition of Gorgonia's own
// ops) with a fused backward op. It runs on the tape machine (its SymDiff
// adds the backward node to the graph for gorgonia.Grad) and on the Lisp
// machine (its DoDiff adds into the input's gradient). Float32 and Float64
// scalars and tensors of any rank are accepted; any other dtype, a nil node
// or an out-of-range axis is an error at graph-build time, wrapping one of
// the sentinel errors ErrNilNode, ErrDtype, ErrAxis or ErrShape.
//
// Numbers match PyTorch's torch.nn.functional within 1e-6 + 2e-5·|ref| in
// float32 and 1e-12 + 1e-10·|ref| in float64 (tested against committed
// goldens in testdata/). Where PyTorch loses accuracy or returns NaN at ±Inf,
// these ops return the accurate value or the mathematical limit; each op's
// doc lists its special cases.
//
// Ops carry their parameters by value and keep no state, so graphs using
// them may run concurrently (one graph and machine per goroutine, as
// Gorgonia requires). The numerical kernels are in package ops/kernel.
package ops
