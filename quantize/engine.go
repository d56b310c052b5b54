package quantize

import (
	"cmp"
	"math"
	"slices"
	"sync"

	"github.com/actq/actq/internal/parallel"
	"github.com/actq/actq/internal/qkernel"
)

// The fewest elements worth handing to another goroutine (plan.chunk). The
// vector integer kernels run at memory speed, where splitting a tensor in
// two did not pay below 2^21 elements on a 2-core machine (bench/RESULTS.md
// has the measurements): they split from 2^21 elements. The scalar integer
// loops and the float formats' rounding, an order of magnitude slower per
// element, split from 2^17.
const (
	vectorChunk = 1 << 20
	scalarChunk = 1 << 16
)

// chunk returns the fewest elements p's kernels hand to a goroutine: the
// vector grain where the integer kernels run vector code (per tensor, per
// channel with blocks of colsBelow or more, per group or row of a multiple
// of 8); the column kernels and other group sizes run the scalar loops.
func (p *plan) chunk() int {
	grouped := p.spec.Granularity == PerGroup || p.spec.Granularity == PerRow
	vector := p.spec.Format.IsInteger() && qkernel.Vectorized() && !p.cols &&
		(!grouped || p.block%8 == 0)
	if vector {
		return vectorChunk
	}
	return scalarChunk
}

// prm is one set of quantization parameters in dtype T.
type prm[T qkernel.Float] struct {
	q qkernel.Int[T] // integer formats
	s T              // float formats: the scale (1 when unscaled)
}

// fixedParams converts a plan's fixed scales and zero points to T, or
// returns nil when the parameters are dynamic. Unscaled float formats get
// one parameter with scale 1.
func fixedParams[T qkernel.Float](p *plan) []prm[T] {
	switch {
	case p.unscaled():
		ps := make([]prm[T], p.nparam)
		for i := range ps {
			ps[i].s = 1
		}
		return ps
	case p.spec.Scale == nil:
		return nil
	}
	ps := make([]prm[T], p.nparam)
	for i, s := range p.spec.Scale {
		ps[i] = makeParam(p, T(s), p.zeroPoint(i))
	}
	return ps
}

func makeParam[T qkernel.Float](p *plan, s T, zp int) prm[T] {
	if p.spec.Format.IsInteger() {
		return prm[T]{q: qkernel.NewInt(s, zp, p.qmin, p.qmax), s: s}
	}
	return prm[T]{s: s}
}

// chooseParams returns the scale and zero point that the dynamic rule (and
// the observers) pick for data in [lo, hi], in T's arithmetic:
//
//   - integer, symmetric: z = 0 and s = max(|lo|, |hi|)/qmax, so the
//     largest magnitude lands on the largest positive code and nothing
//     clips (unsigned formats: s = max(hi, 0)/qmax; negatives clip to 0);
//     with torchSym, s = amax/((qmax−qmin)/2) as torch.ao's observers do;
//   - integer, affine: PyTorch's rule, with lo' = min(lo, 0), hi' =
//     max(hi, 0): s = (hi'−lo')/(qmax−qmin), z = clamp(qmin −
//     round_half_even(lo'/s), qmin, qmax); when hi'−lo' overflows T,
//     s = hi'/(qmax−qmin) − lo'/(qmax−qmin) instead of +Inf;
//   - float formats: s = max(|lo|, |hi|)/MaxFinite, z = 0.
//
// Every scale is at least minScale (2^-23, PyTorch's eps).
func chooseParams[T qkernel.Float](s Spec, lo, hi T, torchSym bool) (T, int) {
	amax := max(-lo, hi)
	var scale T
	zp := 0
	qmin, qmax := s.Format.Range(s.NarrowRange)
	switch {
	case s.Format.IsFloat():
		scale = amax / T(s.Format.MaxFinite())
	case s.Symmetric && torchSym:
		scale = amax / (T(qmax-qmin) / 2)
	case s.Symmetric && qmin >= 0:
		scale = max(hi, 0) / T(qmax)
	case s.Symmetric:
		scale = amax / T(qmax)
	default:
		lo, hi = min(lo, 0), max(hi, 0)
		d := T(qmax - qmin)
		scale = (hi - lo) / d
		if math.IsInf(float64(scale), 0) {
			// hi − lo overflowed T: PyTorch's scale would be +Inf and
			// every output NaN. Divide first.
			scale = hi/d - lo/d
		}
		scale = max(scale, minScale)
		zp = qmin - int(math.RoundToEven(float64(lo/scale)))
		zp = min(max(zp, qmin), qmax)
	}
	if !(scale >= minScale) {
		scale = minScale
	}
	return scale, zp
}

// dynamicParams computes this run's parameters from x: the finite range of
// each tensor, channel or group, then chooseParams.
func dynamicParams[T qkernel.Float](p *plan, x []T) []prm[T] {
	r := finiteRanges(p, x, !p.needsMin(), p.chunk())
	ps := make([]prm[T], p.nparam)
	for i := range ps {
		s, zp := chooseParams(p.spec, r.lo[i], r.hi[i], false)
		ps[i] = makeParam(p, s, zp)
	}
	return ps
}

// engine runs a plan's kernels on one run's data with the run's
// parameters.
type engine[T qkernel.Float] struct {
	p  *plan
	ps []prm[T]
	// x, when ps is nil: dynamic parameters, one block each (per group,
	// or per channel along the first axis), computed from the block when
	// it is processed, with no allocation and while it is in cache.
	x []T
}

// wholeBlocks reports whether every parameter covers exactly one block
// (per group, or per channel along the first axis, or a tensor that is one
// block), so that blocks can be batched through the grouped kernels.
func (p *plan) wholeBlocks() bool { return p.nparam > 1 && !p.cols && p.nparam*p.block == p.n }

func newEngine[T qkernel.Float](p *plan, fixed []prm[T], x []T) *engine[T] {
	if fixed != nil {
		return &engine[T]{p: p, ps: fixed}
	}
	if p.wholeBlocks() {
		return &engine[T]{p: p, x: x}
	}
	return &engine[T]{p: p, ps: dynamicParams(p, x)}
}

// param returns parameter i: a fixed or precomputed one, or block i's
// dynamic one.
func (e *engine[T]) param(i int) prm[T] {
	if e.ps != nil {
		return e.ps[i]
	}
	lo, hi, _ := finiteRange(e.x[i*e.p.block:(i+1)*e.p.block], !e.p.needsMin())
	s, zp := chooseParams(e.p.spec, lo, hi, false)
	return makeParam(e.p, s, zp)
}

// segments runs body on every run of consecutive elements that share a
// parameter, in parallel chunks. Block mode: body(lo, hi, i) covers
// elements [lo, hi) with parameter i. Column mode: body(lo, hi, −1) covers
// whole rows of nparam·block elements.
func (e *engine[T]) segments(body func(lo, hi, param int) error) error {
	return e.chunks(func(a, b int) error { return e.segmentsIn(a, b, body) })
}

// chunks runs body on disjoint ranges [a, b) that cover the elements, in
// parallel; in column mode they are whole rows.
func (e *engine[T]) chunks(body func(a, b int) error) error {
	p := e.p
	if p.n == 0 {
		return nil
	}
	if p.cols {
		period := p.nparam * p.block
		return parallel.For(p.n/period, max(1, p.chunk()/period), func(a, b int) error {
			return body(a*period, b*period)
		})
	}
	return parallel.For(p.n, p.chunk(), body)
}

// segmentsIn is segments on the elements [a, b) of one chunk.
func (e *engine[T]) segmentsIn(a, b int, body func(lo, hi, param int) error) error {
	if e.p.cols {
		return body(a, b, -1)
	}
	return e.p.walk(a, b, body)
}

// foldChunks runs part on every chunk (see chunks) in parallel, then calls
// fold on the results in the chunks' order, so that sums over them do not
// depend on which goroutine finished first. It returns the first error.
func foldChunks[T qkernel.Float, R any](e *engine[T], part func(a, b int) (R, error), fold func(R)) error {
	type result struct {
		a   int
		r   R
		err error
	}
	var mu sync.Mutex
	var rs []result
	e.chunks(func(a, b int) error {
		r, err := part(a, b)
		mu.Lock()
		rs = append(rs, result{a, r, err})
		mu.Unlock()
		return nil
	})
	slices.SortFunc(rs, func(x, y result) int { return cmp.Compare(x.a, y.a) })
	var err error
	for _, r := range rs {
		fold(r.r)
		if err == nil {
			err = r.err
		}
	}
	return err
}

// symmetricGroups reports whether this run uses dynamic symmetric grids on
// whole blocks of a signed integer format: the fused kernel
// FakeQuantIntGroupsSymmetric, whose rule (s = max(amax/qmax, 2^-23), zero
// point 0) is chooseParams' for these specs.
func (e *engine[T]) symmetricGroups() bool {
	s := e.p.spec
	return e.ps == nil && e.x != nil && s.Format.IsInteger() && s.Symmetric && e.p.qmin < 0
}

// groupRanges runs body on ranges of whole blocks in parallel: elements
// [lo, hi) holding n blocks.
func (e *engine[T]) groupRanges(body func(lo, hi, n int) error) error {
	p := e.p
	return parallel.For(p.nparam, max(1, p.chunk()/p.block), func(a, b int) error {
		return body(a*p.block, b*p.block, b-a)
	})
}

// groupBatch is how many blocks the grouped path hands to one kernel call:
// 64 groups of 32 float32 are 8 KiB, well inside L1.
const groupBatch = 64

// groups runs body on batches of whole blocks, in parallel: elements
// [lo, hi) covering len(qs) blocks with their grids (wholeBlocks layouts,
// integer formats).
func (e *engine[T]) groups(body func(lo, hi int, qs []qkernel.Int[T]) error) error {
	p := e.p
	return parallel.For(p.nparam, max(1, p.chunk()/p.block), func(a, b int) error {
		var buf [groupBatch]qkernel.Int[T]
		for g := a; g < b; g += groupBatch {
			qs := buf[:min(groupBatch, b-g)]
			for j := range qs {
				qs[j] = e.param(g + j).q
			}
			if err := body(g*p.block, (g+len(qs))*p.block, qs); err != nil {
				return err
			}
		}
		return nil
	})
}

// colParams expands the parameters to one per column of a row in column
// mode.
func (e *engine[T]) colParams() ([]qkernel.Int[T], []T) {
	period := e.p.nparam * e.p.block
	qs := make([]qkernel.Int[T], period)
	ss := make([]T, period)
	for j := range period {
		pr := e.param(j / e.p.block)
		qs[j], ss[j] = pr.q, pr.s
	}
	return qs, ss
}

// run writes y = FakeQuant(x) into dst and adds the run's statistics to st
// (if not nil).
func (e *engine[T]) run(dst, x []T, st *Stats) error {
	if err := e.forward(dst, x); err != nil {
		return err
	}
	if st == nil {
		return nil
	}
	c, err := e.counts(x, dst)
	if err != nil {
		return err
	}
	st.record(c)
	return nil
}

func (e *engine[T]) forward(dst, x []T) error {
	isInt := e.p.spec.Format.IsInteger()
	ff := e.p.spec.Format.floatFormat()
	if e.symmetricGroups() {
		return e.groupRanges(func(lo, hi, n int) error {
			return qkernel.FakeQuantIntGroupsSymmetric(dst[lo:hi], x[lo:hi], n, e.p.qmin, e.p.qmax, minScale)
		})
	}
	if isInt && e.p.wholeBlocks() {
		return e.groups(func(lo, hi int, qs []qkernel.Int[T]) error {
			return qkernel.FakeQuantIntGroups(dst[lo:hi], x[lo:hi], qs)
		})
	}
	var qs []qkernel.Int[T]
	var ss []T
	if e.p.cols {
		qs, ss = e.colParams()
	}
	return e.segments(func(lo, hi, i int) error {
		switch {
		case i < 0 && isInt:
			return qkernel.FakeQuantIntCols(dst[lo:hi], x[lo:hi], qs)
		case i < 0:
			return qkernel.RoundFloatCols(dst[lo:hi], x[lo:hi], ff, ss)
		case isInt:
			return qkernel.FakeQuantInt(dst[lo:hi], x[lo:hi], e.param(i).q)
		}
		return qkernel.RoundFloat(dst[lo:hi], x[lo:hi], ff, e.param(i).s)
	})
}

// grad writes dx: dy masked where x was clipped (integer formats), or dy
// itself (float formats, or plain STE).
func (e *engine[T]) grad(dst, x, dy []T, plain bool) error {
	if plain || !e.p.spec.Format.IsInteger() {
		copy(dst, dy)
		return nil
	}
	if e.symmetricGroups() {
		return e.groupRanges(func(lo, hi, n int) error {
			return qkernel.FakeQuantIntGroupsSymmetricGrad(dst[lo:hi], x[lo:hi], dy[lo:hi], n, e.p.qmin, e.p.qmax, minScale)
		})
	}
	if e.p.wholeBlocks() {
		return e.groups(func(lo, hi int, qs []qkernel.Int[T]) error {
			return qkernel.FakeQuantIntGroupsGrad(dst[lo:hi], x[lo:hi], dy[lo:hi], qs)
		})
	}
	var qs []qkernel.Int[T]
	if e.p.cols {
		qs, _ = e.colParams()
	}
	return e.segments(func(lo, hi, i int) error {
		if i < 0 {
			return qkernel.FakeQuantIntColsGrad(dst[lo:hi], x[lo:hi], dy[lo:hi], qs)
		}
		return qkernel.FakeQuantIntGrad(dst[lo:hi], x[lo:hi], dy[lo:hi], e.param(i).q)
	})
}

// counts returns the statistics of y = forward(x). Each chunk is counted
// on its own and the chunks' counts are added in order, so that the sums
// do not depend on goroutine timing.
func (e *engine[T]) counts(x, y []T) (qkernel.Counts, error) {
	isInt := e.p.spec.Format.IsInteger()
	ff := e.p.spec.Format.floatFormat()
	var qs []qkernel.Int[T]
	var ss []T
	if e.p.cols {
		qs, ss = e.colParams()
	}
	var total qkernel.Counts
	err := foldChunks(e, func(a, b int) (qkernel.Counts, error) {
		var total qkernel.Counts
		err := e.segmentsIn(a, b, func(lo, hi, i int) error {
			var c qkernel.Counts
			var err error
			switch {
			case i < 0 && isInt:
				c, err = qkernel.CountIntCols(x[lo:hi], y[lo:hi], qs)
			case i < 0:
				c, err = qkernel.CountFloatCols(x[lo:hi], y[lo:hi], ff, ss)
			case isInt:
				c, err = qkernel.CountInt(x[lo:hi], y[lo:hi], e.param(i).q)
			default:
				c, err = qkernel.CountFloat(x[lo:hi], y[lo:hi], ff, e.param(i).s)
			}
			total.Add(c)
			return err
		})
		return total, err
	}, total.Add)
	return total, err
}

// scaleGrad returns Σ dy·∂y/∂s per parameter under the LSQ estimator
// (integer formats), summed per chunk and then over the chunks in order.
func (e *engine[T]) scaleGrad(x, dy []T) ([]float64, error) {
	var qs []qkernel.Int[T]
	if e.p.cols {
		qs, _ = e.colParams()
	}
	period := e.p.nparam * e.p.block
	sums := make([]float64, e.p.nparam)
	err := foldChunks(e, func(a, b int) ([]float64, error) {
		sums := make([]float64, e.p.nparam)
		err := e.segmentsIn(a, b, func(lo, hi, i int) error {
			if i >= 0 {
				s, err := qkernel.LSQScaleGrad(x[lo:hi], dy[lo:hi], e.param(i).q)
				sums[i] += s
				return err
			}
			cols := make([]float64, period)
			if err := qkernel.LSQScaleGradCols(cols, x[lo:hi], dy[lo:hi], qs); err != nil {
				return err
			}
			for j, v := range cols {
				sums[j/e.p.block] += v
			}
			return nil
		})
		return sums, err
	}, func(part []float64) {
		for i, v := range part {
			sums[i] += v
		}
	})
	return sums, err
}
