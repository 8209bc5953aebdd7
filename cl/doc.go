// Package cl is a thin, typed cgo binding to the OpenCL 1.2 C API: exactly
// what the network needs (devices, contexts, in-order queues, buffers,
// programs, kernels, events) and nothing more. It is the only package of the
// project that uses cgo; no OpenCL C type appears in its exported API.
//
// # Objects and ownership
//
// Each OpenCL object is one Go type with a Release method: Context, Queue,
// Buffer, Program, Kernel and Event. Whoever creates an object releases it;
// there are no finalizers, because device memory is scarce and a collector
// that sees only a few bytes of Go struct would free gigabytes of buffers
// late or never. Release is safe on a nil pointer and when called twice (it
// clears the handle), so cleanup code may release everything it might hold.
// A method called on a released object returns an error instead of passing a
// dangling handle to C. Release in reverse order of creation: kernels,
// programs, buffers, queue, context. (OpenCL reference-counts internally, so
// another order does not crash, but it keeps memory alive longer.) A Device
// is a plain value describing hardware; it owns nothing.
//
//	devs, err := cl.AllDevices()
//	dev, err := cl.Choose(devs, "")        // first GPU, else first device
//	ctx, err := cl.NewContext(dev)
//	defer ctx.Release()
//	q, err := ctx.NewQueue(false)
//	defer q.Release()
//	buf, err := ctx.NewBuffer(4 * n)        // bytes
//	defer buf.Release()
//	err = q.WriteFloat32(buf, 0, x)         // offsets and counts in elements
//
// # Transfers block
//
// WriteFloat32, ReadFloat32 and their Int32 and Uint8 twins are blocking
// (CL_TRUE): they return only when the copy is complete. The rules of
// cmd/cgo let C use a Go pointer only for the duration of the call that
// received it; a non-blocking transfer would leave the driver reading or
// writing a Go slice after the call returned, which the garbage collector
// does not know about. Blocking keeps every Go slice private to Go the
// moment a method returns, at the price of a host wait, which matters only
// for transfers inside a hot loop. Offsets and lengths are checked in Go
// against the buffer's size, so a wrong shape is an error, not memory
// corruption; a zero-length transfer is a no-op. FillFloat32 and FillInt32
// and Enqueue do not block: they pass C nothing that outlives the call (the
// fill pattern and kernel arguments are copied when enqueued). Commands on a
// Queue run in order, so a blocking read sees the result of every kernel
// enqueued before it.
//
// # Errors
//
// Every failed call becomes an *Error naming the C function and the status,
// "clEnqueueNDRangeKernel: CL_INVALID_WORK_GROUP_SIZE", usually wrapped with
// what was being done. ErrorCode extracts the status from any wrapped error
// and the Code constants name the ones worth reacting to; IsOutOfMemory
// groups the statuses that mean "try something smaller". A program that fails
// to compile is a *BuildError whose Error is one line for a log and whose Log
// field holds the compiler's full output. AllDevices returns ErrNoPlatform
// when no OpenCL implementation is installed.
//
// # Concurrency
//
// OpenCL objects may be shared between threads, but this package does not
// promise it: use a Queue from one goroutine at a time. Kernel arguments are
// state of the Kernel object, so SetArgs and the Enqueue that follows must
// not interleave with another goroutine's SetArgs on the same Kernel; give
// each goroutine its own kernels if there is ever more than one.
//
// Make every call on a Context, and on what was made from it, from one OS
// thread: call runtime.LockOSThread in the goroutine that creates the
// context, before NewContext. OpenCL 1.2 allows any thread, but drivers keep
// per-thread state, and a goroutine moves between OS threads across cgo
// calls whenever one of them blocks long (a kernel build, a blocking read).
// oclgrind 21.10 with --uninitialized is one such driver: it sets up its
// shadow-memory pool in a thread-local during clCreateContext, and a later
// write or clFinish from another thread dereferences NULL inside the driver.
// Pinning costs nothing per call; the command pins its one goroutine.
package cl
