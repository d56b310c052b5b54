package qkernel

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The benchmarks run on 1M float32 elements (4 MiB per slice) beside a copy
// of the same bytes, so that ratios can be read off one run. SetBytes
// counts every slice read or written at 4 bytes per element (8 for the
// float64 benchmarks). Run them with -tags purego for the scalar loops
// alone, and with GOEXPERIMENT=simd for the simd/archsimd kernels.

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

func BenchmarkAbsMax(b *testing.B) {
	x, _, _ := benchData(benchN)
	b.SetBytes(4 * benchN)
	b.ReportAllocs()
	for b.Loop() {
		_ = AbsMax(x)
	}
}

// int4 in groups of 32 (GGML's Q4_0 layout): fixed grids, one per group,
// and the dynamic symmetric grids computed from each group.

func group32Grids(n int) []Int[float32] {
	qs := make([]Int[float32], n/32)
	for k := range qs {
		qs[k] = NewInt[float32](float32(0.3+0.01*float64(k%50))/7, 0, -8, 7)
	}
	return qs
}

func BenchmarkFakeQuantInt4Group32(b *testing.B) {
	x, _, dst := benchData(benchN)
	qs := group32Grids(benchN)
	b.SetBytes(8 * benchN)
	b.ReportAllocs()
	for b.Loop() {
		if err := FakeQuantIntGroups(dst, x, qs); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFakeQuantInt4Group32Grad(b *testing.B) {
	x, dy, dst := benchData(benchN)
	qs := group32Grids(benchN)
	b.SetBytes(12 * benchN)
	b.ReportAllocs()
	for b.Loop() {
		if err := FakeQuantIntGroupsGrad(dst, x, dy, qs); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFakeQuantInt4Group32Dynamic(b *testing.B) {
	x, _, dst := benchData(benchN)
	b.SetBytes(8 * benchN)
	b.ReportAllocs()
	for b.Loop() {
		if err := FakeQuantIntGroupsSymmetric(dst, x, benchN/32, -8, 7, 0x1p-23); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFakeQuantInt4Group32DynamicGrad(b *testing.B) {
	x, dy, dst := benchData(benchN)
	b.SetBytes(12 * benchN)
	b.ReportAllocs()
	for b.Loop() {
		if err := FakeQuantIntGroupsSymmetricGrad(dst, x, dy, benchN/32, -8, 7, 0x1p-23); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFakeQuantInt8Float64 moves twice the bytes of the float32
// benchmarks (8 per element and slice).
func BenchmarkFakeQuantInt8Float64(b *testing.B) {
	x32, dy32, _ := benchData(benchN)
	x, dy, dst := make([]float64, benchN), make([]float64, benchN), make([]float64, benchN)
	for i := range x {
		x[i], dy[i] = float64(x32[i]), float64(dy32[i])
	}
	q := NewInt(4.0/127, 0, -128, 127)
	b.SetBytes(16 * benchN)
	b.ReportAllocs()
	for b.Loop() {
		if err := FakeQuantInt(dst, x, q); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFakeQuantInt8Float64Grad(b *testing.B) {
	x32, dy32, _ := benchData(benchN)
	x, dy, dst := make([]float64, benchN), make([]float64, benchN), make([]float64, benchN)
	for i := range x {
		x[i], dy[i] = float64(x32[i]), float64(dy32[i])
	}
	q := NewInt(3.0/127, 0, -128, 127)
	b.SetBytes(24 * benchN)
	b.ReportAllocs()
	for b.Loop() {
		if err := FakeQuantIntGrad(dst, x, dy, q); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRoundFloat casts attention-probability-like values (exponential,
// mean 2.4e-4: a quarter of them below fp16's smallest normal) to each
// format, and counts what the cast did (CountFloat), as an FP16 or BF16
// site at attention probabilities does.
func BenchmarkRoundFloat(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	x, dst := make([]float32, benchN), make([]float32, benchN)
	for i := range x {
		x[i] = float32(r.ExpFloat64() * 2.4e-4)
	}
	for _, f := range []FloatFormat{FP16, BF16, FP8E4M3} {
		b.Run(f.String(), func(b *testing.B) {
			b.SetBytes(8 * benchN)
			for b.Loop() {
				if err := RoundFloat(dst, x, f, 1); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(f.String()+"/count", func(b *testing.B) {
			if err := RoundFloat(dst, x, f, 1); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(8 * benchN)
			for b.Loop() {
				if _, err := CountFloat(x, dst, f, 1); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAccumulateFP16 accumulates 4096 rows of 32 values (one query
// row of attention's P·V at 4096 keys, head size 32) in fp16, with weights
// e^−u for u uniform in [0, 8) (none zero); SetBytes counts the values
// read.
func BenchmarkAccumulateFP16(b *testing.B) {
	const rows, n = 4096, 32
	r := rand.New(rand.NewPCG(1, 2))
	w, v := make([]float64, rows), make([]float32, rows*n)
	for j := range w {
		w[j], _ = FP16.Round(math.Exp(-8 * r.Float64()))
	}
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	acc := make([]float64, n)
	b.SetBytes(4 * rows * n)
	for b.Loop() {
		clear(acc)
		if err := AccumulateFP16(acc, w, v); err != nil {
			b.Fatal(err)
		}
	}
}
