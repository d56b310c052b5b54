package safetensors

import (
	"math"
	"strconv"
)

// Dtype is the element type of a tensor, as a safetensors header names it.
// The zero Dtype is no type at all; in a Tensor given to Write it means F32.
type Dtype uint8

// The dtypes of the reference implementation, in its order (increasing
// alignment, which is also the order its writer sorts by, descending).
// Every one of them parses; ReadFloat32 converts F32, F16 and BF16, and
// Write writes F32 and BF16.
const (
	BOOL Dtype = iota + 1
	F4
	F6_E2M3
	F6_E3M2
	U8
	I8
	F8_E5M2
	F8_E4M3
	F8_E8M0
	F8_E4M3FNUZ
	F8_E5M2FNUZ
	I16
	U16
	F16
	BF16
	I32
	U32
	F32
	C64
	F64
	I64
	U64
)

var dtypeNames = [...]string{
	BOOL: "BOOL", F4: "F4", F6_E2M3: "F6_E2M3", F6_E3M2: "F6_E3M2",
	U8: "U8", I8: "I8", F8_E5M2: "F8_E5M2", F8_E4M3: "F8_E4M3",
	F8_E8M0: "F8_E8M0", F8_E4M3FNUZ: "F8_E4M3FNUZ", F8_E5M2FNUZ: "F8_E5M2FNUZ",
	I16: "I16", U16: "U16", F16: "F16", BF16: "BF16", I32: "I32", U32: "U32",
	F32: "F32", C64: "C64", F64: "F64", I64: "I64", U64: "U64",
}

var dtypeBits = [...]uint8{
	BOOL: 8, F4: 4, F6_E2M3: 6, F6_E3M2: 6, U8: 8, I8: 8, F8_E5M2: 8,
	F8_E4M3: 8, F8_E8M0: 8, F8_E4M3FNUZ: 8, F8_E5M2FNUZ: 8, I16: 16, U16: 16,
	F16: 16, BF16: 16, I32: 32, U32: 32, F32: 32, C64: 64, F64: 64, I64: 64,
	U64: 64,
}

// String returns the dtype's name in a header ("F32", "BF16", …), or
// "Dtype(n)" for a value that is none of the constants.
func (d Dtype) String() string {
	if d.valid() {
		return dtypeNames[d]
	}
	return "Dtype(" + strconv.Itoa(int(d)) + ")"
}

// Bits returns the size of one element in bits (4 for F4, 6 for the F6
// types, 0 for an invalid Dtype).
func (d Dtype) Bits() int {
	if d.valid() {
		return int(dtypeBits[d])
	}
	return 0
}

func (d Dtype) valid() bool { return d >= BOOL && d <= U64 }

// ParseDtype returns the Dtype a header names, and false for a name the
// format does not define. Names are case-sensitive, as in the reference.
func ParseDtype(name string) (Dtype, bool) {
	for d := BOOL; d <= U64; d++ {
		if dtypeNames[d] == name {
			return d, true
		}
	}
	return 0, false
}

// HalfToFloat32 returns the IEEE 754 binary16 value with bits h as a
// float32. Every binary16 value is a float32 value, so the result is exact:
// subnormals (exponent field 0) become normal float32s, ±0 keep their sign,
// ±Inf stay infinite and NaNs stay NaN with their sign and payload (shifted
// into the top mantissa bits), made quiet as IEEE 754 conversions and
// PyTorch (the x86 F16C instructions) make them.
//
//	HalfToFloat32(0x3c00) = 1
//	HalfToFloat32(0x0001) = 2⁻²⁴ (the smallest subnormal)
//	HalfToFloat32(0x7bff) = 65504 (the largest finite value)
//	HalfToFloat32(0x7c00) = +Inf
func HalfToFloat32(h uint16) float32 {
	// The exponent and mantissa fields, placed where float32 keeps them,
	// read as a float32 of exponent bias 127 instead of 15: multiplying by
	// 2¹¹² rebiases them exactly, subnormals included (they become normal).
	f := math.Float32frombits(uint32(h&0x7fff)<<13) * 0x1p112
	if h&0x7c00 == 0x7c00 {
		// Inf and NaN; a NaN is made quiet, as the F16C instructions do.
		quiet := uint32(0)
		if h&0x3ff != 0 {
			quiet = 0x400000
		}
		f = math.Float32frombits(0x7f800000 | quiet | uint32(h&0x3ff)<<13)
	}
	return math.Float32frombits(math.Float32bits(f) | uint32(h&0x8000)<<16)
}

// BFloat16ToFloat32 returns the bfloat16 value with bits b as a float32:
// bfloat16 is the top half of a float32, so the result is exact, with NaN
// payloads kept.
func BFloat16ToFloat32(b uint16) float32 {
	return math.Float32frombits(uint32(b) << 16)
}

// Float32ToBFloat16 returns the bits of x rounded to bfloat16, to nearest
// with ties to even, as PyTorch's float32 → bfloat16 conversion does.
// Values that round beyond the largest bfloat16 (about 3.39e38) become ±Inf;
// a NaN stays NaN (made quiet, sign and top payload bits kept; PyTorch's
// vectorized conversion writes every NaN as 0xffff instead).
func Float32ToBFloat16(x float32) uint16 {
	u := math.Float32bits(x)
	if u&0x7fffffff > 0x7f800000 {
		return uint16(u>>16) | 0x40
	}
	// Adding 0x7fff rounds up the upper half exactly when the dropped half
	// is above 0x8000; the lowest kept bit breaks the tie to even.
	return uint16((u + 0x7fff + (u>>16)&1) >> 16)
}
