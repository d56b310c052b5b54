package ops

import "github.com/actq/actq/internal/opkit"

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
	// ErrValue reports a node or a run-time value the op cannot use: a
	// node outside any graph, or at run time a value of another type than
	// the node's (or a nil or uninitialised one).
	ErrValue = opkit.ErrValue
)
