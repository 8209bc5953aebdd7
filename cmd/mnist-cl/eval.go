package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/mnist-cl/mnist-cl/internal/atomicfile"
	"github.com/mnist-cl/mnist-cl/internal/plots"
	"github.com/mnist-cl/mnist-cl/nn"
)

func runEval(e *env, args []string) error {
	fs := newFlags("eval")
	var dev deviceFlags
	dev.register(fs)
	model := fs.String("model", "", "the checkpoint to evaluate (a safetensors file written by train -save)")
	data := fs.String("data", "", "folder with the four MNIST files (default: the per-user cache, fetched when missing)")
	split := fs.String("split", "test", "which images: test or validation")
	batch := fs.Int("batch", 512, "images per forward pass")
	plot := fs.String("plot", "", "draw the confusion matrix into this PNG file")
	errorsPNG := fs.String("errors", "", "draw the misclassified images (the first 100) into this PNG file")
	if err := parse(e, fs, "-model FILE [flags]", "Evaluates a saved network: accuracy and loss, per-digit precision and recall,\nand the confusion matrix (rows: true digit, columns: predicted).", args); err != nil {
		return err
	}
	if *model == "" {
		return &usageError{err: fmt.Errorf("-model FILE is required")}
	}
	if *split != "test" && *split != "validation" {
		return &usageError{err: fmt.Errorf("-split: want test or validation, got %q", *split)}
	}
	if *batch <= 0 || *batch > nn.MaxSize {
		return &usageError{err: fmt.Errorf("-batch: must be between 1 and %d, got %d", nn.MaxSize, *batch)}
	}
	for _, out := range []string{*plot, *errorsPNG} {
		if out != "" {
			if err := atomicfile.CheckWritable(out); err != nil {
				return err
			}
		}
	}
	ck, err := nn.ReadCheckpoint(*model)
	if err != nil {
		return err
	}
	rt, sp, err := dev.openWithData(e, *data)
	if err != nil {
		return err
	}
	defer rt.Close()
	set := sp.Test
	if *split == "validation" {
		set = sp.Validation
	}
	if set.Pixels() != ck.Sizes[0] {
		return fmt.Errorf("%s: the network takes %d pixels, the images have %d", *model, ck.Sizes[0], set.Pixels())
	}
	if err := rt.CheckFits(nn.NeedNetwork(ck.Sizes, min(*batch, set.Len()), false)); err != nil {
		return err
	}
	net, err := nn.NewNetworkFrom(rt, ck, min(*batch, set.Len()))
	if err != nil {
		return err
	}
	defer net.Release()
	out, err := net.Classify(set)
	if err != nil {
		return err
	}

	classes := out.Classes
	confusion := make([][]int, classes)
	for i := range confusion {
		confusion[i] = make([]int, classes)
	}
	var loss float64
	hits := 0
	var wrong []plots.Digit
	for i := range set.Len() {
		y, p := int(set.Labels[i]), out.Pred(i)
		confusion[y][p]++
		loss += float64(out.Loss[i])
		if y == p {
			hits++
		} else if len(wrong) < plots.MaxErrors {
			wrong = append(wrong, plots.Digit{Pixels: set.Images[i*set.Pixels() : (i+1)*set.Pixels()], Rows: set.Rows, Cols: set.Cols, True: y, Pred: p})
		}
	}
	n := set.Len()
	fmt.Fprintf(e.stdout, "%s on %d %s images: accuracy %.2f%% (%d wrong), loss %.4f (%s)\n\n",
		*model, n, *split, 100*float64(hits)/float64(n), n-hits, loss/float64(n), ck.Config.Loss)
	if err := printPerDigit(e.stdout, confusion); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout)
	if err := printConfusion(e.stdout, confusion); err != nil {
		return err
	}
	if *plot != "" {
		title := fmt.Sprintf("%s images: %.2f%% correct", *split, 100*float64(hits)/float64(n))
		if err := atomicfile.Write(*plot, 0o644, func(w io.Writer) error { return plots.ConfusionMatrix(w, confusion, title) }); err != nil {
			return fmt.Errorf("plot: %w", err)
		}
		fmt.Fprintf(e.stderr, "wrote %s\n", *plot)
	}
	if *errorsPNG != "" {
		if len(wrong) == 0 {
			fmt.Fprintf(e.stderr, "no misclassified images; %s not written\n", *errorsPNG)
		} else {
			if err := atomicfile.Write(*errorsPNG, 0o644, func(w io.Writer) error { return plots.Errors(w, wrong, 10) }); err != nil {
				return fmt.Errorf("errors plot: %w", err)
			}
			fmt.Fprintf(e.stderr, "wrote %s\n", *errorsPNG)
		}
	}
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
