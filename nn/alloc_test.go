package nn_test

import (
	"testing"

	"github.com/mnist-cl/mnist-cl/kernels"
	"github.com/mnist-cl/mnist-cl/nn"
)

// TestStepAllocations keeps the hot path free of Go allocations: a training
// step is the 11 launches of its nn.Plan for a three-layer network (plus the
// register GEMM's transposes; see mnist-cl plan), and garbage per launch
// would be garbage per image.
func TestStepAllocations(t *testing.T) {
	rt := open(t, kernels.GemmAuto)
	net, err := nn.NewNetwork(rt, nn.Sizes(784, []int{37, 13}, 10), 16, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer net.Release()
	d, err := rt.Upload(smallSplit(t).Train)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Release()
	stats, err := rt.Context.NewBuffer(8)
	if err != nil {
		t.Fatal(err)
	}
	defer stats.Release()
	if err := net.AllocVelocity(); err != nil {
		t.Fatal(err)
	}
	h := kernels.Hyper{LR: 0.01, Momentum: 0.9, Nesterov: true, WeightDecay: 1e-4}
	// The Trainer's step: gather, forward, statistics, backward and update.
	allocs := testing.AllocsPerRun(20, func() {
		if err := net.GatherBatch(d, d.Order(), 5, 16); err != nil {
			t.Fatal(err)
		}
		if err := net.Forward(16); err != nil {
			t.Fatal(err)
		}
		if err := net.Stats(16, stats, 0); err != nil {
			t.Fatal(err)
		}
		if err := net.BackwardStep(16, h); err != nil {
			t.Fatal(err)
		}
	})
	if err := rt.Queue.Finish(); err != nil {
		t.Fatal(err)
	}
	if allocs > 0 {
		t.Errorf("a training step allocates %.0f times", allocs)
	}
}
