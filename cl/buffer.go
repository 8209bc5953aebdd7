package cl

// #include <CL/cl.h>
import "C"

import (
	"fmt"
	"unsafe"
)

// Buffer is device memory of a fixed size in bytes, readable and writable by
// kernels. The caller releases it.
type Buffer struct {
	mem  C.cl_mem
	size int
}

// NewBuffer allocates bytes of device memory (CL_MEM_READ_WRITE, no host
// pointer: the data moves only through the queue's Write and Read methods).
// Its contents are undefined until written or filled.
func (c *Context) NewBuffer(bytes int) (*Buffer, error) {
	if c == nil || c.ctx == nil {
		return nil, fmt.Errorf("new buffer: %w", errReleased)
	}
	if bytes <= 0 {
		return nil, fmt.Errorf("new buffer: size %d bytes: must be positive", bytes)
	}
	var st C.cl_int
	mem := C.clCreateBuffer(c.ctx, C.CL_MEM_READ_WRITE, C.size_t(bytes), nil, &st)
	if err := check("clCreateBuffer", st); err != nil {
		return nil, fmt.Errorf("new buffer of %d bytes: %w", bytes, err)
	}
	return &Buffer{mem: mem, size: bytes}, nil
}

// Size returns the buffer's size in bytes (0 after Release).
func (b *Buffer) Size() int {
	if b == nil || b.mem == nil {
		return 0
	}
	return b.size
}

// Release frees the buffer once commands already enqueued on it complete.
// It is safe on nil and when called twice.
func (b *Buffer) Release() {
	if b == nil || b.mem == nil {
		return
	}
	C.clReleaseMemObject(b.mem)
	b.mem, b.size = nil, 0
}

// span checks that count elements of elem bytes starting at element offset
// lie inside b, in Go, so a wrong shape is an error rather than a driver
// reading or writing past the allocation. It returns the byte range.
func (q *Queue) span(op, typ string, b *Buffer, elem, offset, count int) (off, n C.size_t, err error) {
	if q == nil || q.q == nil {
		return 0, 0, fmt.Errorf("%s: queue: %w", op, errReleased)
	}
	if b == nil || b.mem == nil {
		return 0, 0, fmt.Errorf("%s: buffer: %w", op, errReleased)
	}
	have := b.size / elem
	if offset < 0 || count < 0 || offset > have || count > have-offset {
		return 0, 0, fmt.Errorf("%s: elements [%d, %d) outside a buffer of %d %ss (%d bytes)",
			op, offset, offset+count, have, typ, b.size)
	}
	return C.size_t(offset * elem), C.size_t(count * elem), nil
}

// write and read are blocking (CL_TRUE) because ptr is Go memory: cgo lets C
// use it only for the duration of the call, so the copy must be complete when
// the call returns. A non-blocking transfer would leave the driver holding a
// Go pointer the collector knows nothing about.
func (q *Queue) write(op, typ string, b *Buffer, elem, offset, count int, ptr unsafe.Pointer) error {
	return q.transfer(op, typ, b, elem, offset, count, "clEnqueueWriteBuffer", func(off, n C.size_t) C.cl_int {
		return C.clEnqueueWriteBuffer(q.q, b.mem, C.CL_TRUE, off, n, ptr, 0, nil, nil)
	})
}

func (q *Queue) read(op, typ string, b *Buffer, elem, offset, count int, ptr unsafe.Pointer) error {
	return q.transfer(op, typ, b, elem, offset, count, "clEnqueueReadBuffer", func(off, n C.size_t) C.cl_int {
		return C.clEnqueueReadBuffer(q.q, b.mem, C.CL_TRUE, off, n, ptr, 0, nil, nil)
	})
}

// fill is non-blocking: OpenCL copies the pattern when the command is
// enqueued, so a Go local may back it.
func (q *Queue) fill(op, typ string, b *Buffer, elem, offset, count int, pattern unsafe.Pointer) error {
	return q.transfer(op, typ, b, elem, offset, count, "clEnqueueFillBuffer", func(off, n C.size_t) C.cl_int {
		return C.clEnqueueFillBuffer(q.q, b.mem, pattern, C.size_t(elem), off, n, 0, nil, nil)
	})
}

// transfer checks count elements of elem bytes from offset against b (see
// span) and, unless there are none, runs enqueue on their byte
// offset and length; op names the operation in an error, call the OpenCL
// function.
func (q *Queue) transfer(op, typ string, b *Buffer, elem, offset, count int, call string, enqueue func(off, n C.size_t) C.cl_int) error {
	off, n, err := q.span(op, typ, b, elem, offset, count)
	if err != nil || n == 0 {
		return err
	}
	if err := check(call, enqueue(off, n)); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// WriteFloat32 copies src into b starting at element offset, and returns when
// the copy is done (src may be reused at once).
func (q *Queue) WriteFloat32(b *Buffer, offset int, src []float32) error {
	return q.write("WriteFloat32", "float32", b, 4, offset, len(src), unsafe.Pointer(unsafe.SliceData(src)))
}

// ReadFloat32 fills dst from b starting at element offset, after every command
// enqueued before it has completed.
func (q *Queue) ReadFloat32(b *Buffer, offset int, dst []float32) error {
	return q.read("ReadFloat32", "float32", b, 4, offset, len(dst), unsafe.Pointer(unsafe.SliceData(dst)))
}

// WriteInt32 is WriteFloat32 for int32 data.
func (q *Queue) WriteInt32(b *Buffer, offset int, src []int32) error {
	return q.write("WriteInt32", "int32", b, 4, offset, len(src), unsafe.Pointer(unsafe.SliceData(src)))
}

// ReadInt32 is ReadFloat32 for int32 data.
func (q *Queue) ReadInt32(b *Buffer, offset int, dst []int32) error {
	return q.read("ReadInt32", "int32", b, 4, offset, len(dst), unsafe.Pointer(unsafe.SliceData(dst)))
}

// WriteUint8 is WriteFloat32 for bytes (raw pixels, labels).
func (q *Queue) WriteUint8(b *Buffer, offset int, src []uint8) error {
	return q.write("WriteUint8", "uint8", b, 1, offset, len(src), unsafe.Pointer(unsafe.SliceData(src)))
}

// ReadUint8 is ReadFloat32 for bytes.
func (q *Queue) ReadUint8(b *Buffer, offset int, dst []uint8) error {
	return q.read("ReadUint8", "uint8", b, 1, offset, len(dst), unsafe.Pointer(unsafe.SliceData(dst)))
}

// FillFloat32 sets count elements of b from element offset to value. It only
// enqueues: later commands on the queue see the result, the host sees it
// after Finish or a blocking read.
func (q *Queue) FillFloat32(b *Buffer, value float32, offset, count int) error {
	return q.fill("FillFloat32", "float32", b, 4, offset, count, unsafe.Pointer(&value))
}

// FillInt32 is FillFloat32 for int32 elements.
func (q *Queue) FillInt32(b *Buffer, value int32, offset, count int) error {
	return q.fill("FillInt32", "int32", b, 4, offset, count, unsafe.Pointer(&value))
}

// FillUint8 is FillFloat32 for bytes.
func (q *Queue) FillUint8(b *Buffer, value uint8, offset, count int) error {
	return q.fill("FillUint8", "uint8", b, 1, offset, count, unsafe.Pointer(&value))
}
