package cl

import (
	"errors"
	"fmt"
	"strings"
)

// Error is a failed OpenCL call: the C function's name and the status it
// returned. Callers match codes with ErrorCode or IsOutOfMemory rather than
// by text.
type Error struct {
	Call string // the C function, e.g. "clEnqueueNDRangeKernel"
	Code int    // the negative cl_int status, e.g. -54
}

// Error returns "call: CODE_NAME", e.g.
// "clEnqueueNDRangeKernel: CL_INVALID_WORK_GROUP_SIZE".
func (e *Error) Error() string { return e.Call + ": " + CodeName(e.Code) }

// Status codes that callers of this package have reason to tell apart. The
// full set is named by CodeName; these are the ones with a recovery: shrink
// the problem, change the launch shape, or install a driver.
const (
	CodeDeviceNotFound             = -1
	CodeMemObjectAllocationFailure = -4
	CodeOutOfResources             = -5
	CodeOutOfHostMemory            = -6
	CodeProfilingInfoNotAvailable  = -7
	CodeBuildProgramFailure        = -11
	CodeInvalidValue               = -30
	CodeInvalidBuildOptions        = -43
	CodeInvalidKernelName          = -46
	CodeInvalidArgIndex            = -49
	CodeInvalidArgValue            = -50
	CodeInvalidArgSize             = -51
	CodeInvalidKernelArgs          = -52
	CodeInvalidWorkGroupSize       = -54
	CodeInvalidWorkItemSize        = -55
	CodeInvalidBufferSize          = -61
	CodeInvalidGlobalWorkSize      = -63
	CodePlatformNotFoundKHR        = -1001
)

// codeNames holds every status of OpenCL 1.2 (0 and -1 .. -68), the four that
// later versions added (-69 .. -72, which a 3.0 runtime such as PoCL may
// return even to a 1.2 caller) and the ICD loader's -1001. Checked against
// <CL/cl.h> and <CL/cl_ext.h> of opencl-headers.
var codeNames = map[int]string{
	0:     "CL_SUCCESS",
	-1:    "CL_DEVICE_NOT_FOUND",
	-2:    "CL_DEVICE_NOT_AVAILABLE",
	-3:    "CL_COMPILER_NOT_AVAILABLE",
	-4:    "CL_MEM_OBJECT_ALLOCATION_FAILURE",
	-5:    "CL_OUT_OF_RESOURCES",
	-6:    "CL_OUT_OF_HOST_MEMORY",
	-7:    "CL_PROFILING_INFO_NOT_AVAILABLE",
	-8:    "CL_MEM_COPY_OVERLAP",
	-9:    "CL_IMAGE_FORMAT_MISMATCH",
	-10:   "CL_IMAGE_FORMAT_NOT_SUPPORTED",
	-11:   "CL_BUILD_PROGRAM_FAILURE",
	-12:   "CL_MAP_FAILURE",
	-13:   "CL_MISALIGNED_SUB_BUFFER_OFFSET",
	-14:   "CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST",
	-15:   "CL_COMPILE_PROGRAM_FAILURE",
	-16:   "CL_LINKER_NOT_AVAILABLE",
	-17:   "CL_LINK_PROGRAM_FAILURE",
	-18:   "CL_DEVICE_PARTITION_FAILED",
	-19:   "CL_KERNEL_ARG_INFO_NOT_AVAILABLE",
	-30:   "CL_INVALID_VALUE",
	-31:   "CL_INVALID_DEVICE_TYPE",
	-32:   "CL_INVALID_PLATFORM",
	-33:   "CL_INVALID_DEVICE",
	-34:   "CL_INVALID_CONTEXT",
	-35:   "CL_INVALID_QUEUE_PROPERTIES",
	-36:   "CL_INVALID_COMMAND_QUEUE",
	-37:   "CL_INVALID_HOST_PTR",
	-38:   "CL_INVALID_MEM_OBJECT",
	-39:   "CL_INVALID_IMAGE_FORMAT_DESCRIPTOR",
	-40:   "CL_INVALID_IMAGE_SIZE",
	-41:   "CL_INVALID_SAMPLER",
	-42:   "CL_INVALID_BINARY",
	-43:   "CL_INVALID_BUILD_OPTIONS",
	-44:   "CL_INVALID_PROGRAM",
	-45:   "CL_INVALID_PROGRAM_EXECUTABLE",
	-46:   "CL_INVALID_KERNEL_NAME",
	-47:   "CL_INVALID_KERNEL_DEFINITION",
	-48:   "CL_INVALID_KERNEL",
	-49:   "CL_INVALID_ARG_INDEX",
	-50:   "CL_INVALID_ARG_VALUE",
	-51:   "CL_INVALID_ARG_SIZE",
	-52:   "CL_INVALID_KERNEL_ARGS",
	-53:   "CL_INVALID_WORK_DIMENSION",
	-54:   "CL_INVALID_WORK_GROUP_SIZE",
	-55:   "CL_INVALID_WORK_ITEM_SIZE",
	-56:   "CL_INVALID_GLOBAL_OFFSET",
	-57:   "CL_INVALID_EVENT_WAIT_LIST",
	-58:   "CL_INVALID_EVENT",
	-59:   "CL_INVALID_OPERATION",
	-60:   "CL_INVALID_GL_OBJECT",
	-61:   "CL_INVALID_BUFFER_SIZE",
	-62:   "CL_INVALID_MIP_LEVEL",
	-63:   "CL_INVALID_GLOBAL_WORK_SIZE",
	-64:   "CL_INVALID_PROPERTY",
	-65:   "CL_INVALID_IMAGE_DESCRIPTOR",
	-66:   "CL_INVALID_COMPILER_OPTIONS",
	-67:   "CL_INVALID_LINKER_OPTIONS",
	-68:   "CL_INVALID_DEVICE_PARTITION_COUNT",
	-69:   "CL_INVALID_PIPE_SIZE",
	-70:   "CL_INVALID_DEVICE_QUEUE",
	-71:   "CL_INVALID_SPEC_ID",
	-72:   "CL_MAX_SIZE_RESTRICTION_EXCEEDED",
	-1001: "CL_PLATFORM_NOT_FOUND_KHR",
}

// CodeName returns the C name of a status code, or "CL error N" for one no
// header we target defines (a vendor extension's code, most likely).
func CodeName(code int) string {
	if s, ok := codeNames[code]; ok {
		return s
	}
	return fmt.Sprintf("CL error %d", code)
}

// ErrorCode returns the status of the first *Error in err's chain, or 0
// (CL_SUCCESS) when there is none, so callers can switch on a code through
// any amount of fmt.Errorf wrapping.
func ErrorCode(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

// IsOutOfMemory reports whether err means the device or host ran out of room:
// the one failure a caller can answer by retrying smaller (a smaller batch, a
// smaller model). CL_OUT_OF_RESOURCES is included because drivers report an
// allocation they could only attempt lazily, at the first launch, that way.
func IsOutOfMemory(err error) bool {
	switch ErrorCode(err) {
	case CodeMemObjectAllocationFailure, CodeOutOfResources, CodeOutOfHostMemory, CodeInvalidBufferSize:
		return true
	}
	return false
}

// ErrNoPlatform is returned by AllDevices when the ICD loader finds no
// OpenCL implementation at all, which almost always means none is installed.
var ErrNoPlatform = errors.New("no OpenCL platform found (is an ICD such as pocl-opencl-icd installed?)")

// BuildError is a program that failed to compile for a device. It is kept
// apart from *Error because the compiler log, not the status, is what a
// reader needs; Error gives one line to fit a log, Log the whole thing.
type BuildError struct {
	Device  string // the device's name
	Options string // the build options passed to clBuildProgram
	Log     string // the full compiler log (CL_PROGRAM_BUILD_LOG)
}

// Error returns one line: the device, the first line of the log, and how
// many lines the full log (in the Log field) has.
func (e *BuildError) Error() string {
	log := strings.TrimSpace(e.Log)
	if log == "" {
		return fmt.Sprintf("build program: CL_BUILD_PROGRAM_FAILURE on %s: (empty build log)", e.Device)
	}
	lines := strings.Split(log, "\n")
	first := ""
	for _, l := range lines {
		if first = strings.TrimSpace(l); first != "" {
			break
		}
	}
	return fmt.Sprintf("build program: CL_BUILD_PROGRAM_FAILURE on %s: %s (%d lines of log)", e.Device, first, len(lines))
}

// Unwrap exposes the status, so ErrorCode(err) == CodeBuildProgramFailure
// holds for a build error as for any other failed call.
func (e *BuildError) Unwrap() error {
	return &Error{Call: "clBuildProgram", Code: CodeBuildProgramFailure}
}
