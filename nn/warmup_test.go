package nn

import (
	"slices"
	"testing"
)

// TestWarmUpCoversEveryBatchAndKeepsTheWeights checks the Trainer's warm-up:
// it runs a step at a full batch and at the training set's last one, and a
// forward pass at the evaluation sets' last ones (900, 100 and 500 images
// at batch 64: 64 and 4 with steps, 36 and 52 forward only), and it leaves
// the weights and biases bit for bit as the seed made them.
func TestWarmUpCoversEveryBatchAndKeepsTheWeights(t *testing.T) {
	rt := openLimits(t)
	split := SmallSplit(t)
	cfg := Config{Hidden: []int{37, 13}, Batch: 64, LR: 0.1, Epochs: 1, Seed: 3, Momentum: 0.9, Nesterov: true, WeightDecay: 5e-4}
	tr, err := NewTrainer(rt, split, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Release()
	want := []warmRow{{64, true}, {900 % 64, true}, {100 % 64, false}, {500 % 64, false}}
	if got := tr.warmRows(); !slices.Equal(got, want) {
		t.Errorf("warm-up row counts %v, want %v", got, want)
	}
	w, b, err := tr.Net.Params()
	if err != nil {
		t.Fatal(err)
	}
	w0, b0 := InitParams(Sizes(split.Train.Pixels(), cfg.Hidden, 10), cfg.Seed)
	for l := range w0 {
		if !slices.Equal(w[l], w0[l]) || !slices.Equal(b[l], b0[l]) {
			t.Errorf("layer %d: the warm-up changed the seed's weights or biases", l+1)
		}
	}
}
