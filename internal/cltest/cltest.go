// Package cltest holds what the device tests of several packages share:
// opening the real OpenCL device (a test fails, never skips, without one),
// random matrices, and float32 buffers poisoned before a kernel writes them.
package cltest

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/mnist-cl/mnist-cl/cl"
	"github.com/mnist-cl/mnist-cl/kernels"
)

// Device returns the device the tests run on: MNISTCL_DEVICE if set, else the
// default choice (the first GPU, else the first device; PoCL in CI).
func Device(t testing.TB) cl.Device {
	t.Helper()
	// Keep the test's OpenCL calls on one OS thread, as the command does
	// (see run in cmd/mnist-cl): oclgrind 21.10 with --uninitialized crashes
	// when a context is used from a thread other than the one that made it.
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
	return Choose(t)
}

// Choose is Device without the thread lock: the device MNISTCL_DEVICE names,
// else the default choice.
func Choose(t testing.TB) cl.Device {
	t.Helper()
	devs, err := cl.AllDevices()
	if err != nil {
		t.Fatalf("no OpenCL device to test on (run scripts/setup.sh): %v", err)
	}
	d, err := cl.Choose(devs, os.Getenv("MNISTCL_DEVICE"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Queue opens a context and queue on the test device and releases them when
// the test ends.
func Queue(t testing.TB) (*cl.Context, *cl.Queue) {
	t.Helper()
	return QueueOn(t, Device(t), false)
}

// QueueOn opens a context and queue on dev, with profiling or not, and
// releases them when the test ends.
func QueueOn(t testing.TB, dev cl.Device, profiling bool) (*cl.Context, *cl.Queue) {
	t.Helper()
	ctx, err := cl.NewContext(dev)
	if err != nil {
		t.Fatal(err)
	}
	q, err := ctx.NewQueue(profiling)
	if err != nil {
		ctx.Release()
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Release(); ctx.Release() })
	return ctx, q
}

// RSS is the process's resident set size in bytes, after handing freed Go
// memory back to the system so that only memory held counts.
func RSS(t testing.TB) int64 {
	t.Helper()
	debug.FreeOSMemory()
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Fatal(err)
	}
	pages, err := strconv.ParseInt(strings.Fields(string(b))[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return pages * int64(os.Getpagesize())
}

// Rand returns an r x c matrix of uniform values in [lo, hi).
func Rand(rng *rand.Rand, r, c int, lo, hi float64) *mat.Dense {
	d := make([]float64, r*c)
	for i := range d {
		d[i] = lo + (hi-lo)*rng.Float64()
	}
	return mat.NewDense(r, c, d)
}

// Float32 flattens a matrix row-major, rounding to float32.
func Float32(m *mat.Dense) []float32 {
	r, c := m.Dims()
	out := make([]float32, 0, r*c)
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			out = append(out, float32(m.At(i, j)))
		}
	}
	return out
}

// Buffer allocates a buffer of n floats holding x (or NaN everywhere when x is
// nil) and releases it when the test ends.
func Buffer(t testing.TB, ctx *cl.Context, q *cl.Queue, n int, x []float32) *cl.Buffer {
	t.Helper()
	b, err := ctx.NewBuffer(4 * max(n, 1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Release)
	if x == nil {
		// Written, not filled: oclgrind's --uninitialized check loses track
		// of a fill (see AllocVelocity in nn), and would report every later
		// read of the buffer, including the kernel's own output.
		x = make([]float32, max(n, 1))
		for i := range x {
			x[i] = float32(math.NaN())
		}
	}
	err = q.WriteFloat32(b, 0, x)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Read reads n floats of b.
func Read(t testing.TB, q *cl.Queue, b *cl.Buffer, n int) []float32 {
	t.Helper()
	out := make([]float32, n)
	if err := q.ReadFloat32(b, 0, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// Seed returns the seed of a test's random inputs: MNISTCL_SEED when set,
// else a new one each run, so the kernels meet fresh data every time. It is
// logged, so a failure can be replayed with MNISTCL_SEED.
func Seed(t testing.TB) uint64 {
	t.Helper()
	var seed uint64
	if s := os.Getenv("MNISTCL_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("MNISTCL_SEED=%q: %v", s, err)
		}
		seed = v
	} else {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("random inputs from seed %d (replay with MNISTCL_SEED=%d)", seed, seed)
	return seed
}

// StepsContext returns a context cancelled at its n+1-th Err call.
// nn.Trainer.Epoch asks Err once before each step, so a run on it stops
// after n steps as on Ctrl-C, with no timing involved (an Err call elsewhere,
// such as after tuning, moves it by one).
func StepsContext(n int) context.Context {
	c := &stepsCtx{Context: context.Background(), done: make(chan struct{})}
	c.left.Store(int64(n))
	return c
}

type stepsCtx struct {
	context.Context
	left atomic.Int64
	once sync.Once
	done chan struct{}
}

func (c *stepsCtx) Err() error {
	if c.left.Add(-1) >= 0 {
		return nil
	}
	c.once.Do(func() { close(c.done) })
	return context.Canceled
}

func (c *stepsCtx) Done() <-chan struct{} { return c.done }

// BuiltSparse reports whether s built gemm_reg.cl with SPARSE=1: that a
// product skipped its zero terms rather than running every one. (cltest
// imports kernels, so only kernels' external tests, package kernels_test,
// can use cltest.)
func BuiltSparse(s *kernels.Set) bool {
	for _, p := range s.Programs() {
		if strings.Contains(p.Options, "SPARSE=1") {
			return true
		}
	}
	return false
}
