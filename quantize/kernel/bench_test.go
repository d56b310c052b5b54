package kernel

import (
	"math/rand/v2"
	"testing"
)

// The benchmarks run on 1M float32 elements (4 MiB per slice) beside a copy
// of the same bytes, so that ratios can be read off one run. SetBytes
// counts every slice read or written at 4 bytes per element.

const benchN = 1 << 20

func benchData(n int) (x, dy, dst []float32) {
	r := rand.New(rand.NewPCG(1, 2))
	x, dy, dst = make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
		dy[i] = float32(r.NormFloat64())
	}
	return x, dy, dst
}

func BenchmarkCopy(b *testing.B) {
	x, _, dst := benchData(benchN)
	b.SetBytes(8 * benchN)
	b.ReportAllocs()
	for b.Loop() {
		copy(dst, x)
	}
}

func BenchmarkFakeQuantInt8(b *testing.B) {
	x, _, dst := benchData(benchN)
	q := NewInt[float32](4.0/127, 0, -128, 127)
	b.SetBytes(8 * benchN)
	b.ReportAllocs()
	for b.Loop() {
		if err := FakeQuantInt(dst, x, q); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFakeQuantInt8Grad(b *testing.B) {
	x, dy, dst := benchData(benchN)
	q := NewInt[float32](3.0/127, 0, -128, 127)
	b.SetBytes(12 * benchN)
	b.ReportAllocs()
	for b.Loop() {
		if err := FakeQuantIntGrad(dst, x, dy, q); err != nil {
			b.Fatal(err)
		}
	}
}
