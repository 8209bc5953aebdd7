package cl_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/mnist-cl/mnist-cl/cl"
)

// TestHugeBuffersAreErrors asks for buffers past the device's limits, up to
// the largest size a size_t holds: each must come back as an out-of-memory
// *Error (PoCL says CL_INVALID_BUFFER_SIZE), never a crash, and the context
// must stay usable after them.
//
// A buffer within the largest allocation but beyond the memory left is not
// tried: PoCL creates it (it allocates at the first use, and accepts buffers
// adding up to more than CL_DEVICE_GLOBAL_MEM_SIZE), and when that first use
// cannot get the memory PoCL 3.1 aborts the process on an assertion
// (pocl_create_migration_commands: p->mem_ptr != NULL) instead of returning
// CL_MEM_OBJECT_ALLOCATION_FAILURE. nn.Runtime.CheckFits is what keeps
// training away from that.
func TestHugeBuffersAreErrors(t *testing.T) {
	ctx, q := open(t, false)
	d := ctx.Device()
	if d.GlobalMem == 0 || d.MaxAlloc == 0 || d.MaxAlloc > d.GlobalMem {
		t.Fatalf("device limits: global memory %d bytes, largest allocation %d", d.GlobalMem, d.MaxAlloc)
	}
	t.Logf("%s: global memory %d MiB, largest allocation %d MiB", d.Name, d.GlobalMem>>20, d.MaxAlloc>>20)
	for _, n := range []uint64{d.MaxAlloc + 1, d.GlobalMem + 1, 1 << 40, 1 << 62, math.MaxInt64} {
		b, err := ctx.NewBuffer(int(n))
		if err == nil {
			b.Release()
			t.Errorf("NewBuffer(%d) succeeded on a device whose largest allocation is %d", n, d.MaxAlloc)
			continue
		}
		if !cl.IsOutOfMemory(err) || cl.ErrorCode(err) == 0 {
			t.Errorf("NewBuffer(%d): %v (code %d); want an out-of-memory *cl.Error", n, err, cl.ErrorCode(err))
		}
		if want := fmt.Sprintf("new buffer of %d bytes: clCreateBuffer: CL_", n); len(err.Error()) < len(want) || err.Error()[:len(want)] != want {
			t.Errorf("NewBuffer(%d): %q; want it to start %q", n, err, want)
		}
	}
	// The refusals left the context as it was.
	b := newBuffer(t, ctx, 16)
	if err := q.WriteFloat32(b, 0, []float32{1, 2, 3, 4}); err != nil {
		t.Fatal(err)
	}
	got := make([]float32, 4)
	if err := q.ReadFloat32(b, 0, got); err != nil || got[3] != 4 {
		t.Fatalf("round trip after the refusals: %v %v", got, err)
	}
}
