package qkernel

// LSQScaleGrad returns Σᵢ dy[i]·∂y[i]/∂s for y = FakeQuantInt(x) on grid q
// under the LSQ estimator (Esser et al., arXiv:1902.08153, Eq. 3), in the
// form of PyTorch's _fake_quantize_learnable_per_tensor_affine backward:
//
//	inside the range:  ∂y/∂s = (y − x)·(1/s)   = round(x/s) − x/s
//	below (q < qmin):  ∂y/∂s = qmin − z
//	above (q > qmax):  ∂y/∂s = qmax − z
//
// Each term is computed in T, as PyTorch does, and the sum in float64. NaN x
// counts as below the range, as in PyTorch (its code is INT64_MIN). The
// gradient with respect to x is FakeQuantIntGrad's. No gradient factor is
// applied; the caller multiplies the sum by it.
//
// It returns an error wrapping ErrLength if the lengths differ and
// ErrParam for an invalid q (see NewInt).
func LSQScaleGrad[T Float](x, dy []T, q Int[T]) (float64, error) {
	if err := checkLengths("qkernel.LSQScaleGrad", arg{"x", len(x)}, arg{"dy", len(dy)}); err != nil {
		return 0, err
	}
	if err := checkInt("qkernel.LSQScaleGrad", "q", q); err != nil {
		return 0, err
	}
	magic := roundMagic[T]()
	dy = dy[:len(x)]
	var sum float64
	for i, v := range x {
		sum += float64(T(dy[i] * q.scaleSlope(v, magic)))
	}
	return sum, nil
}

// scaleSlope returns LSQScaleGrad's ∂y/∂s for one element x, in T; magic
// is roundMagic[T]().
func (q Int[T]) scaleSlope(x, magic T) T {
	r := q.code(x, magic)
	switch {
	case r >= q.lo && r <= q.hi:
		return T(T(r*q.scale)-x) * q.inv
	case r > q.hi:
		return q.hi
	}
	return q.lo // below, or NaN
}

// LSQScaleGradCols is LSQScaleGrad with one grid per column, as in
// FakeQuantIntCols: it adds column j's sum into dst[j]. dst must have
// len(qs) elements.
func LSQScaleGradCols[T Float](dst []float64, x, dy []T, qs []Int[T]) error {
	if err := checkCols("qkernel.LSQScaleGradCols", arg{"x", len(x)}, arg{"dy", len(dy)}, "len(qs)", len(qs)); err != nil {
		return err
	}
	if err := checkLengths("qkernel.LSQScaleGradCols", arg{"qs", len(qs)}, arg{"dst", len(dst)}); err != nil {
		return err
	}
	if err := checkInts("qkernel.LSQScaleGradCols", qs); err != nil {
		return err
	}
	magic := roundMagic[T]()
	for i, v := range x {
		j := i % len(qs)
		dst[j] += float64(T(dy[i] * qs[j].scaleSlope(v, magic)))
	}
	return nil
}
