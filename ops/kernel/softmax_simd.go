//go:build goexperiment.simd && amd64

package kernel

import (
	"math"
	"simd/archsimd"
)

// The vector routines of the float32 softmax row helpers of softmax.go,
// with AVX-512. As in the default build's AVX2 assembly (softmax_amd64.go,
// which gives the account of the method and its accuracy), the passes that
// dominate the time compute in float32 lanes, sixteen per vector: the exp
// of x − m split exactly into two floats (expDiff16: expParts16's
// polynomial, the activations' exp), and the scaling, log-softmax output
// and gradients with the float64 scalars split into two float32s
// (split32). Every sum is float64: max, dot and Σdy widen float32 elements
// to a Float64x8, and the exps' sum widens the float32 terms. Unlike AVX2,
// AVX-512 applies 2^n with VSCALEFPS, which rounds results near underflow
// once, so only log-softmax gradient blocks with a y > 0 need the float64
// code; and the exps are summed without a float32 pairwise step. The
// strided kernels' exp (expVec) stays in float64 lanes (exp8).
//
// Every function clears the vector registers' upper bits (VZEROUPPER)
// before returning: Go's scalar float code is SSE, which runs slowly after
// AVX-512 code that leaves them dirty.
//
// The routines run on an AVX-512 CPU only (vecLevel); with AVX2 alone they
// handle nothing and softmax takes the scalar code in this build (the
// default build has AVX2 assembly, softmax_amd64.go). No vector value is
// built at package initialisation, which would fault on a CPU without
// AVX-512.

// expConsts holds exp8's constants as vectors, built once per call of the
// function that loops over exp8.
type expConsts struct {
	log2e, negLn2, min, max, zero, one, inf archsimd.Float64x8    // zero is the zero value
	taylor                                  [6]archsimd.Float64x8 // 1/7!, 1/6!, …, 1/2!
}

func newExpConsts() expConsts {
	b := archsimd.BroadcastFloat64x8
	return expConsts{
		log2e: b(math.Log2E), negLn2: b(-math.Ln2),
		min: b(expSingleMin), max: b(expSingleMax),
		one: b(1), inf: b(math.Inf(1)),
		taylor: [6]archsimd.Float64x8{b(1.0 / 5040), b(1.0 / 720), b(1.0 / 120), b(1.0 / 24), b(1.0 / 6), b(1.0 / 2)},
	}
}

// exp8 sets each lane to e^z to float32 accuracy, like expSingle but
// without its table (a gather costs more than it saves): z = k·ln2 + r with
// |r| ≤ ln2/2, e^r from its degree-7 Taylor polynomial (truncation error
// |r|^8/8! ≤ 5.2e-9; measured relative error 7.0e-9, see TestExp), and
// 2^k applied by VSCALEFPD. Special cases as for expSingle.
func exp8(z archsimd.Float64x8, c *expConsts) archsimd.Float64x8 {
	k := z.Mul(c.log2e).RoundToEvenScaled(0)
	r := k.MulAdd(c.negLn2, z) // z − k·ln2, rounded once
	p := c.taylor[0].MulAdd(r, c.taylor[1])
	p = p.MulAdd(r, c.taylor[2])
	p = p.MulAdd(r, c.taylor[3])
	p = p.MulAdd(r, c.taylor[4])
	p = p.MulAdd(r, c.taylor[5])
	p = p.MulAdd(r, c.one)
	p = p.MulAdd(r, c.one)
	e := p.Scale(k)
	e = c.zero.Merge(e, z.Less(c.min)) // −Inf gives 0, not NaN
	return c.inf.Merge(e, z.Greater(c.max))
}

// full8 returns x[i:i+8], which must lie inside x, widened to float64.
func full8(x []float32, i int) archsimd.Float64x8 {
	return archsimd.LoadFloat32x8Slice(x[i:]).ConvertToFloat64()
}

// load8 returns x[i:i+8] widened to float64; past the end of x, lanes
// are 0. (A tail goes through a local array rather than
// LoadFloat32x8SlicePart, which trips the race detector's pointer checks
// on a slice shorter than 8 at the end of an allocation.)
func load8(x []float32, i int) archsimd.Float64x8 {
	if len(x)-i >= 8 {
		return archsimd.LoadFloat32x8Slice(x[i:]).ConvertToFloat64()
	}
	var b [8]float32
	copy(b[:], x[i:])
	return archsimd.LoadFloat32x8(&b).ConvertToFloat64()
}

// hsum returns the sum of v's lanes.
func hsum(v archsimd.Float64x8) float64 {
	var l [8]float64
	v.Store(&l)
	return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]))
}

// The loops below run whole vectors (full8 and StoreSlice: the main loops
// carry no length tests or masks, which slow them). Those whose results are
// exps, and the float64 sums, then run one part vector for the tail (a
// padded copy, or load8), so that every element goes through the same
// arithmetic wherever it lies; the others leave the tail to the caller.

func maxVec(x []float32) (int, float32) {
	if vecLevel < vecAVX512 {
		return 0, float32(math.Inf(-1))
	}
	m0 := archsimd.BroadcastFloat32x16(float32(math.Inf(-1)))
	m1 := m0
	i := 0
	for ; i+32 <= len(x); i += 32 {
		m0 = m0.Max(archsimd.LoadFloat32x16Slice(x[i:]))
		m1 = m1.Max(archsimd.LoadFloat32x16Slice(x[i+16:]))
	}
	var l [16]float32
	m0.Max(m1).Store(&l)
	archsimd.ClearAVXUpperBits()
	// VMAXPS returns one of its operands when either is NaN, so a lane may
	// hold NaN or have skipped it; both are fine (see softmaxRow), and the
	// reduction below skips NaN lanes.
	m := float32(math.Inf(-1))
	for _, v := range l {
		if v > m {
			m = v
		}
	}
	return i, m
}

func expSumVec(dst, x []float32, m float64, store bool) (int, float64) {
	if vecLevel < vecAVX512 {
		return 0, 0
	}
	k := newVconsts16()
	mv := bcast16(float32(m)) // the row's maximum: a float32
	var a0, a1 archsimd.Float64x8
	i := 0
	for ; i+16 <= len(x); i += 16 {
		e := expDiff16(archsimd.LoadFloat32x16Slice(x[i:]), mv, &k)
		if store {
			e.StoreSlice(dst[i:])
		}
		a0 = a0.Add(e.GetLo().ConvertToFloat64())
		a1 = a1.Add(e.GetHi().ConvertToFloat64())
	}
	if i < len(x) {
		// The tail padded with −Inf, whose terms are exactly 0.
		var b [16]float32
		for j := range b {
			b[j] = float32(math.Inf(-1))
		}
		copy(b[:], x[i:])
		e := expDiff16(archsimd.LoadFloat32x16(&b), mv, &k)
		e.Store(&b)
		if store {
			copy(dst[i:], b[:])
		}
		a0 = a0.Add(e.GetLo().ConvertToFloat64())
		a1 = a1.Add(e.GetHi().ConvertToFloat64())
	}
	s := hsum(a0.Add(a1))
	archsimd.ClearAVXUpperBits()
	return len(x), s
}

// expDiff16 returns e^(x − m) for x ≤ m (or NaN) in float32 lanes:
// x − m split exactly into d + e (TwoSum), then expParts16 and VSCALEFPS,
// which rounds results near underflow once. d below −150 (−Inf among
// them), whose exps round to 0, is clamped there with e = 0.
func expDiff16(x, m f32x16, k *vconsts16) f32x16 {
	lo := bcast16(-150)
	d := x.Sub(m)
	bb := d.Sub(x)
	e := x.Sub(d.Sub(bb)).Sub(m.Add(bb))
	below := d.Less(lo)
	p, n := expParts16(lo.Merge(d, below), f32x16{}.Merge(e, below), k)
	return scale16(p, n)
}

func scaleVec(dst []float32, inv twoFloat) int {
	if vecLevel < vecAVX512 {
		return 0
	}
	h, l := bcast16(inv.hi), bcast16(inv.lo)
	i := 0
	for ; i+16 <= len(dst); i += 16 {
		scaleTwoFloat16(archsimd.LoadFloat32x16Slice(dst[i:]), h, l).StoreSlice(dst[i:])
	}
	archsimd.ClearAVXUpperBits()
	return i
}

// scaleTwoFloat16 returns e·(h + l) rounded about once: p = e·h, plus its
// rounding error (exact in an FMA) and e·l. e must be finite.
func scaleTwoFloat16(e, h, l f32x16) f32x16 {
	p := e.Mul(h)
	err := e.MulAdd(h, f32x16{}.Sub(p))
	return p.Add(e.MulAdd(l, err))
}

func logOutVec(dst, x []float32, m float64, lse twoFloat) int {
	if vecLevel < vecAVX512 {
		return 0
	}
	mv, h, l := bcast16(float32(m)), bcast16(lse.hi), bcast16(lse.lo) // m is a float32
	i := 0
	for ; i+16 <= len(x); i += 16 {
		archsimd.LoadFloat32x16Slice(x[i:]).Sub(mv).Sub(h).Sub(l).StoreSlice(dst[i:])
	}
	archsimd.ClearAVXUpperBits()
	return i
}

func dotVec(y, dy []float32) (int, float64) {
	if vecLevel < vecAVX512 {
		return 0, 0
	}
	var a0, a1 archsimd.Float64x8 // zero (VPXORQ)
	i := 0
	for ; i+16 <= len(y); i += 16 {
		a0 = full8(y, i).MulAdd(full8(dy, i), a0)
		a1 = full8(y, i+8).MulAdd(full8(dy, i+8), a1)
	}
	for ; i < len(y); i += 8 {
		a0 = load8(y, i).MulAdd(load8(dy, i), a0) // zero lanes past the end
	}
	s := hsum(a0.Add(a1))
	archsimd.ClearAVXUpperBits()
	return len(y), s
}

func gradOutVec(dst, y, dy []float32, s twoFloat) int {
	if vecLevel < vecAVX512 {
		return 0
	}
	h, l := bcast16(s.hi), bcast16(s.lo)
	i := 0
	for ; i+16 <= len(y); i += 16 {
		d := archsimd.LoadFloat32x16Slice(dy[i:]).Sub(h).Sub(l)
		d.Mul(archsimd.LoadFloat32x16Slice(y[i:])).StoreSlice(dst[i:])
	}
	archsimd.ClearAVXUpperBits()
	return i
}

func sumVec(x []float32) (int, float64) {
	if vecLevel < vecAVX512 {
		return 0, 0
	}
	var a0, a1 archsimd.Float64x8 // zero (VPXORQ)
	i := 0
	for ; i+16 <= len(x); i += 16 {
		a0 = a0.Add(full8(x, i))
		a1 = a1.Add(full8(x, i+8))
	}
	for ; i < len(x); i += 8 {
		a0 = a0.Add(load8(x, i)) // zero lanes past the end
	}
	s := hsum(a0.Add(a1))
	archsimd.ClearAVXUpperBits()
	return len(x), s
}

func logGradOutVec(dst, y, dy []float32, negTotal twoFloat) int {
	if vecLevel < vecAVX512 {
		return 0
	}
	k, c := newVconsts16(), newExpConsts()
	h, l, nt := bcast16(negTotal.hi), bcast16(negTotal.lo), archsimd.BroadcastFloat64x8(negTotal.v)
	i := 0
	for ; i+16 <= len(y); i += 16 {
		logGradBlock16(dst[i:i+16], y[i:i+16], dy[i:i+16], h, l, nt, &k, &c)
	}
	if i < len(y) {
		var by, bd, out [16]float32
		copy(by[:], y[i:])
		copy(bd[:], dy[i:])
		logGradBlock16(out[:], by[:], bd[:], h, l, nt, &k, &c)
		copy(dst[i:], out[:])
	}
	archsimd.ClearAVXUpperBits()
	return len(y)
}

// logGradBlock16 sets dst = dy − e^y·total for 16 elements, −total being
// h + l as float32s and nt as float64. Log-probabilities are ≤ 0, where
// e^y ≤ 1: e^y by expParts16 and VSCALEFPS on y clamped below at −150
// (whose exp rounds to 0; the clamp is a merge on a comparison, false for
// NaN, so NaN stays NaN), then e^y·h + dy and e^y·l added, in two FMAs. A
// block with a y > 0 is computed in float64 lanes instead (exp8, then
// e^y·nt + dy in one FMA), as the scalar code does, whose e^y is finite up
// to y = 89 where float32's overflows from 88.7.
func logGradBlock16(dst, y, dy []float32, h, l f32x16, nt archsimd.Float64x8, k *vconsts16, c *expConsts) {
	yv := archsimd.LoadFloat32x16Slice(y)
	if yv.Greater(f32x16{}).ToBits() != 0 {
		for j := 0; j < 16; j += 8 {
			exp8(full8(y, j), c).MulAdd(nt, full8(dy, j)).ConvertToFloat32().StoreSlice(dst[j:])
		}
		return
	}
	lo := bcast16(-150)
	p, n := expParts16(lo.Merge(yv, yv.Less(lo)), f32x16{}, k)
	e := scale16(p, n)
	e.MulAdd(l, e.MulAdd(h, archsimd.LoadFloat32x16Slice(dy))).StoreSlice(dst)
}

// expVec is expInPlace's vector routine, for the strided kernels: e^z in
// float64 lanes (exp8).
func expVec(z []float64) int {
	if vecLevel < vecAVX512 {
		return 0
	}
	c := newExpConsts()
	i := 0
	for ; i+8 <= len(z); i += 8 {
		exp8(archsimd.LoadFloat64x8Slice(z[i:]), &c).StoreSlice(z[i:])
	}
	if i < len(z) {
		var b [8]float64
		copy(b[:], z[i:])
		exp8(archsimd.LoadFloat64x8(&b), &c).Store(&b)
		copy(z[i:], b[:])
	}
	archsimd.ClearAVXUpperBits()
	return len(z)
}
