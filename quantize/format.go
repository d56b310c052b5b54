package quantize

import (
	"fmt"

	"github.com/actq/actq/internal/qkernel"
)

// Format is a number format that FakeQuant emulates.
type Format int

// The formats. The integer ones are affine grids y = (q − z)·s with codes
// q in the ranges below; the float ones are round-to-nearest-even casts,
// optionally scaled.
const (
	Int8    Format = iota // codes −128..127 (NarrowRange: −127..127)
	UInt8                 // codes 0..255 (NarrowRange: 1..255)
	Int4                  // codes −8..7 (NarrowRange: −7..7)
	UInt4                 // codes 0..15 (NarrowRange: 1..15)
	FP16                  // IEEE binary16: max 65504, overflow → ±Inf, subnormals from 2^-24
	BF16                  // bfloat16: float32's exponent range, 8 significand bits, overflow → ±Inf
	FP8E4M3               // OCP E4M3FN: max 448, no Inf, saturating (ONNX's default)
	FP8E5M2               // OCP E5M2: max 57344, saturating (ONNX's default)
)

// String returns the format's Go name ("Int8", "FP8E4M3", …).
func (f Format) String() string {
	switch f {
	case Int8:
		return "Int8"
	case UInt8:
		return "UInt8"
	case Int4:
		return "Int4"
	case UInt4:
		return "UInt4"
	case FP16:
		return "FP16"
	case BF16:
		return "BF16"
	case FP8E4M3:
		return "FP8E4M3"
	case FP8E5M2:
		return "FP8E5M2"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// Valid reports whether f is one of the formats above.
func (f Format) Valid() bool { return f >= Int8 && f <= FP8E5M2 }

// IsInteger reports whether f is Int8, UInt8, Int4 or UInt4.
func (f Format) IsInteger() bool { return f >= Int8 && f <= UInt4 }

// IsFloat reports whether f is FP16, BF16, FP8E4M3 or FP8E5M2.
func (f Format) IsFloat() bool { return f >= FP16 && f <= FP8E5M2 }

// Bits returns the storage width of the format in bits.
func (f Format) Bits() int {
	switch f {
	case Int8, UInt8, FP8E4M3, FP8E5M2:
		return 8
	case Int4, UInt4:
		return 4
	case FP16, BF16:
		return 16
	}
	return 0
}

// Range returns the code range [qmin, qmax] of an integer format, with the
// lowest code dropped when narrow is true. It returns (0, 0) for other
// formats.
func (f Format) Range(narrow bool) (qmin, qmax int) {
	switch f {
	case Int8:
		qmin, qmax = -128, 127
	case UInt8:
		qmin, qmax = 0, 255
	case Int4:
		qmin, qmax = -8, 7
	case UInt4:
		qmin, qmax = 0, 15
	default:
		return 0, 0
	}
	if narrow {
		qmin++
	}
	return qmin, qmax
}

// MaxFinite returns the largest finite value of a float format (65504 for
// FP16, 448 for FP8E4M3, …), and 0 for other formats.
func (f Format) MaxFinite() float64 {
	if ff := f.floatFormat(); ff.Valid() {
		return ff.Max()
	}
	return 0
}

// floatFormat maps a float format to the kernel's; 0 (invalid) otherwise.
func (f Format) floatFormat() qkernel.FloatFormat {
	switch f {
	case FP16:
		return qkernel.FP16
	case BF16:
		return qkernel.BF16
	case FP8E4M3:
		return qkernel.FP8E4M3
	case FP8E5M2:
		return qkernel.FP8E5M2
	}
	return 0
}

// Granularity says which elements share a scale (and zero point).
type Granularity int

// The granularities.
const (
	// PerTensor: one scale for the whole tensor.
	PerTensor Granularity = iota
	// PerChannel: one scale per index along Spec.Axis (for a weight
	// (out, in), Axis 0 gives one scale per output row).
	PerChannel
	// PerGroup: one scale per GroupSize consecutive elements along the last
	// axis, as int4 weight formats do (llama.cpp's Q4_0 is group 32,
	// symmetric). Scale g covers the flat (row-major) elements
	// [g·GroupSize, (g+1)·GroupSize).
	PerGroup
	// PerRow: one scale per row, a row being the elements along the last
	// axis: PerGroup with GroupSize equal to the last dimension, resolved
	// from the tensor's shape when the node is built (or the slice is
	// quantized), so one spec fits any length. On (tokens, features) it is
	// a scale per token, on attention scores (batch, heads, queries, keys)
	// a scale per query row; on a weight in the (out, in) layout, a scale
	// per output channel. It ignores Axis and GroupSize. Its results are
	// bit-identical to PerGroup with GroupSize = the last dimension.
	PerRow
)

// String returns the granularity's Go name ("PerTensor", …).
func (g Granularity) String() string {
	switch g {
	case PerTensor:
		return "PerTensor"
	case PerChannel:
		return "PerChannel"
	case PerGroup:
		return "PerGroup"
	case PerRow:
		return "PerRow"
	}
	return fmt.Sprintf("Granularity(%d)", int(g))
}
