package main

import (
	"bufio"
	"errors"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mnist-cl/mnist-cl/nn"
)

// phaseBinary builds the command once for all the phase tests of a run of
// the test binary; buildBinary would build it once per test.
var phaseBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "mnist-cl-phases-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "mnist-cl")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		return "", errors.New(string(out))
	}
	return bin, nil
})

// TestMain removes phaseBinary's build after the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if bin, err := phaseBinary(); err == nil {
		os.RemoveAll(filepath.Dir(bin))
	}
	os.Exit(code)
}

// phase is one run of the binary signalled in one phase.
type phase struct {
	args    []string
	env     []string
	trigger string         // a line of stdout or stderr starting with this marks the phase
	delay   time.Duration  // how long after the trigger line to signal
	sig     syscall.Signal // SIGINT or SIGTERM
	want    string         // the error line must contain this
	out     string         // folder that must hold nothing half-written
}

// signalIn runs p, sends its signal when the trigger line appears, and
// checks that the process ends within 2 s with exit 130, the error line
// naming the phase, and no temporary file left in p.out. It returns what
// the process printed.
func signalIn(t *testing.T, p phase) string {
	t.Helper()
	bin, err := phaseBinary()
	if err != nil {
		t.Fatalf("go build: %v", err)
	}
	cmd := exec.Command(bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	r, w := io.Pipe()
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	var mu sync.Mutex
	triggered := make(chan struct{})
	go func() {
		s := bufio.NewScanner(r)
		seen := false
		for s.Scan() {
			mu.Lock()
			out.WriteString(s.Text() + "\n")
			mu.Unlock()
			if !seen && strings.HasPrefix(s.Text(), p.trigger) {
				seen = true
				close(triggered)
			}
		}
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); w.Close() }()
	printed := func() string { mu.Lock(); defer mu.Unlock(); return out.String() }
	select {
	case <-triggered:
	case err := <-exited:
		t.Fatalf("ended (%v) before a line %q:\n%s", err, p.trigger, printed())
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("no line %q in 60 s:\n%s", p.trigger, printed())
	}
	time.Sleep(p.delay)
	sent := time.Now()
	if err := cmd.Process.Signal(p.sig); err != nil {
		t.Fatal(err)
	}
	werr := waitExit(t, cmd, exited, 10*time.Second, fmt.Sprintf("still running 10 s after %v", p.sig), printed)
	took := time.Since(sent)
	time.Sleep(10 * time.Millisecond) // the reader's last lines
	text := printed()
	var ee *exec.ExitError
	if !errors.As(werr, &ee) || ee.ExitCode() != 130 {
		t.Errorf("after %v: %v, want exit 130:\n%s", p.sig, werr, text)
	}
	if line := errorLine(text); !strings.Contains(line, p.want) {
		t.Errorf("after %v: error line %q, want one with %q:\n%s", p.sig, line, p.want, text)
	}
	if took > 2*time.Second {
		t.Errorf("ended %v after %v, want within 2 s:\n%s", took.Round(time.Millisecond), p.sig, text)
	}
	checkNoTemps(t, p.out)
	t.Logf("%v after %q: exit in %v: %s", p.sig, p.trigger, took.Round(time.Millisecond), errorLine(text))
	return text
}

// checkNoTemps fails if anything under dir is a temporary file of a write
// (atomicfile's, the metrics writer's, the fetcher's, the tuner's).
func checkNoTemps(t *testing.T, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), ".tmp") {
			t.Errorf("left half-written: %s", path)
		}
		return nil
	})
}

// phaseEnv is the environment of a phase test: a cache of its own for
// MNIST, the tuning and the self-check, and PoCL's compiler cache where it
// was (PoCL keeps it under XDG_CACHE_HOME too, and a cold one compiles for
// seconds, which only the build test wants).
func phaseEnv(t *testing.T, extra ...string) (cache string, env []string) {
	t.Helper()
	cache = t.TempDir()
	env = []string{"XDG_CACHE_HOME=" + cache}
	if os.Getenv("POCL_CACHE_DIR") == "" {
		if dir, err := os.UserCacheDir(); err == nil {
			env = append(env, "POCL_CACHE_DIR="+filepath.Join(dir, "pocl", "kcache"))
		}
	}
	return cache, append(env, extra...)
}

// TestStopWhileFetching signals train while it downloads MNIST from a
// mirror that answers nothing (MNISTCL_MIRRORS puts it first).
func TestStopWhileFetching(t *testing.T) {
	stall := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer stall.Close()
	cache, env := phaseEnv(t, "MNISTCL_TUNE=off", "MNISTCL_MIRRORS="+stall.URL)
	signalIn(t, phase{args: []string{"train", "--quiet"}, env: env, trigger: "mnist: fetching " + stall.URL,
		sig: syscall.SIGINT, want: "while loading the data", out: cache})
	if names, _ := filepath.Glob(filepath.Join(cache, "mnist-cl", "*ubyte*")); len(names) > 0 {
		t.Errorf("files in the MNIST cache after an interrupted fetch: %v", names)
	}
}

// TestStopWhileBuildingKernels signals train during the kernel build, made
// to take seconds by an empty PoCL compiler cache, half a second into the
// compile of its first program: the build stops before the next one.
func TestStopWhileBuildingKernels(t *testing.T) {
	cache, env := phaseEnv(t, "MNISTCL_TUNE=off")
	env = append(env, "POCL_CACHE_DIR="+t.TempDir())
	// With -metrics too: the process exits within the build, past every
	// deferred cleanup, so no output file may have been started yet.
	signalIn(t, phase{args: []string{"train", "--data", smallData, "--quiet", "--metrics", filepath.Join(cache, "m.jsonl")},
		env: env, trigger: "device ", delay: 500 * time.Millisecond, sig: syscall.SIGTERM, want: "while building the kernels",
		out: cache})
}

// TestStopWhileTuning signals train once the tuner has measured a shape:
// the tuning cache is empty, so it measures the others next.
func TestStopWhileTuning(t *testing.T) {
	cache, env := phaseEnv(t)
	signalIn(t, phase{args: []string{"train", "--data", smallData, "--quiet", "--gemm", "register"}, env: env, trigger: "  tuned ",
		sig: syscall.SIGINT, want: "tuning the GEMM", out: cache})
	if _, err := os.Stat(filepath.Join(cache, "mnist-cl", "selfcheck.json")); err == nil {
		t.Error("the self-check ran after the interrupt")
	}
}

// TestStopDuringSelfCheck signals train when the self-check starts, at
// shapes whose float64 reference takes a few seconds: the wait for it ends
// at once, and no pass is cached.
func TestStopDuringSelfCheck(t *testing.T) {
	cache, env := phaseEnv(t, "MNISTCL_TUNE=off")
	signalIn(t, phase{args: []string{"train", "--data", smallData, "--quiet", "--hidden", "2048,2048", "--batch", "512"}, env: env,
		trigger: "self-check:", sig: syscall.SIGTERM, want: "during the self-check", out: cache})
	if _, err := os.Stat(filepath.Join(cache, "mnist-cl", "selfcheck.json")); err == nil {
		t.Error("an interrupted self-check was cached as a pass")
	}
}

// TestStopWhileTraining signals train mid-run: it stops after the step in
// flight, saves the checkpoint and does not commit the metrics file.
func TestStopWhileTraining(t *testing.T) {
	cache, env := phaseEnv(t, "MNISTCL_TUNE=off")
	dir := t.TempDir()
	save, metrics := filepath.Join(dir, "run.safetensors"), filepath.Join(dir, "m.jsonl")
	signalIn(t, phase{args: []string{"train", "--data", smallData, "--quiet", "--hidden", "64", "--epochs", "100000",
		"--save", save, "--metrics", metrics}, env: env, trigger: "epoch  2", sig: syscall.SIGINT, want: "interrupted during epoch", out: dir})
	if _, err := nn.ReadCheckpoint(save); err != nil {
		t.Errorf("checkpoint after the interrupt: %v", err)
	}
	if _, err := os.Stat(metrics); err == nil {
		t.Error("the metrics file of an interrupted run was committed")
	}
	checkNoTemps(t, cache)
}

// TestStopWhileWritingCheckpoint signals train as it writes its final
// outputs, a 20 MB checkpoint first: that write completes, the plot and
// the metrics file are not written.
func TestStopWhileWritingCheckpoint(t *testing.T) {
	_, env := phaseEnv(t, "MNISTCL_TUNE=off", "MNISTCL_SELFCHECK=off")
	dir := t.TempDir()
	save, plot, metrics := filepath.Join(dir, "run.safetensors"), filepath.Join(dir, "run.png"), filepath.Join(dir, "m.jsonl")
	signalIn(t, phase{args: []string{"train", "--data", smallData, "--quiet", "--hidden", "1024,1024", "--epochs", "1",
		"--save", save, "--plot", plot, "--metrics", metrics}, env: env, trigger: "test accuracy", sig: syscall.SIGTERM,
		want: "after writing " + save, out: dir})
	if _, err := nn.ReadCheckpoint(save); err != nil {
		t.Errorf("checkpoint: %v", err)
	}
	for _, f := range []string{plot, metrics} {
		if _, err := os.Stat(f); err == nil {
			t.Errorf("%s written after the interrupt", f)
		}
	}
}

// TestStopWhileWritingPlot signals train as it draws its plot (no
// checkpoint): the plot is whole, the metrics file not committed.
func TestStopWhileWritingPlot(t *testing.T) {
	_, env := phaseEnv(t, "MNISTCL_TUNE=off", "MNISTCL_SELFCHECK=off")
	dir := t.TempDir()
	plot, metrics := filepath.Join(dir, "run.png"), filepath.Join(dir, "m.jsonl")
	signalIn(t, phase{args: []string{"train", "--data", smallData, "--quiet", "--hidden", "16", "--epochs", "3",
		"--plot", plot, "--metrics", metrics}, env: env, trigger: "test accuracy", sig: syscall.SIGINT,
		want: "after writing " + plot, out: dir})
	f, err := os.Open(plot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Errorf("plot: %v", err)
	}
	if _, err := os.Stat(metrics); err == nil {
		t.Errorf("%s written after the interrupt", metrics)
	}
}

// waitExit returns what done reports, the exit of cmd's process, if it comes
// within d; otherwise it kills the process and fails the test with msg and
// out(), what the process printed.
func waitExit(t *testing.T, cmd *exec.Cmd, done <-chan error, d time.Duration, msg string, out func() string) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%s:\n%s", msg, out())
	}
	return nil
}
