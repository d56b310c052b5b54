package layerops

import "github.com/actq/actq/internal/parallel"

// causal is the causal structure of attention's products: the rows of a
// scores or probabilities matrix come in segments of queries rows (all of
// them when queries is 0), and row r of a segment is the query at position
// offset+r, which sees keys 0 … offset+r.
type causal struct {
	offset, queries int
}

// visible returns the keys query r of a segment sees among tk.
func (c causal) visible(r, tk int) int { return min(c.offset+r+1, tk) }

// segment returns the rows of a segment of a matrix of m rows.
func (c causal) segment(m int) int {
	if c.queries <= 0 {
		return m
	}
	return c.queries
}

// tileRows returns the rows of scores computed together: a multiple of 48
// (a whole number of row blocks of every GEMM micro-kernel: 2, 3, 4, 6 or
// 12 rows), large enough for the GEMM to run well, and about an eighth of
// a long segment, so that the skipped tiles are most of the masked part.
func tileRows(seg int) int { return max(48, (seg/8+47)/48*48) }

// causalScores computes the visible entries of S = α·A·Bᵀ for one matrix,
// a (m×d, row-major) holding the queries and b (tk×d) the keys, into s
// (m×tk): tile by tile of rows, the columns up to the last key the tile's
// last query sees. Whole tiles above the diagonal are skipped, about half
// the product for a long sequence; the masked entries of the tiles on the
// diagonal are computed too, and the others are left as they were.
func causalScores[T float32 | float64](c causal, m, tk, d int, alpha T, a, b, s []T) {
	seg := c.segment(m)
	rb := tileRows(seg)
	for s0 := 0; s0 < m; s0 += seg {
		for i0 := 0; i0 < seg; i0 += rb {
			i1 := min(i0+rb, seg)
			hi := c.visible(i1-1, tk)
			if hi <= 0 {
				continue
			}
			r := s0 + i0
			gemm(false, true, i1-i0, hi, d, alpha, a[r*d:], max(d, 1), b, max(d, 1), s[r*tk:], max(tk, 1), false)
		}
	}
}

// causalBatchedScores runs causalScores on each of batch matrices (split
// over goroutines when large): a holds batch m×d matrices, b batch tk×d
// and s batch m×tk.
func causalBatchedScores[T float32 | float64](c causal, batch, m, d, tk int, alpha T, a, b, s []T) error {
	per := max(m*d*tk/2, 1)
	return parallel.For(batch, max(gemmMinWork/per, 1), func(lo, hi int) error {
		for i := lo; i < hi; i++ {
			causalScores(c, m, tk, d, alpha, a[i*m*d:(i+1)*m*d], b[i*tk*d:(i+1)*tk*d], s[i*m*tk:(i+1)*m*tk])
		}
		return nil
	})
}
