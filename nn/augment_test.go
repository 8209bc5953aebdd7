package nn_test

import (
	"context"
	"strings"
	"testing"

	"github.com/mnist-cl/mnist-cl/kernels"
	"github.com/mnist-cl/mnist-cl/nn"
)

// augmented is a small run with the default affine distortion.
func augmented() nn.Config {
	return nn.Config{Hidden: []int{37, 13}, Batch: 10, Epochs: 3, Seed: 9, Loss: nn.CrossEntropy,
		LR: 0.05, Momentum: 0.9, Nesterov: true, WeightDecay: 1e-3, Schedule: nn.Cosine, Augment: nn.DefaultAffine()}
}

// TestResumeIsBitIdenticalAugmented: the distortions are drawn from (seed,
// epoch, image), never from state, so a run stopped inside an epoch and
// resumed in a new Trainer ends with the same bits.
func TestResumeIsBitIdenticalAugmented(t *testing.T) {
	checkResume(t, augmented())
	for _, a := range []nn.Augment{nn.DefaultElastic(), {Kind: nn.AugmentAffineElastic, Rotate: 12, Scale: 0.1, Shift: 0.1, Sigma: 4, Alpha: 34}} {
		t.Run(a.Kind.String(), func(t *testing.T) {
			cfg := augmented()
			cfg.Augment = a
			checkResume(t, cfg)
		})
	}
}

// TestAugmentChangesTraining checks that the Trainer's steps do gather the
// distorted images (the loss of an epoch differs from the plain run's), and
// that the same augmented run twice gives the same bits.
func TestAugmentChangesTraining(t *testing.T) {
	rt := open(t, kernels.GemmAuto)
	split := smallSplit(t)
	run := func(cfg nn.Config) nn.Epoch {
		tr, err := nn.NewTrainer(rt, split, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Release()
		e, err := tr.Epoch(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	plain := augmented()
	plain.Augment = nn.Augment{}
	elastic := augmented()
	elastic.Augment = nn.DefaultElastic()
	p := run(plain)
	for _, cfg := range []nn.Config{augmented(), elastic} {
		a, b := run(cfg), run(cfg)
		if a.TrainLoss != b.TrainLoss || a.ValLoss != b.ValLoss {
			t.Errorf("the same %s epoch twice: train loss %v and %v, validation %v and %v", cfg.Augment.Kind, a.TrainLoss, b.TrainLoss, a.ValLoss, b.ValLoss)
		}
		if a.TrainLoss == p.TrainLoss {
			t.Errorf("%s and plain epochs have the same training loss %v", cfg.Augment.Kind, a.TrainLoss)
		}
	}
}

// TestCheckpointRecordsAugment: an augmented run's checkpoint carries its
// distortion and reads back with it; a plain run's has no augment metadata
// at all (its file is what it was before augmentation existed).
func TestCheckpointRecordsAugment(t *testing.T) {
	rt := open(t, kernels.GemmAuto)
	for _, aug := range []nn.Augment{{}, {Kind: nn.AugmentAffine, Rotate: 7.5, Scale: 0.05, Shift: 0.125},
		{Kind: nn.AugmentElastic, Sigma: 4.5, Alpha: 30}, {Kind: nn.AugmentAffineElastic, Rotate: 7.5, Scale: 0.05, Shift: 0.125, Sigma: 4.5, Alpha: 30}} {
		cfg := augmented()
		cfg.Hidden, cfg.Augment = []int{7}, aug
		tr, err := nn.NewTrainer(rt, smallSplit(t), cfg)
		if err != nil {
			t.Fatal(err)
		}
		c, err := tr.Checkpoint()
		tr.Release()
		if err != nil {
			t.Fatal(err)
		}
		f := c.File()
		if _, ok := f.Metadata["augment"]; ok != (aug.Kind != nn.AugmentNone) {
			t.Errorf("augment %v: metadata %v", aug, f.Metadata)
		}
		if _, ok := f.Metadata["augment_sigma"]; ok != aug.Kind.HasElastic() {
			t.Errorf("augment %v: metadata %v", aug, f.Metadata)
		}
		back, err := nn.CheckpointFromFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if back.Config.Augment != aug {
			t.Errorf("augment %v read back as %v", aug, back.Config.Augment)
		}
		if aug.Kind == nn.AugmentNone {
			continue
		}
		bad := map[string]string{"augment": "shear", "augment_rotate": "wide", "augment_scale": "2"}
		if aug.Kind.HasElastic() {
			bad["augment_sigma"], bad["augment_alpha"] = "0", "-1"
		}
		for key, v := range bad {
			f := c.File()
			f.Metadata[key] = v
			if _, err := nn.CheckpointFromFile(f); err == nil {
				t.Errorf("metadata %s = %q accepted", key, v)
			}
		}
	}
}

func TestAugmentValidate(t *testing.T) {
	base := augmented()
	for _, c := range []struct {
		aug  nn.Augment
		want string // "" for valid
	}{
		{nn.Augment{}, ""},
		{nn.DefaultAffine(), ""},
		{nn.Augment{Kind: nn.AugmentAffine}, ""},
		{nn.Augment{Rotate: 12}, "none with"},
		{nn.Augment{Kind: nn.AugmentAffine, Rotate: -1}, "rotate"},
		{nn.Augment{Kind: nn.AugmentAffine, Rotate: 181}, "rotate"},
		{nn.Augment{Kind: nn.AugmentAffine, Scale: 0.6}, "scale"},
		{nn.Augment{Kind: nn.AugmentAffine, Shift: 0.75}, "shift"},
		{nn.Augment{Kind: 7}, "unknown"},
		{nn.DefaultElastic(), ""},
		{nn.Augment{Kind: nn.AugmentAffineElastic, Rotate: 12, Sigma: 4, Alpha: 34}, ""},
		{nn.Augment{Kind: nn.AugmentElastic, Sigma: 4}, ""},
		{nn.Augment{Kind: nn.AugmentElastic, Alpha: 34}, "sigma"},
		{nn.Augment{Kind: nn.AugmentElastic, Sigma: 11, Alpha: 34}, "sigma"},
		{nn.Augment{Kind: nn.AugmentElastic, Sigma: 4, Alpha: -1}, "alpha"},
		{nn.Augment{Kind: nn.AugmentElastic, Rotate: 5, Sigma: 4, Alpha: 34}, "affine ranges"},
		{nn.Augment{Kind: nn.AugmentAffine, Sigma: 4}, "elastic sigma"},
	} {
		cfg := base
		cfg.Augment = c.aug
		err := cfg.Validate()
		if (err == nil) != (c.want == "") || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("augment %+v: error %v, want one containing %q", c.aug, err, c.want)
		}
	}
	for _, s := range []string{"none", "affine", "elastic", "affine+elastic"} {
		if k, err := nn.ParseAugmentKind(s); err != nil || k.String() != s {
			t.Errorf("ParseAugmentKind(%q) = %v, %v", s, k, err)
		}
	}
	if _, err := nn.ParseAugmentKind("shear"); err == nil {
		t.Error("ParseAugmentKind(shear): no error")
	}
}

// TestResumeRefusesOtherElasticNoise: an elastic checkpoint written before
// the noise was numbered (or with another numbering) draws other fields
// than this build, so resuming it is refused, before anything is uploaded;
// one with this build's numbering, through its file, resumes.
func TestResumeRefusesOtherElasticNoise(t *testing.T) {
	rt := open(t, kernels.GemmAuto)
	cfg := augmented()
	cfg.Augment = nn.DefaultElastic()
	tr, err := nn.NewTrainer(rt, smallSplit(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Release()
	c, err := tr.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	f := c.File()
	back, err := nn.CheckpointFromFile(f)
	if err != nil || back.ElasticNoise != kernels.ElasticNoise {
		t.Fatalf("read back: noise numbering %v, %v; want %d", back.ElasticNoise, err, kernels.ElasticNoise)
	}
	if err := tr.Restore(back); err != nil {
		t.Fatalf("resume with this build's noise: %v", err)
	}
	delete(f.Metadata, "augment_noise")
	old, err := nn.CheckpointFromFile(f)
	if err != nil {
		t.Fatalf("an elastic checkpoint without the numbering must still read (eval, predict): %v", err)
	}
	if err := tr.Restore(old); err == nil || !strings.Contains(err.Error(), "noise") {
		t.Fatalf("resume of a checkpoint of unnumbered noise: %v, want a refusal naming the noise", err)
	}
}
