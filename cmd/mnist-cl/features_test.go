package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mnist-cl/mnist-cl/internal/safetensors"
	"github.com/mnist-cl/mnist-cl/mnist"
)

func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mnist-cl")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestInterruptAndResume is the user story through the real binary:
// train with -save, press Ctrl-C (SIGINT) mid-run, resume from the file, and
// end with a checkpoint byte for byte equal to an uninterrupted run's (but
// for the run record, which names each run's own command line).
func TestInterruptAndResume(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	run := []string{"train", "--data", smallData, "--hidden", "64", "--batch", "10", "--epochs", "30", "--seed", "4", "--quiet"}

	whole := filepath.Join(dir, "whole.safetensors")
	if code, _, stderr := runCmd(t, append(run, "--save", whole)...); code != 0 {
		t.Fatalf("uninterrupted run: exit %d: %s", code, stderr)
	}

	cut := filepath.Join(dir, "cut.safetensors")
	cmd := exec.Command(bin, append(run, "--save", cut)...)
	// As runCmd: the in-process runs use the built-in GEMM blocks.
	cmd.Env = append(os.Environ(), "MNISTCL_TUNE=off")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Interrupt once a few epochs are printed, so the signal lands in the
	// middle of the run, most likely inside an epoch.
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		if strings.HasPrefix(lines.Text(), "epoch  3") {
			break
		}
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	for lines.Scan() {
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("after SIGINT: %v, want exit 130\n%s", err, stderr.String())
	}
	var epoch, step int
	for _, l := range strings.Split(stderr.String(), "\n") {
		if strings.HasPrefix(l, "stopped at") {
			if _, err := fmt.Sscanf(l, "stopped at epoch %d step %d", &epoch, &step); err != nil {
				t.Fatalf("parse %q: %v", l, err)
			}
		}
	}
	if epoch == 0 || !strings.Contains(stderr.String(), "resume with: mnist-cl train -resume "+cut) {
		t.Fatalf("no resume hint after SIGINT:\n%s", stderr.String())
	}
	t.Logf("stopped at epoch %d step %d", epoch, step)

	// Fewer epochs than the one it stopped in is refused ("stopped in epoch
	// N", or "finished all" had the signal come between two epochs), and
	// the file kept.
	before, err := os.ReadFile(cut)
	if err != nil {
		t.Fatal(err)
	}
	if code, _, errs := runCmd(t, "train", "--data", smallData, "--resume", cut, "--save", cut, "--epochs", strconv.Itoa(epoch-1)); code != 2 || !strings.Contains(errs, "-resume: "+cut) {
		t.Errorf("resume with -epochs %d, stopped in epoch %d: exit %d: %s", epoch-1, epoch, code, errs)
	}
	if after, err := os.ReadFile(cut); err != nil || !bytes.Equal(before, after) {
		t.Fatalf("a refused resume changed %s (%v)", cut, err)
	}

	code, out, errs := runCmd(t, "train", "--data", smallData, "--resume", cut, "--save", cut, "--quiet")
	if code != 0 {
		t.Fatalf("resume: exit %d: %s", code, errs)
	}
	if !strings.Contains(errs, fmt.Sprintf("resumed %s at epoch %d step %d", cut, epoch, step)) {
		t.Errorf("resume did not say where it starts:\n%s", errs)
	}
	if !strings.Contains(out, "epoch 30") {
		t.Errorf("resumed run did not reach epoch 30:\n%s", out)
	}
	// Byte for byte but for the run records, whose command lines differ.
	a, b := withoutRunRecord(t, whole), withoutRunRecord(t, cut)
	if !bytes.Equal(a, b) {
		t.Fatalf("the resumed run's checkpoint (%d bytes) differs from the uninterrupted run's (%d bytes)", len(b), len(a))
	}

	// A finished run resumes only with more epochs; other settings stay.
	if code, _, errs := runCmd(t, "train", "--data", smallData, "--resume", cut); code != 2 || !strings.Contains(errs, "finished all 30 epochs") {
		t.Errorf("resume of a finished run: exit %d: %s", code, errs)
	}
	if code, _, errs := runCmd(t, "train", "--data", smallData, "--resume", cut, "--epochs", "40", "--lr", "0.3"); code != 2 || !strings.Contains(errs, "lr 0.3, not 0.1") {
		t.Errorf("resume with another -lr: exit %d: %s", code, errs)
	}
	if code, _, errs := runCmd(t, "train", "--data", smallData, "--resume", cut, "--epochs", "31", "--hidden", "32"); code != 2 || !strings.Contains(errs, "hidden [32], not [64]") {
		t.Errorf("resume with other -hidden: exit %d: %s", code, errs)
	}
}

// TestBadCheckpoints feeds eval, predict and train -resume checkpoints that
// are truncated, corrupt or of another network: one line each, exit 1.
func TestBadCheckpoints(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.safetensors")
	if code, _, stderr := runCmd(t, "train", "--data", smallData, "--hidden", "8", "--epochs", "1", "--save", good); code != 0 {
		t.Fatalf("train: exit %d: %s", code, stderr)
	}
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	corrupt := append([]byte(nil), b...)
	copy(corrupt[8:], "[not json")
	files := map[string]string{
		"truncated": write("truncated.safetensors", b[:len(b)/2]),
		"corrupt":   write("corrupt.safetensors", corrupt),
		"empty":     write("empty.safetensors", nil),
		"text":      write("text.safetensors", []byte("hello, world\n")),
		"folder":    dir,
		"missing":   filepath.Join(dir, "nope.safetensors"),
	}
	for name, f := range files {
		for _, args := range [][]string{
			{"eval", "--data", smallData, "--model", f},
			{"predict", "--model", f, "x.png"},
			{"train", "--data", smallData, "--resume", f},
		} {
			code, _, stderr := runCmd(t, args...)
			line := errorLine(stderr)
			if code != 1 || !strings.Contains(line, "checkpoint") || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
				t.Errorf("%s %s: exit %d, stderr %q", args[0], name, code, stderr)
			}
		}
	}
	// A checkpoint of another data size is refused on resume.
	if code, _, stderr := runCmd(t, "train", "--data", filepath.Join(dir, "nodata"), "--resume", good, "--epochs", "2"); code != 1 {
		t.Errorf("resume on missing data: exit %d: %s", code, stderr)
	}
}

// digitPNG draws test image i of the small set as a user would: black ink
// on white paper, four times MNIST's size.
func digitPNG(t *testing.T, set *mnist.Set, i int, path string) {
	t.Helper()
	const scale = 4
	img := image.NewGray(image.Rect(0, 0, set.Cols*scale, set.Rows*scale))
	for y := 0; y < set.Rows*scale; y++ {
		for x := 0; x < set.Cols*scale; x++ {
			img.SetGray(x, y, color.Gray{Y: 255 - set.Images[i*set.Pixels()+(y/scale)*set.Cols+x/scale]})
		}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
}

func TestEvalAndPredict(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "m.safetensors")
	code, trainOut, stderr := runCmd(t, "train", "--data", smallData, "--hidden", "128", "--epochs", "15", "--batch", "20", "--save", model, "--plot", filepath.Join(dir, "curves.png"))
	if code != 0 {
		t.Fatalf("train: exit %d: %s", code, stderr)
	}
	cm, errs := filepath.Join(dir, "cm.png"), filepath.Join(dir, "errors.png")
	code, out, stderr := runCmd(t, "eval", "--data", smallData, "--model", model, "--plot", cm, "--errors", errs)
	if code != 0 {
		t.Fatalf("eval: exit %d: %s", code, stderr)
	}
	// eval's accuracy is the one train reported for the same test set.
	var trainAcc, evalAcc float64
	for _, l := range strings.Split(trainOut, "\n") {
		fmt.Sscanf(l, "test accuracy %f%%", &trainAcc)
	}
	if i := strings.Index(out, "accuracy "); i >= 0 {
		fmt.Sscanf(out[i:], "accuracy %f%%", &evalAcc)
	}
	if evalAcc == 0 || evalAcc != trainAcc {
		t.Errorf("eval accuracy %.2f%%, train reported %.2f%%:\n%s", evalAcc, trainAcc, out)
	}
	for _, want := range []string{"precision", "recall", "confusion matrix"} {
		if !strings.Contains(out, want) {
			t.Errorf("eval output lacks %q:\n%s", want, out)
		}
	}
	for _, p := range []string{filepath.Join(dir, "curves.png"), cm, errs} {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil || img.Bounds().Dx() < 300 {
			t.Errorf("%s: %v, bounds %v", p, err, img)
		}
	}
	if code, _, stderr := runCmd(t, "eval", "--data", smallData, "--model", model, "--split", "train"); code != 2 || !strings.Contains(stderr, "-split") {
		t.Errorf("eval --split train: exit %d: %s", code, stderr)
	}

	// Predict on digits drawn from the test set, which the network mostly
	// gets right: at least 8 of these 10 must come out as their label.
	test := readSmallTest(t)
	var files []string
	for i := 0; i < 10; i++ {
		p := filepath.Join(dir, fmt.Sprintf("digit%d-label%d.png", i, test.Labels[i]))
		digitPNG(t, test, i, p)
		files = append(files, p)
	}
	code, out, stderr = runCmd(t, append([]string{"predict", "--model", model, "--json"}, files...)...)
	if code != 0 {
		t.Fatalf("predict: exit %d: %s", code, stderr)
	}
	var preds []prediction
	if err := json.Unmarshal([]byte(out), &preds); err != nil || len(preds) != len(files) {
		t.Fatalf("predict --json: %v\n%s", err, out)
	}
	right := 0
	for i, p := range preds {
		if len(p.Top) != 3 || p.Top[0].Digit != p.Digit || p.Top[0].Probability < p.Top[1].Probability {
			t.Errorf("%s: top 3 %+v", p.File, p.Top)
		}
		if p.Digit == int(test.Labels[i]) {
			right++
		}
	}
	if right < 8 {
		t.Errorf("predict got %d of 10 test digits right: %s", right, out)
	}
	code, out, _ = runCmd(t, "predict", "--model", model, files[0])
	if code != 0 || !strings.HasPrefix(out, files[0]+": ") || !strings.Contains(out, "%") {
		t.Errorf("predict text output: exit %d %q", code, out)
	}

	// Unreadable images: one line naming the file, exit 1.
	bad := filepath.Join(dir, "bad.png")
	if err := os.WriteFile(bad, []byte("\x89PNG\r\n\x1a\nbroken"), 0o644); err != nil {
		t.Fatal(err)
	}
	blank := filepath.Join(dir, "blank.png")
	f, _ := os.Create(blank)
	png.Encode(f, image.NewGray(image.Rect(0, 0, 50, 50)))
	f.Close()
	for _, img := range []string{bad, blank, filepath.Join(dir, "missing.png"), dir} {
		code, _, stderr := runCmd(t, "predict", "--model", model, img)
		if code != 1 || !strings.Contains(errorLine(stderr), img) || strings.Contains(stderr, "goroutine") {
			t.Errorf("predict %s: exit %d, stderr %q", img, code, stderr)
		}
	}
	if code, _, stderr := runCmd(t, "predict", "--model", model); code != 2 {
		t.Errorf("predict without images: exit %d: %s", code, stderr)
	}
}

func readSmallTest(t *testing.T) *mnist.Set {
	t.Helper()
	set, err := mnist.ReadSet(filepath.Join(smallData, "t10k-images-idx3-ubyte.gz"), filepath.Join(smallData, "t10k-labels-idx1-ubyte.gz"))
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// TestNumpyReadsCheckpoint runs scripts/eval_checkpoint.py, which reads a
// checkpoint with NumPy alone per the safetensors specification, and wants
// the accuracy and loss eval prints. It needs python3 with numpy (CI
// installs python3-numpy), and fails where that is missing.
func TestNumpyReadsCheckpoint(t *testing.T) {
	python := ""
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(p, "-c", "import numpy").Run() == nil {
			python = p
			break
		}
	}
	if python == "" {
		// make test installs python3-numpy (scripts/setup.sh test): a
		// skipped check would pass on every machine that lacks it.
		t.Fatal("no python3 with numpy (apt-get install python3-numpy, or make test)")
	}
	model := filepath.Join(t.TempDir(), "m.safetensors")
	if code, _, stderr := runCmd(t, "train", "--data", smallData, "--hidden", "48,24", "--epochs", "2", "--save", model); code != 0 {
		t.Fatalf("train: exit %d: %s", code, stderr)
	}
	code, out, stderr := runCmd(t, "eval", "--data", smallData, "--model", model)
	if code != 0 {
		t.Fatalf("eval: exit %d: %s", code, stderr)
	}
	var acc, loss float64
	var wrong int
	i := strings.Index(out, "accuracy ")
	if i < 0 {
		t.Fatalf("eval output: %s", out)
	}
	if _, err := fmt.Sscanf(out[i:], "accuracy %f%% (%d wrong), loss %f", &acc, &wrong, &loss); err != nil {
		t.Fatalf("parse %q: %v", out[i:], err)
	}
	py, err := exec.Command(python, "../../scripts/eval_checkpoint.py", model, "--data", smallData).Output()
	if err != nil {
		t.Fatalf("eval_checkpoint.py: %v", err)
	}
	var pyAcc, pyLoss float64
	var n int
	if _, err := fmt.Sscanf(string(py), "accuracy %f loss %f (%d images)", &pyAcc, &pyLoss, &n); err != nil {
		t.Fatalf("parse %q: %v", py, err)
	}
	if n != 500 || math.Abs(100*pyAcc-acc) > 1e-9+0.005 || math.Abs(pyLoss-loss) > 1e-4 {
		t.Fatalf("numpy: accuracy %.4f loss %.4f on %d images; eval: %.2f%% loss %.4f", pyAcc, pyLoss, n, acc, loss)
	}
}

// withoutRunRecord is the checkpoint at path as safetensors bytes without
// its run record, which names the command line and so differs between runs
// that computed the same bits. It fails the test if there is none.
func withoutRunRecord(t *testing.T, path string) []byte {
	t.Helper()
	f, err := safetensors.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid([]byte(f.Metadata["run_record"])) {
		t.Fatalf("%s: run_record %q is not JSON", path, f.Metadata["run_record"])
	}
	delete(f.Metadata, "run_record")
	var b bytes.Buffer
	if err := safetensors.Write(&b, f); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
