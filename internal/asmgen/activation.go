package main

import (
	"fmt"
	"math/bits"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// The target ops/kernel: the float32 activation kernels (activation_amd64.s,
// activation_stub_amd64.go, activation_consts_amd64.go).
//
// Each kernel is the archsimd AVX2 code of ops/kernel/simd_avx2_amd64.go
// (generated from simd_amd64.go) written out instruction by instruction:
// the same operations on the same float32 values in the same order, so
// the results are the same bits (TestVectorDigests checks it against the
// GOEXPERIMENT=simd build). The helpers below carry the names of that
// code's functions (expParts, halfErfcx, scale8 …) and follow their
// bodies line by line; archsimd's x.Op(y) is Intel's "op dst, x, y", which
// Go assembly writes "OP y, x, dst". When the operands of a commutative
// operation can both be NaN, the order is the one the Go compiler chose
// for the archsimd code, so NaN payloads agree too.
//
// Constants come from activationConsts, as the archsimd code reads its
// vconsts8.

// activationConsts is the constant table of the activation kernels, in row
// order. The float32 values are the archsimd code's bcast8 arguments
// (newVconsts8 and scale8).
var activationConsts = constTable{
	goVar: "asmConsts",
	doc: []string{
		"asmConsts is the constant table of the AVX2 assembly kernels, one",
		"constant in each row's 8 lanes, in the order the assembly reads them.",
		"It is built once, from the constants of fast32.go, and only read.",
	},
	elem: f32,
	rows: []constant{
		{"absMask", "0x7fffffff", "clears the sign bit (absSign8)"},
		{"log2e", f32bits("log2e"), ""},
		{"mln2Hi", f32bits("-ln2Hi32"), ""},
		{"mln2Lo", f32bits("-ln2Lo32"), ""},
		{"c6", f32bits("expC6"), ""},
		{"c5", f32bits("expC5"), ""},
		{"c4", f32bits("expC4"), ""},
		{"c3", f32bits("expC3"), ""},
		{"c2", f32bits("expC2"), ""},
		{"one", f32bits("1"), ""},
		{"pz", f32bits("erfcxPOverSqrt2"), ""},
		{"s9", f32bits("erfcxS9"), ""},
		{"s8", f32bits("erfcxS8"), ""},
		{"s7", f32bits("erfcxS7"), ""},
		{"s6", f32bits("erfcxS6"), ""},
		{"s5", f32bits("erfcxS5"), ""},
		{"s4", f32bits("erfcxS4"), ""},
		{"s3", f32bits("erfcxS3"), ""},
		{"s2", f32bits("erfcxS2"), ""},
		{"s1", f32bits("erfcxS1"), ""},
		{"s0", f32bits("erfcxS0"), ""},
		{"half", f32bits("0.5"), ""},
		{"mhalf", f32bits("-0.5"), ""},
		{"geluClamp", f32bits("geluClamp"), ""},
		{"invSqrt2Pi", f32bits("invSqrt2Pi"), ""},
		{"siluClamp", f32bits("siluClamp"), ""},
		{"tanhK0h", f32bits("geluTanhK0h"), ""},
		{"tanhK1h", f32bits("geluTanhK1h"), ""},
		{"tanhK1l", f32bits("geluTanhK1l"), ""},
		{"tanhK0l", f32bits("geluTanhK0l"), ""},
		{"tanhK1x3", f32bits("3 * geluTanhK1"), ""},
		{"tanhK0", f32bits("geluTanhK0"), ""},
		{"tanhClamp", f32bits("geluTanhClamp"), ""},
		{"scaleMin", f32bits("-252"), "scale8's lower bound on n"},
		{"bias", "127", "the float32 exponent bias, an int32 (scale8)"},
	},
}

// k returns the memory operand of constant name.
func k(name string) Mem { return activationConsts.mem(name) }

// kreg loads constant name into a register, for the operand positions
// that take no memory.
func kreg(name string) VecVirtual {
	r := YMM()
	VMOVUPS(k(name), r)
	return r
}

// Operations on vectors, after archsimd's methods: x.Op(y) is op(x, y).
// Each returns a new virtual register; y may be a memory operand.

func mul(x Register, y Op) VecVirtual  { d := YMM(); VMULPS(y, x, d); return d }
func add(x Register, y Op) VecVirtual  { d := YMM(); VADDPS(y, x, d); return d }
func sub(x Register, y Op) VecVirtual  { d := YMM(); VSUBPS(y, x, d); return d }
func div(x Register, y Op) VecVirtual  { d := YMM(); VDIVPS(y, x, d); return d }
func vmin(x Register, y Op) VecVirtual { d := YMM(); VMINPS(y, x, d); return d } // NaN x gives y
func vmax(x Register, y Op) VecVirtual { d := YMM(); VMAXPS(y, x, d); return d } // NaN x gives y
func and(x Register, y Op) VecVirtual  { d := YMM(); VANDPS(y, x, d); return d }

// fma is x.MulAdd(y, z) = x·y + z, rounded once.
func fma(x Register, y, z Op) VecVirtual {
	d := YMM()
	if zr, ok := z.(Register); ok {
		VMOVAPS(zr, d)
		VFMADD231PS(y, x, d) // d = x·y + d
		return d
	}
	yr, ok := y.(Register)
	if !ok {
		yr = YMM()
		VMOVUPS(y, yr)
	}
	VMOVAPS(x, d)
	VFMADD213PS(z, yr, d) // d = y·d + z
	return d
}

// fmaAcc is x.MulAdd(y, acc) for an addend acc that is not used again: it
// sets acc = x·y + acc in place and returns it (fma would copy acc first).
func fmaAcc(x Register, y Op, acc VecVirtual) VecVirtual {
	VFMADD231PS(y, x, acc)
	return acc
}

// horner sets p = p·r + c in place (p.MulAdd(r, c) with p dead after).
func horner(p, r Register, c Op) { VFMADD213PS(c, r, p) }

// cmp is x.Less(y) and friends: all-ones lanes where x pred y holds.
func cmp(pred uint8, x Register, y Op) VecVirtual {
	d := YMM()
	VCMPPS(U8(pred), y, x, d)
	return d
}

// merge is x.Merge(y, mask): x where mask is set, else y.
func merge(x, y, mask Register) VecVirtual {
	d := YMM()
	VBLENDVPS(mask, x, y, d)
	return d
}

// scaleFactors returns the two powers of two of scale8(·, n): 2^n1 and
// 2^n2 with n1 = floor(max(n, −252)/2), n2 = max(n, −252) − n1. The archsimd
// code computes them once for the several scale8 calls on the same n (the
// compiler shares them).
func scaleFactors(n Register) (p1, p2 VecVirtual) {
	nc := vmax(n, k("scaleMin"))
	n1 := YMM()
	VROUNDPS(U8(roundFloor), mul(nc, k("half")), n1)
	n2 := sub(nc, n1)
	p1, p2 = YMM(), YMM()
	VCVTTPS2DQ(n1, p1)
	VPADDD(k("bias"), p1, p1)
	VPSLLD(U8(23), p1, p1)
	VCVTTPS2DQ(n2, p2)
	VPADDD(k("bias"), p2, p2)
	VPSLLD(U8(23), p2, p2)
	return p1, p2
}

// scale8 is x·2ⁿ as x.Mul(p1).Mul(p2), rounded in that order.
func scale8(x Register, p1, p2 VecVirtual) VecVirtual { return mul(mul(x, p1), p2) }

// expParts returns m and n with e^(ah+al) = m·2ⁿ (expParts8); al nil is
// the zero vector z.
func expParts(ah, al, z Register) (m, n VecVirtual) {
	n = YMM()
	VROUNDPS(U8(roundEven), mul(ah, k("log2e")), n)
	r := fma(n, k("mln2Hi"), ah)
	r = fmaAcc(n, k("mln2Lo"), r)
	if al == nil {
		al = z
	}
	r = add(r, al)
	p := fma(r, k("c6"), k("c5"))
	horner(p, r, k("c4"))
	horner(p, r, k("c3"))
	horner(p, r, k("c2"))
	horner(p, r, k("one"))
	horner(p, r, k("one"))
	return p, n
}

// halfErfcx is halfErfcx8: ½·erfcx(a/√2) for a ≥ 0.
func halfErfcx(a, one Register) VecVirtual {
	pz := mul(a, k("pz"))
	t := div(one, add(pz, one))
	u := mul(pz, t)
	s := fma(u, k("s9"), k("s8"))
	for _, c := range []string{"s7", "s6", "s5", "s4", "s3", "s2", "s1", "s0", "one"} {
		horner(s, u, k(c))
	}
	return mul(mul(t, k("half")), s)
}

// geluParts is geluParts8: h = ½·erfcx(a/√2) and e^(−a²/2) = m·2ⁿ.
func geluParts(a, z, one Register) (h, m, n VecVirtual) {
	aa := mul(a, a)
	lo := fmaAcc(a, a, sub(z, aa)) // a² − aa, exact
	m, n = expParts(mul(aa, k("mhalf")), mul(lo, k("mhalf")), z)
	return halfErfcx(a, one), m, n
}

// sigmoidParts is sigmoidParts8: e^(−|z|) = m·2ⁿ (with its scale
// factors) and big = σ(|z|) = 1/(1+e^(−|z|)).
func sigmoidParts(nzh, nzl, z, one Register) (m, p1, p2, big VecVirtual) {
	m, n := expParts(nzh, nzl, z)
	p1, p2 = scaleFactors(n)
	big = div(one, add(scale8(m, p1, p2), one))
	return m, p1, p2, big
}

// geluTanhZ is geluTanhZ8: −|z| = nzh + nzl and dz/dx, for a = |x|.
func geluTanhZ(a, z Register, wantDz bool) (nzh, nzl, dz VecVirtual) {
	k0h := kreg("tanhK0h")
	a2 := mul(a, a)
	a2l := fmaAcc(a, a, sub(z, a2)) // a² − a2, exact
	m := mul(a2, k("tanhK1h"))
	ml := fmaAcc(a2, k("tanhK1h"), sub(z, m)) // a2·k1h − m, exact
	c := add(m, k0h)
	bb := sub(c, k0h)
	sumErr := add(sub(k0h, sub(c, bb)), sub(m, bb)) // k0h + m − c (2Sum), exact
	cl := add(fmaAcc(a2l, k("tanhK1h"), add(ml, sumErr)), fma(a2, k("tanhK1l"), k("tanhK0l")))
	p := mul(a, c)
	pl := fmaAcc(a, c, sub(z, p)) // a·c − p, exact
	nzh = sub(z, p)
	nzl = sub(z, fmaAcc(a, cl, pl))
	if wantDz {
		dz = fma(a2, k("tanhK1x3"), k("tanhK0"))
	}
	return nzh, nzl, dz
}

// kernel writes one function: a loop over the whole vectors of x (and dy
// when grad), storing body's result in dst. The Go caller passes equal
// lengths and handles a last partial vector through a zero-padded copy, as
// the archsimd code does.
func kernel(name, doc string, grad, consts bool, body func(v, z Register, dy Mem) Register) {
	sig := "func(dst, x []float32"
	if grad {
		sig += ", dy []float32"
	}
	if consts {
		sig += ", k " + activationConsts.goType()
	}
	TEXT(name, NOSPLIT, sig+")")
	Pragma("noescape")
	Doc(name+" "+doc,
		fmt.Sprintf("It handles the first len(x) &^ %d elements (whole vectors of %d); dst (and dy)", f32.lanes()-1, f32.lanes()),
		"are as long as x.")
	dst := Load(Param("dst").Base(), GP64())
	x := Load(Param("x").Base(), GP64())
	n := Load(Param("x").Len(), GP64())
	var g GPVirtual
	if grad {
		g = GP64()
		Load(Param("dy").Base(), g)
	}
	if consts {
		activationConsts.load()
	}
	SHRQ(U8(bits.TrailingZeros(uint(f32.lanes()))), n) // the number of whole vectors
	JZ(LabelRef("done"))
	z := YMM()
	VXORPS(z, z, z)
	Label("loop")
	v := YMM()
	VMOVUPS(Mem{Base: x}, v)
	var dy Mem
	if grad {
		dy = Mem{Base: g}
	}
	y := body(v, z, dy)
	VMOVUPS(y, Mem{Base: dst})
	ADDQ(U8(vecBytes), x)
	ADDQ(U8(vecBytes), dst)
	if grad {
		ADDQ(U8(vecBytes), g)
	}
	DECQ(n)
	JNZ(LabelRef("loop"))
	Label("done")
	VZEROUPPER()
	RET()
}

// absClamp is absSign8's |x| clamped to limit: x.Min(limit) keeps NaN
// lanes out (they become limit).
func absClamp(v Register, limit string) VecVirtual {
	return vmin(and(v, k("absMask")), k(limit))
}

// sigmoidGradOut is the end of the backward kernels of x·σ(z) (SiLU, with
// f = a, and GELUTanh, with f = a·z′): from sigmoidParts, the derivative
// σ(|z|)·(1 + f·σ(−|z|)) for x ≥ 0 and σ(−|z|)·(1 − f·σ(|z|)) for x < 0,
// times dy (gradOut).
func sigmoidGradOut(v, z Register, dy Mem, one, f, m, p1, p2, big VecVirtual) Register {
	pos := mul(big, fma(mul(f, scale8(m, p1, p2)), big, one))
	neg := scale8(mul(mul(m, big), fma(sub(z, f), big, one)), p1, p2)
	return gradOut(v, z, dy, neg, pos)
}

// gradOut is the backward kernels' end: d = neg where x < 0, else pos;
// NaN lanes take x; the result is d·dy.
func gradOut(v, z Register, dy Mem, neg, pos Register) Register {
	d := merge(neg, pos, cmp(cmpLT, v, z))
	d = merge(d, v, cmp(cmpEQ, v, v)) // NaN lanes: x
	return mul(d, dy)
}

// activations emits the kernels of ops/kernel.
func activations() {
	kernel("reluAVX2", "sets dst to ReLU(x) (relu8).", false, false, func(v, z Register, _ Mem) Register {
		// +0 where x ≤ 0 (also for −0); x where x > 0 or NaN.
		return merge(z, v, cmp(cmpLE, v, z))
	})
	kernel("reluGradAVX2", "sets dst to dy·ReLU′(x) (reluGrad8).", true, false, func(v, z Register, dy Mem) Register {
		g := YMM()
		VMOVUPS(dy, g)
		return merge(z, g, cmp(cmpLE, v, z))
	})

	kernel("siluAVX2", "sets dst to SiLU(x) (silu8).", false, true, func(v, z Register, _ Mem) Register {
		one := kreg("one")
		a := absClamp(v, "siluClamp")
		na := sub(z, a)
		m, p1, p2, big := sigmoidParts(na, nil, z, one)
		// x < 0: −a·e^(−a)·σ(a), scaled last; x ≥ 0 (and NaN): x·σ(x).
		neg := scale8(mul(mul(na, m), big), p1, p2)
		return merge(neg, mul(big, v), cmp(cmpLT, v, z))
	})
	kernel("siluGradAVX2", "sets dst to dy·SiLU′(x) (siluGrad8).", true, true, func(v, z Register, dy Mem) Register {
		one := kreg("one")
		a := absClamp(v, "siluClamp")
		m, p1, p2, big := sigmoidParts(sub(z, a), nil, z, one)
		// x ≥ 0: σ(a)·(1 + a·σ(−a)); x < 0: σ(−a)·(1 − a·σ(a)).
		return sigmoidGradOut(v, z, dy, one, a, m, p1, p2, big)
	})

	kernel("geluTanhAVX2", "sets dst to GELUTanh(x) (geluTanh8).", false, true, func(v, z Register, _ Mem) Register {
		one := kreg("one")
		a := absClamp(v, "tanhClamp")
		nzh, nzl, _ := geluTanhZ(a, z, false)
		m, p1, p2, big := sigmoidParts(nzh, nzl, z, one)
		neg := scale8(mul(mul(sub(z, a), m), big), p1, p2)
		return merge(neg, mul(v, big), cmp(cmpLT, v, z))
	})
	kernel("geluTanhGradAVX2", "sets dst to dy·GELUTanh′(x) (geluTanhGrad8).", true, true, func(v, z Register, dy Mem) Register {
		one := kreg("one")
		a := absClamp(v, "tanhClamp")
		nzh, nzl, dz := geluTanhZ(a, z, true)
		m, p1, p2, big := sigmoidParts(nzh, nzl, z, one)
		// x ≥ 0: σ(z)·(1 + a·σ(−z)·z′); x < 0: σ(−z)·(1 − a·σ(z)·z′).
		return sigmoidGradOut(v, z, dy, one, mul(a, dz), m, p1, p2, big)
	})

	kernel("geluAVX2", "sets dst to GELU(x) (gelu8).", false, true, func(v, z Register, _ Mem) Register {
		one := kreg("one")
		a := absClamp(v, "geluClamp")
		h, m, n := geluParts(a, z, one)
		hm := mul(h, m)
		p1, p2 := scaleFactors(n)
		// x < 0: −a·Φ(−a), scaled last. x ≥ 0 (and NaN): x·(1−Φ(−x)).
		neg := scale8(mul(sub(z, a), hm), p1, p2)
		pos := mul(sub(one, scale8(hm, p1, p2)), v)
		return merge(neg, pos, cmp(cmpLT, v, z))
	})
	kernel("geluGradAVX2", "sets dst to dy·GELU′(x) (geluGrad8).", true, true, func(v, z Register, dy Mem) Register {
		one := kreg("one")
		a := absClamp(v, "geluClamp")
		h, m, n := geluParts(a, z, one)
		p1, p2 := scaleFactors(n)
		// w = e^(−a²/2)·(a/√(2π) − h): GELU′ = 1 + w for x ≥ 0, −w for x < 0.
		w := scale8(mul(fmaAcc(a, k("invSqrt2Pi"), sub(z, h)), m), p1, p2)
		return gradOut(v, z, dy, sub(z, w), add(one, w))
	})
}
