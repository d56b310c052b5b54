package opkit

import (
	"fmt"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// CheckFloatNode returns nil if x is a non-nil node of dtype Float32 or
// Float64 in a graph, and otherwise an error naming fn and arg that wraps
// ErrNilNode, ErrDtype or (for a node outside any graph, such as a
// gorgonia.NewConstant made without one) ErrValue. Every op constructor
// checks its node arguments with it before gorgonia.ApplyOp, which would
// panic on a nil node.
func CheckFloatNode(fn, arg string, x *gorgonia.Node) error {
	if x == nil {
		return fmt.Errorf("%s: %s: %w", fn, arg, ErrNilNode)
	}
	if dt := x.Dtype(); dt != tensor.Float32 && dt != tensor.Float64 {
		return fmt.Errorf("%s: %s has dtype %v, want Float32 or Float64: %w", fn, arg, dt, ErrDtype)
	}
	if x.Graph() == nil {
		return fmt.Errorf("%s: %s is in no graph (a constant made without one?): %w", fn, arg, ErrValue)
	}
	return nil
}
