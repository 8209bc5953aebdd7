package nn

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/mnist-cl/mnist-cl/internal/atomicfile"
	"github.com/mnist-cl/mnist-cl/internal/safetensors"
	"github.com/mnist-cl/mnist-cl/kernels"
	"github.com/mnist-cl/mnist-cl/mnist"
)

// Checkpoint is a training run between two steps: the parameters, the
// optimiser's velocities and where in the run it stopped, which is enough to
// evaluate the network and to resume it bit for bit.
type Checkpoint struct {
	Config Config
	Sizes  []int
	// Epoch is the number of finished epochs and Step the number of steps
	// run of the next one.
	Epoch, Step int
	// Train, Validation and Test are the sizes of the split it was trained
	// on; resuming on other data is refused.
	Train, Validation, Test int
	// W, B (and VW, VB with momentum) are laid out as Network.Params:
	// index 0 unused, W[l] row-major sizes[l-1] x sizes[l].
	W, B, VW, VB [][]float32
	// RunRecord is the JSON object of what produced the run (the command's
	// run record: device, driver, kernel sources, flags), kept as text under
	// the metadata key "run_record"; empty writes no key. Readers keep it and
	// use none of it, so a checkpoint without one reads as before.
	RunRecord string
	// ElasticNoise is kernels.ElasticNoise of the build that wrote an
	// elastic run, 0 where the file does not say (written before the
	// numbering): Restore refuses to resume another, whose fields would
	// differ from the run's.
	ElasticNoise int
}

// checkpointFormat is the __metadata__ "format" of every checkpoint; a new
// layout gets a new number, and readers refuse numbers they don't know.
const checkpointFormat = "mnist-cl/1"

// runRecordKey is the metadata key of Checkpoint.RunRecord. Adding it kept
// the format's number: readers of mnist-cl/1 ignore keys they do not know.
const runRecordKey = "run_record"

// Checkpoint reads the network, its velocities and the position back from
// the device (waiting for queued steps first).
func (t *Trainer) Checkpoint() (*Checkpoint, error) {
	c := &Checkpoint{Config: t.cfg, Sizes: t.Net.Sizes(), Epoch: t.done, Step: t.step,
		Train: t.train.n, Validation: t.val.n, Test: t.test.n}
	if t.cfg.Augment.Kind.HasElastic() {
		c.ElasticNoise = kernels.ElasticNoise
	}
	var err error
	if c.W, c.B, err = t.Net.Params(); err != nil {
		return nil, err
	}
	if c.VW, c.VB, err = t.Net.Velocity(); err != nil {
		return nil, err
	}
	if !finite(c.W, c.B, c.VW, c.VB) {
		return nil, fmt.Errorf("training diverged by epoch %d step %d (the parameters are not finite): not saved; try a smaller --lr than %v",
			c.Epoch+1, c.Step, t.cfg.LR)
	}
	return c, nil
}

// Restore puts a checkpoint's parameters, velocities and position into a
// Trainer built with the checkpoint's Config on the same split.
func (t *Trainer) Restore(c *Checkpoint) error {
	if got, want := FormatSizes(c.Sizes), FormatSizes(t.Net.Sizes()); got != want {
		return fmt.Errorf("checkpoint: network %s, this run's is %s", got, want)
	}
	if c.Train != t.train.n || c.Validation != t.val.n || c.Test != t.test.n {
		return fmt.Errorf("checkpoint: trained on %d/%d/%d train/validation/test images, this data has %d/%d/%d",
			c.Train, c.Validation, c.Test, t.train.n, t.val.n, t.test.n)
	}
	if c.Step >= t.StepsPerEpoch() {
		return fmt.Errorf("checkpoint: step %d of an epoch of %d steps", c.Step, t.StepsPerEpoch())
	}
	if t.cfg.Augment.Kind.HasElastic() && c.ElasticNoise != kernels.ElasticNoise {
		return fmt.Errorf("checkpoint: its elastic noise is numbering %d, this build draws numbering %d: "+
			"the resumed run would not continue it bit for bit; start it again", c.ElasticNoise, kernels.ElasticNoise)
	}
	// Everything is checked before anything is uploaded, so that an error
	// leaves the Trainer as it was rather than half restored.
	if (c.VW != nil) != (t.cfg.Momentum != 0) {
		return fmt.Errorf("checkpoint: velocities and momentum %v do not go together", t.cfg.Momentum)
	}
	if err := t.Net.checkLayers(c.W, c.B, ""); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if c.VW != nil {
		if err := t.Net.checkLayers(c.VW, c.VB, "velocity of "); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
	}
	if err := t.Net.SetParams(c.W, c.B); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if c.VW != nil {
		if err := t.Net.SetVelocity(c.VW, c.VB); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
	}
	t.done, t.step = c.Epoch, c.Step
	return nil
}

// Finished reports whether the run has done all its epochs.
func (c *Checkpoint) Finished() bool { return c.Epoch >= c.Config.Epochs && c.Step == 0 }

// File lays the checkpoint out as safetensors in PyTorch's names and shapes:
// fc1.weight is [out, in] (W1 transposed, as nn.Linear keeps it), fc1.bias
// [out]; velocities are optimizer.fc1.weight.velocity and so on.
func (c *Checkpoint) File() *safetensors.File {
	cfg := c.Config
	f32 := func(v float32) string { return strconv.FormatFloat(float64(v), 'g', -1, 32) }
	f := &safetensors.File{Metadata: map[string]string{
		"format":       checkpointFormat,
		"sizes":        FormatSizes(c.Sizes),
		"epoch":        strconv.Itoa(c.Epoch),
		"step":         strconv.Itoa(c.Step),
		"epochs":       strconv.Itoa(cfg.Epochs),
		"batch":        strconv.Itoa(cfg.Batch),
		"seed":         strconv.FormatUint(cfg.Seed, 10),
		"loss":         string(cfg.Loss),
		"optimizer":    cfg.Optimizer(),
		"lr":           f32(cfg.LR),
		"momentum":     f32(cfg.Momentum),
		"weight_decay": f32(cfg.WeightDecay),
		"schedule":     string(cfg.Schedule),
		"step_every":   strconv.Itoa(cfg.StepEvery),
		"step_gamma":   f32(cfg.StepGamma),
		"split":        fmt.Sprintf("%d/%d/%d", c.Train, c.Validation, c.Test),
	}}
	if c.RunRecord != "" {
		f.Metadata[runRecordKey] = c.RunRecord
	}
	// Only an augmented run records its distortion: a run without one
	// writes the file it wrote before augmentation existed.
	if a := cfg.Augment; a.Kind != AugmentNone {
		f.Metadata["augment"] = a.Kind.String()
		f.Metadata["augment_rotate"], f.Metadata["augment_scale"], f.Metadata["augment_shift"] = f32(a.Rotate), f32(a.Scale), f32(a.Shift)
		if a.Kind.HasElastic() {
			f.Metadata["augment_sigma"], f.Metadata["augment_alpha"] = f32(a.Sigma), f32(a.Alpha)
			if c.ElasticNoise != 0 {
				f.Metadata["augment_noise"] = strconv.Itoa(c.ElasticNoise)
			}
		}
	}
	add := func(prefix, suffix string, w, b [][]float32) {
		for l := 1; l < len(c.Sizes); l++ {
			in, out := c.Sizes[l-1], c.Sizes[l]
			f.Tensors = append(f.Tensors,
				safetensors.Tensor{Name: fmt.Sprintf("%sfc%d.weight%s", prefix, l, suffix), Shape: []int{out, in}, Data: transpose(w[l], in, out)},
				safetensors.Tensor{Name: fmt.Sprintf("%sfc%d.bias%s", prefix, l, suffix), Shape: []int{out}, Data: b[l]})
		}
	}
	add("", "", c.W, c.B)
	if c.VW != nil {
		add("optimizer.", ".velocity", c.VW, c.VB)
	}
	return f
}

// transpose returns the cols x rows transpose of a row-major rows x cols m.
func transpose(m []float32, rows, cols int) []float32 {
	t := make([]float32, len(m))
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			t[j*rows+i] = m[i*cols+j]
		}
	}
	return t
}

// CheckpointFromFile checks a safetensors file against the checkpoint layout
// and returns it. Every mismatch (a missing or extra tensor, a wrong shape,
// metadata that does not parse or does not validate) is an error naming it.
func CheckpointFromFile(f *safetensors.File) (*Checkpoint, error) {
	c, err := checkpointFromMetadata(f.Metadata)
	if err != nil {
		return nil, err
	}
	if err := c.readTensors(f); err != nil {
		return nil, err
	}
	return c, nil
}

// checkpointFromMetadata reads and checks the run's settings and position.
func checkpointFromMetadata(m map[string]string) (*Checkpoint, error) {
	if m["format"] != checkpointFormat {
		return nil, fmt.Errorf("not a mnist-cl checkpoint (metadata format %q, want %q)", m["format"], checkpointFormat)
	}
	p := metaParser{m: m}
	c := &Checkpoint{RunRecord: m[runRecordKey]}
	c.Sizes = p.sizes("sizes")
	c.Epoch, c.Step = p.int("epoch"), p.int("step")
	cfg := Config{Epochs: p.int("epochs"), Batch: p.int("batch"), Seed: p.uint("seed"),
		Loss: Loss(m["loss"]), LR: p.float("lr"), Momentum: p.float("momentum"),
		WeightDecay: p.float("weight_decay"), Schedule: Schedule(m["schedule"]),
		StepEvery: p.int("step_every"), StepGamma: p.float("step_gamma")}
	switch opt := m["optimizer"]; opt {
	case "sgd", "momentum":
	case "nesterov":
		cfg.Nesterov = true
	default:
		p.fail("optimizer", opt)
	}
	cfg.Augment = p.augment()
	if _, ok := m["augment_noise"]; ok && cfg.Augment.Kind.HasElastic() {
		c.ElasticNoise = p.int("augment_noise")
	}
	if _, err := fmt.Sscanf(m["split"], "%d/%d/%d", &c.Train, &c.Validation, &c.Test); err != nil {
		p.fail("split", m["split"])
	}
	if p.err != nil {
		return nil, p.err
	}
	if len(c.Sizes) < 3 {
		return nil, fmt.Errorf("checkpoint: sizes %v: need inputs, hidden layers and outputs", c.Sizes)
	}
	// Every command that reads a checkpoint scores its outputs as digits
	// (the labels index the logits), so another width is not a network of
	// ours, whatever else the file holds.
	if out := c.Sizes[len(c.Sizes)-1]; out != mnist.NumClasses {
		return nil, fmt.Errorf("checkpoint: network %s has %d outputs, not one per digit (%d)", FormatSizes(c.Sizes), out, mnist.NumClasses)
	}
	cfg.Hidden = c.Sizes[1 : len(c.Sizes)-1]
	c.Config = cfg
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	if cfg.Optimizer() != m["optimizer"] {
		return nil, fmt.Errorf("checkpoint: optimizer %q with momentum %v", m["optimizer"], cfg.Momentum)
	}
	if c.Epoch < 0 || c.Step < 0 || c.Epoch > cfg.Epochs || (c.Epoch == cfg.Epochs && c.Step > 0) {
		return nil, fmt.Errorf("checkpoint: position epoch %d step %d outside a run of %d epochs", c.Epoch, c.Step, cfg.Epochs)
	}
	if c.Train <= 0 || c.Validation <= 0 || c.Test <= 0 {
		return nil, fmt.Errorf("checkpoint: split %s: every part needs images", m["split"])
	}
	return c, nil
}

// readTensors reads the parameters, and the velocities of a run with
// momentum, refusing any tensor the network does not have.
func (c *Checkpoint) readTensors(f *safetensors.File) error {
	cfg := c.Config
	want := map[string]bool{}
	get := func(name string, shape ...int) []float32 {
		want[name] = true
		t, ok := f.Get(name)
		if !ok {
			return nil
		}
		if fmt.Sprint(t.Shape) != fmt.Sprint(shape) {
			return nil
		}
		return t.Data
	}
	read := func(prefix, suffix string) (w, b [][]float32, err error) {
		L := len(c.Sizes) - 1
		w, b = make([][]float32, L+1), make([][]float32, L+1)
		for l := 1; l <= L; l++ {
			in, out := c.Sizes[l-1], c.Sizes[l]
			wn, bn := fmt.Sprintf("%sfc%d.weight%s", prefix, l, suffix), fmt.Sprintf("%sfc%d.bias%s", prefix, l, suffix)
			wt, bt := get(wn, out, in), get(bn, out)
			if wt == nil {
				return nil, nil, fmt.Errorf("checkpoint: tensor %s missing or not of shape [%d %d] (network %s)", wn, out, in, FormatSizes(c.Sizes))
			}
			if bt == nil {
				return nil, nil, fmt.Errorf("checkpoint: tensor %s missing or not of shape [%d] (network %s)", bn, out, FormatSizes(c.Sizes))
			}
			w[l], b[l] = transpose(wt, out, in), bt
		}
		return w, b, nil
	}
	var err error
	if c.W, c.B, err = read("", ""); err != nil {
		return err
	}
	if cfg.Momentum != 0 {
		if c.VW, c.VB, err = read("optimizer.", ".velocity"); err != nil {
			return err
		}
	}
	for _, t := range f.Tensors {
		if !want[t.Name] {
			return fmt.Errorf("checkpoint: unexpected tensor %s for network %s with optimizer %s", t.Name, FormatSizes(c.Sizes), cfg.Optimizer())
		}
	}
	// Train never writes one (Checkpoint refuses a diverged run), so a NaN
	// or an infinity means a damaged or foreign file; every reader would
	// otherwise answer with NaN probabilities.
	if !finite(c.W, c.B, c.VW, c.VB) {
		return fmt.Errorf("checkpoint: a parameter is not a finite number (a damaged file?)")
	}
	return nil
}

// metaParser reads metadata values, keeping the first error.
type metaParser struct {
	m   map[string]string
	err error
}

func (p *metaParser) fail(key, v string) {
	if p.err == nil {
		if _, ok := p.m[key]; !ok {
			p.err = fmt.Errorf("checkpoint: metadata lacks %q", key)
			return
		}
		p.err = fmt.Errorf("checkpoint: metadata %s = %q does not parse", key, v)
	}
}

func (p *metaParser) int(key string) int {
	v, err := strconv.Atoi(p.m[key])
	if err != nil {
		p.fail(key, p.m[key])
	}
	return v
}

func (p *metaParser) uint(key string) uint64 {
	v, err := strconv.ParseUint(p.m[key], 10, 64)
	if err != nil {
		p.fail(key, p.m[key])
	}
	return v
}

func (p *metaParser) float(key string) float32 {
	v, err := strconv.ParseFloat(p.m[key], 32)
	if err != nil {
		p.fail(key, p.m[key])
	}
	return float32(v)
}

// augment reads the distortion of an augmented run; a file without the
// "augment" key is a run without one (every file before augmentation).
func (p *metaParser) augment() Augment {
	kind, ok := p.m["augment"]
	if !ok {
		return Augment{}
	}
	k, err := ParseAugmentKind(kind)
	if err != nil {
		p.fail("augment", kind)
	}
	a := Augment{Kind: k, Rotate: p.float("augment_rotate"), Scale: p.float("augment_scale"), Shift: p.float("augment_shift")}
	if k.HasElastic() {
		a.Sigma, a.Alpha = p.float("augment_sigma"), p.float("augment_alpha")
	}
	return a
}

func (p *metaParser) sizes(key string) []int {
	var out []int
	for _, s := range strings.Split(p.m[key], "-") {
		v, err := strconv.Atoi(s)
		if err != nil || v <= 0 || v > MaxSize {
			p.fail(key, p.m[key])
			return nil
		}
		out = append(out, v)
	}
	return out
}

// FormatSizes writes a network's widths as 784-512-256-10, for messages.
func FormatSizes(s []int) string {
	parts := make([]string, len(s))
	for i, v := range s {
		parts[i] = strconv.Itoa(v)
	}
	return strings.Join(parts, "-")
}

// WriteCheckpoint writes c to path atomically: a crash or a signal at any
// moment leaves either the old file or the new one, never a part.
func WriteCheckpoint(path string, c *Checkpoint) error {
	f := c.File()
	if err := atomicfile.Write(path, 0o644, func(w io.Writer) error { return safetensors.Write(w, f) }); err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	return nil
}

// ReadCheckpoint reads and checks a checkpoint file.
func ReadCheckpoint(path string) (*Checkpoint, error) {
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read checkpoint %s: %w", path, err)
	}
	c, err := CheckpointFromFile(f)
	if err != nil {
		return nil, fmt.Errorf("read checkpoint %s: %w", path, err)
	}
	return c, nil
}

// NewNetworkFrom builds a network on rt with a checkpoint's parameters and
// loss, for batches of up to maxBatch rows.
func NewNetworkFrom(rt *Runtime, c *Checkpoint, maxBatch int) (*Network, error) {
	n, err := NewNetwork(rt, c.Sizes, maxBatch, c.Config.Seed)
	if err != nil {
		return nil, err
	}
	if err := n.SetParams(c.W, c.B); err != nil {
		n.Release()
		return nil, err
	}
	n.Loss = c.Config.Loss
	return n, nil
}

// finite reports whether every value of every layer is a finite number.
func finite(sets ...[][]float32) bool {
	for _, layers := range sets {
		for _, l := range layers {
			for _, v := range l {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					return false
				}
			}
		}
	}
	return true
}
