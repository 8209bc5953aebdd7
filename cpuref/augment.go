package cpuref

import (
	"fmt"
	"math"
)

// AffineTransform is one image's distortion: the forward map about the
// centre c = ((width-1)/2, (height-1)/2) is
//
//	out = c + (DX, DY) + Scale R(Angle) (in - c)
//
// with Angle in radians and the shifts in pixels.
type AffineTransform struct {
	Angle, Scale, DX, DY float64
}

// Affine returns the distorted image as gather_affine makes a row of X: each
// output pixel samples img (width x height, row-major, 0..255) bilinearly at
// the inverse map in = c + R(-Angle) (out - c - (DX, DY)) / Scale, reading 0
// outside the image, and scales to [0, 1]. Sampling the zero-bordered image
// is continuous in the coordinates, so float32 rounding of them on the device
// moves a pixel by about its rounding, never by a jump.
// It panics unless len(img) is width*height.
func Affine(img []uint8, width, height int, t AffineTransform) []float64 {
	if len(img) != width*height {
		panic(fmt.Sprintf("cpuref: Affine: %d pixels for a %dx%d image", len(img), width, height))
	}
	at := func(x, y int) float64 {
		if x < 0 || x >= width || y < 0 || y >= height {
			return 0
		}
		return float64(img[y*width+x])
	}
	ca, sa := math.Cos(t.Angle)/t.Scale, math.Sin(t.Angle)/t.Scale
	cx, cy := float64(width-1)/2, float64(height-1)/2
	out := make([]float64, width*height)
	for oy := range height {
		for ox := range width {
			px, py := float64(ox)-cx-t.DX, float64(oy)-cy-t.DY
			sx, sy := cx+ca*px+sa*py, cy-sa*px+ca*py
			x0, y0 := math.Floor(sx), math.Floor(sy)
			fx, fy := sx-x0, sy-y0
			x, y := int(x0), int(y0)
			top := (1-fx)*at(x, y) + fx*at(x+1, y)
			bottom := (1-fx)*at(x, y+1) + fx*at(x+1, y+1)
			out[oy*width+ox] = ((1-fy)*top + fy*bottom) / 255
		}
	}
	return out
}
