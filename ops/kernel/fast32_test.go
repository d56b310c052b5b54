package kernel

import (
	"flag"
	"fmt"
	"math"
	"runtime"
	"sync"
	"testing"
)

var exhaustive = flag.Bool("exhaustive", false, "TestFastKernelErrors: check every float32 input in each kernel's range (minutes)")

// fastBound is the documented accuracy of a fast float32 kernel: every
// result is within ULP units in the last place of the exact value, or
// within Abs of it, and results below 10⁻⁶ in magnitude (where the API
// contract's absolute tolerance applies) within Tail ULP. Abs matters only
// near a zero of the derivative, where Φ(x) + x·φ(x) (and its SiLU and
// tanh-form twins) cancels; Tail only in GELUTanh's negative tail, where
// the float32 rounding of z = 2u(x) is multiplied by |z| in e^(−|z|).
type fastBound struct {
	ULP, Abs, Tail float64
}

// fastKernel is one float32 kernel with its float64 reference (the exact
// kernels, evaluated with the math package), the input range outside which
// the result is trivially x, 0 or 1 (checked by the special-case tests),
// and its bounds on the portable and the vector path.
type fastKernel struct {
	name     string
	lo, hi   float32
	f32      func(dst, x []float32)
	ref      func(x float64) float64
	portable fastBound
	vector   fastBound
}

var fastKernels = []fastKernel{
	{"gelu", -15, 15, func(d, x []float32) { _ = GELU(d, x) }, gelu64,
		fastBound{1, 0, 1}, fastBound{6, 0, 7}},
	{"gelu′", -15, 15, func(d, x []float32) { _ = GELUGrad(d, x, ones32(len(x))) }, geluDeriv64,
		fastBound{1, 0x1p-30, 1}, fastBound{3, 0x1p-23, 3}},
	{"gelu_tanh", -12, 12, func(d, x []float32) { _ = GELUTanh(d, x) }, geluTanh64,
		fastBound{1, 0, 1}, fastBound{4, 0, 4}},
	{"gelu_tanh′", -12, 12, func(d, x []float32) { _ = GELUTanhGrad(d, x, ones32(len(x))) }, geluTanhDeriv64,
		fastBound{1, 0x1p-30, 1}, fastBound{4, 0x1p-23, 4}},
	{"silu", -105, 20, func(d, x []float32) { _ = SiLU(d, x) }, silu64,
		fastBound{1, 0, 1}, fastBound{4, 0, 4}},
	{"silu′", -105, 20, func(d, x []float32) { _ = SiLUGrad(d, x, ones32(len(x))) }, siluDeriv64,
		fastBound{1, 0x1p-30, 1}, fastBound{4, 0x1p-23, 4}},
}

// bestLevel is the widest vector path this build and CPU have.
var bestLevel = vecLevel

var onesCache = make([]float32, 1<<16)

func init() {
	for i := range onesCache {
		onesCache[i] = 1
	}
}

func ones32(n int) []float32 { return onesCache[:n] }

// ulpOf returns the spacing of float32 values at |v| (2⁻¹⁴⁹ for
// subnormals).
func ulpOf(v float64) float64 {
	v = math.Abs(v)
	if v < 0x1p-126 {
		return 0x1p-149
	}
	_, e := math.Frexp(v) // v = f·2^e, ½ ≤ f < 1
	if v >= math.MaxFloat32 {
		e = 128
	}
	return math.Ldexp(1, e-24)
}

// errStats is the error of a kernel over a set of inputs.
type errStats struct {
	maxULP, atULP   float64 // in units of ulpOf(ref), among points beyond Abs with |ref| ≥ 1e-6
	tailULP, atTail float64 // the same where |ref| < 1e-6
	maxAbs, atAbs   float64
	fails           int
	firstFail       string
	n               int
}

func (s *errStats) merge(o errStats) {
	if o.maxULP > s.maxULP {
		s.maxULP, s.atULP = o.maxULP, o.atULP
	}
	if o.tailULP > s.tailULP {
		s.tailULP, s.atTail = o.tailULP, o.atTail
	}
	if o.maxAbs > s.maxAbs {
		s.maxAbs, s.atAbs = o.maxAbs, o.atAbs
	}
	if s.fails == 0 {
		s.firstFail = o.firstFail
	}
	s.fails += o.fails
	s.n += o.n
}

// measure runs k on the float32 values between k.lo and k.hi whose ordered
// bit patterns are multiples of stride apart, in parallel, skipping those
// with |x| < skipBelow.
func measure(k fastKernel, b fastBound, stride int64, skipBelow float32) errStats {
	if skipBelow > 0 {
		neg := k
		neg.hi = -skipBelow
		s := measure(neg, b, stride, 0)
		pos := k
		pos.lo = skipBelow
		s.merge(measure(pos, b, stride, 0))
		return s
	}
	lo, hi := ordered32(k.lo), ordered32(k.hi)
	workers := runtime.GOMAXPROCS(0)
	span := (hi - lo) / int64(workers)
	results := make([]errStats, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			from, to := lo+int64(w)*span, lo+int64(w+1)*span
			if w == workers-1 {
				to = hi + 1
			}
			from += (stride - (from-lo)%stride) % stride
			const batch = 4096
			x, y := make([]float32, 0, batch), make([]float32, batch)
			var s errStats
			for o := from; o < to; o += stride {
				x = append(x, fromOrdered32(o))
				if len(x) == batch || o+stride >= to {
					k.f32(y[:len(x)], x)
					for i, xi := range x {
						check(&s, k, b, xi, y[i])
					}
					s.n += len(x)
					x = x[:0]
				}
			}
			results[w] = s
		}()
	}
	wg.Wait()
	var s errStats
	for _, r := range results {
		s.merge(r)
	}
	return s
}

func check(s *errStats, k fastKernel, b fastBound, x, got32 float32) {
	checkAgainst(s, k.name, b, x, got32, k.ref(float64(x)))
}

// checkAgainst adds the error of got32 = f(x) against the reference value
// ref to s.
func checkAgainst(s *errStats, name string, b fastBound, x, got32 float32, ref float64) {
	got := float64(got32)
	if math.IsNaN(ref) || math.IsNaN(got) || math.IsInf(ref, 0) {
		if !(math.IsNaN(ref) && math.IsNaN(got)) && got != ref {
			s.fail(fmt.Sprintf("%s(%g) = %g, want %g", name, x, got, ref))
		}
		return
	}
	abs := math.Abs(got - ref)
	if abs > s.maxAbs {
		s.maxAbs, s.atAbs = abs, float64(x)
	}
	if abs <= b.Abs {
		return
	}
	u, bound := abs/ulpOf(ref), b.ULP
	if math.Abs(ref) < 1e-6 {
		bound = b.Tail
		if u > s.tailULP {
			s.tailULP, s.atTail = u, float64(x)
		}
	} else if u > s.maxULP {
		s.maxULP, s.atULP = u, float64(x)
	}
	if u > bound {
		s.fail(fmt.Sprintf("%s(%g) = %.9g, want %.9g: %.2f ULP", name, x, got, ref, u))
	}
}

func (s *errStats) fail(msg string) {
	if s.fails == 0 {
		s.firstFail = msg
	}
	s.fails++
}

func ordered32(f float32) int64 {
	u := math.Float32bits(f)
	if u&0x80000000 != 0 {
		return -int64(u & 0x7fffffff)
	}
	return int64(u)
}

func fromOrdered32(o int64) float32 {
	if o < 0 {
		return math.Float32frombits(uint32(-o) | 0x80000000)
	}
	return math.Float32frombits(uint32(o))
}

// forEachPath runs f on the portable path and on each vector path this
// build and CPU have (AVX2, AVX-512), with vector reporting whether the
// path is a vector one (whose bounds are looser).
func forEachPath(t *testing.T, f func(t *testing.T, vector bool)) {
	defer func() { vecLevel = bestLevel }()
	for l := vecNone; l <= bestLevel; l++ {
		vecLevel = l
		name := map[vecISA]string{vecNone: "portable", vecAVX2: "avx2", vecAVX512: "avx512"}[l]
		t.Run(name, func(t *testing.T) { f(t, l != vecNone) })
	}
}

// TestFastKernelErrors checks the fast float32 kernels against the float64
// ones (accurate to a few float64 ULPs) on float32 inputs spread evenly in
// bit pattern over each kernel's range (so every binade is covered), or on
// every one of them with -exhaustive, and logs the largest errors.
func TestFastKernelErrors(t *testing.T) {
	stride := int64(4099)
	if testing.Short() {
		stride = 65521
	}
	skip := float32(0)
	if *exhaustive {
		// Every float32 with 2⁻¹² ≤ |x| ≤ the range's end (about 2.8·10⁸
		// inputs per kernel); below 2⁻¹² the sampled run covers them.
		stride, skip = 1, 0x1p-12
	}
	forEachPath(t, func(t *testing.T, vector bool) {
		for _, k := range fastKernels {
			b := k.portable
			if vector {
				b = k.vector
			}
			s := measure(k, b, stride, skip)
			t.Logf("%-11s on [%g, %g], %d inputs: max %.2f ULP (x=%g) where |y| ≥ 1e-6 and error > %g; %.2f ULP (x=%g) where |y| < 1e-6; max abs error %.3g (x=%g)",
				k.name, k.lo, k.hi, s.n, s.maxULP, s.atULP, b.Abs, s.tailULP, s.atTail, s.maxAbs, s.atAbs)
			if s.fails > 0 {
				t.Errorf("%d results outside %g ULP or %g abs (tail %g ULP); first: %s", s.fails, b.ULP, b.Abs, b.Tail, s.firstFail)
			}
		}
	})
}

// TestVectorPathsAgree checks that the AVX2 and AVX-512 kernels give the
// same bits on float32 inputs spread over [−110, 110] (subnormal results
// included), forward and backward. They run the same code on 8 and 16
// lanes; only the power-of-two scaling differs, which could round a
// subnormal result twice with AVX2.
func TestVectorPathsAgree(t *testing.T) {
	if bestLevel < vecAVX512 {
		t.Skip("needs a GOEXPERIMENT=simd build on an AVX-512 CPU")
	}
	defer func() { vecLevel = bestLevel }()
	n := 1 << 20
	if testing.Short() {
		n = 1 << 16
	}
	x, dy := make([]float32, n), make([]float32, n)
	lo, hi := ordered32(-110), ordered32(110)
	for i := range x {
		x[i], dy[i] = fromOrdered32(lo+int64(i)*(hi-lo)/int64(n)), float32(1+i%3)
	}
	a, b := make([]float32, n), make([]float32, n)
	for _, k := range activationKernels {
		for _, pass := range []string{"forward", "backward"} {
			for l, out := range map[vecISA][]float32{vecAVX2: a, vecAVX512: b} {
				vecLevel = l
				if pass == "forward" {
					_ = k.fwd32(out, x)
				} else {
					_ = k.grad32(out, x, dy)
				}
			}
			for i := range a {
				if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
					t.Errorf("%s %s(%g): AVX2 %g, AVX-512 %g", k.op, pass, x[i], a[i], b[i])
					break
				}
			}
		}
	}
}
