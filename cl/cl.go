package cl

// The cgo directives live here once for the whole package: CFLAGS pins the
// headers to OpenCL 1.2 so an API newer than what we promise cannot creep in
// unnoticed (it would not compile), and LDFLAGS links the ICD loader, which
// dispatches every call to whichever vendor's driver owns the object.
//
// The calls on the hot path are declared noescape (the C function keeps no
// Go pointer past its return) and nocallback (it never calls into Go); with
// both, cgo lets values passed by address (kernel arguments, work sizes,
// events, fill patterns) stay on the Go stack instead of costing a heap
// allocation per launch. The noescape promise holds for a transfer only
// because it is blocking; a non-blocking one must not be listed here.

/*
#cgo CFLAGS: -DCL_TARGET_OPENCL_VERSION=120
#cgo LDFLAGS: -lOpenCL
#cgo noescape clSetKernelArg
#cgo nocallback clSetKernelArg
#cgo noescape clEnqueueNDRangeKernel
#cgo nocallback clEnqueueNDRangeKernel
#cgo noescape clEnqueueFillBuffer
#cgo nocallback clEnqueueFillBuffer
#cgo noescape clEnqueueReadBuffer
#cgo nocallback clEnqueueReadBuffer
#cgo noescape clEnqueueWriteBuffer
#cgo nocallback clEnqueueWriteBuffer
#cgo noescape clGetEventProfilingInfo
#cgo nocallback clGetEventProfilingInfo
#cgo noescape clWaitForEvents
#cgo nocallback clWaitForEvents
#cgo noescape clEnqueueMarkerWithWaitList
#cgo nocallback clEnqueueMarkerWithWaitList
#include <CL/cl.h>
*/
import "C"

import (
	"strings"
	"unsafe"
)

// check turns a status into nil or an *Error naming call; every C call in the
// package reports through it so no status code is ever dropped silently.
func check(call string, st C.cl_int) error {
	if st == C.CL_SUCCESS {
		return nil
	}
	return &Error{Call: call, Code: int(st)}
}

// cString converts a returned char[] (NUL-terminated, sometimes padded with
// spaces by drivers) to a Go string.
func cString(b []byte) string {
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		b = b[:i]
	}
	return strings.TrimSpace(string(b))
}

// infoString runs the two-call size-then-data protocol shared by every
// clGet*Info string query: get asks for size bytes into ptr (nil first).
func infoString(call string, get func(size C.size_t, ptr unsafe.Pointer, ret *C.size_t) C.cl_int) (string, error) {
	var n C.size_t
	if err := check(call, get(0, nil, &n)); err != nil {
		return "", err
	}
	if n == 0 {
		return "", nil
	}
	buf := make([]byte, n)
	if err := check(call, get(n, unsafe.Pointer(&buf[0]), nil)); err != nil {
		return "", err
	}
	return cString(buf), nil
}
