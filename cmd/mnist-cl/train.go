package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"runtime/debug"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/mnist-cl/mnist-cl/internal/atomicfile"
	"github.com/mnist-cl/mnist-cl/internal/plots"
	"github.com/mnist-cl/mnist-cl/mnist"
	"github.com/mnist-cl/mnist-cl/nn"
)

// trainFlags are train's own flags beside the network's and the device's.
type trainFlags struct {
	epochs    int
	metrics   string
	save      string
	every     int
	resume    string
	plot      string
	quiet     bool
	serve     string
	serveExit bool
	record    *runRecord // what produced the run, for the checkpoints (prepareRun)
	// recipe names the preset whose settings are the defaults (augment.go);
	// plotAugment is a PNG of training images beside their distortions.
	recipe, plotAugment string
}

const trainHelp = `Trains the 784-...-10 ReLU network on the OpenCL device, printing a line per
epoch (a progress bar on a terminal) and the final test accuracy. The defaults
are Nesterov momentum, weight decay and a cosine schedule; the lecture's plain
SGD is -optimizer sgd -weight-decay 0 -schedule constant -lr 0.2 -epochs 10.

Ctrl-C (or SIGTERM) stops after the current step; with -save the checkpoint is
written first, and -resume continues from it with bit-identical results.`

// trainRun is a parsed train command: its flags, the configuration they
// make and the checkpoint it resumes, if any.
type trainRun struct {
	args   []string
	dev    deviceFlags
	net    netFlags
	tf     trainFlags
	cfg    nn.Config
	resume *nn.Checkpoint
}

func runTrain(e *env, args []string) error {
	r, err := parseTrain(e, args)
	if err != nil {
		return err
	}
	tf := &r.tf
	if err := tf.checkOutputs(); err != nil {
		return err
	}
	dash, err := tf.startDashboard(e)
	if err != nil {
		return err
	}
	defer dash.close()

	rt, split, err := r.dev.openWithData(e, r.net.data)
	if err != nil {
		return err
	}
	defer rt.Close()
	// Only now: a signal while the kernels build ends the process at once
	// (env.exitAtOnce), past every deferred call, so a metrics file made
	// before that would be left half-written beside its target.
	mw, err := tf.newMetrics()
	if err != nil {
		return err
	}
	defer mw.abort()
	// Decoding the gzipped files grew buffers that are garbage now; give
	// them back before the device copies of the images are made.
	debug.FreeOSMemory()
	t, err := r.newTrainer(e, rt, split, mw)
	if err != nil {
		return err
	}
	defer t.Release()
	if err := tf.describeAugment(e, t); err != nil {
		return err
	}
	dash.describe(rt, t, split)
	// The device holds the images now (on a CPU device, in this process's
	// memory too): hand the host copy back to the system.
	split = nil
	debug.FreeOSMemory()

	bar := tf.progress(e, t)
	dash.watch(t)
	history, err := tf.loop(e, t, r.cfg, bar, mw, dash)
	if err != nil {
		dash.fail(err)
		return err
	}
	if err := tf.finish(e, t, history, mw, dash); err != nil {
		return err
	}
	return dash.linger(e, tf.serveExit)
}

// parseTrain parses train's flags on the recipe's defaults, or the
// settings of the checkpoint it resumes.
func parseTrain(e *env, args []string) (*trainRun, error) {
	base, err := recipeBase(args)
	if err != nil {
		return nil, err
	}
	r := &trainRun{args: args}
	fs := newFlags("train")
	r.dev.register(fs)
	r.net.register(fs, base, "images per step", "seed of the initial weights and of every epoch's shuffle")
	r.tf.register(fs, base.Epochs)
	if r.cfg, err = parseConfig(e, fs, trainHelp, args, &r.net); err != nil {
		return nil, err
	}
	r.cfg.Epochs = r.tf.epochs
	if err := r.tf.check(); err != nil {
		return nil, err
	}
	if r.tf.resume != "" {
		if r.resume, err = nn.ReadCheckpoint(r.tf.resume); err != nil {
			return nil, err
		}
		if r.cfg, err = r.tf.resumed(args, r.resume); err != nil {
			return nil, err
		}
	}
	// On the run's own settings: a resumed run's augmentation is its
	// checkpoint's, which the flags alone do not show.
	if err := r.tf.checkAugment(r.cfg); err != nil {
		return nil, err
	}
	return r, nil
}

// newTrainer refuses what the device cannot hold, tunes for the step, runs
// the self-check, builds the Trainer and restores the checkpoint resumed.
func (r *trainRun) newTrainer(e *env, rt *nn.Runtime, split *mnist.Split, mw *metricsWriter) (*nn.Trainer, error) {
	cfg := r.cfg
	// Refuse what the device cannot hold before tuning for it or allocating.
	if err := rt.CheckFits(nn.NeedFor(split, cfg)); err != nil {
		return nil, err
	}
	sizes := nn.Sizes(split.Train.Pixels(), cfg.Hidden, mnist.NumClasses)
	if err := r.dev.tune(e, rt, sizes, cfg.StepBatch(split)); err != nil {
		return nil, err
	}
	if err := r.tf.prepareRun(e, rt, r.dev.kernels, sizes, cfg.StepBatch(split), cfg, r.args, mw); err != nil {
		return nil, err
	}
	t, err := nn.NewTrainer(rt, split, cfg)
	if err != nil {
		return nil, err
	}
	if r.resume != nil {
		if err := t.Restore(r.resume); err != nil {
			t.Release()
			return nil, fmt.Errorf("resume %s: %w", r.tf.resume, err)
		}
		fmt.Fprintf(e.stderr, "resumed %s at epoch %d step %d\n", r.tf.resume, r.resume.Epoch+1, r.resume.Step)
	}
	fmt.Fprintf(e.stderr, "network %s, batch %d, %s, lr %g (%s), weight decay %g, loss %s, seed %d; %d train / %d validation / %d test images; kernels warmed up in %.2fs\n",
		nn.FormatSizes(t.Net.Sizes()), cfg.Batch, cfg.Optimizer(), cfg.LR, cfg.Schedule, cfg.WeightDecay, cfg.Loss, cfg.Seed,
		split.Train.Len(), split.Validation.Len(), split.Test.Len(), t.WarmUp.Seconds())
	return t, nil
}

// finish measures the test set and writes what the flags ask for: the
// checkpoint, the plot and the metrics' last line.
func (tf *trainFlags) finish(e *env, t *nn.Trainer, history []plots.EpochPoint, mw *metricsWriter, dash *dashboard) error {
	dash.testing()
	loss, acc, err := t.Test()
	if err != nil {
		return fmt.Errorf("test set: %w", err)
	}
	fmt.Fprintf(e.stdout, "test accuracy %.2f%%  loss %.4f\n", 100*acc, loss)
	if err := dash.finish(t, acc, loss); err != nil {
		return err
	}
	if tf.save != "" {
		if err := saveCheckpoint(e, t, tf.save, tf.record); err != nil {
			return err
		}
		if err := stopAfter(e, tf.save, e.stderr); err != nil {
			return err
		}
	}
	if tf.plot != "" && len(history) > 0 {
		label := "cross-entropy loss"
		if t.Config().Loss == nn.MSE {
			label = "squared-error loss (softmax)"
		}
		if err := atomicfile.Write(tf.plot, 0o644, func(w io.Writer) error { return plots.TrainingCurves(w, history, label) }); err != nil {
			return fmt.Errorf("plot: %w", err)
		}
		fmt.Fprintf(e.stderr, "wrote %s\n", tf.plot)
		if err := stopAfter(e, tf.plot, e.stderr); err != nil {
			return err
		}
	}
	if err := mw.write(map[string]float64{"test_accuracy": acc, "test_loss": loss}); err != nil {
		return err
	}
	return mw.commit()
}

// loop trains the epochs still to run, printing a line for each, and
// returns what each measured.
func (tf *trainFlags) loop(e *env, t *nn.Trainer, cfg nn.Config, bar *progressBar, mw *metricsWriter, dash *dashboard) ([]plots.EpochPoint, error) {
	var history []plots.EpochPoint
	for {
		done, _ := t.Position()
		if done >= cfg.Epochs {
			return history, nil
		}
		ep, err := t.Epoch(e.ctx)
		bar.clear()
		if err != nil {
			if e.ctx.Err() != nil && errors.Is(err, e.ctx.Err()) {
				return nil, tf.interrupted(e, t, err)
			}
			return nil, err
		}
		fmt.Fprintf(e.stdout, "epoch %2d  loss %.4f  train %6.2f%%  val %6.2f%%  lr %.3g  %6.2fs  %7.0f img/s\n",
			ep.Epoch, ep.TrainLoss, 100*ep.TrainAccuracy, 100*ep.ValAccuracy, ep.LR, ep.Seconds, ep.ImagesPerSec)
		if err := mw.write(ep); err != nil {
			return nil, err
		}
		dash.epoch(ep)
		history = append(history, plots.EpochPoint{Epoch: ep.Epoch, TrainLoss: ep.TrainLoss, ValLoss: ep.ValLoss,
			TrainAccuracy: ep.TrainAccuracy, ValAccuracy: ep.ValAccuracy})
		if tf.every > 0 && ep.Epoch%tf.every == 0 && ep.Epoch < cfg.Epochs {
			if err := saveCheckpoint(e, t, tf.save, tf.record); err != nil {
				return nil, err
			}
		}
	}
}

// checkOutputs checks that every output can be written, before training
// rather than after hours of it.
func (tf *trainFlags) checkOutputs() error {
	for _, out := range []string{tf.save, tf.plot, tf.metrics, tf.plotAugment} {
		if out != "" {
			if err := atomicfile.CheckWritable(out); err != nil {
				return err
			}
		}
	}
	return nil
}

// newMetrics starts the -metrics file, nil without one.
func (tf *trainFlags) newMetrics() (*metricsWriter, error) {
	if tf.metrics == "" {
		return nil, nil
	}
	return newMetricsWriter(tf.metrics)
}

func (tf *trainFlags) register(fs *flag.FlagSet, epochs int) {
	fs.IntVar(&tf.epochs, "epochs", epochs, "passes over the training set")
	fs.StringVar(&tf.metrics, "metrics", "", "write one JSON object per epoch, then one with test_accuracy, to this file")
	fs.StringVar(&tf.save, "save", "", "write the trained model to this safetensors file (atomically; also on Ctrl-C)")
	fs.IntVar(&tf.every, "checkpoint-every", 0, "also write -save every N epochs (0: only at the end)")
	fs.StringVar(&tf.resume, "resume", "", "continue the run saved in this checkpoint (its settings; only -epochs may change)")
	fs.StringVar(&tf.plot, "plot", "", "draw training and validation loss and accuracy per epoch into this PNG file")
	fs.BoolVar(&tf.quiet, "quiet", false, "no progress bar, only a line per epoch")
	fs.StringVar(&tf.serve, "serve", "", "serve a live dashboard of the run at this address (such as 127.0.0.1:8080); it stays up after training until Ctrl-C")
	fs.BoolVar(&tf.serveExit, "serve-exit", false, "with -serve, stop the dashboard and exit when training ends")
	fs.StringVar(&tf.recipe, "recipe", "default", "preset whose settings the other flags start from: default, or best (-augment affine -epochs 30 -weight-decay 1e-4; see README.md); ignored with -resume")
	fs.StringVar(&tf.plotAugment, "plot-augment", "", "with -augment: draw the first training images beside their distortions in the first epochs into this PNG file")
}

func (tf *trainFlags) check() error {
	if tf.epochs <= 0 {
		return &usageError{err: fmt.Errorf("-epochs: must be positive, got %d", tf.epochs)}
	}
	if tf.every < 0 {
		return &usageError{err: fmt.Errorf("-checkpoint-every: must be 0 or positive, got %d", tf.every)}
	}
	if tf.every > 0 && tf.save == "" {
		return &usageError{err: errors.New("-checkpoint-every needs -save FILE")}
	}
	if tf.serveExit && tf.serve == "" {
		return &usageError{err: errors.New("-serve-exit needs -serve ADDR")}
	}
	return nil
}

// resumed is the configuration of a resumed run: the checkpoint's, with the
// flags given on this command line applied over it. Only -epochs may change
// it; any other difference would make the resumed run a different run.
func (tf *trainFlags) resumed(args []string, c *nn.Checkpoint) (nn.Config, error) {
	fs := newFlags("train")
	var dev deviceFlags
	dev.register(fs)
	var net netFlags
	net.register(fs, c.Config, "", "")
	var again trainFlags
	again.register(fs, c.Config.Epochs)
	if err := fs.Parse(args); err != nil {
		return nn.Config{}, &usageError{err: err}
	}
	cfg, err := net.config()
	if err != nil {
		return cfg, err
	}
	cfg.Epochs = again.epochs
	a, b := reflect.ValueOf(cfg), reflect.ValueOf(c.Config)
	var diff []string
	for i := 0; i < a.NumField(); i++ {
		name := a.Type().Field(i).Name
		if name != "Epochs" && !reflect.DeepEqual(a.Field(i).Interface(), b.Field(i).Interface()) {
			diff = append(diff, fmt.Sprintf("%s %v, not %v", strings.ToLower(name), a.Field(i).Interface(), b.Field(i).Interface()))
		}
	}
	if len(diff) > 0 {
		return cfg, &usageError{err: fmt.Errorf("-resume: the flags change the checkpoint's settings (%s); a resumed run keeps them, only -epochs may change", strings.Join(diff, "; "))}
	}
	// A run with no epochs left would train nothing and, mid-epoch, save a
	// position outside itself that no command could read back.
	switch {
	case c.Epoch >= cfg.Epochs && c.Step == 0:
		return cfg, &usageError{err: fmt.Errorf("-resume: %s finished all %d epochs; give -epochs above %d to train on", tf.resume, c.Epoch, c.Epoch)}
	case c.Epoch >= cfg.Epochs:
		return cfg, &usageError{err: fmt.Errorf("-resume: %s stopped in epoch %d; give -epochs %d or more to finish it", tf.resume, c.Epoch+1, c.Epoch+1)}
	}
	return cfg, nil
}

// errInterrupted ends a run stopped by a signal: exit status 130, as a shell
// reports for Ctrl-C.
var errInterrupted = errors.New("interrupted")

func (tf *trainFlags) interrupted(e *env, t *nn.Trainer, cause error) error {
	if tf.save == "" {
		return fmt.Errorf("%w: %v (nothing saved: give -save FILE to keep the network on interrupt)", errInterrupted, cause)
	}
	// The signal has been seen; this write must not be cut short by it (a
	// second signal still kills the process, and the write is atomic).
	if err := saveCheckpoint(e, t, tf.save, tf.record); err != nil {
		return fmt.Errorf("%v; %w", cause, err)
	}
	epochs, steps := t.Position()
	fmt.Fprintf(e.stderr, "stopped at epoch %d step %d; resume with: mnist-cl train -resume %s\n", epochs+1, steps, tf.save)
	return fmt.Errorf("%w: %v", errInterrupted, cause)
}

func saveCheckpoint(e *env, t *nn.Trainer, path string, record *runRecord) error {
	start := time.Now()
	c, err := t.Checkpoint()
	if err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	c.RunRecord = record.JSON()
	if err := nn.WriteCheckpoint(path, c); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "saved %s (epoch %d, step %d) in %.2fs\n", path, c.Epoch, c.Step, time.Since(start).Seconds())
	return nil
}

// progressBar draws the current epoch's progress on a terminal; its methods
// do nothing on a nil bar.
type progressBar struct{ bar *progressbar.ProgressBar }

// progress sets t.Progress to draw a bar on stderr when both streams are
// terminals and -quiet is not given; elsewhere the lines per epoch suffice.
func (tf *trainFlags) progress(e *env, t *nn.Trainer) *progressBar {
	if tf.quiet || !isTerminal(e.stdout) || !isTerminal(e.stderr) {
		return nil
	}
	p := &progressBar{}
	t.Progress = func(pr nn.Progress) {
		if p.bar == nil {
			p.bar = progressbar.NewOptions(pr.Steps,
				progressbar.OptionSetWriter(e.stderr),
				progressbar.OptionShowCount(),
				progressbar.OptionSetPredictTime(true),
				progressbar.OptionSetWidth(30),
				progressbar.OptionClearOnFinish(),
				progressbar.OptionThrottle(100*time.Millisecond))
		}
		p.bar.Describe(fmt.Sprintf("epoch %d  loss %.4f  %.0f img/s", pr.Epoch, pr.Loss, pr.ImagesPerSec))
		_ = p.bar.Set(pr.Step)
	}
	return p
}

func (p *progressBar) clear() {
	if p == nil || p.bar == nil {
		return
	}
	_ = p.bar.Clear()
	p.bar = nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// metricsWriter writes JSON lines to a temporary file beside the target and
// renames it into place only when training finished (atomicfile.Pending), so
// a failed or interrupted run never leaves a partial metrics file.
type metricsWriter struct {
	path string
	f    *atomicfile.Pending
	enc  *json.Encoder
}

func newMetricsWriter(path string) (*metricsWriter, error) {
	// The rename at the end would fail on a folder: say so now.
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("metrics file %s: exists and is not a regular file", path)
	}
	// A metrics file is for other tools to read: 0644.
	f, err := atomicfile.Create(path, 0o644)
	if err != nil {
		return nil, fmt.Errorf("metrics file %s: %w", path, err)
	}
	return &metricsWriter{path: path, f: f, enc: json.NewEncoder(f)}, nil
}

func (m *metricsWriter) write(v any) error {
	if m == nil {
		return nil
	}
	if err := m.enc.Encode(v); err != nil {
		return fmt.Errorf("write metrics %s: %w", m.path, err)
	}
	return nil
}

func (m *metricsWriter) commit() error {
	if m == nil {
		return nil
	}
	return m.f.Commit()
}

// abort removes the temporary file unless commit already renamed it.
func (m *metricsWriter) abort() {
	if m != nil {
		m.f.Abort()
	}
}
