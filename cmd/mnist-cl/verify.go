package main

import (
	"fmt"
	"math/rand/v2"
	"text/tabwriter"

	"github.com/mnist-cl/mnist-cl/internal/verify"
	"github.com/mnist-cl/mnist-cl/mnist"
	"github.com/mnist-cl/mnist-cl/nn"
)

const verifyHelp = `Runs every kernel through one forward pass, backward pass and update (the
-optimizer's: Nesterov momentum by default), on a random batch and on a real
MNIST batch, on the device and in float64 in cpuref, and prints each tensor's
relative error ||device - cpuref||_F / ||cpuref||_F. Exits 1 if any tensor is
outside its tolerance.`

func runVerify(e *env, args []string) error {
	fs := newFlags("verify")
	var dev deviceFlags
	dev.register(fs)
	var net netFlags
	net.register(fs, nn.DefaultConfig(), "rows of the checked batch", "seed of the weights and the random batch")
	cfg, err := parseConfig(e, fs, verifyHelp, args, &net)
	if err != nil {
		return err
	}
	rt, split, err := dev.openWithData(e, net.data)
	if err != nil {
		return err
	}
	defer rt.Close()
	sizes := nn.Sizes(split.Train.Pixels(), cfg.Hidden, mnist.NumClasses)
	if err := rt.CheckFits(nn.NeedNetwork(sizes, cfg.Batch, cfg.Momentum != 0)); err != nil {
		return err
	}
	if err := dev.tune(e, rt, sizes, cfg.Batch); err != nil {
		return err
	}
	random, real, aug, err := verifyBoth(rt, split.Train, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "network %s, batch %d, seed %d, loss %s, optimizer %s: relative error ||device - cpuref||_F / ||cpuref||_F\n",
		nn.FormatSizes(nn.Sizes(split.Train.Pixels(), cfg.Hidden, mnist.NumClasses)), cfg.Batch, cfg.Seed, cfg.Loss, cfg.Optimizer())
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "tensor\trandom batch\tMNIST batch\ttolerance\t\t")
	failed := 0
	for i, c := range random {
		r := real[i]
		status := "ok"
		switch {
		case !c.Pass() || !r.Pass():
			status = "FAIL"
			failed++
		case c.Tol > 0 && (c.Ref == 0 || r.Ref == 0):
			// A layer whose ReLUs are all off: both sides are zero, which
			// checks less than a live layer does. Say so.
			status = "ok (reference is zero)"
		}
		fmt.Fprintf(tw, "%s\t%.2e\t%.2e\t%.0e\t%s\t\n", c.Tensor, c.Err, r.Err, c.Tol, status)
	}
	if aug != nil {
		status := "ok"
		if !aug.Pass() {
			status = "FAIL"
			failed++
		}
		fmt.Fprintf(tw, "%s\t\t%.2e\t%.0e\t%s\t\n", aug.Tensor, aug.Err, aug.Tol, status)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("verify: %d of %d tensors outside tolerance", failed, len(random)+augmentChecks(aug))
	}
	fmt.Fprintf(e.stdout, "all %d tensors within tolerance\n", len(random)+augmentChecks(aug))
	return nil
}

// verifyBoth checks one step on random inputs (uniform pixels, random labels)
// and one on the first batch of the training set gathered on the device,
// distorted as cfg's augmentation distorts epoch 1, whose X it then checks
// in aug (nil without augmentation). Each step has a fresh network from the
// seed's weights, the first released before the second is made, so that
// the device holds one at a time, as the size check before it assumes.
func verifyBoth(rt *nn.Runtime, train *mnist.Set, cfg nn.Config) (random, real []verify.Check, aug *verify.Check, err error) {
	sizes := nn.Sizes(train.Pixels(), cfg.Hidden, mnist.NumClasses)
	if random, err = verifyRandom(rt, sizes, cfg); err != nil {
		return nil, nil, nil, err
	}
	if real, aug, err = verifyMNIST(rt, sizes, train, cfg); err != nil {
		return nil, nil, nil, err
	}
	return random, real, aug, nil
}

// verifyRandom checks one step on a batch of uniform pixels and random
// labels drawn from cfg's seed.
func verifyRandom(rt *nn.Runtime, sizes []int, cfg nn.Config) ([]verify.Check, error) {
	net, err := newVerifyNetwork(rt, sizes, cfg)
	if err != nil {
		return nil, err
	}
	defer net.Release()
	rng := rand.New(rand.NewPCG(cfg.Seed, 0xfeed))
	x := make([]float32, cfg.Batch*sizes[0])
	for i := range x {
		x[i] = rng.Float32()
	}
	labels := make([]int32, cfg.Batch)
	for i := range labels {
		labels[i] = int32(rng.IntN(mnist.NumClasses))
	}
	if err := net.SetBatch(x, labels); err != nil {
		return nil, err
	}
	checks, err := verify.Step(net, cfg.Batch, cfg.Hyper(cfg.LR))
	if err != nil {
		return nil, fmt.Errorf("verify random batch: %w", err)
	}
	return checks, nil
}

// verifyMNIST checks one step on the training set's first batch, gathered
// (and distorted) on the device, and the gather itself in aug.
func verifyMNIST(rt *nn.Runtime, sizes []int, train *mnist.Set, cfg nn.Config) (real []verify.Check, aug *verify.Check, err error) {
	net, err := newVerifyNetwork(rt, sizes, cfg)
	if err != nil {
		return nil, nil, err
	}
	defer net.Release()
	rows := min(cfg.Batch, train.Len())
	d, err := rt.Upload(train.Slice(0, rows))
	if err != nil {
		return nil, nil, err
	}
	defer d.Release()
	if aug, err = gatherVerified(net, d, train.Slice(0, rows), cfg); err != nil {
		return nil, nil, err
	}
	if real, err = verify.Step(net, rows, cfg.Hyper(cfg.LR)); err != nil {
		return nil, nil, fmt.Errorf("verify MNIST batch: %w", err)
	}
	return real, aug, nil
}

// newVerifyNetwork is the network of cfg with its loss and, for momentum,
// velocities (zero, as at a run's first step).
func newVerifyNetwork(rt *nn.Runtime, sizes []int, cfg nn.Config) (*nn.Network, error) {
	net, err := nn.NewNetwork(rt, sizes, cfg.Batch, cfg.Seed)
	if err != nil {
		return nil, err
	}
	net.Loss = cfg.Loss
	if cfg.Momentum != 0 {
		if err := net.AllocVelocity(); err != nil {
			net.Release()
			return nil, err
		}
	}
	return net, nil
}
