package blas_test

import (
	"math"
	"math/rand/v2"
	"testing"

	actqblas "github.com/actq/actq/blas"
	"github.com/actq/actq/internal/numtest"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// gorgoniaMul returns gorgonia.Mul(a, b) for an m×k a and a k×n b, run on a
// tape machine with whatever BLAS Gorgonia uses.
func gorgoniaMul(t *testing.T, a, b *tensor.Dense) []float64 {
	t.Helper()
	g := gorgonia.NewGraph()
	an := gorgonia.NodeFromAny(g, a, gorgonia.WithName("a"))
	bn := gorgonia.NodeFromAny(g, b, gorgonia.WithName("b"))
	c, err := gorgonia.Mul(an, bn)
	if err != nil {
		t.Fatal(err)
	}
	vm := gorgonia.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	return numtest.Float64s(c.Value().Data())
}

// TestGorgoniaUse checks that a Gorgonia user can opt in to actq's GEMM
// globally with gorgonia.Use(actqblas.Implementation{}): gorgonia.Mul then
// gives exactly what actq's Sgemm and Dgemm give, and gonum's result
// within rounding. The BLAS Gorgonia and tensor used before (gonum's,
// unless another test changed it) is restored at the end.
func TestGorgoniaUse(t *testing.T) {
	prevG, prevT := gorgonia.WhichBLAS(), tensor.WhichBLAS()
	defer func() {
		gorgonia.Use(prevG)
		tensor.Use(prevT)
	}()
	const m, k, n = 37, 53, 29
	r := rand.New(rand.NewPCG(1, 2))
	a32, b32 := make([]float32, m*k), make([]float32, k*n)
	a64, b64 := make([]float64, m*k), make([]float64, k*n)
	for i := range a32 {
		a32[i] = float32(r.NormFloat64())
		a64[i] = float64(a32[i])
	}
	for i := range b32 {
		b32[i] = float32(r.NormFloat64())
		b64[i] = float64(b32[i])
	}
	dense := func(v any, rows, cols int) *tensor.Dense {
		return tensor.New(tensor.WithShape(rows, cols), tensor.WithBacking(v))
	}
	gorgonia.Use(gonum.Implementation{})
	want32 := gorgoniaMul(t, dense(a32, m, k), dense(b32, k, n))
	want64 := gorgoniaMul(t, dense(a64, m, k), dense(b64, k, n))

	gorgonia.Use(actqblas.Implementation{})
	if _, ok := tensor.WhichBLAS().(actqblas.Implementation); !ok {
		t.Fatalf("after gorgonia.Use, tensor uses %T", tensor.WhichBLAS())
	}
	got32 := gorgoniaMul(t, dense(a32, m, k), dense(b32, k, n))
	got64 := gorgoniaMul(t, dense(a64, m, k), dense(b64, k, n))
	direct32 := make([]float32, m*n)
	actqblas.Implementation{}.Sgemm(blas.NoTrans, blas.NoTrans, m, n, k, 1, a32, k, b32, n, 0, direct32, n)
	direct64 := make([]float64, m*n)
	actqblas.Implementation{}.Dgemm(blas.NoTrans, blas.NoTrans, m, n, k, 1, a64, k, b64, n, 0, direct64, n)
	for i := range m * n {
		if got32[i] != float64(direct32[i]) || got64[i] != direct64[i] {
			t.Fatalf("C[%d]: gorgonia.Mul gave %g (float32), %g (float64); actq's GEMM %g, %g",
				i, got32[i], got64[i], direct32[i], direct64[i])
		}
		// k terms of size ~1, each product and sum rounded.
		if d := math.Abs(got32[i] - want32[i]); d > k*1e-6 {
			t.Errorf("C[%d] float32 = %g, gonum's %g", i, got32[i], want32[i])
		}
		if d := math.Abs(got64[i] - want64[i]); d > k*1e-15 {
			t.Errorf("C[%d] float64 = %g, gonum's %g", i, got64[i], want64[i])
		}
	}
}
