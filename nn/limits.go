package nn

import (
	"fmt"
	"math"
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
	// Scratch is the part of Total that is the register GEMM's B^T for the
	// A B^T products of the backward pass (the kernels allocate it at the
	// first such product; the tiled GEMM needs none, so Need errs on the
	// safe side there).
	Scratch uint64
	// Unindexable names a tensor with more elements than a kernel's 32-bit
	// index reaches, or is "" (NewNetwork refuses such a network too).
	Unindexable string
}

// Need counts the bytes NewTrainer allocates for a network of the given
// widths trained at batch on data sets of trainImages, valImages and
// testImages images of pixels bytes each, with momentum velocities or
// without. Like NewTrainer it allocates no more rows than the largest set
// has images, so Batch may come out smaller than batch.
//
// Every float32 buffer is counted as Runtime.floats allocates it (at least
// one element); the sizes are those of network.go, train.go and data.go, and
// TestNeedMatchesTrainer holds Need to them.
func Need(sizes []int, batch, trainImages, valImages, testImages, pixels int, momentum bool) Memory {
	if most := max(trainImages, valImages, testImages); most > 0 && batch > most {
		batch = most
	}
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

// NeedNetwork counts the bytes of a Network alone, as NewNetwork allocates
// it for batch rows (and AllocVelocity with momentum), with the GEMM
// scratch its backward pass asks for: what verify, eval and predict build.
func NeedNetwork(sizes []int, batch int, momentum bool) Memory {
	m := Memory{Sizes: append([]int(nil), sizes...), Batch: batch}
	L := len(sizes) - 1
	b := nonNegative(batch)
	if L >= 0 {
		m.floats("X", b*nonNegative(sizes[0]))
	}
	var scratch uint64
	for l := 1; l <= L; l++ {
		in, out := nonNegative(sizes[l-1]), nonNegative(sizes[l])
		m.floats(fmt.Sprintf("W%d", l), in*out)
		m.floats(fmt.Sprintf("b%d", l), out)
		m.floats(fmt.Sprintf("dW%d", l), in*out)
		m.floats(fmt.Sprintf("db%d", l), out)
		m.floats(fmt.Sprintf("Z%d", l), b*out)
		m.floats(fmt.Sprintf("dZ%d", l), b*out)
		if momentum {
			m.floats(fmt.Sprintf("velocity of W%d", l), in*out)
			m.floats(fmt.Sprintf("velocity of b%d", l), out)
		}
		// dZ[l-1] = dZ[l] W[l]^T transposes W[l] into the scratch first.
		if l > 1 {
			scratch = max(scratch, in*out)
		}
		if m.Unindexable == "" {
			for _, p := range [][2]int{{sizes[l-1], sizes[l]}, {batch, sizes[l]}, {batch, sizes[l-1]}} {
				if p[0] > 0 && p[1] > 0 && p[0] > math.MaxInt32/p[1] {
					m.Unindexable = fmt.Sprintf("layer %d: a %d x %d tensor has more elements than a kernel can index (2^31-1)", l, p[0], p[1])
					break
				}
			}
		}
	}
	if L >= 1 {
		m.floats("Yp", b*nonNegative(sizes[L]))
	}
	m.floats("row losses", b)
	m.floats("row flags", b)
	m.floats("batch sums", 2)
	m.add("labels", 4*b) // int32, allocated directly
	if scratch > 0 {
		before := m.Total
		m.floats("GEMM scratch", scratch)
		m.Scratch = m.Total - before
	}
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
		sizesString(m.Sizes), m.Batch, bytesString(m.Total), bytesString(m.Largest), m.LargestName,
		d.Name, bytesString(d.GlobalMem), bytesString(d.MaxAlloc))
	if m.Unindexable != "" {
		fmt.Fprintf(&msg, "; %s", m.Unindexable)
	}
	msg.WriteString("; try smaller --hidden layers or --batch")
	return fmt.Errorf("%s", msg.String())
}

// bytesString is a size for a message: GiB or MiB with one decimal, KiB or
// bytes below.
func bytesString(n uint64) string {
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
