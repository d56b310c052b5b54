//go:build amd64 && !goexperiment.simd && !purego

package kernel

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestExpSum32Accuracy checks the float32-lane exp of the assembly's
// softmax sum (EXPF8 after DIFF) against math.Exp: every stored term within
// 1.5·2^−24 relative (the polynomial's error and the rounding to float32;
// softmax_amd64.go quotes the measured 1.25·2^−24), for x − m across
// [−86, 0] including values that float32 cannot hold exactly as x − m, and
// the sum within 2^−24 relative of the exact sum of the stored terms
// (the pairwise float32 additions when storing; none without).
func TestExpSum32Accuracy(t *testing.T) {
	if !vecSoftmax() {
		t.Skip("no AVX2+FMA")
	}
	r := rand.New(rand.NewPCG(31, 32))
	const n = 1 << 14
	x, e := make([]float32, n), make([]float32, n)
	worst := 0.0
	for trial := range 64 {
		m := float32(0)
		if trial%2 == 1 {
			m = float32(100 * r.NormFloat64()) // x − m is then rounded in float32
		}
		for i := range x {
			x[i] = m - float32(86*r.Float64())
		}
		x[r.IntN(n)] = m
		s := expSum32(e, x, float64(m), true)
		sNoStore := expSum32(e[:0:0], x, float64(m), false)
		var exact float64
		for i, v := range x {
			want := math.Exp(float64(v) - float64(m))
			worst = max(worst, math.Abs(float64(e[i])-want)/want)
			exact += float64(e[i])
		}
		if d := math.Abs(s-exact) / exact; d > 0x1p-24 {
			t.Fatalf("trial %d: sum %v, exact sum of the terms %v: relative error %.3g", trial, s, exact, d)
		}
		if d := math.Abs(sNoStore-exact) / exact; d > 0x1p-40 {
			t.Fatalf("trial %d: sum without store %v, exact sum of the terms %v: relative error %.3g", trial, sNoStore, exact, d)
		}
	}
	if worst > 0x1.8p-24 {
		t.Errorf("largest relative error of a term %.3g·2^−24, want ≤ 1.5", worst/0x1p-24)
	}
	t.Logf("largest relative error of a term: %.3f·2^−24", worst/0x1p-24)
}
