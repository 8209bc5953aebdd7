package cl

// #include <CL/cl.h>
import "C"

import (
	"errors"
	"fmt"
	"unsafe"
)

// errReleased is what a method of an object already released (or never
// made) returns, instead of handing C a dangling or NULL handle.
var errReleased = errors.New("use of a released or nil OpenCL object")

// Context is an OpenCL context on one device: the owner of buffers and
// programs. The caller releases it, after everything made from it.
type Context struct {
	ctx C.cl_context
	dev Device
}

// NewContext creates a context on d, which must come from AllDevices.
func NewContext(d Device) (*Context, error) {
	if d.id == nil {
		return nil, fmt.Errorf("new context on %q: the Device has no OpenCL handle (take it from AllDevices)", d.Name)
	}
	// Naming the platform explicitly is what lets the ICD loader route the
	// call when several vendors' drivers are installed.
	props := [3]C.cl_context_properties{
		C.CL_CONTEXT_PLATFORM, C.cl_context_properties(uintptr(unsafe.Pointer(d.platform))), 0,
	}
	id := d.id
	var st C.cl_int
	ctx := C.clCreateContext(&props[0], 1, &id, nil, nil, &st)
	if err := check("clCreateContext", st); err != nil {
		return nil, err
	}
	return &Context{ctx: ctx, dev: d}, nil
}

// Device returns the device the context was made on.
func (c *Context) Device() Device { return c.dev }

// Release frees the context. It is safe on nil and when called twice.
// OpenCL keeps a context alive while its queues, buffers and programs live,
// so releasing it first does not invalidate them; release them too.
func (c *Context) Release() {
	if c == nil || c.ctx == nil {
		return
	}
	C.clReleaseContext(c.ctx)
	c.ctx = nil
}

// Queue is an in-order command queue on the context's device. Commands run
// in the order enqueued; a blocking read or Finish waits for all before it.
type Queue struct {
	q C.cl_command_queue
}

// NewQueue creates an in-order queue. With profiling, events returned by
// EnqueueEvent carry start and end times (at a small cost per command on
// some drivers, hence off unless asked for).
func (c *Context) NewQueue(profiling bool) (*Queue, error) {
	if c == nil || c.ctx == nil {
		return nil, fmt.Errorf("new queue: %w", errReleased)
	}
	var props C.cl_command_queue_properties
	if profiling {
		props = C.CL_QUEUE_PROFILING_ENABLE
	}
	var st C.cl_int
	q := C.clCreateCommandQueue(c.ctx, c.dev.id, props, &st)
	if err := check("clCreateCommandQueue", st); err != nil {
		return nil, err
	}
	return &Queue{q: q}, nil
}

// Release frees the queue after the commands in it complete (OpenCL flushes
// it implicitly). It is safe on nil and when called twice.
func (q *Queue) Release() {
	if q == nil || q.q == nil {
		return
	}
	C.clReleaseCommandQueue(q.q)
	q.q = nil
}

// Finish blocks until every command enqueued so far has completed; errors of
// earlier non-blocking commands may surface here.
func (q *Queue) Finish() error {
	if q == nil || q.q == nil {
		return fmt.Errorf("finish: %w", errReleased)
	}
	return check("clFinish", C.clFinish(q.q))
}

// Flush submits the enqueued commands to the device without waiting for
// them, so the device can start while the host prepares more work.
func (q *Queue) Flush() error {
	if q == nil || q.q == nil {
		return fmt.Errorf("flush: %w", errReleased)
	}
	return check("clFlush", C.clFlush(q.q))
}
