// Minimal reproducer: oclgrind 21.10 --uninitialized reports values written by
// clEnqueueFillBuffer as uninitialized. Its Uninitialized plugin handles each
// host store (one per fill pattern element) by reallocating the whole
// buffer's shadow at the size of that one store, so after a fill of n > 1
// floats the shadow is 4 bytes long and every element reads as poisoned.
// The same data written with clEnqueueWriteBuffer is clean.
//
//   cc -o fill_uninitialized fill_uninitialized.c -lOpenCL
//   oclgrind --uninitialized ./fill_uninitialized fill    # 4 reports
//   oclgrind --uninitialized ./fill_uninitialized write   # none
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <stdio.h>
#include <string.h>

static const char *src =
	"__kernel void copy(__global const float *in, __global float *out)\n"
	"{ out[get_global_id(0)] = in[get_global_id(0)]; }\n";

int main(int argc, char **argv)
{
	enum { N = 4 };
	int fill = argc > 1 && strcmp(argv[1], "fill") == 0;
	cl_platform_id p;
	cl_device_id d;
	cl_int st;
	clGetPlatformIDs(1, &p, NULL);
	clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, 1, &d, NULL);
	cl_context ctx = clCreateContext(NULL, 1, &d, NULL, NULL, &st);
	cl_command_queue q = clCreateCommandQueue(ctx, d, 0, &st);
	cl_mem in = clCreateBuffer(ctx, CL_MEM_READ_WRITE, N * sizeof(float), NULL, &st);
	cl_mem out = clCreateBuffer(ctx, CL_MEM_READ_WRITE, N * sizeof(float), NULL, &st);
	float zero = 0, zeros[N] = {0};
	if (fill)
		st = clEnqueueFillBuffer(q, in, &zero, sizeof zero, 0, sizeof zeros, 0, NULL, NULL);
	else
		st = clEnqueueWriteBuffer(q, in, CL_TRUE, 0, sizeof zeros, zeros, 0, NULL, NULL);
	cl_program prog = clCreateProgramWithSource(ctx, 1, &src, NULL, &st);
	clBuildProgram(prog, 1, &d, "", NULL, NULL);
	cl_kernel k = clCreateKernel(prog, "copy", &st);
	clSetKernelArg(k, 0, sizeof in, &in);
	clSetKernelArg(k, 1, sizeof out, &out);
	size_t n = N;
	clEnqueueNDRangeKernel(q, k, 1, NULL, &n, NULL, 0, NULL, NULL);
	st = clFinish(q);
	printf("%s: clFinish %d\n", fill ? "fill" : "write", st);
	return st != CL_SUCCESS;
}
