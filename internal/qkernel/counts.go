package qkernel

import "math"

// Counts are statistics of one fake quantization, accumulated element by
// element from the input x and the output y.
type Counts struct {
	N       int64   // elements seen
	Clipped int64   // finite x outside the range: clamped to qmin/qmax, or overflowed a float format
	Zeroed  int64   // non-zero finite x with y exactly 0 (underflow)
	NaN     int64   // NaN x
	Inf     int64   // ±Inf x
	Signal  float64 // Σx² over finite x
	Noise   float64 // Σ(y−x)² over finite x
}

// Add adds o's counts and sums into c.
func (c *Counts) Add(o Counts) {
	c.N += o.N
	c.Clipped += o.Clipped
	c.Zeroed += o.Zeroed
	c.NaN += o.NaN
	c.Inf += o.Inf
	c.Signal += o.Signal
	c.Noise += o.Noise
}

// moments returns the counts of y = f(x) but Clipped: elements, NaN and
// ±Inf among x, and over the finite x the zeroed elements, Σx² and
// Σ(y−x)², summed in order. The sums are kept in locals, not in a Counts
// in memory, so that the loop runs at the speed of its additions.
func moments[T Float](x, y []T) Counts {
	c := Counts{N: int64(len(x))}
	var zeroed int64
	var signal, noise float64
	y = y[:len(x)]
	for i, v := range x {
		xf, yf := float64(v), float64(y[i])
		if xf-xf != 0 { // NaN or ±Inf
			if xf != xf {
				c.NaN++
			} else {
				c.Inf++
			}
			continue
		}
		if yf == 0 && xf != 0 {
			zeroed++
		}
		e := yf - xf
		signal += xf * xf
		noise += e * e
	}
	c.Zeroed, c.Signal, c.Noise = zeroed, signal, noise
	return c
}

// finite reports whether v is neither NaN nor ±Inf.
func finite[T Float](v T) bool { return v-v == 0 }

// CountInt returns the statistics of y = FakeQuantInt(x) on grid q. The
// clip decision is recomputed from x; y is used for the zero count and the
// noise.
//
// It returns an error wrapping ErrLength if the lengths differ and
// ErrParam for an invalid q.
func CountInt[T Float](x, y []T, q Int[T]) (Counts, error) {
	var c Counts
	if err := checkLengths("qkernel.CountInt", arg{"x", len(x)}, arg{"y", len(y)}); err != nil {
		return c, err
	}
	if err := checkInt("qkernel.CountInt", "q", q); err != nil {
		return c, err
	}
	magic := roundMagic[T]()
	c = moments(x, y)
	var clipped int64
	for _, v := range x {
		if r := q.code(v, magic); !(r >= q.lo && r <= q.hi) && finite(v) {
			clipped++
		}
	}
	c.Clipped = clipped
	return c, nil
}

// CountIntCols is CountInt with one grid per column, as in FakeQuantIntCols.
func CountIntCols[T Float](x, y []T, qs []Int[T]) (Counts, error) {
	var c Counts
	if err := checkCols("qkernel.CountIntCols", arg{"x", len(x)}, arg{"y", len(y)}, "len(qs)", len(qs)); err != nil {
		return c, err
	}
	if err := checkInts("qkernel.CountIntCols", qs); err != nil {
		return c, err
	}
	magic := roundMagic[T]()
	c = moments(x, y)
	var clipped int64
	for i, v := range x {
		q := &qs[i%len(qs)]
		if r := q.code(v, magic); !(r >= q.lo && r <= q.hi) && finite(v) {
			clipped++
		}
	}
	c.Clipped = clipped
	return c, nil
}

// CountFloat returns the statistics of y = RoundFloat(x, f, s): a finite
// element is clipped when the rounded magnitude of x/s exceeds f's largest
// finite value, or x/s overflows T.
func CountFloat[T Float](x, y []T, f FloatFormat, s T) (Counts, error) {
	var c Counts
	if err := checkLengths("qkernel.CountFloat", arg{"x", len(x)}, arg{"y", len(y)}); err != nil {
		return c, err
	}
	if err := checkFloat("qkernel.CountFloat", f, "s", s); err != nil {
		return c, err
	}
	p := f.params()
	c = moments(x, y)
	var clipped int64
	for _, v := range x {
		if t := v / s; !(math.Abs(float64(t)) <= p.max) && finite(v) && floatClipped(t, &p) {
			clipped++
		}
	}
	c.Clipped = clipped
	return c, nil
}

// CountFloatCols is CountFloat with one scale per column, as in
// RoundFloatCols.
func CountFloatCols[T Float](x, y []T, f FloatFormat, s []T) (Counts, error) {
	var c Counts
	if err := checkCols("qkernel.CountFloatCols", arg{"x", len(x)}, arg{"y", len(y)}, "len(s)", len(s)); err != nil {
		return c, err
	}
	if err := checkFloats("qkernel.CountFloatCols", f, s); err != nil {
		return c, err
	}
	p := f.params()
	c = moments(x, y)
	var clipped int64
	for i, v := range x {
		if t := v / s[i%len(s)]; !(math.Abs(float64(t)) <= p.max) && finite(v) && floatClipped(t, &p) {
			clipped++
		}
	}
	c.Clipped = clipped
	return c, nil
}

// floatClipped reports whether t = x/s, for a finite x, was clipped: its
// rounded magnitude exceeds the format's largest finite value, or the
// division itself overflowed T. A |t| up to that value never rounds past
// it, so the callers round only the t beyond it.
func floatClipped[T Float](t T, p *floatParams) bool {
	_, over := roundFloat(float64(t), p)
	return over || math.IsInf(float64(t), 0)
}
