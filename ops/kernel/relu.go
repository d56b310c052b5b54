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
	if err := checkLengths("kernel.ReLU", len(dst), len(x)); err != nil {
		return err
	}
	for i, v := range x {
		if !(v <= 0) { // positive or NaN
			dst[i] = v
		} else {
			dst[i] = 0
		}
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
	if err := checkLengths("kernel.ReLUGrad", len(dst), len(x), len(dy)); err != nil {
		return err
	}
	for i, v := range x {
		if !(v <= 0) {
			dst[i] = dy[i]
		} else {
			dst[i] = 0
		}
	}
	return nil
}
