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
	return sample(img, width, height, t, nil, nil)
}

// sample is Affine with the source point of output pixel p moved by
// (dx[p], dy[p]) when the fields are not nil.
func sample(img []uint8, width, height int, t AffineTransform, dx, dy []float64) []float64 {
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
			if dx != nil {
				sx, sy = sx+dx[oy*width+ox], sy+dy[oy*width+ox]
			}
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

// ElasticField returns the displacement fields of gather_elastic from its
// noise (2 width*height values, the dx field then dy, as
// kernels.Elastic.Noise draws them): each is blurred by the Gaussian
// exp(-k^2 / (2 sigma^2)), |k| <= ceil(3 sigma), normalised to sum 1, along
// rows then columns with zero outside the image, and scaled by alpha.
// It panics unless len(noise) is 2*width*height.
func ElasticField(noise []float64, width, height int, sigma, alpha float64) (dx, dy []float64) {
	pixels := width * height
	if len(noise) != 2*pixels {
		panic(fmt.Sprintf("cpuref: ElasticField: %d values for a %dx%d image", len(noise), width, height))
	}
	radius := int(math.Ceil(3 * sigma))
	w := make([]float64, radius+1)
	sum := 0.0
	for k := -radius; k <= radius; k++ {
		v := math.Exp(-float64(k*k) / (2 * sigma * sigma))
		if k >= 0 {
			w[k] = v
		}
		sum += v
	}
	blur := func(f []float64) []float64 {
		tmp, out := make([]float64, pixels), make([]float64, pixels)
		for y := range height {
			for x := range width {
				s := 0.0
				for k := max(-radius, -x); k <= min(radius, width-1-x); k++ {
					s += w[abs(k)] * f[y*width+x+k]
				}
				tmp[y*width+x] = s / sum
			}
		}
		for y := range height {
			for x := range width {
				s := 0.0
				for k := max(-radius, -y); k <= min(radius, height-1-y); k++ {
					s += w[abs(k)] * tmp[(y+k)*width+x]
				}
				out[y*width+x] = alpha * s / sum
			}
		}
		return out
	}
	return blur(noise[:pixels]), blur(noise[pixels:])
}

func abs(k int) int {
	if k < 0 {
		return -k
	}
	return k
}

// Elastic returns the distorted image as gather_elastic makes a row of X:
// Affine's, with output pixel p sampling at the affine map's source point
// plus (dx[p], dy[p]) (see ElasticField). It panics unless img, dx and dy
// have width*height values.
func Elastic(img []uint8, width, height int, t AffineTransform, dx, dy []float64) []float64 {
	if len(img) != width*height || len(dx) != len(img) || len(dy) != len(img) {
		panic(fmt.Sprintf("cpuref: Elastic: %d pixels, fields of %d and %d, for a %dx%d image", len(img), len(dx), len(dy), width, height))
	}
	return sample(img, width, height, t, dx, dy)
}
