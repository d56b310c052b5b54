package graph

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/actq/actq/quantize"
)

// TestAttentionArithmetic: fp16 scores give the logits of a plan that
// casts the scores site to FP16, bit for bit; fp16 P·V moves the logits
// by about fp16's resolution, with and without the ln 8 offset (the
// offset's effect, at overflow, is infer's TestHalfPV); bad settings are
// refused with ErrConfig.
func TestAttentionArithmetic(t *testing.T) {
	cfg := Config{Vocab: 32, SeqLen: 64, DModel: 32, Heads: 4, KVHeads: 2, DHidden: 64, Layers: 2, Activation: "silu",
		Gated: true, NoBias: true, RoPETheta: 10000}
	w := genWeights(t, cfg, 4)
	rng := rand.New(rand.NewPCG(4, 4))
	seq := make([]int, 300) // beyond SeqLen: rotary positions
	pos := make([]int, len(seq))
	for i := range seq {
		seq[i], pos[i] = rng.IntN(cfg.Vocab), i
	}
	logits := func(opts ...Option) []float64 {
		t.Helper()
		l, err := newGen(t, cfg, w, append(opts, withProducts(0))...).Logits(seq, pos)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	f32 := logits()
	scores := logits(WithAttention(AttentionArithmetic{ScoresFP16: true}))
	site := logits(WithPlan(&Plan{AttnScores: &Quant{Spec: quantize.Spec{Format: quantize.FP16}}}))
	for i := range scores {
		if math.Float64bits(scores[i]) != math.Float64bits(site[i]) {
			t.Fatalf("logit %d: fp16 scores %v, an FP16 scores site %v", i, scores[i], site[i])
		}
	}
	half := logits(WithAttention(AttentionArithmetic{PV: PVHalf}))
	offset := logits(WithAttention(AttentionArithmetic{PV: PVHalfOffset}))
	both := logits(WithAttention(AttentionArithmetic{ScoresFP16: true, PV: PVHalfOffset}))
	scale := 0.0
	for _, v := range f32 {
		scale = math.Max(scale, math.Abs(v))
	}
	for name, got := range map[string][]float64{"fp16 scores": scores, "fp16 P·V": half, "fp16+ln8 P·V": offset, "both": both} {
		worst := 0.0
		for i, v := range got {
			worst = math.Max(worst, math.Abs(v-f32[i]))
		}
		// fp16 keeps 11 bits; over two layers the logits move by a few
		// 2^-11 of their size, and must move at all.
		if !(worst <= 1e-2*scale) || worst == 0 {
			t.Errorf("%s: largest logit change %.3g (logits up to %.3g)", name, worst, scale)
		}
	}
	for _, c := range []struct {
		name string
		opts []Option
		msg  string
	}{
		{"unknown PV", []Option{WithAttention(AttentionArithmetic{PV: 7})}, "PVAccumulation(7), an unknown value"},
		{"probs with fp16 P·V", []Option{WithPlan(&Plan{AttnProbs: Passthrough()}), WithAttention(AttentionArithmetic{PV: PVHalfOffset})},
			"forms no normalised probabilities"},
	} {
		_, err := NewGenerator(cfg, w, c.opts...)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v, want ErrConfig with %q", c.name, err, c.msg)
		}
	}
}

func TestAttentionArithmeticString(t *testing.T) {
	for _, c := range []struct {
		a    AttentionArithmetic
		want string
	}{
		{AttentionArithmetic{}, "float32"},
		{AttentionArithmetic{ScoresFP16: true}, "fp16 scores"},
		{AttentionArithmetic{PV: PVHalf}, "fp16 P·V"},
		{AttentionArithmetic{ScoresFP16: true, PV: PVHalfOffset}, "fp16 scores, fp16+ln8 P·V"},
		{AttentionArithmetic{PV: 9}, "PVAccumulation(9) P·V"},
	} {
		if got := c.a.String(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.a, got, c.want)
		}
	}
}
