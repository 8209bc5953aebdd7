package plots

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"io"
	"math"
	"strconv"
)

// ConfusionMatrix writes a 700x700 PNG of the n x n matrix m, where
// m[t][p] counts the images of true class t predicted as p: rows are the
// true class with 0 at the top as in a printed matrix, columns the
// predicted class, and each cell shows its count. title heads the picture
// and may be empty. It fails unless m is square with n >= 1 and every count
// is non-negative.
//
// Diagonal (correct) cells are blue on a linear scale of the largest
// diagonal count; off-diagonal (error) cells are red on a logarithmic scale
// of the largest off-diagonal count. A trained MNIST model has ~1000 on the
// diagonal and 0-20 off it, so one shared scale, even a logarithmic one,
// leaves the errors a near-white wash; with their own scale the worst
// confusion is full red and a single error is still visibly tinted, while
// a zero stays white.
func ConfusionMatrix(w io.Writer, m [][]int, title string) error {
	const ctx = "confusion matrix"
	n := len(m)
	if n == 0 {
		return errors.New(ctx + ": empty matrix")
	}
	for i, row := range m {
		if len(row) != n {
			return fmt.Errorf("%s: row %d has %d columns, want %d (the matrix must be square)", ctx, i, len(row), n)
		}
		for j, v := range row {
			if v < 0 {
				return fmt.Errorf("%s: m[%d][%d] = %d is negative", ctx, i, j, v)
			}
		}
	}

	th, err := newTheme(96)
	if err != nil {
		return fmt.Errorf("%s: %w", ctx, err)
	}
	const size = 700
	p := matrixPanel(th, n, title, size)
	if err := checkArea(ctx, p.area); err != nil {
		return err
	}
	c := newCanvas(size, size, white)
	p.draw(c, th, title, "predicted", "true")
	// The cells cover the panel's grid lines, which are at their centres.
	if err := drawCells(c, p.area, th.typeface, newCellColours(m), m); err != nil {
		return fmt.Errorf("%s: %w", ctx, err)
	}
	return c.writePNG(w, ctx)
}

// matrixPanel lays out an n x n matrix on a size x size page: a square
// data area, centred in the room its texts leave, where class k spans k-0.5
// to k+0.5 on either axis and row 0 is at the top.
func matrixPanel(th *theme, n int, title string, size int) panel {
	const padLeft, padRight, padTop, padBottom = 10, 20, 10, 10
	p := panel{
		x: axis{min: -0.5, max: float64(n) - 0.5},
		y: axis{min: -0.5, max: float64(n) - 0.5},
	}
	for k := range n {
		p.x.ticks = append(p.x.ticks, tick{v: float64(k), label: strconv.Itoa(k)})
		// The y axis points up, so class k's row is at n-1-k.
		p.y.ticks = append(p.y.ticks, tick{v: float64(n - 1 - k), label: strconv.Itoa(k)})
	}
	top := padTop + 1 // the frame
	if title != "" {
		top = padTop + topGutter(th)
	}
	left := padLeft + leftGutter(th, p.y)
	w := size - left - padRight - 1
	h := size - top - padBottom - bottomGutter(th)
	side := min(w, h)
	x0, y0 := left+(w-side)/2, top+(h-side)/2
	p.area = image.Rect(x0, y0, x0+side, y0+side)

	// Hundreds of classes would run their labels into each other: keep
	// every step-th, step being the smallest of 1, 2, 5, 10, ... that
	// leaves room between them.
	room := max(p.x.widest(th.tick), th.tick.height()) + 4
	step := 1
	for k := 0; float64(step)*float64(side)/float64(n) < room; k++ {
		step = []int{2, 5, 10}[k%3] * int(math.Pow10(k/3))
	}
	p.x.ticks, p.y.ticks = everyNth(p.x.ticks, step), everyNth(p.y.ticks, step)
	return p
}

// everyNth is ts[0], ts[n], ts[2n], ...
func everyNth(ts []tick, n int) []tick {
	var out []tick
	for i := 0; i < len(ts); i += n {
		out = append(out, ts[i])
	}
	return out
}

// cellEdges is where the n cells along one side of area start, at whole
// pixels, with edges[n] the side's end: cells may differ by a pixel, but
// none overlaps or leaves a gap.
func cellEdges(from, length, n int) []int {
	e := make([]int, n+1)
	for k := range e {
		e[k] = from + int(math.Round(float64(k)*float64(length)/float64(n)))
	}
	return e
}

// drawCells fills the cells of m in area, writes their counts and draws a
// grid between them.
func drawCells(c *canvas, area image.Rectangle, tf *typeface, cc cellColours, m [][]int) error {
	n := len(m)
	xs, ys := cellEdges(area.Min.X, area.Dx(), n), cellEdges(area.Min.Y, area.Dy(), n)
	f, err := countFace(tf, m, float64(area.Dx())/float64(n))
	if err != nil {
		return err
	}
	for i := range n {
		for j := range n {
			fill := cc.colour(i, j)
			c.fillRect(image.Rect(xs[j], ys[i], xs[j+1], ys[i+1]), fill)
			if f == nil {
				continue
			}
			// Rec. 601 luma: white counts on dark cells, black on light.
			ink := black
			if 0.299*float64(fill.R)+0.587*float64(fill.G)+0.114*float64(fill.B) < 140 {
				ink = white
			}
			c.text(f, strconv.Itoa(m[i][j]), float64(xs[j]+xs[j+1])/2, float64(ys[i]+ys[i+1])/2, center, middle, ink)
		}
	}
	// Thin grid lines keep neighbouring white (zero) cells countable; the
	// frame is the outer one. Each takes the first pixel of the cell after
	// it.
	for k := 1; k < n; k++ {
		c.fillRect(image.Rect(xs[k], area.Min.Y, xs[k]+1, area.Max.Y), cellGrid)
		c.fillRect(image.Rect(area.Min.X, ys[k], area.Max.X, ys[k]+1), cellGrid)
	}
	return nil
}

var cellGrid = color.RGBA{R: 0xd0, G: 0xd0, B: 0xd0, A: 0xff}

// countFace is the one face of every count, sized for the widest: counts
// of different sizes in one matrix read as noise. 12 pt (16 px) at most,
// and nil, for no counts, where even 5 pt would not fit cells cell pixels
// wide, as on a matrix of hundreds of classes.
func countFace(tf *typeface, m [][]int, cell float64) (*face, error) {
	const most, least = 16.0, 5 * 96 / 72.0
	widest := "0"
	for _, row := range m {
		for _, v := range row {
			if s := strconv.Itoa(v); len(s) > len(widest) {
				widest = s
			}
		}
	}
	f, err := tf.face(most)
	if err != nil {
		return nil, err
	}
	fit := min(1, 0.8*cell/f.width(widest), 0.5*cell/f.height())
	if most*fit < least {
		return nil, nil
	}
	return tf.face(most * fit)
}

// cellColours holds the two scales of ConfusionMatrix's cells.
type cellColours struct {
	m               [][]int
	maxDiag, maxOff int
}

func newCellColours(m [][]int) cellColours {
	c := cellColours{m: m}
	for i, row := range m {
		for j, v := range row {
			if i == j {
				c.maxDiag = max(c.maxDiag, v)
			} else {
				c.maxOff = max(c.maxOff, v)
			}
		}
	}
	return c
}

// colour is cell (i, j)'s fill; see ConfusionMatrix for the scales.
func (c cellColours) colour(i, j int) color.RGBA {
	v := c.m[i][j]
	if v == 0 {
		return white
	}
	if i == j {
		// From a light blue, so that a small but non-zero diagonal is not
		// mistaken for an empty one.
		t := float64(v) / float64(c.maxDiag)
		return mix(color.RGBA{R: 0xc6, G: 0xdb, B: 0xef, A: 0xff}, color.RGBA{R: 0x08, G: 0x30, B: 0x6b, A: 0xff}, t)
	}
	t := math.Log1p(float64(v)) / math.Log1p(float64(c.maxOff))
	return mix(white, color.RGBA{R: 0xb2, G: 0x18, B: 0x2b, A: 0xff}, t)
}

// mix is a + t(b - a) per channel.
func mix(a, b color.RGBA, t float64) color.RGBA {
	f := func(x, y uint8) uint8 { return uint8(math.Round(float64(x) + t*(float64(y)-float64(x)))) }
	return color.RGBA{R: f(a.R, b.R), G: f(a.G, b.G), B: f(a.B, b.B), A: 0xff}
}
