package numtest

import "fmt"

// Float64s returns a copy of data, the Data() of a float32 or float64
// tensor or scalar, as float64s. It panics for any other data: a test
// asked for the values of something that holds none.
func Float64s(data any) []float64 {
	switch d := data.(type) {
	case []float32:
		out := make([]float64, len(d))
		for i, x := range d {
			out[i] = float64(x)
		}
		return out
	case []float64:
		return append([]float64(nil), d...)
	case float32:
		return []float64{float64(d)}
	case float64:
		return []float64{d}
	}
	panic(fmt.Sprintf("numtest.Float64s: data of type %T", data))
}
