package tuner

import (
	"math"
	"math/rand/v2"
)

// strokes are rows images of cols pixels that stand in for the input
// batch when a product skipping op(A)'s zero terms (kernels.Shape.SparseA)
// is timed: a sparse product's speed and its best block depend on how
// many terms its blocks of rows keep, which random operands (no zeros at
// all) do not show. Each image is four thick pen strokes inside the middle
// 20/28 of a square, as MNIST centres its digits. At 784 pixels they ink
// 17% of them (MNIST's images 19%), and blocks of 6 images keep 46% of the
// terms of X W1 (MNIST's 43%) and blocks of 6 pixels 33% of those of
// X^T dZ1 (34%). Images whose pixels make no square are taken as one row
// of cols pixels.
func strokes(rng *rand.Rand, rows, cols int) []float32 {
	h, w := 1, cols
	if side := int(math.Round(math.Sqrt(float64(cols)))); side*side == cols {
		h, w = side, side
	}
	x := make([]float32, rows*cols)
	for r := range rows {
		img := x[r*cols : (r+1)*cols]
		for range 4 {
			stroke(rng, img, h, w)
		}
	}
	return x
}

// stroke inks one segment between two random points of the middle box,
// pen radius 1.6 pixels at MNIST's 28 (scaled with the side), darkest on
// its centre line as a pen's ink is.
func stroke(rng *rand.Rand, img []float32, h, w int) {
	in := func(n int) (lo, hi float64) { return float64(n) * 4 / 28, float64(n) * 24 / 28 }
	ylo, yhi := in(h)
	xlo, xhi := in(w)
	pick := func(lo, hi float64) float64 { return lo + rng.Float64()*(hi-lo) }
	y0, x0, y1, x1 := pick(ylo, yhi), pick(xlo, xhi), pick(ylo, yhi), pick(xlo, xhi)
	pen := 1.6 * float64(max(h, w)) / 28
	for y := range h {
		for x := range w {
			d := segmentDistance(float64(x), float64(y), x0, y0, x1, y1)
			if d < pen {
				v := float32(1 - 0.5*d/pen)
				img[y*w+x] = max(img[y*w+x], v)
			}
		}
	}
}

// segmentDistance is the distance from (px, py) to the segment (x0, y0)-(x1, y1).
func segmentDistance(px, py, x0, y0, x1, y1 float64) float64 {
	dx, dy := x1-x0, y1-y0
	t := 0.0
	if l2 := dx*dx + dy*dy; l2 > 0 {
		t = min(1, max(0, ((px-x0)*dx+(py-y0)*dy)/l2))
	}
	return math.Hypot(px-(x0+t*dx), py-(y0+t*dy))
}
