package layerops

// moveHeads copies between the row layout (batch·seq, heads·dh) and the
// per-head layout (batch, heads, seq, dh): row b·seq+t's columns
// [h·dh, (h+1)·dh) go to block (b, h, t) when split, and back otherwise.
// dst and src each hold batch·seq·heads·dh elements.
func moveHeads[T float32 | float64](dst, src []T, batch, seq, heads, dh int, split bool) {
	d := heads * dh
	for b := range batch {
		for t := range seq {
			row := (b*seq + t) * d
			for h := range heads {
				blk := ((b*heads+h)*seq + t) * dh
				if split {
					copy(dst[blk:blk+dh], src[row+h*dh:row+(h+1)*dh])
				} else {
					copy(dst[row+h*dh:row+(h+1)*dh], src[blk:blk+dh])
				}
			}
		}
	}
}

// Transpose writes the transpose of each m×n row-major matrix of src
// (consecutive matrices) to dst as an n×m matrix: dst[j·m+i] = src[i·n+j].
// dst and src hold the same number of elements, a multiple of m·n, and
// must not overlap. It is TransposeLast's kernel.
func Transpose[T float32 | float64](dst, src []T, m, n int) {
	size := m * n
	for lo := 0; size > 0 && lo+size <= len(src); lo += size {
		TransposeTo(dst[lo:lo+size], m, src[lo:lo+size], m, n)
	}
}

// TransposeTo writes the transpose of the m×n row-major matrix src into
// the rows of dst, which are ld elements apart: dst[j·ld+i] = src[i·n+j]
// for i < m, j < n (with ld = m, dst is the n×m transpose; with a larger
// ld, the first m columns of an n×ld matrix). dst must hold (n−1)·ld+m
// elements and not overlap src. It works on square tiles, so that each
// side is read and written in cache-sized pieces rather than one of them
// with a stride of a whole row; graph uses it to transpose checkpoint
// tensors between PyTorch's (out, in) layout and its own, a block of rows
// at a time.
func TransposeTo[T float32 | float64](dst []T, ld int, src []T, m, n int) {
	const tile = 32
	for i0 := 0; i0 < m; i0 += tile {
		for j0 := 0; j0 < n; j0 += tile {
			for i := i0; i < min(i0+tile, m); i++ {
				row := src[i*n : (i+1)*n]
				for j := j0; j < min(j0+tile, n); j++ {
					dst[j*ld+i] = row[j]
				}
			}
		}
	}
}
