//go:build amd64 && !goexperiment.simd && !purego

#include "textflag.h"

// AVX2+FMA twins of the float32 softmax row helpers (softmax_amd64.go has
// their Go declarations and the wrappers that handle tails). Like the
// AVX-512 code of softmax_simd.go, each widens float32 elements to float64
// lanes (four per YMM register, eight elements per iteration), so the
// arithmetic and the sums are in float64 as in the scalar code. Every
// function processes a length that is a multiple of 8 and clears the upper
// YMM bits (VZEROUPPER) before returning, since Go's scalar float code is
// SSE and runs slowly after AVX code that leaves them dirty.
//
// Operand order is Go's: the destination last, so VSUBPD b, a, d is
// d = a − b and VFMADD213PD c, b, a is a = b·a + c.

// The constants, each repeated in four float64 lanes so that they can be
// memory operands of YMM instructions.

// LOG2E: log2(e)
DATA softmaxConsts<>+0(SB)/8, $0x3ff71547652b82fe
DATA softmaxConsts<>+8(SB)/8, $0x3ff71547652b82fe
DATA softmaxConsts<>+16(SB)/8, $0x3ff71547652b82fe
DATA softmaxConsts<>+24(SB)/8, $0x3ff71547652b82fe
#define LOG2E softmaxConsts<>+0(SB)
// NEGLN2: −ln2
DATA softmaxConsts<>+32(SB)/8, $0xbfe62e42fefa39ef
DATA softmaxConsts<>+40(SB)/8, $0xbfe62e42fefa39ef
DATA softmaxConsts<>+48(SB)/8, $0xbfe62e42fefa39ef
DATA softmaxConsts<>+56(SB)/8, $0xbfe62e42fefa39ef
#define NEGLN2 softmaxConsts<>+32(SB)
// SHIFT: 1.5·2^52 (expShift)
DATA softmaxConsts<>+64(SB)/8, $0x4338000000000000
DATA softmaxConsts<>+72(SB)/8, $0x4338000000000000
DATA softmaxConsts<>+80(SB)/8, $0x4338000000000000
DATA softmaxConsts<>+88(SB)/8, $0x4338000000000000
#define SHIFT softmaxConsts<>+64(SB)
// C0: 1/7!
DATA softmaxConsts<>+96(SB)/8, $0x3f2a01a01a01a01a
DATA softmaxConsts<>+104(SB)/8, $0x3f2a01a01a01a01a
DATA softmaxConsts<>+112(SB)/8, $0x3f2a01a01a01a01a
DATA softmaxConsts<>+120(SB)/8, $0x3f2a01a01a01a01a
#define C0 softmaxConsts<>+96(SB)
// C1: 1/6!
DATA softmaxConsts<>+128(SB)/8, $0x3f56c16c16c16c17
DATA softmaxConsts<>+136(SB)/8, $0x3f56c16c16c16c17
DATA softmaxConsts<>+144(SB)/8, $0x3f56c16c16c16c17
DATA softmaxConsts<>+152(SB)/8, $0x3f56c16c16c16c17
#define C1 softmaxConsts<>+128(SB)
// C2: 1/5!
DATA softmaxConsts<>+160(SB)/8, $0x3f81111111111111
DATA softmaxConsts<>+168(SB)/8, $0x3f81111111111111
DATA softmaxConsts<>+176(SB)/8, $0x3f81111111111111
DATA softmaxConsts<>+184(SB)/8, $0x3f81111111111111
#define C2 softmaxConsts<>+160(SB)
// C3: 1/4!
DATA softmaxConsts<>+192(SB)/8, $0x3fa5555555555555
DATA softmaxConsts<>+200(SB)/8, $0x3fa5555555555555
DATA softmaxConsts<>+208(SB)/8, $0x3fa5555555555555
DATA softmaxConsts<>+216(SB)/8, $0x3fa5555555555555
#define C3 softmaxConsts<>+192(SB)
// C4: 1/3!
DATA softmaxConsts<>+224(SB)/8, $0x3fc5555555555555
DATA softmaxConsts<>+232(SB)/8, $0x3fc5555555555555
DATA softmaxConsts<>+240(SB)/8, $0x3fc5555555555555
DATA softmaxConsts<>+248(SB)/8, $0x3fc5555555555555
#define C4 softmaxConsts<>+224(SB)
// C5: 1/2!
DATA softmaxConsts<>+256(SB)/8, $0x3fe0000000000000
DATA softmaxConsts<>+264(SB)/8, $0x3fe0000000000000
DATA softmaxConsts<>+272(SB)/8, $0x3fe0000000000000
DATA softmaxConsts<>+280(SB)/8, $0x3fe0000000000000
#define C5 softmaxConsts<>+256(SB)
// ONE: 1
DATA softmaxConsts<>+288(SB)/8, $0x3ff0000000000000
DATA softmaxConsts<>+296(SB)/8, $0x3ff0000000000000
DATA softmaxConsts<>+304(SB)/8, $0x3ff0000000000000
DATA softmaxConsts<>+312(SB)/8, $0x3ff0000000000000
#define ONE softmaxConsts<>+288(SB)
// EMIN: expSingleMin = −104
DATA softmaxConsts<>+320(SB)/8, $0xc05a000000000000
DATA softmaxConsts<>+328(SB)/8, $0xc05a000000000000
DATA softmaxConsts<>+336(SB)/8, $0xc05a000000000000
DATA softmaxConsts<>+344(SB)/8, $0xc05a000000000000
#define EMIN softmaxConsts<>+320(SB)
// EMAX: expSingleMax = 89
DATA softmaxConsts<>+352(SB)/8, $0x4056400000000000
DATA softmaxConsts<>+360(SB)/8, $0x4056400000000000
DATA softmaxConsts<>+368(SB)/8, $0x4056400000000000
DATA softmaxConsts<>+376(SB)/8, $0x4056400000000000
#define EMAX softmaxConsts<>+352(SB)
// EINF: +Inf
DATA softmaxConsts<>+384(SB)/8, $0x7ff0000000000000
DATA softmaxConsts<>+392(SB)/8, $0x7ff0000000000000
DATA softmaxConsts<>+400(SB)/8, $0x7ff0000000000000
DATA softmaxConsts<>+408(SB)/8, $0x7ff0000000000000
#define EINF softmaxConsts<>+384(SB)
// BIAS: 1023 (int64: the exponent bias)
DATA softmaxConsts<>+416(SB)/8, $0x00000000000003ff
DATA softmaxConsts<>+424(SB)/8, $0x00000000000003ff
DATA softmaxConsts<>+432(SB)/8, $0x00000000000003ff
DATA softmaxConsts<>+440(SB)/8, $0x00000000000003ff
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

// func expSumAVX2(dst, x []float32, m float64, store bool) float64
//
// Σ e^(x_j − m) in float64 over x (len(x) a multiple of 8), storing each
// term rounded to float32 in dst[j] if store is set. m must be at least
// every non-NaN x_j (the row's maximum, as softmaxRow passes), so that
// x_j − m ≤ 0 and EXPNEG4 applies. Eight elements per iteration, as two
// vectors of four float64 with separate accumulators.
TEXT ·expSumAVX2(SB), NOSPLIT, $0-72
	MOVQ         dst_base+0(FP), DI
	MOVQ         x_base+24(FP), SI
	MOVQ         x_len+32(FP), BX
	VBROADCASTSD m+48(FP), Y14
	MOVBLZX      store+56(FP), DX
	VXORPD       Y12, Y12, Y12      // accumulators
	VXORPD       Y13, Y13, Y13
	XORQ         CX, CX

expsumloop:
	CMPQ      CX, BX
	JGE       expsumdone
	VCVTPS2PD (SI)(CX*4), Y0
	VCVTPS2PD 16(SI)(CX*4), Y1
	VSUBPD    Y14, Y0, Y0           // z = x − m
	VSUBPD    Y14, Y1, Y1
	EXPNEG4(Y0, Y2, Y3, Y4, Y5)
	EXPNEG4(Y1, Y6, Y7, Y8, Y9)
	VADDPD    Y4, Y12, Y12
	VADDPD    Y8, Y13, Y13
	TESTQ     DX, DX
	JZ        expsumnext
	VCVTPD2PSY Y4, X4
	VCVTPD2PSY Y8, X8
	VMOVUPS   X4, (DI)(CX*4)
	VMOVUPS   X8, 16(DI)(CX*4)

expsumnext:
	ADDQ $8, CX
	JMP  expsumloop

expsumdone:
	VADDPD Y13, Y12, Y12
	HSUM(Y12, X12, X0)
	VMOVSD X12, ret+64(FP)
	VZEROUPPER
	RET

// func scaleAVX2(dst []float32, inv float64)
//
// dst_j = float32(float64(dst_j)·inv), len(dst) a multiple of 8: the same
// operations, so the same bits, as the scalar loop.
TEXT ·scaleAVX2(SB), NOSPLIT, $0-32
	MOVQ         dst_base+0(FP), DI
	MOVQ         dst_len+8(FP), BX
	VBROADCASTSD inv+24(FP), Y14
	XORQ         CX, CX

scaleloop:
	CMPQ       CX, BX
	JGE        scaledone
	VCVTPS2PD  (DI)(CX*4), Y0
	VCVTPS2PD  16(DI)(CX*4), Y1
	VMULPD     Y14, Y0, Y0
	VMULPD     Y14, Y1, Y1
	VCVTPD2PSY Y0, X0
	VCVTPD2PSY Y1, X1
	VMOVUPS    X0, (DI)(CX*4)
	VMOVUPS    X1, 16(DI)(CX*4)
	ADDQ       $8, CX
	JMP        scaleloop

scaledone:
	VZEROUPPER
	RET

// func logOutAVX2(dst, x []float32, m, lse float64)
//
// dst_j = float32((float64(x_j) − m) − lse), len(x) a multiple of 8: the
// scalar loop's operations.
TEXT ·logOutAVX2(SB), NOSPLIT, $0-64
	MOVQ         dst_base+0(FP), DI
	MOVQ         x_base+24(FP), SI
	MOVQ         x_len+32(FP), BX
	VBROADCASTSD m+48(FP), Y13
	VBROADCASTSD lse+56(FP), Y14
	XORQ         CX, CX

logoutloop:
	CMPQ       CX, BX
	JGE        logoutdone
	VCVTPS2PD  (SI)(CX*4), Y0
	VCVTPS2PD  16(SI)(CX*4), Y1
	VSUBPD     Y13, Y0, Y0
	VSUBPD     Y13, Y1, Y1
	VSUBPD     Y14, Y0, Y0
	VSUBPD     Y14, Y1, Y1
	VCVTPD2PSY Y0, X0
	VCVTPD2PSY Y1, X1
	VMOVUPS    X0, (DI)(CX*4)
	VMOVUPS    X1, 16(DI)(CX*4)
	ADDQ       $8, CX
	JMP        logoutloop

logoutdone:
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

// func gradOutAVX2(dst, y, dy []float32, s float64)
//
// dst_j = float32(float64(y_j)·(float64(dy_j) − s)), len(y) a multiple of
// 8: the scalar loop's operations.
TEXT ·gradOutAVX2(SB), NOSPLIT, $0-80
	MOVQ         dst_base+0(FP), DI
	MOVQ         y_base+24(FP), SI
	MOVQ         y_len+32(FP), BX
	MOVQ         dy_base+48(FP), DX
	VBROADCASTSD s+72(FP), Y14
	XORQ         CX, CX

gradoutloop:
	CMPQ       CX, BX
	JGE        gradoutdone
	VCVTPS2PD  (SI)(CX*4), Y0
	VCVTPS2PD  16(SI)(CX*4), Y1
	VCVTPS2PD  (DX)(CX*4), Y2
	VCVTPS2PD  16(DX)(CX*4), Y3
	VSUBPD     Y14, Y2, Y2
	VSUBPD     Y14, Y3, Y3
	VMULPD     Y2, Y0, Y0
	VMULPD     Y3, Y1, Y1
	VCVTPD2PSY Y0, X0
	VCVTPD2PSY Y1, X1
	VMOVUPS    X0, (DI)(CX*4)
	VMOVUPS    X1, 16(DI)(CX*4)
	ADDQ       $8, CX
	JMP        gradoutloop

gradoutdone:
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

// func logGradOutAVX2(dst, y, dy []float32, negTotal float64)
//
// dst_j = float32(dy_j − e^(y_j)·total), len(y) a multiple of 8, as
// e^(y_j)·negTotal + dy_j in one FMA (as logGradOut32 in softmax_simd.go).
TEXT ·logGradOutAVX2(SB), NOSPLIT, $0-80
	MOVQ         dst_base+0(FP), DI
	MOVQ         y_base+24(FP), SI
	MOVQ         y_len+32(FP), BX
	MOVQ         dy_base+48(FP), DX
	VBROADCASTSD negTotal+72(FP), Y14
	XORQ         CX, CX

loggradloop:
	CMPQ        CX, BX
	JGE         loggraddone
	VCVTPS2PD   (SI)(CX*4), Y0
	VCVTPS2PD   16(SI)(CX*4), Y1
	EXP4(Y0, Y2, Y3, Y4, Y5)
	EXP4(Y1, Y6, Y7, Y8, Y9)
	VCVTPS2PD   (DX)(CX*4), Y10
	VCVTPS2PD   16(DX)(CX*4), Y11
	VFMADD213PD Y10, Y14, Y4        // Y4 = Y4·negTotal + dy
	VFMADD213PD Y11, Y14, Y8
	VCVTPD2PSY  Y4, X4
	VCVTPD2PSY  Y8, X8
	VMOVUPS     X4, (DI)(CX*4)
	VMOVUPS     X8, 16(DI)(CX*4)
	ADDQ        $8, CX
	JMP         loggradloop

loggraddone:
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
