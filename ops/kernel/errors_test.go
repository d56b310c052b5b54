package kernel

import (
	"fmt"
	"math"
	"testing"

	"github.com/actq/actq/internal/errtest"
)

// TestErrors is the audit of every exported function of the package: each
// bad input, in both dtypes, returns an error that wraps ErrLength and
// names the kernel and the argument, writes nothing, and nothing panics. Valid inputs beside them must succeed.
func TestErrors(t *testing.T) {
	cases := append(errorCases[float32](t), errorCases[float64](t)...)
	// Functions without an error result: they must not panic.
	for _, a := range []Axis{Along(6, 0, 1), Along(-6, -2, 0), Along(6, 4, 1), Along(math.MaxInt, 1, math.MaxInt)} {
		a := a
		cases = append(cases, errtest.Case{Name: fmt.Sprintf("%+v", a), Fn: "kernel.Along", Call: func() error { return nil }})
	}
	cases = append(cases,
		errtest.Case{Name: "nil", Fn: "kernel.NonFinite", Call: func() error {
			if _, _, _, first := NonFinite[float32](nil); first != -1 {
				return fmt.Errorf("first = %d, want -1", first)
			}
			return nil
		}},
		errtest.Case{Name: "no arguments", Fn: "kernel.VectorISA", Call: func() error { _ = VectorISA(); return nil }},
	)
	errtest.Run(t, cases)
}

// errorCases returns the cases of TestErrors for dtype T.
func errorCases[T Float](t *testing.T) []errtest.Case {
	var cases []errtest.Case
	const sentinel = 7
	// untouched reports an error if dst was written.
	untouched := func(err error, dst []T) error {
		for i, v := range dst {
			if v != sentinel {
				t.Errorf("dst[%d] written despite the error %v", i, err)
				break
			}
		}
		return err
	}
	dstOf := func(n int) []T {
		d := make([]T, n)
		for i := range d {
			d[i] = sentinel
		}
		return d
	}
	dt := fmt.Sprintf("%T", T(0))
	unary := map[string]func(dst, x []T) error{
		"kernel.GELU": GELU[T], "kernel.GELUTanh": GELUTanh[T], "kernel.SiLU": SiLU[T], "kernel.ReLU": ReLU[T],
	}
	for fn, k := range unary {
		for _, c := range []struct {
			name    string
			dst, x  int
			arg     string
			invalid bool
		}{
			{"x longer", 3, 4, "x", true},
			{"x shorter", 4, 3, "x", true},
			{"dst nil", 0, 3, "x", true},
			{"x nil", 3, 0, "x", true},
			{"equal", 5, 5, "", false},
			{"both empty", 0, 0, "", false},
		} {
			c := c
			tc := errtest.Case{Name: dt + " " + c.name, Fn: fn, Arg: "len(" + c.arg + ")", Call: func() error {
				dst := dstOf(c.dst)
				err := k(dst, make([]T, c.x))
				if err != nil {
					return untouched(err, dst)
				}
				return nil
			}}
			if c.invalid {
				tc.Want = ErrLength
			}
			cases = append(cases, tc)
		}
	}
	binary := map[string]func(dst, x, dy []T) error{
		"kernel.GELUGrad": GELUGrad[T], "kernel.GELUTanhGrad": GELUTanhGrad[T], "kernel.SiLUGrad": SiLUGrad[T], "kernel.ReLUGrad": ReLUGrad[T],
	}
	for fn, k := range binary {
		for _, c := range []struct {
			name       string
			dst, x, dy int
			arg        string
		}{
			{"x shorter", 4, 3, 4, "x"},
			{"dy shorter", 4, 4, 3, "dy"},
			{"dy nil", 4, 4, 0, "dy"},
			{"dst shorter", 3, 4, 4, "x"},
			{"all differ", 1, 2, 3, "x"},
			{"equal", 4, 4, 4, ""},
		} {
			c := c
			tc := errtest.Case{Name: dt + " " + c.name, Fn: fn, Arg: "len(" + c.arg + ")", Call: func() error {
				dst := dstOf(c.dst)
				if err := k(dst, make([]T, c.x), make([]T, c.dy)); err != nil {
					return untouched(err, dst)
				}
				return nil
			}}
			if c.arg != "" {
				tc.Want = ErrLength
			}
			cases = append(cases, tc)
		}
	}
	// Softmax: 6 elements, viewed as 2 slices of 3 by default.
	fwd := map[string]func(dst, x []T, a Axis) error{"kernel.Softmax": Softmax[T], "kernel.LogSoftmax": LogSoftmax[T]}
	bwd := map[string]func(dst, y, dy []T, a Axis) error{"kernel.SoftmaxGrad": SoftmaxGrad[T], "kernel.LogSoftmaxGrad": LogSoftmaxGrad[T]}
	huge := 1 << 32
	for _, c := range []struct {
		name       string
		dst, x, dy int
		a          Axis
		arg        string // "" for a valid input
	}{
		{"x shorter", 6, 5, 6, Along(6, 3, 1), "len(x)"},
		{"dst shorter", 5, 6, 6, Along(6, 3, 1), "len(x)"},
		{"dy shorter", 6, 6, 5, Along(6, 3, 1), "len(dy)"},
		{"N does not divide", 6, 6, 6, Along(6, 4, 1), "N = 4"},
		{"N·Inner does not divide", 6, 6, 6, Along(6, 2, 2), "Inner = 2"},
		{"N zero", 6, 6, 6, Axis{N: 0, Inner: 1, Hi: 1}, "N = 0"},
		{"N negative", 6, 6, 6, Axis{N: -3, Inner: 1, Hi: 1}, "N = -3"},
		{"Inner zero", 6, 6, 6, Axis{N: 3, Inner: 0, Hi: 1}, "Inner = 0"},
		{"Inner negative", 6, 6, 6, Axis{N: 3, Inner: -2, Hi: 1}, "Inner = -2"},
		{"N·Inner overflows", 6, 6, 6, Axis{N: huge, Inner: huge, Hi: 1}, "N = 4294967296"},
		{"N larger than the array", 6, 6, 6, Axis{N: 12, Inner: 1, Hi: 1}, "N = 12"},
		{"Hi past the end", 6, 6, 6, Axis{N: 3, Inner: 1, Hi: 3}, "Hi"},
		{"Lo negative", 6, 6, 6, Axis{N: 3, Inner: 1, Lo: -1, Hi: 1}, "Lo"},
		{"Lo above Hi", 6, 6, 6, Axis{N: 3, Inner: 1, Lo: 2, Hi: 1}, "Lo"},
		{"zero Axis", 6, 6, 6, Axis{}, "N = 0"},
		{"slices of an empty array", 0, 0, 0, Axis{N: 3, Inner: 1, Hi: 1}, "N = 3"},
		{"valid", 6, 6, 6, Along(6, 3, 1), ""},
		{"valid strided", 6, 6, 6, Along(6, 3, 2), ""},
		{"valid part", 6, 6, 6, Axis{N: 3, Inner: 1, Lo: 1, Hi: 2}, ""},
		{"valid empty", 0, 0, 0, Along(0, 3, 1), ""},
		{"valid empty range", 6, 6, 6, Axis{N: 3, Inner: 1, Lo: 1, Hi: 1}, ""},
	} {
		c := c
		for fn, k := range fwd {
			if c.dy != c.dst && c.x == c.dst {
				continue // no dy
			}
			arg := c.arg
			if c.dy != c.dst {
				arg = "len(x)"
			}
			tc := errtest.Case{Name: dt + " " + c.name, Fn: fn, Arg: arg, Call: func() error {
				dst := dstOf(c.dst)
				if err := k(dst, make([]T, c.x), c.a); err != nil {
					return untouched(err, dst)
				}
				return nil
			}}
			if c.arg != "" {
				tc.Want = ErrLength
			}
			cases = append(cases, tc)
		}
		for fn, k := range bwd {
			arg := c.arg
			if arg == "len(x)" {
				arg = "len(y)"
			}
			tc := errtest.Case{Name: dt + " " + c.name, Fn: fn, Arg: arg, Call: func() error {
				dst := dstOf(c.dst)
				if err := k(dst, make([]T, c.x), make([]T, c.dy), c.a); err != nil {
					return untouched(err, dst)
				}
				return nil
			}}
			if c.arg != "" {
				tc.Want = ErrLength
			}
			cases = append(cases, tc)
		}
	}
	return cases
}
