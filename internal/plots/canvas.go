package plots

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
	"slices"

	"golang.org/x/image/vector"
)

// pt is a point in pixels, x to the right and y down, as in image.Image:
// pixel (i, j) covers [i, i+1) x [j, j+1), so its centre is (i+0.5, j+0.5).
type pt struct{ x, y float64 }

// canvas is an opaque RGBA page that shapes are drawn onto, antialiased.
type canvas struct {
	img *image.RGBA
	// ras is reused by every fill, so that drawing a hundred markers does
	// not allocate a hundred coverage buffers.
	ras vector.Rasterizer
}

// newCanvas is a w x h page filled with bg.
func newCanvas(w, h int, bg color.Color) *canvas {
	c := &canvas{img: image.NewRGBA(image.Rect(0, 0, w, h))}
	c.fillRect(c.img.Rect, bg)
	return c
}

// fillRect paints the whole pixels of r with col, replacing what was
// there: for backgrounds, cells, grid lines and ticks, which sit on the
// pixel grid and so need no antialiasing.
func (c *canvas) fillRect(r image.Rectangle, col color.Color) {
	draw.Draw(c.img, r, image.NewUniform(col), image.Point{}, draw.Src)
}

// fill paints the union of the closed polygons with col, antialiased and
// blended over what is there.
func (c *canvas) fill(col color.Color, polys ...[]pt) {
	box := image.Rectangle{}
	for _, p := range polys {
		for _, q := range p {
			box = box.Union(image.Rect(int(math.Floor(q.x)), int(math.Floor(q.y)), int(math.Floor(q.x))+1, int(math.Floor(q.y))+1))
		}
	}
	// The rasterizer's mask covers only the shapes' bounding box on the
	// page: Draw neither clips nor offsets on its own.
	box = box.Intersect(c.img.Rect)
	if box.Empty() {
		return
	}
	c.ras.Reset(box.Dx(), box.Dy())
	ox, oy := float64(box.Min.X), float64(box.Min.Y)
	for _, p := range polys {
		if len(p) < 3 {
			continue
		}
		// The rasterizer adds up signed coverage and takes its absolute
		// value, so two overlapping polygons of opposite winding would
		// cancel out; all wound one way, they merge into their union.
		if signedArea(p) < 0 {
			p = reversed(p)
		}
		c.ras.MoveTo(float32(p[0].x-ox), float32(p[0].y-oy))
		for _, q := range p[1:] {
			c.ras.LineTo(float32(q.x-ox), float32(q.y-oy))
		}
		c.ras.ClosePath()
	}
	c.ras.Draw(c.img, box, image.NewUniform(col), image.Point{})
}

// signedArea is the shoelace area of the polygon p: positive when it
// winds clockwise on the page (y down), negative the other way.
func signedArea(p []pt) float64 {
	a := 0.0
	for i, q := range p {
		r := p[(i+1)%len(p)]
		a += q.x*r.y - r.x*q.y
	}
	return a / 2
}

func reversed(p []pt) []pt {
	r := make([]pt, len(p))
	for i, q := range p {
		r[len(p)-1-i] = q
	}
	return r
}

// circle is a polygon close enough to a circle of radius r around c that
// its edges are under a tenth of a pixel off the true curve.
func circle(c pt, r float64) []pt {
	// A chord of angle a sags r(1-cos(a/2)) ≈ r a²/8 from its arc.
	n := max(8, int(math.Ceil(2*math.Pi/math.Sqrt(8*0.1/r))))
	p := make([]pt, n)
	for i := range p {
		a := 2 * math.Pi * float64(i) / float64(n)
		p[i] = pt{c.x + r*math.Cos(a), c.y + r*math.Sin(a)}
	}
	return p
}

// triangle is an equilateral triangle pointing up, inscribed in a circle
// of radius r around c.
func triangle(c pt, r float64) []pt {
	h := r * math.Sqrt(3) / 2
	return []pt{{c.x, c.y - r}, {c.x + h, c.y + r/2}, {c.x - h, c.y + r/2}}
}

// stroke draws the polyline pts width pixels wide in col with round joins
// and flat ends. dash, if not empty, alternates the lengths of drawn and
// skipped stretches, carried on across the polyline's corners.
func (c *canvas) stroke(pts []pt, width float64, dash []float64, col color.Color) {
	pieces := [][]pt{pts}
	if len(dash) > 0 {
		pieces = dashed(pts, dash)
	}
	var polys [][]pt
	for _, p := range pieces {
		polys = append(polys, outline(p, width)...)
	}
	// One fill for the whole line, so that where its pieces overlap (at
	// the joins) the colour is not laid on twice.
	c.fill(col, polys...)
}

// outline is the polyline p widened to width, as polygons whose union is
// the stroke: a rectangle per segment and a disc at each inner corner, so
// that a bend has no notch.
func outline(p []pt, width float64) [][]pt {
	hw := width / 2
	var polys [][]pt
	for i := 1; i < len(p); i++ {
		a, b := p[i-1], p[i]
		dx, dy := b.x-a.x, b.y-a.y
		l := math.Hypot(dx, dy)
		if l == 0 {
			continue
		}
		nx, ny := -dy/l*hw, dx/l*hw // normal, half the width long
		polys = append(polys, []pt{{a.x + nx, a.y + ny}, {b.x + nx, b.y + ny}, {b.x - nx, b.y - ny}, {a.x - nx, a.y - ny}})
		if i < len(p)-1 {
			polys = append(polys, circle(b, hw))
		}
	}
	return polys
}

// dashed cuts the polyline p into the polylines that the dash pattern
// draws, starting with a drawn stretch at p[0]. The pattern has an even
// number of positive lengths: drawn, skipped, drawn, ... (any other
// pattern draws the line whole: a zero length would never advance).
func dashed(p []pt, dash []float64) [][]pt {
	if len(dash)%2 != 0 || slices.ContainsFunc(dash, func(d float64) bool { return !(d > 0) }) {
		return [][]pt{p}
	}
	var out [][]pt
	k, left, on := 0, dash[0], true // pattern index, length left in it, drawing
	cur := []pt{p[0]}
	for i := 1; i < len(p); i++ {
		a, b := p[i-1], p[i]
		l := math.Hypot(b.x-a.x, b.y-a.y)
		for done := 0.0; l-done > 0; {
			step := min(left, l-done)
			done += step
			left -= step
			q := pt{a.x + (b.x-a.x)*done/l, a.y + (b.y-a.y)*done/l}
			if on {
				cur = append(cur, q)
			}
			if left > 0 {
				continue // the segment ended inside this stretch
			}
			if on {
				out = append(out, cur)
			}
			k = (k + 1) % len(dash)
			left, on = dash[k], !on
			if on {
				cur = []pt{q}
			}
		}
	}
	if on && len(cur) > 1 {
		out = append(out, cur)
	}
	return out
}

// writePNG encodes the page, adding ctx to an error.
func (c *canvas) writePNG(w io.Writer, ctx string) error {
	if err := png.Encode(w, c.img); err != nil {
		return fmt.Errorf("%s: writing png: %w", ctx, err)
	}
	return nil
}
