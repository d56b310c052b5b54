package quantize

import (
	"math/rand/v2"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Benchmarks on 1M float32 elements (a 1024×1024 weight), forward and
// backward, beside a copy of the same bytes in the same run. SetBytes counts
// every slice read or written at 4 bytes per element: forward reads x and
// writes y (8 B/element), backward reads x and dy and writes dx (12 B).
// Forward and Backward run the ops' computation into a preallocated
// output, which is what is compared with copy and with PyTorch; Do calls the
// op's Do (what the tape machine calls), which also allocates the output
// tensor, as every graph run does.
//
// Run: go test -run XXX -bench . -benchtime=20x ./quantize/
// (and with GOEXPERIMENT=simd for the AVX2 kernels).

const benchRows, benchCols = 1024, 1024

func benchInputs() (x, dy *tensor.Dense) {
	r := rand.New(rand.NewPCG(7, 8))
	xs := make([]float32, benchRows*benchCols)
	ds := make([]float32, len(xs))
	for i := range xs {
		xs[i] = float32(r.NormFloat64())
		ds[i] = float32(r.NormFloat64())
	}
	return tensor.New(tensor.WithShape(benchRows, benchCols), tensor.WithBacking(xs)),
		tensor.New(tensor.WithShape(benchRows, benchCols), tensor.WithBacking(ds))
}

func benchOp(b *testing.B, spec Spec) *fakeQuantOp {
	g := gorgonia.NewGraph()
	x := gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(benchRows, benchCols), gorgonia.WithName("x"))
	n, err := FakeQuant(x, spec)
	if err != nil {
		b.Fatal(err)
	}
	return n.Op().(*fakeQuantOp)
}

var benchSpecs = []struct {
	name string
	spec Spec
}{
	{"int8-tensor-fixed", Spec{Format: Int8, Scale: []float64{4.0 / 127}}},
	{"int8-tensor-dynamic", Spec{Format: Int8, Symmetric: true}},
	{"int4-group32-fixed", Spec{Format: Int4, Granularity: PerGroup, GroupSize: 32, Scale: groupScales()}},
	{"int4-group32-dynamic", Spec{Format: Int4, Granularity: PerGroup, GroupSize: 32, Symmetric: true}},
}

func groupScales() []float64 {
	s := make([]float64, benchRows*benchCols/32)
	for i := range s {
		s[i] = 0.3 + float64(i%17)/40
	}
	return s
}

func BenchmarkCopy(b *testing.B) {
	x, _ := benchInputs()
	src := x.Float32s()
	dst := make([]float32, len(src))
	b.SetBytes(int64(8 * len(src)))
	b.ReportAllocs()
	for b.Loop() {
		copy(dst, src)
	}
}

// BenchmarkCopyAlloc is copy into a newly allocated tensor, what an op's Do
// pays at least.
func BenchmarkCopyAlloc(b *testing.B) {
	x, _ := benchInputs()
	b.SetBytes(int64(8 * benchRows * benchCols))
	b.ReportAllocs()
	for b.Loop() {
		out := tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(benchRows, benchCols))
		copy(out.Float32s(), x.Float32s())
	}
}

func BenchmarkForward(b *testing.B) {
	x, _ := benchInputs()
	xs := x.Float32s()
	dst := make([]float32, len(xs))
	for _, c := range benchSpecs {
		op := benchOp(b, c.spec)
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(8 * len(xs)))
			b.ReportAllocs()
			for b.Loop() {
				if err := fakeQuantForward(op, op.fixed32, dst, xs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkBackward(b *testing.B) {
	x, dy := benchInputs()
	xs, dys := x.Float32s(), dy.Float32s()
	dst := make([]float32, len(xs))
	for _, c := range benchSpecs {
		op := benchOp(b, c.spec)
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(12 * len(xs)))
			b.ReportAllocs()
			for b.Loop() {
				if err := fakeQuantBackward(op, op.fixed32, dst, xs, dys); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDo is the forward op's Do, output allocation included.
func BenchmarkDo(b *testing.B) {
	x, _ := benchInputs()
	for _, c := range benchSpecs[:1] {
		op := benchOp(b, c.spec)
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(8 * benchRows * benchCols))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := op.Do(x); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkForwardStats is the int8 forward pass with a Stats attached (a
// second pass over x and y).
func BenchmarkForwardStats(b *testing.B) {
	x, _ := benchInputs()
	xs := x.Float32s()
	dst := make([]float32, len(xs))
	op := benchOp(b, benchSpecs[0].spec)
	op.opts.stats = new(Stats)
	b.SetBytes(int64(8 * len(xs)))
	b.ReportAllocs()
	for b.Loop() {
		if err := fakeQuantForward(op, op.fixed32, dst, xs); err != nil {
			b.Fatal(err)
		}
	}
}
