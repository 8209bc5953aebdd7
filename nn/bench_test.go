package nn_test

import (
	"fmt"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/mnist-cl/mnist-cl/cpuref"
	"github.com/mnist-cl/mnist-cl/kernels"
	"github.com/mnist-cl/mnist-cl/nn"
)

// benchBatch is the first batch images of testdata's MNIST sample, scaled,
// with their labels: real images, whose zero pixels the input layer's
// products skip as in training (random pixels have none).
func benchBatch(b *testing.B, batch int) ([]float32, []int32) {
	train := nn.SmallSplit(b).Train
	if train.Len() < batch {
		b.Fatalf("batch %d: testdata has %d training images", batch, train.Len())
	}
	return train.Slice(0, batch).Batch()
}

// BenchmarkStep784x512x256x10 is one training step (forward, backward,
// Nesterov update) of the default network on the device at batch 64, 128 and
// 512, queued b.N times and waited for once, as training runs.
func BenchmarkStep784x512x256x10(b *testing.B) {
	rt := open(b, kernels.GemmAuto)
	for _, batch := range []int{64, 128, 512} {
		b.Run(fmt.Sprintf("Batch%d", batch), func(b *testing.B) { benchStep(b, rt, batch) })
	}
}

func benchStep(b *testing.B, rt *nn.Runtime, batch int) {
	net, err := nn.NewNetwork(rt, nn.Sizes(784, []int{512, 256}, 10), batch, 1)
	if err != nil {
		b.Fatal(err)
	}
	defer net.Release()
	if err := net.AllocVelocity(); err != nil {
		b.Fatal(err)
	}
	x, labels := benchBatch(b, batch)
	if err := net.SetBatch(x, labels); err != nil {
		b.Fatal(err)
	}
	h := nn.DefaultConfig().Hyper(0.01)
	step := func() {
		if err := net.Forward(batch); err != nil {
			b.Fatal(err)
		}
		if err := net.BackwardStep(batch, h); err != nil {
			b.Fatal(err)
		}
	}
	step()
	if err := rt.Queue.Finish(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		step()
	}
	if err := rt.Queue.Finish(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "images/s")
}

// BenchmarkStepCPURef784x512x256x10Batch128 is the same step in float64 on
// gonum, for the ratio.
func BenchmarkStepCPURef784x512x256x10Batch128(b *testing.B) {
	sizes := nn.Sizes(784, []int{512, 256}, 10)
	w, bias := nn.InitParams(sizes, 1)
	p, err := cpuref.FromFloat32(sizes, w, bias)
	if err != nil {
		b.Fatal(err)
	}
	x32, labels32 := benchBatch(b, 128)
	xd := make([]float64, len(x32))
	for i, v := range x32 {
		xd[i] = float64(v)
	}
	x := mat.NewDense(128, 784, xd)
	labels := make([]int, len(labels32))
	for i, y := range labels32 {
		labels[i] = int(y)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a := cpuref.Forward(p, x)
		g := cpuref.Backward(p, a, labels)
		cpuref.Step(p, g, 0.01)
	}
	b.ReportMetric(128*float64(b.N)/b.Elapsed().Seconds(), "images/s")
}
