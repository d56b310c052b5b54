package layerops

import "math"

// ropeTable returns the cosines and sines of rotary position embeddings
// for positions offset … offset+seq−1 and head size dh (even): entry
// t·dh/2 + i belongs to position offset+t and frequency i, whose angle is
// (offset+t)·invFreq[i], invFreq[i] = 1/θ^(2i/dh). Everything is computed
// in float64.
func ropeTable(theta float64, offset, seq, dh int) (cos, sin []float64) {
	cos, sin = make([]float64, seq*dh/2), make([]float64, seq*dh/2)
	fillRopeTable(cos, sin, theta, offset, seq, dh)
	return cos, sin
}

// fillRopeTable writes ropeTable's values into cos and sin (seq·dh/2
// values each), without allocating.
func fillRopeTable(cos, sin []float64, theta float64, offset, seq, dh int) {
	half := dh / 2
	for i := range half {
		f := 1 / math.Pow(theta, float64(2*i)/float64(dh))
		for t := range seq {
			sin[t*half+i], cos[t*half+i] = math.Sincos(float64(offset+t) * f)
		}
	}
}

// rotate applies the rotations of a ropeTable to src and writes the result
// to dst (which may not alias src): src holds blocks of seq rows of dh
// elements, row t of every block rotated by the angles of position t,
// element i paired with element i+dh/2 (Hugging Face's rotate_half
// layout):
//
//	dst[i]      = src[i]·cos − src[i+dh/2]·sin
//	dst[i+dh/2] = src[i+dh/2]·cos + src[i]·sin
//
// With inverse set, every angle is negated (sin → −sin), which is the
// transposed rotation, i.e. the backward pass. The products are formed in
// float64 and rounded once to T.
func rotate[T float32 | float64](dst, src []T, cos, sin []float64, seq, dh int, inverse bool) {
	half := dh / 2
	sign := 1.0
	if inverse {
		sign = -1
	}
	for lo := 0; lo+dh <= len(src); lo += dh {
		t := (lo / dh) % seq
		c, s := cos[t*half:(t+1)*half], sin[t*half:(t+1)*half]
		x1, x2 := src[lo:lo+half], src[lo+half:lo+dh]
		y1, y2 := dst[lo:lo+half], dst[lo+half:lo+dh]
		for i := range half {
			a, b, si := float64(x1[i]), float64(x2[i]), sign*s[i]
			y1[i] = T(a*c[i] - b*si)
			y2[i] = T(b*c[i] + a*si)
		}
	}
}
