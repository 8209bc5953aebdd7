package cl

// #include <stdlib.h>
// #include <CL/cl.h>
import "C"

import (
	"fmt"
	"math"
	"reflect"
	"unsafe"
)

// Program is OpenCL C source compiled for the context's device. The caller
// releases it; kernels made from it keep it alive inside OpenCL until they
// are released too.
type Program struct {
	p C.cl_program
}

// BuildProgram compiles source with the given clBuildProgram options (such as
// "-D TILE=16 -cl-fast-relaxed-math"). A compile error is a *BuildError that
// carries the compiler's log.
func (c *Context) BuildProgram(source, options string) (*Program, error) {
	if c == nil || c.ctx == nil {
		return nil, fmt.Errorf("build program: %w", errReleased)
	}
	// The strings go through C memory because clCreateProgramWithSource takes
	// an array of string pointers, and cgo forbids passing C Go memory that
	// holds Go pointers.
	csrc := C.CString(source)
	defer C.free(unsafe.Pointer(csrc))
	copts := C.CString(options)
	defer C.free(unsafe.Pointer(copts))

	n := C.size_t(len(source))
	var st C.cl_int
	p := C.clCreateProgramWithSource(c.ctx, 1, &csrc, &n, &st)
	if err := check("clCreateProgramWithSource", st); err != nil {
		return nil, fmt.Errorf("create program on %s: %w", c.dev.Name, err)
	}
	id := c.dev.id
	st = C.clBuildProgram(p, 1, &id, copts, nil, nil)
	if st == C.CL_BUILD_PROGRAM_FAILURE {
		log, err := infoString("clGetProgramBuildInfo", func(size C.size_t, ptr unsafe.Pointer, ret *C.size_t) C.cl_int {
			return C.clGetProgramBuildInfo(p, id, C.CL_PROGRAM_BUILD_LOG, size, ptr, ret)
		})
		if err != nil {
			log = "(no build log: " + err.Error() + ")"
		}
		C.clReleaseProgram(p)
		return nil, &BuildError{Device: c.dev.Name, Options: options, Log: log}
	}
	if err := check("clBuildProgram", st); err != nil {
		C.clReleaseProgram(p)
		return nil, fmt.Errorf("build program with options %q: %w", options, err)
	}
	return &Program{p: p}, nil
}

// Release frees the program. It is safe on nil and when called twice.
func (p *Program) Release() {
	if p == nil || p.p == nil {
		return
	}
	C.clReleaseProgram(p.p)
	p.p = nil
}

// Kernel is one __kernel function of a program with its argument values.
// Arguments are state of the kernel object, so SetArgs followed by Enqueue
// must not interleave with another goroutine's use of the same Kernel.
// The caller releases it.
type Kernel struct {
	k    C.cl_kernel
	name string
}

// Kernel creates the kernel called name.
func (p *Program) Kernel(name string) (*Kernel, error) {
	if p == nil || p.p == nil {
		return nil, fmt.Errorf("kernel %s: %w", name, errReleased)
	}
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	var st C.cl_int
	k := C.clCreateKernel(p.p, cname, &st)
	if err := check("clCreateKernel", st); err != nil {
		return nil, fmt.Errorf("kernel %s: %w", name, err)
	}
	return &Kernel{k: k, name: name}, nil
}

// Name returns the kernel's function name, for error messages and reports.
func (k *Kernel) Name() string {
	if k == nil {
		return ""
	}
	return k.name
}

// Release frees the kernel. It is safe on nil and when called twice.
func (k *Kernel) Release() {
	if k == nil || k.k == nil {
		return
	}
	C.clReleaseKernel(k.k)
	k.k = nil
}

// Local is the size in bytes of a __local argument: OpenCL allocates it per
// work-group, so there is no value to pass, only a size.
type Local int

// Struct is the bytes of a struct argument passed by value, laid out as
// the kernel's struct is (no pointers in it: OpenCL C forbids them). One
// struct of sizes and settings costs a launch less host time than as many
// scalar arguments: PoCL copies each argument of each launch.
type Struct []byte

// SetArgs sets arguments 0..len(args)-1 of the kernel. Each must be a
// *Buffer (a __global pointer), an int (sent as a 32-bit int, so it must fit),
// an int32, a uint32, a float32, a Struct, or a Local. Other Go types are refused
// rather than guessed at: a float64 or int64 would silently mismatch the
// kernel's 4-byte parameter. OpenCL copies each value, so the arguments may
// change after SetArgs returns.
func (k *Kernel) SetArgs(args ...any) error { return k.SetArgsFrom(0, args...) }

// SetArgsFrom is SetArgs for arguments first..first+len(args)-1: the one
// argument that differs between kernels whose others a shared SetArgs set.
func (k *Kernel) SetArgsFrom(first int, args ...any) error {
	if k == nil || k.k == nil {
		return fmt.Errorf("kernel %s: set args: %w", k.Name(), errReleased)
	}
	for j, a := range args {
		i := first + j
		var err error
		switch v := a.(type) {
		case *Buffer:
			if v == nil || v.mem == nil {
				err = fmt.Errorf("buffer: %w", errReleased)
				break
			}
			err = setValue(k, i, v.mem)
		case int:
			if v < math.MinInt32 || v > math.MaxInt32 {
				err = fmt.Errorf("int %d overflows the kernel's 32-bit int", v)
				break
			}
			err = setValue(k, i, C.cl_int(v))
		case int32:
			err = setValue(k, i, C.cl_int(v))
		case uint32:
			err = setValue(k, i, C.cl_uint(v))
		case float32:
			err = setValue(k, i, C.cl_float(v))
		case Struct:
			if len(v) == 0 {
				err = fmt.Errorf("empty struct")
				break
			}
			err = k.setArg(i, uintptr(len(v)), unsafe.Pointer(&v[0]))
		case Local:
			if v <= 0 {
				err = fmt.Errorf("local size %d bytes: must be positive", int(v))
				break
			}
			err = k.setArg(i, uintptr(v), nil)
		default:
			err = fmt.Errorf("unsupported type %s (want *cl.Buffer, int, int32, uint32, float32, cl.Struct or cl.Local)", typeName(a))
		}
		if err != nil {
			return fmt.Errorf("kernel %s argument %d: %w", k.name, i, err)
		}
	}
	return nil
}

// setValue sets argument i of k to a copy of x, a C scalar or cl_mem.
func setValue[T any](k *Kernel, i int, x T) error {
	return k.setArg(i, unsafe.Sizeof(x), unsafe.Pointer(&x))
}

func (k *Kernel) setArg(i int, size uintptr, value unsafe.Pointer) error {
	return check("clSetKernelArg", C.clSetKernelArg(k.k, C.cl_uint(i), C.size_t(size), value))
}

// WorkGroupSize returns the largest work-group this kernel can launch with on
// d (CL_KERNEL_WORK_GROUP_SIZE), which may be below d.MaxWorkGroupSize when the
// kernel uses many registers or much local memory.
func (k *Kernel) WorkGroupSize(d Device) (int, error) {
	if k == nil || k.k == nil {
		return 0, fmt.Errorf("kernel %s: work-group size: %w", k.Name(), errReleased)
	}
	var n C.size_t
	st := C.clGetKernelWorkGroupInfo(k.k, d.id, C.CL_KERNEL_WORK_GROUP_SIZE, C.size_t(unsafe.Sizeof(n)), unsafe.Pointer(&n), nil)
	if err := check("clGetKernelWorkGroupInfo", st); err != nil {
		return 0, fmt.Errorf("kernel %s: %w", k.name, err)
	}
	return int(n), nil
}

// typeName is %T without handing the value to fmt, which would make every
// argument of every SetArgs call escape: each int then costs an allocation
// per launch just to box it.
func typeName(a any) string {
	if a == nil {
		return "nil"
	}
	return reflect.TypeOf(a).String()
}
