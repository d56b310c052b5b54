package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// The target internal/qkernel: the integer fake-quantization kernels and
// AbsMax (vec_avx2_amd64.s, vec_avx2_stubs_amd64.go). They compute exactly
// what the scalar loops of internal/qkernel's int.go and ranges.go compute
// (vec_asm_amd64.go there has the Go side and the contract of each):
//
//   - the code is round_half_even(x·inv) with a VMULPS and a VROUNDPS
//     (roundEvenQuiet), never fused into an FMA;
//   - + 0 turns the −0 that VROUNDPS gives for x·inv in (−½, 0] into +0, as
//     the scalar (t + m) − m does;
//   - the clamp is VMAXPS lo then VMINPS hi, operands ordered so that a NaN
//     code gives lo (MAXPS returns its second source in Intel's order,
//     the first in Go's, when either is NaN);
//   - the gradient mask is lo ≤ code ≤ hi with ordered compares (false for
//     NaN), ANDed with dy's bits.
//
// Every function ends with VZEROUPPER.

// grid holds the broadcast constants of one grid.
type grid struct {
	inv, lo, hi, s, zero VecVirtual // s and zero only for the forward pass
}

// fwd fake-quantizes one vector: dst[at] = clamp(round(x[at]·inv)+0, lo, hi)·s.
func (e elem) fwd(g grid, x, dst Mem) {
	t := YMM()
	e.mul(x, g.inv, t)
	e.round(roundEvenQuiet, t, t)
	e.add(g.zero, t, t) // −0 → +0
	e.max(g.lo, t, t)   // max(t, lo): lo for NaN
	e.min(g.hi, t, t)   // min(t, hi)
	e.mul(g.s, t, t)
	e.movu(t, dst)
}

// grad masks one vector of dy: dst[at] = dy[at] if lo ≤ round(x[at]·inv) ≤ hi, else +0.
func (e elem) grad(g grid, x, dy, dst Mem) {
	t, m := YMM(), YMM()
	e.mul(x, g.inv, t)
	e.round(roundEvenQuiet, t, t)
	e.cmp(cmpGE, g.lo, t, m) // t ≥ lo (false for NaN)
	e.cmp(cmpLE, g.hi, t, t) // t ≤ hi
	e.and(m, t, t)
	e.and(dy, t, t)
	e.movu(t, dst)
}

const unroll = 4

func perTensor(f elem) {
	ty := f.goType()
	name := fmt.Sprintf("fakeQuantInt%dAVX2", f.bits)
	TEXT(name, NOSPLIT, fmt.Sprintf("func(dst, x []%s, inv, lo, hi, scale %s)", ty, ty))
	Doc(name+" sets dst[i] to the fake-quantized x[i] on the grid (inv, lo, hi, scale)",
		"for len(x) elements, a multiple of the lane count; len(dst) ≥ len(x).")
	xp, dp, n, i := Load(Param("x").Base(), GP64()), Load(Param("dst").Base(), GP64()), Load(Param("x").Len(), GP64()), GP64()
	g := grid{inv: f.bcastParam("inv"), lo: f.bcastParam("lo"), hi: f.bcastParam("hi"), s: f.bcastParam("scale"), zero: YMM()}
	VXORPS(g.zero, g.zero, g.zero)
	f.loop("fq", i, n, unroll, func(k int) { f.fwd(g, f.at(xp, i, k), f.at(dp, i, k)) })
	VZEROUPPER()
	RET()

	name = fmt.Sprintf("fakeQuantIntGrad%dAVX2", f.bits)
	TEXT(name, NOSPLIT, fmt.Sprintf("func(dst, x, dy []%s, inv, lo, hi %s)", ty, ty))
	Doc(name+" sets dst[i] to dy[i] where lo ≤ round(x[i]·inv) ≤ hi and to +0 elsewhere,",
		"for len(x) elements, a multiple of the lane count; dst and dy are at least as long.")
	xp, dp, n, i = Load(Param("x").Base(), GP64()), Load(Param("dst").Base(), GP64()), Load(Param("x").Len(), GP64()), GP64()
	dyp := Load(Param("dy").Base(), GP64())
	g = grid{inv: f.bcastParam("inv"), lo: f.bcastParam("lo"), hi: f.bcastParam("hi")}
	f.loop("grad", i, n, unroll, func(k int) { f.grad(g, f.at(xp, i, k), f.at(dyp, i, k), f.at(dp, i, k)) })
	VZEROUPPER()
	RET()
}

// constant32 broadcasts the float32 of bits v to a new vector register.
func constant32(v uint32) VecVirtual {
	r, x, y := GP32(), XMM(), YMM()
	MOVL(U32(v), r)
	VMOVD(r, x)
	VBROADCASTSS(x, y)
	return y
}

// absStep folds the finite |x| of one vector into the maximum m.
func absStep(x Mem, m, absMask, inf VecVirtual) {
	a, k := YMM(), YMM()
	VANDPS(x, absMask, a)        // |x|
	VCMPPS(U8(cmpLT), inf, a, k) // |x| < +Inf: false for ±Inf and NaN
	VANDPS(k, a, a)              // those lanes count as +0
	VMAXPS(a, m, m)
}

// hmax reduces the 8 lanes of m to its lowest lane (in an XMM register,
// returned). The lanes hold no NaN and no −0, so the order does not matter.
func hmax(m VecVirtual) Register {
	hi := XMM()
	VEXTRACTF128(U8(1), m, hi)
	lo := m.AsX()
	VMAXPS(hi, lo, lo)
	VPERMILPS(U8(0x4e), lo, hi) // swap the 64-bit halves
	VMAXPS(hi, lo, lo)
	VPERMILPS(U8(0xb1), lo, hi) // swap neighbours
	VMAXPS(hi, lo, lo)
	return lo
}

func absMax() {
	TEXT("absMax32AVX2", NOSPLIT, "func(x []float32) float32")
	Doc("absMax32AVX2 returns the largest finite |x[i]| (+0 if none) for len(x) a multiple of 8.")
	xp, n, i := Load(Param("x").Base(), GP64()), Load(Param("x").Len(), GP64()), GP64()
	absMask, inf := constant32(0x7fffffff), constant32(0x7f800000)
	var m [unroll]VecVirtual
	for k := range m {
		m[k] = YMM()
		VXORPS(m[k], m[k], m[k])
	}
	f32.loop("abs", i, n, unroll, func(k int) { absStep(f32.at(xp, i, k), m[k], absMask, inf) })
	for k := 1; k < unroll; k++ {
		VMAXPS(m[k], m[0], m[0])
	}
	r := hmax(m[0])
	VZEROUPPER() // keeps the low 128 bits
	ret, err := ReturnIndex(0).Resolve()
	if err != nil {
		panic(err)
	}
	VMOVSS(r, ret.Addr)
	RET()
}

func groups() {
	TEXT("fakeQuantIntGroups32AVX2", NOSPLIT, "func(dst, x, params []float32, size int)")
	Doc("fakeQuantIntGroups32AVX2 is fakeQuantInt32AVX2 with one grid per group of size",
		"elements (size > 0 a multiple of 8, len(x) a multiple of size): group k uses",
		"params[4k:4k+4], the fields scale, inv, lo, hi of an Int[float32].")
	groupsBody(false)

	TEXT("fakeQuantIntGroupsGrad32AVX2", NOSPLIT, "func(dst, x, dy, params []float32, size int)")
	Doc("fakeQuantIntGroupsGrad32AVX2 is fakeQuantIntGrad32AVX2 with the grids of",
		"fakeQuantIntGroups32AVX2.")
	groupsBody(true)
}

// groupSlices holds the slice arguments of a group kernel: the bases of x
// and dst, len(x), and the base of dy for a gradient kernel (else nil).
type groupSlices struct {
	x, dst, n, dy Register
}

func loadGroupSlices(withDy bool) groupSlices {
	s := groupSlices{x: Load(Param("x").Base(), GP64()), dst: Load(Param("dst").Base(), GP64()), n: Load(Param("x").Len(), GP64())}
	if withDy {
		s.dy = Load(Param("dy").Base(), GP64())
	}
	return s
}

// apply emits the forward pass on grid g of the vector of elements at
// index register at, or its gradient for a gradient kernel.
func (s groupSlices) apply(g grid, at Register) {
	if s.dy != nil {
		f32.grad(g, f32.at(s.x, at, 0), f32.at(s.dy, at, 0), f32.at(s.dst, at, 0))
	} else {
		f32.fwd(g, f32.at(s.x, at, 0), f32.at(s.dst, at, 0))
	}
}

// elems emits the loop at label over a group's vectors, from index
// register i up to end, on grid g.
func (s groupSlices) elems(label string, g grid, i, end Register) {
	Label(label)
	s.apply(g, i)
	ADDQ(I8(int8(f32.lanes())), i)
	CMPQ(i, end)
	JB(LabelRef(label))
}

func groupsBody(withDy bool) {
	sl := loadGroupSlices(withDy)
	pp, gl, i, end := Load(Param("params").Base(), GP64()), Load(Param("size"), GP64()), GP64(), GP64()
	g := grid{inv: YMM(), lo: YMM(), hi: YMM()}
	if !withDy {
		g.s, g.zero = YMM(), YMM()
		VXORPS(g.zero, g.zero, g.zero)
	}
	XORQ(i, i)
	Label("group")
	CMPQ(i, sl.n)
	JAE(LabelRef("done"))
	if !withDy {
		VBROADCASTSS(Mem{Base: pp}, g.s)
	}
	VBROADCASTSS(Mem{Base: pp, Disp: 4}, g.inv)
	VBROADCASTSS(Mem{Base: pp, Disp: 8}, g.lo)
	VBROADCASTSS(Mem{Base: pp, Disp: 12}, g.hi)
	ADDQ(I8(16), pp)
	LEAQ(Mem{Base: i, Index: gl, Scale: 1}, end)
	sl.elems("elems", g, i, end)
	JMP(LabelRef("group"))
	Label("done")
	VZEROUPPER()
	RET()
}

func groupsSym() {
	TEXT("fakeQuantIntGroupsSym32AVX2", NOSPLIT, "func(dst, x []float32, size int, lo, hi, minScale float32)")
	Doc("fakeQuantIntGroupsSym32AVX2 fake-quantizes each group of size elements (size > 0 a",
		"multiple of 8, len(x) a multiple of size) on the grid of SymmetricInt(amax, qmin,",
		"qmax, minScale), lo = qmin and hi = qmax: amax is the group's largest finite",
		"|x|, s = max(amax/hi, minScale) and inv = 1/s, each rounded to float32.")
	groupsSymBody(false)

	TEXT("fakeQuantIntGroupsSymGrad32AVX2", NOSPLIT, "func(dst, x, dy []float32, size int, lo, hi, minScale float32)")
	Doc("fakeQuantIntGroupsSymGrad32AVX2 is fakeQuantIntGroupsGrad32AVX2 on the grids of",
		"fakeQuantIntGroupsSym32AVX2.")
	groupsSymBody(true)
}

// groupsSymBody emits the symmetric group kernel. Groups go by batches of
// eight: the |x| maxima of eight groups are reduced to the eight lanes of
// one vector, whose scales and reciprocals two VDIVPS compute at once (the
// same IEEE divisions as SymmetricInt's, lane by lane), so that the
// divisions' latency is paid once per eight groups; then each group is
// fake-quantized with its lane's grid, read back from a 64-byte local. The
// last groups (fewer than eight) go one by one, with scalar divisions.
func groupsSymBody(withDy bool) {
	sl := loadGroupSlices(withDy)
	xp, n := sl.x, sl.n
	gl, i, j, end := Load(Param("size"), GP64()), GP64(), GP64(), GP64()
	g := grid{inv: YMM(), lo: f32.bcastParam("lo"), hi: f32.bcastParam("hi"), s: YMM()}
	if !withDy {
		g.zero = YMM()
		VXORPS(g.zero, g.zero, g.zero)
	}
	absMask, inf := constant32(0x7fffffff), constant32(0x7f800000)
	grids := AllocLocal(64) // the batch's scales, then their reciprocals
	XORQ(i, i)

	Label("batch")
	Comment("eight groups left?")
	batch := GP64()
	MOVQ(gl, batch)
	SHLQ(U8(3), batch)
	ADDQ(i, batch)
	CMPQ(batch, n)
	JA(LabelRef("single"))

	Comment("the largest finite |x| of each group, in the lanes of m[k]")
	var m [8]VecVirtual
	MOVQ(i, j)
	for k := range m {
		m[k] = YMM()
		VXORPS(m[k], m[k], m[k])
		LEAQ(Mem{Base: j, Index: gl, Scale: 1}, end)
		Label(fmt.Sprintf("abs%d", k))
		absStep(f32.at(xp, j, 0), m[k], absMask, inf)
		ADDQ(I8(8), j)
		CMPQ(j, end)
		JB(LabelRef(fmt.Sprintf("abs%d", k)))
	}
	amax := transposeMax(m)

	Comment("s = max(amax/qmax, minScale), inv = 1/s for the eight groups, as SymmetricInt")
	t, sv, iv := YMM(), YMM(), YMM()
	VBROADCASTSS(param("hi"), t)
	VDIVPS(t, amax, sv)
	VBROADCASTSS(param("minScale"), t)
	VMAXPS(t, sv, sv) // s ≥ minScale ? s : minScale (s is never NaN)
	one := constant32(0x3f800000)
	VDIVPS(sv, one, iv)
	VMOVUPS(sv, grids)
	VMOVUPS(iv, grids.Offset(32))

	for k := range 8 {
		VBROADCASTSS(grids.Offset(4*k), g.s)
		VBROADCASTSS(grids.Offset(32+4*k), g.inv)
		LEAQ(Mem{Base: i, Index: gl, Scale: 1}, end)
		sl.elems(fmt.Sprintf("elems%d", k), g, i, end)
	}
	JMP(LabelRef("batch"))

	Label("single")
	Comment("the last groups, one by one")
	one1, qmax, minScale := XMM(), XMM(), XMM()
	VMOVSS(param("hi"), qmax)
	VMOVSS(param("minScale"), minScale)
	MOVL(U32(0x3f800000), end.As32())
	VMOVD(end.As32(), one1)
	Label("group")
	CMPQ(i, n)
	JAE(LabelRef("done"))
	LEAQ(Mem{Base: i, Index: gl, Scale: 1}, end)
	mv := YMM()
	VXORPS(mv, mv, mv)
	MOVQ(i, j)
	Label("abs")
	absStep(f32.at(xp, j, 0), mv, absMask, inf)
	ADDQ(I8(8), j)
	CMPQ(j, end)
	JB(LabelRef("abs"))
	amax1 := hmax(mv)
	s := g.s.AsX()
	VDIVSS(qmax, amax1, s)
	VMAXSS(minScale, s, s)
	inv := g.inv.AsX()
	VDIVSS(s, one1, inv)
	VBROADCASTSS(s, g.s)
	VBROADCASTSS(inv, g.inv)
	sl.elems("elems", g, i, end)
	JMP(LabelRef("group"))
	Label("done")
	VZEROUPPER()
	RET()
}

// transposeMax returns a vector whose lane k is the largest lane of m[k]
// (no NaN and no −0 among them, so the order of the maxima does not
// matter): pairs of vectors interleaved and reduced within 128-bit halves,
// then pairs of those, then the two halves.
func transposeMax(m [8]VecVirtual) VecVirtual {
	var t [4]VecVirtual
	for p := range t {
		a, b := YMM(), YMM()
		VUNPCKLPS(m[2*p+1], m[2*p], a) // m0[0] m1[0] m0[1] m1[1] in each half
		VUNPCKHPS(m[2*p+1], m[2*p], b) // m0[2] m1[2] m0[3] m1[3]
		VMAXPS(b, a, a)
		t[p] = a
	}
	var u [2]VecVirtual
	for p := range u {
		a, b := YMM(), YMM()
		VSHUFPS(U8(0x44), t[2*p+1], t[2*p], a) // the low pairs of both
		VSHUFPS(U8(0xee), t[2*p+1], t[2*p], b) // the high pairs
		VMAXPS(b, a, a)
		u[p] = a // m0..m3 (or m4..m7), reduced within each half
	}
	a, b := YMM(), YMM()
	VPERM2F128(U8(0x20), u[1], u[0], a) // the low halves of u0 and u1
	VPERM2F128(U8(0x31), u[1], u[0], b) // the high halves
	VMAXPS(b, a, a)
	return a
}

// fakeQuant emits the kernels of internal/qkernel.
func fakeQuant() {
	perTensor(f32)
	absMax()
	groups()
	groupsSym()
	perTensor(f64)
	accumulateFP16()
}
