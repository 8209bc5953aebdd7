package main

import (
	"fmt"

	"github.com/mnist-cl/mnist-cl/kernels"
	"github.com/mnist-cl/mnist-cl/nn"
)

// benchReport is what bench measures; its JSON names are the --json format.
type benchReport struct {
	Date       string  `json:"date"` // RFC 3339, UTC, when the run started
	Device     string  `json:"device"`
	DeviceType string  `json:"device_type"`
	Platform   string  `json:"platform"`
	GemmKernel string  `json:"gemm_kernel"`
	GemmBlocks string  `json:"gemm_blocks"` // "tuned", "built-in" (MNISTCL_TUNE=off) or "none" (tiled)
	CPU        string  `json:"cpu"`         // /proc/cpuinfo's model name; "" when it has none
	CPUs       int     `json:"cpus"`
	GoVersion  string  `json:"go_version"`
	OSArch     string  `json:"os_arch"`
	Reps       int     `json:"reps"`
	LoopMS     float64 `json:"loop_target_ms"`
	Network    []int   `json:"network"`
	Optimizer  string  `json:"optimizer"`
	LR         float64 `json:"lr"`
	Momentum   float64 `json:"momentum"`
	Decay      float64 `json:"weight_decay"`

	PeakGFLOPS  float64      `json:"peak_gflops"` // the device's fma throughput, measured (peak.cl)
	GemmBatch   int          `json:"gemm_batch"`
	Gemms       []gemmResult `json:"gemms"`
	GemmTotalUS float64      `json:"gemm_total_us"` // sum of the medians
	Steps       []stepResult `json:"steps"`
	StepData    string       `json:"step_data"` // the images the steps, the launches and cpuref ran on
	Profile     *stepProfile `json:"profile"`   // every launch of a step, timed alone
	CPURef      cpurefResult `json:"cpuref"`
	Epoch       *epochResult `json:"epoch"` // null with --epoch=false

	// Memory in MB of 10^6 bytes: the process's peak resident set, the
	// phase by whose end it was reached, the most the Go runtime held at a
	// phase's end (the rest is C), and the peak so far after each phase.
	PeakRSSMB    float64    `json:"peak_rss_mb"`
	PeakRSSPhase string     `json:"peak_rss_phase"`
	GoMB         float64    `json:"go_mb"`
	RSSPhases    []rssPhase `json:"rss_after_phase"`
}

// gemmShape is one product C = op(A) op(B), op(A) M x K and op(B) K x N.
type gemmShape struct {
	Name    string `json:"name"`    // "Z1 128x784x512": the result, then M x K x N
	Product string `json:"product"` // "Z1 = X W1"
	Form    string `json:"form"`    // "A B", "A^T B" or "A B^T"
	M       int    `json:"m"`
	K       int    `json:"k"`
	N       int    `json:"n"`
	form    kernels.Form
}

type gemmResult struct {
	gemmShape
	US           float64 `json:"us"` // median time of one GEMM
	GFLOPS       float64 `json:"gflops"`
	PeakShare    float64 `json:"peak_share"` // GFLOPS over the device's measured fma peak
	CallsPerLoop int     `json:"calls_per_loop"`
}

type stepResult struct {
	Batch        int     `json:"batch"`
	US           float64 `json:"us"`
	ImagesPerSec float64 `json:"images_per_sec"`
	CallsPerLoop int     `json:"calls_per_loop"`
}

type cpurefResult struct {
	Batch int     `json:"batch"`
	US    float64 `json:"us"`
	Ratio float64 `json:"ratio"` // cpuref time over the device's at the same batch
}

type epochResult struct {
	TrainImages       int     `json:"train_images"`
	ValImages         int     `json:"val_images"`
	TrainSeconds      float64 `json:"train_seconds"`
	Seconds           float64 `json:"seconds"` // with validation
	TrainImagesPerSec float64 `json:"train_images_per_sec"`
	WarmUpSeconds     float64 `json:"warm_up_seconds"` // first launch of every kernel, before the epoch
	ValAccuracy       float64 `json:"val_accuracy"`
}

type rssPhase struct {
	Phase string  `json:"phase"`
	MB    float64 `json:"peak_rss_mb"` // the process's peak so far
	GoMB  float64 `json:"go_mb"`       // the Go runtime's memory at the end of the phase
}

// trainingGemms are the products of one step of the network of sizes at
// batch rows, the GEMM launches of its nn.Plan in the order the step runs
// them, timed without their epilogues.
func trainingGemms(sizes []int, batch int) []gemmShape {
	p, err := nn.NewPlan(sizes, batch, nn.CrossEntropy)
	if err != nil {
		return nil // the flags were validated; nothing to time
	}
	var out []gemmShape
	for _, l := range p.Gemms() {
		m, n, k := l.Dims(batch)
		a, b := l.A, l.B
		switch l.Form {
		case kernels.TransA:
			a += "^T"
		case kernels.TransB:
			b += "^T"
		}
		out = append(out, gemmShape{Name: fmt.Sprintf("%s %dx%dx%d", l.C, m, k, n),
			Product: fmt.Sprintf("%s = %s %s", l.C, a, b), Form: l.Form.String(),
			M: m, K: k, N: n, form: l.Form})
	}
	return out
}
