package plots

import (
	"errors"
	"fmt"
	"image"
	"image/draw"
	"io"
	"math"
)

// Digit is one misclassified image for Errors: Rows x Cols grayscale
// pixels in row-major order, 0 the background and 255 full ink, as MNIST
// stores them, with its true and predicted class.
type Digit struct {
	Pixels     []uint8
	Rows, Cols int
	True, Pred int
}

// MaxErrors is how many images Errors draws at most; it takes the first
// ones. A hundred already makes a picture about 1000 px square, and more
// would show nothing a hundred do not.
const MaxErrors = 100

// Errors writes a PNG grid of the first MaxErrors images of imgs, cols to
// a row, each drawn white on black, scaled up with nearest neighbour to
// about 84 px (3x for MNIST), and captioned "true T, pred P"; a heading
// says how many of how many are shown. It fails on no images, cols < 1, or
// an image whose size is not positive or whose Pixels length is not
// Rows*Cols (checked for every image, drawn or not).
func Errors(w io.Writer, imgs []Digit, cols int) error {
	const ctx = "misclassified images"
	if len(imgs) == 0 {
		return errors.New(ctx + ": no images")
	}
	if cols < 1 {
		return fmt.Errorf("%s: %d columns, want at least 1", ctx, cols)
	}
	tileRows, tileCols := 0, 0
	for i, d := range imgs {
		if d.Rows < 1 || d.Cols < 1 {
			return fmt.Errorf("%s: image %d is %dx%d", ctx, i, d.Rows, d.Cols)
		}
		if len(d.Pixels) != d.Rows*d.Cols {
			return fmt.Errorf("%s: image %d has %d pixels, want %dx%d = %d", ctx, i, len(d.Pixels), d.Rows, d.Cols, d.Rows*d.Cols)
		}
		if i < MaxErrors {
			tileRows, tileCols = max(tileRows, d.Rows), max(tileCols, d.Cols)
		}
	}
	shown := imgs[:min(len(imgs), MaxErrors)]
	cols = min(cols, len(shown))
	rows := (len(shown) + cols - 1) / cols

	// Nearest neighbour to about 84 px: an integer scale keeps every
	// source pixel an equal square, and large images are not shrunk.
	scale := max(1, 84/max(tileRows, tileCols))

	capFace, headFace, err := pageFaces()
	if err != nil {
		return fmt.Errorf("%s: %w", ctx, err)
	}
	captions := make([]string, len(shown))
	capW := 0.0
	for i, d := range shown {
		captions[i] = fmt.Sprintf("true %d, pred %d", d.True, d.Pred)
		capW = max(capW, capFace.width(captions[i]))
	}
	heading := fmt.Sprintf("Misclassified images: %d of %d", len(shown), len(imgs))
	if len(shown) < len(imgs) {
		heading = fmt.Sprintf("Misclassified images: the first %d of %d", len(shown), len(imgs))
	}

	const margin, gap = 12, 14
	tileW, tileH := tileCols*scale, tileRows*scale
	cellW := max(tileW, int(math.Ceil(capW))) + gap
	capH := int(math.Ceil(capFace.height())) + 4
	cellH := tileH + capH + gap
	headH := int(math.Ceil(headFace.height())) + 14
	width := max(2*margin+cols*cellW-gap, 2*margin+int(math.Ceil(headFace.width(heading))))
	height := 2*margin + headH + rows*cellH - gap

	c := newCanvas(width, height, white)
	c.text(headFace, heading, margin, margin, left, top, black)
	for k, d := range shown {
		x0 := margin + (k%cols)*cellW + (cellW-gap-tileW)/2
		y0 := margin + headH + (k/cols)*cellH
		c.fillRect(image.Rect(x0, y0, x0+tileW, y0+tileH), black)
		// A smaller image in a mixed set sits centred in its tile.
		off := image.Pt(x0+(tileW-d.Cols*scale)/2, y0+(tileH-d.Rows*scale)/2)
		drawScaled(c, off, d.Pixels, d.Cols, d.Rows, scale)
		cx := margin + (k%cols)*cellW + (cellW-gap)/2
		c.text(capFace, captions[k], float64(cx), float64(y0+tileH+3), center, top, black)
	}
	return c.writePNG(w, ctx)
}

// pageFaces is the faces of the image grids' captions and heading: 11 and
// 13 pixels, the 11 and 13 pt that gonum/plot drew them at on its 72 dpi
// canvas.
func pageFaces() (caption, heading *face, err error) {
	tf, err := newTypeface()
	if err != nil {
		return nil, nil, err
	}
	if caption, err = tf.face(11); err != nil {
		return nil, nil, err
	}
	if heading, err = tf.face(13); err != nil {
		return nil, nil, err
	}
	return caption, heading, nil
}

// drawScaled draws the cols x rows grey pixels at, each blown up to a
// scale x scale square, with at its top left corner.
func drawScaled(c *canvas, at image.Point, pixels []uint8, cols, rows, scale int) {
	g := image.NewGray(image.Rect(0, 0, cols*scale, rows*scale))
	for y := range rows * scale {
		for x := range cols * scale {
			g.Pix[y*g.Stride+x] = pixels[(y/scale)*cols+x/scale]
		}
	}
	draw.Draw(c.img, g.Rect.Add(at), g, image.Point{}, draw.Src)
}
