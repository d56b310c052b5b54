package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// accumulateFP16 emits internal/qkernel's fp16 accumulator kernel,
// AccumulateFP16 (float.go) on four float64 lanes: each step computes
// a = acc + w·v in float64 (VCVTPS2PD, VMULPD, VADDPD: the product of an
// fp16 weight and a float32 is exact, the sum rounded once, as the scalar
// loop's) and rounds |a| to fp16 as roundSmall does, with the binade's
// power of two taken in floating point instead of integer bits:
//
//	b = |a| AND the exponent mask     (2^e, or 0 below the normal range)
//	c = max(b, 2^-14) · 2^42          (2^(e+42): its ulp is fp16's quantum at |a|)
//	m = (|a| + c) − c                 (rounded to that quantum, half to even)
//
// then m = +Inf where |a| ≥ 65520 (65504 plus half its quantum: ties go to
// the even 65536, past the largest value), the sign of a put back. |a| =
// +Inf takes the overflow branch (the sum gives NaN there); a NaN a gives
// NaN through the sums and no compare. A row whose weight is ±0 is
// skipped, as the scalar loop skips it.
func accumulateFP16() {
	TEXT("accumulateFP16AVX2", NOSPLIT, "func(acc, w []float64, v []float32)")
	Doc("accumulateFP16AVX2 is AccumulateFP16 for len(acc) a positive multiple of 4",
		"and len(v) = len(w)·len(acc).")
	ap, n := Load(Param("acc").Base(), GP64()), Load(Param("acc").Len(), GP64())
	wp, rows := Load(Param("w").Base(), GP64()), Load(Param("w").Len(), GP64())
	vp := Load(Param("v").Base(), GP64())
	absMask, expMask := constant64(0x7FFFFFFFFFFFFFFF), constant64(0x7FF0000000000000)
	minNormal, step := constant64(0x3F10000000000000), constant64(0x4290000000000000) // 2^-14, 2^42
	overflow, inf := constant64(0x40EFFE0000000000), expMask                          // 65520, +Inf (the exponent mask's bits)
	j, i, t := GP64(), GP64(), GP64()
	wv := YMM()
	XORQ(j, j)
	Label("row")
	CMPQ(j, rows)
	JAE(LabelRef("done"))
	MOVQ(Mem{Base: wp, Index: j, Scale: 8}, t)
	SHLQ(U8(1), t) // drops the sign: zero for ±0
	JZ(LabelRef("next"))
	VBROADCASTSD(Mem{Base: wp, Index: j, Scale: 8}, wv)
	XORQ(i, i)
	Label("elem")
	a, abs, c, m, s := YMM(), YMM(), YMM(), YMM(), YMM()
	VCVTPS2PD(Mem{Base: vp, Index: i, Scale: 4}, a)
	VMULPD(wv, a, a)
	VADDPD(Mem{Base: ap, Index: i, Scale: 8}, a, a)
	VANDPD(absMask, a, abs)
	VANDPD(expMask, abs, c)
	VMAXPD(minNormal, c, c)
	VMULPD(step, c, c)
	VADDPD(c, abs, m)
	VSUBPD(c, m, m)
	VCMPPD(U8(cmpGEOrdered), overflow, abs, c) // |a| ≥ 65520 (false for NaN)
	VBLENDVPD(c, inf, m, m)
	VANDNPD(a, absMask, s) // the sign of a
	VORPD(s, m, m)
	VMOVUPD(m, Mem{Base: ap, Index: i, Scale: 8})
	ADDQ(I8(4), i)
	CMPQ(i, n)
	JB(LabelRef("elem"))
	Label("next")
	LEAQ(Mem{Base: vp, Index: n, Scale: 4}, vp)
	INCQ(j)
	JMP(LabelRef("row"))
	Label("done")
	VZEROUPPER()
	RET()
}

// constant64 broadcasts a 64-bit constant to a new vector register.
func constant64(v uint64) VecVirtual {
	r, y := GP64(), YMM()
	MOVQ(U64(v), r)
	VMOVQ(r, y.AsX())
	VPBROADCASTQ(y.AsX(), y)
	return y
}
