package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mnist-cl/mnist-cl/cl"
	"github.com/mnist-cl/mnist-cl/internal/tuner"
	"github.com/mnist-cl/mnist-cl/kernels"
	"github.com/mnist-cl/mnist-cl/mnist"
	"github.com/mnist-cl/mnist-cl/nn"
)

// netFlags are the flags that shape the network, its data and its step,
// shared by train and verify; the usage strings say what each means there.
type netFlags struct {
	cfg       nn.Config
	hidden    intList
	lr        float64
	momentum  float64
	decay     float64
	gamma     float64
	loss      string
	optimizer string
	schedule  string
	data      string
	augment   augmentFlags
}

// register adds the flags with the values of base as defaults.
func (n *netFlags) register(fs *flag.FlagSet, base nn.Config, batchUsage, seedUsage string) {
	n.cfg = base
	n.hidden = intList(base.Hidden)
	fs.StringVar(&n.data, "data", "", "folder with the four MNIST files, read as they are (default: the per-user cache, fetched when missing)")
	fs.IntVar(&n.cfg.Batch, "batch", base.Batch, batchUsage)
	fs.Var(&n.hidden, "hidden", "widths of the ReLU hidden layers, comma-separated")
	fs.Uint64Var(&n.cfg.Seed, "seed", base.Seed, seedUsage)
	fs.StringVar(&n.loss, "loss", string(base.Loss), "loss: xent (cross-entropy, the lecture's) or mse (squared error of the softmax probabilities)")
	fs.StringVar(&n.optimizer, "optimizer", base.Optimizer(), "update rule: sgd (the lecture's W -= lr dW), momentum or nesterov")
	// float32 defaults as the float64 they were written as (0.2, not
	// 0.20000000298023224), for -h and for the value parsed.
	fs.Float64Var(&n.lr, "lr", widen(base.LR), "learning rate (at the first step, when a schedule lowers it)")
	mu := base.Momentum
	if mu == 0 {
		mu = nn.DefaultConfig().Momentum
	}
	fs.Float64Var(&n.momentum, "momentum", widen(mu), "momentum of -optimizer momentum and nesterov")
	fs.Float64Var(&n.decay, "weight-decay", widen(base.WeightDecay), "L2 weight decay added to the weights' gradients (0: none)")
	fs.StringVar(&n.schedule, "schedule", string(base.Schedule), "learning-rate schedule: constant, step (times -step-gamma every -step-every epochs) or cosine (to 0 at the last step)")
	fs.IntVar(&n.cfg.StepEvery, "step-every", base.StepEvery, "epochs between decays of -schedule step")
	fs.Float64Var(&n.gamma, "step-gamma", widen(base.StepGamma), "factor of each decay of -schedule step")
	n.augment.register(fs, base.Augment)
}

func widen(v float32) float64 {
	w, _ := strconv.ParseFloat(strconv.FormatFloat(float64(v), 'g', -1, 32), 64)
	return w
}

// parseConfig parses args into fs, a command's flags (about is its help),
// and returns the configuration its network flags net give, checked.
func parseConfig(e *env, fs *flag.FlagSet, about string, args []string, net *netFlags) (nn.Config, error) {
	if err := parse(e, fs, "[flags]", about, args); err != nil {
		return nn.Config{}, err
	}
	return net.config()
}

// config is the parsed configuration, checked; its errors are usage errors.
func (n *netFlags) config() (nn.Config, error) {
	cfg := n.cfg
	cfg.Hidden = n.hidden
	var err error
	if cfg.LR, err = learningRate(n.lr); err != nil {
		return cfg, err
	}
	if cfg.Loss, err = nn.ParseLoss(n.loss); err != nil {
		return cfg, &usageError{err: fmt.Errorf("-loss: %w", err)}
	}
	if cfg.Schedule, err = nn.ParseSchedule(n.schedule); err != nil {
		return cfg, &usageError{err: fmt.Errorf("-schedule: %w", err)}
	}
	switch n.optimizer {
	case "sgd":
		cfg.Momentum, cfg.Nesterov = 0, false
	case "momentum", "nesterov":
		cfg.Momentum, cfg.Nesterov = float32(n.momentum), n.optimizer == "nesterov"
		if !(n.momentum > 0 && n.momentum < 1) {
			return cfg, &usageError{err: fmt.Errorf("-momentum: want a number in (0, 1) for -optimizer %s, got %v", n.optimizer, n.momentum)}
		}
	default:
		return cfg, &usageError{err: fmt.Errorf("-optimizer: unknown %q (want sgd, momentum or nesterov)", n.optimizer)}
	}
	cfg.WeightDecay, cfg.StepGamma = float32(n.decay), float32(n.gamma)
	if err := n.augment.apply(&cfg); err != nil {
		return cfg, err
	}
	if err := cfg.Validate(); err != nil {
		return cfg, &usageError{err: fmt.Errorf("-%w", err)}
	}
	return cfg, nil
}

// deviceFlags are the flags every command that runs kernels shares.
type deviceFlags struct {
	device  string
	gemm    string
	kernels string
	profile bool // a profiling queue, for bench's per-kernel times
}

func (d *deviceFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&d.device, "device", "", "OpenCL device: an index from 'mnist-cl devices' or a name substring (default $MNISTCL_DEVICE, else the first GPU, else the first device)")
	fs.StringVar(&d.gemm, "gemm", "auto", "GEMM kernel: auto (register on CPUs, tiled elsewhere), register or tiled")
	fs.StringVar(&d.kernels, "kernels", "", "read the .cl kernel sources from this folder instead of the built-in ones")
}

// open picks the device and builds the kernels, saying on stderr what it does.
func (d *deviceFlags) open(e *env) (*nn.Runtime, error) {
	kind, err := kernels.ParseGemmKind(d.gemm)
	if err != nil {
		return nil, &usageError{err: fmt.Errorf("-gemm: %w", err)}
	}
	devs, err := cl.AllDevices()
	if err != nil {
		return nil, err
	}
	sel := d.device
	if sel == "" {
		sel = e.getenv("MNISTCL_DEVICE")
	}
	dev, err := cl.Choose(devs, sel)
	if err != nil {
		return nil, err
	}
	regs, err := registersOverride(e.getenv("MNISTCL_REGISTERS"))
	if err != nil {
		return nil, err
	}
	// A build can take seconds (a cold compiler cache, a GPU driver): say
	// what the wait is for.
	fmt.Fprintf(e.stderr, "device %d: %s: building the kernels\n", dev.Index, dev.Name)
	start := time.Now()
	// A signal between two programs' builds stops the build there.
	stop := func() error { return signalled(e.ctx) }
	done := e.exitAtOnce("building the kernels")
	rt, err := nn.Open(dev, kernels.Options{Gemm: kind, Dir: d.kernels, Profile: d.profile, Registers: regs, Stop: stop})
	done()
	if err != nil {
		return nil, interruptedIn(e, "building the kernels", err)
	}
	fmt.Fprintf(e.stderr, "device %d: %s (%s, %s); %s GEMM; kernels built in %.2fs\n",
		dev.Index, dev.Name, dev.Type, dev.Platform, rt.Kernels.Kind(), time.Since(start).Seconds())
	return rt, nil
}

// registersOverride parses MNISTCL_REGISTERS, "COUNTxWIDTH" such as 16x8:
// the register file to size the GEMM blocks for instead of the device's own
// (with PoCL's POCL_LLVM_CPU_NAME=haswell, an AVX-512 machine then builds
// and runs what an AVX2 one would). Empty means the device's.
func registersOverride(v string) (kernels.Registers, error) {
	if v == "" {
		return kernels.Registers{}, nil
	}
	var r kernels.Registers
	if _, err := fmt.Sscanf(v, "%dx%d", &r.Count, &r.Width); err != nil || r.Count < 8 || r.Count > 64 ||
		(r.Width != 4 && r.Width != 8 && r.Width != 16) {
		return r, fmt.Errorf("MNISTCL_REGISTERS=%q: want COUNTxWIDTH, such as 16x8 (AVX2) or 32x16 (AVX-512)", v)
	}
	return r, nil
}

// tune gives the register GEMM the blocks measured fastest for the shapes of
// a network of sizes at batch rows on this device: from the cache when it
// has them, else by measuring now (the first time a device meets a shape)
// and caching the result. MNISTCL_TUNE=off keeps the built-in blocks.
func (d *deviceFlags) tune(e *env, rt *nn.Runtime, sizes []int, batch int) error {
	if rt.Kernels.Kind() != kernels.GemmRegister || e.getenv("MNISTCL_TUNE") == "off" {
		return nil
	}
	return tuneWith(e, rt, nn.Shapes(sizes, batch), false)
}

// tuneWith applies tuner.Apply to shapes with the per-user cache, saying on
// stderr what it measures; an interrupt is errInterrupted.
func tuneWith(e *env, rt *nn.Runtime, shapes []kernels.Shape, force bool) error {
	cache, err := tuner.DefaultCache()
	if err != nil {
		return err
	}
	start := time.Now()
	log := func(format string, args ...any) { fmt.Fprintf(e.stderr, "  "+format+"\n", args...) }
	choices, err := tuner.Apply(e.ctx, rt.Kernels, cache, shapes, force, log)
	if ctxErr := e.ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%w while tuning the GEMM: %v", errInterrupted, ctxErr)
	}
	if err != nil {
		return err
	}
	if len(choices) > 0 {
		fmt.Fprintf(e.stderr, "tuned the GEMM for %d shapes in %.1fs (once per device; cached in %s)\n",
			len(choices), time.Since(start).Seconds(), cache.Path)
	}
	return nil
}

// openWithData opens the device, then loads the data: a wrong --device
// should not wait for a download.
func (d *deviceFlags) openWithData(e *env, dir string) (*nn.Runtime, *mnist.Split, error) {
	rt, err := d.open(e)
	if err = interruptedIn(e, "building the kernels", err); err != nil {
		if rt != nil {
			rt.Close()
		}
		return nil, nil, err
	}
	split, err := loadData(e.ctx, e, dir)
	if err = interruptedIn(e, "loading the data", err); err != nil {
		rt.Close()
		return nil, nil, err
	}
	return rt, split, nil
}

// loadData reads a user's folder as it is, or the cache, fetching the
// official files into it when they are missing.
func loadData(ctx context.Context, e *env, dir string) (*mnist.Split, error) {
	if dir != "" {
		s, err := mnist.Load(dir)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	cache, err := mnist.DefaultCacheDir()
	if err != nil {
		return nil, fmt.Errorf("find a cache folder for MNIST (use --data DIR): %w", err)
	}
	f := mnist.NewFetcher(func(format string, args ...any) {
		fmt.Fprintf(e.stderr, format+"\n", args...)
	})
	// A mirror of one's own (a proxy's, an offline copy) goes first; the
	// tests point it at a local server.
	if m := e.getenv("MNISTCL_MIRRORS"); m != "" {
		f.Mirrors = append(strings.Split(m, ","), f.Mirrors...)
	}
	return f.LoadCached(ctx, cache)
}
