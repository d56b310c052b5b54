package quantize

import (
	"sync"

	"github.com/actq/actq/internal/parallel"
	"github.com/actq/actq/internal/qkernel"
)

// walk calls f, in order, on the runs of consecutive elements of [lo, hi)
// that share a parameter: elements [s, e) use parameter i. It is the one
// walk over the parameter layout (element k uses parameter
// (k/block) % nparam, per tensor, channel or group alike) that the kernels,
// the dynamic ranges and the observers share. It returns f's first error.
func (p *plan) walk(lo, hi int, f func(s, e, i int) error) error {
	for s := lo; s < hi; {
		blk := s / p.block
		e := min((blk+1)*p.block, hi)
		if err := f(s, e, blk%p.nparam); err != nil {
			return err
		}
		s = e
	}
	return nil
}

// needsMin reports whether the dynamic rule needs each parameter's
// minimum as well as its maximum: affine and unsigned integer grids. The
// other rules (signed symmetric grids, float formats) need only the
// largest magnitude.
func (p *plan) needsMin() bool {
	return p.spec.Format.IsInteger() && (!p.spec.Symmetric || p.qmin >= 0)
}

// finiteRange returns the smallest and largest finite elements of seg, and
// whether it has one. With absOnly, for rules that need only the largest
// magnitude a, it returns −a and a (0 and 0 without a finite element), and
// ok is always true.
func finiteRange[T qkernel.Float](seg []T, absOnly bool) (lo, hi T, ok bool) {
	if absOnly {
		a := qkernel.AbsMax(seg)
		return -a, a, true
	}
	lo, hi, n := qkernel.MinMax(seg)
	return lo, hi, n > 0
}

// ranges accumulates the finite range [lo, hi] of each parameter; a
// parameter that was never seen keeps [0, 0].
type ranges[T qkernel.Float] struct {
	lo, hi []T
	seen   []bool
}

func newRanges[T qkernel.Float](n int) *ranges[T] {
	return &ranges[T]{lo: make([]T, n), hi: make([]T, n), seen: make([]bool, n)}
}

// add widens parameter i's range to cover [lo, hi].
func (r *ranges[T]) add(i int, lo, hi T) {
	if !r.seen[i] {
		r.lo[i], r.hi[i], r.seen[i] = lo, hi, true
		return
	}
	r.lo[i], r.hi[i] = min(r.lo[i], lo), max(r.hi[i], hi)
}

// merge widens every range to cover o's.
func (r *ranges[T]) merge(o *ranges[T]) {
	for i, ok := range o.seen {
		if ok {
			r.add(i, o.lo[i], o.hi[i])
		}
	}
}

// finiteRanges returns the finite range of each parameter's elements of x
// (see finiteRange for absOnly), split over goroutines in chunks of at
// least grain elements; a grain of len(x) or more walks x in order on the
// caller.
func finiteRanges[T qkernel.Float](p *plan, x []T, absOnly bool, grain int) *ranges[T] {
	r := newRanges[T](p.nparam)
	var mu sync.Mutex
	_ = parallel.For(len(x), grain, func(a, b int) error {
		part := r
		if a > 0 || b < len(x) {
			part = newRanges[T](p.nparam)
		}
		_ = p.walk(a, b, func(s, e, i int) error {
			if lo, hi, ok := finiteRange(x[s:e], absOnly); ok {
				part.add(i, lo, hi)
			}
			return nil
		})
		if part != r {
			mu.Lock()
			r.merge(part)
			mu.Unlock()
		}
		return nil
	})
	return r
}
