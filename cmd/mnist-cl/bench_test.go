package main

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

// benchJSON is the --json report as a consumer reads it: the field names
// here are the stable format, written out rather than taken from benchReport.
type benchJSON struct {
	Device     string `json:"device"`
	GemmKernel string `json:"gemm_kernel"`
	GoVersion  string `json:"go_version"`
	Reps       int    `json:"reps"`
	Network    []int  `json:"network"`
	Gemms      []struct {
		Name   string  `json:"name"`
		M      int     `json:"m"`
		K      int     `json:"k"`
		N      int     `json:"n"`
		US     float64 `json:"us"`
		GFLOPS float64 `json:"gflops"`
	} `json:"gemms"`
	GemmTotalUS float64 `json:"gemm_total_us"`
	Steps       []struct {
		Batch        int     `json:"batch"`
		US           float64 `json:"us"`
		ImagesPerSec float64 `json:"images_per_sec"`
	} `json:"steps"`
	CPURef struct {
		Batch int     `json:"batch"`
		US    float64 `json:"us"`
		Ratio float64 `json:"ratio"`
	} `json:"cpuref"`
	Epoch     json.RawMessage `json:"epoch"`
	PeakRSSMB float64         `json:"peak_rss_mb"`
}

// The eight products of a batch-128 step of 784-512-256-10, M x K x N, in
// the order the step runs them: bench takes them from the step's nn.Plan.
var wantGemms = []string{
	"Z1 128x784x512", "Z2 128x512x256", "Z3 128x256x10",
	"dZ2 128x10x256", "dW3 256x128x10", "dZ1 128x256x512", "dW2 512x128x256", "dW1 784x128x512",
}

func TestBenchJSON(t *testing.T) {
	start := time.Now()
	code, stdout, stderr := runCmd(t, "bench", "--json", "--reps", "1", "--epoch=false", "--data", smallData)
	t.Logf("bench --json took %.1fs", time.Since(start).Seconds())
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	// Unmarshal also refuses anything after the one object, and a number
	// written as a string.
	var r benchJSON
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("stdout is not one JSON report: %v\n%s", err, stdout)
	}
	var names []string
	for _, g := range r.Gemms {
		names = append(names, g.Name)
		if !(g.GFLOPS > 0) || !(g.US > 0) {
			t.Errorf("GEMM %s: %v GFLOP/s in %v us, want both positive", g.Name, g.GFLOPS, g.US)
		}
		if flops := 2 * float64(g.M*g.N*g.K) / (g.US * 1e3); g.GFLOPS < 0.99*flops || g.GFLOPS > 1.01*flops {
			t.Errorf("GEMM %s: %v GFLOP/s, but 2 M N K / time is %v", g.Name, g.GFLOPS, flops)
		}
	}
	if !slices.Equal(names, wantGemms) {
		t.Errorf("GEMMs %q, want %q", names, wantGemms)
	}
	if !(r.GemmTotalUS > 0) {
		t.Errorf("gemm_total_us %v", r.GemmTotalUS)
	}
	var batches []int
	for _, s := range r.Steps {
		batches = append(batches, s.Batch)
		if !(s.US > 0) || !(s.ImagesPerSec > 0) {
			t.Errorf("step at batch %d: %v us, %v images/s", s.Batch, s.US, s.ImagesPerSec)
		}
	}
	if !slices.Equal(batches, []int{64, 128, 512}) {
		t.Errorf("step batches %v, want [64 128 512]", batches)
	}
	if r.CPURef.Batch != 128 || !(r.CPURef.US > 0) || !(r.CPURef.Ratio > 0) {
		t.Errorf("cpuref %+v, want batch 128 and a positive time and ratio", r.CPURef)
	}
	if !(r.PeakRSSMB > 0) {
		t.Errorf("peak_rss_mb %v", r.PeakRSSMB)
	}
	if string(r.Epoch) != "null" {
		t.Errorf("epoch %q with --epoch=false, want null", r.Epoch)
	}
	if r.Device == "" || r.GoVersion == "" || r.Reps != 1 || !slices.Equal(r.Network, []int{784, 512, 256, 10}) {
		t.Errorf("header: device %q, go %q, reps %d, network %v", r.Device, r.GoVersion, r.Reps, r.Network)
	}
	if !strings.Contains(stderr, "timing the 8 GEMMs") {
		t.Errorf("no progress on stderr:\n%s", stderr)
	}
}

// TestBenchText runs the text form with the epoch on the small set, which
// trains 900 images: fast, and it covers the Trainer's path.
func TestBenchText(t *testing.T) {
	start := time.Now()
	code, stdout, stderr := runCmd(t, "bench", "--reps", "1", "--data", smallData)
	t.Logf("bench took %.1fs", time.Since(start).Seconds())
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range append(wantGemms, "M x K x N", "sum of the 8", "cpuref", "s training (", "s with validation", "peak RSS") {
		if !strings.Contains(stdout, want) {
			t.Errorf("report lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "timing the") {
		t.Errorf("progress notes on stdout:\n%s", stdout)
	}
}

func TestBenchUsage(t *testing.T) {
	for _, args := range [][]string{{"--reps", "0"}, {"--reps", "1001"}, {"--reps", "-3"}, {"--epoch=maybe"}, {"extra"}} {
		code, stdout, stderr := runCmd(t, append([]string{"bench"}, args...)...)
		if code != 2 || stdout != "" || !strings.HasPrefix(errorLine(stderr), "mnist-cl bench:") {
			t.Errorf("bench %v: exit %d, stdout %q, stderr %q; want exit 2 and a usage error", args, code, stdout, stderr)
		}
	}
	if code, stdout, _ := runCmd(t, "bench", "-h"); code != 0 || !strings.Contains(stdout, "usage: mnist-cl bench") || !strings.Contains(stdout, "-reps") {
		t.Errorf("bench -h: exit %d, stdout %q", code, stdout)
	}
}

// TestBenchInterrupted checks that a cancelled context stops the run before
// the first measurement with the interrupt's exit status.
func TestBenchInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errb bytes.Buffer
	e := &env{ctx: ctx, stdout: &out, stderr: &errb, getenv: func(k string) string {
		if k == "MNISTCL_TUNE" {
			return "off"
		}
		return ""
	}}
	if code := run(e, []string{"bench", "--epoch=false"}); code != 130 || !strings.Contains(errorLine(errb.String()), "interrupted") {
		t.Errorf("cancelled bench: exit %d, stderr %q; want 130 and an interrupted error", code, errb.String())
	}
	if out.Len() != 0 {
		t.Errorf("cancelled bench printed a report:\n%s", out.String())
	}
}

func TestTrainingGemms(t *testing.T) {
	// An odd network: three layers, so every form appears with distinct sizes.
	var got []string
	for _, g := range trainingGemms([]int{5, 7, 3, 2}, 4) {
		got = append(got, g.Name+" "+g.Form)
	}
	want := []string{
		"Z1 4x5x7 A B", "Z2 4x7x3 A B", "Z3 4x3x2 A B",
		"dZ2 4x2x3 A B^T", "dW3 3x4x2 A^T B", "dZ1 4x3x7 A B^T", "dW2 7x4x3 A^T B", "dW1 5x4x7 A^T B",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func TestMedianAndThousands(t *testing.T) {
	if m := median([]time.Duration{5, 1, 3}); m != 3 {
		t.Errorf("median of 5 1 3 = %v", m)
	}
	if m := median([]time.Duration{4, 1, 3, 2}); m != 2 {
		t.Errorf("median of 4 1 3 2 = %v, want 2 (mean of 2 and 3, truncated)", m)
	}
	for v, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 70500.4: "70,500", 1234567: "1,234,567", -4321: "-4,321"} {
		if got := thousands(v); got != want {
			t.Errorf("thousands(%v) = %q, want %q", v, got, want)
		}
	}
}
