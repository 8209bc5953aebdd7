package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/mnist-cl/mnist-cl/cl"
	"github.com/mnist-cl/mnist-cl/kernels"
	"github.com/mnist-cl/mnist-cl/mnist"
	"github.com/mnist-cl/mnist-cl/nn"
)

// netFlags are the flags that shape the network, its data and its step,
// shared by train and verify; the usage strings say what each means there.
type netFlags struct {
	cfg    nn.Config
	hidden intList
	lr     float64
	data   string
}

func (n *netFlags) register(fs *flag.FlagSet, batchUsage, seedUsage, lrUsage string) {
	n.cfg = nn.DefaultConfig()
	n.hidden = intList(n.cfg.Hidden)
	fs.StringVar(&n.data, "data", "", "folder with the four MNIST files, read as they are (default: the per-user cache, fetched when missing)")
	fs.IntVar(&n.cfg.Batch, "batch", n.cfg.Batch, batchUsage)
	fs.Var(&n.hidden, "hidden", "widths of the ReLU hidden layers, comma-separated")
	fs.Uint64Var(&n.cfg.Seed, "seed", n.cfg.Seed, seedUsage)
	// The float32 default as the float64 it was written as (0.2, not
	// 0.20000000298023224), for -h and for the value parsed.
	lr, _ := strconv.ParseFloat(strconv.FormatFloat(float64(n.cfg.LR), 'g', -1, 32), 64)
	fs.Float64Var(&n.lr, "lr", lr, lrUsage)
}

// config is the parsed configuration, checked; its errors are usage errors.
func (n *netFlags) config() (nn.Config, error) {
	cfg := n.cfg
	cfg.Hidden = n.hidden
	var err error
	if cfg.LR, err = learningRate(n.lr); err != nil {
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
	start := time.Now()
	rt, err := nn.Open(dev, kernels.Options{Gemm: kind, Dir: d.kernels})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(e.stderr, "device %d: %s (%s, %s); %s GEMM; kernels built in %.2fs\n",
		dev.Index, dev.Name, dev.Type, dev.Platform, rt.Kernels.Kind(), time.Since(start).Seconds())
	return rt, nil
}

// openWithData opens the device, then loads the data: a wrong --device
// should not wait for a download.
func (d *deviceFlags) openWithData(e *env, dir string) (*nn.Runtime, *mnist.Split, error) {
	rt, err := d.open(e)
	if err != nil {
		return nil, nil, err
	}
	split, err := loadData(e.ctx, e, dir)
	if err != nil {
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
	return f.LoadCached(ctx, cache)
}
