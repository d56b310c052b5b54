package blas

// goKernel is the portable micro-kernel: 2×4 in plain Go. The Go compiler
// keeps a kernel's accumulators in registers only while they, the values
// of A and B and the products in flight fit in amd64's 15 usable
// floating-point registers; with more rows or columns (4×4 and 3×4 were
// tried) it spills in the loop and runs slower, not faster. Scalar Go
// cannot reach SIMD assembly: this kernel is slower than gonum's Sgemm,
// which uses SSE (bench/RESULTS.md); the other builds use vector kernels.
func goKernel[T float]() kernel[T] {
	return kernel[T]{name: "go", mr: 2, nr: 4, kc: 256, mc: 128, nc: 4096, run: goKernel2x4[T]}
}

// goKernel2x4 is a microKernel with mr = 2, nr = 4.
func goKernel2x4[T float](k int, a []T, rsA, csA int, b []T, rsB int, c []T, ldc int, alpha, beta T) {
	var c00, c01, c02, c03, c10, c11, c12, c13 T
	a0, a1 := a[:(k-1)*csA+1], a[rsA:][:(k-1)*csA+1]
	ia, ib := 0, 0
	for range k {
		x0, x1 := a0[ia], a1[ia]
		bp := b[ib : ib+4 : ib+4]
		t := bp[0]
		c00 += x0 * t
		c10 += x1 * t
		t = bp[1]
		c01 += x0 * t
		c11 += x1 * t
		t = bp[2]
		c02 += x0 * t
		c12 += x1 * t
		t = bp[3]
		c03 += x0 * t
		c13 += x1 * t
		ia += csA
		ib += rsB
	}
	storeRow(c[:4], c00, c01, c02, c03, alpha, beta)
	storeRow(c[ldc:ldc+4], c10, c11, c12, c13, alpha, beta)
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

// newKernelSet keeps the kernels the CPU can run (named avx512 and avx2,
// run when the CPU has AVX-512F, and AVX2 and FMA), in order, then the
// portable one, and makes the first the best.
func newKernelSet[T float](avx2, avx512 bool, ks ...kernel[T]) kernelSet[T] {
	var set kernelSet[T]
	for _, k := range ks {
		if k.name == "avx512" && avx512 || k.name == "avx2" && avx2 {
			set.all = append(set.all, k)
		}
	}
	set.all = append(set.all, goKernel[T]())
	set.best = set.all[0]
	return set
}
