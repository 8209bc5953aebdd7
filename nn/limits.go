package nn

import (
	"fmt"
	"strings"

	"github.com/mnist-cl/mnist-cl/mnist"
)

// Memory is what a training run asks of a device: the bytes of every buffer
// NewTrainer allocates (the data sets, the network, its gradients,
// activations and velocities, the shuffle, the statistics and the GEMM's
// scratch), counted before any of them is allocated.
type Memory struct {
	Sizes []int // the network's widths, inputs first
	Batch int   // rows per step as allocated (see Need)

	Total       uint64 // bytes of all buffers together
	Largest     uint64 // bytes of the largest single buffer
	LargestName string // which buffer that is, e.g. "W2"
	Buffers     int    // how many buffers, the scratch included
	// Scratch is the part of Total that the register GEMM allocates for
	// itself: B^T for the A B^T products of the backward pass and the term
	// lists of the input layer's sparse products (the kernels allocate them
	// at the first such product; the tiled GEMM needs neither, so Need errs
	// on the safe side there). ScratchBuffers is how many buffers that is.
	Scratch        uint64
	ScratchBuffers int
	// Unindexable names a tensor with more elements than a kernel's 32-bit
	// index reaches, or is "" (NewNetwork refuses such a network too).
	Unindexable string
}

// Need counts the bytes NewTrainer allocates for a network of the given
// widths trained at batch on data sets of trainImages, valImages and
// testImages images of pixels bytes each, with momentum velocities or
// without. Like NewTrainer it allocates StepBatch rows, so Batch may come
// out smaller than batch.
//
// The network's buffers are the Plan's tensors, as NewNetwork allocates
// them; the rest are those of train.go and data.go.
func Need(sizes []int, batch, trainImages, valImages, testImages, pixels int, momentum bool) Memory {
	batch = StepBatch(batch, trainImages, valImages, testImages)
	m := NeedNetwork(sizes, batch, momentum)
	// The data sets, as Upload makes them: uint8 pixels and digits, and the
	// identity order in int32.
	batches := 0
	for _, set := range []struct {
		what string
		n    int
	}{{"training", trainImages}, {"validation", valImages}, {"test", testImages}} {
		m.add(set.what+" images", nonNegative(set.n)*nonNegative(pixels))
		m.add(set.what+" labels", nonNegative(set.n))
		m.add(set.what+" order", 4*nonNegative(set.n))
		if batch > 0 {
			batches = max(batches, (set.n+batch-1)/batch)
		}
	}
	m.floats("batch statistics", 2*nonNegative(batches))
	m.floats("shuffle", nonNegative(trainImages))
	return m
}

// NeedNetwork counts the bytes of a Network alone, the tensors of its Plan
// for batch rows (the velocities only with momentum), with the GEMM
// scratch its backward pass asks for: what verify, eval and predict build.
func NeedNetwork(sizes []int, batch int, momentum bool) Memory {
	m := Memory{Sizes: append([]int(nil), sizes...), Batch: batch}
	if len(sizes) < 2 {
		return m // no network; NewNetwork refuses it
	}
	clamped := make([]int, len(sizes))
	for i, s := range sizes {
		clamped[i] = max(s, 0)
	}
	p := planOf(clamped, max(batch, 0), CrossEntropy)
	for _, t := range p.Tensors {
		if t.Role == Velocity && !momentum {
			continue
		}
		m.add(t.Name, t.Bytes())
		if t.Role == Scratch {
			m.Scratch += t.Bytes()
			m.ScratchBuffers++
		}
	}
	m.Unindexable = p.unindexable()
	return m
}

// add counts one buffer of bytes.
func (m *Memory) add(what string, bytes uint64) {
	m.Total += bytes
	m.Buffers++
	if bytes > m.Largest {
		m.Largest, m.LargestName = bytes, what
	}
}

// floats counts a float32 (or int32) buffer of n elements as Runtime.floats
// allocates it: at least one element.
func (m *Memory) floats(what string, n uint64) { m.add(what, 4*max(n, 1)) }

func nonNegative(n int) uint64 { return uint64(max(n, 0)) }

// StepBatch is the rows NewTrainer(rt, split, c) allocates and runs its
// steps at (see the function StepBatch): what to tune for.
func (c Config) StepBatch(split *mnist.Split) int {
	return StepBatch(c.Batch, split.Train.Len(), split.Validation.Len(), split.Test.Len())
}

// NeedFor is Need for the Trainer that NewTrainer(rt, split, cfg) would
// build.
func NeedFor(split *mnist.Split, cfg Config) Memory {
	px := split.Train.Pixels()
	return Need(Sizes(px, cfg.Hidden, mnist.NumClasses), cfg.Batch,
		split.Train.Len(), split.Validation.Len(), split.Test.Len(), px, cfg.Momentum != 0)
}

// CheckFits refuses, before anything is allocated, a run whose buffers add
// up to more than the device's global memory (CL_DEVICE_GLOBAL_MEM_SIZE),
// whose largest buffer exceeds the device's largest allocation
// (CL_DEVICE_MAX_MEM_ALLOC_SIZE), or whose tensors a kernel cannot index. The
// error is one line with both sides of the comparison.
//
// Drivers allocate lazily: PoCL accepts any number of buffers up to the
// largest allocation each and takes the memory at their first use, where a
// failure is an assertion in the driver (the process aborts), not an error
// code. Checking first is the only way to turn that into a message.
func (r *Runtime) CheckFits(m Memory) error {
	d := r.Device
	overTotal := d.GlobalMem > 0 && m.Total > d.GlobalMem
	overOne := d.MaxAlloc > 0 && m.Largest > d.MaxAlloc
	if !overTotal && !overOne && m.Unindexable == "" {
		return nil
	}
	var msg strings.Builder
	fmt.Fprintf(&msg, "network %s at batch %d needs %s of device memory, %s in its largest buffer (%s); %s has %s (largest allocation %s)",
		FormatSizes(m.Sizes), m.Batch, FormatBytes(m.Total), FormatBytes(m.Largest), m.LargestName,
		d.Name, FormatBytes(d.GlobalMem), FormatBytes(d.MaxAlloc))
	if m.Unindexable != "" {
		fmt.Fprintf(&msg, "; %s", m.Unindexable)
	}
	msg.WriteString("; try smaller --hidden layers or --batch")
	return fmt.Errorf("%s", msg.String())
}

// FormatBytes is a size for a message: GiB, MiB or KiB with one decimal,
// bytes below.
func FormatBytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
