package quantize

import (
	"fmt"
	"hash"

	"github.com/actq/actq/internal/opkit"
	"github.com/actq/actq/internal/qkernel"
	"github.com/chewxy/hm"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// FakeQuant returns a node computing the fake quantization of x under spec
// s: x quantized to s.Format and dequantized back, in one node of x's
// dtype and shape. Options attach statistics (WithStats), an observer
// (WithObserver) or the plain straight-through estimator (WithPlainSTE).
//
// Integer formats (Int8, UInt8, Int4, UInt4) compute, per element, with the
// scale s and zero point z of its tensor, channel or group,
//
//	q = clamp(round_half_even(x·(1/s)) + z, qmin, qmax)
//	y = (q − z)·s
//
// in x's dtype with the reciprocal of s, as PyTorch does: with fixed
// parameters a Float32 node equals torch.fake_quantize_per_tensor_affine and
// torch.fake_quantize_per_channel_affine to the bit (tested against
// goldens). Float64 nodes compute the same formula in float64 (PyTorch
// rounds the scale and its reciprocal to float32 there).
//
// Float formats (FP16, BF16, FP8E4M3, FP8E5M2) compute y = cast(x/s)·s, a
// correctly rounded round-to-nearest-even cast with subnormals, with s = 1
// when s.Scale is nil and DynamicFloatScale is false. FP16 equals
// x.half().float() and BF16 equals x.bfloat16().float() on Float32 data; FP16
// overflows to ±Inf from 65520, BF16 past its largest finite value; the FP8
// formats saturate to ±448 and ±57344 (±Inf included), as ONNX's default.
//
// Dynamic parameters (s.Scale nil) are computed from x at every run, per
// tensor, channel or group, from the finite elements only (NaN and ±Inf do
// not move the scale):
//
//   - Symmetric integer: z = 0 and s = max|x|/qmax, so the largest
//     magnitude lands on the largest positive code and nothing clips (for
//     UInt8/UInt4, s = max(x)/qmax and negative values clip to 0);
//   - affine integer: PyTorch's observer rule on [min(x,0), max(x,0)]: s =
//     (max−min)/(qmax−qmin), z = clamp(qmin − round_half_even(min/s),
//     qmin, qmax), except that a range wider than the dtype's largest
//     value gives s = max/(qmax−qmin) − min/(qmax−qmin), where PyTorch's
//     scale overflows to +Inf and every output is NaN;
//   - float formats with DynamicFloatScale: s = max|x|/MaxFinite.
//
// Every dynamic scale is at least 2^-23 (PyTorch's eps), so an all-zero
// tensor gives zeros.
//
// Backward: the straight-through estimator. Integer formats pass dy where
// the element was inside the range and 0 where it was clipped (PyTorch's
// mask qmin ≤ round(x/s)+z ≤ qmax; NaN and ±Inf count as clipped); float
// formats pass dy everywhere, saturated elements included. WithPlainSTE
// passes dy everywhere for integer formats too. Dynamic scales are treated
// as constants. The node differentiates on the tape machine
// (gorgonia.Grad) and the Lisp machine.
//
// Special cases (integer formats; NaN follows PyTorch's fmax(NaN, qmin)):
//
//	FakeQuant(NaN)  = (qmin − z)·s
//	FakeQuant(+Inf) = (qmax − z)·s
//	FakeQuant(−Inf) = (qmin − z)·s
//
// x may be a tensor of any rank, or a scalar for PerTensor. It returns an
// error wrapping ops.ErrNilNode for a nil x, ops.ErrDtype for a dtype other
// than Float32 and Float64, ops.ErrValue for an x in no graph, ops.ErrAxis for
// a PerChannel axis out of range, ops.ErrShape for a scalar with PerChannel,
// PerGroup or PerRow, and ErrSpec for a bad spec: a scale that is ≤ 0, NaN,
// Inf or not representable in x's dtype; a wrong number of scales or zero
// points; a zero point outside the code range; a GroupSize ≤ 0 or not dividing
// the last dimension; an unknown format or granularity.
func FakeQuant(x *gorgonia.Node, s Spec, opts ...Option) (*gorgonia.Node, error) {
	const fn = "quantize.FakeQuant"
	if err := opkit.CheckFloatNode(fn, "x", x); err != nil {
		return nil, err
	}
	p, err := newPlan(fn, s, x.Shape(), x.Dtype())
	if err != nil {
		return nil, err
	}
	op := &fakeQuantOp{plan: p}
	op.opts.apply(opts)
	op.fixed32, op.fixed64 = fixedParams[float32](p), fixedParams[float64](p)
	n, err := gorgonia.ApplyOp(op, x)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	return n, nil
}

// Option configures a FakeQuant node. A nil Option does nothing.
type Option func(*options)

type options struct {
	stats    *Stats
	observer *Observer
	plainSTE bool
}

// apply applies opts in order, skipping nil ones.
func (o *options) apply(opts []Option) {
	for _, f := range opts {
		if f != nil {
			f(o)
		}
	}
}

// WithStats makes the node add its statistics to st at every forward run.
// A nil st records nothing.
func WithStats(st *Stats) Option { return func(o *options) { o.stats = st } }

// WithObserver makes the node show its input to obs at every forward run,
// before quantizing it, so that a calibration run fills the observer (see
// Observer.Spec). A nil obs observes nothing.
func WithObserver(obs *Observer) Option { return func(o *options) { o.observer = obs } }

// WithPlainSTE makes the backward pass the plain straight-through estimator
// (dy everywhere), instead of masking clipped elements.
func WithPlainSTE() Option { return func(o *options) { o.plainSTE = true } }

// fakeQuantOp is the forward op x → FakeQuant(x). Its plan and fixed
// parameters never change after it is built, so one op may run in many
// graphs at once; the Stats and Observer it points to lock themselves.
type fakeQuantOp struct {
	plan    *plan
	opts    options
	fixed32 []prm[float32] // nil when dynamic
	fixed64 []prm[float64]
}

func (op *fakeQuantOp) Arity() int { return 1 }

func (op *fakeQuantOp) Type() hm.Type { return opkit.SameType(1) }

func (op *fakeQuantOp) InferShape(ds ...gorgonia.DimSizer) (tensor.Shape, error) {
	return opkit.SameShape(op, 1, ds)
}

func (op *fakeQuantOp) Do(inputs ...gorgonia.Value) (gorgonia.Value, error) {
	return op.do(nil, inputs)
}

// UsePreallocDo writes the result into prealloc. The tape machine calls it
// with x itself when nothing reads x afterwards (an inference graph), so the
// node runs in place. When Stats are attached the comparison of x with the
// result needs both, so an aliased prealloc is refused and the machine
// falls back to Do.
func (op *fakeQuantOp) UsePreallocDo(prealloc gorgonia.Value, inputs ...gorgonia.Value) (gorgonia.Value, error) {
	return op.do(prealloc, inputs)
}

func (op *fakeQuantOp) do(out gorgonia.Value, inputs []gorgonia.Value) (gorgonia.Value, error) {
	if len(inputs) != 1 {
		return nil, fmt.Errorf("%v: got %d inputs, want 1: %w", op, len(inputs), opkit.ErrValue)
	}
	return forwardDo(op, &op.opts, out, inputs[0],
		func(dst, x []float32) error { return fakeQuantForward(op, op.fixed32, dst, x) },
		func(dst, x []float64) error { return fakeQuantForward(op, op.fixed64, dst, x) })
}

// forwardDo is the body of the forward ops' Do (FakeQuant,
// FakeQuantLearnable, Passthrough): it takes the result's storage (out if
// not nil, else a new value like x), shows x to o's observer, fills the
// result from x's data with k32 or k64, and returns it.
func forwardDo(op fmt.Stringer, o *options, out, x gorgonia.Value, k32 func(dst, x []float32) error, k64 func(dst, x []float64) error) (gorgonia.Value, error) {
	xd, err := opkit.FloatData(x)
	if err != nil {
		return nil, fmt.Errorf("%v: x: %w", op, err)
	}
	var od any
	if out == nil {
		out, od, err = opkit.NewLike(x)
	} else if od, err = opkit.PreallocData(out, x); err == nil && o.stats != nil && sameStorage(od, xd) {
		err = fmt.Errorf("statistics compare x with the result, so the result cannot overwrite x: %w", opkit.ErrValue)
	}
	if err != nil {
		return nil, fmt.Errorf("%v: %w", op, err)
	}
	if o.observer != nil {
		if err := o.observer.Observe(x); err != nil {
			return nil, fmt.Errorf("%v: %w", op, err)
		}
	}
	switch xs := xd.(type) {
	case []float32:
		err = k32(od.([]float32), xs)
	case []float64:
		err = k64(od.([]float64), xs)
	}
	if err != nil {
		return nil, fmt.Errorf("%v: %w", op, err)
	}
	opkit.StoreScalar(out, od)
	return out, nil
}

// sameStorage reports whether two float slices start at the same element.
func sameStorage(a, b any) bool {
	switch av := a.(type) {
	case []float32:
		bv, ok := b.([]float32)
		return ok && len(av) > 0 && len(bv) > 0 && &av[0] == &bv[0]
	case []float64:
		bv, ok := b.([]float64)
		return ok && len(av) > 0 && len(bv) > 0 && &av[0] == &bv[0]
	}
	return false
}

func fakeQuantForward[T qkernel.Float](op *fakeQuantOp, fixed []prm[T], dst, x []T) error {
	if err := op.plan.fits(len(x)); err != nil {
		return err
	}
	return newEngine(op.plan, fixed, x).run(dst, x, op.opts.stats)
}

// ReturnsPtr and OverwritesInput let the tape machine reuse x's memory for
// the result when nothing reads x afterwards (see UsePreallocDo).
func (op *fakeQuantOp) ReturnsPtr() bool     { return true }
func (op *fakeQuantOp) CallsExtern() bool    { return false }
func (op *fakeQuantOp) OverwritesInput() int { return 0 }

// WriteHash writes every parameter, and the identity of the attached Stats
// and Observer, so that two nodes differing in any of them are never
// merged by the graph.
func (op *fakeQuantOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "actq.FakeQuant{%s,plain=%v,stats=%p,obs=%p}", op.plan.hashString(), op.opts.plainSTE, op.opts.stats, op.opts.observer)
}
func (op *fakeQuantOp) Hashcode() uint32 { return opkit.Hash(op) }
func (op *fakeQuantOp) String() string   { return "FakeQuant{" + op.plan.String() + "}" }

func (op *fakeQuantOp) DiffWRT(inputs int) []bool { return []bool{true} }

// grads: dx is a fakeQuantGradOp on (x, dy).
func (op *fakeQuantOp) grads() []opkit.Grad {
	return []opkit.Grad{{Op: &fakeQuantGradOp{op}, Args: []int{0, opkit.DY}}}
}

func (op *fakeQuantOp) SymDiff(inputs gorgonia.Nodes, output, grad *gorgonia.Node) (gorgonia.Nodes, error) {
	return opkit.SymDiff(op, op.grads(), inputs, grad)
}

func (op *fakeQuantOp) DoDiff(ctx gorgonia.ExecutionContext, inputs gorgonia.Nodes, output *gorgonia.Node) error {
	return opkit.DoDiff(op, op.grads(), inputs, output)
}

// fakeQuantGradOp is the backward op (x, dy) → dx of a fakeQuantOp. It
// recomputes the clip mask from x (and, for dynamic parameters, the
// parameters), so it needs nothing saved from the forward run.
type fakeQuantGradOp struct{ fwd *fakeQuantOp }

func (op *fakeQuantGradOp) Arity() int { return 2 }

func (op *fakeQuantGradOp) Type() hm.Type { return opkit.SameType(2) }

func (op *fakeQuantGradOp) InferShape(ds ...gorgonia.DimSizer) (tensor.Shape, error) {
	return opkit.SameShape(op, 2, ds)
}

func (op *fakeQuantGradOp) Do(inputs ...gorgonia.Value) (gorgonia.Value, error) {
	return op.do(nil, inputs)
}

// UsePreallocDo writes dx into prealloc; the tape machine passes dy itself
// when nothing reads dy afterwards, so no gradient tensor is allocated.
func (op *fakeQuantGradOp) UsePreallocDo(prealloc gorgonia.Value, inputs ...gorgonia.Value) (gorgonia.Value, error) {
	return op.do(prealloc, inputs)
}

func (op *fakeQuantGradOp) do(out gorgonia.Value, inputs []gorgonia.Value) (gorgonia.Value, error) {
	if len(inputs) != 2 {
		return nil, fmt.Errorf("%v: got %d inputs, want 2: %w", op, len(inputs), opkit.ErrValue)
	}
	xd, err := opkit.FloatData(inputs[0])
	if err != nil {
		return nil, fmt.Errorf("%v: x: %w", op, err)
	}
	dyd, err := opkit.FloatData(inputs[1])
	if err != nil {
		return nil, fmt.Errorf("%v: dy: %w", op, err)
	}
	var od any
	if out == nil {
		out, od, err = opkit.NewLike(inputs[1])
	} else if od, err = opkit.PreallocData(out, inputs[1]); err == nil && sameStorage(od, xd) {
		err = fmt.Errorf("dx cannot overwrite x, which the mask is computed from: %w", opkit.ErrValue)
	}
	if err != nil {
		return nil, fmt.Errorf("%v: %w", op, err)
	}
	f := op.fwd
	switch xs := xd.(type) {
	case []float32:
		err = fakeQuantBackward(f, f.fixed32, od, xs, dyd)
	case []float64:
		err = fakeQuantBackward(f, f.fixed64, od, xs, dyd)
	}
	if err != nil {
		return nil, fmt.Errorf("%v: %w", op, err)
	}
	opkit.StoreScalar(out, od)
	return out, nil
}

func fakeQuantBackward[T qkernel.Float](op *fakeQuantOp, fixed []prm[T], dsta any, x []T, dya any) error {
	dst, ok1 := dsta.([]T)
	dy, ok2 := dya.([]T)
	if !ok1 || !ok2 || len(dy) != len(x) || len(x) != op.plan.n {
		return fmt.Errorf("x (%d elements) and dy (%T) do not match the node's shape %v: %w", len(x), dya, op.plan.shape, opkit.ErrValue)
	}
	if op.opts.plainSTE || !op.plan.spec.Format.IsInteger() {
		copy(dst, dy)
		return nil
	}
	return newEngine(op.plan, fixed, x).grad(dst, x, dy, false)
}

// ReturnsPtr and OverwritesInput let the tape machine write dx over dy.
func (op *fakeQuantGradOp) ReturnsPtr() bool     { return true }
func (op *fakeQuantGradOp) CallsExtern() bool    { return false }
func (op *fakeQuantGradOp) OverwritesInput() int { return 1 }
func (op *fakeQuantGradOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "actq.FakeQuantGrad{%s,plain=%v}", op.fwd.plan.hashString(), op.fwd.opts.plainSTE)
}
func (op *fakeQuantGradOp) Hashcode() uint32 { return opkit.Hash(op) }
func (op *fakeQuantGradOp) String() string   { return "FakeQuantGrad{" + op.fwd.plan.String() + "}" }
