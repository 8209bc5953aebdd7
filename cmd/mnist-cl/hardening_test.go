package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mnist-cl/mnist-cl/internal/cltest"
	"github.com/mnist-cl/mnist-cl/internal/testutil"
	"github.com/mnist-cl/mnist-cl/mnist"
	"github.com/mnist-cl/mnist-cl/nn"
)

// runWith is runCmd with a context and environment of the test's choosing:
// a context that cancels at a known step stands in for Ctrl-C without any
// timing, and MNISTCL_TUNE=off keeps a test off the GEMM tuner.
func runWith(t *testing.T, ctx context.Context, environ map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{ctx: ctx, stdout: &out, stderr: &errb, getenv: func(k string) string { return environ[k] }}
	code := run(e, args)
	return code, out.String(), errb.String()
}

// TestHugeNetworkRefusedBeforeAllocating is the example: hidden
// layers of 100,000 need about 150 GiB. train must say so in one line with
// the device's memory beside it, exit 1, and do it at once: nothing
// allocated, nothing tuned, no warm-up step.
//
// runCmd turns the GEMM tuner off; the binary runs as a user's does, with
// it on, under a deadline: a check that came after the tuner would leave it
// measuring a 128 x 100000 x 100000 product and then dying of a 40 GB host
// slice (a fatal runtime error, which in process would end the test binary).
func TestHugeNetworkRefusedBeforeAllocating(t *testing.T) {
	args := []string{"train", "--data", smallData, "--hidden", "100000,100000"}
	check := func(how string, code int, stderr string, took time.Duration) {
		t.Helper()
		line := errorLine(stderr)
		t.Logf("%s: exit %d in %.2fs: %s", how, code, took.Seconds(), line)
		for _, want := range []string{"784-100000-100000-10", "GiB of device memory", " has ", "largest allocation"} {
			if !strings.Contains(line, want) {
				t.Errorf("%s: error line %q lacks %q", how, line, want)
			}
		}
		if code != 1 || strings.Contains(stderr, "goroutine") || strings.Contains(stderr, "tuning") || strings.Contains(stderr, "warmed up") {
			t.Errorf("%s: exit %d; want 1 before any tuning or training:\n%s", how, code, stderr)
		}
		if took > 15*time.Second {
			t.Errorf("%s: took %.1fs to refuse", how, took.Seconds())
		}
	}

	start := time.Now()
	code, stdout, errs := runCmd(t, args...)
	check("runCmd", code, errs, time.Since(start))
	if stdout != "" {
		t.Errorf("runCmd: stdout %q", stdout)
	}

	bin := buildBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "MNISTCL_TUNE=")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start = time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("binary: still running after %.0fs (it must refuse before tuning or allocating):\n%s", took.Seconds(), lastLines(stderr.String(), 6))
	}
	code = 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	}
	check("binary", code, stderr.String(), took)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// TestDivergenceKeepsLastGoodCheckpoint trains a good checkpoint into F,
// then runs with an absurd learning rate and -save F: the run must fail
// naming the epoch and step and suggesting a smaller -lr, and F must be byte
// for byte what it was. The second part stops the diverged run with Ctrl-C
// (a context cancelled after the divergence, before the epoch's end, where
// the loss is checked): the diverged network must not be saved then either.
func TestDivergenceKeepsLastGoodCheckpoint(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "model.safetensors")
	net := []string{"train", "--data", smallData, "--hidden", "512,256", "--quiet"}
	if code, _, stderr := runCmd(t, append(net, "--epochs", "1", "--save", f)...); code != 0 {
		t.Fatalf("good run: exit %d: %s", code, stderr)
	}
	good, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	unchanged := func(how string) {
		t.Helper()
		now, err := os.ReadFile(f)
		if err != nil || !bytes.Equal(now, good) {
			t.Errorf("%s: %s changed (%d bytes, was %d; %v; %s): the diverged network was saved over the good one",
				how, f, len(now), len(good), err, nonFinite(f))
		}
		if names := testutil.Names(t, dir); len(names) != 1 {
			t.Errorf("%s: files beside the checkpoint: %v", how, names)
		}
	}

	diverge := append(net, "--lr", "1e6", "--epochs", "3", "--checkpoint-every", "1", "--save", f)
	code, stdout, stderr := runCmd(t, diverge...)
	line := errorLine(stderr)
	var epoch, step int
	if i := strings.Index(line, "diverged at epoch"); i >= 0 {
		fmt.Sscanf(line[i:], "diverged at epoch %d step %d", &epoch, &step)
	}
	if code != 1 || epoch != 1 || step < 1 || step > 8 || !strings.Contains(line, "smaller --lr") {
		t.Errorf("lr 1e6: exit %d, error line %q; want exit 1 naming epoch 1, the step and a smaller --lr", code, line)
	}
	if strings.Contains(stdout, "epoch  1") || strings.Contains(stderr, "saved ") {
		t.Errorf("lr 1e6: an epoch was reported or a checkpoint saved:\n%s%s", stdout, stderr)
	}
	unchanged("lr 1e6")

	// The same run stopped by Ctrl-C after step 7, past the divergence and
	// before the epoch's end (8 steps of 128 of the 900 training images),
	// where the loss would have been checked.
	if step > 7 {
		t.Fatalf("the run diverged at step %d of epoch 1, too late to interrupt inside the epoch: the test needs a learning rate that diverges sooner", step)
	}
	noTune := map[string]string{"MNISTCL_TUNE": "off", "MNISTCL_SELFCHECK": "off"}
	code, _, stderr = runWith(t, cltest.StepsContext(7), noTune, diverge...)
	t.Logf("Ctrl-C after step 7 of a run diverged at step %d: exit %d: %s", step, code, errorLine(stderr))
	if code != 1 || !strings.Contains(errorLine(stderr), "diverged") {
		t.Errorf("Ctrl-C after the divergence: exit %d, error line %q; want exit 1 saying the run diverged", code, errorLine(stderr))
	}
	unchanged("Ctrl-C after the divergence")
}

// nonFinite says how many parameters of the checkpoint at path are NaN or
// infinite.
func nonFinite(path string) string {
	c, err := nn.ReadCheckpoint(path)
	if err != nil {
		return err.Error()
	}
	bad, all := 0, 0
	for _, layer := range append(append([][]float32{}, c.W...), c.B...) {
		for _, v := range layer {
			all++
			if v != v || v > math.MaxFloat32 || v < -math.MaxFloat32 {
				bad++
			}
		}
	}
	return fmt.Sprintf("%d of its %d parameters are NaN or infinite", bad, all)
}

// tinyData writes a data folder of the first train images of the small
// training set and test images of its test set, as raw IDX under the usual
// names, so that an epoch takes a few milliseconds.
func tinyData(t *testing.T, train, test int) string {
	t.Helper()
	dir := t.TempDir()
	for _, part := range []struct {
		prefix string
		n      int
	}{{"train", train}, {"t10k", test}} {
		set, err := mnist.ReadSet(filepath.Join(smallData, part.prefix+"-images-idx3-ubyte.gz"), filepath.Join(smallData, part.prefix+"-labels-idx1-ubyte.gz"))
		if err != nil {
			t.Fatal(err)
		}
		images := binary.BigEndian.AppendUint32(nil, 0x803)
		for _, v := range []int{part.n, set.Rows, set.Cols} {
			images = binary.BigEndian.AppendUint32(images, uint32(v))
		}
		images = append(images, set.Images[:part.n*set.Pixels()]...)
		labels := binary.BigEndian.AppendUint32(nil, 0x801)
		labels = binary.BigEndian.AppendUint32(labels, uint32(part.n))
		labels = append(labels, set.Labels[:part.n]...)
		for name, b := range map[string][]byte{"-images-idx3-ubyte.gz": images, "-labels-idx1-ubyte.gz": labels} {
			if err := os.WriteFile(filepath.Join(dir, part.prefix+name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// TestSignalsDuringCheckpointWrites runs the binary with a checkpoint after
// every epoch (a 4 MiB file written and synced each few milliseconds: the
// epochs are of 90 images) and
// signals it at random moments after the first write. After SIGTERM and
// SIGINT the run must stop as on Ctrl-C: exit 130, a checkpoint at the
// position it names, the resume hint, nothing else in the folder. After
// SIGKILL the checkpoint must still be whole (the last one written); a
// temporary file of a write cut short may be left beside it.
func TestSignalsDuringCheckpointWrites(t *testing.T) {
	bin := buildBinary(t)
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 4))
	t.Logf("seed %d", seed)
	data := tinyData(t, 100, 50)
	const rounds = 4
	leftovers := 0
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGKILL} {
		for round := range rounds {
			name := fmt.Sprintf("%v/%d", sig, round)
			dir := t.TempDir()
			f := filepath.Join(dir, "run.safetensors")
			cmd := exec.Command(bin, "train", "--data", data, "--hidden", "512,256", "--epochs", "100000",
				"--checkpoint-every", "1", "--save", f, "--quiet")
			cmd.Env = append(os.Environ(), "MNISTCL_TUNE=off")
			pipe, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var stderr strings.Builder
			saved := make(chan struct{})
			read := make(chan struct{})
			go func() {
				defer close(read)
				s := bufio.NewScanner(pipe)
				first := true
				for s.Scan() {
					stderr.WriteString(s.Text() + "\n")
					if first && strings.HasPrefix(s.Text(), "saved ") {
						first = false
						close(saved)
					}
				}
			}()
			select {
			case <-saved:
			case <-read:
			case <-time.After(30 * time.Second):
			}
			delay := time.Duration(rng.IntN(150)) * time.Millisecond
			time.Sleep(delay)
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			done := make(chan error, 1)
			go func() { <-read; done <- cmd.Wait() }()
			werr := waitExit(t, cmd, done, 20*time.Second, fmt.Sprintf("%s: still running 20 s after the signal", name), stderr.String)
			var ee *exec.ExitError
			if !errors.As(werr, &ee) {
				t.Fatalf("%s: %v\n%s", name, werr, stderr.String())
			}
			c, cerr := nn.ReadCheckpoint(f)
			others := []string{}
			for _, n := range testutil.Names(t, dir) {
				if n != filepath.Base(f) {
					others = append(others, n)
				}
			}
			if sig == syscall.SIGKILL {
				status, _ := ee.Sys().(syscall.WaitStatus)
				if !status.Signaled() || status.Signal() != syscall.SIGKILL {
					t.Errorf("%s: %v", name, werr)
				}
				if cerr != nil {
					t.Errorf("%s after %v: the checkpoint is not whole: %v", name, delay, cerr)
				}
				for _, o := range others {
					if !strings.HasPrefix(o, "."+filepath.Base(f)+".tmp-") {
						t.Errorf("%s: unexpected file %s", name, o)
					}
				}
				leftovers += len(others)
				t.Logf("%s after %v: checkpoint at epoch %d step %d, left beside it: %v", name, delay, c.Epoch, c.Step, others)
				continue
			}
			var epoch, step int
			for _, l := range strings.Split(stderr.String(), "\n") {
				if strings.HasPrefix(l, "stopped at") {
					fmt.Sscanf(l, "stopped at epoch %d step %d", &epoch, &step)
				}
			}
			if ee.ExitCode() != 130 || epoch == 0 || !strings.Contains(stderr.String(), "resume with: mnist-cl train -resume "+f) {
				t.Errorf("%s after %v: exit %d, want 130 with the resume hint:\n%s", name, delay, ee.ExitCode(), stderr.String())
				continue
			}
			if cerr != nil {
				t.Errorf("%s after %v: %v", name, delay, cerr)
			} else if c.Epoch != epoch-1 || c.Step != step {
				t.Errorf("%s: stopped at epoch %d step %d, the checkpoint holds epoch %d step %d", name, epoch, step, c.Epoch+1, c.Step)
			}
			if len(others) > 0 {
				t.Errorf("%s: files left beside the checkpoint: %v", name, others)
			}
			t.Logf("%s after %v: stopped at epoch %d step %d", name, delay, epoch, step)
		}
	}
	t.Logf("SIGKILL left %d temporary file(s) in %d runs", leftovers, rounds)
}

// TestOutputsCheckedBeforeTraining gives -save, -plot and -metrics a path
// that cannot be written: in a missing folder, under a regular file, and
// (not as root, whom permissions do not stop) in a read-only folder. Each is
// one error line naming the path, before any device work or training.
func TestOutputsCheckedBeforeTraining(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a-file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := map[string]string{
		"missing folder": filepath.Join(dir, "missing", "out"),
		"under a file":   filepath.Join(file, "out"),
	}
	if os.Geteuid() == 0 {
		t.Log("running as root, whom a read-only folder does not stop: that case is left out")
	} else {
		ro := filepath.Join(dir, "read-only")
		if err := os.Mkdir(ro, 0o555); err != nil {
			t.Fatal(err)
		}
		bad["read-only folder"] = filepath.Join(ro, "out")
	}
	for kind, path := range bad {
		for _, flag := range []string{"--save", "--plot", "--metrics"} {
			start := time.Now()
			code, stdout, stderr := runCmd(t, "train", "--data", smallData, "--hidden", "8", "--epochs", "1", flag, path)
			took := time.Since(start)
			line := errorLine(stderr)
			// The path, or for a read-only folder the folder, which is what
			// there is to fix.
			if code != 1 || !strings.Contains(line, filepath.Dir(path)) || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
				t.Errorf("%s %s: exit %d, stderr %q; want exit 1 and one line naming the path or its folder", flag, kind, code, stderr)
			}
			if strings.Contains(stdout, "epoch") || took > 2*time.Second {
				t.Errorf("%s %s: %.2fs, stdout %q; want a refusal before training", flag, kind, took.Seconds(), stdout)
			}
		}
	}
	if names := testutil.Names(t, dir); len(names) != 2 && len(names) != 1 {
		t.Errorf("files made by refused runs: %v", names)
	}
}

// TestSameSeedSameCheckpoint trains twice with one seed and the same flags:
// the checkpoints must be equal byte for byte but for their run records
// (which name -save's different files); a third run with another seed
// shows that the comparison can fail.
func TestSameSeedSameCheckpoint(t *testing.T) {
	dir := t.TempDir()
	run := []string{"train", "--data", smallData, "--hidden", "64", "--batch", "10", "--epochs", "2", "--quiet"}
	files := map[string][]byte{}
	for _, name := range []string{"a", "b", "other"} {
		seed := "5"
		if name == "other" {
			seed = "6"
		}
		p := filepath.Join(dir, name+".safetensors")
		if code, _, stderr := runCmd(t, append(run, "--seed", seed, "--save", p)...); code != 0 {
			t.Fatalf("run %s: exit %d: %s", name, code, stderr)
		}
		files[name] = withoutRunRecord(t, p)
	}
	if !bytes.Equal(files["a"], files["b"]) {
		t.Errorf("two runs with seed 5 saved different checkpoints (%d and %d bytes)", len(files["a"]), len(files["b"]))
	}
	if bytes.Equal(files["a"], files["other"]) {
		t.Error("seeds 5 and 6 saved the same checkpoint")
	}
}
