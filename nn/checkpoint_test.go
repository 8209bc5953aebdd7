package nn_test

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mnist-cl/mnist-cl/kernels"
	"github.com/mnist-cl/mnist-cl/nn"
)

// TestResumeIsBitIdentical stops a run inside an epoch (at the first
// progress report), saves it, resumes it in a new Trainer and checks that
// the weights and velocities at the end equal, bit for bit, those of the
// same run left alone.
func TestResumeIsBitIdentical(t *testing.T) {
	checkResume(t, nn.Config{Hidden: []int{37, 13}, Batch: 10, Epochs: 3, Seed: 9, Loss: nn.CrossEntropy,
		LR: 0.05, Momentum: 0.9, Nesterov: true, WeightDecay: 1e-3, Schedule: nn.Cosine})
}

// checkResume is TestResumeIsBitIdentical for the run of cfg.
func checkResume(t *testing.T, cfg nn.Config) {
	t.Helper()
	rt := open(t, kernels.GemmAuto)
	split := smallSplit(t)
	whole, err := nn.NewTrainer(rt, split, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer whole.Release()
	for range cfg.Epochs {
		if _, err := whole.Epoch(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	want, err := whole.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}

	first, err := nn.NewTrainer(rt, split, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Release()
	ctx, cancel := context.WithCancel(context.Background())
	first.Progress = func(p nn.Progress) {
		if p.Epoch == 2 {
			cancel()
		}
	}
	if _, err := first.Epoch(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := first.Epoch(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("epoch 2 with a cancel at its first report: %v", err)
	}
	if done, step := first.Position(); done != 1 || step == 0 {
		t.Fatalf("stopped at %d epochs and %d steps; want inside epoch 2", done, step)
	}
	path := filepath.Join(t.TempDir(), "run.safetensors")
	saved, err := first.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	if err := nn.WriteCheckpoint(path, saved); err != nil {
		t.Fatal(err)
	}

	ck, err := nn.ReadCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	second, err := nn.NewTrainer(rt, split, ck.Config)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Release()
	if err := second.Restore(ck); err != nil {
		t.Fatal(err)
	}
	for done, _ := second.Position(); done < cfg.Epochs; done, _ = second.Position() {
		if _, err := second.Epoch(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	got, err := second.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	for l := 1; l < len(want.Sizes); l++ {
		for name, pair := range map[string][2][]float32{
			"W": {got.W[l], want.W[l]}, "b": {got.B[l], want.B[l]},
			"vW": {got.VW[l], want.VW[l]}, "vb": {got.VB[l], want.VB[l]},
		} {
			for i := range pair[1] {
				if pair[0][i] != pair[1][i] {
					t.Fatalf("%s%d[%d] = %v after resuming, %v without a stop", name, l, i, pair[0][i], pair[1][i])
				}
			}
		}
	}
}

// TestCheckpointRoundTrip writes and reads a checkpoint and checks every
// field survives, with PyTorch's [out, in] layout on disk.
func TestCheckpointRoundTrip(t *testing.T) {
	rt := open(t, kernels.GemmAuto)
	cfg := nn.DefaultConfig()
	cfg.Hidden, cfg.Epochs, cfg.Batch = []int{7}, 2, 50
	tr, err := nn.NewTrainer(rt, smallSplit(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Release()
	if _, err := tr.Epoch(context.Background()); err != nil {
		t.Fatal(err)
	}
	c, err := tr.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	f := c.File()
	w1, ok := f.Get("fc1.weight")
	if !ok || len(w1.Shape) != 2 || w1.Shape[0] != 7 || w1.Shape[1] != 784 {
		t.Fatalf("fc1.weight: %v %v, want shape [7 784]", ok, w1)
	}
	// fc1.weight[o][i] is W1[i][o].
	if w1.Data[3*784+100] != c.W[1][100*7+3] {
		t.Fatal("fc1.weight is not W1 transposed")
	}
	back, err := nn.CheckpointFromFile(f)
	if err != nil {
		t.Fatal(err)
	}
	if back.Epoch != 1 || back.Step != 0 || back.Config.Optimizer() != "nesterov" || back.Config.LR != cfg.LR ||
		back.Config.WeightDecay != cfg.WeightDecay || back.Config.Schedule != cfg.Schedule || back.Train != 900 {
		t.Fatalf("read back %+v, config %+v", back, back.Config)
	}
	for i := range c.W[2] {
		if back.W[2][i] != c.W[2][i] {
			t.Fatalf("W2[%d] changed in the round trip", i)
		}
	}
	if _, ok := f.Metadata["run_record"]; ok || back.RunRecord != "" {
		t.Errorf("a checkpoint without a run record has one: %q", f.Metadata["run_record"])
	}
	// The run record is kept as it was given, and changes nothing else.
	c.RunRecord = `{"device":"x","args":["--epochs","2"]}`
	withRecord, err := nn.CheckpointFromFile(c.File())
	if err != nil {
		t.Fatalf("with a run record: %v", err)
	}
	if withRecord.RunRecord != c.RunRecord || withRecord.Config.LR != cfg.LR {
		t.Errorf("with a run record: read back %q, lr %v", withRecord.RunRecord, withRecord.Config.LR)
	}
	c.RunRecord = ""

	// A network whose outputs are not the ten digits is refused by name,
	// even when its tensors agree with its sizes: eval would index its
	// logits with labels up to 9.
	five := *c
	five.Sizes = []int{784, 7, 5}
	five.W = [][]float32{nil, c.W[1], c.W[2][:7*5]}
	five.B = [][]float32{nil, c.B[1], c.B[2][:5]}
	five.VW = [][]float32{nil, c.VW[1], c.VW[2][:7*5]}
	five.VB = [][]float32{nil, c.VB[1], c.VB[2][:5]}
	if _, err := nn.CheckpointFromFile(five.File()); err == nil || !strings.Contains(err.Error(), "5 outputs") {
		t.Errorf("a network of 5 outputs: got %v, want a refusal naming its outputs", err)
	}

	// Every mismatch is an error, never a panic.
	for name, mutate := range map[string]func(){
		"format":      func() { f.Metadata["format"] = "other/9" },
		"sizes":       func() { f.Metadata["sizes"] = "784-8-10" },
		"lr":          func() { f.Metadata["lr"] = "fast" },
		"position":    func() { f.Metadata["epoch"] = "99" },
		"optimizer":   func() { f.Metadata["optimizer"] = "adam" },
		"missing":     func() { f.Tensors = f.Tensors[1:] },
		"shape":       func() { f.Tensors[0].Shape = []int{784, 7} },
		"no velocity": func() { f.Tensors = f.Tensors[:4] },
		"NaN":         func() { f.Tensors[0].Data[5] = float32(math.NaN()) }, // a copy: fc1.weight is transposed
	} {
		f = c.File()
		mutate()
		if _, err := nn.CheckpointFromFile(f); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
