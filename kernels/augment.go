package kernels

import (
	"fmt"
	"math"

	"github.com/mnist-cl/mnist-cl/cl"
)

// augmentStream is the last counter word of augmentation draws
// (AUGMENT_STREAM in layers.cl), so another use of the seed's key that
// counts images and epochs the same way draws other numbers.
const augmentStream = 0x61756731 // "aug1"

// Affine is one epoch's random affine distortions, as gather_affine makes
// them: every image gets a rotation, a scaling and a shift drawn uniformly
// from the ranges below by Philox keyed by Seed, counting its index in the
// data set and Epoch. Zero ranges are the identity, and X is then Gather's.
type Affine struct {
	Width, Height int    // image size; Width*Height pixels, row-major
	Seed          uint64 // the Philox key
	Epoch         int    // the epoch drawn for (training counts from 1)
	// Rotate is the largest rotation either way in degrees, Scale the
	// largest relative change of size (0.1: 0.9x to 1.1x) and Shift the
	// largest shift either way as a fraction of the width and the height.
	Rotate, Scale, Shift float32
}

// AffineDraw is the distortion of one image: the forward map about the
// centre c is out = c + (DX, DY) + Scale R(Angle) (in - c).
type AffineDraw struct {
	Angle, Scale, DX, DY float32 // radians, factor, pixels, pixels
}

// radians is the largest rotation as the kernel takes it.
func (a Affine) radians() float32 { return float32(float64(a.Rotate) * math.Pi / 180) }

// shifts are the largest shifts in pixels, as the kernel takes them.
func (a Affine) shifts() (x, y float32) {
	return a.Shift * float32(a.Width), a.Shift * float32(a.Height)
}

// Draw returns the distortion gather_affine gives image (its index in the
// data set), from the same random words by the same float32 formulas; the
// device may fuse 1 + Scale u into one rounding, so Scale can differ from
// the device's in the last bit.
func (a Affine) Draw(image int) AffineDraw {
	w := Philox4x32([4]uint32{uint32(image), uint32(a.Epoch), 0, augmentStream}, [2]uint32{uint32(a.Seed), uint32(a.Seed >> 32)})
	sx, sy := a.shifts()
	return AffineDraw{Angle: a.radians() * Uniform(w[0]), Scale: 1 + a.Scale*Uniform(w[1]),
		DX: sx * Uniform(w[2]), DY: sy * Uniform(w[3])}
}

// GatherAffine is Gather with a's random distortion of every image, sampled
// bilinearly with zero outside the image (see gather_affine in layers.cl).
func (s *Set) GatherAffine(images, digits, perm *cl.Buffer, first, rows int, a Affine, x, labels *cl.Buffer) error {
	// The kernel finds a pixel's row by a float product, exact below 2^22.
	if a.Width <= 0 || a.Height <= 0 || a.Width*a.Height >= 1<<22 || a.Epoch < 0 {
		return fmt.Errorf("gather_affine: image %dx%d, epoch %d", a.Width, a.Height, a.Epoch)
	}
	pixels := a.Width * a.Height
	if err := need("gather_affine", operand{"X", x, rows * pixels}, operand{"labels", labels, rows}, operand{"perm", perm, first + rows}); err != nil {
		return err
	}
	if rows <= 0 {
		return nil
	}
	sx, sy := a.shifts()
	if err := s.gatherAffine.SetArgs(images, digits, perm, first, a.Width, a.Height,
		uint32(a.Seed), uint32(a.Seed>>32), uint32(a.Epoch), a.radians(), a.Scale, sx, sy, float32(1/float64(a.Width)), x, labels); err != nil {
		return err
	}
	// A work-group is a run of pixels of one image (see gather_affine):
	// all of them where the device allows, since each group costs PoCL a
	// dispatch and a draw of the map.
	chunks := (pixels + 15) / 16
	group := min(chunks, s.affineGroup)
	return s.enqueue(s.gatherAffine, []int{roundUp(chunks, group), rows}, []int{group, 1}, rows, pixels, 0)
}

// Philox writes n blocks of Philox4x32 into out (4n words): block i is the
// generator at counter ctr with i added to its first word. Tests hold it
// against the Go Philox4x32.
func (s *Set) Philox(ctr [4]uint32, key [2]uint32, n int, out *cl.Buffer) error {
	if err := need("philox_blocks", operand{"out", out, 4 * n}); err != nil {
		return err
	}
	return s.launch1D(s.philox, n, ctr[0], ctr[1], ctr[2], ctr[3], key[0], key[1], n, out)
}

// elasticStream is the last counter word of the elastic noise
// (ELASTIC_STREAM in layers.cl), apart from the affine draws.
const elasticStream = 0x656c6131 // "ela1"

// ElasticMaxRadius is the largest Gaussian radius ceil(3 Sigma) that
// gather_elastic takes (ELASTIC_MAX_RADIUS in layers.cl).
const ElasticMaxRadius = 32

// Elastic is one epoch's random elastic distortions after Simard et al.
// (2003), as gather_elastic makes them: per image two displacement fields
// of uniform noise (Noise), each blurred by a Gaussian of standard
// deviation Sigma pixels truncated at Radius, zero outside the image, and
// scaled by Alpha (the blur's weights sum to 1), displace where every output
// pixel samples the image after the affine map of the embedded Affine (the
// identity when its ranges are zero). Alpha 0 with zero ranges is Gather.
type Elastic struct {
	Affine
	Sigma, Alpha float32
}

// Radius is the Gaussian's truncation, ceil(3 Sigma).
func (e Elastic) Radius() int { return int(math.Ceil(3 * float64(e.Sigma))) }

// Noise returns the two fields of uniform noise gather_elastic draws for
// image (its index in the data set): dx for every pixel then dy, value i
// being word i mod 4 of Philox at counter (image, Epoch, i / 4, stream).
func (e Elastic) Noise(image int) []float32 {
	n := 2 * e.Width * e.Height
	out := make([]float32, 0, n+3)
	key := [2]uint32{uint32(e.Seed), uint32(e.Seed >> 32)}
	for j := 0; 4*j < n; j++ {
		w := Philox4x32([4]uint32{uint32(image), uint32(e.Epoch), uint32(j), elasticStream}, key)
		for _, x := range w {
			out = append(out, Uniform(x))
		}
	}
	return out[:n]
}

// gain is alpha over the square of the sum of the 1D weights, which the
// kernel computes unnormalised.
func (e Elastic) gain() (inv2s2, gain float32) {
	s := float64(e.Sigma)
	sum := 0.0
	for k := -e.Radius(); k <= e.Radius(); k++ {
		sum += math.Exp(-float64(k*k) / (2 * s * s))
	}
	return float32(1 / (2 * s * s)), float32(float64(e.Alpha) / (sum * sum))
}

// GatherElastic is GatherAffine with e's elastic displacement added to
// every image's affine map (see gather_elastic in layers.cl): a work-group
// per image, holding its two fields in local memory.
func (s *Set) GatherElastic(images, digits, perm *cl.Buffer, first, rows int, e Elastic, x, labels *cl.Buffer) error {
	a := e.Affine
	pixels := a.Width * a.Height
	if a.Width <= 0 || a.Height <= 0 || a.Epoch < 0 || !(e.Sigma > 0) || e.Radius() > ElasticMaxRadius ||
		!(e.Alpha >= 0) || math.IsInf(float64(e.Alpha), 0) || uint64(16*pixels+1024) > s.dev.LocalMem {
		return fmt.Errorf("gather_elastic: image %dx%d, epoch %d, sigma %g, alpha %g (local memory %d bytes)",
			a.Width, a.Height, a.Epoch, e.Sigma, e.Alpha, s.dev.LocalMem)
	}
	if err := need("gather_elastic", operand{"X", x, rows * pixels}, operand{"labels", labels, rows}, operand{"perm", perm, first + rows}); err != nil {
		return err
	}
	if rows <= 0 {
		return nil
	}
	sx, sy := a.shifts()
	inv2s2, gain := e.gain()
	if err := s.gatherElastic.SetArgs(images, digits, perm, first, a.Width, a.Height,
		uint32(a.Seed), uint32(a.Seed>>32), uint32(a.Epoch), a.radians(), a.Scale, sx, sy,
		inv2s2, e.Radius(), gain, x, labels, cl.Local(8*pixels), cl.Local(8*pixels)); err != nil {
		return err
	}
	group := min(pixels, s.elasticGroup)
	return s.enqueue(s.gatherElastic, []int{group, rows}, []int{group, 1}, rows, pixels, 0)
}
