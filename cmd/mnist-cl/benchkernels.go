package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"text/tabwriter"
	"time"

	"github.com/mnist-cl/mnist-cl/kernels"
	"github.com/mnist-cl/mnist-cl/mnist"
	"github.com/mnist-cl/mnist-cl/nn"
)

// kernelTime is one launch of a training step, timed by itself on the
// device (OpenCL profiling events: start to end of the command).
type kernelTime struct {
	Kernel string  `json:"kernel"`
	Sizes  string  `json:"sizes"` // M x N x K for a GEMM; the count (and columns) otherwise
	US     float64 `json:"us"`    // median over the profiled steps
	GEMM   bool    `json:"gemm"`
}

// stepProfile is a whole step launch by launch, with the GEMMs' share.
type stepProfile struct {
	Batch      int          `json:"batch"`
	Launches   []kernelTime `json:"launches"`
	GemmUS     float64      `json:"gemm_us"`
	OtherUS    float64      `json:"other_us"`
	OtherShare float64      `json:"other_share"` // of the launches' device time
}

// profileStep runs reps training steps exactly as the Trainer does
// (gather, forward, statistics, backward with the fused update) on random
// images uploaded as a data set, recording each launch's device time.
func (b *bencher) profileStep(sizes []int, batch int, cfg nn.Config) (*stepProfile, error) {
	what := fmt.Sprintf("kernels of a step at batch %d", batch)
	net, err := nn.NewNetwork(b.rt, sizes, batch, cfg.Seed)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer net.Release()
	if err := net.AllocVelocity(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	set, err := b.rt.Upload(b.stepImages(batch, sizes[0]))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer set.Release()
	stats, err := b.rt.Context.NewBuffer(8)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer stats.Release()
	k := b.rt.Kernels
	defer k.Record(false)
	var runs [][]kernels.Launch
	for range b.reps + 1 { // the first compiles and warms caches
		if err := b.interrupted(what); err != nil {
			return nil, err
		}
		k.Record(true)
		err := net.GatherBatch(set, set.Order(), 0, batch)
		if err == nil {
			err = net.Forward(batch)
		}
		if err == nil {
			err = net.Stats(batch, stats, 0)
		}
		if err == nil {
			err = net.BackwardStep(batch, cfg.Hyper(cfg.LR))
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		ls, err := k.Launches()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		runs = append(runs, ls)
	}
	return summarize(batch, runs[1:]), nil
}

// summarize takes each launch's median over runs of the same sequence.
func summarize(batch int, runs [][]kernels.Launch) *stepProfile {
	p := &stepProfile{Batch: batch}
	for i, l := range runs[0] {
		ds := make([]time.Duration, len(runs))
		for r := range runs {
			ds[r] = runs[r][i].Duration
		}
		kt := kernelTime{Kernel: l.Kernel, US: micros(median(ds)), GEMM: kernels.IsGEMM(l.Kernel)}
		kt.Sizes = fmt.Sprintf("%d", l.M)
		switch {
		case kt.GEMM:
			kt.Sizes = fmt.Sprintf("%dx%dx%d", l.M, l.N, l.K)
		case l.N > 0:
			kt.Sizes = fmt.Sprintf("%dx%d", l.M, l.N)
		}
		if kt.GEMM {
			p.GemmUS += kt.US
		} else {
			p.OtherUS += kt.US
		}
		p.Launches = append(p.Launches, kt)
	}
	if total := p.GemmUS + p.OtherUS; total > 0 {
		p.OtherShare = p.OtherUS / total
	}
	return p
}

// randomSet is a data set of n random images of the given pixel count.
func randomSet(n, pixels int) *mnist.Set {
	rng := rand.New(rand.NewPCG(3, 3))
	s := &mnist.Set{Images: make([]uint8, n*pixels), Labels: make([]uint8, n), Rows: 1, Cols: pixels}
	for i := range s.Images {
		s.Images[i] = uint8(rng.IntN(256))
	}
	for i := range s.Labels {
		s.Labels[i] = uint8(rng.IntN(mnist.NumClasses))
	}
	return s
}

// writeProfile prints the per-launch table of a step.
func writeProfile(w io.Writer, p *stepProfile) error {
	fmt.Fprintf(w, "\nevery launch of a training step at batch %d, each timed on the device by itself (median)\n", p.Batch)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tkernel\tsizes\t      us\t")
	for i, l := range p.Launches {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%8.1f\t\n", i+1, l.Kernel, l.Sizes, l.US)
	}
	fmt.Fprintf(tw, "\tGEMMs\t\t%8.1f\t\n", p.GemmUS)
	fmt.Fprintf(tw, "\tthe rest\t\t%8.1f\t%.0f%% of the launches' time\n", p.OtherUS, 100*p.OtherShare)
	return tw.Flush()
}
