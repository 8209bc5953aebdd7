package plots

import (
	"fmt"
	"image"
	"image/color"
	"math"
)

// Colours shared by the pictures.
var (
	white     = color.RGBA{R: 0xff, G: 0xff, B: 0xff, A: 0xff}
	black     = color.RGBA{A: 0xff}
	gridGrey  = color.RGBA{R: 0xdd, G: 0xdd, B: 0xdd, A: 0xff}
	frameGrey = color.RGBA{R: 0xbb, G: 0xbb, B: 0xbb, A: 0xff} // the legend's border
	// Matplotlib's default blue and red, familiar from its charts.
	tab10Blue = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	tab10Red  = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
)

// Lengths, in pixels, of a chart's furniture.
const (
	tickLen  = 5 // tick marks, outside the frame
	tickPad  = 4 // between a tick mark and its label
	labelPad = 6 // between the tick labels and the axis's name
	titlePad = 8 // between the title and the frame
)

// theme is the faces of a chart's texts, and the typeface they come from
// for any other size.
type theme struct {
	typeface                   *typeface
	title, label, tick, legend *face
}

// newTheme has the sizes gonum/plot used: 12 pt titles, axis names and
// legends and 10 pt tick labels, drawn at dpi.
func newTheme(dpi float64) (*theme, error) {
	tf, err := newTypeface()
	if err != nil {
		return nil, err
	}
	th := theme{typeface: tf}
	for _, f := range []struct {
		dst **face
		pt  float64
	}{{&th.title, 12}, {&th.label, 12}, {&th.tick, 10}, {&th.legend, 12}} {
		if *f.dst, err = tf.face(f.pt * dpi / 72); err != nil {
			return nil, err
		}
	}
	return &th, nil
}

// axis is a range of data values and its labelled ticks.
type axis struct {
	min, max float64
	ticks    []tick
}

// valueAxis spans vals with 5% to spare at either end, so that no point
// sits on the frame, and labels it with niceTicks.
func valueAxis(vals ...[]float64) axis {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, vs := range vals {
		for _, v := range vs {
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	pad := 0.05 * (hi - lo)
	if pad == 0 {
		// A flat series, such as one epoch's: some room about its value.
		pad = 0.1 * math.Abs(lo)
		if pad == 0 {
			pad = 1
		}
	}
	lo, hi = lo-pad, hi+pad
	return axis{min: lo, max: hi, ticks: niceTicks(lo, hi)}
}

// epochAxis spans the epochs lo to hi with 5% to spare at either end, and
// a single epoch with half an epoch on either side, so that its one label
// is not joined by epochs that never ran.
func epochAxis(lo, hi int) axis {
	a := axis{min: float64(lo) - 0.5, max: float64(hi) + 0.5}
	if hi > lo {
		pad := 0.05 * float64(hi-lo)
		a.min, a.max = float64(lo)-pad, float64(hi)+pad
	}
	a.ticks = epochTicks(a.min, a.max)
	return a
}

// widest is the width of the widest tick label of a.
func (a axis) widest(f *face) float64 {
	w := 0.0
	for _, t := range a.ticks {
		w = max(w, f.width(t.label))
	}
	return w
}

// panel is one chart: its data area on the page, framed, and the ranges
// mapped onto it.
type panel struct {
	area image.Rectangle
	x, y axis
}

// at is where the data point (x, y) lies on the page.
func (p *panel) at(x, y float64) pt {
	return pt{
		float64(p.area.Min.X) + (x-p.x.min)/(p.x.max-p.x.min)*float64(p.area.Dx()),
		float64(p.area.Max.Y) - (y-p.y.min)/(p.y.max-p.y.min)*float64(p.area.Dy()),
	}
}

// The room a panel's texts and ticks take outside its data area.
func leftGutter(th *theme, y axis) int {
	return int(math.Ceil(th.label.height() + labelPad + y.widest(th.tick) + tickPad + tickLen + 1))
}

func topGutter(th *theme) int { return int(math.Ceil(th.title.height() + titlePad + 1)) }

func bottomGutter(th *theme) int {
	return int(math.Ceil(1 + tickLen + tickPad + th.tick.height() + labelPad + th.label.height()))
}

// draw draws the panel's grid, frame, ticks, tick labels, axis names and
// title: everything but the data and the legend.
func (p *panel) draw(c *canvas, th *theme, title, xlabel, ylabel string) {
	p.drawTicks(c, th.tick)
	frame(c, p.area.Inset(-1), black)
	a := p.area
	mid := float64(a.Min.X+a.Max.X) / 2
	c.text(th.title, title, mid, float64(a.Min.Y-1-titlePad), center, bottom, black)
	c.text(th.label, xlabel, mid, float64(a.Max.Y+1+tickLen+tickPad)+th.tick.height()+labelPad, center, top, black)
	ylx := float64(a.Min.X-1-tickLen-tickPad) - p.y.widest(th.tick) - labelPad - th.label.height()
	c.textUp(th.label, ylabel, ylx, float64(a.Min.Y+a.Max.Y)/2, black)
}

// drawTicks draws a grid line, a tick mark outside the frame and a label
// for each tick of either axis.
func (p *panel) drawTicks(c *canvas, f *face) {
	a := p.area
	// A grid line and its tick share the pixel column (row) that holds the
	// tick's value, so that they line up to the pixel, and stay inside the
	// frame.
	col := func(v float64) int { return min(a.Max.X-1, max(a.Min.X, int(math.Floor(p.at(v, 0).x)))) }
	row := func(v float64) int { return min(a.Max.Y-1, max(a.Min.Y, int(math.Floor(p.at(0, v).y)))) }
	for _, t := range p.x.ticks {
		x := col(t.v)
		c.fillRect(image.Rect(x, a.Min.Y, x+1, a.Max.Y), gridGrey)
		c.fillRect(image.Rect(x, a.Max.Y+1, x+1, a.Max.Y+1+tickLen), black)
		c.text(f, t.label, float64(x)+0.5, float64(a.Max.Y+1+tickLen+tickPad), center, top, black)
	}
	for _, t := range p.y.ticks {
		y := row(t.v)
		c.fillRect(image.Rect(a.Min.X, y, a.Max.X, y+1), gridGrey)
		c.fillRect(image.Rect(a.Min.X-1-tickLen, y, a.Min.X-1, y+1), black)
		c.text(f, t.label, float64(a.Min.X-1-tickLen-tickPad), float64(y)+0.5, right, middle, black)
	}
}

// frame draws the 1-pixel outline of r's outermost pixels.
func frame(c *canvas, r image.Rectangle, col color.Color) {
	c.fillRect(image.Rect(r.Min.X, r.Min.Y, r.Max.X, r.Min.Y+1), col)
	c.fillRect(image.Rect(r.Min.X, r.Max.Y-1, r.Max.X, r.Max.Y), col)
	c.fillRect(image.Rect(r.Min.X, r.Min.Y, r.Min.X+1, r.Max.Y), col)
	c.fillRect(image.Rect(r.Max.X-1, r.Min.Y, r.Max.X, r.Max.Y), col)
}

// series is a line with a marker at each point, as a legend shows it too.
type series struct {
	name   string
	col    color.RGBA
	dash   []float64 // none for a solid line
	marker func(c pt, r float64) []pt
	xs, ys []float64
}

const (
	lineWidth    = 2
	markerRadius = 4
)

// plot draws s in the panel: first the line, then the markers over it.
func (p *panel) plot(c *canvas, s series) {
	pts := make([]pt, len(s.xs))
	for i := range s.xs {
		pts[i] = p.at(s.xs[i], s.ys[i])
	}
	if len(pts) > 1 {
		c.stroke(pts, lineWidth, s.dash, s.col)
	}
	for _, q := range pts {
		c.fill(s.col, s.marker(q, markerRadius))
	}
}

// triangleMarker is a triangle a little larger than the circle of the same
// radius, so that the two look the same size.
func triangleMarker(c pt, r float64) []pt { return triangle(c, 1.3*r) }

// corner is where in its panel a legend goes.
type corner int

const (
	topRight corner = iota
	bottomRight
)

// legend draws a boxed key to ss in the given corner of the data area: a
// short stretch of each line with its marker, then its name.
func (p *panel) legend(c *canvas, f *face, at corner, ss ...series) {
	const inset, pad, sample, gap, rowGap = 8, 7, 32, 8, 3
	names := 0.0
	for _, s := range ss {
		names = max(names, f.width(s.name))
	}
	rowH := math.Ceil(f.height())
	w := int(math.Ceil(2*pad + sample + gap + names))
	h := int(2*pad + float64(len(ss))*rowH + float64(len(ss)-1)*rowGap)
	box := image.Rect(p.area.Max.X-inset-w, p.area.Min.Y+inset, p.area.Max.X-inset, p.area.Min.Y+inset+h)
	if at == bottomRight {
		box = box.Add(image.Pt(0, p.area.Dy()-2*inset-h))
	}
	c.fillRect(box, white)
	frame(c, box, frameGrey)
	for i, s := range ss {
		x := float64(box.Min.X + pad)
		y := float64(box.Min.Y+pad) + float64(i)*(rowH+rowGap) + rowH/2
		c.stroke([]pt{{x, y}, {x + sample, y}}, lineWidth, s.dash, s.col)
		c.fill(s.col, s.marker(pt{x + sample/2, y}, markerRadius))
		c.text(f, s.name, x+sample+gap, y, left, middle, black)
	}
}

// checkArea guards the layouts: a data area squeezed to nothing by very
// long labels would make a picture of nothing.
func checkArea(ctx string, r image.Rectangle) error {
	if r.Dx() < 10 || r.Dy() < 10 {
		return fmt.Errorf("%s: labels leave a data area of only %dx%d pixels", ctx, r.Dx(), r.Dy())
	}
	return nil
}
