package layerops

import (
	"math"

	"github.com/actq/actq/internal/parallel"
)

// The norm kernels work on the rows of x, each len(g) elements long; x,
// dst and dy (where present) have one length, a multiple of len(g), which
// the ops' shape checks guarantee. Row statistics and sums are float64
// whatever T, each summed in four interleaved partial sums (so that the
// additions do not wait on one another) added at the end. Rows are split
// across goroutines when there are many: every row's result is computed
// alone, and the gain's gradient adds up fixed blocks of rows in order, so
// the results do not depend on the number of goroutines.

// normGrain is the fewest elements worth handing to another goroutine.
const normGrain = 1 << 14

// normRowsPer returns the rows of d elements in one piece of normGrain.
func normRowsPer(d int) int { return max(normGrain/max(d, 1), 1) }

// rowSum returns Σ row[j] in four interleaved partial sums (kept in
// registers: not an array, which the compiler keeps in memory).
func rowSum[T float32 | float64](row []T) float64 {
	var s0, s1, s2, s3 float64
	j := 0
	for ; j+4 <= len(row); j += 4 {
		r := row[j : j+4 : j+4]
		s0 += float64(r[0])
		s1 += float64(r[1])
		s2 += float64(r[2])
		s3 += float64(r[3])
	}
	for ; j < len(row); j++ {
		s0 += float64(row[j])
	}
	return (s0 + s1) + (s2 + s3)
}

// rowSumSq returns Σ (row[j] − mu)² in four interleaved partial sums.
func rowSumSq[T float32 | float64](row []T, mu float64) float64 {
	var s0, s1, s2, s3 float64
	j := 0
	for ; j+4 <= len(row); j += 4 {
		r := row[j : j+4 : j+4]
		c0, c1 := float64(r[0])-mu, float64(r[1])-mu
		c2, c3 := float64(r[2])-mu, float64(r[3])-mu
		s0 += c0 * c0
		s1 += c1 * c1
		s2 += c2 * c2
		s3 += c3 * c3
	}
	for ; j < len(row); j++ {
		c := float64(row[j]) - mu
		s0 += c * c
	}
	return (s0 + s1) + (s2 + s3)
}

// rowStats returns the row's mean μ (0 for RMSNorm) and r = 1/√(var + ε),
// var being the mean square about μ.
func rowStats[T float32 | float64](row []T, layer bool, eps float64) (mu, r float64) {
	d := float64(len(row))
	if layer {
		mu = rowSum(row) / d
	}
	return mu, 1 / math.Sqrt(rowSumSq(row, mu)/d+eps)
}

// normRows writes y = (x − μ)·r ⊙ g for every row of x, plus b when b is
// not nil (LayerNorm); with b nil it is RMSNorm (μ = 0). b, if given, has
// len(g) elements.
func normRows[T float32 | float64](dst, x, g, b []T, eps float64) {
	d := len(g)
	if d == 0 {
		return
	}
	rows, per := len(x)/d, normRowsPer(d)
	if parallel.Workers(rows, per) <= 1 { // no closure: a decoding step's one row allocates nothing
		normRowRange(dst, x, g, b, eps, 0, rows)
		return
	}
	_ = parallel.For(rows, per, func(lo, hi int) error {
		normRowRange(dst, x, g, b, eps, lo, hi)
		return nil
	})
}

// normRowRange is normRows on the rows lo … hi−1.
func normRowRange[T float32 | float64](dst, x, g, b []T, eps float64, lo, hi int) {
	d := len(g)
	for i := lo; i < hi; i++ {
		row, out := x[i*d:(i+1)*d:(i+1)*d], dst[i*d:(i+1)*d:(i+1)*d]
		mu, r := rowStats(row, b != nil, eps)
		g := g[:len(row)]
		for j, v := range row {
			out[j] = T((float64(v) - mu) * r * float64(g[j]))
		}
		if b != nil {
			b := b[:len(out)]
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
	if d == 0 {
		return
	}
	_ = parallel.For(len(x)/d, normRowsPer(d), func(lo, hi int) error {
		for i := lo; i < hi; i++ {
			row, drow := x[i*d:(i+1)*d], dy[i*d:(i+1)*d]
			mu, r := rowStats(row, layer, eps)
			var su0, su1, sx0, sx1 float64 // Σ u and Σ u·(x − μ), two partial sums each
			j := 0
			for ; j+2 <= d; j += 2 {
				gg, dd, xx := g[j:j+2:j+2], drow[j:j+2:j+2], row[j:j+2:j+2]
				u0, u1 := float64(gg[0])*float64(dd[0]), float64(gg[1])*float64(dd[1])
				su0 += u0
				su1 += u1
				sx0 += u0 * (float64(xx[0]) - mu)
				sx1 += u1 * (float64(xx[1]) - mu)
			}
			for ; j < d; j++ {
				u := float64(g[j]) * float64(drow[j])
				su0 += u
				sx0 += u * (float64(row[j]) - mu)
			}
			mu1 := (su0 + su1) / float64(d)
			mux := (sx0 + sx1) * r / float64(d)
			if !layer {
				mu1 = 0
			}
			out, g, drow := dst[i*d:(i+1)*d:(i+1)*d], g[:len(row)], drow[:len(row)]
			for j, v := range row {
				u := float64(g[j]) * float64(drow[j])
				out[j] = T(r * (u - mu1 - (float64(v)-mu)*r*mux))
			}
		}
		return nil
	})
}

// normGradG writes the gain's gradient dg = Σ_rows dy ⊙ x̂ (len(dst) = D),
// x̂ = (x − μ)·r: each block of normRowsPer(D) rows is summed on its own
// (blocks in parallel), and the blocks' sums are added in order.
func normGradG[T float32 | float64](dst, x, dy []T, layer bool, eps float64) {
	d := len(dst)
	if d == 0 {
		return
	}
	rows, per := len(x)/d, normRowsPer(d)
	blocks := (rows + per - 1) / per
	acc := make([]float64, blocks*d)
	_ = parallel.For(blocks, 1, func(lo, hi int) error {
		for blk := lo; blk < hi; blk++ {
			a := acc[blk*d : (blk+1)*d]
			for i := blk * per; i < min((blk+1)*per, rows); i++ {
				row, drow := x[i*d:(i+1)*d:(i+1)*d], dy[i*d:(i+1)*d:(i+1)*d]
				mu, r := rowStats(row, layer, eps)
				a, drow := a[:len(row)], drow[:len(row)]
				for j, v := range row {
					a[j] += float64(drow[j]) * (float64(v) - mu) * r
				}
			}
		}
		return nil
	})
	for j := range dst {
		s := 0.0
		for blk := range blocks {
			s += acc[blk*d+j]
		}
		dst[j] = T(s)
	}
}
