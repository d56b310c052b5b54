// Package errtest runs the table-driven audits of actq's exported
// functions: every bad input returns an error that wraps the right
// sentinel and names the function and the argument, and nothing panics.
package errtest

import (
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"testing"
)

// Case is one input to an exported function: a bad one (Want set) or a
// valid control (Want nil), which must succeed.
type Case struct {
	Name string // what is wrong with the input
	Fn   string // the function the error must name, e.g. "ops.Softmax"
	Arg  string // the argument (or field) the error must name
	Want error  // the sentinel the error must wrap; nil: no error
	Call func() error
}

// Counts are an audit's totals, for the closing table.
type Counts struct {
	Tried, Errors, Panics int
}

func (c Counts) String() string {
	return fmt.Sprintf("%d inputs tried, %d errors returned, %d panics", c.Tried, c.Errors, c.Panics)
}

// Run calls every case, recovering from panics, and reports each case
// whose error is missing, unexpected, wraps another sentinel or does not
// name Fn and Arg, and each panic. It logs and returns the totals.
func Run(t *testing.T, cases []Case) Counts {
	t.Helper()
	var c Counts
	for _, tc := range cases {
		c.Tried++
		err, panicked := call(tc.Call)
		switch {
		case panicked != nil:
			c.Panics++
			t.Errorf("%s (%s): panic: %v", tc.Fn, tc.Name, panicked)
			continue
		case err != nil:
			c.Errors++
		}
		switch {
		case tc.Want == nil && err != nil:
			t.Errorf("%s (%s): unexpected error: %v", tc.Fn, tc.Name, err)
		case tc.Want == nil:
		case err == nil:
			t.Errorf("%s (%s): no error, want one wrapping %q", tc.Fn, tc.Name, tc.Want)
		case !errors.Is(err, tc.Want):
			t.Errorf("%s (%s): %q does not wrap %q", tc.Fn, tc.Name, err, tc.Want)
		case !strings.Contains(err.Error(), tc.Fn+":"):
			t.Errorf("%s (%s): %q does not name the function", tc.Fn, tc.Name, err)
		case !strings.Contains(err.Error(), tc.Arg):
			t.Errorf("%s (%s): %q does not name the argument %s", tc.Fn, tc.Name, err, tc.Arg)
		}
	}
	t.Logf("%v", c)
	return c
}

// call runs f and returns its error, or what it panicked with (and the
// stack).
func call(f func() error) (err error, panicked any) {
	defer func() {
		if r := recover(); r != nil {
			panicked = fmt.Sprintf("%v\n%s", r, debug.Stack())
		}
	}()
	return f(), nil
}
