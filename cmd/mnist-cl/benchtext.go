package main

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/mnist-cl/mnist-cl/nn"
)

// writeBenchText prints the report for a reader, tables aligned.
func writeBenchText(w io.Writer, r *benchReport) error {
	bw := bufio.NewWriter(w)
	cpu := r.CPU
	if cpu == "" {
		cpu = "CPU model unknown"
	}
	fmt.Fprintf(bw, "mnist-cl bench  %s\n", r.Date)
	fmt.Fprintf(bw, "device   %s (%s, %s), %s GEMM, %s blocks\n", r.Device, r.DeviceType, r.Platform, r.GemmKernel, r.GemmBlocks)
	fmt.Fprintf(bw, "host     %s, %d logical CPUs, %s %s\n", cpu, r.CPUs, r.GoVersion, r.OSArch)
	fmt.Fprintf(bw, "timing   median of %d loops; a loop queues the work for about %g ms, then waits once\n", r.Reps, r.LoopMS)

	fmt.Fprintf(bw, "\nGEMMs of one training step, network %s, batch %d\n", nn.FormatSizes(r.Network), r.GemmBatch)
	fmt.Fprintf(bw, "(shape M x K x N: op(A) is M x K, op(B) K x N; GFLOP/s = 2 M N K / time)\n")
	tw := tabwriter.NewWriter(bw, 0, 0, 2, ' ', 0)
	fmt.Fprintf(bw, "(of peak: of the device's fma throughput, %.1f GFLOP/s measured with peak.cl)\n", r.PeakGFLOPS)
	fmt.Fprintln(tw, "gemm\tproduct\tform\t      us\t GFLOP/s\tof peak\tcalls/loop")
	for _, g := range r.Gemms {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%8.1f\t%8.1f\t%6.0f%%\t%10d\n", g.Name, g.Product, g.Form, g.US, g.GFLOPS, 100*g.PeakShare, g.CallsPerLoop)
	}
	fmt.Fprintf(tw, "sum of the %d\t\t\t%8.1f\n", len(r.Gemms), r.GemmTotalUS)
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintf(bw, "\ntraining step: forward, backward, %s update (lr %g, momentum %g, weight decay %g), on %s\n",
		r.Optimizer, r.LR, r.Momentum, r.Decay, r.StepData)
	tw = tabwriter.NewWriter(bw, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "batch\t      us\t images/s\tcalls/loop")
	for _, s := range r.Steps {
		fmt.Fprintf(tw, "%5d\t%8.1f\t%9s\t%10d\n", s.Batch, s.US, thousands(s.ImagesPerSec), s.CallsPerLoop)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.Profile != nil {
		if err := writeProfile(bw, r.Profile); err != nil {
			return err
		}
	}
	fmt.Fprintf(bw, "cpuref (float64 gonum) at batch %d: %s us per step, %.1fx the device's\n",
		r.CPURef.Batch, thousands(r.CPURef.US), r.CPURef.Ratio)

	if ep := r.Epoch; ep != nil {
		fmt.Fprintf(bw, "\nepoch    %.2f s training (%s img/s), %.2f s with validation; %s training and %s validation images, default config, val accuracy %.2f%%\n",
			ep.TrainSeconds, thousands(ep.TrainImagesPerSec), ep.Seconds, thousands(float64(ep.TrainImages)),
			thousands(float64(ep.ValImages)), 100*ep.ValAccuracy)
	} else {
		fmt.Fprintf(bw, "\nepoch    not run (--epoch=false)\n")
	}
	phases := make([]string, len(r.RSSPhases))
	for i, p := range r.RSSPhases {
		phases[i] = fmt.Sprintf("%s %.1f", p.Phase, p.MB)
	}
	fmt.Fprintf(bw, "memory   peak RSS %.1f MB, reached during %s; at most %.1f MB of it is Go's, the rest C (OpenCL driver,\n",
		r.PeakRSSMB, r.PeakRSSPhase, r.GoMB)
	fmt.Fprintf(bw, "         its compiler, buffers on a CPU device); peak so far after %s MB\n", strings.Join(phases, ", "))
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// thousands formats v rounded to a whole number with commas: 70,500.
func thousands(v float64) string {
	s := strconv.FormatFloat(v, 'f', 0, 64)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}
