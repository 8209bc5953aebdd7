package plots

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	stddraw "image/draw"
	"io"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
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
	scale := max(1, 84/side)
	tile := side * scale
	// Laid out in points on a 72 dpi canvas, where a point is a pixel (see
	// Errors), y pointing up for text and down for the image.
	const cdpi, margin, gap, sep = 72, 12, 6, 14
	capSty := draw.TextStyle{Color: color.Black, Font: sans(11), XAlign: draw.XCenter, YAlign: draw.YTop, Handler: plot.DefaultTextHandler}
	headSty := draw.TextStyle{Color: color.Black, Font: sans(13), XAlign: draw.XLeft, YAlign: draw.YTop, Handler: plot.DefaultTextHandler}
	headH := int(math.Ceil(float64(headSty.Height(heading)))) + 10
	capH := int(math.Ceil(float64(capSty.Height("0")))) + 6
	// The originals stand apart from their distortions by sep.
	colX := func(c int) int { return margin + c*(tile+gap) + min(c, 1)*sep }
	width := max(colX(cols-1)+tile+margin, 2*margin+int(math.Ceil(float64(headSty.Width(heading)))))
	height := 2*margin + headH + capH + len(images)*(tile+gap) - gap

	cv := vgimg.NewWith(vgimg.UseWH(vg.Length(width), vg.Length(height)), vgimg.UseDPI(cdpi))
	dst, dc := cv.Image(), draw.New(cv)
	dc.FillText(headSty, vg.Point{X: margin, Y: vg.Length(height - margin)}, heading)
	for c := range cols {
		label := "original"
		if c > 0 {
			label = fmt.Sprintf("epoch %d", c)
		}
		dc.FillText(capSty, vg.Point{X: vg.Length(colX(c) + tile/2), Y: vg.Length(height - margin - headH)}, label)
	}
	for r, row := range images {
		y0 := margin + headH + capH + r*(tile+gap)
		for c, img := range row {
			g := image.NewGray(image.Rect(0, 0, tile, tile))
			for y := range tile {
				for x := range tile {
					v := img[(y/scale)*side+x/scale]
					g.Pix[y*g.Stride+x] = uint8(math.Round(255 * math.Min(1, math.Max(0, float64(v)))))
				}
			}
			stddraw.Draw(dst, g.Rect.Add(image.Pt(colX(c), y0)), g, image.Point{}, stddraw.Src)
		}
	}
	return writePNG(w, cv, ctx)
}
