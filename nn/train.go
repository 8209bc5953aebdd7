package nn

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/mnist-cl/mnist-cl/cl"
	"github.com/mnist-cl/mnist-cl/kernels"
	"github.com/mnist-cl/mnist-cl/mnist"
)

// syncEvery is how many steps the host may queue before it waits for the
// device.
const syncEvery = 64

// Epoch is what one epoch of training measured. An epoch resumed from a
// checkpoint taken inside it reports on the steps run since.
type Epoch struct {
	Epoch         int     `json:"epoch"`
	TrainLoss     float64 `json:"train_loss"`
	TrainAccuracy float64 `json:"train_accuracy"`
	ValLoss       float64 `json:"val_loss"`
	ValAccuracy   float64 `json:"val_accuracy"`
	LR            float64 `json:"lr"` // at the epoch's last step
	Seconds       float64 `json:"seconds"`
	ImagesPerSec  float64 `json:"images_per_sec"`
}

// Progress is what the Trainer reports while an epoch runs, every syncEvery
// steps and at the epoch's end.
type Progress struct {
	Epoch, Step, Steps int     // steps done of this epoch's Steps
	Images             int     // images trained on in this epoch so far
	Loss               float64 // mean loss over this epoch's steps so far
	ImagesPerSec       float64
	Elapsed            time.Duration
}

// Trainer runs SGD epochs on a Network over data kept on the device.
type Trainer struct {
	cfg   Config
	batch int // cfg.Batch, or the largest set's size when that is smaller
	rt    *Runtime
	Net   *Network
	train *DeviceSet
	val   *DeviceSet
	test  *DeviceSet
	perm  *cl.Buffer // this epoch's shuffle of the training set
	stats *cl.Buffer // per-batch loss and correct sums, read once per pass

	// done is the number of finished epochs and step the number of steps
	// run of the next one: a checkpoint taken inside an epoch resumes there.
	done, step int
	permFor    int // the epoch (from 1) whose shuffle t.perm holds, or 0

	// Progress, when set, is called from Epoch every syncEvery steps.
	Progress func(Progress)
	// WarmUp is how long the first launch of every kernel took (see warmUp).
	WarmUp time.Duration
}

// NewTrainer uploads split to the device and builds the network of cfg.
func NewTrainer(rt *Runtime, split *mnist.Split, cfg Config) (*Trainer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := rt.CheckFits(NeedFor(split, cfg)); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	t := &Trainer{cfg: cfg, rt: rt}
	var err error
	if t.train, err = rt.Upload(split.Train); err != nil {
		return nil, fmt.Errorf("training set: %w", err)
	}
	if t.val, err = rt.Upload(split.Validation); err != nil {
		t.Release()
		return nil, fmt.Errorf("validation set: %w", err)
	}
	if t.test, err = rt.Upload(split.Test); err != nil {
		t.Release()
		return nil, fmt.Errorf("test set: %w", err)
	}
	t.batch = cfg.StepBatch(split)
	batches := 0
	for _, d := range []*DeviceSet{t.train, t.val, t.test} {
		batches = max(batches, (d.n+t.batch-1)/t.batch)
	}
	if t.stats, err = rt.floats("batch statistics", 2*batches); err != nil {
		t.Release()
		return nil, err
	}
	// int32 indices: four bytes each, like the floats the helper counts.
	if t.perm, err = rt.floats("shuffle", split.Train.Len()); err != nil {
		t.Release()
		return nil, err
	}
	sizes := Sizes(split.Train.Pixels(), cfg.Hidden, mnist.NumClasses)
	if t.Net, err = NewNetwork(rt, sizes, t.batch, cfg.Seed); err != nil {
		t.Release()
		return nil, err
	}
	t.Net.Loss = cfg.Loss
	if cfg.Momentum != 0 {
		if err := t.Net.AllocVelocity(); err != nil {
			t.Release()
			return nil, err
		}
	}
	if err := t.warmUp(); err != nil {
		t.Release()
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	return t, nil
}

// Config is the configuration the Trainer runs.
func (t *Trainer) Config() Config { return t.cfg }

// Position is the number of finished epochs and of steps run of the next.
func (t *Trainer) Position() (epochs, steps int) { return t.done, t.step }

// StepsPerEpoch is the number of steps of one pass over the training set.
func (t *Trainer) StepsPerEpoch() int { return (t.train.n + t.batch - 1) / t.batch }

// warmUp runs every kernel of a step once with a learning rate of 0 and no
// momentum, so the weights stay bit for bit what the seed made them
// (W - 0*dW = W for finite dW) and the velocities stay zero. PoCL compiles a
// kernel at its first launch, which would otherwise land in the first
// epoch's time; WarmUp reports how long it took. It does so at every row
// count an epoch launches with (warmRows): PoCL compiles again for each
// work-group size, and a small batch runs other kernels (dense where a full
// one skips zeros). The training set's last batch alone had made the first
// epoch of a run with an empty PoCL cache take 1.3 s against 0.6.
func (t *Trainer) warmUp() error {
	start := time.Now()
	for _, w := range t.warmRows() {
		if err := t.gatherTrain(t.train.order, 0, w.rows); err != nil {
			return err
		}
		if err := t.Net.Forward(w.rows); err != nil {
			return err
		}
		if err := t.Net.Stats(w.rows, t.stats, 0); err != nil {
			return err
		}
		if w.train {
			if err := t.Net.BackwardStep(w.rows, kernels.Hyper{}); err != nil {
				return err
			}
		}
	}
	err := t.rt.Queue.Finish()
	t.WarmUp = time.Since(start)
	return err
}

// warmRow is a row count an epoch launches a batch with, and whether a
// training step (not only a forward pass) runs at it.
type warmRow struct {
	rows  int
	train bool
}

// warmRows are the row counts of an epoch's batches: a full one and the
// training set's last, with their steps, and the evaluation sets' last
// ones, forward only; each once, and at most the training set's size,
// whose first images the warm-up runs on.
func (t *Trainer) warmRows() []warmRow {
	var out []warmRow
	add := func(n int, train bool) {
		rows := min(t.batch, n, t.train.n)
		if rows == 0 {
			return
		}
		for i, w := range out {
			if w.rows == rows {
				out[i].train = w.train || train
				return
			}
		}
		out = append(out, warmRow{rows, train})
	}
	add(t.batch, true)
	add(t.train.n%t.batch, true)
	add(t.val.n%t.batch, false)
	add(t.test.n%t.batch, false)
	return out
}

// Release frees the network and the device copies of the data.
func (t *Trainer) Release() {
	if t.Net != nil {
		t.Net.Release()
	}
	for _, d := range []*DeviceSet{t.train, t.val, t.test} {
		if d != nil {
			d.Release()
		}
	}
	t.perm.Release()
	t.stats.Release()
}

// shuffle uploads the permutation of epoch (from 1). It is drawn from the
// seed and the epoch number alone, so an epoch resumed in another process
// walks the same batches.
func (t *Trainer) shuffle(epoch int) error {
	if t.permFor == epoch {
		return nil
	}
	n := t.train.n
	rng := rand.New(rand.NewPCG(t.cfg.Seed, 0x5eed<<32|uint64(epoch)))
	perm := make([]int32, n)
	for i, p := range rng.Perm(n) {
		perm[i] = int32(p)
	}
	if err := t.rt.Queue.WriteInt32(t.perm, 0, perm); err != nil {
		return fmt.Errorf("upload shuffle: %w", err)
	}
	t.permFor = epoch
	return nil
}

// Epoch trains the rest of the current pass over the shuffled training set
// (all of it, unless a checkpoint stopped inside it), then measures the
// validation set. Per step it queues the gather, forward, backward and update
// kernels without waiting (the host waits every syncEvery steps); the loss
// sums come back at those waits.
//
// When ctx is cancelled, Epoch returns after the step in flight with an error
// wrapping ctx.Err(); Position then says where to resume, and the network
// holds the weights after that step.
func (t *Trainer) Epoch(ctx context.Context) (Epoch, error) {
	e := Epoch{Epoch: t.done + 1}
	start := time.Now()
	n, steps := t.train.n, t.StepsPerEpoch()
	total := steps * t.cfg.Epochs
	if err := t.shuffle(e.Epoch); err != nil {
		return e, fmt.Errorf("epoch %d: %w", e.Epoch, err)
	}
	from := t.step
	images := 0
	var lr float32
	report := func() error {
		if t.Progress == nil {
			return nil
		}
		loss, _, _, err := t.sums(from, t.step)
		if err != nil {
			return err
		}
		el := time.Since(start)
		t.Progress(Progress{Epoch: e.Epoch, Step: t.step, Steps: steps, Images: images,
			Loss: loss / float64(max(images, 1)), ImagesPerSec: float64(images) / el.Seconds(), Elapsed: el})
		return nil
	}
	for t.step < steps {
		if err := ctx.Err(); err != nil {
			return e, t.interrupted(e.Epoch, from, err)
		}
		first := t.step * t.batch
		rows := min(t.batch, n-first)
		lr = t.cfg.LRAt(t.done*steps+t.step, steps, total)
		if err := t.runStep(first, rows, t.step, lr); err != nil {
			return e, fmt.Errorf("epoch %d step %d: %w", e.Epoch, t.step+1, err)
		}
		t.step++
		images += rows
		// Let the host run at most syncEvery steps ahead of the device, so an
		// interrupt takes effect within a fraction of a second and the queue
		// holds a bounded number of commands. One finish per 64 steps costs
		// about 0.1% of an epoch.
		if t.step%syncEvery == 0 {
			if err := t.rt.Queue.Finish(); err != nil {
				return e, fmt.Errorf("epoch %d step %d: %w", e.Epoch, t.step, err)
			}
			if err := report(); err != nil {
				return e, fmt.Errorf("epoch %d: %w", e.Epoch, err)
			}
		}
	}
	loss, correct, bad, err := t.sums(from, steps)
	if err != nil {
		return e, fmt.Errorf("epoch %d: %w", e.Epoch, err)
	}
	e.TrainLoss, e.TrainAccuracy, e.LR = loss/float64(images), correct/float64(images), float64(lr)
	if bad >= 0 {
		// Stay at this position: the network is not worth a checkpoint.
		return e, fmt.Errorf("training diverged at epoch %d step %d (the loss is not finite); try a smaller --lr than %v",
			e.Epoch, bad+1, t.cfg.LR)
	}
	if err := report(); err != nil {
		return e, fmt.Errorf("epoch %d: %w", e.Epoch, err)
	}
	train := time.Since(start)
	t.done, t.step = t.done+1, 0
	if e.ValLoss, e.ValAccuracy, err = t.Evaluate(t.val); err != nil {
		return e, fmt.Errorf("epoch %d: validation: %w", e.Epoch, err)
	}
	e.Seconds = time.Since(start).Seconds()
	e.ImagesPerSec = float64(images) / train.Seconds()
	return e, nil
}

// interrupted is Epoch's error when ctx ended it after step t.step; from
// is the epoch's first step in this process.
func (t *Trainer) interrupted(epoch, from int, cause error) error {
	// The queued steps finish before anything is read back.
	if err := t.rt.Queue.Finish(); err != nil {
		return err
	}
	// A network that diverged since the last check must not be saved as if
	// it were the run's progress.
	if _, _, bad, err := t.sums(from, t.step); err != nil {
		return fmt.Errorf("epoch %d: %w", epoch, err)
	} else if bad >= 0 {
		return fmt.Errorf("training diverged at epoch %d step %d (the loss is not finite); try a smaller --lr than %v",
			epoch, bad+1, t.cfg.LR)
	}
	return fmt.Errorf("interrupted during epoch %d after step %d: %w", epoch, t.step, cause)
}

func (t *Trainer) runStep(first, rows, slot int, lr float32) error {
	net := t.Net
	if err := t.gatherTrain(t.perm, first, rows); err != nil {
		return err
	}
	if err := net.Forward(rows); err != nil {
		return err
	}
	if err := net.Stats(rows, t.stats, slot); err != nil {
		return err
	}
	if err := net.BackwardStep(rows, t.cfg.Hyper(lr)); err != nil {
		return err
	}
	// Hand the step to the device now rather than when the epoch ends.
	return t.rt.Queue.Flush()
}

// sums reads slots [from, to) of the statistics buffer and adds them. bad is
// the first slot whose loss is NaN or infinite, or -1.
func (t *Trainer) sums(from, to int) (loss, correct float64, bad int, err error) {
	bad = -1
	if to <= from {
		return 0, 0, bad, nil
	}
	s := make([]float32, 2*(to-from))
	if err := t.rt.Queue.ReadFloat32(t.stats, 2*from, s); err != nil {
		return 0, 0, -1, fmt.Errorf("read batch statistics: %w", err)
	}
	for i := 0; i < to-from; i++ {
		l := float64(s[2*i])
		if bad < 0 && (math.IsNaN(l) || math.IsInf(l, 0)) {
			bad = from + i
		}
		loss += l
		correct += float64(s[2*i+1])
	}
	return loss, correct, bad, nil
}

// Evaluate returns the mean loss and the accuracy of the network on d, in
// file order.
func (t *Trainer) Evaluate(d *DeviceSet) (loss, accuracy float64, err error) {
	batches := 0
	for first := 0; first < d.n; first += t.batch {
		rows := min(t.batch, d.n-first)
		if err := t.Net.GatherBatch(d, d.order, first, rows); err != nil {
			return 0, 0, err
		}
		if err := t.Net.Forward(rows); err != nil {
			return 0, 0, err
		}
		if err := t.Net.Stats(rows, t.stats, batches); err != nil {
			return 0, 0, err
		}
		batches++
	}
	sum, correct, _, err := t.sums(0, batches)
	if err != nil {
		return 0, 0, err
	}
	return sum / float64(d.n), correct / float64(d.n), nil
}

// Test evaluates the test set.
func (t *Trainer) Test() (loss, accuracy float64, err error) { return t.Evaluate(t.test) }
