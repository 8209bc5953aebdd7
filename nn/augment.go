package nn

import (
	"fmt"
	"math"

	"github.com/mnist-cl/mnist-cl/cl"
	"github.com/mnist-cl/mnist-cl/kernels"
)

// AugmentKind names how training images are distorted as a batch is
// gathered. The zero value is AugmentNone, so a Config without the field is
// the undistorted run it always was.
type AugmentKind int

const (
	// AugmentNone trains on the images as they are, with the plain gather.
	AugmentNone AugmentKind = iota
	// AugmentAffine rotates, scales and shifts every image by its own random
	// amounts each epoch (kernels.Affine, gather_affine in augment.cl).
	AugmentAffine
	// AugmentElastic displaces every image by its own smoothed random
	// field each epoch, after Simard et al. (2003) (kernels.Elastic,
	// gather_elastic in augment.cl).
	AugmentElastic
	// AugmentAffineElastic applies the affine distortion, then the elastic.
	AugmentAffineElastic
)

// String returns the name used in flags and checkpoints.
func (k AugmentKind) String() string {
	if k >= 0 && int(k) < len(augmentNames) {
		return augmentNames[k]
	}
	return fmt.Sprintf("AugmentKind(%d)", int(k))
}

// augmentNames are the AugmentKinds' names, in their order.
var augmentNames = [...]string{AugmentNone: "none", AugmentAffine: "affine", AugmentElastic: "elastic", AugmentAffineElastic: "affine+elastic"}

// ParseAugmentKind is the inverse of String.
func ParseAugmentKind(s string) (AugmentKind, error) {
	for _, k := range []AugmentKind{AugmentNone, AugmentAffine, AugmentElastic, AugmentAffineElastic} {
		if s == k.String() {
			return k, nil
		}
	}
	return AugmentNone, fmt.Errorf("unknown augmentation %q (want none, affine, elastic or affine+elastic)", s)
}

// Augment is the distortion of training images. Validation and test images
// are never distorted. With Kind AugmentNone the ranges are 0.
type Augment struct {
	Kind AugmentKind
	// Rotate is the largest rotation either way in degrees, Scale the
	// largest relative change of size and Shift the largest shift either
	// way as a fraction of the side; each image draws uniformly within them.
	Rotate, Scale, Shift float32
	// Sigma is the standard deviation in pixels of the Gaussian that
	// smooths the elastic displacement fields, Alpha the factor of the
	// smoothed fields (the blur's weights sum to 1); 0 without elastic.
	Sigma, Alpha float32
}

// HasAffine and HasElastic say which distortions the kind applies.
func (k AugmentKind) HasAffine() bool { return k == AugmentAffine || k == AugmentAffineElastic }

// HasElastic: see HasAffine.
func (k AugmentKind) HasElastic() bool { return k == AugmentElastic || k == AugmentAffineElastic }

// DefaultElastic is Simard et al.'s (2003) elastic distortion for MNIST:
// sigma 4, alpha 34.
func DefaultElastic() Augment {
	return Augment{Kind: AugmentElastic, Sigma: 4, Alpha: 34}
}

// DefaultAffine is the affine distortion of issue 16's PyTorch run, after
// Simard et al. (2003): rotation within 12 degrees, size within 10% and
// shift within 10% of the side either way.
func DefaultAffine() Augment {
	return Augment{Kind: AugmentAffine, Rotate: 12, Scale: 0.1, Shift: 0.1}
}

// String describes the augmentation for reports.
func (a Augment) String() string {
	switch a.Kind {
	case AugmentNone:
		return "none"
	case AugmentElastic:
		return fmt.Sprintf("%s (sigma %g, alpha %g)", a.Kind, a.Sigma, a.Alpha)
	case AugmentAffineElastic:
		return fmt.Sprintf("%s (rotate %g, scale %g, shift %g, sigma %g, alpha %g)", a.Kind, a.Rotate, a.Scale, a.Shift, a.Sigma, a.Alpha)
	}
	return fmt.Sprintf("%s (rotate %g, scale %g, shift %g)", a.Kind, a.Rotate, a.Scale, a.Shift)
}

// validate reports the first range a distortion cannot use: a rotation past
// 180 degrees repeats, a scale of 1 or more can shrink an image to nothing,
// and a shift of the whole side moves it out of view.
func (a Augment) validate() error {
	ok := func(v, hi float32) bool { return v >= 0 && v <= hi && !math.IsNaN(float64(v)) }
	switch a.Kind {
	case AugmentNone:
		if a != (Augment{}) {
			return fmt.Errorf("augment: none with distortion ranges %v", a)
		}
	case AugmentAffine, AugmentElastic, AugmentAffineElastic:
		if !a.Kind.HasAffine() && (a.Rotate != 0 || a.Scale != 0 || a.Shift != 0) {
			return fmt.Errorf("augment: %s with affine ranges %v", a.Kind, a)
		}
		if !a.Kind.HasElastic() && (a.Sigma != 0 || a.Alpha != 0) {
			return fmt.Errorf("augment: %s with elastic sigma %g, alpha %g", a.Kind, a.Sigma, a.Alpha)
		}
		if !ok(a.Rotate, 180) || !ok(a.Scale, 0.5) || !ok(a.Shift, 0.5) {
			return fmt.Errorf("augment: want rotate in [0, 180], scale and shift in [0, 0.5], got %v", a)
		}
		// ceil(3 sigma) is the blur's radius, at most kernels.ElasticMaxRadius.
		if a.Kind.HasElastic() && (!(a.Sigma > 0) || !ok(a.Sigma, 10) || !ok(a.Alpha, 1000)) {
			return fmt.Errorf("augment: want sigma in (0, 10] and alpha in [0, 1000], got %v", a)
		}
	default:
		return fmt.Errorf("augment: unknown kind %d", int(a.Kind))
	}
	return nil
}

// Affine is the device distortion of c's augmentation for images of width
// x height in epoch (training counts from 1), keyed by c's seed.
func (c Config) Affine(width, height, epoch int) kernels.Affine {
	a := c.Augment
	return kernels.Affine{Width: width, Height: height, Seed: c.Seed, Epoch: epoch,
		Rotate: a.Rotate, Scale: a.Scale, Shift: a.Shift}
}

// Elastic is the device distortion of c's elastic augmentation (with the
// affine one when c's kind has it) for images of width x height in epoch.
func (c Config) Elastic(width, height, epoch int) kernels.Elastic {
	return kernels.Elastic{Affine: c.Affine(width, height, epoch), Sigma: c.Augment.Sigma, Alpha: c.Augment.Alpha}
}

// GatherElastic is GatherAffine with e's elastic distortion (see
// kernels.Elastic).
func (n *Network) GatherElastic(d *DeviceSet, order *cl.Buffer, first, rows int, e kernels.Elastic) error {
	if err := n.checkDistorted("gather elastic", d, rows, e.Width, e.Height); err != nil {
		return err
	}
	return n.rt.Kernels.GatherElastic(d.images, d.digits, order, first, rows, e, n.Z[0], n.labels)
}

// checkDistorted checks a distorting gather of rows images of d, distorted
// as width x height images, against the network.
func (n *Network) checkDistorted(op string, d *DeviceSet, rows, width, height int) error {
	if rows <= 0 || rows > n.maxBatch {
		return fmt.Errorf("%s: %d rows for a network of batch <= %d", op, rows, n.maxBatch)
	}
	if d.pixels != n.sizes[0] || width*height != d.pixels {
		return fmt.Errorf("%s: images have %d pixels, the network %d inputs, the distortion %dx%d",
			op, d.pixels, n.sizes[0], width, height)
	}
	return nil
}

// gatherDistorted builds a batch with c's distortion of epoch.
func (t *Trainer) gatherDistorted(order *cl.Buffer, first, rows, epoch int) error {
	if t.cfg.Augment.Kind.HasElastic() {
		return t.Net.GatherElastic(t.train, order, first, rows, t.cfg.Elastic(t.train.width, t.train.height, epoch))
	}
	return t.Net.GatherAffine(t.train, order, first, rows, t.cfg.Affine(t.train.width, t.train.height, epoch))
}

// GatherAffine is GatherBatch with the random affine distortion a of every
// image (see kernels.Affine); a's size must be that of d's images.
func (n *Network) GatherAffine(d *DeviceSet, order *cl.Buffer, first, rows int, a kernels.Affine) error {
	if err := n.checkDistorted("gather affine", d, rows, a.Width, a.Height); err != nil {
		return err
	}
	return n.rt.Kernels.GatherAffine(d.images, d.digits, order, first, rows, a, n.Z[0], n.labels)
}

// gatherTrain builds step's batch of the current epoch's shuffle: distorted
// when the Config says so, else by the plain gather, which then runs exactly
// as it did before augmentation existed.
func (t *Trainer) gatherTrain(order *cl.Buffer, first, rows int) error {
	if t.cfg.Augment.Kind == AugmentNone {
		return t.Net.GatherBatch(t.train, order, first, rows)
	}
	return t.gatherDistorted(order, first, rows, t.done+1)
}

// Distortions returns the first images of the training set (at most the
// batch) as the device gathers them: per image, the original followed by
// its distortion in epochs 1 to epochs, each Len(pixels) floats in [0, 1].
// It uses the network's input buffer, which every step overwrites, so it
// changes nothing of the run; it needs an augmented Config.
func (t *Trainer) Distortions(images, epochs int) ([][][]float32, error) {
	if t.cfg.Augment.Kind == AugmentNone {
		return nil, fmt.Errorf("distortions: the run has no augmentation")
	}
	rows, px := min(images, t.batch, t.train.n), t.train.pixels
	out := make([][][]float32, rows)
	for e := 0; e <= epochs; e++ {
		var err error
		if e == 0 {
			err = t.Net.GatherBatch(t.train, t.train.order, 0, rows)
		} else {
			err = t.gatherDistorted(t.train.order, 0, rows, e)
		}
		if err != nil {
			return nil, fmt.Errorf("distortions of epoch %d: %w", e, err)
		}
		x, err := t.Net.Read(t.Net.Z[0], rows*px)
		if err != nil {
			return nil, fmt.Errorf("distortions of epoch %d: %w", e, err)
		}
		for r := range rows {
			out[r] = append(out[r], x[r*px:(r+1)*px])
		}
	}
	return out, nil
}
