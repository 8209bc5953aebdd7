// Command mnist-cl trains the lecture's MNIST network with every step of its
// forward and backward pass in OpenCL kernels, and checks the device against
// a float64 reference.
//
// Usage:
//
//	mnist-cl devices            list OpenCL devices; * marks the default
//	mnist-cl train [flags]      train on MNIST and report test accuracy
//	mnist-cl verify [flags]     compare one training step with cpuref
//	mnist-cl eval -model F      accuracy, per-digit figures and confusion matrix
//	mnist-cl predict -model F IMAGE...  classify your own digits
//	mnist-cl export -model F -o F.onnx  write a saved network as an ONNX model
//	mnist-cl serve -model F     a page to draw digits on; -metrics F: a run's dashboard
//	mnist-cl bench [--json]     time the GEMMs, a step, cpuref and an epoch
//	mnist-cl tune               measure and cache the fastest GEMM blocks
//
// Run 'mnist-cl <command> -h' for a command's flags.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"sync/atomic"
	"syscall"
)

// env is what a command may touch of the process, so tests run commands in
// process with their own streams and environment.
type env struct {
	ctx    context.Context
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	// atOnce, in the real process, holds the phase a signal may end at once
	// (see exitAtOnce); nil in tests run in process.
	atOnce *atomic.Pointer[string]
}

// exitAtOnce marks what runs until done is called as a phase that a signal
// ends at once, exit 130, rather than at its end: a phase that writes
// nothing and waits in a driver call that cannot be cut short (a program
// build takes seconds on a cold compiler cache, more on a loaded machine).
func (e *env) exitAtOnce(phase string) (done func()) {
	if e.atOnce == nil {
		return func() {}
	}
	e.atOnce.Store(&phase)
	return func() { e.atOnce.Store(nil) }
}

type command struct {
	name    string
	summary string
	run     func(e *env, args []string) error
}

func commands() []command {
	return []command{
		{"devices", "list OpenCL platforms and devices; * marks the one train picks", runDevices},
		{"train", "train the network on MNIST and report test accuracy", runTrain},
		{"verify", "run one training step on the device and in cpuref and compare every tensor", runVerify},
		{"eval", "evaluate a saved network: accuracy, per-digit precision and recall, confusion matrix", runEval},
		{"predict", "classify your own PNG or JPEG images of digits with a saved network", runPredict},
		{"export", "write a saved network as an ONNX model for other runtimes (OpenCV, ONNX Runtime)", runExport},
		{"serve", "serve a page to draw digits on for a saved network, and a run's dashboard", runServe},
		{"plan", "print one training step's tensors and launches in order, with bytes moved and FLOPs", runPlan},
		{"bench", "time the step's GEMMs, a training step, cpuref's step and an epoch; peak memory", runBench},
		{"tune", "measure the fastest GEMM blocks for this device and cache them", runTune},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first signal asks the command to stop at the next step; once it is
	// seen, the default action is back, so a second one ends the process even
	// where nothing checks ctx (a read that blocks, a kernel build).
	atOnce := &atomic.Pointer[string]{}
	go func() {
		<-ctx.Done()
		stop()
		if phase := atOnce.Load(); phase != nil {
			fmt.Fprintf(os.Stderr, "mnist-cl: interrupted while %s\n", *phase)
			os.Exit(130)
		}
	}()
	code := run(&env{ctx: ctx, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, atOnce: atOnce}, os.Args[1:])
	stop()
	os.Exit(code)
}

// run dispatches to a subcommand and turns its error into the exit code:
// 0 on success, 2 for a usage error, 1 for anything that failed.
func run(e *env, args []string) int {
	// Every OpenCL call of a command is made from this goroutine; pinning it
	// to one OS thread makes them all come from the thread that created the
	// context. OpenCL 1.2 allows calls from any thread, but drivers keep
	// per-thread state: oclgrind 21.10 with --uninitialized sets up its
	// shadow-memory pool in a thread-local during clCreateContext and
	// dereferences NULL when a later blocking write or clFinish runs on
	// another thread, which an unpinned goroutine does whenever a long cgo
	// call (a kernel build, a simulated kernel) lets the scheduler hand its P
	// to another M (issue 12). The lock costs nothing per call.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if len(args) == 0 {
		topUsage(e.stderr)
		return 2
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		topUsage(e.stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return exitCode(e, c.name, c.run(e, args[1:]))
		}
	}
	fmt.Fprintf(e.stderr, "mnist-cl: unknown command %q\n", args[0])
	topUsage(e.stderr)
	return 2
}

func topUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: mnist-cl <command> [flags]")
	fmt.Fprintln(w)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'mnist-cl <command> -h' for a command's flags.")
}
