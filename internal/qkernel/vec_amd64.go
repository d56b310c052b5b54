//go:build goexperiment.simd && amd64

package qkernel

import (
	"math"
	"simd/archsimd"
)

// Vector kernels (AVX2) for the hot loops. Each processes a prefix of its
// slices whose length is a multiple of the vector width and returns that
// length; the caller finishes the tail with the scalar loop. They compute
// exactly what the scalar loops compute: VROUNDPS rounds half to even, and
// the multiply and round are separate instructions, so no FMA fusion.

var haveAVX2 = archsimd.X86.AVX2()

func fakeQuantIntVec32(dst, x []float32, q Int[float32]) int {
	if !haveAVX2 {
		return 0
	}
	n := len(x) &^ 7
	inv := archsimd.BroadcastFloat32x8(q.inv)
	lo := archsimd.BroadcastFloat32x8(q.lo)
	hi := archsimd.BroadcastFloat32x8(q.hi)
	s := archsimd.BroadcastFloat32x8(q.scale)
	zero := archsimd.BroadcastFloat32x8(0)
	for i := 0; i < n; i += 8 {
		v := archsimd.LoadFloat32x8Slice(x[i : i+8])
		// + 0 turns the −0 that VROUNDPS gives for x in (−½, 0] into +0:
		// PyTorch's code q − z is an integer, so y = +0 there.
		r := v.Mul(inv).RoundToEven().Add(zero).Max(lo).Min(hi)
		r = r.Merge(lo, v.Equal(v)) // NaN → lo, as the scalar loop
		r.Mul(s).StoreSlice(dst[i : i+8])
	}
	return n
}

func fakeQuantIntGradVec32(dst, x, dy []float32, q Int[float32]) int {
	if !haveAVX2 {
		return 0
	}
	n := len(x) &^ 7
	inv := archsimd.BroadcastFloat32x8(q.inv)
	lo := archsimd.BroadcastFloat32x8(q.lo)
	hi := archsimd.BroadcastFloat32x8(q.hi)
	for i := 0; i < n; i += 8 {
		r := archsimd.LoadFloat32x8Slice(x[i : i+8]).Mul(inv).RoundToEven()
		in := r.GreaterEqual(lo).And(r.LessEqual(hi)) // false for NaN
		archsimd.LoadFloat32x8Slice(dy[i : i+8]).Masked(in).StoreSlice(dst[i : i+8])
	}
	return n
}

func fakeQuantIntVec64(dst, x []float64, q Int[float64]) int {
	if !haveAVX2 {
		return 0
	}
	n := len(x) &^ 3
	inv := archsimd.BroadcastFloat64x4(q.inv)
	lo := archsimd.BroadcastFloat64x4(q.lo)
	hi := archsimd.BroadcastFloat64x4(q.hi)
	s := archsimd.BroadcastFloat64x4(q.scale)
	zero := archsimd.BroadcastFloat64x4(0)
	for i := 0; i < n; i += 4 {
		v := archsimd.LoadFloat64x4Slice(x[i : i+4])
		r := v.Mul(inv).RoundToEven().Add(zero).Max(lo).Min(hi)
		r = r.Merge(lo, v.Equal(v))
		r.Mul(s).StoreSlice(dst[i : i+4])
	}
	return n
}

func fakeQuantIntGradVec64(dst, x, dy []float64, q Int[float64]) int {
	if !haveAVX2 {
		return 0
	}
	n := len(x) &^ 3
	inv := archsimd.BroadcastFloat64x4(q.inv)
	lo := archsimd.BroadcastFloat64x4(q.lo)
	hi := archsimd.BroadcastFloat64x4(q.hi)
	for i := 0; i < n; i += 4 {
		r := archsimd.LoadFloat64x4Slice(x[i : i+4]).Mul(inv).RoundToEven()
		in := r.GreaterEqual(lo).And(r.LessEqual(hi))
		archsimd.LoadFloat64x4Slice(dy[i : i+4]).Masked(in).StoreSlice(dst[i : i+4])
	}
	return n
}

// absMaxVec returns the length of the prefix it scanned and the largest
// finite |x[i]| in it.
func absMaxVec[T Float](x []T) (int, T) {
	xs, ok := any(x).([]float32)
	if !ok || !haveAVX2 {
		return 0, 0
	}
	n := len(xs) &^ 7
	if n == 0 {
		return 0, 0
	}
	inf := archsimd.BroadcastFloat32x8(float32(math.Inf(1)))
	zero := archsimd.BroadcastFloat32x8(0)
	m := zero
	for i := 0; i < n; i += 8 {
		v := archsimd.LoadFloat32x8Slice(xs[i : i+8])
		a := v.Max(zero.Sub(v))          // |v|; NaN lanes are not finite below
		m = m.Max(a.Masked(a.Less(inf))) // drop NaN and Inf lanes
	}
	var lanes [8]float32
	m.Store(&lanes)
	best := lanes[0]
	for _, v := range lanes[1:] {
		best = max(best, v)
	}
	return n, T(best)
}

func fakeQuantIntGroupsVec32(dst, x []float32, qs []Int[float32]) bool {
	g := len(x) / len(qs)
	if !haveAVX2 || g%8 != 0 {
		return false
	}
	zero := archsimd.BroadcastFloat32x8(0)
	for k := range qs {
		q := &qs[k]
		inv := archsimd.BroadcastFloat32x8(q.inv)
		lo := archsimd.BroadcastFloat32x8(q.lo)
		hi := archsimd.BroadcastFloat32x8(q.hi)
		s := archsimd.BroadcastFloat32x8(q.scale)
		for i := k * g; i < (k+1)*g; i += 8 {
			v := archsimd.LoadFloat32x8Slice(x[i : i+8])
			r := v.Mul(inv).RoundToEven().Add(zero).Max(lo).Min(hi)
			r = r.Merge(lo, v.Equal(v))
			r.Mul(s).StoreSlice(dst[i : i+8])
		}
	}
	return true
}

func fakeQuantIntGroupsGradVec32(dst, x, dy []float32, qs []Int[float32]) bool {
	g := len(x) / len(qs)
	if !haveAVX2 || g%8 != 0 {
		return false
	}
	for k := range qs {
		q := &qs[k]
		inv := archsimd.BroadcastFloat32x8(q.inv)
		lo := archsimd.BroadcastFloat32x8(q.lo)
		hi := archsimd.BroadcastFloat32x8(q.hi)
		for i := k * g; i < (k+1)*g; i += 8 {
			r := archsimd.LoadFloat32x8Slice(x[i : i+8]).Mul(inv).RoundToEven()
			in := r.GreaterEqual(lo).And(r.LessEqual(hi))
			archsimd.LoadFloat32x8Slice(dy[i : i+8]).Masked(in).StoreSlice(dst[i : i+8])
		}
	}
	return true
}

// fakeQuantIntGroupsSymVec32 is FakeQuantIntGroupsSymmetric for groups of a
// multiple of 8 float32: the group's |x| maximum in vector lanes, one
// horizontal maximum, the scale in scalar code, then the grid (dy nil) or
// the gradient mask (dy non-nil).
func fakeQuantIntGroupsSymVec32(dst, x, dy []float32, g, qmin, qmax int, minScale float32) bool {
	if !haveAVX2 || g%8 != 0 || g == 0 {
		return false
	}
	zero := archsimd.BroadcastFloat32x8(0)
	inf := archsimd.BroadcastFloat32x8(float32(math.Inf(1)))
	for k := 0; k < len(x); k += g {
		m := zero
		for i := k; i < k+g; i += 8 {
			v := archsimd.LoadFloat32x8Slice(x[i : i+8])
			a := v.Max(zero.Sub(v))
			m = m.Max(a.Masked(a.Less(inf)))
		}
		// Horizontal maximum in registers: halves, then pairs, then one.
		h := m.GetLo().Max(m.GetHi())
		h = h.Max(h.SelectFromPair(2, 3, 2, 3, h))
		h = h.Max(h.SelectFromPair(1, 1, 1, 1, h))
		amax := h.GetElem(0)
		q := SymmetricInt(amax, qmin, qmax, minScale)
		inv := archsimd.BroadcastFloat32x8(q.inv)
		lo := archsimd.BroadcastFloat32x8(q.lo)
		hi := archsimd.BroadcastFloat32x8(q.hi)
		if dy != nil {
			for i := k; i < k+g; i += 8 {
				r := archsimd.LoadFloat32x8Slice(x[i : i+8]).Mul(inv).RoundToEven()
				in := r.GreaterEqual(lo).And(r.LessEqual(hi))
				archsimd.LoadFloat32x8Slice(dy[i : i+8]).Masked(in).StoreSlice(dst[i : i+8])
			}
			continue
		}
		s := archsimd.BroadcastFloat32x8(q.scale)
		for i := k; i < k+g; i += 8 {
			v := archsimd.LoadFloat32x8Slice(x[i : i+8])
			r := v.Mul(inv).RoundToEven().Add(zero).Max(lo).Min(hi)
			r = r.Merge(lo, v.Equal(v))
			r.Mul(s).StoreSlice(dst[i : i+8])
		}
	}
	return true
}

// accumulateFP16Vec is AccumulateFP16 on four float64 lanes, for len(acc)
// a multiple of 4: the operations of the assembly of the default build
// (internal/asmgen's fp16.go explains them), which give the scalar loop's
// results.
func accumulateFP16Vec(acc, w []float64, v []float32) bool {
	n := len(acc)
	if !haveAVX2 || n == 0 || n%4 != 0 {
		return false
	}
	absMask := archsimd.BroadcastUint64x4(0x7FFFFFFFFFFFFFFF)
	expMask := archsimd.BroadcastUint64x4(0x7FF0000000000000)
	minNormal := archsimd.BroadcastFloat64x4(0x1p-14)
	step := archsimd.BroadcastFloat64x4(0x1p42)
	overflow := archsimd.BroadcastFloat64x4(65520)
	inf := archsimd.BroadcastFloat64x4(math.Inf(1))
	for j, wj := range w {
		if wj == 0 {
			continue
		}
		wv := archsimd.BroadcastFloat64x4(wj)
		row := v[j*n : (j+1)*n]
		for i := 0; i < n; i += 4 {
			a := archsimd.LoadFloat32x4Slice(row[i : i+4]).ConvertToFloat64().Mul(wv).Add(archsimd.LoadFloat64x4Slice(acc[i : i+4]))
			bits := a.AsUint64x4()
			abs := bits.And(absMask).AsFloat64x4()
			c := abs.AsUint64x4().And(expMask).AsFloat64x4().Max(minNormal).Mul(step)
			m := abs.Add(c).Sub(c)
			m = inf.Merge(m, abs.GreaterEqual(overflow))
			m.AsUint64x4().Or(bits.AndNot(absMask)).AsFloat64x4().StoreSlice(acc[i : i+4])
		}
	}
	return true
}
