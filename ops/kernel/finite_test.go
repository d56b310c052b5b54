package kernel

import (
	"fmt"
	"math"
	"testing"
)

func TestNonFinite(t *testing.T) {
	inf, nan := math.Inf(1), math.NaN()
	for _, tc := range []struct {
		x                        []float64
		nan, pos, neg, firstWant int
	}{
		{nil, 0, 0, 0, -1},
		{[]float64{0, -0.0, 1e308, -1e-320}, 0, 0, 0, -1},
		{[]float64{1, nan, 2}, 1, 0, 0, 1},
		{[]float64{-inf, 1, inf, nan, nan}, 2, 1, 1, 0},
		{[]float64{math.MaxFloat64, inf}, 0, 1, 0, 1},
	} {
		for _, dtype := range []string{"float64", "float32"} {
			var n, p, m, f int
			if dtype == "float64" {
				n, p, m, f = NonFinite(tc.x)
			} else {
				x := to32(tc.x)
				if fmt.Sprint(to64(x)) != fmt.Sprint(tc.x) {
					continue // not float32 values (1e308 overflows to +Inf)
				}
				n, p, m, f = NonFinite(x)
			}
			if n != tc.nan || p != tc.pos || m != tc.neg || f != tc.firstWant {
				t.Errorf("%s NonFinite(%v) = %d %d %d %d, want %d %d %d %d", dtype, tc.x, n, p, m, f, tc.nan, tc.pos, tc.neg, tc.firstWant)
			}
		}
	}
}
