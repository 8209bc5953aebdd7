package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// oclgrindChecks are the kernel checks every oclgrind run turns on: data
// races in local and global memory, uses of uninitialized values, and
// misuse of the OpenCL API. (Out-of-bounds accesses and barrier divergence
// are always checked.)
var oclgrindChecks = []string{"--data-races", "--uninitialized", "--check-api"}

// oclgrindShapes are the verify runs checked under oclgrind. Between them
// they cover batch 1 and 7, hidden widths 1, 13 and 37, both GEMMs, both
// losses, every optimiser and both distorting gathers, at sizes that fit no
// tile or vector width. The first is the shape of issue 12's crash; under
// --uninitialized it crashed in clEnqueueWriteBuffer whenever the goroutine
// had moved to another OS thread since clCreateContext (see run in main.go).
var oclgrindShapes = [][]string{
	{"--gemm", "tiled", "--batch", "7", "--hidden", "37,13", "--loss", "xent", "--optimizer", "nesterov"},
	{"--gemm", "register", "--batch", "1", "--hidden", "1", "--loss", "mse", "--optimizer", "sgd"},
	{"--gemm", "tiled", "--batch", "1", "--hidden", "13,1", "--loss", "mse", "--optimizer", "momentum"},
	{"--gemm", "register", "--batch", "7", "--hidden", "13", "--loss", "xent", "--optimizer", "momentum", "--augment", "affine+elastic"},
	{"--gemm", "register", "--batch", "7", "--hidden", "37", "--loss", "mse", "--optimizer", "nesterov"},
	{"--gemm", "tiled", "--batch", "7", "--hidden", "1,37", "--loss", "xent", "--optimizer", "sgd", "--augment", "affine"},
}

// TestVerifyUnderOclgrind runs the real binary's verify on oclgrind, a
// second OpenCL implementation that checks every kernel as it runs, and
// fails on a crash, a nonzero exit or any report. A missing oclgrind is a
// failure, not a skip: CI installs it (the Debian package oclgrind), and a
// skipped check would pass on every machine that lacks it.
func TestVerifyUnderOclgrind(t *testing.T) {
	oclgrind, err := exec.LookPath("oclgrind")
	if err != nil {
		t.Fatalf("oclgrind is needed to check the kernels (apt-get install oclgrind): %v", err)
	}
	bin := buildBinary(t)
	for _, shape := range oclgrindShapes {
		t.Run(strings.Join(shape, " "), func(t *testing.T) {
			// oclgrind runs one work-item at a time when its checks are
			// on, so two runs side by side use both cores of CI.
			t.Parallel()
			runOclgrind(t, oclgrind, bin, append([]string{"verify", "--data", smallData}, shape...)...)
		})
	}
}

// runOclgrind runs bin with args under oclgrind's checks and fails the test
// unless it exits 0 with nothing on stderr but the command's own lines.
func runOclgrind(t *testing.T, oclgrind, bin string, args ...string) {
	t.Helper()
	// A run takes 10 to 40 s on a loaded 2-core machine; the deadline turns
	// a hang into a failure that names the shape.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	flags := append([]string{}, oclgrindChecks...)
	if slices.Contains(args, "register") {
		// oclgrind 21.10 cannot run the register GEMM as written: Debian's
		// clang 15 emits llvm.experimental.noalias.scope.decl where it
		// inlines gemm_reg.cl's always_inline helpers, whose pointer
		// parameters are restrict, and oclgrind stops with "Undefined
		// external function: llvm.experimental.noalias.scope.decl" at
		// clCreateKernel (upstream added the intrinsic later, in "Add support
		// for LLVM 21"). The intrinsic is only an aliasing hint, so the
		// kernels run here with restrict defined away; nothing oclgrind
		// checks depends on it. Only these runs, so the tiled GEMM and the
		// layers are checked exactly as built. NO_PREFETCH drops the
		// register GEMM's prefetch hints, for the same reason: oclgrind
		// has no llvm.prefetch.
		flags = append(flags, "--build-options", "-Drestrict= -DNO_PREFETCH")
	}
	cmd := exec.CommandContext(ctx, oclgrind, append(append(flags, bin), args...)...)
	// oclgrind replaces the ICD loader's platforms with its own device;
	// naming it makes a run on anything else fail instead of passing
	// unchecked. Tuning would simulate dozens of GEMM variants for nothing.
	cmd.Env = append(os.Environ(), "MNISTCL_DEVICE=Oclgrind", "MNISTCL_TUNE=off")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("oclgrind %s: %.1fs", strings.Join(args, " "), time.Since(start).Seconds())
	if reports := oclgrindReports(stderr.String()); reports != "" || err != nil {
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatalf("run oclgrind: %v", err)
		}
		t.Fatalf("oclgrind %s: %v\nreports and errors on stderr:\n%s\nstdout:\n%s",
			strings.Join(args, " "), err, reports, stdout.String())
	}
}

// oclgrindReports returns stderr without the command's progress lines
// ("device 0: ...: building the kernels", "device 0: ... kernels built in
// ..."): what remains is oclgrind's reports
// (uninitialized values, races, invalid accesses, API errors), a Go crash
// trace, or the command's own error line, each a failure.
func oclgrindReports(stderr string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(stderr, "\n") {
		if strings.HasPrefix(line, "device ") && (strings.Contains(line, "kernels built in") || strings.HasSuffix(line, ": building the kernels\n")) {
			continue
		}
		b.WriteString(line)
	}
	return strings.TrimSpace(b.String())
}

// TestKernelsUnderOclgrind runs package kernels' own tests (-short: the odd
// sizes, not the training-size products, which oclgrind would simulate for
// hours) on oclgrind, with every check it has: --data-races, --check-api
// and --uninitialized. It found gather_affine reading outside its image,
// because oclgrind mis-evaluates clamp(int16, int, int) (augment.cl now
// clamps with vector bounds). The GEMM tests used to run without
// --uninitialized, which reported "Controlflow depends on uninitialized
// value" at an fma of sums.cl in TestGemm's compensated products; that
// report is gone from the kernels as they are now (checked with the
// register GEMM before and after its guards moved out of the k loop), so
// every test runs under every check.
func TestKernelsUnderOclgrind(t *testing.T) {
	oclgrind, err := exec.LookPath("oclgrind")
	if err != nil {
		t.Fatalf("oclgrind is needed to check the kernels (apt-get install oclgrind): %v", err)
	}
	bin := filepath.Join(t.TempDir(), "kernels.test")
	if out, err := exec.Command("go", "test", "-c", "-o", bin, "../../kernels").CombinedOutput(); err != nil {
		t.Fatalf("go test -c ../../kernels: %v\n%s", err, out)
	}
	checks := strings.Join(oclgrindChecks, " ")
	// oclgrind simulates one work-item at a time, so the tests run as two
	// processes side by side, split about evenly (the fused products take
	// half of the time).
	for _, part := range []struct{ name, flag string }{
		{"fused products", "-test.run=^TestGemmFused"},
		{"the rest", "-test.skip=^TestGemmFused"},
	} {
		t.Run(part.name, func(t *testing.T) {
			t.Parallel()
			args := append(slices.Clone(oclgrindChecks), "--build-options", "-Drestrict= -DNO_PREFETCH", bin, "-test.short", part.flag)
			ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, oclgrind, args...)
			// The tests read their data relative to their package folder.
			cmd.Dir = "../../kernels"
			cmd.Env = append(os.Environ(), "MNISTCL_DEVICE=Oclgrind")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			start := time.Now()
			err := cmd.Run()
			t.Logf("oclgrind %s, %s: %.1fs", checks, part.name, time.Since(start).Seconds())
			if s := strings.TrimSpace(stderr.String()); s != "" || err != nil {
				t.Fatalf("kernel tests (%s) under oclgrind %s: %v\nstderr:\n%s\nstdout:\n%s", part.name, checks, err, s, stdout.String())
			}
			// A pattern that matched nothing would pass with "no tests to run".
			if !strings.Contains(stdout.String(), "PASS") || strings.Contains(stdout.String(), "no tests to run") {
				t.Fatalf("kernel tests (%s) under oclgrind ran nothing:\n%s", part.name, stdout.String())
			}
		})
	}
}
