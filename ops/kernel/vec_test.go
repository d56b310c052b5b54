package kernel

import (
	"crypto/sha256"
	"encoding/binary"
	"flag"
	"fmt"
	"math"
	"testing"
)

var printDigests = flag.Bool("print-digests", false, "TestVectorDigests: print the digests of this build's AVX2 path, for vectorDigests")

// vectorDigests are SHA-256 prefixes of the AVX2 path's results on
// digestInputs, forward and backward, recorded from the GOEXPERIMENT=simd
// build (simd_avx2_amd64.go). The default build's assembly
// (activation_amd64.s) must give the same bits, NaN payloads included.
// After a deliberate change to the vector code, regenerate the assembly
// and record the new values with
//
//	GOEXPERIMENT=simd go test ./ops/kernel -run TestVectorDigests -v -args -print-digests
var vectorDigests = map[string]string{
	"gelu forward":       "9099490ffeeeb8db7a14841d",
	"gelu backward":      "3444abb18a3e1c786f41a8c8",
	"gelu_tanh forward":  "832bc3d6a1d977ad2f5c7186",
	"gelu_tanh backward": "ddad761c3ab22a9ce1a9345f",
	"silu forward":       "96f12b65d83ea4e2cf4c2abd",
	"silu backward":      "ab214ad6d9c62bd703b4fbdc",
	"relu forward":       "7840807015bb47eb91557356",
	"relu backward":      "ad5dcd6694ccc0a43f2077b0",
}

// digestInputs returns x spread evenly in bit pattern over [−110, 110]
// (so subnormal and underflowing results are included), then special
// values; dy is 1, 2 or 3, with some special values too. The length is not
// a multiple of 8, so the last partial vector is included.
func digestInputs() (x, dy []float32) {
	const n = 1 << 20
	lo, hi := ordered32(-110), ordered32(110)
	for i := range n {
		x = append(x, fromOrdered32(lo+int64(i)*(hi-lo)/n))
		dy = append(dy, float32(1+i%3))
	}
	inf, nan := float32(math.Inf(1)), float32(math.NaN())
	payload := math.Float32frombits(0x7fc12345)
	for _, v := range []float32{0, inf, nan, payload, 1e-45, 0x1p-126, 0x1.fffffep-127, 1e-30, 0.75, 15, 20, 21, 50, 51, 105, 199, 200, 201, 3e38, math.MaxFloat32} {
		for _, s := range []float32{1, -1} {
			x = append(x, s*v)
			dy = append(dy, 1)
		}
	}
	for _, d := range []float32{0, float32(math.Copysign(0, -1)), inf, -inf, nan, payload, 1e-45, -3e38} {
		for _, v := range []float32{-3, -0.5, 0, 2, nan, -inf} {
			x = append(x, v)
			dy = append(dy, d)
		}
	}
	for _, v := range []float32{0.5, -0.5, 1, -1, 7} { // 5 more: a partial vector
		x = append(x, v)
		dy = append(dy, 1)
	}
	return x, dy
}

// TestVectorDigests checks that the AVX2 path gives the bits that the
// archsimd AVX2 code gives, in whichever build runs it: the assembly of the
// default build and the GOEXPERIMENT=simd build both match vectorDigests.
func TestVectorDigests(t *testing.T) {
	if bestLevel < vecAVX2 {
		t.Skip("no AVX2 path in this build or on this CPU")
	}
	defer func() { vecLevel = bestLevel }()
	vecLevel = vecAVX2
	x, dy := digestInputs()
	if len(x)%8 == 0 {
		t.Fatalf("len(x) = %d: want a last partial vector", len(x))
	}
	out := make([]float32, len(x))
	for _, k := range activationKernels {
		for _, pass := range []string{"forward", "backward"} {
			if pass == "forward" {
				_ = k.fwd32(out, x)
			} else {
				_ = k.grad32(out, x, dy)
			}
			h := sha256.New()
			_ = binary.Write(h, binary.LittleEndian, out)
			got := fmt.Sprintf("%x", h.Sum(nil)[:12])
			key := k.op + " " + pass
			if *printDigests {
				fmt.Printf("\t%q: %q,\n", key, got)
				continue
			}
			if want := vectorDigests[key]; got != want {
				t.Errorf("%s on %s: digest %s, want %s", key, VectorISA(), got, want)
			}
		}
	}
}

// TestVectorTails checks on every path that a kernel's result for an
// element does not depend on its position: each sub-slice x[off:off+n]
// (all offsets within a vector, all lengths up to 40, so every tail
// length) gives the bits of the whole slice's result.
func TestVectorTails(t *testing.T) {
	inf, nan := float32(math.Inf(1)), float32(math.NaN())
	x := []float32{-0.3, 2, -7, 0, inf, 1e-40, -12, 0.75, nan, -inf, 5, -1.5, 19, -40, 3e-8, -0.01}
	for len(x) < 48 {
		x = append(x, float32(len(x))/4-6)
	}
	dy := make([]float32, len(x))
	for i := range dy {
		dy[i] = float32(i%7) - 2.5
	}
	forEachPath(t, func(t *testing.T, _ bool) {
		full, part := make([]float32, len(x)), make([]float32, len(x))
		for _, k := range activationKernels {
			for _, pass := range []string{"forward", "backward"} {
				run := func(dst, x, dy []float32) {
					if pass == "forward" {
						_ = k.fwd32(dst, x)
					} else {
						_ = k.grad32(dst, x, dy)
					}
				}
				run(full, x, dy)
			offsets:
				for off := range 8 {
					for n := 0; off+n <= 40; n++ {
						run(part[:n], x[off:off+n], dy[off:off+n])
						for i := range n {
							if math.Float32bits(part[i]) != math.Float32bits(full[off+i]) {
								t.Errorf("%s %s(%g): %g at element %d of %d, %g at %d", k.op, pass, x[off+i], part[i], i, n, full[off+i], off+i)
								break offsets
							}
						}
					}
				}
			}
		}
	})
}
