// Package plots renders a training run's pictures as PNG: the loss and
// accuracy curves per epoch, a confusion matrix, and a grid of the
// misclassified images. Each function writes one PNG to an io.Writer and
// leaves files (and writing them atomically) to the caller.
package plots

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	stddraw "image/draw"
	"io"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// dpi is the resolution of every canvas: sizes are chosen in pixels, and
// gonum/plot's lengths are points, so px*72/dpi converts.
const dpi = 96

func px(n float64) vg.Length { return vg.Length(n) * vg.Inch / dpi }

// sans is the typeface of every text: plot's default is a serif, which
// reads worse in small tick labels and cell counts.
func sans(size vg.Length) font.Font {
	f := font.From(plot.DefaultFont, size)
	f.Variant = "Sans"
	return f
}

// newPlot is plot.New with every text in the sans typeface at the sizes
// plot.New chose.
func newPlot() *plot.Plot {
	p := plot.New()
	for _, sty := range []*text.Style{
		&p.Title.TextStyle,
		&p.X.Label.TextStyle, &p.Y.Label.TextStyle,
		&p.X.Tick.Label, &p.Y.Tick.Label,
		&p.Legend.TextStyle,
	} {
		sty.Font = sans(sty.Font.Size)
	}
	return p
}

// writePNG encodes c, adding ctx to an error.
func writePNG(w io.Writer, c *vgimg.Canvas, ctx string) error {
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(w); err != nil {
		return fmt.Errorf("%s: writing png: %w", ctx, err)
	}
	return nil
}

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
	if len(epochs) == 0 {
		return errors.New(ctx + ": no epochs")
	}
	loss := [2]plotter.XYs{make(plotter.XYs, len(epochs)), make(plotter.XYs, len(epochs))}
	acc := [2]plotter.XYs{make(plotter.XYs, len(epochs)), make(plotter.XYs, len(epochs))}
	lo, hi := epochs[0].Epoch, epochs[0].Epoch
	for i, e := range epochs {
		for _, v := range []float64{e.TrainLoss, e.ValLoss} {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("%s: epoch %d: loss %v is not finite", ctx, e.Epoch, v)
			}
		}
		for _, v := range []float64{e.TrainAccuracy, e.ValAccuracy} {
			if !(v >= 0 && v <= 1) {
				return fmt.Errorf("%s: epoch %d: accuracy %v is not a fraction in [0, 1]", ctx, e.Epoch, v)
			}
		}
		x := float64(e.Epoch)
		loss[0][i] = plotter.XY{X: x, Y: e.TrainLoss}
		loss[1][i] = plotter.XY{X: x, Y: e.ValLoss}
		acc[0][i] = plotter.XY{X: x, Y: 100 * e.TrainAccuracy}
		acc[1][i] = plotter.XY{X: x, Y: 100 * e.ValAccuracy}
		lo, hi = min(lo, e.Epoch), max(hi, e.Epoch)
	}

	left, err := curvePanel("Loss per epoch", lossLabel, loss, lo, hi)
	if err != nil {
		return fmt.Errorf("%s: %w", ctx, err)
	}
	left.Legend.Top = true // loss falls, so the upper right stays empty
	right, err := curvePanel("Accuracy per epoch", "accuracy (%)", acc, lo, hi)
	if err != nil {
		return fmt.Errorf("%s: %w", ctx, err)
	}
	// Accuracy rises, so the lower right stays empty: the legend's default.

	c := vgimg.NewWith(vgimg.UseWH(px(1000), px(450)), vgimg.UseDPI(dpi))
	dc := draw.New(c)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: px(40), PadTop: px(10), PadBottom: px(10), PadLeft: px(10), PadRight: px(20)}
	// Align gives both panels the same data area, so their epochs line up.
	panels := plot.Align([][]*plot.Plot{{left, right}}, tiles, dc)
	left.Draw(panels[0][0])
	right.Draw(panels[0][1])
	return writePNG(w, c, ctx)
}

// curvePanel is one panel of TrainingCurves: series[0] is training,
// series[1] validation.
func curvePanel(title, ylabel string, series [2]plotter.XYs, lo, hi int) (*plot.Plot, error) {
	p := newPlot()
	p.Title.Text = title
	p.X.Label.Text = "epoch"
	p.Y.Label.Text = ylabel
	p.X.Tick.Marker = epochTicks{}
	p.Add(plotter.NewGrid())
	styles := [2]struct {
		name  string
		color color.Color
		shape draw.GlyphDrawer
		dash  []vg.Length
	}{
		{"training", color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, draw.CircleGlyph{}, nil},
		// Validation is dashed as well as coloured so that the two stay
		// apart in grey print and for colour-blind readers.
		{"validation", color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}, draw.TriangleGlyph{}, []vg.Length{px(6), px(3)}},
	}
	for i, s := range styles {
		l, pts, err := plotter.NewLinePoints(series[i])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", title, err)
		}
		l.Color, l.Width, l.Dashes = s.color, px(2), s.dash
		pts.Color, pts.Shape, pts.Radius = s.color, s.shape, px(4)
		p.Add(l, pts)
		p.Legend.Add(s.name, l, pts)
	}
	// A single epoch has no extent, and plot would widen it by ±1, which
	// labels an epoch 0 that never ran; ±0.5 keeps its one label.
	if lo == hi {
		p.X.Min, p.X.Max = float64(lo)-0.5, float64(hi)+0.5
	}
	return p, nil
}

// epochTicks labels whole epochs only: plot's default ticker puts labels
// such as 1.5 on a short run.
type epochTicks struct{}

// Ticks implements plot.Ticker.
func (epochTicks) Ticks(lo, hi float64) []plot.Tick {
	// A step from 1, 2, 5, 10, 20, ... that gives at most about ten labels.
	step := 1.0
	for mult := 0; (hi-lo)/step > 10; mult++ {
		step = []float64{2, 5, 10}[mult%3] * math.Pow(10, float64(mult/3))
	}
	var ticks []plot.Tick
	for v := math.Ceil(lo/step) * step; v <= hi; v += step {
		ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', 0, 64)})
	}
	return ticks
}

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

	p := newPlot()
	p.Title.Text = title
	p.X.Label.Text = "predicted"
	p.Y.Label.Text = "true"
	// The cells must meet the axes exactly, or the tick labels drift off
	// their cells' centres.
	p.X.Padding, p.Y.Padding = 0, 0
	xt, yt := make(plot.ConstantTicks, n), make(plot.ConstantTicks, n)
	for i := range n {
		xt[i] = plot.Tick{Value: float64(i), Label: strconv.Itoa(i)}
		yt[i] = plot.Tick{Value: float64(n - 1 - i), Label: strconv.Itoa(i)}
	}
	p.X.Tick.Marker, p.Y.Tick.Marker = xt, yt
	p.Add(newCells(m))

	c := vgimg.NewWith(vgimg.UseWH(px(700), px(700)), vgimg.UseDPI(dpi))
	dc := draw.Crop(draw.New(c), px(10), -px(20), px(10), -px(10))
	// Square cells: take the wider side of the data area off the whole
	// canvas, half on each side, since axes and title keep their size.
	da := p.DataCanvas(dc)
	if dw, dh := da.Max.X-da.Min.X, da.Max.Y-da.Min.Y; dw > dh {
		dc = draw.Crop(dc, (dw-dh)/2, -(dw-dh)/2, 0, 0)
	} else if dh > dw {
		dc = draw.Crop(dc, 0, 0, (dh-dw)/2, -(dh-dw)/2)
	}
	p.Draw(dc)
	return writePNG(w, c, ctx)
}

// cells is a plot.Plotter that draws a confusion matrix's cells and counts.
// It is not a plotter.HeatMap because the diagonal and the rest have
// different colour scales, and because each count's colour (black or
// white) depends on its cell's.
type cells struct {
	m               [][]int
	maxDiag, maxOff int
}

func newCells(m [][]int) *cells {
	c := &cells{m: m}
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
func (c *cells) colour(i, j int) color.RGBA {
	v := c.m[i][j]
	if v == 0 {
		return color.RGBA{R: 0xff, G: 0xff, B: 0xff, A: 0xff}
	}
	if i == j {
		// From a light blue, so that a small but non-zero diagonal is not
		// mistaken for an empty one.
		t := float64(v) / float64(c.maxDiag)
		return mix(color.RGBA{R: 0xc6, G: 0xdb, B: 0xef, A: 0xff}, color.RGBA{R: 0x08, G: 0x30, B: 0x6b, A: 0xff}, t)
	}
	t := math.Log1p(float64(v)) / math.Log1p(float64(c.maxOff))
	return mix(color.RGBA{R: 0xff, G: 0xff, B: 0xff, A: 0xff}, color.RGBA{R: 0xb2, G: 0x18, B: 0x2b, A: 0xff}, t)
}

// mix is a + t(b - a) per channel.
func mix(a, b color.RGBA, t float64) color.RGBA {
	f := func(x, y uint8) uint8 { return uint8(math.Round(float64(x) + t*(float64(y)-float64(x)))) }
	return color.RGBA{R: f(a.R, b.R), G: f(a.G, b.G), B: f(a.B, b.B), A: 0xff}
}

// Plot implements plot.Plotter.
func (c *cells) Plot(dc draw.Canvas, p *plot.Plot) {
	n := len(c.m)
	tx, ty := p.Transforms(&dc)
	cellW := tx(0.5) - tx(-0.5)
	cellH := ty(0.5) - ty(-0.5)

	// One font size for every count, from the widest: counts of different
	// sizes in one matrix read as noise. 12 pt at most; none where even
	// 5 pt would not fit, as on a matrix of hundreds of classes.
	widest := "0"
	for _, row := range c.m {
		for _, v := range row {
			if s := strconv.Itoa(v); len(s) > len(widest) {
				widest = s
			}
		}
	}
	sty := draw.TextStyle{
		Font:    sans(12),
		XAlign:  draw.XCenter,
		YAlign:  draw.YCenter,
		Handler: p.TextHandler,
	}
	if fit := min(0.8*cellW/sty.Width(widest), 0.5*cellH/sty.Height(widest)); fit < 1 {
		sty.Font = sans(12 * vg.Length(fit))
	}
	showCounts := sty.Font.Size >= 5

	for i := range n {
		y := float64(n - 1 - i)
		for j := range n {
			x := float64(j)
			fill := c.colour(i, j)
			dc.FillPolygon(fill, []vg.Point{
				{X: tx(x - 0.5), Y: ty(y - 0.5)}, {X: tx(x + 0.5), Y: ty(y - 0.5)},
				{X: tx(x + 0.5), Y: ty(y + 0.5)}, {X: tx(x - 0.5), Y: ty(y + 0.5)},
			})
			if !showCounts {
				continue
			}
			// Rec. 601 luma: white counts on dark cells, black on light.
			sty.Color = color.Black
			if 0.299*float64(fill.R)+0.587*float64(fill.G)+0.114*float64(fill.B) < 140 {
				sty.Color = color.White
			}
			dc.FillText(sty, vg.Point{X: tx(x), Y: ty(y)}, strconv.Itoa(c.m[i][j]))
		}
	}
	// Thin grid lines keep neighbouring white (zero) cells countable.
	grid := draw.LineStyle{Color: color.Gray{Y: 0xd0}, Width: px(1)}
	for k := 0; k <= n; k++ {
		v := float64(k) - 0.5
		dc.StrokeLine2(grid, tx(v), ty(-0.5), tx(v), ty(float64(n)-0.5))
		dc.StrokeLine2(grid, tx(-0.5), ty(v), tx(float64(n)-0.5), ty(v))
	}
}

// DataRange implements plot.DataRanger: cell k spans k-0.5 to k+0.5.
func (c *cells) DataRange() (xmin, xmax, ymin, ymax float64) {
	n := float64(len(c.m))
	return -0.5, n - 0.5, -0.5, n - 0.5
}

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

	// Captions and heading are laid out in points on a 72 dpi canvas,
	// where a point is a pixel, so that text and the pixel grid of the
	// digits share one set of coordinates (apart from y pointing up).
	const cdpi = 72
	capSty := draw.TextStyle{Color: color.Black, Font: sans(11), XAlign: draw.XCenter, YAlign: draw.YTop, Handler: plot.DefaultTextHandler}
	headSty := draw.TextStyle{Color: color.Black, Font: sans(13), XAlign: draw.XLeft, YAlign: draw.YTop, Handler: plot.DefaultTextHandler}
	captions := make([]string, len(shown))
	capW := 0.0
	for i, d := range shown {
		captions[i] = fmt.Sprintf("true %d, pred %d", d.True, d.Pred)
		capW = max(capW, float64(capSty.Width(captions[i])))
	}
	heading := fmt.Sprintf("Misclassified images: %d of %d", len(shown), len(imgs))
	if len(shown) < len(imgs) {
		heading = fmt.Sprintf("Misclassified images: the first %d of %d", len(shown), len(imgs))
	}

	const margin, gap = 12, 14
	tileW, tileH := tileCols*scale, tileRows*scale
	cellW := max(tileW, int(math.Ceil(capW))) + gap
	capH := int(math.Ceil(float64(capSty.Height("0")))) + 4
	cellH := tileH + capH + gap
	headH := int(math.Ceil(float64(headSty.Height(heading)))) + 14
	width := max(2*margin+cols*cellW-gap, 2*margin+int(math.Ceil(float64(headSty.Width(heading)))))
	height := 2*margin + headH + rows*cellH - gap

	c := vgimg.NewWith(vgimg.UseWH(vg.Length(width), vg.Length(height)), vgimg.UseDPI(cdpi))
	dst := c.Image()
	dc := draw.New(c)
	dc.FillText(headSty, vg.Point{X: margin, Y: vg.Length(height - margin)}, heading)
	for k, d := range shown {
		x0 := margin + (k%cols)*cellW + (cellW-gap-tileW)/2
		y0 := margin + headH + (k/cols)*cellH
		// A smaller image in a mixed set sits centred in its tile.
		tile := image.Rect(x0, y0, x0+tileW, y0+tileH)
		stddraw.Draw(dst, tile, image.Black, image.Point{}, stddraw.Src)
		g := image.NewGray(image.Rect(0, 0, d.Cols*scale, d.Rows*scale))
		for y := range d.Rows * scale {
			for x := range d.Cols * scale {
				g.Pix[y*g.Stride+x] = d.Pixels[(y/scale)*d.Cols+x/scale]
			}
		}
		off := image.Pt(x0+(tileW-g.Rect.Dx())/2, y0+(tileH-g.Rect.Dy())/2)
		stddraw.Draw(dst, g.Rect.Add(off), g, image.Point{}, stddraw.Src)
		cx := margin + (k%cols)*cellW + (cellW-gap)/2
		dc.FillText(capSty, vg.Point{X: vg.Length(cx), Y: vg.Length(height - (y0 + tileH + 3))}, captions[k])
	}
	return writePNG(w, c, ctx)
}
