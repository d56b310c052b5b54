//go:build amd64 && !goexperiment.simd && !purego

#include "textflag.h"

// The AVX2+FMA assembly of the float32 softmax row helpers' vector
// routines (softmax_amd64.go has its Go declarations, the routines, which
// handle tails, and the account of their accuracy). The functions named
// …32AVX2 compute in float32 lanes, eight elements per YMM register, with
// two-float arithmetic where float32 alone would lose accuracy; max
// compares float32 elements, exactly; the others (dot, sum, the strided
// kernels' exp, and the exact blocks of the float32 functions) widen
// float32 elements to float64 lanes, four per register. Every function
// processes a length that is a multiple of 8 and clears the upper YMM bits
// (VZEROUPPER) before returning, since Go's scalar float code is SSE and
// runs slowly after AVX code that leaves them dirty.
//
// Operand order is Go's: the destination last, so VSUBPD b, a, d is
// d = a − b and VFMADD213PD c, b, a is a = b·a + c.

// The constants, each repeated in four float64 lanes so that they can be
// memory operands of YMM instructions.

// LANES4(off, bits) writes the float64 with the given bits into the four
// lanes at byte offset off of the table.
#define LANES4(off, bits) \
	DATA softmaxConsts<>+(off)(SB)/8, bits; \
	DATA softmaxConsts<>+(off+8)(SB)/8, bits; \
	DATA softmaxConsts<>+(off+16)(SB)/8, bits; \
	DATA softmaxConsts<>+(off+24)(SB)/8, bits

// LOG2E: log2(e)
LANES4(0, $0x3ff71547652b82fe)
#define LOG2E softmaxConsts<>+0(SB)
// NEGLN2: −ln2
LANES4(32, $0xbfe62e42fefa39ef)
#define NEGLN2 softmaxConsts<>+32(SB)
// SHIFT: 1.5·2^52 (expShift)
LANES4(64, $0x4338000000000000)
#define SHIFT softmaxConsts<>+64(SB)
// C0: 1/7!
LANES4(96, $0x3f2a01a01a01a01a)
#define C0 softmaxConsts<>+96(SB)
// C1: 1/6!
LANES4(128, $0x3f56c16c16c16c17)
#define C1 softmaxConsts<>+128(SB)
// C2: 1/5!
LANES4(160, $0x3f81111111111111)
#define C2 softmaxConsts<>+160(SB)
// C3: 1/4!
LANES4(192, $0x3fa5555555555555)
#define C3 softmaxConsts<>+192(SB)
// C4: 1/3!
LANES4(224, $0x3fc5555555555555)
#define C4 softmaxConsts<>+224(SB)
// C5: 1/2!
LANES4(256, $0x3fe0000000000000)
#define C5 softmaxConsts<>+256(SB)
// ONE: 1
LANES4(288, $0x3ff0000000000000)
#define ONE softmaxConsts<>+288(SB)
// EMIN: expSingleMin = −104
LANES4(320, $0xc05a000000000000)
#define EMIN softmaxConsts<>+320(SB)
// EMAX: expSingleMax = 89
LANES4(352, $0x4056400000000000)
#define EMAX softmaxConsts<>+352(SB)
// EINF: +Inf
LANES4(384, $0x7ff0000000000000)
#define EINF softmaxConsts<>+384(SB)
// BIAS: 1023 (int64: the exponent bias)
LANES4(416, $0x00000000000003ff)
#define BIAS softmaxConsts<>+416(SB)
GLOBL softmaxConsts<>(SB), RODATA|NOPTR, $448

// EXPNEG4(z, k, r, p, m) sets p to e^z on the four float64 lanes of z ≤ 0
// (or NaN), as exp8 in softmax_simd.go does and with the same bits: k =
// round(z·log2 e) (to even, by adding and subtracting 1.5·2^52, whose low
// bits then hold k), r = z − k·ln2 in one FMA, e^r from its degree-7
// Taylor polynomial by Horner's rule, times 2^k built from k's bits
// ((k + 1023) << 52; for z in [expSingleMin, 0], k lies in [−150, 0], so
// 2^k and the product are normal float64s and exact). z < −104 gives 0
// (−Inf too); NaN gives NaN (the comparison is false and NaN propagates
// through the polynomial). z is kept; k, r and m are clobbered.
#define EXPNEG4(z, k, r, p, m) \
	VMULPD      LOG2E, z, k; \
	VADDPD      SHIFT, k, k; \
	VSUBPD      SHIFT, k, r; \
	VFMADD132PD NEGLN2, z, r; \
	VMOVUPD     C0, p; \
	VFMADD213PD C1, r, p; \
	VFMADD213PD C2, r, p; \
	VFMADD213PD C3, r, p; \
	VFMADD213PD C4, r, p; \
	VFMADD213PD C5, r, p; \
	VFMADD213PD ONE, r, p; \
	VFMADD213PD ONE, r, p; \
	VPADDQ      BIAS, k, k; \
	VPSLLQ      $52, k, k; \
	VMULPD      k, p, p; \
	VCMPPD      $0x01, EMIN, z, m; \
	VANDNPD     p, m, p

// EXP4(z, k, r, p, m) is EXPNEG4 for any z, as exp8: z > 89 gives +Inf
// (for z in (0, 89], k ≤ 128, still exact). The softmax sums need only
// EXPNEG4, since there z = x − max ≤ 0, and the comparison and blend cost
// them about a fifth of their time.
#define EXP4(z, k, r, p, m) \
	EXPNEG4(z, k, r, p, m); \
	VCMPPD    $0x0e, EMAX, z, m; \
	VBLENDVPD m, EINF, p, p

// HSUM(y, x) leaves in the low lane of x (the low half of y) the sum of y's
// four float64 lanes, ((l0 + l2) + (l1 + l3)). t is clobbered.
#define HSUM(y, x, t) \
	VEXTRACTF128 $1, y, t; \
	VADDPD       t, x, x; \
	VPERMILPD    $1, x, t; \
	VADDSD       t, x, x

// The float32-lane routines read their constants from a table passed in
// R8 (softmaxK in softmax_amd64.go, built from the package's constants),
// one constant in each 32-byte row's eight lanes, at these offsets.
#define K_LOG2E 0(R8)
#define K_SHIFT 32(R8)
#define K_MLN2HI 64(R8)
#define K_MLN2LO 96(R8)
#define K_C6 128(R8)
#define K_C5 160(R8)
#define K_C4 192(R8)
#define K_C3 224(R8)
#define K_C2 256(R8)
#define K_ONE 288(R8)
#define K_FASTMIN 320(R8)
#define K_ZEROBELOW 352(R8)

// DIFF(x, m, d, e, t) sets d = x − m rounded to float32 and e to its
// rounding error, (x − m) − d, exactly (Knuth's TwoSum of x and −m, which
// needs no ordering of |x| and |m|), so that d + e is x − m exactly when
// nothing overflows. t is clobbered; x and m are kept.
#define DIFF(x, m, d, e, t) \
	VSUBPS m, x, d; \
	VSUBPS x, d, e; \
	VSUBPS e, d, t; \
	VSUBPS t, x, t; \
	VADDPS m, e, e; \
	VSUBPS e, t, e

// EXPF8(d, e, t, n, r, p) sets p to e^(d+e) on eight float32 lanes for
// −86 ≤ d ≤ 0, with the reduction and polynomial of expParts8 (the
// activations' exp, simd_avx2_amd64.go; constants in fast32.go): n =
// round(d·log2 e), by adding 1.5·2^23 in one FMA (t then holds n in its
// low bits), r = (d − n·ln2) + e with ln2 as a two-float (two FMAs), e^r
// from the degree-6 polynomial by Horner's rule, and 2^n applied by adding
// n << 23 to the result's exponent bits: for d ≥ −86, n ≥ −124 and the
// result is a normal float32. Lanes outside that range give garbage, which
// the callers replace. t, n and r are clobbered; d and e are kept.
#define EXPF8(d, e, t, n, r, p) \
	VMOVUPS     K_LOG2E, t; \
	VFMADD213PS K_SHIFT, d, t; \
	VSUBPS      K_SHIFT, t, n; \
	VMOVAPS     d, r; \
	VFMADD231PS K_MLN2HI, n, r; \
	VFMADD231PS K_MLN2LO, n, r; \
	VADDPS      e, r, r; \
	VMOVUPS     K_C6, p; \
	VFMADD213PS K_C5, r, p; \
	VFMADD213PS K_C4, r, p; \
	VFMADD213PS K_C3, r, p; \
	VFMADD213PS K_C2, r, p; \
	VFMADD213PS K_ONE, r, p; \
	VFMADD213PS K_ONE, r, p; \
	VPSLLD      $23, t, t; \
	VPADDD      t, p, p


// func maxAVX2(x []float32) float32
//
// The largest non-NaN element of x (len(x) a multiple of 8), or −Inf. The
// loads go into registers first so that VMAXPS's second operand is the
// running maximum: VMAXPS returns its second operand when either is NaN, so
// NaN elements are skipped, as in the scalar loop, and the result is exact.
TEXT ·maxAVX2(SB), NOSPLIT, $0-28
	MOVQ         x_base+0(FP), SI
	MOVQ         x_len+8(FP), BX
	MOVL         $0xff800000, AX   // float32 −Inf
	VMOVD        AX, X0
	VPBROADCASTD X0, Y0
	VMOVUPS      Y0, Y1
	VMOVUPS      Y0, Y2
	VMOVUPS      Y0, Y3
	XORQ         CX, CX
	MOVQ         BX, DX
	ANDQ         $-32, DX          // DX: the elements of whole 32-element blocks

max32loop:
	CMPQ    CX, DX
	JGE     max8
	VMOVUPS (SI)(CX*4), Y4
	VMOVUPS 32(SI)(CX*4), Y5
	VMOVUPS 64(SI)(CX*4), Y6
	VMOVUPS 96(SI)(CX*4), Y7
	VMAXPS  Y0, Y4, Y0              // Y0 = Y4 > Y0 ? Y4 : Y0
	VMAXPS  Y1, Y5, Y1
	VMAXPS  Y2, Y6, Y2
	VMAXPS  Y3, Y7, Y3
	ADDQ    $32, CX
	JMP     max32loop

max8:
	CMPQ    CX, BX
	JGE     maxreduce
	VMOVUPS (SI)(CX*4), Y4
	VMAXPS  Y0, Y4, Y0
	ADDQ    $8, CX
	JMP     max8

maxreduce:
	// No lane holds NaN, so the order of the reduction does not matter.
	VMAXPS       Y1, Y0, Y0
	VMAXPS       Y3, Y2, Y2
	VMAXPS       Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VMAXPS       X1, X0, X0
	VPERMILPS    $0x4e, X0, X1      // swap the 64-bit halves
	VMAXPS       X1, X0, X0
	VPERMILPS    $0xb1, X0, X1      // swap neighbouring lanes
	VMAXPS       X1, X0, X0
	VMOVSS       X0, ret+24(FP)
	VZEROUPPER
	RET

// func dotAVX2(y, dy []float32) float64
//
// Σ y_j·dy_j in float64, len(y) a multiple of 8. The product of two
// float32s is exact in float64, so the FMA rounds only the sum, as the
// scalar code's multiply-then-add does. Four accumulators over 16 elements
// per iteration, then one more block of 8 if there is one.
TEXT ·dotAVX2(SB), NOSPLIT, $0-56
	MOVQ   y_base+0(FP), SI
	MOVQ   dy_base+24(FP), DI
	MOVQ   y_len+8(FP), BX
	VXORPD Y10, Y10, Y10
	VXORPD Y11, Y11, Y11
	VXORPD Y12, Y12, Y12
	VXORPD Y13, Y13, Y13
	XORQ   CX, CX
	MOVQ   BX, DX
	ANDQ   $-16, DX

dot16loop:
	CMPQ        CX, DX
	JGE         dot8
	VCVTPS2PD   (SI)(CX*4), Y0
	VCVTPS2PD   16(SI)(CX*4), Y1
	VCVTPS2PD   32(SI)(CX*4), Y2
	VCVTPS2PD   48(SI)(CX*4), Y3
	VCVTPS2PD   (DI)(CX*4), Y4
	VCVTPS2PD   16(DI)(CX*4), Y5
	VCVTPS2PD   32(DI)(CX*4), Y6
	VCVTPS2PD   48(DI)(CX*4), Y7
	VFMADD231PD Y4, Y0, Y10         // Y10 += Y0·Y4
	VFMADD231PD Y5, Y1, Y11
	VFMADD231PD Y6, Y2, Y12
	VFMADD231PD Y7, Y3, Y13
	ADDQ        $16, CX
	JMP         dot16loop

dot8:
	CMPQ        CX, BX
	JGE         dotdone
	VCVTPS2PD   (SI)(CX*4), Y0
	VCVTPS2PD   16(SI)(CX*4), Y1
	VCVTPS2PD   (DI)(CX*4), Y4
	VCVTPS2PD   16(DI)(CX*4), Y5
	VFMADD231PD Y4, Y0, Y10
	VFMADD231PD Y5, Y1, Y11

dotdone:
	VADDPD Y11, Y10, Y10
	VADDPD Y13, Y12, Y12
	VADDPD Y12, Y10, Y10
	HSUM(Y10, X10, X0)
	VMOVSD X10, ret+48(FP)
	VZEROUPPER
	RET

// func sumAVX2(x []float32) float64
//
// Σ x_j in float64, len(x) a multiple of 8; accumulators as in dotAVX2.
TEXT ·sumAVX2(SB), NOSPLIT, $0-32
	MOVQ   x_base+0(FP), SI
	MOVQ   x_len+8(FP), BX
	VXORPD Y10, Y10, Y10
	VXORPD Y11, Y11, Y11
	VXORPD Y12, Y12, Y12
	VXORPD Y13, Y13, Y13
	XORQ   CX, CX
	MOVQ   BX, DX
	ANDQ   $-16, DX

sum16loop:
	CMPQ      CX, DX
	JGE       sum8
	VCVTPS2PD (SI)(CX*4), Y0
	VCVTPS2PD 16(SI)(CX*4), Y1
	VCVTPS2PD 32(SI)(CX*4), Y2
	VCVTPS2PD 48(SI)(CX*4), Y3
	VADDPD    Y0, Y10, Y10
	VADDPD    Y1, Y11, Y11
	VADDPD    Y2, Y12, Y12
	VADDPD    Y3, Y13, Y13
	ADDQ      $16, CX
	JMP       sum16loop

sum8:
	CMPQ      CX, BX
	JGE       sumdone
	VCVTPS2PD (SI)(CX*4), Y0
	VCVTPS2PD 16(SI)(CX*4), Y1
	VADDPD    Y0, Y10, Y10
	VADDPD    Y1, Y11, Y11

sumdone:
	VADDPD Y11, Y10, Y10
	VADDPD Y13, Y12, Y12
	VADDPD Y12, Y10, Y10
	HSUM(Y10, X10, X0)
	VMOVSD X10, ret+24(FP)
	VZEROUPPER
	RET

// func expAVX2(z []float64)
//
// z_j = e^(z_j) to float32 accuracy (EXP4), len(z) a multiple of 8.
TEXT ·expAVX2(SB), NOSPLIT, $0-24
	MOVQ z_base+0(FP), SI
	MOVQ z_len+8(FP), BX
	XORQ CX, CX

exploop:
	CMPQ    CX, BX
	JGE     expdone
	VMOVUPD (SI)(CX*8), Y0
	VMOVUPD 32(SI)(CX*8), Y1
	EXP4(Y0, Y2, Y3, Y4, Y5)
	EXP4(Y1, Y6, Y7, Y8, Y9)
	VMOVUPD Y4, (SI)(CX*8)
	VMOVUPD Y8, 32(SI)(CX*8)
	ADDQ    $8, CX
	JMP     exploop

expdone:
	VZEROUPPER
	RET

// func expSum32AVX2(dst, x []float32, m float64, store bool, k *[12][8]uint32) float64
//
// Σ e^(x_j − m) in float64 over x (len(x) a multiple of 8), storing each
// term in dst[j] if store is set; m must be at least every non-NaN x_j (the
// row's maximum, which is a float32). The terms are computed in float32
// lanes (DIFF, then EXPF8), 16 at a time as two vectors. When storing
// (softmax), the two vectors' sum, rounded to float32, is added in float64:
// widening costs more than the exp, and the sum's relative error, at most
// 2^−24, only scales y by as much. Without store (log-softmax, whose log s
// needs the small terms next to e^0 = 1 when s is near 1), each vector is
// widened and added. If a lane of the 16 is outside EXPF8's range, they go
// through a loop of one vector at a time, whose terms are each added in
// float64 and which takes another way for such a vector: if those lanes
// all have x_j − m < −104, whose exps round to 0 (masked entries, −Inf,
// among them), they are set to 0; otherwise (an exp near underflow, or a
// NaN) all 8 are computed in float64 lanes by EXPNEG4 and rounded to
// float32.
TEXT ·expSum32AVX2(SB), NOSPLIT, $0-80
	MOVQ         dst_base+0(FP), DI
	MOVQ         x_base+24(FP), SI
	MOVQ         x_len+32(FP), BX
	MOVBLZX      store+56(FP), R11
	MOVQ         k+64(FP), R8
	VBROADCASTSD m+48(FP), Y14        // m in float64 lanes, for the exact blocks
	VMOVSD       m+48(FP), X15
	VCVTSD2SS    X15, X15, X15        // m is a float32: exact
	VBROADCASTSS X15, Y15
	VXORPD       Y12, Y12, Y12        // accumulators
	VXORPD       Y13, Y13, Y13
	XORQ         CX, CX
	MOVQ         BX, DX
	ANDQ         $-16, DX             // DX: the elements of whole 16-element blocks

es16loop:
	CMPQ      CX, DX
	JGE       es16tail
	VMOVUPS   (SI)(CX*4), Y0
	VMOVUPS   32(SI)(CX*4), Y6
	DIFF(Y0, Y15, Y1, Y2, Y3)
	DIFF(Y6, Y15, Y7, Y8, Y9)
	EXPF8(Y1, Y2, Y3, Y0, Y4, Y5)
	EXPF8(Y7, Y8, Y9, Y6, Y10, Y11)
	VCMPPS    $0x09, K_FASTMIN, Y1, Y4  // NGE_US: d < −86, or NaN
	VCMPPS    $0x09, K_FASTMIN, Y7, Y10
	VORPS     Y10, Y4, Y4
	VMOVMSKPS Y4, AX
	TESTL     AX, AX
	JNZ       es16slow
	TESTQ     R11, R11
	JZ        es16wide
	VMOVUPS   Y5, (DI)(CX*4)
	VMOVUPS   Y11, 32(DI)(CX*4)
	VADDPS    Y11, Y5, Y5

es16add:
	VCVTPS2PD    X5, Y0
	VEXTRACTF128 $1, Y5, X1
	VCVTPS2PD    X1, Y1
	VADDPD       Y0, Y12, Y12
	VADDPD       Y1, Y13, Y13
	ADDQ         $16, CX
	JMP          es16loop

es16wide:
	// Not storing (log-softmax): the first vector added on its own, the
	// second at es16add.
	VCVTPS2PD    X11, Y0
	VEXTRACTF128 $1, Y11, X1
	VCVTPS2PD    X1, Y1
	VADDPD       Y0, Y12, Y12
	VADDPD       Y1, Y13, Y13
	JMP          es16add

es16slow:
	// These 16 through the loop below, then back.
	LEAQ 16(CX), R10
	JMP  es8loop

es16tail:
	CMPQ CX, BX
	JGE  es32done
	MOVQ BX, R10                      // the last 8

es8loop:
	CMPQ      CX, R10
	JGE       es16loop
	VMOVUPS   (SI)(CX*4), Y0
	DIFF(Y0, Y15, Y1, Y2, Y3)
	EXPF8(Y1, Y2, Y3, Y4, Y5, Y6)
	VCMPPS    $0x09, K_FASTMIN, Y1, Y7 // NGE_US: d < −86, or NaN
	VMOVMSKPS Y7, AX
	TESTL     AX, AX
	JNZ       es8fix

es8store:
	TESTQ   R11, R11
	JZ      es8add
	VMOVUPS Y6, (DI)(CX*4)

es8add:
	VCVTPS2PD    X6, Y8
	VEXTRACTF128 $1, Y6, X9
	VCVTPS2PD    X9, Y9
	VADDPD       Y8, Y12, Y12
	VADDPD       Y9, Y13, Y13
	ADDQ         $8, CX
	JMP          es8loop

es8fix:
	VCMPPS    $0x11, K_ZEROBELOW, Y1, Y8 // LT_OQ: d < −104 (not NaN)
	VMOVMSKPS Y8, R9
	CMPL      AX, R9
	JNE       es8exact
	VANDNPS   Y6, Y8, Y6
	JMP       es8store

es8exact:
	VCVTPS2PD   (SI)(CX*4), Y0
	VCVTPS2PD   16(SI)(CX*4), Y1
	VSUBPD      Y14, Y0, Y0
	VSUBPD      Y14, Y1, Y1
	EXPNEG4(Y0, Y2, Y3, Y4, Y5)
	EXPNEG4(Y1, Y7, Y8, Y9, Y10)
	VCVTPD2PSY  Y4, X4
	VCVTPD2PSY  Y9, X9
	VINSERTF128 $1, X9, Y4, Y6
	JMP         es8store

es32done:
	VADDPD Y13, Y12, Y12
	HSUM(Y12, X12, X0)
	VMOVSD X12, ret+72(FP)
	VZEROUPPER
	RET

// func scale32AVX2(dst []float32, hi, lo float32)
//
// dst_j = dst_j·(hi + lo), len(dst) a multiple of 8, where hi + lo is the
// float64 factor as a two-float: p = dst_j·hi rounded, then p plus its
// rounding error (an FMA gives it exactly) and dst_j·lo, so the result is
// within 2^−24 + 2^−47 relative of the exact product.
TEXT ·scale32AVX2(SB), NOSPLIT, $0-32
	MOVQ         dst_base+0(FP), DI
	MOVQ         dst_len+8(FP), BX
	VBROADCASTSS hi+24(FP), Y14
	VBROADCASTSS lo+28(FP), Y15
	XORQ         CX, CX

sc32loop:
	CMPQ        CX, BX
	JGE         sc32done
	VMOVUPS     (DI)(CX*4), Y0
	VMULPS      Y14, Y0, Y1           // p = e·hi, rounded
	VMOVAPS     Y1, Y2
	VFMSUB231PS Y14, Y0, Y2           // e·hi − p, exact
	VFMADD231PS Y15, Y0, Y2           // + e·lo
	VADDPS      Y2, Y1, Y1
	VMOVUPS     Y1, (DI)(CX*4)
	ADDQ        $8, CX
	JMP         sc32loop

sc32done:
	VZEROUPPER
	RET

// func logOut32AVX2(dst, x []float32, m, hi, lo float32)
//
// dst_j = ((x_j − m) − hi) − lo, len(x) a multiple of 8; hi + lo is the
// log of the sum as a two-float.
TEXT ·logOut32AVX2(SB), NOSPLIT, $0-60
	MOVQ         dst_base+0(FP), DI
	MOVQ         x_base+24(FP), SI
	MOVQ         x_len+32(FP), BX
	VBROADCASTSS m+48(FP), Y13
	VBROADCASTSS hi+52(FP), Y14
	VBROADCASTSS lo+56(FP), Y15
	XORQ         CX, CX

lo32loop:
	CMPQ    CX, BX
	JGE     lo32done
	VMOVUPS (SI)(CX*4), Y0
	VSUBPS  Y13, Y0, Y0
	VSUBPS  Y14, Y0, Y0
	VSUBPS  Y15, Y0, Y0
	VMOVUPS Y0, (DI)(CX*4)
	ADDQ    $8, CX
	JMP     lo32loop

lo32done:
	VZEROUPPER
	RET

// func gradOut32AVX2(dst, y, dy []float32, hi, lo float32)
//
// dst_j = y_j·((dy_j − hi) − lo), len(y) a multiple of 8; hi + lo is the
// float64 sum s as a two-float. Where dy_j and hi are within a factor of 2
// (where the difference cancels), dy_j − hi is exact.
TEXT ·gradOut32AVX2(SB), NOSPLIT, $0-80
	MOVQ         dst_base+0(FP), DI
	MOVQ         y_base+24(FP), SI
	MOVQ         y_len+32(FP), BX
	MOVQ         dy_base+48(FP), DX
	VBROADCASTSS hi+72(FP), Y14
	VBROADCASTSS lo+76(FP), Y15
	XORQ         CX, CX

go32loop:
	CMPQ    CX, BX
	JGE     go32done
	VMOVUPS (DX)(CX*4), Y0
	VSUBPS  Y14, Y0, Y0
	VSUBPS  Y15, Y0, Y0
	VMULPS  (SI)(CX*4), Y0, Y0
	VMOVUPS Y0, (DI)(CX*4)
	ADDQ    $8, CX
	JMP     go32loop

go32done:
	VZEROUPPER
	RET

// func logGradOut32AVX2(dst, y, dy []float32, negTotal float64, hi, lo float32, k *[12][8]uint32)
//
// dst_j = dy_j − e^(y_j)·total, len(y) a multiple of 8, where −total is
// negTotal, and hi + lo as a two-float: two FMAs, e^(y_j)·hi + dy_j, then
// e^(y_j)·lo added, with e^(y_j) from EXPF8. Blocks of 8 with a lane
// outside −86 ≤ y_j ≤ 0 (log-probabilities are ≤ 0) take the ways of
// expSum32AVX2: 0 for the exps of y_j < −104, or the whole block in
// float64 lanes (EXP4, then e·negTotal + dy in one FMA).
TEXT ·logGradOut32AVX2(SB), NOSPLIT, $0-96
	MOVQ         dst_base+0(FP), DI
	MOVQ         y_base+24(FP), SI
	MOVQ         y_len+32(FP), BX
	MOVQ         dy_base+48(FP), DX
	VBROADCASTSD negTotal+72(FP), Y14
	VBROADCASTSS hi+80(FP), Y11
	VBROADCASTSS lo+84(FP), Y12
	MOVQ         k+88(FP), R8
	VXORPS       Y13, Y13, Y13
	XORQ         CX, CX

lg32loop:
	CMPQ      CX, BX
	JGE       lg32done
	VMOVUPS   (SI)(CX*4), Y0
	EXPF8(Y0, Y13, Y1, Y2, Y3, Y4)
	VCMPPS    $0x09, K_FASTMIN, Y0, Y5 // NGE_US: y < −86, or NaN
	VCMPPS    $0x1e, Y13, Y0, Y6       // GT_OQ: y > 0
	VORPS     Y6, Y5, Y5
	VMOVMSKPS Y5, AX
	TESTL     AX, AX
	JNZ       lg32fix

lg32out:
	VMOVUPS     (DX)(CX*4), Y7
	VFMADD231PS Y11, Y4, Y7           // Y7 = e·hi + dy
	VFMADD231PS Y12, Y4, Y7           // Y7 = e·lo + Y7
	VMOVUPS     Y7, (DI)(CX*4)

lg32next:
	ADDQ $8, CX
	JMP  lg32loop

lg32fix:
	VCMPPS    $0x11, K_ZEROBELOW, Y0, Y8 // LT_OQ: y < −104 (not NaN)
	VMOVMSKPS Y8, R9
	CMPL      AX, R9
	JNE       lg32exact
	VANDNPS   Y4, Y8, Y4
	JMP       lg32out

lg32exact:
	VCVTPS2PD   (SI)(CX*4), Y0
	VCVTPS2PD   16(SI)(CX*4), Y1
	EXP4(Y0, Y2, Y3, Y4, Y5)
	EXP4(Y1, Y6, Y7, Y8, Y9)
	VCVTPS2PD   (DX)(CX*4), Y10
	VCVTPS2PD   16(DX)(CX*4), Y1
	VFMADD213PD Y10, Y14, Y4          // Y4 = Y4·negTotal + dy
	VFMADD213PD Y1, Y14, Y8
	VCVTPD2PSY  Y4, X4
	VCVTPD2PSY  Y8, X8
	VMOVUPS     X4, (DI)(CX*4)
	VMOVUPS     X8, 16(DI)(CX*4)
	JMP         lg32next

lg32done:
	VZEROUPPER
	RET
