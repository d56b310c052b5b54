package studyio

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// Exit statuses of a study command, besides 0 for a run that went through
// (or -h).
const (
	ExitError = 1 // the study failed, or could not write its outputs
	ExitUsage = 2 // a bad flag or argument
	ExitGate  = 3 // the run was asked to enforce its regression gate, and the gate failed
)

// ErrGate is what a study's run returns, wrapped, when it was asked to
// enforce its regression gate and the gate failed; Run turns it into
// ExitGate. The study has written all its outputs by then.
var ErrGate = errors.New("regression gate failed")

// ParseFlags parses a study's command line: it gives fs a usage message
// naming the command (go run ./examples/<fs.Name()>) followed by the
// flags' defaults, and returns an error for a bad flag (fs must be
// flag.ContinueOnError) or for any argument that is not a flag.
func ParseFlags(fs *flag.FlagSet, args []string) error {
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: go run ./examples/%s [flags]\n\n", fs.Name())
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	return nil
}

// Run is a study command from its arguments to its exit status. parse
// reads args into a configuration (writing any usage message to stderr);
// run runs the study with it. Errors are printed to stderr after the
// command's name. The status is 0 for a run that went through or for -h,
// ExitUsage for a bad command line (with a hint to run with -h), ExitGate
// for an error wrapping ErrGate, and ExitError for any other error.
func Run[C any](name string, args []string, stdout, stderr io.Writer,
	parse func(args []string, stderr io.Writer) (C, error),
	run func(cfg C, stdout, stderr io.Writer) error) int {
	cfg, err := parse(args, stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "%s: %v\nrun with -h for the flags\n", name, err)
		return ExitUsage
	}
	err = run(cfg, stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrGate):
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return ExitGate
	default:
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return ExitError
	}
}

// Main is a study command's main function: Run on the process's arguments
// and standard streams, then exit with its status.
func Main[C any](name string,
	parse func(args []string, stderr io.Writer) (C, error),
	run func(cfg C, stdout, stderr io.Writer) error) {
	os.Exit(Run(name, os.Args[1:], os.Stdout, os.Stderr, parse, run))
}
