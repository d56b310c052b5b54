package kernel

import (
	"math"
	"testing"
	"unsafe"
)

const benchN = 1 << 20

func benchInputs[T Float]() (x, dy, dst []T) {
	x, dy, dst = make([]T, benchN), make([]T, benchN), make([]T, benchN)
	for i := range x {
		x[i] = T(6 * math.Sin(float64(i)*0.618))
		dy[i] = T(math.Cos(float64(i)))
	}
	return x, dy, dst
}

// BenchmarkCopy is the memory-bandwidth reference for the forward kernels:
// one slice read and one written, like a forward pass.
func BenchmarkCopy(b *testing.B) {
	x, _, dst := benchInputs[float32]()
	b.SetBytes(2 * benchN * 4)
	b.ReportAllocs()
	for b.Loop() {
		copy(dst, x)
	}
}

// BenchmarkActivations times each kernel on 1M elements: float32 on every
// path this build and CPU have (portable, avx2, avx512), and float64.
func BenchmarkActivations(b *testing.B) {
	defer func() { vecLevel = bestLevel }()
	for _, k := range activationKernels {
		for l := vecNone; l <= bestLevel; l++ {
			path := map[vecISA]string{vecNone: "portable", vecAVX2: "avx2", vecAVX512: "avx512"}[l]
			b.Run(k.op+"/float32/"+path+"/forward", func(b *testing.B) {
				vecLevel = l
				x, _, dst := benchInputs[float32]()
				b.SetBytes(2 * benchN * int64(unsafe.Sizeof(x[0])))
				b.ReportAllocs()
				for b.Loop() {
					_ = k.fwd32(dst, x)
				}
			})
			b.Run(k.op+"/float32/"+path+"/backward", func(b *testing.B) {
				vecLevel = l
				x, dy, dst := benchInputs[float32]()
				b.SetBytes(3 * benchN * int64(unsafe.Sizeof(x[0])))
				b.ReportAllocs()
				for b.Loop() {
					_ = k.grad32(dst, x, dy)
				}
			})
		}
		vecLevel = bestLevel
		b.Run(k.op+"/float64/forward", func(b *testing.B) {
			x, _, dst := benchInputs[float64]()
			b.SetBytes(2 * benchN * int64(unsafe.Sizeof(x[0])))
			b.ReportAllocs()
			for b.Loop() {
				_ = k.fwd64(dst, x)
			}
		})
	}
}
