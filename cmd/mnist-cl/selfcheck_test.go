package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// kernelCopy writes the built-in kernel sources into a new folder, with
// old replaced by new in file (nothing replaced when file is ""), for
// train --kernels.
func kernelCopy(t *testing.T, file, old, new string) string {
	t.Helper()
	dir := t.TempDir()
	sources, err := filepath.Glob("../../kernels/*.cl")
	if err != nil || len(sources) == 0 {
		t.Fatalf("kernel sources: %v %v", sources, err)
	}
	for _, path := range sources {
		text, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Base(path) == file {
			if !strings.Contains(string(text), old) {
				t.Fatalf("%s lacks %q", file, old)
			}
			text = []byte(strings.Replace(string(text), old, new, 1))
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(path)), text, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// refusal is the one line train prints when the self-check fails.
var refusal = regexp.MustCompile(`^mnist-cl: self-check failed on .+: (.+) relative error \S+ > \S+; the device computes wrongly, not training$`)

// TestSelfCheckRefusesBrokenKernels gives train kernel sources with a sign
// flipped: in the update (the parameters step up the gradient), in the
// forward pass's bias and in the momentum term, in the register GEMM's
// fused epilogues and in layers.cl's kernels that the tiled GEMM runs
// with. Each must be refused by the
// self-check before training, in one line naming a tensor, exit 1. Then
// the unbroken copy passes, and a second run does not check again. The
// sources' hash is in the cache key, so a pass cached for the good sources
// (by this test or any earlier run) cannot vouch for broken ones.
func TestSelfCheckRefusesBrokenKernels(t *testing.T) {
	isolateCache(t)
	env := map[string]string{"MNISTCL_TUNE": "off"}
	args := []string{"train", "--data", smallData, "--epochs", "1", "--hidden", "37,13", "--batch", "50"}
	broken := []struct {
		name, gemm, file, old, new, tensor string
	}{
		{"update epilogue", "register", "gemm_reg.cl", "w -= st->lr * step;", "w += st->lr * step;", "updated"},
		{"bias epilogue", "register", "gemm_reg.cl", "v += x;", "v -= x;", "Z"},
		{"update", "tiled", "layers.cl", "p[i] -= lr * step;", "p[i] += lr * step;", "updated"},
		{"bias and ReLU", "tiled", "layers.cl", "fmax(Z[i] + b[i % cols], 0.0f)", "fmax(Z[i] - b[i % cols], 0.0f)", "Z"},
		{"momentum", "tiled", "layers.cl", "const float vel = mu * v[i] + step;", "const float vel = mu * -v[i] + step;", "updated"},
	}
	for _, b := range broken {
		dir := kernelCopy(t, b.file, b.old, b.new)
		code, stdout, stderr := runWith(t, context.Background(), env, append(args, "--kernels", dir, "--gemm", b.gemm)...)
		line := errorLine(stderr)
		m := refusal.FindStringSubmatch(line)
		if code != 1 || m == nil || !strings.Contains(m[1], b.tensor) {
			t.Errorf("%s, %s GEMM: exit %d, error line %q; want exit 1 and a refusal naming a tensor with %q\n%s", b.name, b.gemm, code, line, b.tensor, stderr)
			continue
		}
		if strings.Contains(stdout, "epoch") || strings.Count(stderr, "mnist-cl:") != 1 {
			t.Errorf("%s, %s GEMM: trained or said more than one error line:\n%s%s", b.name, b.gemm, stdout, stderr)
		}
		t.Logf("%s, %s GEMM: %s", b.name, b.gemm, m[0])
	}

	good := kernelCopy(t, "", "", "")
	code, _, stderr := runWith(t, context.Background(), env, append(args, "--kernels", good)...)
	if code != 0 || !strings.Contains(stderr, "self-check passed") {
		t.Fatalf("good sources, first run: exit %d, want a self-check that passes:\n%s", code, stderr)
	}
	code, _, stderr = runWith(t, context.Background(), env, append(args, "--kernels", good)...)
	if code != 0 || strings.Contains(stderr, "self-check") {
		t.Fatalf("good sources, second run: exit %d, want no self-check (cached):\n%s", code, stderr)
	}
	env["MNISTCL_SELFCHECK"] = "off"
	dir := kernelCopy(t, "layers.cl", "p[i] -= lr * step;", "p[i] += lr * step;")
	if code, _, stderr := runWith(t, context.Background(), env, append(args, "--kernels", dir)...); code != 0 || strings.Contains(stderr, "self-check") {
		t.Errorf("MNISTCL_SELFCHECK=off: exit %d, want training without a check:\n%s", code, stderr)
	}
}

// isolateCache points the per-user cache (tuning, self-check, MNIST) at a
// new folder for the test, keeping PoCL's compiler cache where it was:
// PoCL keeps it under the same XDG_CACHE_HOME, and a cold one makes every
// first launch compile for seconds.
func isolateCache(t *testing.T) string {
	t.Helper()
	if os.Getenv("POCL_CACHE_DIR") == "" {
		if dir, err := os.UserCacheDir(); err == nil {
			t.Setenv("POCL_CACHE_DIR", filepath.Join(dir, "pocl", "kcache"))
		}
	}
	dir := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", dir)
	return dir
}
