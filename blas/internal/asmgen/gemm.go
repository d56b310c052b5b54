package main

import (
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/mmcloughlin/avo/attr"
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/pass"
	"github.com/mmcloughlin/avo/printer"
	"github.com/mmcloughlin/avo/reg"
)

// This file writes the assembly of package blas (the GEMM micro-kernels of
// the default build) and of internal/cpupeak (the FMA loops that measure
// the core's peak). It is self-contained: each output is built in its own
// avo build.Context and printed by writeFile, with no global avo state and
// no command-line flags, so that it can live beside other generators in
// one program.

// elem is the floating-point type of a kernel, with its AVX instructions.
type elem struct {
	goType string
	size   int // bytes
	shift  uint8
	bcast  func(c *build.Context, ops ...operand.Op)
	fma    func(c *build.Context, ops ...operand.Op) // fma(x, y, acc): acc = y·x + acc
	mul    func(c *build.Context, ops ...operand.Op)
	mov    func(c *build.Context, ops ...operand.Op)
	ucomi  func(c *build.Context, x, y operand.Op)
}

var (
	f32 = elem{
		goType: "float32", size: 4, shift: 2,
		bcast: (*build.Context).VBROADCASTSS, fma: (*build.Context).VFMADD231PS,
		mul: (*build.Context).VMULPS, mov: (*build.Context).VMOVUPS,
		ucomi: (*build.Context).UCOMISS,
	}
	f64 = elem{
		goType: "float64", size: 8, shift: 3,
		bcast: (*build.Context).VBROADCASTSD, fma: (*build.Context).VFMADD231PD,
		mul: (*build.Context).VMULPD, mov: (*build.Context).VMOVUPD,
		ucomi: (*build.Context).UCOMISD,
	}
)

// vecRegs returns the vector registers of a width: Y0–Y15 (AVX2 has no
// more) or Z0–Z31.
func vecRegs(bits int) []reg.VecPhysical {
	if bits == 256 {
		return []reg.VecPhysical{reg.Y0, reg.Y1, reg.Y2, reg.Y3, reg.Y4, reg.Y5, reg.Y6, reg.Y7,
			reg.Y8, reg.Y9, reg.Y10, reg.Y11, reg.Y12, reg.Y13, reg.Y14, reg.Y15}
	}
	return []reg.VecPhysical{reg.Z0, reg.Z1, reg.Z2, reg.Z3, reg.Z4, reg.Z5, reg.Z6, reg.Z7,
		reg.Z8, reg.Z9, reg.Z10, reg.Z11, reg.Z12, reg.Z13, reg.Z14, reg.Z15,
		reg.Z16, reg.Z17, reg.Z18, reg.Z19, reg.Z20, reg.Z21, reg.Z22, reg.Z23,
		reg.Z24, reg.Z25, reg.Z26, reg.Z27, reg.Z28, reg.Z29, reg.Z30, reg.Z31}
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

// unroll is how many steps of k the main loop of a kernel takes per
// iteration.
const unroll = 4

// generate writes the kernel. Its contract, stated in the doc comment it
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
func (m micro) generate(c *build.Context) {
	t := m.e.goType
	lanes := m.bits / 8 / m.e.size
	nv := m.nr / lanes
	c.Function(m.name)
	c.Attributes(attr.NOSPLIT)
	c.SignatureExpr(fmt.Sprintf("func(k int, a *%[1]s, rsA, csA int, b *%[1]s, rsB int, c *%[1]s, ldc int, alpha, beta %[1]s)", t))
	c.Pragma("noescape")
	c.Doc(
		fmt.Sprintf("%s sets the %d×%d block C = alpha·A·B + beta·C (%s), where", m.name, m.mr, m.nr, m.isa),
		fmt.Sprintf("A[i,p] = a[i·rsA + p·csA] (i < %d, p < k), B[p,j] = b[p·rsB + j] (j < %d)", m.mr, m.nr),
		"and C[i,j] = c[i·ldc + j]. With beta = 0, C is not read. Strides are in",
		"elements; k ≥ 0.",
	)

	k, tmp := reg.RCX, reg.RBX
	bases := []reg.GPPhysical{reg.RSI, reg.RDI, reg.R8, reg.R9}[:m.mr/3]
	rs, cs, b, rsB := reg.R10, reg.R11, reg.RDX, reg.R12

	c.Load(c.Param("k"), k)
	c.Load(c.Param("a"), bases[0])
	c.Load(c.Param("rsA"), rs)
	c.Load(c.Param("csA"), cs)
	c.Load(c.Param("b"), b)
	c.Load(c.Param("rsB"), rsB)
	c.SHLQ(operand.U8(m.e.shift), rs)
	c.SHLQ(operand.U8(m.e.shift), cs)
	c.SHLQ(operand.U8(m.e.shift), rsB)
	threeRows(c, bases, rs, tmp)

	v := vecRegs(m.bits)
	bv := v[0:nv]                 // B's row
	bc := v[nv : nv+2]            // broadcasts, alternating
	acc := v[nv+2 : nv+2+m.mr*nv] // acc[i*nv+j]: row i, vector j
	if len(acc) != m.mr*nv {
		panic(m.name + ": not enough vector registers")
	}
	for _, r := range acc {
		zero(c, m.bits, r)
	}

	row := func(i int) operand.Mem { return rowMem(bases, rs, i) }
	step := func() {
		for j, r := range bv {
			m.e.mov(c, operand.Mem{Base: b, Disp: j * m.bits / 8}, r)
		}
		for i := 0; i < m.mr; i++ {
			x := bc[i%2]
			m.e.bcast(c, row(i), x)
			for j, r := range bv {
				m.e.fma(c, r, x, acc[i*nv+j])
			}
		}
		for _, r := range bases {
			c.ADDQ(cs, r)
		}
		c.ADDQ(rsB, b)
	}

	// Prefetch C's block, which the kernel reads (beta ≠ 0) or writes at
	// the end: its first and last byte of each row.
	cp, ldc := reg.RAX, reg.R13
	c.Load(c.Param("c"), cp)
	c.Load(c.Param("ldc"), ldc)
	c.SHLQ(operand.U8(m.e.shift), ldc)
	for i := 0; i < m.mr; i++ {
		c.PREFETCHT0(operand.Mem{Base: cp})
		c.PREFETCHT0(operand.Mem{Base: cp, Disp: m.nr*m.e.size - 1})
		if i < m.mr-1 {
			c.ADDQ(ldc, cp)
		}
	}

	c.Comment(fmt.Sprintf("%d steps of k per iteration, then one at a time.", unroll))
	c.MOVQ(k, tmp)
	c.SHRQ(operand.U8(2), tmp)
	c.JZ(operand.LabelRef("tail"))
	c.Label("loop")
	for range unroll {
		step()
	}
	c.DECQ(tmp)
	c.JNZ(operand.LabelRef("loop"))
	c.Label("tail")
	c.ANDQ(operand.U8(unroll-1), k)
	c.JZ(operand.LabelRef("store"))
	c.Label("loop1")
	step()
	c.DECQ(k)
	c.JNZ(operand.LabelRef("loop1"))

	// C's rows are addressed like A's, three to a base register.
	c.Label("store")
	c.Load(c.Param("c"), bases[0])
	c.Load(c.Param("ldc"), rs)
	c.SHLQ(operand.U8(m.e.shift), rs)
	threeRows(c, bases, rs, tmp)
	alpha, beta := bc[0], bc[1]
	c.Comment("beta = ±0 (its bits but the sign are 0): C is not read, so that a NaN in it",
		"does not propagate.")
	if m.e.size == 4 {
		c.MOVL(paramMem(c, "beta"), tmp.As32())
		c.SHLL(operand.U8(1), tmp.As32())
	} else {
		c.MOVQ(paramMem(c, "beta"), tmp)
		c.SHLQ(operand.U8(1), tmp)
	}
	c.JNZ(operand.LabelRef("general"))
	m.e.bcast(c, paramMem(c, "alpha"), alpha)
	for i := 0; i < m.mr; i++ {
		for j := 0; j < nv; j++ {
			r := acc[i*nv+j]
			m.e.mul(c, alpha, r, r)
			m.e.mov(c, r, cMem(row(i), j*m.bits/8))
		}
	}
	c.VZEROUPPER()
	c.RET()

	c.Label("general")
	m.e.bcast(c, paramMem(c, "alpha"), alpha)
	m.e.bcast(c, paramMem(c, "beta"), beta)
	for i := 0; i < m.mr; i++ {
		for j := 0; j < nv; j++ {
			r := acc[i*nv+j]
			mem := cMem(row(i), j*m.bits/8)
			m.e.mul(c, alpha, r, r)
			m.e.fma(c, mem, beta, r) // r = beta·C + r
			m.e.mov(c, r, mem)
		}
	}
	c.VZEROUPPER()
	c.RET()
}

// transpose writes a function that transposes a rows×cols block with AVX:
// dst[c·ldd + r] = src[r·lds + c] for r < rows, c < cols (multiples of 8
// for float32, of 4 for float64; strides in elements). It packs the
// slivers of a transposed B: 8×8 blocks of float32 go through the usual
// unpack, shuffle and 128-bit permute network (24 shuffles for 64
// values), 4×4 blocks of float64 through unpacks and permutes.
func transpose(c *build.Context, name string, e elem) {
	n := 32 / e.size // block side: 8 or 4
	c.Function(name)
	c.Attributes(attr.NOSPLIT)
	c.SignatureExpr(fmt.Sprintf("func(dst *%[1]s, ldd int, src *%[1]s, lds int, rows, cols int)", e.goType))
	c.Pragma("noescape")
	c.Doc(
		fmt.Sprintf("%s sets dst[c·ldd + r] = src[r·lds + c] for r < rows and c < cols,", name),
		fmt.Sprintf("multiples of %d (AVX); strides are in elements.", n),
	)
	// cc counts the column blocks, and first serves threeRows as a
	// temporary.
	src, lds, dst, ldd := reg.RSI, reg.R8, reg.RDI, reg.R9
	rows, cc := reg.RCX, reg.RDX
	sb := []reg.GPPhysical{reg.R10, reg.R11, reg.R12}[:(n+2)/3] // source rows, three to a base
	db := []reg.GPPhysical{reg.R13, reg.RAX, reg.RBX}[:(n+2)/3] // destination rows
	blockShift := operand.U8(uint8(bitsLen(n) - 1))
	c.Load(c.Param("dst"), dst)
	c.Load(c.Param("ldd"), ldd)
	c.Load(c.Param("src"), src)
	c.Load(c.Param("lds"), lds)
	c.Load(c.Param("rows"), rows)
	c.SHLQ(operand.U8(e.shift), ldd)
	c.SHLQ(operand.U8(e.shift), lds)
	c.SHRQ(blockShift, rows)
	c.JZ(operand.LabelRef("done"))
	v := vecRegs(256)
	in, t := v[:8], v[8:16]
	c.Label("rowblock")
	c.MOVQ(src, sb[0])
	c.MOVQ(dst, db[0])
	threeRows(c, sb, lds, cc)
	threeRows(c, db, ldd, cc)
	c.Load(c.Param("cols"), cc)
	c.SHRQ(blockShift, cc)
	c.JZ(operand.LabelRef("done"))
	c.Label("colblock")
	for r := range n {
		e.mov(c, rowMem(sb, lds, r), in[r])
	}
	var out []reg.VecPhysical
	if n == 8 {
		for i := 0; i < 8; i += 2 {
			c.VUNPCKLPS(in[i+1], in[i], t[i])
			c.VUNPCKHPS(in[i+1], in[i], t[i+1])
		}
		// in[0..7] now free: the 4-row columns.
		for h := 0; h < 8; h += 4 {
			c.VSHUFPS(operand.U8(0x44), t[h+2], t[h], in[h])
			c.VSHUFPS(operand.U8(0xee), t[h+2], t[h], in[h+1])
			c.VSHUFPS(operand.U8(0x44), t[h+3], t[h+1], in[h+2])
			c.VSHUFPS(operand.U8(0xee), t[h+3], t[h+1], in[h+3])
		}
		out = make([]reg.VecPhysical, 8)
		for j := range 4 {
			out[j], out[j+4] = t[j], t[j+4]
			c.VPERM2F128(operand.U8(0x20), in[j+4], in[j], out[j])
			c.VPERM2F128(operand.U8(0x31), in[j+4], in[j], out[j+4])
		}
	} else {
		c.VUNPCKLPD(in[1], in[0], t[0])
		c.VUNPCKHPD(in[1], in[0], t[1])
		c.VUNPCKLPD(in[3], in[2], t[2])
		c.VUNPCKHPD(in[3], in[2], t[3])
		out = []reg.VecPhysical{in[4], in[5], in[6], in[7]}
		c.VPERM2F128(operand.U8(0x20), t[2], t[0], out[0])
		c.VPERM2F128(operand.U8(0x20), t[3], t[1], out[1])
		c.VPERM2F128(operand.U8(0x31), t[2], t[0], out[2])
		c.VPERM2F128(operand.U8(0x31), t[3], t[1], out[3])
	}
	for r, o := range out {
		e.mov(c, o, rowMem(db, ldd, r))
	}
	for _, b := range sb {
		c.ADDQ(operand.U8(32), b)
	}
	for _, b := range db {
		c.LEAQ(operand.Mem{Base: b, Index: ldd, Scale: uint8(n / 2)}, b) // n/2 rows …
		c.LEAQ(operand.Mem{Base: b, Index: ldd, Scale: uint8(n / 2)}, b) // … twice: n rows on
	}
	c.DECQ(cc)
	c.JNZ(operand.LabelRef("colblock"))
	c.LEAQ(operand.Mem{Base: src, Index: lds, Scale: uint8(n / 2)}, src)
	c.LEAQ(operand.Mem{Base: src, Index: lds, Scale: uint8(n / 2)}, src)
	c.ADDQ(operand.U8(32), dst)
	c.DECQ(rows)
	c.JNZ(operand.LabelRef("rowblock"))
	c.Label("done")
	c.VZEROUPPER()
	c.RET()
}

// bitsLen is the number of bits of n: log₂(n)+1 for a power of two.
func bitsLen(n int) int {
	b := 0
	for ; n > 0; n >>= 1 {
		b++
	}
	return b
}

// paramMem is the stack slot of the scalar parameter name.
func paramMem(c *build.Context, name string) operand.Mem {
	b, err := c.Param(name).Resolve()
	if err != nil {
		panic(err)
	}
	return b.Addr
}

// threeRows sets bases[g] = bases[0] + 3g·rs (tmp = 3·rs).
func threeRows(c *build.Context, bases []reg.GPPhysical, rs, tmp reg.GPPhysical) {
	c.LEAQ(operand.Mem{Base: rs, Index: rs, Scale: 2}, tmp)
	for g := 1; g < len(bases); g++ {
		c.LEAQ(operand.Mem{Base: bases[g-1], Index: tmp, Scale: 1}, bases[g])
	}
}

// rowMem is row i's address: bases[i/3] + (i%3)·rs.
func rowMem(bases []reg.GPPhysical, rs reg.GPPhysical, i int) operand.Mem {
	mem := operand.Mem{Base: bases[i/3]}
	if s := i % 3; s > 0 {
		mem.Index, mem.Scale = rs, uint8(s)
	}
	return mem
}

// cMem is mem displaced by disp bytes.
func cMem(mem operand.Mem, disp int) operand.Mem {
	mem.Disp += disp
	return mem
}

// zero clears r: VXORPS for 256 bits, VPXORD (AVX-512F) for 512.
func zero(c *build.Context, bits int, r reg.VecPhysical) {
	if bits == 256 {
		c.VXORPS(r, r, r)
	} else {
		c.VPXORD(r, r, r)
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

// generate writes a loop of n iterations, each peakAccumulators FMAs into
// independent accumulators.
func (p peak) generate(c *build.Context) {
	lanes := p.bits / 8 / p.e.size
	c.Function(p.name)
	c.Attributes(attr.NOSPLIT)
	c.SignatureExpr("func(n int)")
	c.Doc(
		fmt.Sprintf("%s runs n iterations of %d independent %d-bit FMAs on %s,", p.name, peakAccumulators, p.bits, p.e.goType),
		fmt.Sprintf("%d flops each (%d lanes, a multiply and an add per lane).", 2*lanes*peakAccumulators, lanes),
	)
	v := vecRegs(p.bits)
	n := reg.RCX
	c.Load(c.Param("n"), n)
	for _, r := range v[:peakAccumulators+2] {
		zero(c, p.bits, r)
	}
	x, y := v[peakAccumulators], v[peakAccumulators+1]
	c.TESTQ(n, n)
	c.JZ(operand.LabelRef("done"))
	c.Label("loop")
	for _, r := range v[:peakAccumulators] {
		p.e.fma(c, x, y, r)
	}
	c.DECQ(n)
	c.JNZ(operand.LabelRef("loop"))
	c.Label("done")
	c.VZEROUPPER()
	c.RET()
}

// GenerateGEMM writes package blas's micro-kernels to asmPath and their Go
// declarations to stubsPath.
func GenerateGEMM(asmPath, stubsPath string) error {
	c := build.NewContext()
	c.ConstraintExpr("amd64,!goexperiment.simd,!purego")
	for _, m := range micros {
		m.generate(c)
	}
	transpose(c, "transpose32AVX", f32)
	transpose(c, "transpose64AVX", f64)
	if err := writeFile(c, "blas", asmPath, stubsPath); err != nil {
		return err
	}
	return checkAVX2Registers(asmPath)
}

// GeneratePeak writes internal/cpupeak's FMA loops to asmPath and their Go
// declarations to stubsPath.
func GeneratePeak(asmPath, stubsPath string) error {
	c := build.NewContext()
	c.ConstraintExpr("amd64,!purego")
	for _, p := range peaks {
		p.generate(c)
	}
	return writeFile(c, "cpupeak", asmPath, stubsPath)
}

// writeFile compiles the functions built in c and prints them as package
// pkg's assembly and Go declarations. The header names this generator
// and no paths, so that the output does not depend on where it is run.
func writeFile(c *build.Context, pkg, asmPath, stubsPath string) error {
	f, err := c.Result()
	if err != nil {
		return err
	}
	if err := pass.Compile.Execute(f); err != nil {
		return err
	}
	cfg := printer.Config{Name: "blas/internal/asmgen", Pkg: pkg}
	for _, out := range []struct {
		path string
		p    printer.Printer
	}{{asmPath, printer.NewGoAsm(cfg)}, {stubsPath, printer.NewStubs(cfg)}} {
		b, err := out.p.Print(f)
		if err != nil {
			return err
		}
		if err := os.WriteFile(out.path, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// checkAVX2Registers fails if an AVX2 kernel of the file at path uses
// X16–X31 or Y16–Y31, which need AVX-512.
func checkAVX2Registers(path string) error {
	src, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	bad := regexp.MustCompile(`\b[XY](1[6-9]|2[0-9]|3[01])\b`)
	for _, fn := range strings.Split(string(src), "\nTEXT ")[1:] {
		name, _, _ := strings.Cut(fn, "(")
		if !strings.HasSuffix(name, "AVX2") {
			continue
		}
		if r := bad.FindString(fn); r != "" {
			return fmt.Errorf("%s: %s uses %s, an AVX-512 register", path, name, r)
		}
	}
	return nil
}
