package graph

import (
	"fmt"

	"github.com/actq/actq/internal/infer"
)

// AttentionArithmetic is how a Generator's attention computes
// softmax(S)·V for each query row, after the scores site of a plan (if
// any). The zero value is the graph's arithmetic: the scores as float32,
// a float32 softmax (sums in float64), then P·V in float32. The other
// settings model attention kernels that work in IEEE half precision (fp16,
// 11 significant bits, largest finite value 65504), whose failures at long
// contexts a study can then measure on a trained model.
type AttentionArithmetic struct {
	// ScoresFP16 rounds each visible score s = q·k/√Dh to fp16 (round to
	// nearest even; |s| > 65504 becomes ±Inf) before the softmax, as a
	// kernel that keeps Q·Kᵀ in fp16 does. The scores themselves are still
	// computed in float32, so this models fp16 storage of the scores, not
	// an fp16 dot product. It gives the values a plan's FP16 cast at the
	// scores site gives, without that site's statistics.
	ScoresFP16 bool
	// PV selects the softmax and P·V arithmetic (PVFloat32 when zero).
	PV PVAccumulation
}

// PVAccumulation is the arithmetic of attention's softmax and P·V.
type PVAccumulation uint8

const (
	// PVFloat32 is the graph's arithmetic: the probabilities
	// p_j = e^(s_j − m)/Σ e^(s_k − m), m the row's largest score, in
	// float32 (sums in float64), then o = Σ p_j·v_j in float32.
	PVFloat32 PVAccumulation = iota
	// PVHalf accumulates P·V in fp16 with unnormalised weights, as
	// flash-attention kernels with an fp16 accumulator do. With m the
	// row's largest score,
	//
	//	w_j = fp16(e^(s_j − m))              (e^ in float64, rounded once)
	//	a   = fp16(a + w_j·v_j)  for j = 0, 1, …, in key order
	//	l   = Σ w_j                          (in float32)
	//	o   = a / l                          (in float32)
	//
	// Each accumulation step rounds once per element (an fp16 fused
	// multiply-add): w_j·v_j and the sum are formed in float64 and rounded
	// to fp16 (a float64 sum is exact or within half a float64 ulp, so the
	// one rounding to 11 bits is that of an exact FMA but for ties the
	// float64 sum created). Values are read as the cache holds them: a
	// plan that casts the values to FP16 models an fp16 cache. Error grows
	// with the number of keys: once |a| is large, a small w_j·v_j is below
	// half an fp16 ulp of a and is lost (swamping). Special cases:
	//
	//	an accumulator past 65504 becomes ±Inf and stays so, the row's
	//	output is ±Inf, and the next products turn it into NaN (∞ − ∞):
	//	the long-context failure this arithmetic is for;
	//	w_j below 2^−25 (s_j − m < −17.3) rounds to 0: that key is dropped;
	//	w_j is 1 at the largest score, so l ≥ 1 and o is never 0/0.
	PVHalf
	// PVHalfOffset is PVHalf with the maximum offset by ln 8,
	// w_j = fp16(e^(s_j − m − ln 8)): every weight is at most 1/8 and the
	// partial sums stay 8 times smaller (llama.cpp's fix for fp16 overflow
	// in its flash-attention accumulators). Dividing fp16 values by 8 is
	// exact in fp16's normal range, so away from overflow and from the
	// subnormal range the result is PVHalf's: the offset changes what
	// overflows, and drops a little more of the tail (weights below 2^−25
	// now start at s_j − m < −15.2), nothing else.
	PVHalfOffset
)

// String returns "float32", "fp16" or "fp16+ln8", or "PVAccumulation(n)"
// for an unknown value.
func (p PVAccumulation) String() string {
	switch p {
	case PVFloat32, PVHalf, PVHalfOffset:
		return p.infer().String()
	}
	return fmt.Sprintf("PVAccumulation(%d)", uint8(p))
}

// infer returns p as the inference engine's value.
func (p PVAccumulation) infer() infer.PV {
	switch p {
	case PVHalf:
		return infer.PVHalf
	case PVHalfOffset:
		return infer.PVHalfOffset
	}
	return infer.PVFloat32
}

// String describes a: "float32" for the graph's arithmetic, else the fp16
// parts ("fp16 scores", "fp16 P·V", "fp16+ln8 P·V") joined by ", ".
func (a AttentionArithmetic) String() string {
	var s string
	if a.ScoresFP16 {
		s = "fp16 scores"
	}
	if a.PV != PVFloat32 {
		if s != "" {
			s += ", "
		}
		s += a.PV.String() + " P·V"
	}
	if s == "" {
		return "float32"
	}
	return s
}

// check returns an error wrapping ErrConfig for an unknown PV, or for
// fp16 P·V in a model with a probabilities site.
func (a AttentionArithmetic) check(m *infer.Model) error {
	if a.PV > PVHalfOffset {
		return fmt.Errorf("AttentionArithmetic.PV = %v, an unknown value: %w", a.PV, ErrConfig)
	}
	if a.PV == PVFloat32 {
		return nil
	}
	for i := range m.Layers {
		if m.Layers[i].Probs != nil {
			return fmt.Errorf("block %d has an attention probabilities site, and %v P·V forms no normalised probabilities: %w", i, a.PV, ErrConfig)
		}
	}
	return nil
}

// infer returns a as the inference engine's value.
func (a AttentionArithmetic) infer() infer.Arithmetic {
	return infer.Arithmetic{ScoresFP16: a.ScoresFP16, PV: a.PV.infer()}
}

// WithAttention sets the arithmetic of a Generator's attention (see
// AttentionArithmetic); the zero value is the graph's. Other builders
// ignore it. A plan with a probabilities site (Plan.AttnProbs) cannot be
// combined with fp16 P·V, which never forms normalised probabilities:
// NewGenerator refuses the pair.
func WithAttention(a AttentionArithmetic) Option { return func(o *options) { o.attention = a } }
