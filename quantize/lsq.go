package quantize

import (
	"fmt"
	"hash"
	"math"

	"github.com/actq/actq/internal/opkit"
	"github.com/actq/actq/internal/qkernel"
	"github.com/chewxy/hm"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// LSQConfig configures a learnable-scale FakeQuant node
// (FakeQuantLearnable). The zero value learns the scale itself, clamped to
// at least 2^-23 in the forward pass, with gradient factor 1.
type LSQConfig struct {
	// LogScale: the scale node holds log s, and the node uses s = exp(node),
	// which is positive whatever step an optimiser takes; the gradient is
	// ∂L/∂log s = s·∂L/∂s. This is the way to keep a learned scale positive:
	// a plain scale can be pushed through zero by a large step.
	LogScale bool
	// GradFactor multiplies the scale's gradient (PyTorch's grad_factor);
	// 0 means 1. LSQGradFactor gives the LSQ paper's g = 1/√(N·Qp).
	GradFactor float64
	// MinScale is the smallest scale the forward pass uses when LogScale is
	// false: a scale below it (or NaN) is replaced by MinScale, and the
	// gradient still flows to the scale node unchanged (a straight-through
	// clamp, so the optimiser can bring it back). 0 means 2^-23, the eps
	// torch.ao's _LearnableFakeQuantize clamps its scale to.
	MinScale float64
}

// LSQGradFactor returns the LSQ paper's step-size gradient scale
// g = 1/√(n·qmax) for a tensor of n elements in format f (qmax its largest
// code, 127 for Int8, 7 for Int4), as torch.ao's _LearnableFakeQuantize with
// use_grad_scaling. For n ≤ 0 or a format that is not an integer format it
// returns NaN, which FakeQuantLearnable rejects as a GradFactor.
func LSQGradFactor(n int, f Format, narrow bool) float64 {
	_, qmax := f.Range(narrow)
	if n <= 0 || !f.IsInteger() {
		return math.NaN()
	}
	return 1 / math.Sqrt(float64(n)*float64(qmax))
}

// FakeQuantLearnable returns a node computing FakeQuant(x) with the scale
// taken from the node scale, which is differentiable: LSQ (Esser et al.,
// arXiv:1902.08153) in the form of PyTorch's
// _fake_quantize_learnable_per_tensor_affine and _per_channel_affine. The
// forward pass is FakeQuant's with fixed parameters; the backward pass
// gives x the straight-through gradient with PyTorch's mask and the scale
//
//	∂L/∂s = g·Σ dy·(round(x/s) − x/s)  inside the range
//	      + g·Σ dy·(qmin − z)          below it
//	      + g·Σ dy·(qmax − z)          above it
//
// summed over the elements that share the scale (g = cfg.GradFactor). The
// zero points are fixed (spec.ZeroPoint, nil for zeros).
//
// spec must be an integer format with Scale nil. scale has x's dtype and holds
// one value per tensor, channel or group: a scalar or a 1-element vector for
// PerTensor, a vector of the channel or group count otherwise. Errors are
// FakeQuant's, plus ops.ErrNilNode, ops.ErrDtype or ops.ErrValue for a scale
// node that is nil, of another dtype than x or in another graph, ErrSpec for a
// float format, a non-nil spec.Scale or a GradFactor or MinScale that is
// negative, NaN or infinite, and ops.ErrShape for a scale of the wrong shape.
func FakeQuantLearnable(x, scale *gorgonia.Node, spec Spec, cfg LSQConfig, opts ...Option) (*gorgonia.Node, error) {
	const fn = "quantize.FakeQuantLearnable"
	if err := opkit.CheckFloatNode(fn, "x", x); err != nil {
		return nil, err
	}
	if err := opkit.CheckFloatNode(fn, "scale", scale); err != nil {
		return nil, err
	}
	if scale.Graph() != x.Graph() {
		return nil, fmt.Errorf("%s: scale is in another graph than x: %w", fn, opkit.ErrValue)
	}
	if !spec.Format.IsInteger() {
		return nil, fmt.Errorf("%s: Spec.Format %v: the learnable scale needs an integer format: %w", fn, spec.Format, ErrSpec)
	}
	if spec.Scale != nil {
		return nil, fmt.Errorf("%s: Spec.Scale is set; the scale comes from the scale node: %w", fn, ErrSpec)
	}
	// Check the spec (zero points included) with placeholder scales of the
	// right count.
	bare := spec
	bare.ZeroPoint = nil
	probe, err := newPlan(fn, bare, x.Shape(), x.Dtype())
	if err != nil {
		return nil, err
	}
	spec.Scale = make([]float64, probe.nparam)
	for i := range spec.Scale {
		spec.Scale[i] = 1
	}
	p, err := newPlan(fn, spec, x.Shape(), x.Dtype())
	if err != nil {
		return nil, err
	}
	p.learnable = true
	if scale.Dtype() != x.Dtype() {
		return nil, fmt.Errorf("%s: scale has dtype %v, x has %v: %w", fn, scale.Dtype(), x.Dtype(), opkit.ErrDtype)
	}
	ss := scale.Shape()
	okShape := (len(ss) == 0 && p.nparam == 1) || (len(ss) == 1 && ss[0] == p.nparam)
	if !okShape {
		return nil, fmt.Errorf("%s: scale has shape %v, want (%d) for %d scales: %w", fn, ss, p.nparam, p.nparam, opkit.ErrShape)
	}
	if cfg.GradFactor == 0 {
		cfg.GradFactor = 1
	}
	if cfg.MinScale == 0 {
		cfg.MinScale = minScale
	}
	if !(cfg.GradFactor > 0) || math.IsInf(cfg.GradFactor, 0) {
		return nil, fmt.Errorf("%s: LSQConfig.GradFactor %g, want positive and finite (0 for 1): %w", fn, cfg.GradFactor, ErrSpec)
	}
	if !(cfg.MinScale > 0) || math.IsInf(cfg.MinScale, 0) {
		return nil, fmt.Errorf("%s: LSQConfig.MinScale %g, want positive and finite (0 for 2^-23): %w", fn, cfg.MinScale, ErrSpec)
	}
	op := &lsqOp{plan: p, cfg: cfg}
	op.opts.apply(opts)
	n, err := gorgonia.ApplyOp(op, x, scale)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	return n, nil
}

// lsqOp is the forward op (x, scale) → FakeQuant(x) with learnable scales.
type lsqOp struct {
	plan *plan // its spec.Scale holds placeholders
	cfg  LSQConfig
	opts options
}

// LSQEffectiveScales returns the scales a FakeQuantLearnable node
// configured by cfg quantizes with when its scale input holds raw: e^raw
// with LogScale, raised to MinScale (2^-23 when 0) where below it or NaN,
// computed in raw's precision as the node computes them.
func LSQEffectiveScales[T float32 | float64](raw []T, cfg LSQConfig) []float64 {
	if cfg.MinScale == 0 {
		cfg.MinScale = minScale
	}
	out := make([]float64, len(raw))
	for i, v := range raw {
		out[i] = float64(effectiveScale(v, cfg))
	}
	return out
}

// effectiveScale is the scale an LSQ node with cfg (MinScale already set)
// uses for the scale input's value v.
func effectiveScale[T qkernel.Float](v T, cfg LSQConfig) T {
	s := v
	if cfg.LogScale {
		s = T(math.Exp(float64(v)))
	}
	if !(s >= T(cfg.MinScale)) {
		s = T(cfg.MinScale)
	}
	return s
}

// lsqParams returns the effective scales read from the scale value.
func lsqParams[T qkernel.Float](op *lsqOp, sv any) ([]prm[T], []T, error) {
	raw, ok := sv.([]T)
	if !ok || len(raw) != op.plan.nparam {
		return nil, nil, fmt.Errorf("scale value %T does not match %d scales: %w", sv, op.plan.nparam, opkit.ErrValue)
	}
	eff := make([]T, len(raw))
	ps := make([]prm[T], len(raw))
	for i, v := range raw {
		s := effectiveScale(v, op.cfg)
		if math.IsInf(float64(s), 0) || math.IsInf(float64(1/s), 0) {
			return nil, nil, fmt.Errorf("scale %g (from %g) is not usable: %w", float64(s), float64(v), opkit.ErrValue)
		}
		eff[i] = s
		ps[i] = makeParam(op.plan, s, op.plan.zeroPoint(i))
	}
	return ps, eff, nil
}

func (op *lsqOp) Arity() int { return 2 }

// Type is a → s → a: x's type, the scale's (a scalar or a vector), the
// output. (Not 'b': Gorgonia's inferNodeType names the result 'b'.)
func (op *lsqOp) Type() hm.Type {
	a, s := hm.TypeVariable('a'), hm.TypeVariable('s')
	return hm.NewFnType(a, s, a)
}

func (op *lsqOp) InferShape(ds ...gorgonia.DimSizer) (tensor.Shape, error) {
	ss, err := opkit.Shapes(op, 2, ds)
	if err != nil {
		return nil, err
	}
	return ss[0].Clone(), nil
}

func (op *lsqOp) Do(inputs ...gorgonia.Value) (gorgonia.Value, error) {
	if len(inputs) != 2 {
		return nil, fmt.Errorf("%v: got %d inputs, want 2: %w", op, len(inputs), opkit.ErrValue)
	}
	sd, err := opkit.FloatData(inputs[1])
	if err != nil {
		return nil, fmt.Errorf("%v: scale: %w", op, err)
	}
	return forwardDo(op, &op.opts, nil, inputs[0],
		func(dst, x []float32) error { return lsqForward(op, dst, x, sd) },
		func(dst, x []float64) error { return lsqForward(op, dst, x, sd) })
}

func lsqForward[T qkernel.Float](op *lsqOp, dst, x []T, sd any) error {
	if err := op.plan.fits(len(x)); err != nil {
		return err
	}
	ps, _, err := lsqParams[T](op, sd)
	if err != nil {
		return err
	}
	return (&engine[T]{p: op.plan, ps: ps}).run(dst, x, op.opts.stats)
}

func (op *lsqOp) ReturnsPtr() bool     { return false }
func (op *lsqOp) CallsExtern() bool    { return false }
func (op *lsqOp) OverwritesInput() int { return -1 }
func (op *lsqOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "actq.FakeQuantLearnable{%s,log=%v,g=%v,min=%v,plain=%v,stats=%p,obs=%p}",
		op.plan.hashString(), op.cfg.LogScale, op.cfg.GradFactor, op.cfg.MinScale, op.opts.plainSTE, op.opts.stats, op.opts.observer)
}
func (op *lsqOp) Hashcode() uint32 { return opkit.Hash(op) }
func (op *lsqOp) String() string   { return "FakeQuantLearnable{" + op.plan.String() + "}" }

func (op *lsqOp) DiffWRT(inputs int) []bool { return []bool{true, true} }

// grads: dx and dscale are two lsqGradOps on (x, scale, dy).
func (op *lsqOp) grads() []opkit.Grad {
	args := []int{0, 1, opkit.DY}
	return []opkit.Grad{{Op: &lsqGradOp{fwd: op, wrt: 0}, Args: args}, {Op: &lsqGradOp{fwd: op, wrt: 1}, Args: args}}
}

func (op *lsqOp) SymDiff(inputs gorgonia.Nodes, output, grad *gorgonia.Node) (gorgonia.Nodes, error) {
	return opkit.SymDiff(op, op.grads(), inputs, grad)
}

func (op *lsqOp) DoDiff(ctx gorgonia.ExecutionContext, inputs gorgonia.Nodes, output *gorgonia.Node) error {
	return opkit.DoDiff(op, op.grads(), inputs, output)
}

// lsqGradOp is the backward op (x, scale, dy) → dx (wrt 0) or dscale
// (wrt 1) of an lsqOp.
type lsqGradOp struct {
	fwd *lsqOp
	wrt int
}

func (op *lsqGradOp) Arity() int { return 3 }

func (op *lsqGradOp) Type() hm.Type {
	a, s := hm.TypeVariable('a'), hm.TypeVariable('s')
	if op.wrt == 0 {
		return hm.NewFnType(a, s, a, a)
	}
	return hm.NewFnType(a, s, a, s)
}

func (op *lsqGradOp) InferShape(ds ...gorgonia.DimSizer) (tensor.Shape, error) {
	ss, err := opkit.Shapes(op, 3, ds)
	if err != nil {
		return nil, err
	}
	return ss[op.wrt].Clone(), nil
}

func (op *lsqGradOp) Do(inputs ...gorgonia.Value) (gorgonia.Value, error) {
	if len(inputs) != 3 {
		return nil, fmt.Errorf("%v: got %d inputs, want 3: %w", op, len(inputs), opkit.ErrValue)
	}
	var data [3]any
	for i, v := range inputs {
		d, err := opkit.FloatData(v)
		if err != nil {
			return nil, fmt.Errorf("%v: input %d: %w", op, i, err)
		}
		data[i] = d
	}
	out, od, err := opkit.NewLike(inputs[op.wrt])
	if err != nil {
		return nil, fmt.Errorf("%v: %w", op, err)
	}
	switch xs := data[0].(type) {
	case []float32:
		err = lsqBackward(op, od, xs, data[1], data[2])
	case []float64:
		err = lsqBackward(op, od, xs, data[1], data[2])
	}
	if err != nil {
		return nil, fmt.Errorf("%v: %w", op, err)
	}
	opkit.StoreScalar(out, od)
	return out, nil
}

func lsqBackward[T qkernel.Float](op *lsqGradOp, dsta any, x []T, sd, dya any) error {
	f := op.fwd
	dy, ok := dya.([]T)
	if !ok || len(dy) != len(x) || len(x) != f.plan.n {
		return fmt.Errorf("x (%d elements) and dy (%T) do not match the node's shape %v: %w", len(x), dya, f.plan.shape, opkit.ErrValue)
	}
	ps, eff, err := lsqParams[T](f, sd)
	if err != nil {
		return err
	}
	e := &engine[T]{p: f.plan, ps: ps}
	dst := dsta.([]T)
	if op.wrt == 0 {
		return e.grad(dst, x, dy, f.opts.plainSTE)
	}
	sums, err := e.scaleGrad(x, dy)
	if err != nil {
		return err
	}
	for i, v := range sums {
		g := v * f.cfg.GradFactor
		if f.cfg.LogScale {
			g *= float64(eff[i]) // ∂L/∂log s = s·∂L/∂s
		}
		dst[i] = T(g)
	}
	return nil
}

func (op *lsqGradOp) ReturnsPtr() bool     { return false }
func (op *lsqGradOp) CallsExtern() bool    { return false }
func (op *lsqGradOp) OverwritesInput() int { return -1 }
func (op *lsqGradOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "actq.FakeQuantLearnableGrad{wrt=%d,%s,log=%v,g=%v,min=%v,plain=%v}",
		op.wrt, op.fwd.plan.hashString(), op.fwd.cfg.LogScale, op.fwd.cfg.GradFactor, op.fwd.cfg.MinScale, op.fwd.opts.plainSTE)
}
func (op *lsqGradOp) Hashcode() uint32 { return opkit.Hash(op) }
func (op *lsqGradOp) String() string {
	return fmt.Sprintf("FakeQuantLearnableGrad{wrt=%d,%v}", op.wrt, op.fwd.plan)
}
