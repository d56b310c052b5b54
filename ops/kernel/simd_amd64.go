//go:build goexperiment.simd && amd64

package kernel

import "simd/archsimd"

// Vector float32 kernels: the formulas of fast32.go in float32, 16 lanes
// at a time with AVX-512 (archsimd.Float32x16), or 8 with AVX2 and FMA
// (simd_avx2_amd64.go, generated from the code below). Each returns the
// number of leading elements it handled: all of them when the CPU has
// either, else 0, and the caller's portable loop does the rest.
//
// Each kernel is one loop over whole vectors (gelu16 …), with its
// arithmetic written in the loop body rather than in a per-vector function
// that the compiler would not inline (a call per vector spills the loop's
// registers). A last partial vector goes through a zero-padded copy and the
// same loop, rather than archsimd's masked
// LoadFloat32x16SlicePart, which trips the race detector's checkptr; the
// copy also keeps every element on the same code, so results do not depend
// on an element's position.
//
// Zero is written f32x16{} (VPXORQ), never bcast16(0): the compiler makes
// the latter with a legacy-SSE XORPS, which keeps the register's upper bits
// and so waits for the last instruction that wrote it — often the previous
// vector's polynomial — and serialises the loop.
//
// Special values need no branches: |x| is clamped before it reaches the
// exponential, the x < 0 and x ≥ 0 formulas are blended with a lane mask,
// and NaN lanes are restored from x at the end (the order of operands in
// MIN/MAX decides whether they keep a NaN, so the kernels do not rely on it).

// vecImpl names how this build implements the vector paths (VectorISA).
const vecImpl = "simd/archsimd"

// vecLevel is the vector path the kernels take: the widest the CPU has.
// Tests lower it to check the narrower paths and the portable one on the
// same machine; nothing else changes it.
var vecLevel = bestVecLevel()

func bestVecLevel() vecISA {
	switch {
	case archsimd.X86.AVX512():
		return vecAVX512
	case archsimd.X86.AVX2() && archsimd.X86.FMA():
		return vecAVX2
	}
	return vecNone
}

// The entry points called by the portable kernels pick a width.

func geluVec(dst, x []float32) int {
	switch vecLevel {
	case vecAVX512:
		return geluVec16(dst, x)
	case vecAVX2:
		return geluVec8(dst, x)
	}
	return 0
}

func geluGradVec(dst, x, dy []float32) int {
	switch vecLevel {
	case vecAVX512:
		return geluGradVec16(dst, x, dy)
	case vecAVX2:
		return geluGradVec8(dst, x, dy)
	}
	return 0
}

func siluVec(dst, x []float32) int {
	switch vecLevel {
	case vecAVX512:
		return siluVec16(dst, x)
	case vecAVX2:
		return siluVec8(dst, x)
	}
	return 0
}

func siluGradVec(dst, x, dy []float32) int {
	switch vecLevel {
	case vecAVX512:
		return siluGradVec16(dst, x, dy)
	case vecAVX2:
		return siluGradVec8(dst, x, dy)
	}
	return 0
}

func geluTanhVec(dst, x []float32) int {
	switch vecLevel {
	case vecAVX512:
		return geluTanhVec16(dst, x)
	case vecAVX2:
		return geluTanhVec8(dst, x)
	}
	return 0
}

func geluTanhGradVec(dst, x, dy []float32) int {
	switch vecLevel {
	case vecAVX512:
		return geluTanhGradVec16(dst, x, dy)
	case vecAVX2:
		return geluTanhGradVec8(dst, x, dy)
	}
	return 0
}

func reluVec(dst, x []float32) int {
	switch vecLevel {
	case vecAVX512:
		return reluVec16(dst, x)
	case vecAVX2:
		return reluVec8(dst, x)
	}
	return 0
}

func reluGradVec(dst, x, dy []float32) int {
	switch vecLevel {
	case vecAVX512:
		return reluGradVec16(dst, x, dy)
	case vecAVX2:
		return reluGradVec8(dst, x, dy)
	}
	return 0
}

// What the vector code below names for each width, written by hand for
// both: the vector type, the lane count and scaling by 2ⁿ.

type f32x16 = archsimd.Float32x16
type f32x8 = archsimd.Float32x8

const (
	lanes16 = 16
	lanes8  = 8
)

// scale16 returns x·2ⁿ for integer-valued n, rounded once (VSCALEFPS).
func scale16(x, n f32x16) f32x16 { return x.Scale(n) }

// scale8 returns x·2ⁿ for integer-valued n ≤ 0 (AVX2 has no VSCALEFPS):
// n below −252 gives 0 for |x| < 2⁶, which is all the kernels need; the two
// power-of-two factors are each a normal float, so only results below
// 2⁻¹²⁶ can be rounded twice.
func scale8(x, n f32x8) f32x8 {
	n = n.Max(archsimd.BroadcastFloat32x8(-252))
	n1 := n.Mul(archsimd.BroadcastFloat32x8(0.5)).Floor()
	n2 := n.Sub(n1)
	bias := archsimd.BroadcastInt32x8(127)
	p1 := n1.ConvertToInt32().Add(bias).ShiftAllLeft(23).AsFloat32x8()
	p2 := n2.ConvertToInt32().Add(bias).ShiftAllLeft(23).AsFloat32x8()
	return x.Mul(p1).Mul(p2)
}

// The code from here to the end of the file is the AVX-512 source of the
// AVX2 kernels in simd_avx2_amd64.go: go generate (gen_avx2.go, whose
// go:generate line is in fast32.go, which every build includes) writes it
// for 8 lanes by renaming the identifiers that carry the width, 16, and CI
// checks that the generated file is current. So the code names every
// width-dependent thing with a 16 in its name (f32x16, lanes16, scale16,
// gelu16 …) and holds no number 16. (Small wrapper functions around
// archsimd methods would make the compiler spill vectors in the loops:
// hence no wrapper for RoundToEvenScaled(0), which gen_avx2.go replaces.)

// BEGIN VECTOR CODE
// vconsts16 holds the kernels' constants, broadcast once per call: Go
// does not hoist a broadcast out of a loop, and a broadcast costs two
// instructions per use (load, shuffle) against one load from here.
type vconsts16 struct {
	signBit    archsimd.Uint32x16
	log2e      f32x16 // log2e
	mln2Hi     f32x16 // -ln2Hi32
	mln2Lo     f32x16 // -ln2Lo32
	c6         f32x16 // expC6
	c5         f32x16 // expC5
	c4         f32x16 // expC4
	c3         f32x16 // expC3
	c2         f32x16 // expC2
	one        f32x16 // 1
	pz         f32x16 // erfcxPOverSqrt2
	s9         f32x16 // erfcxS9
	s8         f32x16 // erfcxS8
	s7         f32x16 // erfcxS7
	s6         f32x16 // erfcxS6
	s5         f32x16 // erfcxS5
	s4         f32x16 // erfcxS4
	s3         f32x16 // erfcxS3
	s2         f32x16 // erfcxS2
	s1         f32x16 // erfcxS1
	s0         f32x16 // erfcxS0
	half       f32x16 // 0.5
	mhalf      f32x16 // -0.5
	geluClamp  f32x16 // geluClamp
	invSqrt2Pi f32x16 // invSqrt2Pi
	siluClamp  f32x16 // siluClamp
	tanhK0h    f32x16 // geluTanhK0h
	tanhK1h    f32x16 // geluTanhK1h
	tanhK1l    f32x16 // geluTanhK1l
	tanhK0l    f32x16 // geluTanhK0l
	tanhK1x3   f32x16 // 3*geluTanhK1
	tanhK0     f32x16 // geluTanhK0
	tanhClamp  f32x16 // geluTanhClamp
}

func newVconsts16() vconsts16 {
	return vconsts16{
		signBit:    archsimd.BroadcastUint32x16(0x80000000),
		log2e:      bcast16(log2e),
		mln2Hi:     bcast16(-ln2Hi32),
		mln2Lo:     bcast16(-ln2Lo32),
		c6:         bcast16(expC6),
		c5:         bcast16(expC5),
		c4:         bcast16(expC4),
		c3:         bcast16(expC3),
		c2:         bcast16(expC2),
		one:        bcast16(1),
		pz:         bcast16(erfcxPOverSqrt2),
		s9:         bcast16(erfcxS9),
		s8:         bcast16(erfcxS8),
		s7:         bcast16(erfcxS7),
		s6:         bcast16(erfcxS6),
		s5:         bcast16(erfcxS5),
		s4:         bcast16(erfcxS4),
		s3:         bcast16(erfcxS3),
		s2:         bcast16(erfcxS2),
		s1:         bcast16(erfcxS1),
		s0:         bcast16(erfcxS0),
		half:       bcast16(0.5),
		mhalf:      bcast16(-0.5),
		geluClamp:  bcast16(geluClamp),
		invSqrt2Pi: bcast16(invSqrt2Pi),
		siluClamp:  bcast16(siluClamp),
		tanhK0h:    bcast16(geluTanhK0h),
		tanhK1h:    bcast16(geluTanhK1h),
		tanhK1l:    bcast16(geluTanhK1l),
		tanhK0l:    bcast16(geluTanhK0l),
		tanhK1x3:   bcast16(3 * geluTanhK1),
		tanhK0:     bcast16(geluTanhK0),
		tanhClamp:  bcast16(geluTanhClamp),
	}
}

func bcast16(v float32) f32x16 { return archsimd.BroadcastFloat32x16(v) }

// absSign16 returns |x| and x's sign bit.
func absSign16(x f32x16, k *vconsts16) (a f32x16, sign archsimd.Uint32x16) {
	bits := x.AsUint32x16()
	return bits.AndNot(k.signBit).AsFloat32x16(), bits.And(k.signBit)
}

// expParts16 returns m and n with e^(ah+al) = m·2ⁿ, 1/√2 ≲ m ≲ √2 and n an
// integer-valued float, for |ah| ≤ 2¹⁶ and |al| ≤ 1; al is a small
// correction to ah (the low half of a two-float argument). Larger |ah|
// (from clamped inputs) give a finite m and a result that underflows. Applying 2ⁿ is
// left to the caller (Scale), after the other factors: a result near
// underflow is then rounded once.
func expParts16(ah, al f32x16, k *vconsts16) (m, n f32x16) {
	n = ah.Mul(k.log2e).RoundToEvenScaled(0)
	// Cody–Waite with fused multiply-adds: n·ln2Hi is exact in the FMA.
	r := n.MulAdd(k.mln2Hi, ah)
	r = n.MulAdd(k.mln2Lo, r).Add(al)
	p := r.MulAdd(k.c6, k.c5)
	p = p.MulAdd(r, k.c4)
	p = p.MulAdd(r, k.c3)
	p = p.MulAdd(r, k.c2)
	p = p.MulAdd(r, k.one)
	return p.MulAdd(r, k.one), n
}

// halfErfcx16 is halfErfcx: ½·erfcx(a/√2) for a ≥ 0.
func halfErfcx16(a f32x16, k *vconsts16) f32x16 {
	pz := a.Mul(k.pz)
	t := k.one.Div(pz.Add(k.one))
	u := pz.Mul(t)
	s := u.MulAdd(k.s9, k.s8)
	s = s.MulAdd(u, k.s7)
	s = s.MulAdd(u, k.s6)
	s = s.MulAdd(u, k.s5)
	s = s.MulAdd(u, k.s4)
	s = s.MulAdd(u, k.s3)
	s = s.MulAdd(u, k.s2)
	s = s.MulAdd(u, k.s1)
	s = s.MulAdd(u, k.s0)
	q := s.MulAdd(u, k.one)
	return t.Mul(k.half).Mul(q)
}

// geluParts16 returns, for a = min(|x|, geluClamp), h = ½·erfcx(a/√2) and
// e^(−a²/2) = m·2ⁿ, with a² split exactly into two floats.
func geluParts16(a f32x16, k *vconsts16) (h, m, n f32x16) {
	aa := a.Mul(a)
	lo := a.MulAdd(a, f32x16{}.Sub(aa)) // a² − aa, exact
	m, n = expParts16(aa.Mul(k.mhalf), lo.Mul(k.mhalf), k)
	return halfErfcx16(a, k), m, n
}

func geluVec16(dst, x []float32) int {
	k := newVconsts16()
	n := len(x) &^ (lanes16 - 1)
	gelu16(dst[:n], x[:n], &k)
	if n < len(x) {
		var in, out [lanes16]float32
		copy(in[:], x[n:])
		gelu16(out[:], in[:], &k)
		copy(dst[n:], out[:])
	}
	return len(x)
}

func gelu16(dst, x []float32, k *vconsts16) {
	for i := 0; i+lanes16 <= len(x); i += lanes16 {
		v := archsimd.LoadFloat32x16Slice(x[i:])
		zero := f32x16{}
		a, _ := absSign16(v, k)
		a = a.Min(k.geluClamp)
		h, m, n := geluParts16(a, k)
		hm := h.Mul(m)
		// x < 0: −a·Φ(−a), scaled last. x ≥ 0 (and NaN): x·(1−Φ(−x)).
		neg := scale16(zero.Sub(a).Mul(hm), n)
		pos := v.Mul(k.one.Sub(scale16(hm, n)))
		y := neg.Merge(pos, v.Less(zero))
		y.StoreSlice(dst[i:])
	}
}

func geluGradVec16(dst, x, dy []float32) int {
	k := newVconsts16()
	n := len(x) &^ (lanes16 - 1)
	geluGrad16(dst[:n], x[:n], dy[:n], &k)
	if n < len(x) {
		var in, ing, out [lanes16]float32
		copy(in[:], x[n:])
		copy(ing[:], dy[n:])
		geluGrad16(out[:], in[:], ing[:], &k)
		copy(dst[n:], out[:])
	}
	return len(x)
}

func geluGrad16(dst, x, dy []float32, k *vconsts16) {
	for i := 0; i+lanes16 <= len(x); i += lanes16 {
		v, g := archsimd.LoadFloat32x16Slice(x[i:]), archsimd.LoadFloat32x16Slice(dy[i:])
		zero, one := f32x16{}, k.one
		a, _ := absSign16(v, k)
		a = a.Min(k.geluClamp)
		h, m, n := geluParts16(a, k)
		// w = e^(−a²/2)·(a/√(2π) − h): GELU′ = 1 + w for x ≥ 0, −w for x < 0.
		w := scale16(a.MulAdd(k.invSqrt2Pi, zero.Sub(h)).Mul(m), n)
		d := zero.Sub(w).Merge(one.Add(w), v.Less(zero))
		d = d.Merge(v, v.Equal(v)) // NaN lanes: x
		y := g.Mul(d)
		y.StoreSlice(dst[i:])
	}
}

// sigmoidParts16 returns, for −|z| = nzh + nzl (clamped), m·2ⁿ = e^(−|z|)
// and big = σ(|z|) = 1/(1+e^(−|z|)); σ(−|z|) = m·big·2ⁿ.
func sigmoidParts16(nzh, nzl f32x16, k *vconsts16) (m, n, big f32x16) {
	m, n = expParts16(nzh, nzl, k)
	big = k.one.Div(scale16(m, n).Add(k.one))
	return m, n, big
}

func siluVec16(dst, x []float32) int {
	k := newVconsts16()
	n := len(x) &^ (lanes16 - 1)
	silu16(dst[:n], x[:n], &k)
	if n < len(x) {
		var in, out [lanes16]float32
		copy(in[:], x[n:])
		silu16(out[:], in[:], &k)
		copy(dst[n:], out[:])
	}
	return len(x)
}

func silu16(dst, x []float32, k *vconsts16) {
	for i := 0; i+lanes16 <= len(x); i += lanes16 {
		v := archsimd.LoadFloat32x16Slice(x[i:])
		zero := f32x16{}
		a, _ := absSign16(v, k)
		a = a.Min(k.siluClamp)
		m, n, big := sigmoidParts16(zero.Sub(a), zero, k)
		// x < 0: −a·e^(−a)·σ(a), scaled last; x ≥ 0 (and NaN): x·σ(x).
		neg := scale16(zero.Sub(a).Mul(m).Mul(big), n)
		y := neg.Merge(v.Mul(big), v.Less(zero))
		y.StoreSlice(dst[i:])
	}
}

func siluGradVec16(dst, x, dy []float32) int {
	k := newVconsts16()
	n := len(x) &^ (lanes16 - 1)
	siluGrad16(dst[:n], x[:n], dy[:n], &k)
	if n < len(x) {
		var in, ing, out [lanes16]float32
		copy(in[:], x[n:])
		copy(ing[:], dy[n:])
		siluGrad16(out[:], in[:], ing[:], &k)
		copy(dst[n:], out[:])
	}
	return len(x)
}

func siluGrad16(dst, x, dy []float32, k *vconsts16) {
	for i := 0; i+lanes16 <= len(x); i += lanes16 {
		v, g := archsimd.LoadFloat32x16Slice(x[i:]), archsimd.LoadFloat32x16Slice(dy[i:])
		zero, one := f32x16{}, k.one
		a, _ := absSign16(v, k)
		a = a.Min(k.siluClamp)
		m, n, big := sigmoidParts16(zero.Sub(a), zero, k)
		// x ≥ 0: σ(a)·(1 + a·σ(−a)); x < 0: σ(−a)·(1 − a·σ(a)).
		pos := big.Mul(a.Mul(scale16(m, n)).MulAdd(big, one))
		neg := scale16(m.Mul(big).Mul(zero.Sub(a).MulAdd(big, one)), n)
		d := neg.Merge(pos, v.Less(zero))
		d = d.Merge(v, v.Equal(v)) // NaN lanes: x
		y := g.Mul(d)
		y.StoreSlice(dst[i:])
	}
}

// geluTanhZ16 returns −|z| = −a·(k0 + k1·a²) as a two-float sum
// nzh + nzl, and dz/dx = k0 + 3·k1·a², for a = |x|. The low part carries
// the rounding errors of a², k1·a², the sum, the product and the float32
// constants: e^(−|z|) multiplies z's relative error by |z| (up to 100 for
// results above underflow), so a one-float z would cost up to ~170 ULP in
// the negative tail.
func geluTanhZ16(a f32x16, k *vconsts16) (nzh, nzl, dz f32x16) {
	zero := f32x16{}
	k0h, k1h := k.tanhK0h, k.tanhK1h
	a2 := a.Mul(a)
	a2l := a.MulAdd(a, zero.Sub(a2)) // a² − a2, exact
	m := a2.Mul(k1h)
	ml := a2.MulAdd(k1h, zero.Sub(m)) // a2·k1h − m, exact
	c := m.Add(k0h)
	bb := c.Sub(k0h)
	sumErr := k0h.Sub(c.Sub(bb)).Add(m.Sub(bb)) // k0h + m − c (2Sum), exact
	cl := a2l.MulAdd(k1h, ml.Add(sumErr)).Add(a2.MulAdd(k.tanhK1l, k.tanhK0l))
	p := a.Mul(c)
	pl := a.MulAdd(c, zero.Sub(p)) // a·c − p, exact
	return zero.Sub(p), zero.Sub(a.MulAdd(cl, pl)), a2.MulAdd(k.tanhK1x3, k.tanhK0)
}

func geluTanhVec16(dst, x []float32) int {
	k := newVconsts16()
	n := len(x) &^ (lanes16 - 1)
	geluTanh16(dst[:n], x[:n], &k)
	if n < len(x) {
		var in, out [lanes16]float32
		copy(in[:], x[n:])
		geluTanh16(out[:], in[:], &k)
		copy(dst[n:], out[:])
	}
	return len(x)
}

func geluTanh16(dst, x []float32, k *vconsts16) {
	for i := 0; i+lanes16 <= len(x); i += lanes16 {
		v := archsimd.LoadFloat32x16Slice(x[i:])
		zero := f32x16{}
		a, _ := absSign16(v, k)
		a = a.Min(k.tanhClamp)
		nzh, nzl, _ := geluTanhZ16(a, k)
		m, n, big := sigmoidParts16(nzh, nzl, k)
		neg := scale16(zero.Sub(a).Mul(m).Mul(big), n)
		y := neg.Merge(v.Mul(big), v.Less(zero))
		y.StoreSlice(dst[i:])
	}
}

func geluTanhGradVec16(dst, x, dy []float32) int {
	k := newVconsts16()
	n := len(x) &^ (lanes16 - 1)
	geluTanhGrad16(dst[:n], x[:n], dy[:n], &k)
	if n < len(x) {
		var in, ing, out [lanes16]float32
		copy(in[:], x[n:])
		copy(ing[:], dy[n:])
		geluTanhGrad16(out[:], in[:], ing[:], &k)
		copy(dst[n:], out[:])
	}
	return len(x)
}

func geluTanhGrad16(dst, x, dy []float32, k *vconsts16) {
	for i := 0; i+lanes16 <= len(x); i += lanes16 {
		v, g := archsimd.LoadFloat32x16Slice(x[i:]), archsimd.LoadFloat32x16Slice(dy[i:])
		zero, one := f32x16{}, k.one
		a, _ := absSign16(v, k)
		a = a.Min(k.tanhClamp)
		nzh, nzl, dz := geluTanhZ16(a, k)
		m, n, big := sigmoidParts16(nzh, nzl, k)
		adz := a.Mul(dz)
		// x ≥ 0: σ(z)·(1 + a·σ(−z)·z′); x < 0: σ(−z)·(1 − a·σ(z)·z′).
		pos := big.Mul(adz.Mul(scale16(m, n)).MulAdd(big, one))
		neg := scale16(m.Mul(big).Mul(zero.Sub(adz).MulAdd(big, one)), n)
		d := neg.Merge(pos, v.Less(zero))
		d = d.Merge(v, v.Equal(v)) // NaN lanes: x
		y := g.Mul(d)
		y.StoreSlice(dst[i:])
	}
}

func reluVec16(dst, x []float32) int {
	n := len(x) &^ (lanes16 - 1)
	relu16(dst[:n], x[:n])
	if n < len(x) {
		var in, out [lanes16]float32
		copy(in[:], x[n:])
		relu16(out[:], in[:])
		copy(dst[n:], out[:])
	}
	return len(x)
}

func relu16(dst, x []float32) {
	for i := 0; i+lanes16 <= len(x); i += lanes16 {
		v := archsimd.LoadFloat32x16Slice(x[i:])
		zero := f32x16{}
		// +0 where x ≤ 0 (also for −0); x where x > 0 or NaN.
		y := zero.Merge(v, v.LessEqual(zero))
		y.StoreSlice(dst[i:])
	}
}

func reluGradVec16(dst, x, dy []float32) int {
	n := len(x) &^ (lanes16 - 1)
	reluGrad16(dst[:n], x[:n], dy[:n])
	if n < len(x) {
		var in, ing, out [lanes16]float32
		copy(in[:], x[n:])
		copy(ing[:], dy[n:])
		reluGrad16(out[:], in[:], ing[:])
		copy(dst[n:], out[:])
	}
	return len(x)
}

func reluGrad16(dst, x, dy []float32) {
	for i := 0; i+lanes16 <= len(x); i += lanes16 {
		v, g := archsimd.LoadFloat32x16Slice(x[i:]), archsimd.LoadFloat32x16Slice(dy[i:])
		zero := f32x16{}
		y := zero.Merge(g, v.LessEqual(zero))
		y.StoreSlice(dst[i:])
	}
}

// END VECTOR CODE
