package kernel

// ReLU sets dst[i] = max(x[i], 0), the rectified linear unit.
//
// It is exact. NaN propagates, as in PyTorch's clamp_min. Special cases are:
//
//	ReLU(+Inf) = +Inf
//	ReLU(−Inf) = 0
//	ReLU(±0)   = +0
//	ReLU(NaN)  = NaN
//
// dst may alias x. It returns an error wrapping ErrLength if the lengths
// differ.
func ReLU[T Float](dst, x []T) error {
	if err := checkLengths("kernel.ReLU", arg{"dst", len(dst)}, arg{"x", len(x)}); err != nil {
		return err
	}
	if is32[T]() {
		i := reluVec(as32(dst), as32(x))
		dst, x = dst[i:], x[i:]
	}
	dst = dst[:len(x)]
	for j, v := range x {
		// Go's max is IEEE maximum: NaN if v is NaN, and max(−0, 0) = +0.
		dst[j] = max(v, 0)
	}
	return nil
}

// ReLUGrad sets dst[i] = dy[i] where x[i] > 0 and 0 where x[i] ≤ 0: the
// backward pass of ReLU with the convention ReLU′(0) = 0, as PyTorch
// (threshold_backward) and JAX use. Gorgonia's Rectify uses ReLU′(0) = 1.
//
// The mask is "not x ≤ 0", so a NaN input passes dy through, as PyTorch's
// threshold_backward on the NaN output does. Special cases are:
//
//	ReLU′(+Inf) = 1
//	ReLU′(−Inf) = 0
//	ReLU′(±0)   = 0
//	ReLU′(NaN)  = 1  (dy passes through)
//
// dst may alias x or dy. It returns an error wrapping ErrLength if the
// lengths differ.
func ReLUGrad[T Float](dst, x, dy []T) error {
	if err := checkLengths("kernel.ReLUGrad", arg{"dst", len(dst)}, arg{"x", len(x)}, arg{"dy", len(dy)}); err != nil {
		return err
	}
	if is32[T]() {
		i := reluGradVec(as32(dst), as32(x), as32(dy))
		dst, x, dy = dst[i:], x[i:], dy[i:]
	}
	dst, dy = dst[:len(x)], dy[:len(x)]
	for j, v := range x {
		if !(v <= 0) {
			dst[j] = dy[j]
		} else {
			dst[j] = 0
		}
	}
	return nil
}
