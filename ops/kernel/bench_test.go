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

func BenchmarkActivations(b *testing.B) {
	for _, k := range activationKernels {
		b.Run(k.op+"/float32/forward", func(b *testing.B) {
			x, _, dst := benchInputs[float32]()
			b.SetBytes(2 * benchN * int64(unsafe.Sizeof(x[0])))
			b.ReportAllocs()
			for b.Loop() {
				_ = k.fwd32(dst, x)
			}
		})
		b.Run(k.op+"/float32/backward", func(b *testing.B) {
			x, dy, dst := benchInputs[float32]()
			b.SetBytes(3 * benchN * int64(unsafe.Sizeof(x[0])))
			b.ReportAllocs()
			for b.Loop() {
				_ = k.grad32(dst, x, dy)
			}
		})
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
