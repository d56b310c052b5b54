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

// swapLast writes the transpose of each m×n matrix of src (row-major,
// consecutive) to dst as an n×m matrix.
func swapLast[T float32 | float64](dst, src []T, m, n int) {
	size := m * n
	for lo := 0; lo+size <= len(src); lo += size {
		a, b := src[lo:lo+size], dst[lo:lo+size]
		for i := range m {
			row := a[i*n : (i+1)*n]
			for j, v := range row {
				b[j*m+i] = v
			}
		}
	}
}
