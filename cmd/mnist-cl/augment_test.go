package main

import (
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mnist-cl/mnist-cl/nn"
)

// TestTrainAugment trains with distortions, draws them, and resumes: with
// the same distortion the run goes on, with another it is refused.
func TestTrainAugment(t *testing.T) {
	small, ck, pic := trainAugmented(t, "augment affine (rotate 8, scale 0.1, shift 0.1)", "--augment", "affine", "--rotate", "8")
	f, err := os.Open(pic)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if img, err := png.Decode(f); err != nil || img.Bounds().Dx() < 7*28*3 || img.Bounds().Dy() < 8*28*3 {
		t.Fatalf("plot-augment: %v, %v", err, img.Bounds())
	}
	checkAugmentResume(t, small, ck, []string{"--augment", "none"}, []string{"--rotate", "12"})
}

// trainAugmented trains one epoch of a small network with the distortion
// flags, saving it and drawing the distortions, and checks that it ran and
// said the distortion. It returns the run's flags, the checkpoint and the
// picture.
func trainAugmented(t *testing.T, said string, flags ...string) (run []string, ck, pic string) {
	t.Helper()
	dir := t.TempDir()
	ck, pic = filepath.Join(dir, "run.safetensors"), filepath.Join(dir, "aug.png")
	run = []string{"train", "--data", smallData, "--hidden", "32", "--batch", "50"}
	code, stdout, stderr := runCmd(t, slices.Concat(run, []string{"--epochs", "1", "--save", ck, "--plot-augment", pic}, flags)...)
	if code != 0 || !strings.Contains(stdout, "test accuracy") || !strings.Contains(stderr, said) {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	return run, ck, pic
}

// checkAugmentResume resumes the run saved in ck with each of changes (each
// refused as a usage error naming the augmentation), then as it was, with
// -plot-augment but no distortion flag: the checkpoint's augmentation is
// the run's.
func checkAugmentResume(t *testing.T, run []string, ck string, changes ...[]string) {
	t.Helper()
	resume := slices.Concat(run, []string{"--epochs", "2", "--resume", ck})
	for _, c := range changes {
		code, _, stderr := runCmd(t, slices.Concat(resume, c)...)
		if code != 2 || !strings.Contains(errorLine(stderr), "augment") {
			t.Fatalf("resume with %v: exit %d, %q", c, code, errorLine(stderr))
		}
	}
	pic := filepath.Join(t.TempDir(), "resumed.png")
	code, stdout, stderr := runCmd(t, slices.Concat(resume, []string{"--plot-augment", pic})...)
	if code != 0 || !strings.Contains(stdout, "epoch  2") {
		t.Fatalf("resume: exit %d\n%s%s", code, stdout, stderr)
	}
	if fi, err := os.Stat(pic); err != nil || fi.Size() == 0 {
		t.Errorf("resume -plot-augment: %v", err)
	}
}

// TestTrainAugmentElastic trains an epoch with the elastic distortion,
// draws it and resumes.
func TestTrainAugmentElastic(t *testing.T) {
	small, ck, pic := trainAugmented(t, "augment elastic (sigma 4, alpha 30)", "--augment", "elastic", "--elastic-alpha", "30")
	if fi, err := os.Stat(pic); err != nil || fi.Size() == 0 {
		t.Fatalf("plot-augment: %v", err)
	}
	checkAugmentResume(t, small, ck, []string{"--elastic-alpha", "34"})
}

// TestAugmentUsage: mistakes with the augmentation flags are usage errors
// (exit 2), caught before any data is read.
func TestAugmentUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--augment", "shear"}, "unknown augmentation"},
		{[]string{"--rotate", "5"}, "-rotate: needs -augment affine"},
		{[]string{"--augment", "elastic", "--shift", "0.1"}, "-shift: needs -augment affine"},
		{[]string{"--augment", "affine", "--elastic-alpha", "3"}, "-elastic-alpha: needs -augment elastic"},
		{[]string{"--augment", "elastic", "--elastic-sigma", "0"}, "sigma"},
		{[]string{"--augment", "affine+elastic", "--elastic-alpha", "-2"}, "alpha"},
		{[]string{"--augment", "affine", "--rotate", "200"}, "rotate"},
		{[]string{"--augment", "affine", "--scale", "0.9"}, "scale"},
		{[]string{"--plot-augment", "x.png"}, "-plot-augment needs"},
		{[]string{"--recipe", "fastest"}, "-recipe: unknown"},
	} {
		args := append([]string{"train", "--data", "/nonexistent"}, c.args...)
		code, _, stderr := runCmd(t, args...)
		if code != 2 || !strings.Contains(errorLine(stderr), c.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", c.args, code, errorLine(stderr), c.want)
		}
	}
}

// TestRecipeBase: -recipe best sets the defaults, which other flags still
// change, wherever it stands among them.
func TestRecipeBase(t *testing.T) {
	for _, args := range [][]string{{"-recipe", "best"}, {"--seed", "3", "--recipe=best"}, {"-recipe=best", "-epochs", "5"}} {
		cfg, err := recipeBase(args)
		if err != nil || cfg.Augment != nn.DefaultAffine() || cfg.Epochs != 30 || cfg.WeightDecay != 1e-4 {
			t.Errorf("recipeBase(%v) = %+v, %v", args, cfg, err)
		}
	}
	if cfg, err := recipeBase([]string{"--epochs", "3"}); err != nil || cfg.Augment.Kind != nn.AugmentNone || cfg.Epochs != nn.DefaultConfig().Epochs {
		t.Errorf("no recipe: %+v, %v", cfg, err)
	}
}

// TestVerifyAugment is verify with the distortion at odd batch sizes: X is
// checked against cpuref.Affine, then the step runs on it.
func TestVerifyAugment(t *testing.T) {
	for _, c := range [][2]string{{"1", "affine"}, {"7", "affine"}, {"1", "elastic"}, {"7", "affine+elastic"}} {
		batch, kind := c[0], c[1]
		tensor := "X (gather_affine)"
		if kind != "affine" {
			tensor = "X (gather_elastic)"
		}
		code, stdout, stderr := runCmd(t, "verify", "--data", smallData, "--augment", kind, "--batch", batch, "--hidden", "37,13")
		if code != 0 || !strings.Contains(stdout, tensor) || !strings.Contains(stdout, "tensors within tolerance") {
			t.Errorf("verify --augment %s --batch %s: exit %d\n%s%s", kind, batch, code, stdout, stderr)
		}
	}
}
