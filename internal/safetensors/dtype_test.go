package safetensors_test

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/actq/actq/internal/safetensors"
)

// TestHalfToFloat32Exhaustive checks every binary16 bit pattern against the
// definition: (−1)^s · 2^(e−15) · (1 + m/2¹⁰) for normal numbers,
// (−1)^s · 2^−14 · m/2¹⁰ for subnormals, ±Inf and NaN (payload kept,
// made quiet) for e = 31.
func TestHalfToFloat32Exhaustive(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		s, e, m := h>>15, (h>>10)&0x1f, h&0x3ff
		got := safetensors.HalfToFloat32(uint16(h))
		var want float64
		switch {
		case e == 0x1f && m == 0:
			want = math.Inf(1)
		case e == 0x1f:
			if !math.IsNaN(float64(got)) || math.Float32bits(got)&0x7fffff != uint32(m|0x200)<<13 || (math.Float32bits(got)>>31) != uint32(s) {
				t.Fatalf("HalfToFloat32(%#04x) = %#08x, want quiet NaN with payload %#x", h, math.Float32bits(got), m)
			}
			continue
		case e == 0:
			want = math.Ldexp(float64(m), -24)
		default:
			want = math.Ldexp(float64(1024+m), e-25)
		}
		if s == 1 {
			want = -want
		}
		if math.Float32bits(got) != math.Float32bits(float32(want)) {
			t.Fatalf("HalfToFloat32(%#04x) = %g (%#08x), want %g", h, got, math.Float32bits(got), want)
		}
	}
}

// TestBFloat16ToFloat32Exhaustive checks every bfloat16 pattern: the top
// half of a float32.
func TestBFloat16ToFloat32Exhaustive(t *testing.T) {
	for b := 0; b < 1<<16; b++ {
		got := safetensors.BFloat16ToFloat32(uint16(b))
		if math.Float32bits(got) != uint32(b)<<16 {
			t.Fatalf("BFloat16ToFloat32(%#04x) = %#08x", b, math.Float32bits(got))
		}
	}
}

// bf16Ref rounds x to bfloat16 by comparing distances: of the two
// bfloat16 neighbours of x (truncation and the next value away from zero,
// Inf counting as 2¹²⁸ after the largest finite value), the nearer, or on
// a tie the one whose last bit is 0. Both distances are exact in float64:
// x has 24 significant bits and lies within a factor 2 of each neighbour.
func bf16Ref(x float32) uint16 {
	u := math.Float32bits(x)
	if x != x {
		return uint16(u>>16) | 0x40
	}
	lo := uint16(u >> 16)
	if u&0xffff == 0 {
		return lo
	}
	hi := lo + 1
	exact := math.Abs(float64(x))
	a := math.Abs(float64(math.Float32frombits(uint32(lo) << 16)))
	b := math.Ldexp(1, 128)
	if hi&0x7fff != 0x7f80 {
		b = math.Abs(float64(math.Float32frombits(uint32(hi) << 16)))
	}
	switch da, db := exact-a, b-exact; {
	case da < db:
		return lo
	case da > db:
		return hi
	case lo&1 == 0:
		return lo
	}
	return hi
}

// TestFloat32ToBFloat16 compares the rounding with bf16Ref on the
// special values, every tie and near-tie around 64 exponents, and a
// million random bit patterns.
func TestFloat32ToBFloat16(t *testing.T) {
	xs := []float32{0, float32(math.Copysign(0, -1)), 1, -1, math.MaxFloat32, -math.MaxFloat32,
		math.SmallestNonzeroFloat32, float32(math.Inf(1)), float32(math.Inf(-1)), 0x1.fffffep127, 3.3895314e38, 3.3961776e38}
	for e := -149; e < 128; e += 4 {
		for _, low := range []uint32{0x7fff, 0x8000, 0x8001, 0x18000, 0x17fff, 0x18001} {
			base := math.Float32bits(float32(math.Ldexp(1, e))) &^ 0x1ffff
			xs = append(xs, math.Float32frombits(base|low), -math.Float32frombits(base|low))
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 1_000_000 {
		xs = append(xs, math.Float32frombits(r.Uint32()))
	}
	for _, x := range xs {
		if got, want := safetensors.Float32ToBFloat16(x), bf16Ref(x); got != want {
			t.Fatalf("Float32ToBFloat16(%g = %#08x) = %#04x, want %#04x", x, math.Float32bits(x), got, want)
		}
	}
	// NaNs stay NaN, quiet, with their sign.
	for _, u := range []uint32{0x7f800001, 0xff800001, 0x7fc00000, 0x7f80ffff} {
		b := safetensors.Float32ToBFloat16(math.Float32frombits(u))
		if f := safetensors.BFloat16ToFloat32(b); f == f || b&0x40 == 0 || b>>15 != uint16(u>>31) {
			t.Errorf("Float32ToBFloat16(NaN %#08x) = %#04x", u, b)
		}
	}
}

func TestDtypeNames(t *testing.T) {
	for d := safetensors.BOOL; d <= safetensors.U64; d++ {
		got, ok := safetensors.ParseDtype(d.String())
		if !ok || got != d {
			t.Errorf("ParseDtype(%q) = %v, %v", d.String(), got, ok)
		}
		if d.Bits() == 0 {
			t.Errorf("%v.Bits() = 0", d)
		}
	}
	for _, tc := range []struct {
		d    safetensors.Dtype
		bits int
	}{{safetensors.F32, 32}, {safetensors.BF16, 16}, {safetensors.F16, 16}, {safetensors.F4, 4}, {safetensors.F6_E2M3, 6}, {safetensors.I64, 64}, {0, 0}, {99, 0}} {
		if got := tc.d.Bits(); got != tc.bits {
			t.Errorf("%v.Bits() = %d, want %d", tc.d, got, tc.bits)
		}
	}
	if _, ok := safetensors.ParseDtype("float32"); ok {
		t.Error(`ParseDtype("float32") succeeded`)
	}
	if s := safetensors.Dtype(0).String(); s != "Dtype(0)" {
		t.Errorf("Dtype(0).String() = %q", s)
	}
}

// TestConversionsMatchPyTorch compares the conversions with PyTorch's on
// the bit patterns scripts/goldens/gen_llama.py chose (testdata/llama/
// dtypes.json): binary16 and bfloat16 → float32, and float32 → bfloat16
// (ties, near-ties, overflow to Inf, NaN, random patterns).
func TestConversionsMatchPyTorch(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "llama", "dtypes.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		HalfBits  []uint16 `json:"half_bits"`
		F16ToF32  []uint32 `json:"f16_to_f32_bits"`
		BF16ToF32 []uint32 `json:"bf16_to_f32_bits"`
		F32Bits   []uint32 `json:"f32_bits"`
		F32ToBF16 []uint16 `json:"f32_to_bf16_bits"`
	}
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.HalfBits) < 200 || len(g.F32Bits) < 300 || len(g.F16ToF32) != len(g.HalfBits) || len(g.BF16ToF32) != len(g.HalfBits) || len(g.F32ToBF16) != len(g.F32Bits) {
		t.Fatalf("dtypes.json: %d, %d, %d half patterns, %d, %d float32 patterns", len(g.HalfBits), len(g.F16ToF32), len(g.BF16ToF32), len(g.F32Bits), len(g.F32ToBF16))
	}
	for i, h := range g.HalfBits {
		if got := math.Float32bits(safetensors.HalfToFloat32(h)); got != g.F16ToF32[i] {
			t.Errorf("HalfToFloat32(%#04x) = %#08x, PyTorch %#08x", h, got, g.F16ToF32[i])
		}
		if got := math.Float32bits(safetensors.BFloat16ToFloat32(h)); got != g.BF16ToF32[i] {
			t.Errorf("BFloat16ToFloat32(%#04x) = %#08x, PyTorch %#08x", h, got, g.BF16ToF32[i])
		}
	}
	for i, u := range g.F32Bits {
		got := safetensors.Float32ToBFloat16(math.Float32frombits(u))
		want := g.F32ToBF16[i]
		if got != want {
			// NaN: PyTorch's vectorized conversion writes every NaN as
			// 0xffff; this package keeps the sign and top payload bits.
			// Both must be NaN.
			if f := math.Float32frombits(u); f != f && isNaN16(got) && isNaN16(want) {
				continue
			}
			t.Errorf("Float32ToBFloat16(%#08x) = %#04x, PyTorch %#04x", u, got, want)
		}
	}
}

func isNaN16(b uint16) bool { f := safetensors.BFloat16ToFloat32(b); return f != f }
