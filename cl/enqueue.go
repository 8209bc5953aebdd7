package cl

// #include <CL/cl.h>
import "C"

import (
	"fmt"
	"strconv"
	"time"
	"unsafe"
)

// Enqueue launches k, with the arguments last set, over a 1-, 2- or 3-D
// global size. local is the work-group size, one entry per dimension, or nil
// to let the driver choose; under OpenCL 1.2 rules each global size must be a
// multiple of its local size. A global size of 0 in any dimension launches
// nothing and returns nil, so callers need not special-case empty batches.
// Enqueue does not wait for the kernel.
func (q *Queue) Enqueue(k *Kernel, global, local []int) error {
	_, err := q.enqueue(k, global, local, false)
	return err
}

// EnqueueEvent is Enqueue returning an event to wait on or to time (on a
// queue made with profiling). For an empty launch the event is a marker that
// completes with the commands before it. The caller releases the event.
func (q *Queue) EnqueueEvent(k *Kernel, global, local []int) (*Event, error) {
	return q.enqueue(k, global, local, true)
}

func (q *Queue) enqueue(k *Kernel, global, local []int, withEvent bool) (*Event, error) {
	if k == nil || k.k == nil {
		return nil, fmt.Errorf("enqueue kernel %s: %w", k.Name(), errReleased)
	}
	if q == nil || q.q == nil {
		return nil, fmt.Errorf("enqueue kernel %s: queue: %w", k.name, errReleased)
	}
	dims := len(global)
	if dims < 1 || dims > 3 {
		return nil, fmt.Errorf("enqueue kernel %s: global size %s: want 1 to 3 dimensions", k.name, sizes(global))
	}
	if local != nil && len(local) != dims {
		return nil, fmt.Errorf("enqueue kernel %s: local size %s has %d dimensions, global size %s has %d", k.name, sizes(local), len(local), sizes(global), dims)
	}
	var g, l [3]C.size_t
	empty := false
	for i := range dims {
		if global[i] < 0 || (local != nil && local[i] < 0) {
			return nil, fmt.Errorf("enqueue kernel %s: negative size in global %s local %s", k.name, sizes(global), sizes(local))
		}
		empty = empty || global[i] == 0
		g[i] = C.size_t(global[i])
		if local != nil {
			l[i] = C.size_t(local[i])
		}
	}
	var ev C.cl_event
	var evp *C.cl_event
	if withEvent {
		evp = &ev
	}
	if empty {
		if !withEvent {
			return nil, nil
		}
		if err := check("clEnqueueMarkerWithWaitList", C.clEnqueueMarkerWithWaitList(q.q, 0, nil, evp)); err != nil {
			return nil, fmt.Errorf("enqueue kernel %s (empty): %w", k.name, err)
		}
		return &Event{e: ev}, nil
	}
	var lp *C.size_t
	if local != nil {
		lp = &l[0]
	}
	st := C.clEnqueueNDRangeKernel(q.q, k.k, C.cl_uint(dims), nil, &g[0], lp, 0, nil, evp)
	if err := check("clEnqueueNDRangeKernel", st); err != nil {
		return nil, fmt.Errorf("enqueue kernel %s global %s local %s: %w", k.name, sizes(global), sizes(local), err)
	}
	if !withEvent {
		return nil, nil
	}
	return &Event{e: ev}, nil
}

// sizes formats a work size like %v does. Handing the slice itself to fmt
// would make it escape, and every caller's []int{n} literal would then cost
// a heap allocation per launch even when nothing fails.
func sizes(s []int) string {
	b := []byte{'['}
	for i, n := range s {
		if i > 0 {
			b = append(b, ' ')
		}
		b = strconv.AppendInt(b, int64(n), 10)
	}
	return string(append(b, ']'))
}

// Event is one enqueued command's completion and, on a profiling queue, its
// timing. The caller releases it.
type Event struct {
	e C.cl_event
}

// Wait blocks until the command has completed; an error means it failed.
func (e *Event) Wait() error {
	if e == nil || e.e == nil {
		return fmt.Errorf("wait: %w", errReleased)
	}
	ev := e.e
	return check("clWaitForEvents", C.clWaitForEvents(1, &ev))
}

// Duration waits for the command and returns how long it ran on the device
// (CL_PROFILING_COMMAND_END - CL_PROFILING_COMMAND_START), which excludes
// the time spent queued. It fails with CodeProfilingInfoNotAvailable unless
// the queue was made with profiling.
func (e *Event) Duration() (time.Duration, error) {
	if err := e.Wait(); err != nil {
		return 0, err
	}
	var start, end C.cl_ulong
	if err := e.profile(C.CL_PROFILING_COMMAND_START, &start); err != nil {
		return 0, err
	}
	if err := e.profile(C.CL_PROFILING_COMMAND_END, &end); err != nil {
		return 0, err
	}
	return time.Duration(int64(end) - int64(start)), nil
}

func (e *Event) profile(param C.cl_profiling_info, t *C.cl_ulong) error {
	return check("clGetEventProfilingInfo", C.clGetEventProfilingInfo(e.e, param, C.size_t(unsafe.Sizeof(*t)), unsafe.Pointer(t), nil))
}

// Release frees the event. It is safe on nil and when called twice.
func (e *Event) Release() {
	if e == nil || e.e == nil {
		return
	}
	C.clReleaseEvent(e.e)
	e.e = nil
}
