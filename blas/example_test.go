package blas_test

import (
	"fmt"

	actqblas "github.com/actq/actq/blas"
	"gonum.org/v1/gonum/blas"
)

// C = A·B for a 2×3 matrix A and a 3×2 matrix B, row-major.
func ExampleImplementation_Sgemm() {
	a := []float32{
		1, 2, 3,
		4, 5, 6,
	}
	b := []float32{
		7, 8,
		9, 10,
		11, 12,
	}
	c := make([]float32, 2*2)
	actqblas.Implementation{}.Sgemm(blas.NoTrans, blas.NoTrans, 2, 2, 3, 1, a, 3, b, 2, 0, c, 2)
	fmt.Println(c)

	// C = Aᵀ·A + C, reading the same A transposed.
	d := []float32{1, 0, 0, 0, 1, 0, 0, 0, 1}
	actqblas.Implementation{}.Sgemm(blas.Trans, blas.NoTrans, 3, 3, 2, 1, a, 3, a, 3, 1, d, 3)
	fmt.Println(d)
	// Output:
	// [58 64 139 154]
	// [18 22 27 22 30 36 27 36 46]
}
