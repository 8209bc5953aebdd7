package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/mnist-cl/mnist-cl/internal/atomicfile"
	"github.com/mnist-cl/mnist-cl/internal/plots"
	"github.com/mnist-cl/mnist-cl/mnist"
	"github.com/mnist-cl/mnist-cl/nn"
)

const evalHelp = `Evaluates a saved network: accuracy and loss, per-digit precision and recall,
and the confusion matrix (rows: true digit, columns: predicted).`

// evalFlags are eval's settings.
type evalFlags struct {
	dev                                deviceFlags
	model, data, split, plot, errorPNG string
	batch                              int
}

func runEval(e *env, args []string) error {
	var f evalFlags
	if err := f.parse(e, args); err != nil {
		return err
	}
	ck, err := nn.ReadCheckpoint(f.model)
	if err != nil {
		return err
	}
	rt, sp, err := f.dev.openWithData(e, f.data)
	if err != nil {
		return err
	}
	defer rt.Close()
	set := sp.Test
	if f.split == "validation" {
		set = sp.Validation
	}
	if set.Pixels() != ck.Sizes[0] {
		return fmt.Errorf("%s: the network takes %d pixels, the images have %d", f.model, ck.Sizes[0], set.Pixels())
	}
	out, err := classify(rt, ck, set, f.batch)
	if err != nil {
		return err
	}
	t := tallyOf(set, out)
	n := set.Len()
	fmt.Fprintf(e.stdout, "%s on %d %s images: accuracy %.2f%% (%d wrong), loss %.4f (%s)\n\n",
		f.model, n, f.split, 100*float64(t.hits)/float64(n), n-t.hits, t.loss/float64(n), ck.Config.Loss)
	if err := printPerDigit(e.stdout, t.confusion); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout)
	if err := printConfusion(e.stdout, t.confusion); err != nil {
		return err
	}
	return f.writePlots(e, t, n)
}

// parse parses eval's flags and checks them and the output files.
func (f *evalFlags) parse(e *env, args []string) error {
	fs := newFlags("eval")
	f.dev.register(fs)
	fs.StringVar(&f.model, "model", "", "the checkpoint to evaluate (a safetensors file written by train -save)")
	fs.StringVar(&f.data, "data", "", "folder with the four MNIST files (default: the per-user cache, fetched when missing)")
	fs.StringVar(&f.split, "split", "test", "which images: test or validation")
	fs.IntVar(&f.batch, "batch", 512, "images per forward pass")
	fs.StringVar(&f.plot, "plot", "", "draw the confusion matrix into this PNG file")
	fs.StringVar(&f.errorPNG, "errors", "", "draw the misclassified images (the first 100) into this PNG file")
	if err := parse(e, fs, "-model FILE [flags]", evalHelp, args); err != nil {
		return err
	}
	switch {
	case f.model == "":
		return &usageError{err: fmt.Errorf("-model FILE is required")}
	case f.split != "test" && f.split != "validation":
		return &usageError{err: fmt.Errorf("-split: want test or validation, got %q", f.split)}
	case f.batch <= 0 || f.batch > nn.MaxSize:
		return &usageError{err: fmt.Errorf("-batch: must be between 1 and %d, got %d", nn.MaxSize, f.batch)}
	}
	for _, out := range []string{f.plot, f.errorPNG} {
		if out != "" {
			if err := atomicfile.CheckWritable(out); err != nil {
				return err
			}
		}
	}
	return nil
}

// classify runs the network of ck on every image of set, batch images at a
// time at most, once the device is known to hold it.
func classify(rt *nn.Runtime, ck *nn.Checkpoint, set *mnist.Set, batch int) (*nn.Outputs, error) {
	batch = min(batch, set.Len())
	if err := rt.CheckFits(nn.NeedNetwork(ck.Sizes, batch, false)); err != nil {
		return nil, err
	}
	net, err := nn.NewNetworkFrom(rt, ck, batch)
	if err != nil {
		return nil, err
	}
	defer net.Release()
	return net.Classify(set)
}

// tally is what eval counts of a classified set.
type tally struct {
	confusion [][]int // [true digit][predicted]
	loss      float64
	hits      int
	wrong     []plots.Digit // the first plots.MaxErrors misclassified
}

func tallyOf(set *mnist.Set, out *nn.Outputs) tally {
	t := tally{confusion: make([][]int, out.Classes)}
	for i := range t.confusion {
		t.confusion[i] = make([]int, out.Classes)
	}
	px := set.Pixels()
	for i := range set.Len() {
		y, p := int(set.Labels[i]), out.Pred(i)
		t.confusion[y][p]++
		t.loss += float64(out.Loss[i])
		if y == p {
			t.hits++
		} else if len(t.wrong) < plots.MaxErrors {
			t.wrong = append(t.wrong, plots.Digit{Pixels: set.Images[i*px : (i+1)*px], Rows: set.Rows, Cols: set.Cols, True: y, Pred: p})
		}
	}
	return t
}

// writePlots draws the confusion matrix and the misclassified images where
// asked.
func (f *evalFlags) writePlots(e *env, t tally, n int) error {
	if f.plot != "" {
		title := fmt.Sprintf("%s images: %.2f%% correct", f.split, 100*float64(t.hits)/float64(n))
		if err := atomicfile.Write(f.plot, 0o644, func(w io.Writer) error { return plots.ConfusionMatrix(w, t.confusion, title) }); err != nil {
			return fmt.Errorf("plot: %w", err)
		}
		fmt.Fprintf(e.stderr, "wrote %s\n", f.plot)
	}
	if f.errorPNG == "" {
		return nil
	}
	if len(t.wrong) == 0 {
		fmt.Fprintf(e.stderr, "no misclassified images; %s not written\n", f.errorPNG)
		return nil
	}
	if err := atomicfile.Write(f.errorPNG, 0o644, func(w io.Writer) error { return plots.Errors(w, t.wrong, 10) }); err != nil {
		return fmt.Errorf("errors plot: %w", err)
	}
	fmt.Fprintf(e.stderr, "wrote %s\n", f.errorPNG)
	return nil
}

// printPerDigit writes each digit's precision (of the images predicted as
// it, the share that are it) and recall (of the images that are it, the
// share predicted as it).
func printPerDigit(w io.Writer, m [][]int) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "digit\timages\tprecision\trecall\t")
	for c := range m {
		predicted, actual := 0, 0
		for k := range m {
			predicted += m[k][c]
			actual += m[c][k]
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t\n", c, actual, percent(m[c][c], predicted), percent(m[c][c], actual))
	}
	return tw.Flush()
}

func percent(a, b int) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f%%", 100*float64(a)/float64(b))
}

func printConfusion(w io.Writer, m [][]int) error {
	fmt.Fprintln(w, "confusion matrix (rows: true digit, columns: predicted)")
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "\t")
	for c := range m {
		fmt.Fprintf(tw, "%d\t", c)
	}
	fmt.Fprintln(tw)
	for r, row := range m {
		fmt.Fprintf(tw, "%d\t", r)
		for _, v := range row {
			fmt.Fprintf(tw, "%d\t", v)
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}
