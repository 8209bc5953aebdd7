package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/metrics"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/mnist-cl/mnist-cl/cl"
	"github.com/mnist-cl/mnist-cl/cpuref"
	"github.com/mnist-cl/mnist-cl/kernels"
	"github.com/mnist-cl/mnist-cl/mnist"
	"github.com/mnist-cl/mnist-cl/nn"
)

const (
	// benchPixels is MNIST's input width: the GEMMs and steps run on random
	// data, so they need no data set to know it.
	benchPixels = 28 * 28
	// benchLoop is how long one timed loop queues work for before it waits:
	// long enough that the one wait (about 25 us on PoCL) is lost in it.
	benchLoop = 50 * time.Millisecond
	// maxCallsPerLoop bounds the calls of one timed loop: a GPU may run a
	// small GEMM in microseconds.
	maxCallsPerLoop = 10000
	// maxQueued is how many calls a loop queues before it waits, about what
	// training queues (nn's syncEvery steps of a dozen launches): PoCL's
	// cost per launch grows with the queue, and a thin product measured
	// 10.4 us a launch with 768 queued but 13-15 us with the 3000 a loop
	// queued before.
	maxQueued = 768
)

type benchOptions struct {
	json  bool
	data  string
	reps  int
	epoch bool
}

const benchHelp = `Measures, on the device: its fma peak (peak.cl); each of the GEMMs of one
batch-128 training step of the default 784-512-256-10 network (the GEMM
launches of its nn.Plan, see mnist-cl plan), with its share of the peak; the
whole step at batch 64, 128 and 512; every launch of a step timed by itself
with profiling events (-launches); the same step in cpuref (float64 gonum);
one epoch of training; and the process's peak resident memory. Each figure
but the per-launch ones is the median of -reps loops that queue the work for
about 50 ms and wait once. The register GEMM runs the blocks train would,
tuning first the shapes the cache lacks (MNISTCL_TUNE=off keeps the built-in
blocks). Progress goes to stderr, the report to stdout.`

// benchStepBatches are the batches bench times a step at; the default batch
// is among them, for the cpuref ratio.
var benchStepBatches = []int{64, 128, 512}

func runBench(e *env, args []string) error {
	var dev deviceFlags
	var o benchOptions
	if err := parseBench(e, &dev, &o, args); err != nil {
		return err
	}
	b := &bencher{e: e, start: time.Now(), reps: o.reps, loop: benchLoop}
	var split *mnist.Split
	var err error
	if o.epoch {
		b.rt, split, err = dev.openWithData(e, o.data)
	} else {
		b.rt, err = dev.open(e)
		err = interruptedIn(e, "building the kernels", err)
	}
	if err != nil {
		return err
	}
	defer b.rt.Close()
	if split != nil {
		b.train = split.Train
	}

	cfg := nn.DefaultConfig()
	sizes := nn.Sizes(benchPixels, cfg.Hidden, mnist.NumClasses)
	blocks, err := b.tune(sizes, benchStepBatches)
	if err != nil {
		return err
	}
	r := b.newReport(sizes, cfg, blocks)
	r.StepData = b.stepData(benchStepBatches[len(benchStepBatches)-1], sizes[0])
	if err := b.rss(r, "open"); err != nil {
		return err
	}
	if err := b.measureDevice(r, sizes, cfg, dev.profile); err != nil {
		return err
	}
	if err := b.measureCPURef(r, sizes, cfg); err != nil {
		return err
	}
	if o.epoch {
		phase := time.Now()
		if r.Epoch, err = b.epoch(split, cfg); err != nil {
			return err
		}
		b.note("epoch done in %.1fs", time.Since(phase).Seconds())
		if err := b.rss(r, "epoch"); err != nil {
			return err
		}
	}
	if o.json {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
		return nil
	}
	return writeBenchText(e.stdout, r)
}

// parseBench parses bench's flags into dev and o.
func parseBench(e *env, dev *deviceFlags, o *benchOptions, args []string) error {
	fs := newFlags("bench")
	dev.register(fs)
	fs.BoolVar(&dev.profile, "launches", true, "also time every launch of a step by itself (a profiling queue)")
	fs.BoolVar(&o.json, "json", false, "print the report as one JSON object on stdout")
	fs.StringVar(&o.data, "data", "", "folder with the four MNIST files for the epoch, unread with -epoch=false (default: the per-user cache, fetched when missing)")
	fs.IntVar(&o.reps, "reps", 7, "timed loops per measurement, 1 to 1000; the report gives their median")
	fs.BoolVar(&o.epoch, "epoch", true, "also time one epoch of training on the real data at the default config")
	if err := parse(e, fs, "[flags]", benchHelp, args); err != nil {
		return err
	}
	if o.reps < 1 || o.reps > 1000 {
		return &usageError{err: fmt.Errorf("-reps: want 1 to 1000 timed loops, got %d", o.reps)}
	}
	return nil
}

// newReport starts the report with what describes the run.
func (b *bencher) newReport(sizes []int, cfg nn.Config, blocks string) *benchReport {
	rt := b.rt
	return &benchReport{
		Date:       b.start.UTC().Format(time.RFC3339),
		Device:     rt.Device.Name,
		DeviceType: rt.Device.Type.String(),
		Platform:   rt.Device.Platform,
		GemmKernel: rt.Kernels.Kind().String(),
		GemmBlocks: blocks,
		CPU:        cpuModel(),
		CPUs:       runtime.NumCPU(),
		GoVersion:  runtime.Version(),
		OSArch:     runtime.GOOS + "/" + runtime.GOARCH,
		Reps:       b.reps,
		LoopMS:     float64(b.loop) / float64(time.Millisecond),
		Network:    sizes,
		Optimizer:  cfg.Optimizer(),
		LR:         widen(cfg.LR),
		Momentum:   widen(cfg.Momentum),
		Decay:      widen(cfg.WeightDecay),
		GemmBatch:  cfg.Batch,
	}
}

// measureDevice times the fma peak, the step's GEMMs, the step at every
// batch and, with profile, every launch of one step.
func (b *bencher) measureDevice(r *benchReport, sizes []int, cfg nn.Config, profile bool) error {
	var err error
	b.note("measuring the device's fma peak")
	if r.PeakGFLOPS, err = b.rt.Kernels.PeakFMA(); err != nil {
		return err
	}
	shapes := trainingGemms(sizes, cfg.Batch)
	b.note("timing the %d GEMMs of a batch-%d step", len(shapes), cfg.Batch)
	phase := time.Now()
	for _, g := range shapes {
		res, err := b.gemm(g)
		if err != nil {
			return err
		}
		res.PeakShare = res.GFLOPS / r.PeakGFLOPS
		r.Gemms = append(r.Gemms, res)
		r.GemmTotalUS += res.US
	}
	// Rounded to the nanosecond the medians have, without the sum's float noise.
	r.GemmTotalUS = math.Round(r.GemmTotalUS*1e3) / 1e3
	b.note("GEMMs timed in %.1fs", time.Since(phase).Seconds())
	if err := b.rss(r, "gemms"); err != nil {
		return err
	}

	b.note("timing training steps at batch %v", benchStepBatches)
	phase = time.Now()
	for _, batch := range benchStepBatches {
		res, err := b.step(sizes, batch, cfg)
		if err != nil {
			return err
		}
		r.Steps = append(r.Steps, res)
	}
	b.note("steps timed in %.1fs", time.Since(phase).Seconds())
	if err := b.rss(r, "steps"); err != nil {
		return err
	}
	if profile {
		b.note("timing every launch of a step at batch %d", cfg.Batch)
		if r.Profile, err = b.profileStep(sizes, cfg.Batch, cfg); err != nil {
			return err
		}
	}
	return nil
}

// measureCPURef times cpuref's step and its ratio to the device's.
func (b *bencher) measureCPURef(r *benchReport, sizes []int, cfg nn.Config) error {
	var err error
	b.note("timing the cpuref step at batch %d", cfg.Batch)
	phase := time.Now()
	if r.CPURef, err = b.cpurefStep(sizes, cfg); err != nil {
		return err
	}
	for _, s := range r.Steps {
		if s.Batch == r.CPURef.Batch {
			r.CPURef.Ratio = r.CPURef.US / s.US
		}
	}
	b.note("cpuref timed in %.1fs", time.Since(phase).Seconds())
	return b.rss(r, "cpuref")
}

// bencher runs the measurements of one bench command.
type bencher struct {
	e     *env
	rt    *nn.Runtime
	start time.Time
	reps  int
	loop  time.Duration
	// train is MNIST's training set when bench loaded it (-epoch), whose
	// first images the steps run on; nil otherwise (see stepImages).
	train *mnist.Set
}

// tune gives the register GEMM the cached blocks for the GEMMs of a step at
// every one of batches, measuring those the cache lacks, so each figure is
// what train runs at that batch. UseTuning replaces the whole tuning, hence
// one call for the union rather than deviceFlags.tune per batch. It returns
// the report's gemm_blocks.
func (b *bencher) tune(sizes, batches []int) (string, error) {
	if b.rt.Kernels.Kind() != kernels.GemmRegister {
		return "none", nil
	}
	if b.e.getenv("MNISTCL_TUNE") == "off" {
		return "built-in", nil
	}
	var shapes []kernels.Shape
	for _, batch := range batches {
		for _, sh := range nn.Shapes(sizes, batch) {
			// The GEMM table times every product dense, on random
			// operands: the input layer's too, whose steps skip zeros.
			dense := sh
			dense.SparseA = false
			for _, s := range []kernels.Shape{sh, dense} {
				if !slices.Contains(shapes, s) {
					shapes = append(shapes, s)
				}
			}
		}
	}
	if err := tuneWith(b.e, b.rt, shapes, false); err != nil {
		if ierr := b.interrupted("tuning the GEMM"); ierr != nil {
			return "", ierr
		}
		return "", err
	}
	return "tuned", nil
}

// note writes a progress line to stderr with the time since the start.
func (b *bencher) note(format string, args ...any) {
	fmt.Fprintf(b.e.stderr, "%6.1fs  %s\n", time.Since(b.start).Seconds(), fmt.Sprintf(format, args...))
}

// interrupted is the error of a run stopped by a signal while doing what.
func (b *bencher) interrupted(what string) error {
	if err := b.e.ctx.Err(); err != nil {
		return fmt.Errorf("%w: %s: %v", errInterrupted, what, err)
	}
	return nil
}

// measure times one call of queue, which only queues its work; wait waits for
// it. After a first call (PoCL compiles a kernel at its first launch), it
// picks a count of calls whose loop takes about b.loop, then runs b.reps such
// loops of that many calls and one wait each, and returns the median time
// per call. Waiting once per loop, not per call, keeps the cost of a wait
// (25 us on PoCL) out of small GEMMs, and is how training runs them.
func (b *bencher) measure(what string, queue, wait func() error) (time.Duration, int, error) {
	if err := b.interrupted(what); err != nil {
		return 0, 0, err
	}
	loop := func(calls int) (time.Duration, error) {
		t0 := time.Now()
		for i := 1; i <= calls; i++ {
			if err := queue(); err != nil {
				return 0, fmt.Errorf("%s: %w", what, err)
			}
			if i%maxQueued == 0 || i == calls {
				if err := wait(); err != nil {
					return 0, fmt.Errorf("%s: %w", what, err)
				}
			}
		}
		return time.Since(t0), nil
	}
	if _, err := loop(1); err != nil {
		return 0, 0, err
	}
	// Grow the count until a loop is long enough to extrapolate from.
	calls := 1
	for {
		d, err := loop(calls)
		if err != nil {
			return 0, 0, err
		}
		if d >= b.loop/10 || calls >= maxCallsPerLoop {
			calls = int(float64(calls) * float64(b.loop) / float64(max(d, 1)))
			break
		}
		next := int(1.2 * float64(calls) * float64(b.loop/10) / float64(max(d, 1)))
		calls = min(max(next, 2*calls), 100*calls, maxCallsPerLoop)
	}
	calls = min(max(calls, 1), maxCallsPerLoop)
	per := make([]time.Duration, b.reps)
	for i := range per {
		if err := b.interrupted(what); err != nil {
			return 0, 0, err
		}
		d, err := loop(calls)
		if err != nil {
			return 0, 0, err
		}
		per[i] = d / time.Duration(calls)
	}
	return median(per), calls, nil
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// gemm times one product on random operands with the device's GEMM kernel.
func (b *bencher) gemm(g gemmShape) (gemmResult, error) {
	rng := rand.New(rand.NewPCG(uint64(g.M), uint64(g.N)<<32|uint64(g.K)))
	var bufs []*cl.Buffer
	defer func() {
		for _, buf := range bufs {
			buf.Release()
		}
	}()
	for _, n := range []int{g.M * g.K, g.K * g.N, g.M * g.N} {
		buf, err := b.randomBuffer(rng, n)
		if err != nil {
			return gemmResult{}, fmt.Errorf("GEMM %s: %w", g.Name, err)
		}
		bufs = append(bufs, buf)
	}
	k := b.rt.Kernels
	d, calls, err := b.measure("GEMM "+g.Name, func() error {
		return k.Gemm(g.form, g.M, g.N, g.K, bufs[0], bufs[1], bufs[2])
	}, b.rt.Queue.Finish)
	if err != nil {
		return gemmResult{}, err
	}
	flops := 2 * float64(g.M) * float64(g.N) * float64(g.K)
	return gemmResult{gemmShape: g, US: micros(d), GFLOPS: flops / d.Seconds() / 1e9, CallsPerLoop: calls}, nil
}

// randomBuffer is a device buffer of n floats uniform in [-1, 1).
func (b *bencher) randomBuffer(rng *rand.Rand, n int) (*cl.Buffer, error) {
	x := make([]float32, n)
	for i := range x {
		x[i] = 2*rng.Float32() - 1
	}
	buf, err := b.rt.Context.NewBuffer(4 * n)
	if err != nil {
		return nil, fmt.Errorf("allocate %d floats: %w", n, err)
	}
	if err := b.rt.Queue.WriteFloat32(buf, 0, x); err != nil {
		buf.Release()
		return nil, fmt.Errorf("upload %d floats: %w", n, err)
	}
	return buf, nil
}

// stepImages are the images a timed step runs on: the first rows of
// MNIST's training set when bench has it, random ones otherwise. The input
// layer's products skip zero pixels, which random pixels never are, so a
// step on them is not one of training's.
func (b *bencher) stepImages(rows, pixels int) *mnist.Set {
	if b.realImages(rows, pixels) {
		return b.train.Slice(0, rows)
	}
	return randomSet(rows, pixels)
}

// realImages reports whether stepImages gives MNIST's images.
func (b *bencher) realImages(rows, pixels int) bool {
	return b.train != nil && b.train.Len() >= rows && b.train.Pixels() == pixels
}

// stepData is the report's step_data: what stepImages gives at rows.
func (b *bencher) stepData(rows, pixels int) string {
	if b.realImages(rows, pixels) {
		return "MNIST's first training images"
	}
	return "random pixels (none zero, so the input layer skips no terms; -epoch loads MNIST)"
}

// step times one training step on the device as the Trainer runs it, less
// the gather: forward, backward and the update of cfg's optimiser.
func (b *bencher) step(sizes []int, batch int, cfg nn.Config) (stepResult, error) {
	what := fmt.Sprintf("step at batch %d", batch)
	net, err := nn.NewNetwork(b.rt, sizes, batch, cfg.Seed)
	if err != nil {
		return stepResult{}, fmt.Errorf("%s: %w", what, err)
	}
	defer net.Release()
	if err := net.AllocVelocity(); err != nil {
		return stepResult{}, fmt.Errorf("%s: %w", what, err)
	}
	if err := net.SetBatch(b.stepImages(batch, sizes[0]).Batch()); err != nil {
		return stepResult{}, fmt.Errorf("%s: %w", what, err)
	}
	h := cfg.Hyper(cfg.LR)
	d, calls, err := b.measure(what, func() error {
		if err := net.Forward(batch); err != nil {
			return err
		}
		return net.BackwardStep(batch, h)
	}, b.rt.Queue.Finish)
	if err != nil {
		return stepResult{}, err
	}
	return stepResult{Batch: batch, US: micros(d), ImagesPerSec: float64(batch) / d.Seconds(), CallsPerLoop: calls}, nil
}

// cpurefStep times the same step in float64 on gonum at the default batch.
func (b *bencher) cpurefStep(sizes []int, cfg nn.Config) (cpurefResult, error) {
	w, bias := nn.InitParams(sizes, cfg.Seed)
	p, err := cpuref.FromFloat32(sizes, w, bias)
	if err != nil {
		return cpurefResult{}, fmt.Errorf("cpuref step: %w", err)
	}
	x32, labels32 := b.stepImages(cfg.Batch, sizes[0]).Batch()
	x := cpuref.Dense32(cfg.Batch, sizes[0], x32)
	labels := make([]int, len(labels32))
	for i, y := range labels32 {
		labels[i] = int(y)
	}
	v := cpuref.NewVelocity(p)
	lr, mu, wd := widen(cfg.LR), widen(cfg.Momentum), widen(cfg.WeightDecay)
	var a *cpuref.Activations
	d, _, err := b.measure("cpuref step", func() error {
		a = cpuref.Forward(p, x)
		cpuref.StepMomentum(p, cpuref.Backward(p, a, labels), v, lr, mu, wd, cfg.Nesterov)
		return nil
	}, func() error { return nil })
	if err != nil {
		return cpurefResult{}, err
	}
	return cpurefResult{Batch: cfg.Batch, US: micros(d)}, nil
}

// epoch trains one epoch at cfg on split, after the Trainer's warm-up.
func (b *bencher) epoch(split *mnist.Split, cfg nn.Config) (*epochResult, error) {
	if err := b.interrupted("epoch"); err != nil {
		return nil, err
	}
	b.note("uploading %d images and building the trainer", split.Train.Len()+split.Validation.Len()+split.Test.Len())
	t, err := nn.NewTrainer(b.rt, split, cfg)
	if err != nil {
		return nil, err
	}
	defer t.Release()
	b.note("training one epoch of %d images at batch %d (warm-up took %.2fs)", split.Train.Len(), cfg.Batch, t.WarmUp.Seconds())
	ep, err := t.Epoch(b.e.ctx)
	if err != nil {
		if ctxErr := b.e.ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
			return nil, fmt.Errorf("%w: %v", errInterrupted, err)
		}
		return nil, err
	}
	r := &epochResult{TrainImages: split.Train.Len(), ValImages: split.Validation.Len(), Seconds: ep.Seconds,
		TrainImagesPerSec: ep.ImagesPerSec, WarmUpSeconds: t.WarmUp.Seconds(), ValAccuracy: ep.ValAccuracy}
	if ep.ImagesPerSec > 0 {
		r.TrainSeconds = float64(r.TrainImages) / ep.ImagesPerSec
	}
	return r, nil
}

// rss records the peak resident memory so far after phase, so the report can
// say in which phase the peak was reached, and the Go runtime's own memory
// then, so it can say how much of it is C: the OpenCL driver, its compiler
// and, on a CPU device, the buffers.
func (b *bencher) rss(r *benchReport, phase string) error {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return fmt.Errorf("peak memory: getrusage: %w", err)
	}
	// Linux reports KiB, macOS bytes.
	bytes := float64(ru.Maxrss) * 1024
	if runtime.GOOS == "darwin" {
		bytes = float64(ru.Maxrss)
	}
	// Mapped and not returned to the OS: an upper bound on what of the RSS
	// is Go's.
	m := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(m)
	var goBytes float64
	if m[0].Value.Kind() == metrics.KindUint64 && m[1].Value.Kind() == metrics.KindUint64 {
		goBytes = float64(m[0].Value.Uint64() - m[1].Value.Uint64())
	}
	p := rssPhase{Phase: phase, MB: bytes / 1e6, GoMB: goBytes / 1e6}
	r.RSSPhases = append(r.RSSPhases, p)
	if p.MB > r.PeakRSSMB {
		r.PeakRSSMB, r.PeakRSSPhase = p.MB, phase
	}
	r.GoMB = max(r.GoMB, p.GoMB)
	return nil
}

// cpuModel is the first "model name" of /proc/cpuinfo, or "" where there is
// none (not Linux, or an architecture that names it otherwise).
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(key) == "model name" {
			return strings.TrimSpace(val)
		}
	}
	return ""
}
