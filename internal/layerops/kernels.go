package layerops

// The kernels of the ops, for code that computes the same layers without a
// graph (the inference engine of package internal/infer), so that each
// formula has one implementation.

// NormRows is Norm's kernel: it writes y = (x − μ)·r ⊙ g (+ b) for every
// row of len(g) elements of x into dst, RMSNorm (μ = 0) when b is nil and
// LayerNorm otherwise, with each row's statistics accumulated in float64
// (see Norm). eps ≤ 0 is not replaced by a default here. len(x) must be a
// multiple of len(g), dst as long as x (it may be x), b nil or as long as
// g; the caller checks.
func NormRows[T float32 | float64](dst, x, g, b []T, eps float64) { normRows(dst, x, g, b, eps) }

// RoPETable writes RoPE's cosines and sines for positions offset …
// offset+seq−1 and the even head size dh into cos and sin, seq·dh/2 values
// each: entry t·dh/2 + i is the angle (offset+t)·θ^(−2i/dh), computed in
// float64 (see RoPE). It does not allocate.
func RoPETable(cos, sin []float64, theta float64, offset, seq, dh int) {
	fillRopeTable(cos, sin, theta, offset, seq, dh)
}

// RoPERotate is RoPE's kernel: it writes to dst the rows of dh elements of
// src rotated by the angles of a RoPETable for seq positions, row r of
// every block of seq rows at table row r (element i paired with i+dh/2,
// the products formed in float64 and rounded once). dst must not overlap
// src.
func RoPERotate[T float32 | float64](dst, src []T, cos, sin []float64, seq, dh int) {
	rotate(dst, src, cos, sin, seq, dh, false)
}
