package nn

import (
	"fmt"
	"math"

	"github.com/mnist-cl/mnist-cl/kernels"
)

// Loss names the loss a network is trained on.
type Loss string

const (
	// CrossEntropy is the lecture's loss: dZ3 = Yp - Y.
	CrossEntropy Loss = "xent"
	// MSE is 1/2 ||Yp - Y||^2 on the softmax probabilities, the lecture's
	// open question; its dZ3 goes through the softmax Jacobian.
	MSE Loss = "mse"
)

// ParseLoss accepts "xent" (or "cross-entropy") and "mse".
func ParseLoss(s string) (Loss, error) {
	switch s {
	case "xent", "cross-entropy", "crossentropy":
		return CrossEntropy, nil
	case "mse", "l2":
		return MSE, nil
	}
	return "", fmt.Errorf("unknown loss %q (want xent or mse)", s)
}

// Schedule names how the learning rate changes over a run.
type Schedule string

const (
	// Constant keeps the learning rate.
	Constant Schedule = "constant"
	// StepDecay multiplies it by StepGamma every StepEvery epochs.
	StepDecay Schedule = "step"
	// Cosine lowers it along half a cosine from LR at the first step to
	// zero after the last: lr_t = LR (1 + cos(pi t/T)) / 2.
	Cosine Schedule = "cosine"
)

// ParseSchedule accepts "constant", "step" and "cosine".
func ParseSchedule(s string) (Schedule, error) {
	for _, v := range []Schedule{Constant, StepDecay, Cosine} {
		if s == string(v) {
			return v, nil
		}
	}
	return "", fmt.Errorf("unknown schedule %q (want constant, step or cosine)", s)
}

// Config is what a training run is made of. The zero value is not useful;
// start from DefaultConfig (the lecture's own run is DefaultConfig with
// plain SGD at lr 0.2 for 10 epochs, see README.md).
type Config struct {
	Hidden []int // widths of the ReLU layers
	Batch  int   // rows per step; the last step of an epoch may be short
	Epochs int
	Seed   uint64 // weights and every epoch's shuffle derive from it
	Loss   Loss

	LR          float32 // learning rate at the first step
	Momentum    float32 // 0 is the lecture's plain SGD
	Nesterov    bool
	WeightDecay float32 // L2 penalty on weights (not biases), added to dW
	Schedule    Schedule
	StepEvery   int     // epochs between decays of StepDecay
	StepGamma   float32 // factor of each decay of StepDecay

	// Augment distorts the training images as they are gathered; the zero
	// value trains on them as they are.
	Augment Augment
}

// DefaultConfig is the lecture's 784-512-256-10 network trained with Nesterov
// momentum, a little weight decay and a cosine schedule: 98.3% test accuracy
// or more (see README.md for the runs behind that figure).
func DefaultConfig() Config {
	return Config{Hidden: []int{512, 256}, Batch: 128, Epochs: 15, Seed: 1, Loss: CrossEntropy,
		LR: 0.1, Momentum: 0.9, Nesterov: true, WeightDecay: 5e-4,
		Schedule: Cosine, StepEvery: 5, StepGamma: 0.1}
}

// MaxSize bounds a layer width and a batch: kernels index with 32-bit ints,
// and a product of two sizes must stay below 2^31 (NewNetwork checks those).
const MaxSize = 1 << 24

// withDefaults fills the settings whose zero value means the lecture's
// choice: cross-entropy and a constant learning rate.
func (c Config) withDefaults() Config {
	if c.Loss == "" {
		c.Loss = CrossEntropy
	}
	if c.Schedule == "" {
		c.Schedule = Constant
	}
	return c
}

// Validate reports the first setting that cannot train. An empty Loss or
// Schedule stands for CrossEntropy and Constant.
func (c Config) Validate() error {
	c = c.withDefaults()
	if len(c.Hidden) == 0 {
		return fmt.Errorf("hidden: need at least one layer")
	}
	for _, h := range c.Hidden {
		if h <= 0 || h > MaxSize {
			return fmt.Errorf("hidden: layer widths must be between 1 and %d, got %v", MaxSize, c.Hidden)
		}
	}
	if c.Batch <= 0 || c.Batch > MaxSize {
		return fmt.Errorf("batch: must be between 1 and %d, got %d", MaxSize, c.Batch)
	}
	if !(c.LR > 0) || math.IsInf(float64(c.LR), 0) {
		return fmt.Errorf("lr: must be a positive finite number, got %v", c.LR)
	}
	if c.Epochs <= 0 {
		return fmt.Errorf("epochs: must be positive, got %d", c.Epochs)
	}
	if _, err := ParseLoss(string(c.Loss)); err != nil {
		return fmt.Errorf("loss: %w", err)
	}
	if !(c.Momentum >= 0 && c.Momentum < 1) {
		return fmt.Errorf("momentum: must be in [0, 1), got %v", c.Momentum)
	}
	if c.Nesterov && c.Momentum == 0 {
		return fmt.Errorf("nesterov: needs a momentum above 0")
	}
	if !(c.WeightDecay >= 0) || math.IsInf(float64(c.WeightDecay), 0) {
		return fmt.Errorf("weight-decay: must be a finite number >= 0, got %v", c.WeightDecay)
	}
	if _, err := ParseSchedule(string(c.Schedule)); err != nil {
		return fmt.Errorf("schedule: %w", err)
	}
	if err := c.Augment.validate(); err != nil {
		return err
	}
	// The step schedule's settings are checked wherever they are given, not
	// only with that schedule: a checkpoint keeps them, and one holding a
	// NaN could never be resumed (NaN equals nothing, itself included).
	if (c.Schedule == StepDecay || c.StepEvery != 0) && c.StepEvery <= 0 {
		return fmt.Errorf("step-every: must be positive, got %d", c.StepEvery)
	}
	if (c.Schedule == StepDecay || c.StepGamma != 0) && !(c.StepGamma > 0 && c.StepGamma <= 1) {
		return fmt.Errorf("step-gamma: must be in (0, 1], got %v", c.StepGamma)
	}
	return nil
}

// Optimizer names the update rule, for reports and checkpoints.
func (c Config) Optimizer() string {
	switch {
	case c.Momentum == 0:
		return "sgd"
	case c.Nesterov:
		return "nesterov"
	}
	return "momentum"
}

// LRAt is the learning rate of step t (counted from 0 over the whole run)
// of a run of total steps, stepsPerEpoch of them per epoch. It depends on
// nothing else, so a resumed run meets the same rates.
func (c Config) LRAt(t, stepsPerEpoch, total int) float32 {
	switch c.Schedule {
	case StepDecay:
		decays := t / stepsPerEpoch / c.StepEvery
		return float32(float64(c.LR) * math.Pow(float64(c.StepGamma), float64(decays)))
	case Cosine:
		return float32(float64(c.LR) * (1 + math.Cos(math.Pi*float64(t)/float64(total))) / 2)
	}
	return c.LR
}

// Hyper is the optimiser's settings at learning rate lr.
func (c Config) Hyper(lr float32) kernels.Hyper {
	return kernels.Hyper{LR: lr, Momentum: c.Momentum, WeightDecay: c.WeightDecay, Nesterov: c.Nesterov}
}
