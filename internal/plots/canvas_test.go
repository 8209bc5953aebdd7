package plots

import (
	"image/color"
	"testing"
)

var ink = color.RGBA{R: 0x20, G: 0x40, B: 0xc0, A: 0xff}

// near reports whether the pixel (x, y) of c is within tol of want in
// every channel.
func near(c *canvas, x, y int, want color.RGBA, tol int) bool {
	got := c.img.RGBAAt(x, y)
	d := func(a, b uint8) bool { return int(a)-int(b) <= tol && int(b)-int(a) <= tol }
	return d(got.R, want.R) && d(got.G, want.G) && d(got.B, want.B)
}

func TestStrokeHorizontal(t *testing.T) {
	c := newCanvas(60, 40, white)
	c.stroke([]pt{{10, 20}, {50, 20}}, 2, nil, ink)
	for y := range 40 {
		for x := range 60 {
			// Rows 19 and 20 make up y 19 to 21; the line ends flat at
			// x 10 and 50.
			inside := (y == 19 || y == 20) && x >= 10 && x < 50
			if inside && !near(c, x, y, ink, 2) {
				t.Errorf("(%d, %d) = %v, want the line's colour", x, y, c.img.RGBAAt(x, y))
			}
			if !inside && !near(c, x, y, white, 0) {
				t.Errorf("(%d, %d) = %v, want white off the line", x, y, c.img.RGBAAt(x, y))
			}
		}
	}
}

func TestStrokeDashed(t *testing.T) {
	c := newCanvas(40, 20, white)
	// 6 on, 3 off from x = 0: on 0-6, 9-15, 18-24, 27-33, 36-40.
	c.stroke([]pt{{0, 10}, {40, 10}}, 2, []float64{6, 3}, ink)
	for x := range 40 {
		on := x%9 < 6
		if on && !near(c, x, 9, ink, 2) {
			t.Errorf("x %d: %v, want a dash", x, c.img.RGBAAt(x, 9))
		}
		if !on && !near(c, x, 9, white, 0) {
			t.Errorf("x %d: %v, want a gap", x, c.img.RGBAAt(x, 9))
		}
	}
	// The pattern runs on round a corner rather than starting again.
	pieces := dashed([]pt{{0, 0}, {4, 0}, {4, 10}}, []float64{6, 3})
	if len(pieces) != 2 || len(pieces[0]) != 3 || pieces[0][2] != (pt{4, 2}) || pieces[1][0] != (pt{4, 5}) {
		t.Errorf("dashes round a corner: %v, want (0,0)-(4,0)-(4,2) and from (4,5)", pieces)
	}
	// A pattern with a zero or odd count of lengths draws the line whole
	// rather than looping for ever.
	line := []pt{{0, 0}, {10, 0}}
	for _, dash := range [][]float64{{6, 0}, {0, 3}, {6}} {
		if got := dashed(line, dash); len(got) != 1 || len(got[0]) != 2 {
			t.Errorf("pattern %v: %v, want the line whole", dash, got)
		}
	}
}

func TestStrokeJoin(t *testing.T) {
	c := newCanvas(60, 40, white)
	// A sharp bend at the centre of pixel (30, 10). Without a join the two
	// segments' rectangles leave a notch on the outside of the bend, right
	// above the corner.
	c.stroke([]pt{{10.5, 30.5}, {30.5, 10.5}, {50.5, 30.5}}, 4, nil, ink)
	for _, p := range [][2]int{{30, 10}, {30, 9}} {
		if !near(c, p[0], p[1], ink, 8) {
			t.Errorf("%v = %v: notch at the join", p, c.img.RGBAAt(p[0], p[1]))
		}
	}
	if !near(c, 30, 6, white, 0) {
		t.Errorf("(30, 6) = %v, want white beyond the round join", c.img.RGBAAt(30, 6))
	}
}

func TestFillOverlapAndCircle(t *testing.T) {
	c := newCanvas(40, 40, white)
	// The same square wound both ways: the rasterizer would cancel them
	// out if fill did not wind them alike.
	sq := []pt{{2, 2}, {10, 2}, {10, 10}, {2, 10}}
	c.fill(ink, sq, reversed(sq))
	if !near(c, 5, 5, ink, 0) {
		t.Errorf("overlapping polygons: (5, 5) = %v, want the fill", c.img.RGBAAt(5, 5))
	}
	c.fill(ink, circle(pt{25.5, 25.5}, 4))
	for _, p := range []struct {
		x, y int
		want color.RGBA
	}{{25, 25, ink}, {22, 25, ink}, {25, 28, ink}, {31, 25, white}, {25, 19, white}, {29, 29, white}} {
		if !near(c, p.x, p.y, p.want, 2) {
			t.Errorf("circle r 4 at (25.5, 25.5): (%d, %d) = %v, want %v", p.x, p.y, c.img.RGBAAt(p.x, p.y), p.want)
		}
	}
}

func TestFillClipsToPage(t *testing.T) {
	c := newCanvas(10, 10, white)
	// Half off the page: must neither panic nor miss the visible half.
	c.fill(ink, circle(pt{0, 5}, 4), circle(pt{5, 10}, 3))
	if !near(c, 0, 5, ink, 2) || !near(c, 6, 5, white, 0) || !near(c, 5, 9, ink, 2) {
		t.Errorf("circles at the edges: %v, %v, %v", c.img.RGBAAt(0, 5), c.img.RGBAAt(6, 5), c.img.RGBAAt(5, 9))
	}
	c.fill(ink, circle(pt{-20, -20}, 4)) // wholly off the page: nothing to do
}
