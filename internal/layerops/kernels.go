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
