package plots

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// typeface is the one sans face of every text, Go Regular, parsed once per
// picture, with a face made for each pixel size on first use. It is not
// safe for concurrent use (neither is a font.Face), which is why each
// picture makes its own rather than sharing a package-level one.
type typeface struct {
	font  *opentype.Font
	faces map[float64]*face
}

// newTypeface parses the embedded Go Regular.
func newTypeface() (*typeface, error) {
	f, err := opentype.Parse(goregular.TTF)
	if err != nil {
		return nil, fmt.Errorf("parsing the Go Regular font: %w", err)
	}
	return &typeface{font: f, faces: map[float64]*face{}}, nil
}

// face is the typeface at one size, with the vertical metrics that
// alignment needs, in pixels.
type face struct {
	font.Face
	ascent, descent, capHeight float64
}

// face returns the face size pixels high (the em size: a 12 pt font at
// 96 dpi is 16 pixels).
func (t *typeface) face(size float64) (*face, error) {
	if f, ok := t.faces[size]; ok {
		return f, nil
	}
	// At 72 dpi a point is a pixel. No hinting: it would round each
	// advance to whole pixels, uneven at these small sizes.
	ff, err := opentype.NewFace(t.font, &opentype.FaceOptions{Size: size, DPI: 72, Hinting: font.HintingNone})
	if err != nil {
		return nil, fmt.Errorf("making a %.1f px face: %w", size, err)
	}
	m := ff.Metrics()
	f := &face{Face: ff, ascent: fix(m.Ascent), descent: fix(m.Descent), capHeight: fix(m.CapHeight)}
	t.faces[size] = f
	return f, nil
}

// fix is v, in 64ths of a pixel, in pixels.
func fix(v fixed.Int26_6) float64 { return float64(v) / 64 }

// width is how far s advances the pen, kerning included.
func (f *face) width(s string) float64 { return fix(font.MeasureString(f, s)) }

// height is the height of a line's box, ascent plus descent.
func (f *face) height() float64 { return f.ascent + f.descent }

// Where a text's anchor point lies on it, across and up and down.
type (
	hAlign int
	vAlign int
)

const (
	left hAlign = iota
	center
	right
)

const (
	top      vAlign = iota // the top of the line's box
	middle                 // half the capital height above the baseline, where digits and capitals have their centre
	baseline               // the baseline
	bottom                 // the bottom of the line's box, below descenders
)

// text draws s in col with its anchor, chosen by h and v, at (x, y).
func (c *canvas) text(f *face, s string, x, y float64, h hAlign, v vAlign, col color.Color) {
	x -= float64(h) / 2 * f.width(s) // left, center, right: 0, 1/2, 1 of the width
	switch v {
	case top:
		y += f.ascent
	case middle:
		y += f.capHeight / 2
	case bottom:
		y -= f.descent
	}
	d := font.Drawer{Dst: c.img, Src: image.NewUniform(col), Face: f, Dot: fixed.Point26_6{X: fixed.Int26_6(math.Round(x * 64)), Y: fixed.Int26_6(math.Round(y * 64))}}
	d.DrawString(s)
}

// textUp draws s in col turned a quarter left, reading upwards, as a y
// axis's label: the top of its line's box on column x and its middle on
// row y.
func (c *canvas) textUp(f *face, s string, x, y float64, col color.Color) {
	m := rotateLeft(f.mask(s))
	r := m.Rect.Add(image.Pt(int(math.Round(x)), int(math.Round(y-float64(m.Rect.Dy())/2))))
	draw.DrawMask(c.img, r, image.NewUniform(col), image.Point{}, m, image.Point{}, draw.Over)
}

// mask is s rendered as coverage on a transparent image exactly as wide as
// s advances and as high as the line's box, with the baseline at the
// ascent.
func (f *face) mask(s string) *image.Alpha {
	m := image.NewAlpha(image.Rect(0, 0, int(math.Ceil(f.width(s))), int(math.Ceil(f.height()))))
	d := font.Drawer{Dst: m, Src: image.Opaque, Face: f, Dot: fixed.Point26_6{Y: fixed.Int26_6(math.Round(f.ascent * 64))}}
	d.DrawString(s)
	return m
}

// rotateLeft is m turned a quarter counter-clockwise. Rotating whole
// pixels of the rendered text keeps the rasterizer's antialiasing of the
// glyphs without a rotating text renderer.
func rotateLeft(m *image.Alpha) *image.Alpha {
	w, h := m.Rect.Dx(), m.Rect.Dy()
	r := image.NewAlpha(image.Rect(0, 0, h, w))
	for y := range h {
		for x := range w {
			// The start of the text goes to the bottom, its top to the left.
			r.Pix[(w-1-x)*r.Stride+y] = m.Pix[y*m.Stride+x]
		}
	}
	return r
}
