package plots

import (
	"errors"
	"fmt"
	"image"
	"io"
	"math"
)

// Augmentations writes a PNG grid with one row per image: its original in
// the first column, then its distortions (one per epoch), each side x side
// values in [0, 1] drawn white on black at 3x, under a heading and column
// captions ("original", "epoch 1", ...). It fails on no images, rows of
// different lengths, or an image that is not side*side values.
func Augmentations(w io.Writer, images [][][]float32, side int, heading string) error {
	const ctx = "augmentations"
	if len(images) == 0 || len(images[0]) == 0 {
		return errors.New(ctx + ": no images")
	}
	cols := len(images[0])
	for r, row := range images {
		if len(row) != cols {
			return fmt.Errorf("%s: row %d has %d images, row 0 has %d", ctx, r, len(row), cols)
		}
		for c, img := range row {
			if side < 1 || len(img) != side*side {
				return fmt.Errorf("%s: image %d of row %d has %d values, want %dx%d", ctx, c, r, len(img), side, side)
			}
		}
	}
	capFace, headFace, err := pageFaces()
	if err != nil {
		return fmt.Errorf("%s: %w", ctx, err)
	}
	scale := max(1, 84/side)
	tile := side * scale
	const margin, gap, sep = 12, 6, 14
	headH := int(math.Ceil(headFace.height())) + 10
	capH := int(math.Ceil(capFace.height())) + 6
	// The originals stand apart from their distortions by sep.
	colX := func(c int) int { return margin + c*(tile+gap) + min(c, 1)*sep }
	width := max(colX(cols-1)+tile+margin, 2*margin+int(math.Ceil(headFace.width(heading))))
	height := 2*margin + headH + capH + len(images)*(tile+gap) - gap

	cv := newCanvas(width, height, white)
	cv.text(headFace, heading, margin, margin, left, top, black)
	for c := range cols {
		label := "original"
		if c > 0 {
			label = fmt.Sprintf("epoch %d", c)
		}
		cv.text(capFace, label, float64(colX(c)+tile/2), float64(margin+headH), center, top, black)
	}
	grey := make([]uint8, side*side)
	for r, row := range images {
		y0 := margin + headH + capH + r*(tile+gap)
		for c, img := range row {
			for i, v := range img {
				grey[i] = uint8(math.Round(255 * math.Min(1, math.Max(0, float64(v)))))
			}
			drawScaled(cv, image.Pt(colX(c), y0), grey, side, side, scale)
		}
	}
	return cv.writePNG(w, ctx)
}
