package kernel

// NonFinite counts the NaN, +Inf and −Inf elements of x and returns the
// index of the first of them (−1 when every element is finite).
//
// It never allocates.
func NonFinite[T Float](x []T) (nan, posInf, negInf, first int) {
	first = -1
	for i, v := range x {
		f := float64(v)
		if f-f == 0 { // finite; NaN and ±Inf give NaN
			continue
		}
		switch {
		case f != f:
			nan++
		case f > 0:
			posInf++
		default:
			negInf++
		}
		if first < 0 {
			first = i
		}
	}
	return nan, posInf, negInf, first
}
