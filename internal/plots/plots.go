// Package plots renders a training run's pictures as PNG: the loss and
// accuracy curves per epoch, a confusion matrix, and a grid of the
// misclassified images. Each function writes one PNG to an io.Writer and
// leaves files (and writing them atomically) to the caller.
//
// It draws with the standard library's image packages, golang.org/x/image's
// antialiasing rasterizer and its embedded Go Regular font, rather than
// with a plotting library: those pull a dozen fonts and PDF, SVG and LaTeX
// back ends into the build for four fixed pictures.
package plots

import (
	"errors"
	"fmt"
	"image"
	"io"
	"math"
	"slices"
)

// EpochPoint is one epoch's measurements as TrainingCurves plots them.
// Accuracies are fractions in [0, 1], as nn.Epoch holds them; the plot
// shows them in percent.
type EpochPoint struct {
	Epoch                      int
	TrainLoss, ValLoss         float64
	TrainAccuracy, ValAccuracy float64
}

// TrainingCurves writes a 1000x450 PNG with two panels: on the left the
// training and validation loss per epoch, its axis named lossLabel (the
// run's loss, such as "cross-entropy loss"), on the right the training and
// validation accuracy per epoch in percent. One epoch gives single points.
// It fails on no epochs, a loss that is not finite, or an accuracy outside
// [0, 1] (which most likely means percentages were passed).
func TrainingCurves(w io.Writer, epochs []EpochPoint, lossLabel string) error {
	const ctx = "training curves"
	xs, loss, acc, err := curveData(epochs)
	if err != nil {
		return fmt.Errorf("%s: %w", ctx, err)
	}
	th, err := newTheme(96)
	if err != nil {
		return fmt.Errorf("%s: %w", ctx, err)
	}
	charts := [2]struct {
		title, ylabel string
		y             axis
		ys            [2][]float64
		legend        corner
	}{
		// Loss falls, so the upper right stays empty; accuracy rises, so
		// the lower right does.
		{"Loss per epoch", lossLabel, valueAxis(loss[0], loss[1]), loss, topRight},
		{"Accuracy per epoch", "accuracy (%)", valueAxis(acc[0], acc[1]), acc, bottomRight},
	}
	const width, height = 1000, 450
	areas := sideBySide(th, width, height, charts[0].y, charts[1].y)
	for _, a := range areas {
		if err := checkArea(ctx, a); err != nil {
			return err
		}
	}
	c := newCanvas(width, height, white)
	x := epochAxis(int(slices.Min(xs)), int(slices.Max(xs)))
	for i, ch := range charts {
		p := panel{area: areas[i], x: x, y: ch.y}
		p.draw(c, th, ch.title, "epoch", ch.ylabel)
		ss := trainingAndValidation(xs, ch.ys)
		for _, s := range ss {
			p.plot(c, s)
		}
		p.legend(c, th.legend, ch.legend, ss[:]...)
	}
	return c.writePNG(w, ctx)
}

// curveData checks epochs and splits them into the points to plot: the
// epochs, the training and validation losses and the training and
// validation accuracies in percent.
func curveData(epochs []EpochPoint) (xs []float64, loss, acc [2][]float64, err error) {
	if len(epochs) == 0 {
		return nil, loss, acc, errors.New("no epochs")
	}
	for _, e := range epochs {
		for _, v := range []float64{e.TrainLoss, e.ValLoss} {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, loss, acc, fmt.Errorf("epoch %d: loss %v is not finite", e.Epoch, v)
			}
		}
		for _, v := range []float64{e.TrainAccuracy, e.ValAccuracy} {
			if !(v >= 0 && v <= 1) {
				return nil, loss, acc, fmt.Errorf("epoch %d: accuracy %v is not a fraction in [0, 1]", e.Epoch, v)
			}
		}
		xs = append(xs, float64(e.Epoch))
		loss[0], loss[1] = append(loss[0], e.TrainLoss), append(loss[1], e.ValLoss)
		acc[0], acc[1] = append(acc[0], 100*e.TrainAccuracy), append(acc[1], 100*e.ValAccuracy)
	}
	return xs, loss, acc, nil
}

// sideBySide is the data areas of two panels next to each other on a
// width x height page, left and right their y axes. The areas have one
// size, so that the same epoch is at the same place in both panels, even
// though their tick labels differ in width.
func sideBySide(th *theme, width, height int, left, right axis) [2]image.Rectangle {
	const padLeft, padRight, padTop, padBottom, between = 10, 20, 10, 10, 40
	gl, gr := leftGutter(th, left), leftGutter(th, right)
	w := (width - padLeft - padRight - between - gl - gr) / 2
	top, bottom := padTop+topGutter(th), height-padBottom-bottomGutter(th)
	x0 := padLeft + gl
	x1 := x0 + w + between + gr
	return [2]image.Rectangle{image.Rect(x0, top, x0+w, bottom), image.Rect(x1, top, x1+w, bottom)}
}

// trainingAndValidation styles ys[0] as training and ys[1] as validation
// over the epochs xs.
func trainingAndValidation(xs []float64, ys [2][]float64) [2]series {
	return [2]series{
		{name: "training", col: tab10Blue, marker: circle, xs: xs, ys: ys[0]},
		// Validation is dashed, with other markers, as well as coloured,
		// so that the two stay apart in grey print and for colour-blind
		// readers.
		{name: "validation", col: tab10Red, dash: []float64{6, 3}, marker: triangleMarker, xs: xs, ys: ys[1]},
	}
}
