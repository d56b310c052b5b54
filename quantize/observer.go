package quantize

import (
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/actq/actq/internal/opkit"

	"github.com/actq/actq/internal/qkernel"
	"gorgonia.org/gorgonia"
)

// ObserverKind selects how an Observer turns the batches it sees into a
// range per tensor, channel or group.
type ObserverKind int

// The observer kinds.
const (
	// MinMax keeps the smallest and largest finite value seen (PyTorch's
	// MinMaxObserver / PerChannelMinMaxObserver).
	MinMax ObserverKind = iota
	// MovingAverage takes the first batch's min and max as they are, then
	// moves them toward each new batch's: min ← min + c·(min_batch − min),
	// with c = Averaging (PyTorch's MovingAverageMinMaxObserver, c = 0.01).
	MovingAverage
	// Percentile clips outliers: for each batch it takes the Percentile-th
	// percentile of |x| (symmetric and float formats) or the
	// (100−Percentile)-th and Percentile-th percentiles of x (affine), with
	// linear interpolation, and averages them over the batches with equal
	// weights.
	Percentile
)

// String returns the kind's Go name ("MinMax", …).
func (k ObserverKind) String() string {
	switch k {
	case MinMax:
		return "MinMax"
	case MovingAverage:
		return "MovingAverage"
	case Percentile:
		return "Percentile"
	}
	return fmt.Sprintf("ObserverKind(%d)", int(k))
}

// ObserverConfig configures an Observer. The zero value is MinMax.
type ObserverConfig struct {
	Kind ObserverKind
	// Averaging is MovingAverage's c in (0, 1]; 0 means 0.01.
	Averaging float64
	// Percentile is Percentile's p in (50, 100]; 0 means 99.99.
	Percentile float64
	// TorchSymmetric picks torch.ao's symmetric scale amax/((qmax−qmin)/2)
	// (amax/127.5 for Int8) instead of amax/qmax (amax/127), which clips
	// nothing. Affine and float formats ignore it.
	TorchSymmetric bool
}

// Observer turns calibration data into a Spec with fixed scales: show it
// batches with Observe (or attach it to a FakeQuant node with
// WithObserver), then call Spec. Only finite values are observed.
//
// The scale rule is the dynamic rule of FakeQuant (see chooseParams in the
// docs of FakeQuant), applied to the observed range; with TorchSymmetric and
// for affine specs it is torch.ao's. When every observed batch was Float32
// the arithmetic is float32, as PyTorch's, so that for example an affine
// UInt8 observer of [−1, 2] gives s = 0.0117647061 and z = 85 exactly.
//
// An Observer is safe for concurrent use.
type Observer struct {
	base Spec
	cfg  ObserverConfig

	mu      sync.Mutex
	plan    *plan // for the shape seen first
	lo, hi  []float64
	seen    []int // batches with finite data, per parameter
	batches int
	only32  bool
}

// NewObserver returns an observer for specs like base: its Format,
// Granularity, Axis, GroupSize, Symmetric, NarrowRange and
// DynamicFloatScale are kept, and Spec fills in Scale and ZeroPoint. It
// returns an error wrapping ErrSpec for an unknown format, granularity or
// kind, a bad Averaging or Percentile, and what is wrong whatever the
// shape: a PerGroup GroupSize ≤ 0, or Symmetric with an unsigned
// NarrowRange format (zero point 0 is not a code). The rest of base is
// checked against the shape of the first batch (Observe).
func NewObserver(base Spec, cfg ObserverConfig) (*Observer, error) {
	const fn = "quantize.NewObserver"
	base.Scale, base.ZeroPoint = nil, nil
	if !base.Format.Valid() {
		return nil, fmt.Errorf("%s: Spec.Format is %v, an unknown format: %w", fn, base.Format, ErrSpec)
	}
	if base.Granularity < PerTensor || base.Granularity > PerRow {
		return nil, fmt.Errorf("%s: Spec.Granularity is %v, an unknown granularity: %w", fn, base.Granularity, ErrSpec)
	}
	if base.Granularity == PerGroup && base.GroupSize <= 0 {
		return nil, fmt.Errorf("%s: Spec.GroupSize %d, want > 0: %w", fn, base.GroupSize, ErrSpec)
	}
	if qmin, qmax := base.Format.Range(base.NarrowRange); base.Format.IsInteger() && base.Symmetric && (qmin > 0 || qmax < 0) {
		return nil, fmt.Errorf("%s: Spec.Symmetric needs zero point 0, outside %v's range [%d, %d] with NarrowRange: %w", fn, base.Format, qmin, qmax, ErrSpec)
	}
	switch cfg.Kind {
	case MinMax:
	case MovingAverage:
		if cfg.Averaging == 0 {
			cfg.Averaging = 0.01
		}
		if !(cfg.Averaging > 0 && cfg.Averaging <= 1) {
			return nil, fmt.Errorf("%s: ObserverConfig.Averaging %g outside (0, 1]: %w", fn, cfg.Averaging, ErrSpec)
		}
	case Percentile:
		if cfg.Percentile == 0 {
			cfg.Percentile = 99.99
		}
		if !(cfg.Percentile > 50 && cfg.Percentile <= 100) {
			return nil, fmt.Errorf("%s: ObserverConfig.Percentile %g outside (50, 100]: %w", fn, cfg.Percentile, ErrSpec)
		}
	default:
		return nil, fmt.Errorf("%s: ObserverConfig.Kind is %v, an unknown kind: %w", fn, cfg.Kind, ErrSpec)
	}
	return &Observer{base: base, cfg: cfg, only32: true}, nil
}

// Observe adds one batch. Every batch must have the shape of the first (it
// fixes the number of channels or groups). x is a *tensor.Dense or a scalar of
// dtype Float32 or Float64. It returns an error wrapping ops.ErrValue or
// ops.ErrDtype for another x, ops.ErrShape for a shape with another number of
// channels or groups than the first batch's, and FakeQuant's errors for a spec
// that does not fit x.
func (o *Observer) Observe(x gorgonia.Value) error {
	const fn = "quantize.Observer.Observe"
	data, err := opkit.FloatData(x)
	if err != nil {
		return fmt.Errorf("%s: x: %w", fn, err)
	}
	shape := x.Shape()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.plan == nil || !o.plan.shape.Eq(shape) {
		p, err := newPlan(fn, o.base, shape, x.Dtype())
		if err != nil {
			return err
		}
		if o.plan == nil {
			o.lo, o.hi, o.seen = make([]float64, p.nparam), make([]float64, p.nparam), make([]int, p.nparam)
		} else if p.nparam != o.plan.nparam {
			return fmt.Errorf("%s: x of shape %v has %d channels or groups, earlier batches (shape %v) had %d: %w",
				fn, shape, p.nparam, o.plan.shape, o.plan.nparam, opkit.ErrShape)
		}
		o.plan = p
	}
	var lo, hi []float64
	var ok []bool
	switch d := data.(type) {
	case []float32:
		lo, hi, ok = batchRanges(o, d)
	case []float64:
		o.only32 = false
		lo, hi, ok = batchRanges(o, d)
	}
	for i := range lo {
		if !ok[i] {
			continue
		}
		o.update(i, lo[i], hi[i])
		o.seen[i]++
	}
	o.batches++
	return nil
}

// update folds one batch's range of parameter i into the running range.
func (o *Observer) update(i int, lo, hi float64) {
	if o.seen[i] == 0 {
		o.lo[i], o.hi[i] = lo, hi
		return
	}
	switch o.cfg.Kind {
	case MinMax:
		o.lo[i], o.hi[i] = min(o.lo[i], lo), max(o.hi[i], hi)
	case MovingAverage:
		o.lo[i], o.hi[i] = o.average(o.lo[i], lo, o.cfg.Averaging), o.average(o.hi[i], hi, o.cfg.Averaging)
	case Percentile:
		w := 1 / float64(o.seen[i]+1) // running mean of the batches' percentiles
		o.lo[i], o.hi[i] = o.average(o.lo[i], lo, w), o.average(o.hi[i], hi, w)
	}
}

// average returns old + c·(cur − old), in float32 when every batch so far
// was Float32 (as PyTorch's float32 observer buffers).
func (o *Observer) average(old, cur, c float64) float64 {
	if o.only32 {
		d := float32(float32(c) * float32(float32(cur)-float32(old)))
		return float64(float32(old) + d)
	}
	return old + c*(cur-old)
}

// batchRanges returns each parameter's range in one batch and whether it
// had finite data.
func batchRanges[T qkernel.Float](o *Observer, x []T) (lo, hi []float64, ok []bool) {
	p := o.plan
	lo, hi = make([]float64, p.nparam), make([]float64, p.nparam)
	if o.cfg.Kind != Percentile {
		// Symmetric specs take max(−lo, hi) when choosing the scale, after
		// averaging, as torch.ao does.
		r := finiteRanges(p, x, false, max(len(x), 1))
		for i := range lo {
			lo[i], hi[i] = float64(r.lo[i]), float64(r.hi[i])
		}
		return lo, hi, r.seen
	}
	// Percentile: gather each parameter's values.
	absOnly := !p.needsMin()
	vals := make([][]float64, p.nparam)
	_ = p.walk(0, len(x), func(s, e, i int) error {
		for _, v := range x[s:e] {
			f := float64(v)
			if math.IsNaN(f) || math.IsInf(f, 0) {
				continue
			}
			if absOnly {
				f = math.Abs(f)
			}
			vals[i] = append(vals[i], f)
		}
		return nil
	})
	ok = make([]bool, p.nparam)
	pc := o.cfg.Percentile
	for i, v := range vals {
		if len(v) == 0 {
			continue
		}
		scratch := make([]float64, len(v))
		ok[i] = true
		hi[i] = qkernel.Percentile(v, pc, scratch)
		if absOnly {
			lo[i] = -hi[i]
		} else {
			lo[i] = qkernel.Percentile(v, 100-pc, scratch)
		}
	}
	return lo, hi, ok
}

// ErrNoData reports an Observer asked for a Spec before it saw any batch.
var ErrNoData = errors.New("observer has seen no data")

// Spec returns the base spec with fixed scales (and zero points, for affine
// integer specs) chosen from the observed ranges. A channel or group that
// never had a finite value gets the smallest scale, 2^-23. It returns an
// error wrapping ErrNoData before the first batch.
func (o *Observer) Spec() (Spec, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.batches == 0 {
		return Spec{}, fmt.Errorf("quantize.Observer.Spec: %w", ErrNoData)
	}
	s := o.base
	s.DynamicFloatScale = false
	s.Scale = make([]float64, len(o.lo))
	affine := s.Format.IsInteger() && !s.Symmetric
	if affine {
		s.ZeroPoint = make([]int, len(o.lo))
	}
	for i := range o.lo {
		var sc float64
		var zp int
		if o.only32 {
			s32, z := chooseParams(s, float32(o.lo[i]), float32(o.hi[i]), o.cfg.TorchSymmetric)
			sc, zp = float64(s32), z
		} else {
			sc, zp = chooseParams(s, o.lo[i], o.hi[i], o.cfg.TorchSymmetric)
		}
		s.Scale[i] = sc
		if affine {
			s.ZeroPoint[i] = zp
		}
	}
	return s, nil
}

// Ranges returns copies of the observed range of each tensor, channel or
// group (for Percentile with a symmetric or float spec, [−p, p] with p the
// percentile of |x|).
func (o *Observer) Ranges() (lo, hi []float64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]float64(nil), o.lo...), append([]float64(nil), o.hi...)
}

// Batches returns the number of batches observed since the last Reset.
func (o *Observer) Batches() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.batches
}

// Reset forgets every batch.
func (o *Observer) Reset() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.plan, o.lo, o.hi, o.seen, o.batches, o.only32 = nil, nil, nil, nil, 0, true
}
