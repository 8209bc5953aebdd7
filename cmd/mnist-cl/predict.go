package main

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/mnist-cl/mnist-cl/internal/digit"
	"github.com/mnist-cl/mnist-cl/mnist"
	"github.com/mnist-cl/mnist-cl/nn"
)

// prediction is one image's answer, as -json prints it.
type prediction struct {
	File  string   `json:"file"`
	Digit int      `json:"digit"`
	Top   []ranked `json:"top3"`
}

type ranked struct {
	Digit       int     `json:"digit"`
	Probability float64 `json:"probability"`
}

const predictHelp = `Reads each PNG or JPEG image of a handwritten digit (any size, dark on light or
light on dark), prepares it the way MNIST's images were made (cropped, scaled
into 20x20 and centred by its centre of mass in 28x28), and prints the digit
the network sees with its three most likely answers.`

func runPredict(e *env, args []string) error {
	fs := newFlags("predict")
	var dev deviceFlags
	dev.register(fs)
	model := fs.String("model", "", "the checkpoint to use (a safetensors file written by train -save)")
	asJSON := fs.Bool("json", false, "print a JSON array of {file, digit, top3} instead of lines")
	files, err := parsePositional(e, fs, "-model FILE [flags] IMAGE...", predictHelp, args)
	if err != nil {
		return err
	}
	if *model == "" {
		return &usageError{err: fmt.Errorf("-model FILE is required")}
	}
	if len(files) == 0 {
		return &usageError{err: fmt.Errorf("no images given")}
	}
	ck, err := nn.ReadCheckpoint(*model)
	if err != nil {
		return err
	}
	if ck.Sizes[0] != 28*28 {
		return fmt.Errorf("%s: the network takes %d pixels, not the 784 of a 28x28 digit", *model, ck.Sizes[0])
	}
	// Every image is read before the device is opened: a typo in the last
	// name should not wait for a kernel build.
	set := &mnist.Set{Rows: 28, Cols: 28, Labels: make([]uint8, len(files))}
	for _, f := range files {
		px, err := digit.Load(f)
		if err != nil {
			return err
		}
		set.Images = append(set.Images, px...)
	}
	rt, err := dev.open(e)
	if err != nil {
		return err
	}
	defer rt.Close()
	out, err := classify(rt, ck, set, 256)
	if err != nil {
		return err
	}
	preds := make([]prediction, len(files))
	for i, f := range files {
		probs := out.Probs[i*out.Classes : (i+1)*out.Classes]
		order := make([]int, len(probs))
		for c := range order {
			order[c] = c
		}
		sort.SliceStable(order, func(a, b int) bool { return probs[order[a]] > probs[order[b]] })
		p := prediction{File: f, Digit: out.Pred(i)}
		for _, c := range order[:min(3, len(order))] {
			p.Top = append(p.Top, ranked{Digit: c, Probability: float64(probs[c])})
		}
		preds[i] = p
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(preds)
	}
	for _, p := range preds {
		fmt.Fprintf(e.stdout, "%s: %d  (", p.File, p.Digit)
		for j, r := range p.Top {
			if j > 0 {
				fmt.Fprint(e.stdout, ", ")
			}
			fmt.Fprintf(e.stdout, "%d %.1f%%", r.Digit, 100*r.Probability)
		}
		fmt.Fprintln(e.stdout, ")")
	}
	return nil
}
