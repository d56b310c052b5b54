package graph

import (
	"errors"
	"fmt"

	"github.com/actq/actq/ops"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// ErrConfig reports a configuration that cannot be built: a zero or negative
// size, a model width not divisible by the number of heads, an unknown
// activation or norm, a dtype other than Float32 and Float64.
//
// Other errors for bad arguments wrap the ops package's sentinels:
// ops.ErrNilNode for a nil node, ops.ErrShape for a wrong rank or size,
// ops.ErrDtype for a node of another dtype than the layer's.
var ErrConfig = errors.New("bad config")

// Errors of LoadHF and SaveHF, besides ErrConfig and the os package's
// errors.
var (
	// ErrCheckpoint reports a Hugging Face checkpoint that cannot be read:
	// a malformed config.json or safetensors file, tensors that disagree
	// with the config (missing, extra, of the wrong shape or of a dtype
	// other than F32, F16 and BF16), a tied lm_head.weight that differs
	// from the embedding.
	ErrCheckpoint = errors.New("bad checkpoint")
	// ErrUnsupported reports a valid checkpoint (LoadHF) or Config
	// (SaveHF) of a model that the other side cannot express: RoPE
	// scaling, attention biases, sliding windows, other model types and
	// activations in a checkpoint; learned positions, LayerNorm, biases,
	// other activations or an FFN that is not gated in a Config.
	ErrUnsupported = errors.New("unsupported model")
)

// dtypeOf returns dt, or Float32 for the zero Dtype, and an error for
// anything but Float32 and Float64.
func dtypeOf(fn string, dt tensor.Dtype) (tensor.Dtype, error) {
	if dt == (tensor.Dtype{}) {
		return tensor.Float32, nil
	}
	if dt != tensor.Float32 && dt != tensor.Float64 {
		return dt, fmt.Errorf("%s: dtype %v, want Float32 or Float64: %w", fn, dt, ErrConfig)
	}
	return dt, nil
}

// construct is the body of the exported layer constructors: it resolves
// the dtype (Float32 when zero), makes the builder for g and opts, and runs
// build, naming fn in its error.
func construct[L any](fn string, g *gorgonia.ExprGraph, dt tensor.Dtype, opts []Option, build func(*builder) (L, error)) (L, error) {
	var zero L
	dt, err := dtypeOf(fn, dt)
	if err != nil {
		return zero, err
	}
	b, err := newBuilder(fn, g, dt, opts)
	if err != nil {
		return zero, err
	}
	l, err := build(b)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", fn, err)
	}
	return l, nil
}

// positive returns an error naming fn and what for each size that is not
// positive. The arguments alternate name, value.
func positive(fn string, kv ...any) error {
	for i := 0; i+1 < len(kv); i += 2 {
		if v := kv[i+1].(int); v <= 0 {
			return fmt.Errorf("%s: %s = %d, want > 0: %w", fn, kv[i], v, ErrConfig)
		}
	}
	return nil
}

// checkInput returns an error naming fn and arg unless x is a non-nil node of dtype dt whose
// shape has the given rank and, where want[i] > 0, size want[i] in
// dimension i.
func checkInput(fn, arg string, x *gorgonia.Node, dt tensor.Dtype, want ...int) error {
	if x == nil {
		return fmt.Errorf("%s: %s: %w", fn, arg, ops.ErrNilNode)
	}
	if x.Dtype() != dt {
		return fmt.Errorf("%s: %s has dtype %v, want %v: %w", fn, arg, x.Dtype(), dt, ops.ErrDtype)
	}
	s := x.Shape()
	if len(s) != len(want) {
		return fmt.Errorf("%s: %s has shape %v (rank %d), want rank %d: %w", fn, arg, s, len(s), len(want), ops.ErrShape)
	}
	for i, w := range want {
		if w > 0 && s[i] != w {
			return fmt.Errorf("%s: %s has shape %v, want size %d in dimension %d: %w", fn, arg, s, w, i, ops.ErrShape)
		}
	}
	return nil
}
