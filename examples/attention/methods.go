package main

import (
	"fmt"
	"math"

	"github.com/actq/actq/internal/qkernel"
	okernel "github.com/actq/actq/ops/kernel"
)

// A method computes one row of attention probabilities from one row of
// scores, emulating a precision and an algorithm. Results are returned as
// float64 holding the method's values exactly.
type method struct {
	name string
	desc string
	// probs writes the probabilities of scores into p (same length).
	probs func(p, scores []float64) error
}

// round returns x rounded to format f (fp16 and bf16 overflow to ±Inf).
func round(f qkernel.FloatFormat, x float64) float64 {
	r, _ := f.Round(x)
	return r
}

func fp16(x float64) float64 { return round(qkernel.FP16, x) }
func bf16(x float64) float64 { return round(qkernel.BF16, x) }

// methods lists the softmax variants the study compares, reference first.
func methods() []method {
	return []method{
		{"float64", "stable softmax in float64: the reference", stableFloat64},
		{"float32", "actq's stable softmax kernel in float32", stableFloat32},
		{"fp16-naive", "fp16, no max subtraction: e^x, sum and quotient each rounded to fp16", naiveFP16},
		{"fp16-stable-acc16", "fp16, max subtracted, the sum accumulated in fp16", stableLow(fp16, fp16)},
		{"fp16-stable-acc32", "fp16, max subtracted, the sum accumulated in float32", stableLow(fp16, f32)},
		{"bf16-stable", "bf16, max subtracted, the sum accumulated in float32", stableLow(bf16, f32)},
		{"int8-P", "float32 softmax, then P fake-quantized to int8 per row (dynamic symmetric, scale max/127)", quantizedInt8},
		{"fp8-e4m3-P", "float32 softmax, then P cast to fp8 E4M3 (unscaled: values below 2^-10 flush to 0)", quantizedFP8(false)},
		{"fp8-e4m3-P-scaled", "float32 softmax, then P cast to fp8 E4M3 with a per-row scale max/448", quantizedFP8(true)},
	}
}

func f32(x float64) float64 { return float64(float32(x)) }

// stableFloat64 is the reference: m = max x, p = e^(x−m)/Σe^(x−m) in float64.
func stableFloat64(p, scores []float64) error {
	m := math.Inf(-1)
	for _, v := range scores {
		m = math.Max(m, v)
	}
	var s float64
	for i, v := range scores {
		p[i] = math.Exp(v - m)
		s += p[i]
	}
	for i := range p {
		p[i] /= s
	}
	return nil
}

// stableFloat32 runs actq's float32 softmax kernel (ops/kernel.Softmax).
func stableFloat32(p, scores []float64) error {
	x := make([]float32, len(scores))
	for i, v := range scores {
		x[i] = float32(v)
	}
	if err := okernel.Softmax(x, x, okernel.Along(len(x), len(x), 1)); err != nil {
		return err
	}
	for i, v := range x {
		p[i] = float64(v)
	}
	return nil
}

// naiveFP16 is what a half-precision kernel without the max subtraction
// computes: e^x overflows fp16 once x > 11.09, and the sum once it passes
// 65504.
func naiveFP16(p, scores []float64) error {
	var s float64
	for i, v := range scores {
		p[i] = fp16(math.Exp(fp16(v)))
		s = fp16(s + p[i])
	}
	for i := range p {
		p[i] = fp16(p[i] / s)
	}
	return nil
}

// stableLow returns a stable softmax whose inputs, exponentials and outputs
// are rounded by store (fp16 or bf16) and whose running sum is rounded by
// acc after every addition.
func stableLow(store, acc func(float64) float64) func(p, scores []float64) error {
	return func(p, scores []float64) error {
		m := math.Inf(-1)
		for i, v := range scores {
			p[i] = store(v)
			m = math.Max(m, p[i])
		}
		var s float64
		for i, v := range p {
			p[i] = store(math.Exp(store(v - m)))
			s = acc(s + p[i])
		}
		for i := range p {
			p[i] = store(p[i] / s)
		}
		return nil
	}
}

// quantizedInt8 fake-quantizes float32 probabilities to int8 on one dynamic
// symmetric grid per row (quantize's dynamic rule: scale = max/127).
func quantizedInt8(p, scores []float64) error {
	if err := stableFloat32(p, scores); err != nil {
		return err
	}
	return qkernel.FakeQuantIntGroupsSymmetric(p, p, 1, -128, 127, math.Ldexp(1, -23))
}

// quantizedFP8 casts float32 probabilities to fp8 E4M3, unscaled or with the
// row's largest value mapped to 448.
func quantizedFP8(scaled bool) func(p, scores []float64) error {
	return func(p, scores []float64) error {
		if err := stableFloat32(p, scores); err != nil {
			return err
		}
		s := 1.0
		if scaled {
			s = qkernel.AbsMax(p) / qkernel.FP8E4M3.Max()
			if !(s > 0) {
				return fmt.Errorf("row with no positive probability")
			}
		}
		return qkernel.RoundFloat(p, p, qkernel.FP8E4M3, s)
	}
}
