package quantize

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/actq/actq/internal/opkit"
	"gorgonia.org/tensor"
)

// Spec says how to fake-quantize one tensor. The zero value is Int8,
// per-tensor, affine, with a dynamic scale and zero point.
type Spec struct {
	Format      Format
	Granularity Granularity
	// Axis is PerChannel's channel axis, negative from the end (−1 is the
	// last). PerGroup and PerRow ignore it: groups and rows always run
	// along the last axis.
	Axis int
	// GroupSize is PerGroup's number of consecutive elements along the last
	// axis that share a scale; it must divide the last dimension. PerRow
	// ignores it (its group is the whole last dimension).
	GroupSize int
	// Symmetric (integer formats): the zero point is 0, and a dynamic
	// scale maps the largest |x| to qmax. Float formats are symmetric by
	// nature and ignore it.
	Symmetric bool
	// NarrowRange (integer formats): drop the lowest code (Int8 −127..127,
	// Int4 −7..7, UInt8 1..255, UInt4 1..15). Float formats ignore it.
	NarrowRange bool
	// Scale holds fixed scales, one per tensor, channel or group (in that
	// order). Nil means: integer formats compute them from the data at each
	// run (see FakeQuant); float formats are cast unscaled unless
	// DynamicFloatScale is set.
	Scale []float64
	// ZeroPoint holds fixed zero points (integer formats), as many as
	// Scale; nil means zeros. It must be nil when Scale is nil.
	ZeroPoint []int
	// DynamicFloatScale (float formats, Scale nil): scale each tensor,
	// channel or group by s = max|x| / MaxFinite at each run, so that the
	// largest magnitude lands on the format's largest finite value (the
	// usual FP8 per-tensor scaling). Integer formats ignore it.
	DynamicFloatScale bool
}

// ErrSpec reports a Spec that cannot be used: a bad scale or zero point, a
// wrong number of them, a bad group size or an unknown format or
// granularity. Every other error of this package wraps one of package ops'
// sentinels (ops.ErrNilNode, ops.ErrDtype, ops.ErrAxis, ops.ErrShape,
// ops.ErrValue), or ErrNoData from an Observer.
var ErrSpec = errors.New("bad quantization spec")

// minScale is the smallest scale a dynamic rule or an observer produces:
// float32's machine epsilon 2^-23, the clamp of PyTorch's observers
// (torch.finfo(torch.float32).eps). An all-zero tensor gets this scale.
const minScale = 0x1p-23

// plan is a Spec checked against a shape and dtype, with the layout of its
// parameters: element i belongs to block i/block, which uses parameter
// (i/block) % nparam.
type plan struct {
	spec       Spec // deep copy
	dtype      tensor.Dtype
	shape      tensor.Shape
	n          int // elements
	qmin, qmax int // integer formats
	block      int // contiguous elements sharing a parameter
	nparam     int
	// cols: per-channel with short blocks; element i uses parameter
	// (i % (nparam·block)) / block, run with the column kernels.
	cols bool
	// learnable: the scales come from a node (FakeQuantLearnable); spec.Scale
	// holds placeholders.
	learnable bool
}

// colsBelow is the block length under which per-channel quantization runs
// the column kernels (one call per row) instead of one kernel call per
// block.
const colsBelow = 16

// elements returns the number of elements of an array of the given shape
// (1 for a scalar), or an error wrapping ops.ErrShape for a negative
// dimension or a count an int cannot hold, which only FakeQuantSlice's
// shape, unlike a node's, can have.
func elements(shape tensor.Shape) (int, error) {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("shape %v has a negative dimension: %w", shape, opkit.ErrShape)
		}
		if d != 0 && n > math.MaxInt/d {
			return 0, fmt.Errorf("shape %v has more elements than an int holds: %w", shape, opkit.ErrShape)
		}
		n *= d
	}
	return n, nil
}

// newPlan checks s against a tensor of the given shape and dtype. fn names
// the caller in errors.
func newPlan(fn string, s Spec, shape tensor.Shape, dt tensor.Dtype) (*plan, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%s: %s: %w", fn, fmt.Sprintf(format, args...), ErrSpec)
	}
	if dt != tensor.Float32 && dt != tensor.Float64 {
		return nil, fmt.Errorf("%s: x has dtype %v, want Float32 or Float64: %w", fn, dt, opkit.ErrDtype)
	}
	if !s.Format.Valid() {
		return nil, bad("Spec.Format is %v, an unknown format", s.Format)
	}
	n, err := elements(shape)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	p := &plan{dtype: dt, shape: shape.Clone(), n: n}
	p.spec = s
	p.spec.Scale = append([]float64(nil), s.Scale...)
	p.spec.ZeroPoint = append([]int(nil), s.ZeroPoint...)
	if s.Scale == nil {
		p.spec.Scale = nil
	}
	if s.ZeroPoint == nil {
		p.spec.ZeroPoint = nil
	}
	rank := len(shape)
	switch s.Granularity {
	case PerTensor:
		p.block, p.nparam = p.n, 1
	case PerChannel:
		if rank == 0 {
			return nil, fmt.Errorf("%s: Spec.Granularity PerChannel needs a tensor of rank ≥ 1, x is a scalar: %w", fn, opkit.ErrShape)
		}
		ax := s.Axis
		if ax < 0 {
			ax += rank
		}
		if ax < 0 || ax >= rank {
			return nil, fmt.Errorf("%s: Spec.Axis %d out of range for x of shape %v: %w", fn, s.Axis, shape, opkit.ErrAxis)
		}
		p.spec.Axis = ax
		p.nparam = shape[ax]
		p.block = 1
		for _, d := range shape[ax+1:] {
			p.block *= d
		}
		p.cols = p.block < colsBelow
	case PerGroup:
		if rank == 0 {
			return nil, fmt.Errorf("%s: Spec.Granularity PerGroup needs a tensor of rank ≥ 1, x is a scalar: %w", fn, opkit.ErrShape)
		}
		last := shape[rank-1]
		if s.GroupSize <= 0 {
			return nil, bad("Spec.GroupSize %d, want > 0", s.GroupSize)
		}
		if last%s.GroupSize != 0 {
			return nil, bad("Spec.GroupSize %d does not divide the last dimension %d of x's shape %v", s.GroupSize, last, shape)
		}
		p.block, p.nparam = s.GroupSize, p.n/s.GroupSize
	case PerRow:
		if rank == 0 {
			return nil, fmt.Errorf("%s: Spec.Granularity PerRow needs a tensor of rank ≥ 1, x is a scalar: %w", fn, opkit.ErrShape)
		}
		// PerGroup's layout with the last dimension as the group. Rows of
		// no element make a tensor of no element, with no scale.
		p.block, p.nparam = max(shape[rank-1], 1), p.n/max(shape[rank-1], 1)
	default:
		return nil, bad("Spec.Granularity is %v, an unknown granularity", s.Granularity)
	}
	what := map[Granularity]string{PerTensor: "tensor", PerChannel: "channel", PerGroup: "group", PerRow: "row"}[s.Granularity]

	if s.Format.IsInteger() {
		p.qmin, p.qmax = s.Format.Range(s.NarrowRange)
	}
	if s.Scale == nil {
		if s.ZeroPoint != nil {
			return nil, bad("Spec.ZeroPoint given without Scale (dynamic scales compute their zero points)")
		}
		if s.Format.IsInteger() && s.Symmetric && (0 < p.qmin || 0 > p.qmax) {
			return nil, bad("Spec.Symmetric needs zero point 0, outside %v's range [%d, %d] with NarrowRange", s.Format, p.qmin, p.qmax)
		}
		return p, nil
	}
	if len(s.Scale) != p.nparam {
		return nil, bad("Spec.Scale has %d scales, want %d (one per %s of x's shape %v)", len(s.Scale), p.nparam, what, shape)
	}
	for i, v := range s.Scale {
		if err := checkScale(v, dt); err != "" {
			return nil, bad("Spec.Scale[%d] = %g %s", i, v, err)
		}
	}
	if s.Format.IsFloat() {
		for i, z := range s.ZeroPoint {
			if z != 0 {
				return nil, bad("Spec.ZeroPoint[%d] = %d: float format %v has no zero point", i, z, s.Format)
			}
		}
		if s.ZeroPoint != nil && len(s.ZeroPoint) != len(s.Scale) {
			return nil, bad("Spec.ZeroPoint has %d zero points for %d scales", len(s.ZeroPoint), len(s.Scale))
		}
		return p, nil
	}
	if s.ZeroPoint != nil && len(s.ZeroPoint) != len(s.Scale) {
		return nil, bad("Spec.ZeroPoint has %d zero points for %d scales", len(s.ZeroPoint), len(s.Scale))
	}
	for i := range s.Scale {
		z := p.zeroPoint(i)
		if s.Symmetric && z != 0 {
			return nil, bad("Spec.ZeroPoint[%d] = %d with Symmetric, want 0", i, z)
		}
		if z < p.qmin || z > p.qmax {
			if s.ZeroPoint == nil {
				return nil, bad("zero point 0 (Spec.ZeroPoint is nil) outside %v's range [%d, %d]", s.Format, p.qmin, p.qmax)
			}
			return nil, bad("Spec.ZeroPoint[%d] = %d outside %v's range [%d, %d]", i, z, s.Format, p.qmin, p.qmax)
		}
	}
	return p, nil
}

// checkScale returns "" if v is usable as a scale for dtype dt, else why
// not.
func checkScale(v float64, dt tensor.Dtype) string {
	switch {
	case math.IsNaN(v):
		return "is NaN"
	case math.IsInf(v, 0):
		return "is infinite"
	case v <= 0:
		return "is not positive"
	}
	if dt == tensor.Float32 {
		f := float32(v)
		if f == 0 || math.IsInf(float64(1/f), 0) || math.IsInf(float64(f), 0) {
			return "is not a float32 with a finite reciprocal"
		}
	} else if math.IsInf(1/v, 0) {
		return "has an infinite reciprocal"
	}
	return ""
}

// fits returns an error wrapping ops.ErrShape unless n, the element count of a
// run-time value, is the plan's.
func (p *plan) fits(n int) error {
	if n != p.n {
		return fmt.Errorf("x has %d elements, the node was built for shape %v: %w", n, p.shape, opkit.ErrShape)
	}
	return nil
}

// zeroPoint returns the fixed zero point of parameter i (0 if none).
func (p *plan) zeroPoint(i int) int {
	if p.spec.ZeroPoint == nil {
		return 0
	}
	return p.spec.ZeroPoint[i]
}

// Dynamic reports whether s computes its scales from the data at each
// run: an integer format, or a float format with DynamicFloatScale, with
// Scale nil. A float format with neither Scale nor DynamicFloatScale is
// cast unscaled, element by element, and is not dynamic.
func (s Spec) Dynamic() bool {
	return s.Scale == nil && (s.Format.IsInteger() || s.DynamicFloatScale)
}

// dynamic reports whether the parameters are computed at each run.
func (p *plan) dynamic() bool { return p.spec.Dynamic() }

// unscaled reports whether a float format is cast with no scale.
func (p *plan) unscaled() bool {
	return p.spec.Format.IsFloat() && p.spec.Scale == nil && !p.spec.DynamicFloatScale
}

// String describes the plan for logs and errors, with at most four scales.
func (p *plan) String() string { return p.describe(4) }

// hashString describes the plan for WriteHash: every parameter, every
// scale and zero point.
func (p *plan) hashString() string { return p.describe(-1) }

func (p *plan) describe(maxScales int) string {
	var b strings.Builder
	s := p.spec
	fmt.Fprintf(&b, "%v,%v", s.Format, s.Granularity)
	switch s.Granularity {
	case PerChannel:
		fmt.Fprintf(&b, ",axis=%d", s.Axis)
	case PerGroup:
		fmt.Fprintf(&b, ",group=%d", s.GroupSize)
	}
	if s.Format.IsInteger() {
		fmt.Fprintf(&b, ",sym=%v,narrow=%v", s.Symmetric, s.NarrowRange)
	}
	switch {
	case p.learnable:
		fmt.Fprintf(&b, ",learnable scales=%d,zp=%v", len(s.Scale), s.ZeroPoint)
	case s.Scale != nil && (maxScales < 0 || len(s.Scale) <= maxScales):
		fmt.Fprintf(&b, ",scale=%v,zp=%v", s.Scale, s.ZeroPoint)
	case s.Scale != nil:
		fmt.Fprintf(&b, ",%d scales=%v…", len(s.Scale), s.Scale[:maxScales])
	case p.dynamic():
		b.WriteString(",dynamic")
	}
	return b.String()
}
