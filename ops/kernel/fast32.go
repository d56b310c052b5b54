package kernel

// simd_avx2_amd64.go is simd_amd64.go's vector code rewritten for 8 lanes;
// activation_amd64.s (with its stubs and constant table) is the same code in
// assembly for the default build, written by the repository's avo program,
// internal/asmgen (a module of its own, so that actq does not depend on avo).
//go:generate go run gen_avx2.go -lanes 8
//go:generate go run -C ../../internal/asmgen . ops/kernel

import (
	"math"
	"unsafe"
)

// Fast float32 kernels.
//
// Float32 GELU, GELUTanh and SiLU (forward and backward) do not call the
// math package. They share two branch-free approximations, fitted by
// scripts/fit/fit_kernels.py for minimax relative error against mpmath:
//
//	e^a     = 2^n·e^r, n = round(a/ln2), r = a − n·ln2, |r| ≤ ln2/2,
//	          e^r ≈ 1 + r + r²·(c2 + c3·r + … + c6·r⁴)  (rel. error 3.9e-9)
//	erfc(z) = e^(−z²)·erfcx(z), erfcx(z) ≈ t·(1 + u·S(u)), t = 1/(1+z/2),
//	          u = 1−t = t·z/2, S of degree 9, 0 ≤ z ≤ 10.5  (rel. error 4.2e-9)
//
// GELU is x·Φ(x) with Φ(−a) = ½·erfc(a/√2) = ½·t·(1+u·S(u))·e^(−a²/2),
// a = |x|, so the negative tail keeps its relative accuracy down to
// underflow (no 1+erf cancellation); GELU′ = Φ(x) + x·φ(x) reuses the same
// e^(−x²/2). SiLU and GELUTanh are x·σ(z) with σ(z) = 1/(1+e^(−z)),
// z = x or z = 2u(x); σ(±|z|) and σ(∓|z|) come from one e^(−|z|) without
// cancellation (see sigmoidPair).
//
// There are two implementations of the same formulas:
//   - the portable one (this file) evaluates them in float64 scalar code
//     (which costs the same as float32 scalar code) and rounds once;
//   - the vector one (simd_amd64.go, built with GOEXPERIMENT=simd on a CPU
//     with AVX-512, or simd_avx2_amd64.go with AVX2 and FMA; in the default
//     build on amd64, the assembly of activation_amd64.s, generated from
//     simd_avx2_amd64.go's code and giving its bits) evaluates them
//     in float32 with fused multiply-adds, 16 (8) lanes at a time, with
//     x²/2 and GELUTanh's 2u split into two floats so that e^(−|z|) stays
//     accurate, and the power of two applied last (VSCALEFPS) so that
//     results near underflow are rounded once (with AVX2, two power-of-two
//     multiplications, which can round twice only below 2⁻¹²⁶).
//
// Their errors, measured over the float32 inputs in the range where the
// function is not trivially x or ±0 (TestFastKernelErrors samples them;
// with -exhaustive it checks every one with |x| ≥ 2⁻¹²), are given in each
// kernel's doc comment and in bench/RESULTS.md. The portable and vector
// paths are not bit-identical to each other; AVX2 and AVX-512 give the same
// bits (TestVectorPathsAgree; only subnormal results could differ).

// Coefficients from scripts/fit/fit_kernels.py.
const (
	expC2 = 0.49999998140880836
	expC3 = 0.1666651494506608
	expC4 = 0.04166725095166868
	expC5 = 0.008369405399124195
	expC6 = 0.001387941064919341

	// erfcxP is p in t = 1/(1+p·z); with z = a/√2 the kernels use
	// p·z = a·erfcxPOverSqrt2.
	erfcxP          = 0.5
	erfcxPOverSqrt2 = erfcxP * sqrt1_2

	erfcxS0 = -1.2567589491775086
	erfcxS1 = 0.486516239418858
	erfcxS2 = 0.21108859338886676
	erfcxS3 = -0.09342894275419136
	erfcxS4 = -0.12309859017465316
	erfcxS5 = 0.09103267277375565
	erfcxS6 = -0.1710301966516474
	erfcxS7 = 0.26674507850255735
	erfcxS8 = -0.164245205277386
	erfcxS9 = 0.03526789397786162

	log2e = 1.44269504088896340735992468100189213742664595415299 // https://oeis.org/A007525
	ln2   = 0.69314718055994530941723212145817656807550013436026 // https://oeis.org/A002162

	// expShift is 1.5·2⁵²: adding it to a float64 of magnitude below 2⁵¹
	// rounds it to an integer (ties to even) held in the low mantissa bits,
	// so that the exps need neither a rounding instruction nor a
	// float-to-int conversion.
	expShift = 0x1.8p52
)

// Two-float constants of the vector kernels (simd_amd64.go and the
// assembly of activation_amd64.s).

// ln2Hi32 + ln2Lo32 = ln 2 to about 2⁻⁴⁸; ln2Hi32 is ln 2 rounded to float32.
const (
	ln2Hi32 = float32(ln2)
	ln2Lo32 = float32(ln2 - float64(ln2Hi32))
)

// The GELUTanh constants as float32 pairs, hi + lo.
const (
	geluTanhK0h = float32(geluTanhK0)
	geluTanhK0l = float32(geluTanhK0 - float64(geluTanhK0h))
	geluTanhK1h = float32(geluTanhK1)
	geluTanhK1l = float32(geluTanhK1 - float64(geluTanhK1h))
)

// is32 reports whether T is float32 or a type defined on it; the other
// Float types are float64-based.
func is32[T Float]() bool {
	var z T
	return unsafe.Sizeof(z) == 4
}

// as32 returns s as a []float32 sharing its memory if is32[T](), and nil
// otherwise.
func as32[T Float](s []T) []float32 {
	if !is32[T]() {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(s))), len(s))
}

// block is the number of elements the portable kernels carry through each
// stage at a time. Staging (convert, exponentials, erfcx, combine) keeps
// each loop's dependency chains short, so iterations overlap; one fused
// loop per element would be serialised by the false dependency of CVTSS2SD
// on its destination register.
const block = 64

// expBlock sets v[i] = e^v[i] with a relative error below 4e-9 for v[i] in
// [−700, 700]; v[i] is clamped to that range, so it never gives 0 or +Inf,
// and NaN gives NaN. It has no branches.
func expBlock(v []float64) {
	for i, a := range v {
		a = min(max(a, -700), 700)
		k := a*log2e + expShift
		n := k - expShift
		r := a - n*ln2 // error below 2⁻⁵³·700: irrelevant at float32 precision
		r2 := r * r
		p := (expC2 + r*expC3) + r2*((expC4+r*expC5)+r2*expC6)
		p = (1 + r) + r2*p
		// The low 12 bits of k's representation hold n mod 4096.
		v[i] = p * math.Float64frombits((math.Float64bits(k)+1023)<<52)
	}
}

// halfErfcxBlock sets h[i] = ½·erfcx(a[i]/√2) for a[i] ≥ 0, so that
// Φ(−a) = h·e^(−a²/2).
func halfErfcxBlock(h, a []float64) {
	for i, a := range a[:len(h)] {
		pz := a * erfcxPOverSqrt2
		t := 1 / (1 + pz)
		u := pz * t
		// S(u) by Estrin's scheme: a shorter dependency chain than Horner's.
		u2 := u * u
		u4 := u2 * u2
		s := (erfcxS0 + u*erfcxS1) + u2*(erfcxS2+u*erfcxS3) +
			u4*((erfcxS4+u*erfcxS5)+u2*(erfcxS6+u*erfcxS7)) +
			u4*u4*(erfcxS8+u*erfcxS9)
		h[i] = 0.5 * t * (1 + u*s)
	}
}

// geluClamp bounds |x| in the GELU kernels: Φ(−20)·20 underflows float64's
// float32-relevant range (it is about 10⁻⁸⁸), so GELU(x) rounds to x or −0
// beyond it, and ±Inf need no special case.
const geluClamp = 20

// negZero is −0 (a constant expression cannot be −0 in Go).
var negZero = math.Copysign(0, -1)

func gelu32(dst, x []float32) {
	var v, a, e, h [block]float64
	for i := geluVec(dst, x); i < len(x); i += block {
		n := min(block, len(x)-i)
		for j, xj := range x[i : i+n] {
			v[j] = float64(xj)
			a[j] = min(math.Abs(v[j]), geluClamp) // NaN stays NaN
			e[j] = -0.5 * a[j] * a[j]
		}
		expBlock(e[:n])
		halfErfcxBlock(h[:n], a[:n])
		for j := range dst[i : i+n] {
			// x ≥ 0: x − x·Φ(−x) = x·Φ(x); x < 0: −|x|·Φ(x). max keeps −0.
			dst[i+j] = float32(max(v[j], negZero) - a[j]*h[j]*e[j])
		}
	}
}

func geluGrad32(dst, x, dy []float32) {
	var v, a, e, h [block]float64
	for i := geluGradVec(dst, x, dy); i < len(x); i += block {
		n := min(block, len(x)-i)
		for j, xj := range x[i : i+n] {
			v[j] = float64(xj)
			a[j] = min(math.Abs(v[j]), geluClamp)
			e[j] = -0.5 * a[j] * a[j]
		}
		expBlock(e[:n])
		halfErfcxBlock(h[:n], a[:n])
		for j := range dst[i : i+n] {
			// Φ(x) = step − sgn·h·e, x·φ(x) = sgn·a·e/√(2π), step = 1 for
			// x ≥ +0, 0 for x ≤ −0 (both give GELU′(±0) = ½).
			sgn := math.Copysign(1, v[j])
			step := 0.5 + 0.5*sgn
			d := step + sgn*e[j]*(a[j]*invSqrt2Pi-h[j])
			dst[i+j] = float32(float64(dy[i+j]) * d)
		}
	}
}

// siluClamp bounds x in the SiLU kernels: SiLU(−200) = −200·e^(−200)
// rounds to −0 in float32, SiLU′(±200) to 1 and 0.
const siluClamp = 200

func silu32(dst, x []float32) {
	var v, e [block]float64
	for i := siluVec(dst, x); i < len(x); i += block {
		n := min(block, len(x)-i)
		for j, xj := range x[i : i+n] {
			v[j] = max(float64(xj), -siluClamp) // +Inf stays: e^(−Inf) is clamped
			e[j] = -v[j]
		}
		expBlock(e[:n])
		for j := range dst[i : i+n] {
			dst[i+j] = float32(v[j] / (1 + e[j]))
		}
	}
}

func siluGrad32(dst, x, dy []float32) {
	var v, e [block]float64
	for i := siluGradVec(dst, x, dy); i < len(x); i += block {
		n := min(block, len(x)-i)
		for j, xj := range x[i : i+n] {
			v[j] = min(max(float64(xj), -siluClamp), siluClamp)
			e[j] = -v[j]
		}
		expBlock(e[:n])
		for j := range dst[i : i+n] {
			// σ + x·σ·(1−σ), 1−σ = e·σ: no cancellation.
			s := 1 / (1 + e[j])
			dst[i+j] = float32(float64(dy[i+j]) * (s * (1 + v[j]*e[j]*s)))
		}
	}
}

// geluTanhClamp bounds x in the GELUTanh kernels: 2u(−50) ≈ −9000, far
// past underflow.
const geluTanhClamp = 50

// geluTanh constants: z = 2u = x·(k0 + k1·x²), dz/dx = k0 + 3·k1·x².
const (
	geluTanhK0 = 2 * sqrt2OverPi
	geluTanhK1 = 2 * sqrt2OverPi * geluTanhCubic
)

func geluTanh32(dst, x []float32) {
	var v, e [block]float64
	for i := geluTanhVec(dst, x); i < len(x); i += block {
		n := min(block, len(x)-i)
		for j, xj := range x[i : i+n] {
			v[j] = max(float64(xj), -geluTanhClamp)
			e[j] = -v[j] * (geluTanhK0 + geluTanhK1*v[j]*v[j])
		}
		expBlock(e[:n])
		for j := range dst[i : i+n] {
			dst[i+j] = float32(v[j] / (1 + e[j]))
		}
	}
}

func geluTanhGrad32(dst, x, dy []float32) {
	var v, e [block]float64
	for i := geluTanhGradVec(dst, x, dy); i < len(x); i += block {
		n := min(block, len(x)-i)
		for j, xj := range x[i : i+n] {
			v[j] = min(max(float64(xj), -geluTanhClamp), geluTanhClamp)
			e[j] = -v[j] * (geluTanhK0 + geluTanhK1*v[j]*v[j])
		}
		expBlock(e[:n])
		for j := range dst[i : i+n] {
			// σ(z) + x·σ(z)·σ(−z)·z′, σ(−z) = e·σ(z).
			s := 1 / (1 + e[j])
			dz := geluTanhK0 + 3*geluTanhK1*v[j]*v[j]
			dst[i+j] = float32(float64(dy[i+j]) * (s * (1 + v[j]*e[j]*s*dz)))
		}
	}
}

// Vector paths.
//
// Every float32 kernel with vector code calls a vector routine (geluVec,
// maxVec, expSumVec, …) that returns the number of leading elements it
// handled, and finishes the rest with its portable code; a reduction's
// routine also returns its result over those elements (the identity, −Inf
// for a maximum and 0 for a sum, when it handled none). A routine handles
// all the elements, or its whole vectors, or none: none on a CPU without
// the instructions it needs (vecLevel) and in a build without vector code,
// where it is a stub (vec_other.go). The default build on amd64 has AVX2
// assembly (vec_asm_amd64.go, softmax_amd64.go), GOEXPERIMENT=simd builds
// simd/archsimd code (simd_amd64.go, softmax_simd.go). The routines take
// float32 only: a generic kernel calls them when is32[T]() and passes its
// slices through as32.

// vecISA is a vector path of the float32 kernels.
type vecISA int

const (
	vecNone   vecISA = iota // portable Go
	vecAVX2                 // 8 lanes, AVX2 and FMA (simd_avx2_amd64.go, or activation_amd64.s)
	vecAVX512               // 16 lanes, AVX-512 (simd_amd64.go)
)

// VectorISA names the instruction set the float32 kernels run on in this
// build and on this CPU, and how: AVX2+FMA assembly in the default build on
// amd64 (without the purego tag), AVX-512 or AVX2 with simd/archsimd when
// built with GOEXPERIMENT=simd, on CPUs with those instructions. It returns
// "" where they run the portable Go path.
func VectorISA() string {
	switch vecLevel {
	case vecAVX2:
		return "AVX2+FMA (" + vecImpl + ", 8 lanes)"
	case vecAVX512:
		return "AVX-512 (simd/archsimd, 16 lanes)"
	}
	return ""
}
