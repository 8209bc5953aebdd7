package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/mnist-cl/mnist-cl/internal/tuner"
	"github.com/mnist-cl/mnist-cl/kernels"
	"github.com/mnist-cl/mnist-cl/mnist"
	"github.com/mnist-cl/mnist-cl/nn"
)

const tuneHelp = `Times the register-GEMM blocks that fit this device's registers (about a
dozen per product, a few builds of a second each) on each product of a
training step, each checked against cpuref first, prints the choice per shape
and stores it in the per-user cache, which train, verify and bench then use.
Training tunes missing shapes by itself; this redoes all of them. Ctrl-C
stops it at the next candidate and leaves the cache as it was.`

func runTune(e *env, args []string) error {
	fs := newFlags("tune")
	var dev deviceFlags
	dev.register(fs)
	hidden := intList(nn.DefaultConfig().Hidden)
	fs.Var(&hidden, "hidden", "widths of the ReLU hidden layers whose GEMMs to tune")
	batch := fs.Int("batch", nn.DefaultConfig().Batch, "batch size whose GEMMs to tune")
	all := fs.Bool("all", false, "also print every candidate's time")
	if err := parse(e, fs, "[flags]", tuneHelp, args); err != nil {
		return err
	}
	if *batch <= 0 || *batch > nn.MaxSize {
		return &usageError{err: fmt.Errorf("-batch: must be between 1 and %d, got %d", nn.MaxSize, *batch)}
	}
	rt, err := dev.open(e)
	if err != nil {
		return err
	}
	defer rt.Close()
	cache, err := tuner.DefaultCache()
	if err != nil {
		return err
	}
	if rt.Kernels.Kind() != kernels.GemmRegister {
		fmt.Fprintf(e.stdout, "%s uses the %s GEMM, which has nothing to tune\n", rt.Device.Name, rt.Kernels.Kind())
		return nil
	}
	choices, err := tuner.Apply(e.ctx, rt.Kernels, cache, nn.Shapes(nn.Sizes(28*28, hidden, mnist.NumClasses), *batch), true,
		func(format string, args ...any) { fmt.Fprintf(e.stderr, format+"\n", args...) })
	if ctxErr := e.ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%w while tuning the GEMM: %v", errInterrupted, ctxErr)
	}
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "shape (M x K x N)\tblock (rows x columns, k-chunk)\tus\tdefault block\tus\tspeed-up\tcandidates\tseconds\t\n")
	for _, c := range choices {
		fmt.Fprintf(tw, "%v\t%v\t%.0f\t%v\t%.0f\t%.2fx\t%d\t%.1f\t\n", c.Shape, c.Block, c.Micros, c.Default, c.DefaultUs, c.DefaultUs/c.Micros, c.Candidates, c.Seconds)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if *all {
		for _, c := range choices {
			fmt.Fprintf(e.stdout, "%v:", c.Shape)
			for _, t := range c.Timed {
				fmt.Fprintf(e.stdout, "  %v %.0f us;", t.Block, t.Micros)
			}
			fmt.Fprintln(e.stdout)
		}
	}
	key, err := rt.Kernels.TuneKey()
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "stored in %s for %s\n", cache.Path, key)
	return nil
}
