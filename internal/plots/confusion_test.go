package plots

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
	"testing"
)

// testTheme is the charts' theme at 96 dpi.
func testTheme(t *testing.T) *theme {
	t.Helper()
	th, err := newTheme(96)
	if err != nil {
		t.Fatal(err)
	}
	return th
}

func TestConfusionMatrixCells(t *testing.T) {
	const title = "Test set confusion matrix"
	m := mnistLike()
	var b bytes.Buffer
	if err := ConfusionMatrix(&b, m, title); err != nil {
		t.Fatal(err)
	}
	pic, err := png.Decode(&b)
	if err != nil {
		t.Fatal(err)
	}
	img := pic.(*image.RGBA)

	p := matrixPanel(testTheme(t), len(m), title, 700)
	a := p.area
	if a.Dx() != a.Dy() || a.Dx() < 500 || a.Min.X < 30 || a.Min.Y < 20 || a.Max.X >= 700 || a.Max.Y > 700-40 {
		t.Fatalf("cells in %v on a %v page: want a large square with room for labels", a, img.Rect)
	}
	if got := img.RGBAAt(a.Min.X-1, a.Min.Y-1); got != black {
		t.Errorf("frame corner %v = %v, want black", a.Min.Sub(image.Pt(1, 1)), got)
	}
	xs, ys := cellEdges(a.Min.X, a.Dx(), len(m)), cellEdges(a.Min.Y, a.Dy(), len(m))
	// cell is the colour just inside cell (i, j)'s top left corner, clear
	// of its grid line and its count.
	cell := func(i, j int) color.RGBA { return img.RGBAAt(xs[j]+3, ys[i]+3) }
	for _, c := range []struct {
		i, j int
		want color.RGBA
		why  string
	}{
		{1, 1, color.RGBA{R: 0x08, G: 0x30, B: 0x6b, A: 0xff}, "the largest diagonal count, 1124, darkest blue"},
		{4, 9, color.RGBA{R: 0xb2, G: 0x18, B: 0x2b, A: 0xff}, "the largest error, 9, full red"},
		{7, 2, color.RGBA{R: 0xb2, G: 0x18, B: 0x2b, A: 0xff}, "the other 9, full red"},
		{0, 1, white, "a zero, white"},
		{9, 2, white, "a zero in the bottom row, white"},
	} {
		if got := cell(c.i, c.j); got != c.want {
			t.Errorf("cell (%d, %d) = %v, want %v: %s", c.i, c.j, got, c.want, c.why)
		}
	}
	cc := newCellColours(m)
	for i := range m {
		for j := range m {
			if got, want := cell(i, j), cc.colour(i, j); got != want {
				t.Errorf("cell (%d, %d) = %v, want %v", i, j, got, want)
			}
		}
	}
	// The counts are centred: the ink in cell (1, 1), the pixels neither
	// its fill nor the grid, has its centre at the cell's.
	var ink image.Rectangle
	for y := ys[1] + 1; y < ys[2]; y++ {
		for x := xs[1] + 1; x < xs[2]; x++ {
			if img.RGBAAt(x, y) != cell(1, 1) {
				ink = ink.Union(image.Rect(x, y, x+1, y+1))
			}
		}
	}
	inkX, inkY := float64(ink.Min.X+ink.Max.X)/2, float64(ink.Min.Y+ink.Max.Y)/2
	cellX, cellY := float64(xs[1]+1+xs[2])/2, float64(ys[1]+1+ys[2])/2
	if ink.Dx() < 20 || math.Abs(inkX-cellX) > 1.5 || math.Abs(inkY-cellY) > 1.5 {
		t.Errorf("count of cell (1, 1): ink in %v, centred on (%.1f, %.1f), the cell on (%.1f, %.1f)", ink, inkX, inkY, cellX, cellY)
	}
	// Grid lines between cells.
	if got := img.RGBAAt(xs[5], ys[3]+5); got != cellGrid {
		t.Errorf("grid line at column %d = %v, want %v", xs[5], got, cellGrid)
	}
}

func TestTrainingCurvesLayout(t *testing.T) {
	th := testTheme(t)
	areas := sideBySide(th, 1000, 450, valueAxis([]float64{0.02, 0.4}), valueAxis([]float64{88, 99.5}))
	if areas[0].Size() != areas[1].Size() || areas[0].Max.X >= areas[1].Min.X || areas[1].Max.X > 1000-10 {
		t.Errorf("panels %v and %v: want two of one size, side by side on the page", areas[0], areas[1])
	}
	var b bytes.Buffer
	if err := TrainingCurves(&b, curves(), "cross-entropy loss"); err != nil {
		t.Fatal(err)
	}
	pic, err := png.Decode(&b)
	if err != nil {
		t.Fatal(err)
	}
	cs := colours(pic)
	// Solid runs of both lines' colours, not only their antialiased edges.
	if cs[tab10Blue] < 200 || cs[tab10Red] < 200 {
		t.Errorf("%d training-blue and %d validation-red pixels", cs[tab10Blue], cs[tab10Red])
	}
}
