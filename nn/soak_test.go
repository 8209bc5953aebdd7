package nn_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/mnist-cl/mnist-cl/internal/cltest"
	"github.com/mnist-cl/mnist-cl/kernels"
	"github.com/mnist-cl/mnist-cl/nn"
)

// soakGrowth is the most resident memory may grow over the last two thirds
// of a soak loop. A leaked network of 784-64-10 at batch 20 is about 0.5 MiB
// of buffers and a leaked data set 1.3 MiB, so a leak of either per
// iteration shows up as 100 MiB or more; a leaked Runtime (programs, a
// context and PoCL's per-context state) is several MiB each.
const soakGrowth = 20 << 20

// soak runs body(i) for i in [0, iterations), samples resident memory at a
// third, two thirds and the end, and fails if it grew by more than
// soakGrowth over the last two thirds; what names the iterations in the log.
func soak(t *testing.T, what string, iterations int, body func(i int)) {
	t.Helper()
	start := time.Now()
	var samples []int64
	for i := range iterations {
		if i == iterations/3 || i == 2*iterations/3 {
			samples = append(samples, cltest.RSS(t))
		}
		body(i)
	}
	samples = append(samples, cltest.RSS(t))
	t.Logf("%d %s in %.1fs; RSS at iterations %d, %d, %d: %d, %d, %d MiB",
		iterations, what, time.Since(start).Seconds(), iterations/3, 2*iterations/3, iterations,
		samples[0]>>20, samples[1]>>20, samples[2]>>20)
	if growth := samples[2] - samples[0]; growth > soakGrowth {
		t.Errorf("RSS grew by %.1f MiB over the last %d of %d %s", float64(growth)/(1<<20), iterations-iterations/3, iterations, what)
	}
}

// TestSoakTrainers builds a Runtime once, then 300 times uploads the small
// split, builds a Trainer (network, velocities, shuffle, statistics), trains
// three steps, reads a checkpoint back and releases it all. Resident memory
// must level off once PoCL's and glibc's caches have grown.
func TestSoakTrainers(t *testing.T) {
	rt := open(t, kernels.GemmAuto)
	split := smallSplit(t)
	const iterations = 300
	soak(t, "trainers", iterations, func(i int) {
		cfg := nn.Config{Hidden: []int{64}, Batch: 20, Epochs: 1, Seed: uint64(i), LR: 0.05,
			Momentum: 0.9, Nesterov: true, WeightDecay: 1e-4}
		tr, err := nn.NewTrainer(rt, split, cfg)
		if err != nil {
			t.Fatalf("iteration %d: %v", i, err)
		}
		if _, err := tr.Epoch(cltest.StepsContext(3)); !errors.Is(err, context.Canceled) {
			tr.Release()
			t.Fatalf("iteration %d: Epoch after 3 steps: %v, want it interrupted", i, err)
		}
		if _, steps := tr.Position(); steps != 3 {
			t.Fatalf("iteration %d: stopped after %d steps, want 3", i, steps)
		}
		_, err = tr.Checkpoint()
		tr.Release()
		if err != nil {
			t.Fatalf("iteration %d: %v", i, err)
		}
	})
}

// TestSoakRuntimes opens and closes the whole Runtime (context, queue, every
// kernel program) 50 times, each time training a few steps of a network on
// it, and checks resident memory the same way.
func TestSoakRuntimes(t *testing.T) {
	dev := cltest.Device(t)
	const iterations, rows = 50, 16
	sizes := nn.Sizes(784, []int{64}, 10)
	rng := rand.New(rand.NewPCG(1, 2))
	x, labels := make([]float32, rows*784), make([]int32, rows)
	for i := range x {
		x[i] = rng.Float32()
	}
	for i := range labels {
		labels[i] = int32(rng.IntN(10))
	}
	soak(t, "runtimes", iterations, func(i int) {
		rt, err := nn.Open(dev, kernels.Options{})
		if err != nil {
			t.Fatalf("iteration %d: %v", i, err)
		}
		err = func() error {
			defer rt.Close()
			net, err := nn.NewNetwork(rt, sizes, rows, uint64(i))
			if err != nil {
				return err
			}
			defer net.Release()
			if err := net.AllocVelocity(); err != nil {
				return err
			}
			if err := net.SetBatch(x, labels); err != nil {
				return err
			}
			for range 3 {
				for _, step := range []func() error{
					func() error { return net.Forward(rows) },
					func() error { return net.Backward(rows) },
					func() error { return net.Step(kernels.Hyper{LR: 0.05, Momentum: 0.9}) },
				} {
					if err := step(); err != nil {
						return err
					}
				}
			}
			_, _, err = net.BatchLoss(rows)
			return err
		}()
		if err != nil {
			t.Fatalf("iteration %d: %v", i, err)
		}
	})
}
