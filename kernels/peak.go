package kernels

import (
	"fmt"
	"time"

	"github.com/mnist-cl/mnist-cl/cl"
)

// PeakFMA measures the device's float32 fma throughput in GFLOP/s with
// peak.cl: independent chains of float16 fmas in every work-item, as many
// work-items as keep every compute unit busy, the run sized to about 50 ms,
// the best of five. It builds its program on first use; training never
// does.
func (s *Set) PeakFMA() (float64, error) {
	chains := max(2, min(12, (s.regs.Count-4)/s.regs.perVector()))
	p, err := s.program("peak.cl", fmt.Sprintf("-D CHAINS=%d", chains))
	if err != nil {
		return 0, err
	}
	ks, err := kernelsOf(p, "fma_peak")
	if err != nil {
		return 0, err
	}
	k := ks[0]
	defer k.Release()
	// On a CPU, work-groups of one, so that the driver spreads them over its
	// threads; a GPU needs many work-items in flight and picks its groups.
	groups, local := 8*max(1, s.dev.ComputeUnits), []int{1}
	if s.dev.Type != cl.DeviceCPU {
		groups, local = groups*256, nil
	}
	out, err := s.ctx.NewBuffer(4 * groups)
	if err != nil {
		return 0, fmt.Errorf("fma peak: %w", err)
	}
	defer out.Release()
	run := func(iters int) (time.Duration, error) {
		if err := k.SetArgs(iters, float32(0.999999), float32(1e-6), out); err != nil {
			return 0, err
		}
		start := time.Now()
		if err := s.q.Enqueue(k, []int{groups}, local); err != nil {
			return 0, err
		}
		err := s.q.Finish()
		return time.Since(start), err
	}
	// The first launch may include PoCL's compile of the kernel for this
	// work-group size (hundreds of ms with its cache empty); sizing the run
	// from it would leave a loop of launch overhead to time.
	iters := 1 << 10
	d, err := run(iters)
	if err == nil {
		d, err = run(iters)
	}
	for err == nil && d < 20*time.Millisecond && iters < 1<<26 {
		iters *= 4
		d, err = run(iters)
	}
	best := d
	for range 5 {
		if err != nil {
			break
		}
		if d, err = run(iters); d < best {
			best = d
		}
	}
	if err != nil {
		return 0, fmt.Errorf("fma peak: %w", err)
	}
	flop := float64(groups) * float64(iters) * float64(chains) * 16 * 2
	return flop / best.Seconds() / 1e9, nil
}
