package nn

import (
	"fmt"

	"github.com/mnist-cl/mnist-cl/cl"
	"github.com/mnist-cl/mnist-cl/kernels"
)

// Runtime is one device made ready: its context, one in-order queue and the
// kernels built for it. Everything else in this package runs on a Runtime.
type Runtime struct {
	Device  cl.Device
	Context *cl.Context
	Queue   *cl.Queue
	Kernels *kernels.Set
}

// Open creates a context and queue on dev and builds the kernels, with the
// kernel options (the zero value: built-in sources, GEMM chosen by device type).
func Open(dev cl.Device, opts kernels.Options) (*Runtime, error) {
	ctx, err := cl.NewContext(dev)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", dev.Name, err)
	}
	q, err := ctx.NewQueue(opts.Profile)
	if err != nil {
		ctx.Release()
		return nil, fmt.Errorf("open %s: %w", dev.Name, err)
	}
	ks, err := kernels.New(ctx, q, opts)
	if err != nil {
		q.Release()
		ctx.Release()
		return nil, fmt.Errorf("build kernels for %s: %w", dev.Name, err)
	}
	return &Runtime{Device: dev, Context: ctx, Queue: q, Kernels: ks}, nil
}

// Close releases the kernels, queue and context.
func (r *Runtime) Close() {
	r.Kernels.Release()
	r.Queue.Release()
	r.Context.Release()
}

// floats allocates a float32 buffer of n elements (at least one), after
// checking it against the device's largest allocation.
func (r *Runtime) floats(what string, n int) (*cl.Buffer, error) {
	if err := r.fits(what, 4*uint64(max(n, 1))); err != nil {
		return nil, err
	}
	b, err := r.Context.NewBuffer(4 * max(n, 1))
	if err != nil {
		return nil, fmt.Errorf("allocate %s (%d floats): %w", what, n, err)
	}
	return b, nil
}

// fits refuses a buffer larger than the device's largest allocation with
// both numbers, which says more than the CL_INVALID_BUFFER_SIZE it would get.
func (r *Runtime) fits(what string, bytes uint64) error {
	if max := r.Device.MaxAlloc; max > 0 && bytes > max {
		return fmt.Errorf("%s needs %.1f MiB, more than the largest allocation of %s (%.1f MiB)",
			what, float64(bytes)/(1<<20), r.Device.Name, float64(max)/(1<<20))
	}
	return nil
}
