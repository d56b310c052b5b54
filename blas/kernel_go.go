package blas

// goKernel is the portable micro-kernel: 4×4, in plain Go. Sixteen
// accumulators, four values of A and four of B are as many as amd64's 16
// floating-point registers hold without spilling in the loop.
func goKernel[T float]() kernel[T] {
	return kernel[T]{name: "go4x4", mr: 4, nr: 4, kc: 256, mc: 128, nc: 4096, run: goKernel4x4[T]}
}

// goKernel4x4 is a microKernel with mr = nr = 4.
func goKernel4x4[T float](k int, a []T, rsA, csA int, b []T, rsB int, c []T, ldc int, alpha, beta T) {
	var c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33 T
	a0, a1, a2, a3 := a, a[rsA:], a[2*rsA:], a[3*rsA:]
	for p := range k {
		bp := b[p*rsB : p*rsB+4]
		b0, b1, b2, b3 := bp[0], bp[1], bp[2], bp[3]
		x := a0[p*csA]
		c00 += x * b0
		c01 += x * b1
		c02 += x * b2
		c03 += x * b3
		x = a1[p*csA]
		c10 += x * b0
		c11 += x * b1
		c12 += x * b2
		c13 += x * b3
		x = a2[p*csA]
		c20 += x * b0
		c21 += x * b1
		c22 += x * b2
		c23 += x * b3
		x = a3[p*csA]
		c30 += x * b0
		c31 += x * b1
		c32 += x * b2
		c33 += x * b3
	}
	storeRow(c[0*ldc:0*ldc+4], c00, c01, c02, c03, alpha, beta)
	storeRow(c[1*ldc:1*ldc+4], c10, c11, c12, c13, alpha, beta)
	storeRow(c[2*ldc:2*ldc+4], c20, c21, c22, c23, alpha, beta)
	storeRow(c[3*ldc:3*ldc+4], c30, c31, c32, c33, alpha, beta)
}

// storeRow sets c[j] = alpha·vj + beta·c[j] (c[j] = alpha·vj for beta = 0,
// without reading c).
func storeRow[T float](c []T, v0, v1, v2, v3, alpha, beta T) {
	c = c[:4]
	if beta == 0 {
		c[0], c[1], c[2], c[3] = alpha*v0, alpha*v1, alpha*v2, alpha*v3
		return
	}
	c[0] = alpha*v0 + beta*c[0]
	c[1] = alpha*v1 + beta*c[1]
	c[2] = alpha*v2 + beta*c[2]
	c[3] = alpha*v3 + beta*c[3]
}
