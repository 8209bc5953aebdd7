package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/mnist-cl/mnist-cl/cl"
)

// usageError is a mistake in the command line: exit 2 with the short usage.
type usageError struct{ err error }

func (u *usageError) Error() string { return u.err.Error() }

// errHelpShown means -h printed the help: exit 0.
var errHelpShown = errors.New("help shown")

// newFlags returns a flag set that reports instead of printing, so every
// command answers a bad flag the same way.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parse parses args, which must all be flags; -h prints the long help to
// stdout.
func parse(e *env, fs *flag.FlagSet, synopsis, about string, args []string) error {
	pos, err := parsePositional(e, fs, synopsis, about, args)
	if err == nil && len(pos) > 0 {
		return &usageError{err: fmt.Errorf("unexpected argument %q", pos[0])}
	}
	return err
}

// parsePositional parses flags anywhere among args and returns the other
// arguments in order.
func parsePositional(e *env, fs *flag.FlagSet, synopsis, about string, args []string) ([]string, error) {
	var pos []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(e.stdout, "usage: mnist-cl %s %s\n\n%s\n\nFlags:\n", fs.Name(), synopsis, about)
			fs.SetOutput(e.stdout)
			fs.PrintDefaults()
			return nil, errHelpShown
		}
		if err != nil {
			return nil, &usageError{err: err}
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// exitCode prints err the Go tool's way and returns the exit status.
func exitCode(e *env, cmd string, err error) int {
	var u *usageError
	var be *cl.BuildError
	switch {
	case err == nil || errors.Is(err, errHelpShown):
		return 0
	case errors.As(err, &u):
		fmt.Fprintf(e.stderr, "mnist-cl %s: %v\n", cmd, u.err)
		fmt.Fprintf(e.stderr, "run 'mnist-cl %s -h' for usage\n", cmd)
		return 2
	case errors.Is(err, errInterrupted):
		fmt.Fprintf(e.stderr, "mnist-cl: %v\n", err)
		return 130
	case errors.As(err, &be):
		fmt.Fprintf(e.stderr, "mnist-cl: %v\n", err)
		fmt.Fprintf(e.stderr, "compiler log:\n%s\n", strings.TrimRight(be.Log, "\n"))
		return 1
	default:
		fmt.Fprintf(e.stderr, "mnist-cl: %v\n", err)
		return 1
	}
}

// learningRate converts the --lr flag to the device's float32, refusing what
// float32 cannot hold, so the error names the value the user typed.
func learningRate(v float64) (float32, error) {
	if !(v > 0) || v > math.MaxFloat32 || float32(v) == 0 {
		return 0, &usageError{err: fmt.Errorf("-lr: want a positive number a float32 can hold, got %v", v)}
	}
	return float32(v), nil
}

// intList is a flag of comma-separated positive integers, such as --hidden 512,256.
type intList []int

func (l *intList) String() string {
	s := make([]string, len(*l))
	for i, v := range *l {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}

func (l *intList) Set(v string) error {
	if strings.TrimSpace(v) == "" {
		return errors.New("empty list; want widths like 512,256")
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return fmt.Errorf("%q is not a whole number", f)
		}
		if n <= 0 {
			return fmt.Errorf("width %d must be positive", n)
		}
		out = append(out, n)
	}
	*l = out
	return nil
}
