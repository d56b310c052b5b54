package blas

import (
	"math"
	"slices"
	"testing"
)

// fuzzValue decodes one fuzzed byte: 0x80 is NaN, 0x7f +Inf, 0x81 −Inf,
// and any other byte b is int8(b)/8, so that a product's sums of up to 40
// terms are exact in float32 whatever their order.
func fuzzValue(b byte) float32 {
	switch b {
	case 0x80:
		return float32(math.NaN())
	case 0x7f:
		return float32(math.Inf(1))
	case 0x81:
		return float32(math.Inf(-1))
	}
	return float32(int8(b)) / 8
}

// fuzzScalars are the alphas and betas a fuzzed call picks from.
var fuzzScalars = []float64{0, 1, -1, 0.5, 2.5, -0.75, 3}

// FuzzSgemm multiplies fuzzed matrices, up to 40×40×40, in every
// transpose, with padded leading dimensions, on every kernel and in every
// mode (threads, packing), and checks the result against the float64
// plain loop (NaN and ±Inf included), C's guard bands and that A and B
// were not written.
func FuzzSgemm(f *testing.F) {
	f.Add(uint8(3), uint8(4), uint8(5), uint8(0), uint8(0x12), []byte{8, 16, 24, 0xf8})
	f.Add(uint8(13), uint8(33), uint8(7), uint8(0xff), uint8(0x34), []byte{1, 2, 0x80, 3, 0x7f, 0x81, 0})
	f.Add(uint8(40), uint8(40), uint8(40), uint8(0x05), uint8(0x60), []byte{0x7f, 0, 9})
	f.Add(uint8(1), uint8(1), uint8(0), uint8(0x02), uint8(0x21), []byte{0x80})
	f.Fuzz(func(t *testing.T, m8, n8, k8, flags, ab uint8, data []byte) {
		m, n, k := int(m8%41), int(n8%41), int(k8%41)
		tc := gemmCase{m: m, n: n, k: k, tA: flags&1 != 0, tB: flags&2 != 0,
			padA: int(flags>>2) & 3, padB: int(flags>>4) & 3, padC: int(flags>>6) & 3,
			alpha: fuzzScalars[int(ab&0xf)%len(fuzzScalars)], beta: fuzzScalars[int(ab>>4)%len(fuzzScalars)]}
		if m == 0 || n == 0 {
			return // nothing to compute or check: Sgemm returns at once
		}
		i := 0
		next := func(int, int) float32 {
			if len(data) == 0 {
				return 0
			}
			i++
			return fuzzValue(data[(i-1)%len(data)])
		}
		a, b, c0 := operands(m, n, max(k, 1), tc.tA, tc.tB, tc.padA, tc.padB, tc.padC, next, next, next)
		want, scale := reference(m, n, k, tc.tA, tc.tB, float32(tc.alpha), a, b, float32(tc.beta), c0)
		a0, b0 := slices.Clone(a.buf), slices.Clone(b.buf)
		eachRun(kernels32.all, tc, a, b, c0, func(_, name string, c guarded[float32]) {
			checkResult(t, name, k, c, want, scale)
			if !slices.EqualFunc(a.buf, a0, sameBits) || !slices.EqualFunc(b.buf, b0, sameBits) {
				t.Fatalf("%s: A or B was written", name)
			}
		})
	})
}
