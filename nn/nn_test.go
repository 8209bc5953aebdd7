package nn_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/mnist-cl/mnist-cl/cl"
	"github.com/mnist-cl/mnist-cl/cpuref"
	"github.com/mnist-cl/mnist-cl/internal/cltest"
	"github.com/mnist-cl/mnist-cl/internal/verify"
	"github.com/mnist-cl/mnist-cl/kernels"
	"github.com/mnist-cl/mnist-cl/mnist"
	"github.com/mnist-cl/mnist-cl/nn"
)

func open(t testing.TB, kind kernels.GemmKind) *nn.Runtime {
	t.Helper()
	rt, err := nn.Open(cltest.Device(t), kernels.Options{Gemm: kind})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Close)
	return rt
}

// smallSplit is testdata/mnist-small (see SmallSplit in limits_test.go).
var smallSplit = nn.SmallSplit

// trainings are the losses and optimisers a step is checked with: the
// lecture's, and the other loss with every optimiser feature at once, from
// random velocities so that the momentum term is not zero.
var trainings = []struct {
	name string
	loss nn.Loss
	h    kernels.Hyper
}{
	{"xent-sgd", nn.CrossEntropy, kernels.Hyper{LR: 0.1}},
	{"mse-nesterov-wd", nn.MSE, kernels.Hyper{LR: 0.1, Momentum: 0.9, Nesterov: true, WeightDecay: 1e-3}},
	{"xent-momentum", nn.CrossEntropy, kernels.Hyper{LR: 0.05, Momentum: 0.5}},
}

// TestStepMatchesReference runs one forward, backward and update per shape on
// random data and compares every tensor with cpuref, for both GEMM kernels,
// both losses and each optimiser. Some batches are shorter than the
// network's (an epoch's last step); every output buffer starts as NaN; and no
// hidden unit is left dead, so no comparison is of two zeros.
func TestStepMatchesReference(t *testing.T) {
	shapes := []struct {
		hidden         []int
		maxBatch, rows int
	}{
		{[]int{512, 256}, 128, 128}, {[]int{512, 256}, 1, 1}, {[]int{512, 256}, 7, 7}, {[]int{512, 256}, 129, 129},
		{[]int{512, 256}, 128, 88}, {[]int{1}, 7, 7}, {[]int{1}, 129, 7}, {[]int{37, 13}, 129, 129},
		{[]int{37, 13}, 1, 1}, {[]int{37, 13}, 64, 1}, {[]int{5, 17, 3}, 33, 33},
	}
	for _, kind := range []kernels.GemmKind{kernels.GemmRegister, kernels.GemmTiled} {
		rt := open(t, kind)
		for i, sh := range shapes {
			tr := trainings[i%len(trainings)]
			name := fmt.Sprintf("%s/%s/hidden%v/batch%d/rows%d", kind, tr.name, sh.hidden, sh.maxBatch, sh.rows)
			t.Run(name, func(t *testing.T) {
				sizes := nn.Sizes(784, sh.hidden, 10)
				net, err := nn.NewNetwork(rt, sizes, sh.maxBatch, 7)
				if err != nil {
					t.Fatal(err)
				}
				defer net.Release()
				rng := rand.New(rand.NewPCG(cltest.Seed(t), uint64(sh.rows)))
				x := make([]float32, sh.rows*784)
				for i := range x {
					x[i] = rng.Float32()
				}
				labels := make([]int32, sh.rows)
				for i := range labels {
					labels[i] = int32(rng.IntN(10))
				}
				if err := net.SetBatch(x, labels); err != nil {
					t.Fatal(err)
				}
				reviveDeadUnits(t, net, sh.rows, x)
				net.Loss = tr.loss
				want := 6*(len(sh.hidden)+1) + 3 // Z, Yp, loss, hits; delta, dW, db; W and b updated
				if tr.h.Momentum != 0 {
					randomVelocity(t, net, rng)
					want += 2 * (len(sh.hidden) + 1)
				}
				poisonOutputs(t, rt, net)
				checks, err := verify.Step(net, sh.rows, tr.h)
				if err != nil {
					t.Fatal(err)
				}
				if len(checks) != want {
					t.Fatalf("%d checks, want %d: some tensor is not compared", len(checks), want)
				}
				for _, c := range checks {
					if !c.Pass() {
						t.Errorf("%s: relative error %.3g > %.0g", c.Tensor, c.Err, c.Tol)
					}
					if c.Tol > 0 && c.Ref == 0 {
						t.Errorf("%s: the reference is zero, so the check says nothing", c.Tensor)
					}
				}
			})
		}
	}
}

// reviveDeadUnits flips the sign of each hidden unit's incoming weights when
// the unit is off (ReLU input <= 0) for every row of the batch, layer by
// layer. Biases start at zero, so the flip turns it on; otherwise a narrow
// layer (one unit, and x >= 0) is dead for half of all seeds.
func reviveDeadUnits(t *testing.T, net *nn.Network, rows int, x []float32) {
	t.Helper()
	sizes := net.Sizes()
	w, b, err := net.Params()
	if err != nil {
		t.Fatal(err)
	}
	for l := 1; l < net.Layers(); l++ {
		ref, err := cpuref.FromFloat32(sizes, w, b)
		if err != nil {
			t.Fatal(err)
		}
		z := cpuref.Forward(ref, cpuref.Dense32(rows, sizes[0], x)).Z[l]
		for j := 0; j < sizes[l]; j++ {
			if mat.Max(z.ColView(j)) > 0 {
				continue
			}
			for i := 0; i < sizes[l-1]; i++ {
				w[l][i*sizes[l]+j] = -w[l][i*sizes[l]+j]
			}
		}
	}
	if err := net.SetParams(w, b); err != nil {
		t.Fatal(err)
	}
}

// randomVelocity gives the network velocities of the size of a typical step.
func randomVelocity(t *testing.T, net *nn.Network, rng *rand.Rand) {
	t.Helper()
	sizes := net.Sizes()
	L := net.Layers()
	vw, vb := make([][]float32, L+1), make([][]float32, L+1)
	for l := 1; l <= L; l++ {
		vw[l] = cltest.Float32(cltest.Rand(rng, sizes[l-1], sizes[l], -0.01, 0.01))
		vb[l] = cltest.Float32(cltest.Rand(rng, 1, sizes[l], -0.01, 0.01))
	}
	if err := net.SetVelocity(vw, vb); err != nil {
		t.Fatal(err)
	}
}

// poisonOutputs fills every buffer the step writes with NaN, so an element a
// kernel leaves unwritten fails its comparison.
func poisonOutputs(t *testing.T, rt *nn.Runtime, net *nn.Network) {
	t.Helper()
	bufs := []*cl.Buffer{net.Yp}
	for l := 1; l <= net.Layers(); l++ {
		bufs = append(bufs, net.Z[l], net.DZ[l], net.DW[l], net.DB[l])
	}
	for _, b := range bufs {
		if err := rt.Queue.FillFloat32(b, float32(math.NaN()), 0, b.Size()/4); err != nil {
			t.Fatal(err)
		}
	}
}

func TestInitParamsIsDeterministicAndHeScaled(t *testing.T) {
	sizes := []int{784, 512, 10}
	w1, _ := nn.InitParams(sizes, 42)
	w2, _ := nn.InitParams(sizes, 42)
	w3, _ := nn.InitParams(sizes, 43)
	same, differ := true, false
	var ss float64
	for i := range w1[1] {
		same = same && w1[1][i] == w2[1][i]
		differ = differ || w1[1][i] != w3[1][i]
		ss += float64(w1[1][i]) * float64(w1[1][i])
	}
	if !same || !differ {
		t.Fatalf("same seed same weights: %v; other seed other weights: %v", same, differ)
	}
	// He: variance 2/fanIn.
	if v := ss / float64(len(w1[1])); math.Abs(v-2.0/784)/(2.0/784) > 0.02 {
		t.Fatalf("W1 variance %.3g, want about %.3g", v, 2.0/784)
	}
}

func TestConfigValidate(t *testing.T) {
	bad := map[string]func(*nn.Config){
		"no hidden":   func(c *nn.Config) { c.Hidden = nil },
		"zero hidden": func(c *nn.Config) { c.Hidden = []int{512, 0} },
		"batch 0":     func(c *nn.Config) { c.Batch = 0 },
		"lr 0":        func(c *nn.Config) { c.LR = 0 },
		"lr negative": func(c *nn.Config) { c.LR = -0.1 },
		"lr NaN":      func(c *nn.Config) { c.LR = float32(math.NaN()) },
		"lr Inf":      func(c *nn.Config) { c.LR = float32(math.Inf(1)) },
		"epochs 0":    func(c *nn.Config) { c.Epochs = 0 },
		// Under the default cosine schedule too: a checkpoint keeps them.
		"step-gamma NaN": func(c *nn.Config) { c.StepGamma = float32(math.NaN()) },
		"step-gamma 2":   func(c *nn.Config) { c.StepGamma = 2 },
		"step-every -3":  func(c *nn.Config) { c.StepEvery = -3 },
	}
	if err := nn.DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	for name, mutate := range bad {
		c := nn.DefaultConfig()
		mutate(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func trainSmall(t *testing.T, rt *nn.Runtime, split *mnist.Split, cfg nn.Config) (*nn.Trainer, []nn.Epoch) {
	t.Helper()
	tr, err := nn.NewTrainer(rt, split, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Release)
	var eps []nn.Epoch
	for i := 0; i < cfg.Epochs; i++ {
		ep, err := tr.Epoch(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		eps = append(eps, ep)
	}
	return tr, eps
}

// TestTrainingLearns trains on the 1,000-image subset: the loss must fall and
// the accuracy rise far above chance; and a second run with the same seed
// must end with bit-identical weights.
func TestTrainingLearns(t *testing.T) {
	rt := open(t, kernels.GemmAuto)
	split := smallSplit(t)
	cfg := nn.Config{Hidden: []int{64, 32}, Batch: 37, LR: 0.05, Epochs: 10, Seed: 5}
	tr, eps := trainSmall(t, rt, split, cfg)
	first, last := eps[0], eps[len(eps)-1]
	if !(last.TrainLoss < 0.5*first.TrainLoss) {
		t.Errorf("train loss %.4f -> %.4f: did not halve", first.TrainLoss, last.TrainLoss)
	}
	loss, acc, err := tr.Test()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("epochs %+v; test loss %.4f accuracy %.3f", eps, loss, acc)
	if acc < 0.75 || last.ValAccuracy < 0.75 {
		t.Errorf("test accuracy %.3f, validation %.3f: want both >= 0.75", acc, last.ValAccuracy)
	}

	tr2, _ := trainSmall(t, rt, split, cfg)
	w1, b1, err := tr.Net.Params()
	if err != nil {
		t.Fatal(err)
	}
	w2, b2, err := tr2.Net.Params()
	if err != nil {
		t.Fatal(err)
	}
	for l := 1; l < len(w1); l++ {
		for i := range w1[l] {
			if math.Float32bits(w1[l][i]) != math.Float32bits(w2[l][i]) {
				t.Fatalf("W%d[%d] differs between two runs with one seed: %v vs %v", l, i, w1[l][i], w2[l][i])
			}
		}
		for i := range b1[l] {
			if math.Float32bits(b1[l][i]) != math.Float32bits(b2[l][i]) {
				t.Fatalf("b%d[%d] differs between two runs with one seed", l, i)
			}
		}
	}
}

func TestTrainerStopsOnCancel(t *testing.T) {
	rt := open(t, kernels.GemmAuto)
	tr, err := nn.NewTrainer(rt, smallSplit(t), nn.Config{Hidden: []int{8}, Batch: 10, LR: 0.1, Epochs: 1, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Release()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := tr.Epoch(ctx); err == nil {
		t.Fatal("epoch ran to the end with a cancelled context")
	}
}

func TestTrainerReportsDivergence(t *testing.T) {
	rt := open(t, kernels.GemmAuto)
	tr, err := nn.NewTrainer(rt, smallSplit(t), nn.Config{Hidden: []int{512, 256}, Batch: 128, LR: 1e6, Epochs: 1, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Release()
	_, err = tr.Epoch(context.Background())
	if err == nil || !strings.Contains(err.Error(), "diverged at epoch 1 step") || !strings.Contains(err.Error(), "smaller --lr") {
		t.Fatalf("lr 1e6: error %v, want a divergence naming the epoch and step", err)
	}
}
