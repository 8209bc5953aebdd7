package plots

import (
	"image"
	"math"
	"testing"
)

// inkBox is the smallest rectangle holding every pixel of c that is not
// white.
func inkBox(c *canvas) image.Rectangle {
	var box image.Rectangle
	b := c.img.Rect
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if c.img.RGBAAt(x, y) != white {
				box = box.Union(image.Rect(x, y, x+1, y+1))
			}
		}
	}
	return box
}

// alphaBox is the same for the covered pixels of a mask.
func alphaBox(m *image.Alpha) image.Rectangle {
	var box image.Rectangle
	for y := m.Rect.Min.Y; y < m.Rect.Max.Y; y++ {
		for x := m.Rect.Min.X; x < m.Rect.Max.X; x++ {
			if m.AlphaAt(x, y).A != 0 {
				box = box.Union(image.Rect(x, y, x+1, y+1))
			}
		}
	}
	return box
}

func TestTextWidth(t *testing.T) {
	f := testFace(t, 16)
	if w := f.width(""); w != 0 {
		t.Errorf("empty string is %v wide", w)
	}
	prev := 0.0
	for _, s := range []string{"a", "ab", "abcd", "abcdefgh"} {
		w := f.width(s)
		if w <= prev {
			t.Errorf("%q is %v wide, no wider than a shorter string (%v)", s, w, prev)
		}
		prev = w
	}
	// A 16 px sans letter is several pixels wide, and a size twice as
	// large is twice as wide.
	if w := f.width("abcdefgh"); w < 8*5 || w > 8*12 {
		t.Errorf("8 letters at 16 px are %v wide", w)
	}
	if w2, w := testFace(t, 32).width("abcd"), f.width("abcd"); math.Abs(w2-2*w) > 1 {
		t.Errorf("%q is %v wide at 16 px and %v at 32 px", "abcd", w, w2)
	}
}

func TestTextAnchor(t *testing.T) {
	f := testFace(t, 16)
	c := newCanvas(200, 60, white)
	c.text(f, "Hello", 10, 10, left, top, black)
	box := inkBox(c)
	if box.Min.X < 10 || box.Min.X > 12 || box.Min.Y < 10 || box.Min.Y > 10+int(f.ascent-f.capHeight)+1 ||
		box.Max.X > 10+int(math.Ceil(f.width("Hello")))+1 {
		t.Errorf("Hello at left top (10, 10): ink in %v (width %.1f)", box, f.width("Hello"))
	}

	// Digits centred on a point, as in a confusion matrix's cells.
	c = newCanvas(100, 40, white)
	c.text(f, "808", 50, 20, center, middle, black)
	box = inkBox(c)
	cx, cy := float64(box.Min.X+box.Max.X)/2, float64(box.Min.Y+box.Max.Y)/2
	if math.Abs(cx-50) > 1.5 || math.Abs(cy-20) > 1.5 {
		t.Errorf("808 centred on (50, 20): ink in %v, centred on (%.1f, %.1f)", box, cx, cy)
	}

	c = newCanvas(100, 40, white)
	c.text(f, "42", 90, 30, right, baseline, black)
	if box = inkBox(c); box.Max.X > 90 || box.Max.X < 88 || box.Max.Y != 30 {
		t.Errorf("42 right on baseline (90, 30): ink in %v", box)
	}
}

func TestTextRotated(t *testing.T) {
	f := testFace(t, 16)
	const s = "accuracy (%)"
	m := f.mask(s)
	r := rotateLeft(m)
	if m.Rect.Dx() != r.Rect.Dy() || m.Rect.Dy() != r.Rect.Dx() {
		t.Fatalf("mask %v turned is %v, want its sides swapped", m.Rect, r.Rect)
	}
	// Turned left, the ink's left edge is the text's top, its bottom edge
	// the text's start.
	b, rb := alphaBox(m), alphaBox(r)
	w := m.Rect.Dx()
	if want := image.Rect(b.Min.Y, w-b.Max.X, b.Max.Y, w-b.Min.X); rb != want {
		t.Errorf("ink in %v turned is in %v, want %v", b, rb, want)
	}

	c := newCanvas(60, 200, white)
	c.textUp(f, s, 20, 100, black)
	box := inkBox(c)
	if box.Dy() < 3*box.Dx() || box.Min.X < 20 || math.Abs(float64(box.Min.Y+box.Max.Y)/2-100) > 2 {
		t.Errorf("%q up at column 20, centred on row 100: ink in %v", s, box)
	}
}
