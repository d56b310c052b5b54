//go:build goexperiment.simd && amd64

package kernel

import "simd/archsimd"

// Vector float32 kernels: the formulas of fast32.go in float32, 16 lanes
// at a time with AVX-512 (archsimd.Float32x16). Each returns the number of
// leading elements it handled: all of them when the CPU has AVX-512, else
// 0, and the caller's portable loop does the rest. The loops are written out
// so that the per-vector function (gelu16 …) is inlined. A last partial
// vector goes through a zero-padded copy rather than archsimd's masked
// LoadFloat32x16SlicePart, which trips the race detector's checkptr; the
// copy also keeps every element on the same code, so results do not depend
// on an element's position.
//
// Special values need no branches: |x| is clamped before it reaches the
// exponential, the x < 0 and x ≥ 0 formulas are blended with a lane mask,
// and NaN lanes are restored from x at the end (the order of operands in
// MIN/MAX decides whether they keep a NaN, so the kernels do not rely on it).

// useVector reports whether the vector kernels run. Tests turn it off to
// check the portable path on the same machine; nothing else changes it.
var useVector = archsimd.X86.AVX512()

// vectorISA names the instruction set the float32 kernels use.
func vectorISA() string {
	if useVector {
		return "AVX-512 (simd/archsimd)"
	}
	return "none (portable Go; CPU lacks AVX-512)"
}

type f32x16 = archsimd.Float32x16

func bcast(v float32) f32x16 { return archsimd.BroadcastFloat32x16(v) }

// absSign returns |x| and x's sign bit.
func absSign(x f32x16) (a f32x16, sign archsimd.Uint32x16) {
	bits := x.AsUint32x16()
	signBit := archsimd.BroadcastUint32x16(0x80000000)
	return bits.AndNot(signBit).AsFloat32x16(), bits.And(signBit)
}

// expParts returns m and n with e^(ah+al) = m·2ⁿ, 1/√2 ≲ m ≲ √2 and n an
// integer-valued float, for |ah| ≤ 2¹⁶ and |al| ≤ 1; al is a small
// correction to ah (the low half of a two-float argument). Larger |ah|
// (from clamped inputs) give a finite m and a result that underflows. Applying 2ⁿ is
// left to the caller (Scale), after the other factors: a result near
// underflow is then rounded once.
func expParts(ah, al f32x16) (m, n f32x16) {
	n = ah.Mul(bcast(log2e)).RoundToEvenScaled(0)
	// Cody–Waite with fused multiply-adds: n·ln2Hi is exact in the FMA.
	r := n.MulAdd(bcast(-ln2Hi32), ah)
	r = n.MulAdd(bcast(-ln2Lo32), r).Add(al)
	p := r.MulAdd(bcast(expC6), bcast(expC5))
	p = p.MulAdd(r, bcast(expC4))
	p = p.MulAdd(r, bcast(expC3))
	p = p.MulAdd(r, bcast(expC2))
	p = p.MulAdd(r, bcast(1))
	return p.MulAdd(r, bcast(1)), n
}

// ln2Hi32 + ln2Lo32 = ln 2 to about 2⁻⁴⁸; ln2Hi32 is ln 2 rounded to float32.
const (
	ln2Hi32 = float32(ln2)
	ln2Lo32 = float32(ln2 - float64(ln2Hi32))
)

// halfErfcxVec is halfErfcx: ½·erfcx(a/√2) for a ≥ 0.
func halfErfcxVec(a f32x16) f32x16 {
	pz := a.Mul(bcast(erfcxPOverSqrt2))
	t := bcast(1).Div(pz.Add(bcast(1)))
	u := pz.Mul(t)
	s := u.MulAdd(bcast(erfcxS9), bcast(erfcxS8))
	s = s.MulAdd(u, bcast(erfcxS7))
	s = s.MulAdd(u, bcast(erfcxS6))
	s = s.MulAdd(u, bcast(erfcxS5))
	s = s.MulAdd(u, bcast(erfcxS4))
	s = s.MulAdd(u, bcast(erfcxS3))
	s = s.MulAdd(u, bcast(erfcxS2))
	s = s.MulAdd(u, bcast(erfcxS1))
	s = s.MulAdd(u, bcast(erfcxS0))
	q := s.MulAdd(u, bcast(1))
	return t.Mul(bcast(0.5)).Mul(q)
}

// geluParts returns, for a = min(|x|, geluClamp), h = ½·erfcx(a/√2) and
// e^(−a²/2) = m·2ⁿ, with a² split exactly into two floats.
func geluParts(a f32x16) (h, m, n f32x16) {
	aa := a.Mul(a)
	lo := a.MulAdd(a, bcast(0).Sub(aa)) // a² − aa, exact
	m, n = expParts(aa.Mul(bcast(-0.5)), lo.Mul(bcast(-0.5)))
	return halfErfcxVec(a), m, n
}

func geluVec(dst, x []float32) int {
	if !useVector {
		return 0
	}
	n := len(x) &^ 15
	for i := 0; i < n; i += 16 {
		gelu16(archsimd.LoadFloat32x16Slice(x[i:])).StoreSlice(dst[i:])
	}
	if n < len(x) {
		var in, out [16]float32
		copy(in[:], x[n:])
		gelu16(archsimd.LoadFloat32x16(&in)).Store(&out)
		copy(dst[n:], out[:])
	}
	return len(x)
}

func gelu16(v f32x16) f32x16 {
	zero := bcast(0)
	a, _ := absSign(v)
	a = a.Min(bcast(geluClamp))
	h, m, n := geluParts(a)
	hm := h.Mul(m)
	// x < 0: −a·Φ(−a), scaled last. x ≥ 0 (and NaN): x·(1−Φ(−x)).
	neg := zero.Sub(a).Mul(hm).Scale(n)
	pos := v.Mul(bcast(1).Sub(hm.Scale(n)))
	y := neg.Merge(pos, v.Less(zero))
	return y
}

func geluGradVec(dst, x, dy []float32) int {
	if !useVector {
		return 0
	}
	n := len(x) &^ 15
	for i := 0; i < n; i += 16 {
		geluGrad16(archsimd.LoadFloat32x16Slice(x[i:]), archsimd.LoadFloat32x16Slice(dy[i:])).StoreSlice(dst[i:])
	}
	if n < len(x) {
		var in, ing, out [16]float32
		copy(in[:], x[n:])
		copy(ing[:], dy[n:])
		geluGrad16(archsimd.LoadFloat32x16(&in), archsimd.LoadFloat32x16(&ing)).Store(&out)
		copy(dst[n:], out[:])
	}
	return len(x)
}

func geluGrad16(v, g f32x16) f32x16 {
	zero, one := bcast(0), bcast(1)
	a, _ := absSign(v)
	a = a.Min(bcast(geluClamp))
	h, m, n := geluParts(a)
	// w = e^(−a²/2)·(a/√(2π) − h): GELU′ = 1 + w for x ≥ 0, −w for x < 0.
	w := a.MulAdd(bcast(invSqrt2Pi), zero.Sub(h)).Mul(m).Scale(n)
	d := zero.Sub(w).Merge(one.Add(w), v.Less(zero))
	d = d.Merge(v, v.Equal(v)) // NaN lanes: x
	y := g.Mul(d)
	return y
}

// sigmoidParts returns, for −|z| = nzh + nzl (clamped), m·2ⁿ = e^(−|z|)
// and big = σ(|z|) = 1/(1+e^(−|z|)); σ(−|z|) = m·big·2ⁿ.
func sigmoidParts(nzh, nzl f32x16) (m, n, big f32x16) {
	m, n = expParts(nzh, nzl)
	big = bcast(1).Div(m.Scale(n).Add(bcast(1)))
	return m, n, big
}

func siluVec(dst, x []float32) int {
	if !useVector {
		return 0
	}
	n := len(x) &^ 15
	for i := 0; i < n; i += 16 {
		silu16(archsimd.LoadFloat32x16Slice(x[i:])).StoreSlice(dst[i:])
	}
	if n < len(x) {
		var in, out [16]float32
		copy(in[:], x[n:])
		silu16(archsimd.LoadFloat32x16(&in)).Store(&out)
		copy(dst[n:], out[:])
	}
	return len(x)
}

func silu16(v f32x16) f32x16 {
	zero := bcast(0)
	a, _ := absSign(v)
	a = a.Min(bcast(siluClamp))
	m, n, big := sigmoidParts(zero.Sub(a), zero)
	// x < 0: −a·e^(−a)·σ(a), scaled last; x ≥ 0 (and NaN): x·σ(x).
	neg := zero.Sub(a).Mul(m).Mul(big).Scale(n)
	y := neg.Merge(v.Mul(big), v.Less(zero))
	return y
}

func siluGradVec(dst, x, dy []float32) int {
	if !useVector {
		return 0
	}
	n := len(x) &^ 15
	for i := 0; i < n; i += 16 {
		siluGrad16(archsimd.LoadFloat32x16Slice(x[i:]), archsimd.LoadFloat32x16Slice(dy[i:])).StoreSlice(dst[i:])
	}
	if n < len(x) {
		var in, ing, out [16]float32
		copy(in[:], x[n:])
		copy(ing[:], dy[n:])
		siluGrad16(archsimd.LoadFloat32x16(&in), archsimd.LoadFloat32x16(&ing)).Store(&out)
		copy(dst[n:], out[:])
	}
	return len(x)
}

func siluGrad16(v, g f32x16) f32x16 {
	zero, one := bcast(0), bcast(1)
	a, _ := absSign(v)
	a = a.Min(bcast(siluClamp))
	m, n, big := sigmoidParts(zero.Sub(a), zero)
	// x ≥ 0: σ(a)·(1 + a·σ(−a)); x < 0: σ(−a)·(1 − a·σ(a)).
	pos := big.Mul(a.Mul(m.Scale(n)).MulAdd(big, one))
	neg := m.Mul(big).Mul(zero.Sub(a).MulAdd(big, one)).Scale(n)
	d := neg.Merge(pos, v.Less(zero))
	d = d.Merge(v, v.Equal(v)) // NaN lanes: x
	y := g.Mul(d)
	return y
}

// geluTanhZVec returns −|z| = −a·(k0 + k1·a²) as a two-float sum
// nzh + nzl, and dz/dx = k0 + 3·k1·a², for a = |x|. The low part carries
// the rounding errors of a², k1·a², the sum, the product and the float32
// constants: e^(−|z|) multiplies z's relative error by |z| (up to 100 for
// results above underflow), so a one-float z would cost up to ~170 ULP in
// the negative tail.
func geluTanhZVec(a f32x16) (nzh, nzl, dz f32x16) {
	zero := bcast(0)
	k0h, k1h := bcast(geluTanhK0h), bcast(geluTanhK1h)
	a2 := a.Mul(a)
	a2l := a.MulAdd(a, zero.Sub(a2)) // a² − a2, exact
	m := a2.Mul(k1h)
	ml := a2.MulAdd(k1h, zero.Sub(m)) // a2·k1h − m, exact
	c := m.Add(k0h)
	bb := c.Sub(k0h)
	sumErr := k0h.Sub(c.Sub(bb)).Add(m.Sub(bb)) // k0h + m − c (2Sum), exact
	cl := a2l.MulAdd(k1h, ml.Add(sumErr)).Add(a2.MulAdd(bcast(geluTanhK1l), bcast(geluTanhK0l)))
	p := a.Mul(c)
	pl := a.MulAdd(c, zero.Sub(p)) // a·c − p, exact
	return zero.Sub(p), zero.Sub(a.MulAdd(cl, pl)), a2.MulAdd(bcast(3*geluTanhK1), bcast(geluTanhK0))
}

// The GELUTanh constants as float32 pairs, hi + lo.
const (
	geluTanhK0h = float32(geluTanhK0)
	geluTanhK0l = float32(geluTanhK0 - float64(geluTanhK0h))
	geluTanhK1h = float32(geluTanhK1)
	geluTanhK1l = float32(geluTanhK1 - float64(geluTanhK1h))
)

func geluTanhVec(dst, x []float32) int {
	if !useVector {
		return 0
	}
	n := len(x) &^ 15
	for i := 0; i < n; i += 16 {
		geluTanh16(archsimd.LoadFloat32x16Slice(x[i:])).StoreSlice(dst[i:])
	}
	if n < len(x) {
		var in, out [16]float32
		copy(in[:], x[n:])
		geluTanh16(archsimd.LoadFloat32x16(&in)).Store(&out)
		copy(dst[n:], out[:])
	}
	return len(x)
}

func geluTanh16(v f32x16) f32x16 {
	zero := bcast(0)
	a, _ := absSign(v)
	a = a.Min(bcast(geluTanhClamp))
	nzh, nzl, _ := geluTanhZVec(a)
	m, n, big := sigmoidParts(nzh, nzl)
	neg := zero.Sub(a).Mul(m).Mul(big).Scale(n)
	y := neg.Merge(v.Mul(big), v.Less(zero))
	return y
}

func geluTanhGradVec(dst, x, dy []float32) int {
	if !useVector {
		return 0
	}
	n := len(x) &^ 15
	for i := 0; i < n; i += 16 {
		geluTanhGrad16(archsimd.LoadFloat32x16Slice(x[i:]), archsimd.LoadFloat32x16Slice(dy[i:])).StoreSlice(dst[i:])
	}
	if n < len(x) {
		var in, ing, out [16]float32
		copy(in[:], x[n:])
		copy(ing[:], dy[n:])
		geluTanhGrad16(archsimd.LoadFloat32x16(&in), archsimd.LoadFloat32x16(&ing)).Store(&out)
		copy(dst[n:], out[:])
	}
	return len(x)
}

func geluTanhGrad16(v, g f32x16) f32x16 {
	zero, one := bcast(0), bcast(1)
	a, _ := absSign(v)
	a = a.Min(bcast(geluTanhClamp))
	nzh, nzl, dz := geluTanhZVec(a)
	m, n, big := sigmoidParts(nzh, nzl)
	adz := a.Mul(dz)
	// x ≥ 0: σ(z)·(1 + a·σ(−z)·z′); x < 0: σ(−z)·(1 − a·σ(z)·z′).
	pos := big.Mul(adz.Mul(m.Scale(n)).MulAdd(big, one))
	neg := m.Mul(big).Mul(zero.Sub(adz).MulAdd(big, one)).Scale(n)
	d := neg.Merge(pos, v.Less(zero))
	d = d.Merge(v, v.Equal(v)) // NaN lanes: x
	y := g.Mul(d)
	return y
}

func reluVec(dst, x []float32) int {
	if !useVector {
		return 0
	}
	n := len(x) &^ 15
	for i := 0; i < n; i += 16 {
		relu16(archsimd.LoadFloat32x16Slice(x[i:])).StoreSlice(dst[i:])
	}
	if n < len(x) {
		var in, out [16]float32
		copy(in[:], x[n:])
		relu16(archsimd.LoadFloat32x16(&in)).Store(&out)
		copy(dst[n:], out[:])
	}
	return len(x)
}

func relu16(v f32x16) f32x16 {
	zero := bcast(0)
	// +0 where x ≤ 0 (also for −0); x where x > 0 or NaN.
	y := zero.Merge(v, v.LessEqual(zero))
	return y
}

func reluGradVec(dst, x, dy []float32) int {
	if !useVector {
		return 0
	}
	n := len(x) &^ 15
	for i := 0; i < n; i += 16 {
		reluGrad16(archsimd.LoadFloat32x16Slice(x[i:]), archsimd.LoadFloat32x16Slice(dy[i:])).StoreSlice(dst[i:])
	}
	if n < len(x) {
		var in, ing, out [16]float32
		copy(in[:], x[n:])
		copy(ing[:], dy[n:])
		reluGrad16(archsimd.LoadFloat32x16(&in), archsimd.LoadFloat32x16(&ing)).Store(&out)
		copy(dst[n:], out[:])
	}
	return len(x)
}

func reluGrad16(v, g f32x16) f32x16 {
	zero := bcast(0)
	y := zero.Merge(g, v.LessEqual(zero))
	return y
}
