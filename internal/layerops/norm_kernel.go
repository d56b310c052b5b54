package layerops

import "math"

// The norm kernels work on the rows of x, each len(g) elements long; x,
// dst and dy (where present) have one length, a multiple of len(g), which
// the ops' shape checks guarantee. Row statistics and sums are float64
// whatever T.

// rowStats returns the row's mean μ (0 for RMSNorm) and r = 1/√(var + ε),
// var being the mean square about μ.
func rowStats[T float32 | float64](row []T, layer bool, eps float64) (mu, r float64) {
	d := float64(len(row))
	if layer {
		for _, v := range row {
			mu += float64(v)
		}
		mu /= d
	}
	var ss float64
	for _, v := range row {
		c := float64(v) - mu
		ss += c * c
	}
	return mu, 1 / math.Sqrt(ss/d+eps)
}

// normRows writes y = (x − μ)·r ⊙ g for every row of x, plus b when b is
// not nil (LayerNorm); with b nil it is RMSNorm (μ = 0). b, if given, has
// len(g) elements.
func normRows[T float32 | float64](dst, x, g, b []T, eps float64) {
	d := len(g)
	for lo := 0; d > 0 && lo < len(x); lo += d {
		row, out := x[lo:lo+d], dst[lo:lo+d]
		mu, r := rowStats(row, b != nil, eps)
		for j, v := range row {
			out[j] = T((float64(v) - mu) * r * float64(g[j]))
		}
		if b != nil {
			for j := range out {
				out[j] += b[j]
			}
		}
	}
}

// normGradX writes dx for y = normRows(x, g, …) and the output gradient dy:
//
//	x̂ = (x − μ)·r,  u = g ⊙ dy
//	dx = r·(u − x̂·mean(u ⊙ x̂))            (RMSNorm: μ = 0)
//	dx = r·(u − mean(u) − x̂·mean(u ⊙ x̂))  (LayerNorm)
func normGradX[T float32 | float64](dst, x, g, dy []T, layer bool, eps float64) {
	d := len(g)
	for lo := 0; d > 0 && lo < len(x); lo += d {
		row, drow := x[lo:lo+d], dy[lo:lo+d]
		mu, r := rowStats(row, layer, eps)
		var su, sux float64
		for j, v := range row {
			u := float64(g[j]) * float64(drow[j])
			su += u
			sux += u * (float64(v) - mu) * r
		}
		mu1, mux := su/float64(d), sux/float64(d)
		if !layer {
			mu1 = 0
		}
		out := dst[lo : lo+d]
		for j, v := range row {
			u := float64(g[j]) * float64(drow[j])
			out[j] = T(r * (u - mu1 - (float64(v)-mu)*r*mux))
		}
	}
}

// normGradG writes the gain's gradient dg = Σ_rows dy ⊙ x̂ (len(dst) = D),
// x̂ = (x − μ)·r.
func normGradG[T float32 | float64](dst, x, dy []T, layer bool, eps float64) {
	d := len(dst)
	acc := make([]float64, d)
	for lo := 0; d > 0 && lo < len(x); lo += d {
		row, drow := x[lo:lo+d], dy[lo:lo+d]
		mu, r := rowStats(row, layer, eps)
		for j, v := range row {
			acc[j] += float64(drow[j]) * (float64(v) - mu) * r
		}
	}
	for j, v := range acc {
		dst[j] = T(v)
	}
}
