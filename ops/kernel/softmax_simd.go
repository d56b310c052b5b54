//go:build goexperiment.simd && amd64

package kernel

import (
	"math"
	"simd/archsimd"
)

// Vector twins of the float32 row helpers of softmax.go, with AVX-512:
// eight float32 elements are widened to a Float64x8, so the arithmetic is
// in float64 as in the scalar code and the results agree with it to within
// 1 float32 ULP (the exps differ in method; see exp8). The default build
// (no GOEXPERIMENT) has the same helpers in AVX2+FMA assembly
// (softmax_amd64.s: four float64 lanes, exp8's method and bits).
//
// Every function clears the vector registers' upper bits (VZEROUPPER)
// before returning: Go's scalar float code is SSE, which otherwise runs
// about four times slower after AVX-512 code on this machine (measured:
// the scalar exp took 17 ns instead of 4 ns per element).
//
// No vector value is built at package initialisation, which would fault on
// a CPU without AVX-512: the vector code runs only when vecSoftmax() is
// true.

// vecSoftmax reports whether the float32 row helpers take their vector
// twins: on an AVX-512 CPU (vecLevel, fast32.go). With AVX2 only, softmax
// takes the scalar code in this build (the default build has AVX2
// assembly, softmax_amd64.go).
func vecSoftmax() bool { return vecLevel == vecAVX512 }

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

// store8 rounds v to float32 into dst[i:i+8], or as much of it as there is.
func store8(dst []float32, i int, v archsimd.Float64x8) {
	if len(dst)-i >= 8 {
		v.ConvertToFloat32().StoreSlice(dst[i:])
		return
	}
	var b [8]float32
	v.ConvertToFloat32().Store(&b)
	copy(dst[i:], b[:])
}

// lanes returns the mask of the lanes of a vector starting at i that lie
// inside a slice of n elements.
func lanes(i, n int) archsimd.Mask64x8 {
	if n-i >= 8 {
		return archsimd.Mask64x8FromBits(0xff)
	}
	return archsimd.Mask64x8FromBits(uint8(1)<<(n-i) - 1)
}

// hsum returns the sum of v's lanes.
func hsum(v archsimd.Float64x8) float64 {
	var l [8]float64
	v.Store(&l)
	return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]))
}

// The loops below run whole vectors (full8 and StoreSlice: the main loops
// carry no length tests or masks, which measurably slowed them) and then
// one part vector for the tail (load8, store8, lanes), so every element
// goes through the same arithmetic wherever it lies.

func max32(x []float32) float32 {
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
	// scalar reduction below skips NaN lanes. The maximum is exact, so the
	// scalar tail changes nothing.
	m := float32(math.Inf(-1))
	for _, v := range l {
		if v > m {
			m = v
		}
	}
	for _, v := range x[i:] {
		if v > m {
			m = v
		}
	}
	return m
}

func expSum32(dst, x []float32, m float64, store bool) float64 {
	c := newExpConsts()
	mv := archsimd.BroadcastFloat64x8(m)
	acc := c.zero
	i := 0
	for ; i+8 <= len(x); i += 8 {
		e := exp8(full8(x, i).Sub(mv), &c)
		if store {
			e.ConvertToFloat32().StoreSlice(dst[i:])
		}
		acc = acc.Add(e)
	}
	if i < len(x) {
		e := exp8(load8(x, i).Sub(mv), &c)
		if store {
			store8(dst, i, e)
		}
		acc = acc.Add(e.Masked(lanes(i, len(x))))
	}
	s := hsum(acc)
	archsimd.ClearAVXUpperBits()
	return s
}

func scale32(dst []float32, inv float64) {
	iv := archsimd.BroadcastFloat64x8(inv)
	i := 0
	for ; i+8 <= len(dst); i += 8 {
		full8(dst, i).Mul(iv).ConvertToFloat32().StoreSlice(dst[i:])
	}
	if i < len(dst) {
		store8(dst, i, load8(dst, i).Mul(iv))
	}
	archsimd.ClearAVXUpperBits()
}

func logOut32(dst, x []float32, m, lse float64) {
	mv, lv := archsimd.BroadcastFloat64x8(m), archsimd.BroadcastFloat64x8(lse)
	i := 0
	for ; i+8 <= len(x); i += 8 {
		full8(x, i).Sub(mv).Sub(lv).ConvertToFloat32().StoreSlice(dst[i:])
	}
	if i < len(x) {
		store8(dst, i, load8(x, i).Sub(mv).Sub(lv))
	}
	archsimd.ClearAVXUpperBits()
}

func dot32(y, dy []float32) float64 {
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
	return s
}

func gradOut32(dst, y, dy []float32, s float64) {
	sv := archsimd.BroadcastFloat64x8(s)
	i := 0
	for ; i+8 <= len(y); i += 8 {
		full8(y, i).Mul(full8(dy, i).Sub(sv)).ConvertToFloat32().StoreSlice(dst[i:])
	}
	if i < len(y) {
		store8(dst, i, load8(y, i).Mul(load8(dy, i).Sub(sv)))
	}
	archsimd.ClearAVXUpperBits()
}

func sum32(x []float32) float64 {
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
	return s
}

func logGradOut32(dst, y, dy []float32, total float64) {
	c := newExpConsts()
	nt := archsimd.BroadcastFloat64x8(-total)
	i := 0
	for ; i+8 <= len(y); i += 8 {
		exp8(full8(y, i), &c).MulAdd(nt, full8(dy, i)).ConvertToFloat32().StoreSlice(dst[i:])
	}
	if i < len(y) {
		store8(dst, i, exp8(load8(y, i), &c).MulAdd(nt, load8(dy, i)))
	}
	archsimd.ClearAVXUpperBits()
}

func expVec(z []float64) {
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
}
