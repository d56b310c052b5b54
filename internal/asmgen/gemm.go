package main

import (
	"fmt"
	"math/bits"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// The targets blas (its GEMM micro-kernels and transposes, gemm_amd64.s
// and gemm_stub_amd64.go) and internal/cpupeak (the FMA loops that measure
// the core's peak, peak_amd64.s and peak_stub_amd64.go). Unlike the other
// targets, these kernels name their registers: a micro-kernel's
// accumulators, B's vectors and A's broadcasts fill the register file by
// design, and AVX-512 kernels use Z0–Z31.

// vecRegs returns the vector registers of a width: Y0–Y15 (AVX2 has no
// more) or Z0–Z31.
func vecRegs(bits int) []VecPhysical {
	if bits == 256 {
		return []VecPhysical{Y0, Y1, Y2, Y3, Y4, Y5, Y6, Y7,
			Y8, Y9, Y10, Y11, Y12, Y13, Y14, Y15}
	}
	return []VecPhysical{Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7,
		Z8, Z9, Z10, Z11, Z12, Z13, Z14, Z15,
		Z16, Z17, Z18, Z19, Z20, Z21, Z22, Z23,
		Z24, Z25, Z26, Z27, Z28, Z29, Z30, Z31}
}

// micro is one GEMM micro-kernel: an mr×nr block of C held in
// registers, nr/lanes vectors per row.
type micro struct {
	name   string
	e      elem
	bits   int // vector width
	mr, nr int
	isa    string
}

// micros are package blas's kernels. The AVX2 shapes are BLIS's Haswell
// ones (16 vector registers: 12 accumulators, two vectors of B and two
// broadcasts); the AVX-512 ones use 24 of the 32 registers for
// accumulators. mr is a multiple of 3: rows are addressed three to a base
// register (see generate).
var micros = []micro{
	{"sgemmAVX2", f32, 256, 6, 16, "AVX2 and FMA"},
	{"dgemmAVX2", f64, 256, 6, 8, "AVX2 and FMA"},
	{"sgemmAVX512", f32, 512, 12, 32, "AVX-512F"},
	{"dgemmAVX512", f64, 512, 12, 16, "AVX-512F"},
}

// kUnroll is how many steps of k the main loop of a micro-kernel takes
// per iteration.
const kUnroll = 4

// generate emits the kernel. Its contract, stated in the doc comment it
// writes, is the one package blas's Go micro-kernels have:
//
//	C[i,j] = alpha·Σ_{p<k} A[i,p]·B[p,j] + beta·C[i,j]  (i < mr, j < nr)
//
// with A[i,p] at a[i·rsA + p·csA], B[p,j] at b[p·rsB + j] and C[i,j] at
// c[i·ldc + j]; with beta = 0, C is not read. The strides let the same
// code run on packed panels (rsA = 1, csA = mr, rsB = nr) and directly on
// a caller's matrices.
//
// Each step of k loads the nr values of B's row as vectors, broadcasts
// A's mr values one at a time and adds each broadcast times B's vectors
// into the row's accumulators with FMA. Row i of A is addressed as
// base[i/3] + (i%3)·rsA, so that mr/3 base registers and one index
// register reach every row; each step advances the bases by csA and b by
// rsB.
func (m micro) generate() {
	t := m.e.goType()
	lanes := m.bits / m.e.bits
	nv := m.nr / lanes
	TEXT(m.name, NOSPLIT, fmt.Sprintf("func(k int, a *%[1]s, rsA, csA int, b *%[1]s, rsB int, c *%[1]s, ldc int, alpha, beta %[1]s)", t))
	Pragma("noescape")
	Doc(
		fmt.Sprintf("%s sets the %d×%d block C = alpha·A·B + beta·C (%s), where", m.name, m.mr, m.nr, m.isa),
		fmt.Sprintf("A[i,p] = a[i·rsA + p·csA] (i < %d, p < k), B[p,j] = b[p·rsB + j] (j < %d)", m.mr, m.nr),
		"and C[i,j] = c[i·ldc + j]. With beta = 0, C is not read. Strides are in",
		"elements; k ≥ 0.",
	)

	k, tmp := RCX, RBX
	bases := []GPPhysical{RSI, RDI, R8, R9}[:m.mr/3]
	rs, cs, b, rsB := R10, R11, RDX, R12

	Load(Param("k"), k)
	Load(Param("a"), bases[0])
	Load(Param("rsA"), rs)
	Load(Param("csA"), cs)
	Load(Param("b"), b)
	Load(Param("rsB"), rsB)
	SHLQ(U8(m.e.shift()), rs)
	SHLQ(U8(m.e.shift()), cs)
	SHLQ(U8(m.e.shift()), rsB)
	threeRows(bases, rs, tmp)

	v := vecRegs(m.bits)
	bv := v[0:nv]                 // B's row
	bc := v[nv : nv+2]            // broadcasts, alternating
	acc := v[nv+2 : nv+2+m.mr*nv] // acc[i*nv+j]: row i, vector j
	if len(acc) != m.mr*nv {
		panic(m.name + ": not enough vector registers")
	}
	for _, r := range acc {
		zero(m.bits, r)
	}

	row := func(i int) Mem { return rowMem(bases, rs, i) }
	step := func() {
		for j, r := range bv {
			m.e.movu(Mem{Base: b, Disp: j * m.bits / 8}, r)
		}
		for i := 0; i < m.mr; i++ {
			x := bc[i%2]
			m.e.bcast(row(i), x)
			for j, r := range bv {
				m.e.fma(r, x, acc[i*nv+j])
			}
		}
		for _, r := range bases {
			ADDQ(cs, r)
		}
		ADDQ(rsB, b)
	}

	// Prefetch C's block, which the kernel reads (beta ≠ 0) or writes at
	// the end: its first and last byte of each row.
	cp, ldc := RAX, R13
	Load(Param("c"), cp)
	Load(Param("ldc"), ldc)
	SHLQ(U8(m.e.shift()), ldc)
	for i := 0; i < m.mr; i++ {
		PREFETCHT0(Mem{Base: cp})
		PREFETCHT0(Mem{Base: cp, Disp: m.nr*m.e.size() - 1})
		if i < m.mr-1 {
			ADDQ(ldc, cp)
		}
	}

	Comment(fmt.Sprintf("%d steps of k per iteration, then one at a time.", kUnroll))
	MOVQ(k, tmp)
	SHRQ(U8(2), tmp)
	JZ(LabelRef("tail"))
	Label("loop")
	for range kUnroll {
		step()
	}
	DECQ(tmp)
	JNZ(LabelRef("loop"))
	Label("tail")
	ANDQ(U8(kUnroll-1), k)
	JZ(LabelRef("store"))
	Label("loop1")
	step()
	DECQ(k)
	JNZ(LabelRef("loop1"))

	// C's rows are addressed like A's, three to a base register.
	Label("store")
	Load(Param("c"), bases[0])
	Load(Param("ldc"), rs)
	SHLQ(U8(m.e.shift()), rs)
	threeRows(bases, rs, tmp)
	alpha, beta := bc[0], bc[1]
	Comment("beta = ±0 (its bits but the sign are 0): C is not read, so that a NaN in it",
		"does not propagate.")
	if m.e.size() == 4 {
		MOVL(param("beta"), tmp.As32())
		SHLL(U8(1), tmp.As32())
	} else {
		MOVQ(param("beta"), tmp)
		SHLQ(U8(1), tmp)
	}
	JNZ(LabelRef("general"))
	m.e.bcast(param("alpha"), alpha)
	for i := 0; i < m.mr; i++ {
		for j := 0; j < nv; j++ {
			r := acc[i*nv+j]
			m.e.mul(alpha, r, r)
			m.e.movu(r, cMem(row(i), j*m.bits/8))
		}
	}
	VZEROUPPER()
	RET()

	Label("general")
	m.e.bcast(param("alpha"), alpha)
	m.e.bcast(param("beta"), beta)
	for i := 0; i < m.mr; i++ {
		for j := 0; j < nv; j++ {
			r := acc[i*nv+j]
			mem := cMem(row(i), j*m.bits/8)
			m.e.mul(alpha, r, r)
			m.e.fma(mem, beta, r) // r = beta·C + r
			m.e.movu(r, mem)
		}
	}
	VZEROUPPER()
	RET()
}

// transpose emits a function that transposes a rows×cols block with AVX:
// dst[c·ldd + r] = src[r·lds + c] for r < rows, c < cols (multiples of 8
// for float32, of 4 for float64; strides in elements). It packs the
// slivers of a transposed B: 8×8 blocks of float32 go through the usual
// unpack, shuffle and 128-bit permute network (24 shuffles for 64
// values), 4×4 blocks of float64 through unpacks and permutes.
func transpose(name string, e elem) {
	n := e.lanes() // block side: 8 or 4
	TEXT(name, NOSPLIT, fmt.Sprintf("func(dst *%[1]s, ldd int, src *%[1]s, lds int, rows, cols int)", e.goType()))
	Pragma("noescape")
	Doc(
		fmt.Sprintf("%s sets dst[c·ldd + r] = src[r·lds + c] for r < rows and c < cols,", name),
		fmt.Sprintf("multiples of %d (AVX); strides are in elements.", n),
	)
	// cc counts the column blocks, and first serves threeRows as a
	// temporary.
	src, lds, dst, ldd := RSI, R8, RDI, R9
	rows, cc := RCX, RDX
	sb := []GPPhysical{R10, R11, R12}[:(n+2)/3] // source rows, three to a base
	db := []GPPhysical{R13, RAX, RBX}[:(n+2)/3] // destination rows
	blockShift := U8(uint8(bits.TrailingZeros(uint(n))))
	Load(Param("dst"), dst)
	Load(Param("ldd"), ldd)
	Load(Param("src"), src)
	Load(Param("lds"), lds)
	Load(Param("rows"), rows)
	SHLQ(U8(e.shift()), ldd)
	SHLQ(U8(e.shift()), lds)
	SHRQ(blockShift, rows)
	JZ(LabelRef("done"))
	v := vecRegs(256)
	in, t := v[:8], v[8:16]
	Label("rowblock")
	MOVQ(src, sb[0])
	MOVQ(dst, db[0])
	threeRows(sb, lds, cc)
	threeRows(db, ldd, cc)
	Load(Param("cols"), cc)
	SHRQ(blockShift, cc)
	JZ(LabelRef("done"))
	Label("colblock")
	for r := range n {
		e.movu(rowMem(sb, lds, r), in[r])
	}
	var out []VecPhysical
	if n == 8 {
		for i := 0; i < 8; i += 2 {
			VUNPCKLPS(in[i+1], in[i], t[i])
			VUNPCKHPS(in[i+1], in[i], t[i+1])
		}
		// in[0..7] now free: the 4-row columns.
		for h := 0; h < 8; h += 4 {
			VSHUFPS(U8(0x44), t[h+2], t[h], in[h])
			VSHUFPS(U8(0xee), t[h+2], t[h], in[h+1])
			VSHUFPS(U8(0x44), t[h+3], t[h+1], in[h+2])
			VSHUFPS(U8(0xee), t[h+3], t[h+1], in[h+3])
		}
		out = make([]VecPhysical, 8)
		for j := range 4 {
			out[j], out[j+4] = t[j], t[j+4]
			VPERM2F128(U8(0x20), in[j+4], in[j], out[j])
			VPERM2F128(U8(0x31), in[j+4], in[j], out[j+4])
		}
	} else {
		VUNPCKLPD(in[1], in[0], t[0])
		VUNPCKHPD(in[1], in[0], t[1])
		VUNPCKLPD(in[3], in[2], t[2])
		VUNPCKHPD(in[3], in[2], t[3])
		out = []VecPhysical{in[4], in[5], in[6], in[7]}
		VPERM2F128(U8(0x20), t[2], t[0], out[0])
		VPERM2F128(U8(0x20), t[3], t[1], out[1])
		VPERM2F128(U8(0x31), t[2], t[0], out[2])
		VPERM2F128(U8(0x31), t[3], t[1], out[3])
	}
	for r, o := range out {
		e.movu(o, rowMem(db, ldd, r))
	}
	for _, b := range sb {
		ADDQ(U8(32), b)
	}
	for _, b := range db {
		LEAQ(Mem{Base: b, Index: ldd, Scale: uint8(n / 2)}, b) // n/2 rows …
		LEAQ(Mem{Base: b, Index: ldd, Scale: uint8(n / 2)}, b) // … twice: n rows on
	}
	DECQ(cc)
	JNZ(LabelRef("colblock"))
	LEAQ(Mem{Base: src, Index: lds, Scale: uint8(n / 2)}, src)
	LEAQ(Mem{Base: src, Index: lds, Scale: uint8(n / 2)}, src)
	ADDQ(U8(32), dst)
	DECQ(rows)
	JNZ(LabelRef("rowblock"))
	Label("done")
	VZEROUPPER()
	RET()
}

// threeRows sets bases[g] = bases[0] + 3g·rs (tmp = 3·rs).
func threeRows(bases []GPPhysical, rs, tmp GPPhysical) {
	LEAQ(Mem{Base: rs, Index: rs, Scale: 2}, tmp)
	for g := 1; g < len(bases); g++ {
		LEAQ(Mem{Base: bases[g-1], Index: tmp, Scale: 1}, bases[g])
	}
}

// rowMem is row i's address: bases[i/3] + (i%3)·rs.
func rowMem(bases []GPPhysical, rs GPPhysical, i int) Mem {
	mem := Mem{Base: bases[i/3]}
	if s := i % 3; s > 0 {
		mem.Index, mem.Scale = rs, uint8(s)
	}
	return mem
}

// cMem is mem displaced by disp bytes.
func cMem(mem Mem, disp int) Mem {
	mem.Disp += disp
	return mem
}

// zero clears r: VXORPS for 256 bits, VPXORD (AVX-512F) for 512.
func zero(bits int, r VecPhysical) {
	if bits == 256 {
		VXORPS(r, r, r)
	} else {
		VPXORD(r, r, r)
	}
}

// peak is one FMA throughput loop of internal/cpupeak.
type peak struct {
	name string
	e    elem
	bits int
}

var peaks = []peak{
	{"fmaLoop32x8", f32, 256},
	{"fmaLoop32x16", f32, 512},
	{"fmaLoop64x4", f64, 256},
	{"fmaLoop64x8", f64, 512},
}

// peakAccumulators is the number of independent FMA chains of a peak
// loop: more than the FMA latency (4 cycles) times the FMA pipes (2) of
// current x86 cores, so that the loop is bound by throughput.
const peakAccumulators = 12

// generate emits a loop of n iterations, each peakAccumulators FMAs into
// independent accumulators.
func (p peak) generate() {
	lanes := p.bits / p.e.bits
	TEXT(p.name, NOSPLIT, "func(n int)")
	Doc(
		fmt.Sprintf("%s runs n iterations of %d independent %d-bit FMAs on %s,", p.name, peakAccumulators, p.bits, p.e.goType()),
		fmt.Sprintf("%d flops each (%d lanes, a multiply and an add per lane).", 2*lanes*peakAccumulators, lanes),
	)
	v := vecRegs(p.bits)
	n := RCX
	Load(Param("n"), n)
	for _, r := range v[:peakAccumulators+2] {
		zero(p.bits, r)
	}
	x, y := v[peakAccumulators], v[peakAccumulators+1]
	TESTQ(n, n)
	JZ(LabelRef("done"))
	Label("loop")
	for _, r := range v[:peakAccumulators] {
		p.e.fma(x, y, r)
	}
	DECQ(n)
	JNZ(LabelRef("loop"))
	Label("done")
	VZEROUPPER()
	RET()
}

// gemm emits package blas's micro-kernels and the transposes that pack
// a transposed B.
func gemm() {
	for _, m := range micros {
		m.generate()
	}
	transpose("transpose32AVX", f32)
	transpose("transpose64AVX", f64)
}

// fmaLoops emits internal/cpupeak's FMA loops.
func fmaLoops() {
	for _, p := range peaks {
		p.generate()
	}
}
