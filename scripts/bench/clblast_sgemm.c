// clblast_sgemm times CLBlast's SGEMM on the eight GEMMs of one training step
// of the 784-512-256-10 network (and 1024^3 as an anchor), on an OpenCL
// device: by default the first device of the platform whose name contains
// "Portable" (PoCL), or the first device whose name contains --device.
//
// Shapes and names follow kernels/bench_test.go (BenchmarkGemm): NAME_MxNxK,
// C is M x N, K is the inner dimension, all matrices row-major float32:
//   NN  C = A B      A: M x K (ld K),           B: K x N (ld N)
//   TN  C = A^T B    A stored K x M (ld M),     B: K x N (ld N)
//   NT  C = A B^T    A: M x K (ld K),           B stored N x K (ld K)
// Each shape is called once to warm up (CLBlast compiles its kernels on first
// use; PoCL compiles them for the CPU), then timed as a loop of calls queued
// back to back with one clFinish after it, the way training queues them; the
// loop is sized to about --target seconds and the median of --reps loops is
// reported.
//
// Build: gcc -O2 -o /tmp/clblast_sgemm scripts/bench/clblast_sgemm.c -lclblast -lOpenCL
// Usage: clblast_sgemm [--batch B] [--reps N] [--target S] [--device SUBSTR] [--no-peak] [--json]
#define CL_TARGET_OPENCL_VERSION 120
#include <clblast_c.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *status_name(int s) {
	switch (s) {
	case 0: return "CLBlastSuccess";
	case -1: return "CL_DEVICE_NOT_FOUND";
	case -2: return "CL_DEVICE_NOT_AVAILABLE";
	case -3: return "CLBlastOpenCLCompilerNotAvailable";
	case -4: return "CLBlastTempBufferAllocFailure";
	case -5: return "CLBlastOpenCLOutOfResources";
	case -6: return "CLBlastOpenCLOutOfHostMemory";
	case -11: return "CLBlastOpenCLBuildProgramFailure";
	case -30: return "CLBlastInvalidValue";
	case -36: return "CLBlastInvalidCommandQueue";
	case -38: return "CLBlastInvalidMemObject";
	case -42: return "CLBlastInvalidBinary";
	case -43: return "CLBlastInvalidBuildOptions";
	case -44: return "CLBlastInvalidProgram";
	case -45: return "CLBlastInvalidProgramExecutable";
	case -46: return "CLBlastInvalidKernelName";
	case -47: return "CLBlastInvalidKernelDefinition";
	case -48: return "CLBlastInvalidKernel";
	case -49: return "CLBlastInvalidArgIndex";
	case -50: return "CLBlastInvalidArgValue";
	case -51: return "CLBlastInvalidArgSize";
	case -52: return "CLBlastInvalidKernelArgs";
	case -53: return "CLBlastInvalidLocalNumDimensions";
	case -54: return "CLBlastInvalidLocalThreadsTotal";
	case -55: return "CLBlastInvalidLocalThreadsDim";
	case -56: return "CLBlastInvalidGlobalOffset";
	case -57: return "CLBlastInvalidEventWaitList";
	case -58: return "CLBlastInvalidEvent";
	case -59: return "CLBlastInvalidOperation";
	case -61: return "CLBlastInvalidBufferSize";
	case -63: return "CLBlastInvalidGlobalWorkSize";
	case -1024: return "CLBlastNotImplemented";
	case -1022: return "CLBlastInvalidMatrixA";
	case -1021: return "CLBlastInvalidMatrixB";
	case -1020: return "CLBlastInvalidMatrixC";
	case -1017: return "CLBlastInvalidDimension";
	case -1016: return "CLBlastInvalidLeadDimA";
	case -1015: return "CLBlastInvalidLeadDimB";
	case -1014: return "CLBlastInvalidLeadDimC";
	case -1011: return "CLBlastInsufficientMemoryA";
	case -1010: return "CLBlastInsufficientMemoryB";
	case -1009: return "CLBlastInsufficientMemoryC";
	case -2050: return "CLBlastInsufficientMemoryTemp";
	case -2046: return "CLBlastInvalidLocalMemUsage";
	case -2041: return "CLBlastDatabaseError";
	case -2040: return "CLBlastUnknownError";
	case -2039: return "CLBlastUnexpectedError";
	default: return "unknown status";
	}
}

#define CL_CHECK(call)                                                                      \
	do {                                                                                    \
		cl_int err_ = (call);                                                               \
		if (err_ != CL_SUCCESS) {                                                           \
			fprintf(stderr, "%s:%d: %s: OpenCL error %d (%s)\n", __FILE__, __LINE__, #call, \
			        err_, status_name(err_));                                               \
			exit(1);                                                                        \
		}                                                                                   \
	} while (0)

typedef struct {
	const char *name;
	int ta, tb;
	size_t m, n, k;
} shape;

static double now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static cl_command_queue queue;
static cl_context ctx;

static void gemm(const shape *s, cl_mem a, cl_mem b, cl_mem c) {
	size_t lda = s->ta ? s->m : s->k;
	size_t ldb = s->tb ? s->k : s->n;
	CLBlastStatusCode st = CLBlastSgemm(CLBlastLayoutRowMajor,
	                                    s->ta ? CLBlastTransposeYes : CLBlastTransposeNo,
	                                    s->tb ? CLBlastTransposeYes : CLBlastTransposeNo,
	                                    s->m, s->n, s->k, 1.0f, a, 0, lda, b, 0, ldb, 0.0f, c, 0, s->n,
	                                    &queue, NULL);
	if (st != CLBlastSuccess) {
		fprintf(stderr, "CLBlastSgemm %s (%zux%zux%zu, ta=%d tb=%d): status %d (%s)\n", s->name, s->m,
		        s->n, s->k, s->ta, s->tb, (int)st, status_name(st));
		exit(1);
	}
}

static cl_mem upload(const float *h, size_t n) {
	cl_int err;
	cl_mem m = clCreateBuffer(ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, n * sizeof(float), (void *)h, &err);
	CL_CHECK(err);
	return m;
}

static float *randm(size_t n, unsigned *seed) {
	float *p = malloc(n * sizeof(float));
	for (size_t i = 0; i < n; i++) {
		*seed = *seed * 1664525u + 1013904223u;
		p[i] = (float)((*seed >> 8) * (2.0 / 16777216.0) - 1.0);
	}
	return p;
}

static void pick_device(const char *want, cl_platform_id *plat_out, cl_device_id *dev_out) {
	cl_uint np = 0;
	CL_CHECK(clGetPlatformIDs(0, NULL, &np));
	if (np == 0) {
		fprintf(stderr, "no OpenCL platforms\n");
		exit(1);
	}
	cl_platform_id *plats = calloc(np, sizeof *plats);
	CL_CHECK(clGetPlatformIDs(np, plats, NULL));
	for (cl_uint i = 0; i < np; i++) {
		char pname[256] = {0};
		CL_CHECK(clGetPlatformInfo(plats[i], CL_PLATFORM_NAME, sizeof pname - 1, pname, NULL));
		if (!want && !strstr(pname, "Portable"))
			continue;
		cl_uint nd = 0;
		if (clGetDeviceIDs(plats[i], CL_DEVICE_TYPE_ALL, 0, NULL, &nd) != CL_SUCCESS || nd == 0)
			continue;
		cl_device_id *devs = calloc(nd, sizeof *devs);
		CL_CHECK(clGetDeviceIDs(plats[i], CL_DEVICE_TYPE_ALL, nd, devs, NULL));
		for (cl_uint j = 0; j < nd; j++) {
			char dname[256] = {0};
			CL_CHECK(clGetDeviceInfo(devs[j], CL_DEVICE_NAME, sizeof dname - 1, dname, NULL));
			if (!want || strstr(dname, want)) {
				*plat_out = plats[i];
				*dev_out = devs[j];
				free(devs);
				free(plats);
				return;
			}
		}
		free(devs);
	}
	fprintf(stderr, want ? "no OpenCL device whose name contains \"%s\"\n"
	                     : "no device on a platform whose name contains \"Portable\" (PoCL)%s\n",
	        want ? want : "");
	exit(1);
}

int main(int argc, char **argv) {
	size_t batch = 128;
	int reps = 7, json = 0, peak = 1;
	double target = 0.2;
	const char *want = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--batch") && i + 1 < argc)
			batch = strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
			reps = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--target") && i + 1 < argc)
			target = atof(argv[++i]);
		else if (!strcmp(argv[i], "--device") && i + 1 < argc)
			want = argv[++i];
		else if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (!strcmp(argv[i], "--no-peak"))
			peak = 0;
		else {
			fprintf(stderr, "usage: %s [--batch B] [--reps N] [--target SECONDS] [--device SUBSTR] [--no-peak] [--json]\n", argv[0]);
			return 2;
		}
	}
	if (batch == 0 || reps < 1 || target <= 0) {
		fprintf(stderr, "--batch, --reps and --target must be positive\n");
		return 2;
	}

	cl_platform_id plat;
	cl_device_id dev;
	pick_device(want, &plat, &dev);
	char pname[256] = {0}, pver[256] = {0}, dname[256] = {0}, dver[256] = {0};
	cl_uint cus = 0;
	CL_CHECK(clGetPlatformInfo(plat, CL_PLATFORM_NAME, sizeof pname - 1, pname, NULL));
	CL_CHECK(clGetPlatformInfo(plat, CL_PLATFORM_VERSION, sizeof pver - 1, pver, NULL));
	CL_CHECK(clGetDeviceInfo(dev, CL_DEVICE_NAME, sizeof dname - 1, dname, NULL));
	CL_CHECK(clGetDeviceInfo(dev, CL_DRIVER_VERSION, sizeof dver - 1, dver, NULL));
	CL_CHECK(clGetDeviceInfo(dev, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cus, &cus, NULL));
	cl_int err;
	ctx = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
	CL_CHECK(err);
	queue = clCreateCommandQueue(ctx, dev, 0, &err);
	CL_CHECK(err);

	shape shapes[9] = {
		{"Z1=XW1", 0, 0, batch, 512, 784},
		{"Z2=Z1W2", 0, 0, batch, 256, 512},
		{"Z3=Z2W3", 0, 0, batch, 10, 256},
		{"dW3=Z2tD3", 1, 0, 256, 10, batch},
		{"dZ2=D3W3t", 0, 1, batch, 256, 10},
		{"dW2=Z1tD2", 1, 0, 512, 256, batch},
		{"dZ1=D2W2t", 0, 1, batch, 512, 256},
		{"dW1=XtD1", 1, 0, 784, 512, batch},
		{"peak", 0, 0, 1024, 1024, 1024},
	};
	int nshapes = peak ? 9 : 8;

	if (json)
		printf("{\"tool\":\"clblast\",\"clblast_version\":\"%d.%d.%d\",\"platform\":\"%s\",\"platform_version\":\"%s\","
		       "\"device\":\"%s\",\"driver_version\":\"%s\",\"compute_units\":%u,\"batch\":%zu,\"reps\":%d,"
		       "\"convention\":\"NAME_MxNxK: C is M x N, K inner; form = op(A) op(B), row-major\",\"shapes\":[",
		       CLBLAST_VERSION_MAJOR, CLBLAST_VERSION_MINOR, CLBLAST_VERSION_PATCH, pname, pver, dname, dver, cus,
		       batch, reps);
	else {
		printf("CLBlast %d.%d.%d (headers) on %s [%s], device %s, driver %s, %u compute units\n",
		       CLBLAST_VERSION_MAJOR, CLBLAST_VERSION_MINOR, CLBLAST_VERSION_PATCH, pname, pver, dname, dver, cus);
		printf("NAME_MxNxK: C is M x N, K inner; form = op(A) op(B), row-major; median of %d repetitions of ~%g s each\n",
		       reps, target);
		printf("%-26s %4s %10s %8s %7s %8s %9s\n", "shape", "form", "median_us", "GFLOP/s", "loops", "max_err", "warmup_s");
	}
	fflush(stdout);

	double total_us = 0, total_flop = 0;
	unsigned seed = 1;
	for (int si = 0; si < nshapes; si++) {
		const shape *s = &shapes[si];
		size_t na = s->m * s->k, nb = s->k * s->n, nc = s->m * s->n;
		float *ha = randm(na, &seed), *hb = randm(nb, &seed), *hc = calloc(nc, sizeof(float));
		cl_mem a = upload(ha, na), b = upload(hb, nb), c = upload(hc, nc);

		double t0 = now();
		gemm(s, a, b, c);
		CL_CHECK(clFinish(queue));
		double warm = now() - t0;

		// Check the result against a double-precision product on the host.
		CL_CHECK(clEnqueueReadBuffer(queue, c, CL_TRUE, 0, nc * sizeof(float), hc, 0, NULL, NULL));
		double maxerr = 0;
		for (size_t i = 0; i < s->m; i++)
			for (size_t j = 0; j < s->n; j++) {
				double acc = 0;
				for (size_t p = 0; p < s->k; p++) {
					double x = s->ta ? ha[p * s->m + i] : ha[i * s->k + p];
					double y = s->tb ? hb[j * s->k + p] : hb[p * s->n + j];
					acc += x * y;
				}
				double e = fabs(acc - hc[i * s->n + j]);
				if (e > maxerr)
					maxerr = e;
			}

		// Size the loop to about target seconds.
		long loops = 1;
		double dt;
		for (;;) {
			t0 = now();
			for (long i = 0; i < loops; i++)
				gemm(s, a, b, c);
			CL_CHECK(clFinish(queue));
			dt = now() - t0;
			if (dt >= target / 4 || loops >= (1L << 24))
				break;
			loops *= 4;
		}
		loops = (long)(loops * target / (dt > 1e-9 ? dt : 1e-9));
		if (loops < 1)
			loops = 1;
		double *per = calloc(reps, sizeof(double));
		for (int r = 0; r < reps; r++) {
			t0 = now();
			for (long i = 0; i < loops; i++)
				gemm(s, a, b, c);
			CL_CHECK(clFinish(queue));
			per[r] = (now() - t0) / loops;
		}
		qsort(per, reps, sizeof(double), cmp_double);
		double med = reps % 2 ? per[reps / 2] : (per[reps / 2 - 1] + per[reps / 2]) / 2;
		double flop = 2.0 * s->m * s->n * s->k;
		const char *form = s->ta ? "TN" : s->tb ? "NT" : "NN";
		char name[64];
		snprintf(name, sizeof name, "%s_%zux%zux%zu", s->name, s->m, s->n, s->k);
		if (si < 8) {
			total_us += med * 1e6;
			total_flop += flop;
		}
		if (json)
			printf("%s{\"name\":\"%s\",\"form\":\"%s\",\"m\":%zu,\"n\":%zu,\"k\":%zu,\"loops\":%ld,\"reps\":%d,"
			       "\"median_us\":%.3f,\"min_us\":%.3f,\"max_us\":%.3f,\"gflops\":%.3f,\"max_abs_err\":%.3g,\"warmup_s\":%.3f}",
			       si ? "," : "", name, form, s->m, s->n, s->k, loops, reps, med * 1e6, per[0] * 1e6,
			       per[reps - 1] * 1e6, flop / med / 1e9, maxerr, warm);
		else {
			printf("%-26s %4s %10.2f %8.1f %7ld %8.1e %9.3f\n", name, form, med * 1e6, flop / med / 1e9, loops,
			       maxerr, warm);
			if (si == 7)
				printf("%-26s %4s %10.2f %8.1f\n", "total of the eight", "", total_us, total_flop / total_us / 1e3);
		}
		fflush(stdout);
		free(per);
		free(ha);
		free(hb);
		free(hc);
		clReleaseMemObject(a);
		clReleaseMemObject(b);
		clReleaseMemObject(c);
	}
	if (json)
		printf("],\"total_eight_us\":%.3f,\"total_eight_gflops\":%.3f}\n", total_us, total_flop / total_us / 1e3);
	clReleaseCommandQueue(queue);
	clReleaseContext(ctx);
	return 0;
}
