package kernels

import (
	"fmt"
	"math"

	"github.com/mnist-cl/mnist-cl/cl"
)

// augmentStream is the last counter word of augmentation draws
// (AUGMENT_STREAM in augment.cl), so another use of the seed's key that
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
// bilinearly with zero outside the image (see gather_affine in augment.cl).
func (s *Set) GatherAffine(images, digits, perm *cl.Buffer, first, rows int, a Affine, x, labels *cl.Buffer) error {
	// The kernel finds a pixel's row by a float product, exact below 2^22,
	// and stages the image in local memory.
	staged := stagedBytes(a.Width, a.Height)
	if a.Width <= 0 || a.Height <= 0 || a.Width*a.Height >= 1<<22 || a.Epoch < 0 || uint64(staged+affineLocal) > s.dev.LocalMem {
		return fmt.Errorf("gather_affine: image %dx%d, epoch %d (local memory %d bytes)", a.Width, a.Height, a.Epoch, s.dev.LocalMem)
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
		uint32(a.Seed), uint32(a.Seed>>32), uint32(a.Epoch), a.radians(), a.Scale, sx, sy, float32(1/float64(a.Width)), x, labels,
		cl.Local(staged)); err != nil {
		return err
	}
	group := s.imageGroup((pixels+15)/16, s.affineGroup)
	return s.enqueue(s.gatherAffine, []int{group, rows}, []int{group, 1}, rows, pixels, 0)
}

// imageGroup is the work-group of a kernel that makes an image a group
// (gather_affine, gather_elastic), its work-items taking the image's work
// in turn: items of them, or the most the kernel allows, but one on a CPU.
// PoCL runs a group's work-items in a loop, a pass for every stretch
// between barriers, and the kernels' vector code leaves it nothing to
// vectorise across them; gather_elastic took 7% longer in groups of 28.
func (s *Set) imageGroup(items, most int) int {
	if s.dev.Type == cl.DeviceCPU {
		return 1
	}
	return max(1, min(items, most))
}

// stagedBytes is the local memory of an image staged by augment.cl's
// stageImage: height+3 rows of quads (uint32) for the top-left taps from -2
// to width, rounded up to 16, then the image as uint8 with a zero border,
// height+4 rows a vector longer.
func stagedBytes(width, height int) int {
	stride := roundUp(width+3, 16)
	return 4*(height+3)*stride + (height+4)*(stride+16)
}

// affineLocal bounds the local memory gather_affine declares besides the
// staged image (its map).
const affineLocal = 64

// Philox writes n blocks of Philox4x32 into out (4n words): block i is the
// generator at counter ctr with i added to its first word. Tests hold it
// against the Go Philox4x32.
func (s *Set) Philox(ctr [4]uint32, key [2]uint32, n int, out *cl.Buffer) error {
	if err := need("philox_blocks", operand{"out", out, 4 * n}); err != nil {
		return err
	}
	return s.launch1D(s.philox, n, ctr[0], ctr[1], ctr[2], ctr[3], key[0], key[1], n, out)
}

// ElasticNoise numbers the way gather_elastic draws its noise from Philox
// (Elastic.Noise): 2 since the 16-bit values in float16 lanes; 1, which no
// checkpoint recorded, drew a 24-bit value per word. A run resumed with
// another numbering would draw other fields than the run it continues.
const ElasticNoise = 2

// elasticStream is the last counter word of the elastic noise
// (ELASTIC_STREAM in augment.cl), apart from the affine draws.
const elasticStream = 0x656c6131 // "ela1"

// ElasticMaxRadius is the largest Gaussian radius ceil(3 Sigma) that
// GatherElastic takes, past the command's widest blur (sigma 10, radius
// 30). The kernel itself needs no bound: its blur windows end at the
// image's edges.
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
// image (its index in the data set): dx for every pixel then dy. Pixel
// (x, 4q+i) takes word i of the Philox block at counter (image, Epoch,
// q*Width + x, stream), its high 16 bits for dx and its low 16 bits for dy
// (Uniform16). A block thus makes both fields of four rows, and the device
// draws 16 columns of them with one Philox in 16 lanes: a quarter of the
// kernel's time went to Philox when each block made two pixels.
func (e Elastic) Noise(image int) []float32 {
	w, h := e.Width, e.Height
	out := make([]float32, 2*w*h)
	dx, dy := out[:w*h], out[w*h:]
	key := [2]uint32{uint32(e.Seed), uint32(e.Seed >> 32)}
	for q := 0; 4*q < h; q++ {
		for x := range w {
			u := Philox4x32([4]uint32{uint32(image), uint32(e.Epoch), uint32(q*w + x), elasticStream}, key)
			for i, word := range u {
				if y := 4*q + i; y < h {
					dx[y*w+x], dy[y*w+x] = Uniform16(uint16(word>>16)), Uniform16(uint16(word))
				}
			}
		}
	}
	return out
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

// elasticRows is the rows of a field gather_elastic blurs at once
// (ELASTIC_ROWS in augment.cl).
const elasticRows = 4

// elasticChunks is the 16-column chunks of those rows (ELASTIC_CHUNKS).
const elasticChunks = 2

// elasticLocal is the local memory of gather_elastic's arrays in bytes (see
// elasticShapeOf in augment.cl): the fields, two of the height rounded up
// to elasticRows times the width rounded up to elasticChunks 16-column
// chunks; the blur's intermediate, one such field, which then holds the
// image staged for sampling (stagedBytes); and the Gaussian's weights for
// every offset the blurs take, rounded up to 16.
func elasticLocal(width, height int) (fields, tmp, taps int) {
	wp, hp := roundUp(width, 16*elasticChunks), roundUp(height, elasticRows)
	return 4 * 2 * hp * wp, max(4*hp*wp, stagedBytes(width, height)), 4 * roundUp(max(width, hp)-1+max(wp, hp), 16)
}

// elasticFits checks e for the kernel name: a blur the kernels take and
// arrays that fit the device's local memory.
func (s *Set) elasticFits(name string, e Elastic) error {
	a := e.Affine
	fields, tmp, taps := elasticLocal(a.Width, a.Height)
	if a.Width <= 0 || a.Height <= 0 || a.Epoch < 0 || !(e.Sigma > 0) || e.Radius() > ElasticMaxRadius ||
		!(e.Alpha >= 0) || math.IsInf(float64(e.Alpha), 0) || uint64(fields+tmp+taps+affineLocal) > s.dev.LocalMem {
		return fmt.Errorf("%s: image %dx%d, epoch %d, sigma %g, alpha %g (local memory %d bytes)",
			name, a.Width, a.Height, a.Epoch, e.Sigma, e.Alpha, s.dev.LocalMem)
	}
	return nil
}

// GatherElastic is GatherAffine with e's elastic displacement added to
// every image's affine map (see gather_elastic in augment.cl): a work-group
// per image, holding its fields and the image in local memory.
func (s *Set) GatherElastic(images, digits, perm *cl.Buffer, first, rows int, e Elastic, x, labels *cl.Buffer) error {
	a := e.Affine
	pixels := a.Width * a.Height
	if err := s.elasticFits("gather_elastic", e); err != nil {
		return err
	}
	if err := need("gather_elastic", operand{"X", x, rows * pixels}, operand{"labels", labels, rows}, operand{"perm", perm, first + rows}); err != nil {
		return err
	}
	if rows <= 0 {
		return nil
	}
	sx, sy := a.shifts()
	inv2s2, gain := e.gain()
	fields, tmp, taps := elasticLocal(a.Width, a.Height)
	if err := s.gatherElastic.SetArgs(images, digits, perm, first, a.Width, a.Height,
		uint32(a.Seed), uint32(a.Seed>>32), uint32(a.Epoch), a.radians(), a.Scale, sx, sy,
		inv2s2, e.Radius(), gain, x, labels, cl.Local(fields), cl.Local(tmp), cl.Local(taps)); err != nil {
		return err
	}
	group := s.imageGroup(e.Height, s.elasticGroup)
	return s.enqueue(s.gatherElastic, []int{group, rows}, []int{group, 1}, rows, pixels, 0)
}

// ElasticFields writes the displacement fields gather_elastic makes for
// images perm[first:first+rows] into out, row r holding the dx field of
// width x height values then dy's (e's affine ranges play no part). Tests
// hold it against Noise and cpuref.ElasticField.
func (s *Set) ElasticFields(perm *cl.Buffer, first, rows int, e Elastic, out *cl.Buffer) error {
	pixels := e.Width * e.Height
	if err := s.elasticFits("elastic_fields", e); err != nil {
		return err
	}
	if err := need("elastic_fields", operand{"out", out, 2 * rows * pixels}, operand{"perm", perm, first + rows}); err != nil {
		return err
	}
	if rows <= 0 {
		return nil
	}
	inv2s2, gain := e.gain()
	fields, tmp, taps := elasticLocal(e.Width, e.Height)
	if err := s.elasticFields.SetArgs(perm, first, e.Width, e.Height, uint32(e.Seed), uint32(e.Seed>>32), uint32(e.Epoch),
		inv2s2, e.Radius(), gain, out, cl.Local(fields), cl.Local(tmp), cl.Local(taps)); err != nil {
		return err
	}
	group := s.imageGroup(e.Height, s.elasticGroup)
	return s.enqueue(s.elasticFields, []int{group, rows}, []int{group, 1}, rows, pixels, 0)
}
