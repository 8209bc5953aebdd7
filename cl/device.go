package cl

// #include <CL/cl.h>
import "C"

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unsafe"
)

// DeviceType is the kind of a device, reduced to the one class that matters
// for choosing kernels (a device may report several bits; GPU wins, then
// CPU, then accelerator).
type DeviceType int

// The zero DeviceType is DeviceOther, so a Device that did not come from
// AllDevices never passes for a CPU or a GPU.
const (
	DeviceOther DeviceType = iota
	DeviceCPU
	DeviceGPU
	DeviceAccelerator
)

// String returns "CPU", "GPU", "Accelerator" or "Other".
func (t DeviceType) String() string {
	switch t {
	case DeviceOther:
		return "Other"
	case DeviceCPU:
		return "CPU"
	case DeviceGPU:
		return "GPU"
	case DeviceAccelerator:
		return "Accelerator"
	}
	return "DeviceType(" + strconv.Itoa(int(t)) + ")"
}

// Device describes one OpenCL device, with the properties read once by
// AllDevices so callers can choose kernels and sizes without calling C.
// A Device is a plain value: it owns nothing and needs no release.
type Device struct {
	Index int // position in AllDevices' list (what `--device N` names)

	Platform, PlatformVendor, PlatformVersion            string
	Name, Vendor, Version, DriverVersion, OpenCLCVersion string

	Type             DeviceType
	ComputeUnits     int
	GlobalMem        uint64 // bytes
	LocalMem         uint64 // bytes of __local memory per work-group
	MaxAlloc         uint64 // bytes, the largest single buffer
	MaxWorkGroupSize int
	// NativeFloatVector and PreferredFloatVector are the device's float
	// vector widths (CL_DEVICE_NATIVE_/PREFERRED_VECTOR_WIDTH_FLOAT): on a
	// CPU, the SIMD register's width in floats (8 with AVX2, 16 with
	// AVX-512), which sizes the register GEMM's blocks.
	NativeFloatVector, PreferredFloatVector int

	id       C.cl_device_id
	platform C.cl_platform_id
}

// AllDevices lists every device of every platform, in the ICD loader's
// platform order and each platform's device order, so an index is stable
// from one run to the next on the same machine.
func AllDevices() ([]Device, error) {
	var n C.cl_uint
	st := C.clGetPlatformIDs(0, nil, &n)
	if st == CodePlatformNotFoundKHR || (st == C.CL_SUCCESS && n == 0) {
		return nil, ErrNoPlatform
	}
	if err := check("clGetPlatformIDs", st); err != nil {
		return nil, err
	}
	platforms := make([]C.cl_platform_id, n)
	if err := check("clGetPlatformIDs", C.clGetPlatformIDs(n, &platforms[0], nil)); err != nil {
		return nil, err
	}
	// A platform or device that fails its queries is skipped, so one broken
	// vendor driver does not hide the working ones; its error is returned only
	// when nothing works.
	var devs []Device
	var firstErr error
	for _, p := range platforms {
		found, err := platformDevicesInfo(p, len(devs))
		if err != nil && firstErr == nil {
			firstErr = err
		}
		devs = append(devs, found...)
	}
	if len(devs) == 0 {
		if firstErr != nil {
			return nil, firstErr
		}
		return nil, fmt.Errorf("no OpenCL device found on %d platform(s)", len(platforms))
	}
	return devs, nil
}

// platformDevices lists a platform's devices. A platform with none is not an
// error: the ICD loader lists every installed driver, including one whose
// hardware is absent.
func platformDevices(p C.cl_platform_id) ([]C.cl_device_id, error) {
	var n C.cl_uint
	st := C.clGetDeviceIDs(p, C.CL_DEVICE_TYPE_ALL, 0, nil, &n)
	if st == C.CL_DEVICE_NOT_FOUND || (st == C.CL_SUCCESS && n == 0) {
		return nil, nil
	}
	if err := check("clGetDeviceIDs", st); err != nil {
		return nil, err
	}
	ids := make([]C.cl_device_id, n)
	if err := check("clGetDeviceIDs", C.clGetDeviceIDs(p, C.CL_DEVICE_TYPE_ALL, n, &ids[0], nil)); err != nil {
		return nil, err
	}
	return ids, nil
}

func platformString(p C.cl_platform_id, param C.cl_platform_info) (string, error) {
	return infoString("clGetPlatformInfo", func(size C.size_t, ptr unsafe.Pointer, ret *C.size_t) C.cl_int {
		return C.clGetPlatformInfo(p, param, size, ptr, ret)
	})
}

func (d *Device) query() error {
	str := func(param C.cl_device_info, dst *string) error {
		s, err := infoString("clGetDeviceInfo", func(size C.size_t, ptr unsafe.Pointer, ret *C.size_t) C.cl_int {
			return C.clGetDeviceInfo(d.id, param, size, ptr, ret)
		})
		*dst = s
		return err
	}
	// fixed reads a scalar of the exact C type the specification gives for
	// param, so a driver never writes past the Go variable.
	fixed := func(param C.cl_device_info, size uintptr, ptr unsafe.Pointer) error {
		return check("clGetDeviceInfo", C.clGetDeviceInfo(d.id, param, C.size_t(size), ptr, nil))
	}
	var (
		typ                  C.cl_device_type
		units                C.cl_uint
		global, local, alloc C.cl_ulong
		maxGroup             C.size_t
		native, preferred    C.cl_uint
	)
	err := errors.Join(
		str(C.CL_DEVICE_NAME, &d.Name),
		str(C.CL_DEVICE_VENDOR, &d.Vendor),
		str(C.CL_DEVICE_VERSION, &d.Version),
		str(C.CL_DRIVER_VERSION, &d.DriverVersion),
		str(C.CL_DEVICE_OPENCL_C_VERSION, &d.OpenCLCVersion),
		fixed(C.CL_DEVICE_TYPE, unsafe.Sizeof(typ), unsafe.Pointer(&typ)),
		fixed(C.CL_DEVICE_MAX_COMPUTE_UNITS, unsafe.Sizeof(units), unsafe.Pointer(&units)),
		fixed(C.CL_DEVICE_GLOBAL_MEM_SIZE, unsafe.Sizeof(global), unsafe.Pointer(&global)),
		fixed(C.CL_DEVICE_LOCAL_MEM_SIZE, unsafe.Sizeof(local), unsafe.Pointer(&local)),
		fixed(C.CL_DEVICE_MAX_MEM_ALLOC_SIZE, unsafe.Sizeof(alloc), unsafe.Pointer(&alloc)),
		fixed(C.CL_DEVICE_MAX_WORK_GROUP_SIZE, unsafe.Sizeof(maxGroup), unsafe.Pointer(&maxGroup)),
		fixed(C.CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT, unsafe.Sizeof(native), unsafe.Pointer(&native)),
		fixed(C.CL_DEVICE_PREFERRED_VECTOR_WIDTH_FLOAT, unsafe.Sizeof(preferred), unsafe.Pointer(&preferred)),
	)
	if err != nil {
		return err
	}
	switch {
	case typ&C.CL_DEVICE_TYPE_GPU != 0:
		d.Type = DeviceGPU
	case typ&C.CL_DEVICE_TYPE_CPU != 0:
		d.Type = DeviceCPU
	case typ&C.CL_DEVICE_TYPE_ACCELERATOR != 0:
		d.Type = DeviceAccelerator
	default:
		d.Type = DeviceOther
	}
	d.ComputeUnits = int(units)
	d.GlobalMem, d.LocalMem, d.MaxAlloc = uint64(global), uint64(local), uint64(alloc)
	d.MaxWorkGroupSize = int(maxGroup)
	d.NativeFloatVector, d.PreferredFloatVector = int(native), int(preferred)
	return nil
}

// Choose picks a device from devs by a user's selector:
//
//	""        the first GPU, else the first device (a GPU is why one uses OpenCL)
//	"1"       devs[1], which is the device with Index 1 when devs came from AllDevices
//	"pthread" the first device whose name or platform name contains the text,
//	          ignoring case
func Choose(devs []Device, sel string) (Device, error) {
	if len(devs) == 0 {
		return Device{}, errors.New("no OpenCL devices to choose from")
	}
	if sel == "" {
		for _, d := range devs {
			if d.Type == DeviceGPU {
				return d, nil
			}
		}
		return devs[0], nil
	}
	if allDigits(sel) {
		i, err := strconv.Atoi(sel)
		if err != nil || i >= len(devs) {
			return Device{}, fmt.Errorf("device index %s out of range: have %d device(s), 0..%d", sel, len(devs), len(devs)-1)
		}
		return devs[i], nil
	}
	want := strings.ToLower(sel)
	names := make([]string, len(devs))
	for i, d := range devs {
		if strings.Contains(strings.ToLower(d.Name), want) || strings.Contains(strings.ToLower(d.Platform), want) {
			return d, nil
		}
		names[i] = d.Name
	}
	return Device{}, fmt.Errorf("no OpenCL device matches %q (have: %s)", sel, strings.Join(names, ", "))
}

func allDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// platformDevicesInfo describes the devices of platform p, numbering them from
// first. It returns those it could query and the first error it met.
func platformDevicesInfo(p C.cl_platform_id, first int) ([]Device, error) {
	ids, err := platformDevices(p)
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	var pd Device
	if pd.Platform, err = platformString(p, C.CL_PLATFORM_NAME); err != nil {
		return nil, err
	}
	if pd.PlatformVendor, err = platformString(p, C.CL_PLATFORM_VENDOR); err != nil {
		return nil, err
	}
	if pd.PlatformVersion, err = platformString(p, C.CL_PLATFORM_VERSION); err != nil {
		return nil, err
	}
	var devs []Device
	var firstErr error
	for _, id := range ids {
		d := pd
		d.Index, d.id, d.platform = first+len(devs), id, p
		if err := d.query(); err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("a device of platform %s: %w", pd.Platform, err)
			}
			continue
		}
		devs = append(devs, d)
	}
	return devs, firstErr
}
