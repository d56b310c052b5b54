package ops

import (
	"fmt"

	"github.com/actq/actq/internal/opkit"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Sentinel errors. Every error actq returns for bad input wraps one of them
// (test with errors.Is) and names the function and the argument.
var (
	// ErrNilNode reports a nil *gorgonia.Node argument.
	ErrNilNode = opkit.ErrNilNode
	// ErrDtype reports an unsupported element type; actq's ops take
	// Float32 and Float64.
	ErrDtype = opkit.ErrDtype
	// ErrAxis reports an axis outside [−rank, rank).
	ErrAxis = opkit.ErrAxis
	// ErrShape reports a shape or rank that does not fit.
	ErrShape = opkit.ErrShape
	// ErrValue reports a runtime value the op cannot use (for example a
	// value of another type than the node's).
	ErrValue = opkit.ErrValue
)

// CheckFloatNode returns nil if x is a non-nil node of dtype Float32 or
// Float64, and otherwise an error naming fn and arg.
func CheckFloatNode(fn, arg string, x *gorgonia.Node) error {
	if x == nil {
		return fmt.Errorf("%s: %s: %w", fn, arg, ErrNilNode)
	}
	if dt := x.Dtype(); dt != tensor.Float32 && dt != tensor.Float64 {
		return fmt.Errorf("%s: %s has dtype %v, want Float32 or Float64: %w", fn, arg, dt, ErrDtype)
	}
	return nil
}
