package blas

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// The GEMM is structured as BLIS and GotoBLAS structure theirs (Van Zee
// and van de Geijn, "BLIS: A Framework for Rapidly Instantiating BLAS
// Functionality", ACM TOMS 41(3), 2015; Goto and van de Geijn, "Anatomy
// of High-Performance Matrix Multiplication", ACM TOMS 34(3), 2008): one
// register-blocked micro-kernel per instruction set computes an mr×nr
// block of C from a sliver of A (mr×k) and a sliver of B (k×nr), and
// everything else is loops around it, blocked for the caches:
//
//	for jc over n, nc columns at a time:    B's panel, k×nc: packed once, shared by the threads
//	  for ic over blocks of rows of C, mc at most, taken by the threads in turn:
//	    for pc over k, kc at a time:        A's mc×kc block and C's rows stay in L2
//	      for jr over nc, nr at a time:     B's kc×nr sliver, reused across the block's rows
//	        for ir over the block, mr at a time:
//	          micro-kernel: C[ic+ir:+mr, jc+jr:+nr] = alpha·A·B + beta·C (beta after the first pc: 1)
//
// B is packed: copied into the order the kernel reads it, nr columns at a
// time, which absorbs B's transpose and stride, and zero-padded to a whole
// nr. The kernel reads A in place, through its strides (its loads of A
// are broadcasts of single elements, which need no particular layout):
// packing A in Go costs a sizeable part of the kernel's time on A's block
// when n is a few hundred, and the kernel measured no faster on packed A
// (bench/RESULTS.md). A is copied only where the kernel would run off its
// end (a last sliver of fewer than mr rows, zero-padded) and, for kernels
// that ask for it (packTransA), when A is transposed and n is large: the
// AVX2 kernels then read only 24 bytes of each cache line of A per step,
// and measured slower in place once the block is reused across many
// slivers of B. Partial blocks of C go through a small temporary.
//
// Small products (direct) do not pack B either when its rows are
// contiguous (B not transposed): packing could not be repaid, and the
// operands stay in L2 anyway. Only a last sliver of fewer than nr columns
// is copied.

// float is the element type of a GEMM.
type float interface{ float32 | float64 }

// microKernel sets the mr×nr block of C at c to alpha·A·B + beta·C, where
// A[i,p] = a[i·rsA + p·csA] (i < mr, p < k), B[p,j] = b[p·rsB + j]
// (j < nr) and C[i,j] = c[i·ldc + j]. With beta = 0 it does not read C.
// k ≥ 1, and the slices hold every element the strides reach.
type microKernel[T float] func(k int, a []T, rsA, csA int, b []T, rsB int, c []T, ldc int, alpha, beta T)

// kernel is a micro-kernel with its block sizes: kc, mc and nc are the
// cache blocks of k, m and n (mc a multiple of mr, nc of nr). packTransA
// asks for a transposed A to be packed.
type kernel[T float] struct {
	name       string
	mr, nr     int
	kc, mc, nc int
	packTransA bool
	run        microKernel[T]
}

// kernelSet is the kernels of one element type that this build can run on
// this CPU: all of them (which the tests run), and the best, which
// Implementation uses. It is set when the package is initialised and
// never changed.
type kernelSet[T float] struct {
	best kernel[T]
	all  []kernel[T]
}

// Thresholds of the driver, in multiply-adds (m·n·k).
const (
	// directMax is the largest product that does not pack B (when B's rows
	// are contiguous): its operands are at most a few hundred KiB.
	directMax = 1 << 21
	// threadMin is the work that pays for a second thread: at least this
	// much per thread, many times the cost of starting a goroutine on an
	// idle core and joining it.
	threadMin = 1 << 21
)

// gemm computes C = alpha·op(A)·op(B) + beta·C for arguments checkGemm has
// accepted, with kernel kern and up to GOMAXPROCS threads.
func gemm[T float](kern *kernel[T], aTrans, bTrans bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	op := newGemmOp(kern, aTrans, bTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	op.run(runtime.GOMAXPROCS(0))
}

// gemmOp is one GEMM call. A[i,p] = a[i·rsA + p·csA] and B[p,j] =
// b[p·rsB + j·csB]: one of each pair of strides is 1.
type gemmOp[T float] struct {
	kern        *kernel[T]
	m, n, k     int
	a           []T
	rsA, csA    int
	b           []T
	rsB, csB    int
	c           []T
	ldc         int
	alpha, beta T
}

func newGemmOp[T float](kern *kernel[T], aTrans, bTrans bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) gemmOp[T] {
	op := gemmOp[T]{kern: kern, m: m, n: n, k: k, a: a, rsA: lda, csA: 1, b: b, rsB: ldb, csB: 1, c: c, ldc: ldc, alpha: alpha, beta: beta}
	if aTrans {
		op.rsA, op.csA = 1, lda
	}
	if bTrans {
		op.rsB, op.csB = 1, ldb
	}
	return op
}

// run computes the product with at most procs threads.
func (op *gemmOp[T]) run(procs int) {
	if op.alpha == 0 || op.k == 0 {
		op.scaleC()
		return
	}
	work := op.m * op.n * op.k
	packB := op.csB != 1 || work > directMax
	threads := min(procs, maxThreads, max(1, work/threadMin))
	op.blocked(packB, threads)
}

// scaleC sets C = beta·C, and C = 0 when beta = 0 (without reading C), as
// reference BLAS does when alpha = 0 or k = 0.
func (op *gemmOp[T]) scaleC() {
	if op.beta == 1 {
		return
	}
	for i := range op.m {
		row := op.c[i*op.ldc : i*op.ldc+op.n]
		if op.beta == 0 {
			clear(row)
			continue
		}
		for j := range row {
			row[j] *= op.beta
		}
	}
}

// blocked computes the product on threads goroutines (this one included),
// packing B when packB. The threads share B's packed panel and the work
// (see worker); each has its own buffers for A and for partial blocks.
func (op *gemmOp[T]) blocked(packB bool, threads int) {
	kern := op.kern
	mr, nr := kern.mr, kern.nr
	kc := min(kern.kc, op.k)
	mc := min(kern.mc, roundUp(op.m, mr))
	// B's panel is all of k by nc columns, so that the threads meet once
	// per panel; nc shrinks for a long k to keep the panel within L3.
	nc := min(roundUp(op.n, nr), max(nr, roundDown(kern.nc*kern.kc/op.k, nr)), kern.nc)
	if !packB {
		nc = roundUp(op.n, nr)
	}
	panel := 0
	if packB {
		panel = op.k*nc + align
	}
	// A transposed block is packed, for kernels that ask for it, when the
	// block is reused across enough slivers of B to repay the copy.
	packA := kern.packTransA && op.csA != 1 && op.n >= packTransAMinSlivers*nr
	aBlock := mr * kc // a last sliver of fewer than mr rows
	if packA {
		aBlock = mc * kc
	}
	perThread := aBlock + kc*nr + mr*nr + 3*align
	ws := getWorkspace[T](panel + threads*perThread)
	defer putWorkspace(ws)
	buf := ws.buf
	sh := &ws.blocked
	*sh = blockedShared[T]{op: *op, kc: kc, mc: mc, nc: nc, packB: packB, packA: packA}
	if packB {
		sh.bp = take(&buf, op.k*nc)
	}
	for t := range threads {
		sh.aps[t] = take(&buf, aBlock)
		sh.bps[t] = take(&buf, kc*nr)
		sh.tmps[t] = take(&buf, mr*nr)
	}
	if packB {
		sh.packLeft.set(ceilDiv(min(nc, op.n), nr))
	}
	if threads == 1 {
		sh.worker(0, 1)
		return
	}
	sh.bar.init(threads)
	sh.wg.Add(threads - 1)
	for t := 1; t < threads; t++ {
		go sh.workerDone(t, threads)
	}
	sh.worker(0, threads)
	sh.wg.Wait()
}

// packTransAMinSlivers is the number of B's slivers from which a kernel
// with packTransA has a transposed A packed: below it, reading A in place
// measured faster for the AVX2 kernels (bench/RESULTS.md).
const packTransAMinSlivers = 16

// maxThreads bounds the threads of one call, so that the per-thread
// buffers of blockedShared live in fixed arrays.
const maxThreads = 64

// blockedShared is what the threads of a blocked product share: the call,
// the block sizes, what is packed, B's packed panel, each thread's buffers
// (packed A, a partial sliver of B, a partial block of C), the barrier
// they meet at between panels, the others' WaitGroup, and the counters of
// the current panel's work.
type blockedShared[T float] struct {
	op           gemmOp[T]
	kc, mc, nc   int
	packA, packB bool
	bp           []T
	aps, bps     [maxThreads][]T
	tmps         [maxThreads][]T
	bar          barrier
	wg           sync.WaitGroup
	packNext     atomic.Int64 // the next sliver of B to pack
	packLeft     countdown    // the slivers not yet packed
	next         atomic.Int64 // the next unit of work
}

// workerDone is worker, then sh.wg.Done.
func (sh *blockedShared[T]) workerDone(t, threads int) {
	defer sh.wg.Done()
	sh.worker(t, threads)
}

// worker is thread t of threads. For each panel of B, the threads take
// slivers of B to pack, then units of work, blocks of rows of C (or, with
// too few rows, of B's slivers), in turn from shared counters, so that a
// thread that starts late (waking an idle core is slow, in a virtual
// machine most of all) or that other processes delay does less of the
// work rather than hold up the rest; a thread waits only for the packing
// of slivers other threads have started.
func (sh *blockedShared[T]) worker(t, threads int) {
	op := &sh.op
	mr, nr := op.kern.mr, op.kern.nr
	splitRows := ceilDiv(op.m, mr) >= 2*threads
	// Rows come in blocks of mc, or smaller for at least four per thread,
	// as many for each thread.
	rowChunk := sh.mc
	if threads > 1 {
		units := roundUp(max(ceilDiv(op.m, sh.mc), 4*threads), threads)
		rowChunk = roundUp(ceilDiv(op.m, units), mr)
	}
	for jc := 0; jc < op.n; jc += sh.nc {
		ncb := min(sh.nc, op.n-jc)
		slivers := ceilDiv(ncb, nr)
		if sh.packB {
			// Sliver s holds B[p, jc+s·nr+j] at bp[s·nr·k + p·nr + j].
			for {
				s := int(sh.packNext.Add(1) - 1)
				if s >= slivers {
					break
				}
				packB(sh.bp[s*nr*op.k:(s+1)*nr*op.k], op.b, op.rsB, op.csB, 0, op.k, jc+s*nr, min(nr, ncb-s*nr), nr)
				sh.packLeft.done()
			}
			sh.packLeft.wait()
		}
		units, colChunk := ceilDiv(op.m, rowChunk), slivers
		if !splitRows {
			colChunk = max(1, ceilDiv(slivers, 4*threads))
			units = ceilDiv(slivers, colChunk)
		}
		for {
			u := int(sh.next.Add(1) - 1)
			if u >= units {
				break
			}
			if splitRows {
				sh.block(t, jc, ncb, u*rowChunk, min(op.m, (u+1)*rowChunk), 0, ncb)
			} else {
				sh.block(t, jc, ncb, 0, op.m, u*colChunk*nr, min(ncb, (u+1)*colChunk*nr))
			}
		}
		if jc+sh.nc >= op.n {
			break
		}
		// Every thread is done with this panel before it is repacked.
		nextPanel := func() {
			sh.packNext.Store(0)
			sh.next.Store(0)
			sh.packLeft.set(ceilDiv(min(sh.nc, op.n-jc-sh.nc), nr))
		}
		if threads > 1 {
			sh.bar.wait(nextPanel)
		} else {
			nextPanel()
		}
	}
}

// block computes rows [rowLo, rowHi) and columns jc+[colLo, colHi) of C
// (within the panel of ncb columns at jc), on thread t's buffers.
func (sh *blockedShared[T]) block(t, jc, ncb, rowLo, rowHi, colLo, colHi int) {
	op := &sh.op
	mr, nr := op.kern.mr, op.kern.nr
	ap, bTail, tmp := sh.aps[t], sh.bps[t], sh.tmps[t]
	for ic := rowLo; ic < rowHi; ic += sh.mc {
		mcb := min(sh.mc, rowHi-ic)
		for pc := 0; pc < op.k; pc += sh.kc {
			kcb := min(sh.kc, op.k-pc)
			beta := op.beta
			if pc > 0 {
				beta = 1
			}
			full := mcb / mr * mr // rows read in place, unless packA
			if sh.packA {
				packA(ap, op.a, op.rsA, op.csA, ic, mcb, pc, kcb, mr)
				full = 0
			} else if full < mcb {
				packA(ap, op.a, op.rsA, op.csA, ic+full, mcb-full, pc, kcb, mr)
			}
			for jr := colLo; jr < colHi; jr += nr {
				nb := min(nr, ncb-jr)
				var b []T
				rsB := nr
				switch {
				case sh.packB:
					b = sh.bp[(jr/nr)*nr*op.k+pc*nr:]
				case nb == nr:
					b, rsB = op.b[pc*op.rsB+jc+jr:], op.rsB
				default:
					packB(bTail, op.b, op.rsB, op.csB, pc, kcb, jc+jr, nb, nr)
					b = bTail
				}
				for ir := 0; ir < mcb; ir += mr {
					mb := min(mr, mcb-ir)
					if ir < full {
						op.tile(kcb, op.a[(ic+ir)*op.rsA+pc*op.csA:], op.rsA, op.csA, b, rsB, ic+ir, jc+jr, mb, nb, beta, tmp)
					} else {
						op.tile(kcb, ap[(ir-full)*kcb:], 1, mr, b, rsB, ic+ir, jc+jr, mb, nb, beta, tmp)
					}
				}
			}
		}
	}
}

// tile runs the kernel for the block of C at row i, column j with mb ≤ mr
// rows and nb ≤ nr columns; a partial block goes through tmp (mr·nr
// elements).
func (op *gemmOp[T]) tile(k int, a []T, rsA, csA int, b []T, rsB int, i, j, mb, nb int, beta T, tmp []T) {
	kern := op.kern
	if mb == kern.mr && nb == kern.nr {
		kern.run(k, a, rsA, csA, b, rsB, op.c[i*op.ldc+j:], op.ldc, op.alpha, beta)
		return
	}
	kern.run(k, a, rsA, csA, b, rsB, tmp, kern.nr, op.alpha, 0)
	for r := range mb {
		src := tmp[r*kern.nr : r*kern.nr+nb]
		dst := op.c[(i+r)*op.ldc+j : (i+r)*op.ldc+j+nb]
		if beta == 0 {
			copy(dst, src)
			continue
		}
		for q, v := range src {
			dst[q] = v + beta*dst[q]
		}
	}
}

// packA copies rows [i0, i0+mc) and columns [p0, p0+kc) of A into dst as
// ⌈mc/mr⌉ slivers: A[i0+s·mr+r, p0+p] at dst[s·mr·kc + p·mr + r], and 0
// for the rows past mc of the last sliver.
func packA[T float](dst, a []T, rsA, csA, i0, mc, p0, kc, mr int) {
	for s := 0; s*mr < mc; s++ {
		d := dst[s*mr*kc : (s+1)*mr*kc]
		rows := min(mr, mc-s*mr)
		base := i0 + s*mr
		switch {
		case csA == 1 && rows == mr && mr%6 == 0:
			for r := 0; r < mr; r += 6 {
				packRows6(d[r:], a[(base+r)*rsA+p0:], rsA, kc, mr)
			}
		case csA == 1 && rows == 4 && mr == 4:
			packRows4(d, a[base*rsA+p0:], rsA, kc)
		case rsA == 1 && rows == mr && mr == 6:
			for p := range kc {
				*(*[6]T)(d[p*6:]) = *(*[6]T)(a[(p0+p)*csA+base:])
			}
		case rsA == 1 && rows == mr && mr == 12:
			for p := range kc {
				*(*[12]T)(d[p*12:]) = *(*[12]T)(a[(p0+p)*csA+base:])
			}
		case rsA == 1 && rows == mr && mr == 4:
			for p := range kc {
				*(*[4]T)(d[p*4:]) = *(*[4]T)(a[(p0+p)*csA+base:])
			}
		default:
			for p := range kc {
				src := a[(p0+p)*csA+base*rsA:]
				dp := d[p*mr : p*mr+rows]
				for r := range dp {
					dp[r] = src[r*rsA]
				}
			}
		}
		if rows < mr {
			for p := range kc {
				clear(d[p*mr+rows : (p+1)*mr])
			}
		}
	}
}

// packRows6 copies six rows of kc elements (row r at a[r·rsA:]) to
// d[p·mr + r].
func packRows6[T float](d, a []T, rsA, kc, mr int) {
	r0, r1, r2 := a[:kc], a[rsA:][:kc], a[2*rsA:][:kc]
	r3, r4, r5 := a[3*rsA:][:kc], a[4*rsA:][:kc], a[5*rsA:][:kc]
	for p := range kc {
		q := d[p*mr:][:6]
		q[0], q[1], q[2], q[3], q[4], q[5] = r0[p], r1[p], r2[p], r3[p], r4[p], r5[p]
	}
}

// packRows4 copies four rows of kc elements (row r at a[r·rsA:]) to
// d[p·4 + r].
func packRows4[T float](d, a []T, rsA, kc int) {
	r0, r1, r2, r3 := a[:kc], a[rsA:][:kc], a[2*rsA:][:kc], a[3*rsA:][:kc]
	for p := range kc {
		q := d[p*4:][:4]
		q[0], q[1], q[2], q[3] = r0[p], r1[p], r2[p], r3[p]
	}
}

// packB copies rows [p0, p0+kc) and columns [j0, j0+nb) of B (nb ≤ nr)
// into dst as one sliver: B[p0+p, j0+j] at dst[p·nr + j], and 0 for the
// columns past nb.
func packB[T float](dst, b []T, rsB, csB, p0, kc, j0, nb, nr int) {
	d := dst[:kc*nr]
	switch {
	case csB == 1 && nb == nr && nr == 32:
		for p := range kc {
			*(*[32]T)(d[p*32:]) = *(*[32]T)(b[(p0+p)*rsB+j0:])
		}
		return
	case csB == 1 && nb == nr && nr == 16:
		for p := range kc {
			*(*[16]T)(d[p*16:]) = *(*[16]T)(b[(p0+p)*rsB+j0:])
		}
		return
	case csB == 1 && nb == nr && nr == 8:
		for p := range kc {
			*(*[8]T)(d[p*8:]) = *(*[8]T)(b[(p0+p)*rsB+j0:])
		}
		return
	case csB == 1:
		for p := range kc {
			row := d[p*nr : (p+1)*nr]
			copy(row, b[(p0+p)*rsB+j0:(p0+p)*rsB+j0+nb])
			clear(row[nb:])
		}
		return
	}
	// B transposed (rsB = 1): column j of B is contiguous. With AVX, a
	// whole sliver is transposed in vector blocks up to the last few rows
	// of B; otherwise blocks of 4×4 are read as four runs of four and
	// written as four.
	j, p1 := 0, 0
	if nb == nr {
		p1 = transposeVec(d, nr, b[j0*csB+p0:], csB, nr, kc)
	}
	for ; j+4 <= nb; j += 4 {
		c0 := b[(j0+j)*csB+p0:][:kc]
		c1 := b[(j0+j+1)*csB+p0:][:kc]
		c2 := b[(j0+j+2)*csB+p0:][:kc]
		c3 := b[(j0+j+3)*csB+p0:][:kc]
		p := p1
		for ; p+4 <= kc; p += 4 {
			x0, x1, x2, x3 := c0[p:p+4:p+4], c1[p:p+4:p+4], c2[p:p+4:p+4], c3[p:p+4:p+4]
			q := d[p*nr+j:][:3*nr+4]
			q[0], q[1], q[2], q[3] = x0[0], x1[0], x2[0], x3[0]
			q[nr], q[nr+1], q[nr+2], q[nr+3] = x0[1], x1[1], x2[1], x3[1]
			q[2*nr], q[2*nr+1], q[2*nr+2], q[2*nr+3] = x0[2], x1[2], x2[2], x3[2]
			q[3*nr], q[3*nr+1], q[3*nr+2], q[3*nr+3] = x0[3], x1[3], x2[3], x3[3]
		}
		for ; p < kc; p++ {
			q := d[p*nr+j:][:4]
			q[0], q[1], q[2], q[3] = c0[p], c1[p], c2[p], c3[p]
		}
	}
	for ; j < nb; j++ {
		src := b[(j0+j)*csB+p0:][:kc]
		for p := p1; p < kc; p++ {
			d[p*nr+j] = src[p]
		}
	}
	if nb < nr {
		for p := range kc {
			clear(d[p*nr+nb : (p+1)*nr])
		}
	}
}

// align bounds the leading elements take skips to start a buffer on 64
// bytes (at most 15 float32 or 7 float64), so that vector loads do not
// straddle cache lines: a buffer of n elements needs n + align of room.
const align = 16

// take cuts n elements, aligned, from the front of *buf.
func take[T float](buf *[]T, n int) []T {
	b := *buf
	off := alignOffset(b)
	*buf = b[off+n:]
	return b[off : off+n : off+n]
}

func roundUp(x, m int) int   { return (x + m - 1) / m * m }
func roundDown(x, m int) int { return x / m * m }
func ceilDiv(x, m int) int   { return (x + m - 1) / m }
