package infer

import "math"

// rope rotates query and key rows by their positions (Hugging Face's
// rotate_half layout): element i < Dh/2 of a head pairs with element
// i + Dh/2, both rotated by the angle p·ω_i, ω_i = 1/θ^(2i/Dh).
type rope struct {
	invFreq []float64
	dh      int
}

func newRope(theta float64, dh int) *rope {
	r := &rope{invFreq: make([]float64, dh/2), dh: dh}
	for i := range r.invFreq {
		r.invFreq[i] = 1 / math.Pow(theta, float64(2*i)/float64(dh))
	}
	return r
}

// apply rotates x, rows of heads·Dh values, row r at position first+r.
func (r *rope) apply(x []float32, rows, heads, first int) {
	half := r.dh / 2
	for row := range rows {
		pos := float64(first + row)
		for h := range heads {
			o := (row*heads + h) * r.dh
			x1, x2 := x[o:o+half], x[o+half:o+r.dh]
			for i, f := range r.invFreq {
				sn, cs := math.Sincos(pos * f)
				a, b := float64(x1[i]), float64(x2[i])
				x1[i], x2[i] = float32(a*cs-b*sn), float32(b*cs+a*sn)
			}
		}
	}
}
