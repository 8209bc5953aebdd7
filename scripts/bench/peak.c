// peak measures the single-precision FMA throughput of this CPU, to set beside
// the theoretical peak: independent chains of _mm512_fmadd_ps (zmm, 16 lanes)
// and _mm256_fmadd_ps (ymm, 8 lanes), on 1 thread and on N threads (pthreads,
// one chain set per thread), and the core clock, from a chain of dependent
// integer adds (one per cycle).
//
// The vector width is picked at run time: each kernel is compiled for its own
// instruction set (target attributes) and the zmm one runs only where the CPU
// has AVX-512F, so one binary runs on AVX2 and AVX-512 machines alike.
//
// Build: gcc -O2 -pthread -o /tmp/peak scripts/bench/peak.c
// Usage: peak [--threads N] [--seconds S] [--json]   (N defaults to the online CPUs)
#define _GNU_SOURCE
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CHAINS 12 // independent accumulators: > FMA latency (4) x FMA pipes (2)

static double now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// FMA_CHAINS(name, tgt, vec, pre, reduce) defines float name(long iters),
// iters rounds of CHAINS independent FMAs on registers of type vec, whose
// intrinsics start with pre (_mm512, _mm256); it returns reduce(sum of the
// chains) so the compiler keeps the work.
#define FMA_CHAINS(name, tgt, vec, pre, reduce)                            \
	__attribute__((target(tgt))) static float name(long iters) {        \
		vec acc[CHAINS];                                             \
		for (int i = 0; i < CHAINS; i++)                             \
			acc[i] = pre##_set1_ps((float)i);                    \
		const vec a = pre##_set1_ps(0.999999f), b = pre##_set1_ps(1e-6f); \
		for (long it = 0; it < iters; it++) {                        \
			_Pragma("GCC unroll 12")                             \
			for (int i = 0; i < CHAINS; i++)                     \
				acc[i] = pre##_fmadd_ps(acc[i], a, b);       \
		}                                                            \
		vec s = acc[0];                                              \
		for (int i = 1; i < CHAINS; i++)                             \
			s = pre##_add_ps(s, acc[i]);                         \
		return reduce(s);                                            \
	}

__attribute__((target("avx2"))) static float sum256(__m256 s) {
	float o[8];
	_mm256_storeu_ps(o, s);
	return o[0] + o[1] + o[2] + o[3] + o[4] + o[5] + o[6] + o[7];
}

// fma512 and fma256: the zmm and the ymm version.
FMA_CHAINS(fma512, "avx512f", __m512, _mm512, _mm512_reduce_add_ps)
FMA_CHAINS(fma256, "avx2,fma", __m256, _mm256, sum256)

// clock_ghz times a chain of dependent adds, one cycle each on every x86 core
// of the last decade, so cycles = adds.
static double clock_ghz(double seconds) {
	long iters = 1000000;
	for (;;) {
		long x = 0, n = iters;
		double t0 = now();
		__asm__ volatile("1:\n\t"
		                 "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
		                 "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
		                 "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
		                 "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
		                 "dec %1\n\tjnz 1b"
		                 : "+r"(x), "+r"(n));
		double dt = now() - t0;
		if (dt >= seconds)
			return 20.0 * iters / dt / 1e9;
		iters = (long)(iters * (seconds / (dt > 1e-6 ? dt : 1e-6)) * 1.1) + 1;
	}
}

typedef struct {
	int wide; // 512 or 256
	long iters;
	double seconds;
	float sink;
	pthread_barrier_t *bar;
} job;

static void *worker(void *p) {
	job *j = p;
	pthread_barrier_wait(j->bar);
	double t0 = now();
	j->sink = j->wide == 512 ? fma512(j->iters) : fma256(j->iters);
	j->seconds = now() - t0;
	return NULL;
}

// run returns GFLOP/s over nthreads threads, each running iters rounds;
// the time is the slowest thread's.
static double run(int wide, int nthreads, long iters) {
	pthread_t *th = calloc(nthreads, sizeof *th);
	job *jobs = calloc(nthreads, sizeof *jobs);
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, NULL, nthreads);
	for (int i = 0; i < nthreads; i++) {
		jobs[i] = (job){.wide = wide, .iters = iters, .bar = &bar};
		pthread_create(&th[i], NULL, worker, &jobs[i]);
	}
	double worst = 0, sink = 0;
	for (int i = 0; i < nthreads; i++) {
		pthread_join(th[i], NULL);
		if (jobs[i].seconds > worst)
			worst = jobs[i].seconds;
		sink += jobs[i].sink;
	}
	pthread_barrier_destroy(&bar);
	free(th);
	free(jobs);
	if (sink == 12345.678f)
		puts("");
	double flop = (double)iters * CHAINS * (wide / 32) * 2 * nthreads;
	return flop / worst / 1e9;
}

// best runs a measurement 5 times and keeps the fastest (the peak is a bound).
static double best(int wide, int nthreads, double seconds) {
	long iters = 1000000;
	double g = run(wide, 1, iters); // size: iterations for ~seconds on one thread
	iters = (long)(seconds * g * 1e9 / (CHAINS * (wide / 32) * 2.0));
	if (iters < 1000)
		iters = 1000;
	double b = 0;
	for (int r = 0; r < 5; r++) {
		double x = run(wide, nthreads, iters);
		if (x > b)
			b = x;
	}
	return b;
}

int main(int argc, char **argv) {
	int nthreads = (int)sysconf(_SC_NPROCESSORS_ONLN), json = 0;
	double seconds = 0.2;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--threads") && i + 1 < argc)
			nthreads = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (!strcmp(argv[i], "--json"))
			json = 1;
		else {
			fprintf(stderr, "usage: %s [--threads N] [--seconds S] [--json]\n", argv[0]);
			return 2;
		}
	}
	if (nthreads < 1 || seconds <= 0) {
		fprintf(stderr, "--threads and --seconds must be positive\n");
		return 2;
	}
	double ghz = 0; // the fastest of 5: preemption only slows a run down
	for (int r = 0; r < 5; r++) {
		double g = clock_ghz(seconds / 5);
		if (g > ghz)
			ghz = g;
	}
	__builtin_cpu_init();
	if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
		fprintf(stderr, "peak: this CPU has no AVX2 with FMA\n");
		return 1;
	}
	const int has512 = __builtin_cpu_supports("avx512f");
	double z1 = 0, zn = 0;
	if (has512) {
		z1 = best(512, 1, seconds);
		zn = best(512, nthreads, seconds);
	}
	double y1 = best(256, 1, seconds), yn = best(256, nthreads, seconds);
	// Theoretical: cores x GHz x FMA pipes x lanes x 2 (an FMA is 2 FLOP).
	// Assumed 2 FMA pipes, as wide as the widest vectors (Zen 4 splits zmm
	// into 2 x 256, server Zen 5 and Intel server cores with 2 FMA units do
	// not).
	const int lanes = has512 ? 16 : 8;
	double theo_core = ghz * 2 * lanes * 2;
	if (json) {
		printf("{\"tool\":\"peak\",\"threads\":%d,\"avx512\":%s,\"clock_ghz\":%.3f,\"fma512_gflops_1\":%.2f,\"fma512_gflops_n\":%.2f,"
		       "\"fma256_gflops_1\":%.2f,\"fma256_gflops_n\":%.2f,\"flop_per_cycle_512\":%.2f,\"flop_per_cycle_256\":%.2f,"
		       "\"theoretical_gflops_core\":%.2f,\"theoretical_gflops_total\":%.2f}\n",
		       nthreads, has512 ? "true" : "false", ghz, z1, zn, y1, yn, z1 / ghz, y1 / ghz, theo_core, theo_core * nthreads);
		return 0;
	}
	printf("clock from a dependent-add chain (1 add/cycle): %.3f GHz (1 thread, while it ran)\n", ghz);
	char head[64];
	snprintf(head, sizeof head, "FMA, %d independent chains", CHAINS);
	printf("%-28s %12s %12s %14s\n", head, "1 thread", "threads", "FLOP/cycle/core");
	if (has512)
		printf("%-28s %9.1f GF %6d: %4.0f GF %14.1f\n", "zmm _mm512_fmadd_ps", z1, nthreads, zn, z1 / ghz);
	else
		printf("%-28s %12s (no AVX-512 on this CPU)\n", "zmm _mm512_fmadd_ps", "-");
	printf("%-28s %9.1f GF %6d: %4.0f GF %14.1f\n", "ymm _mm256_fmadd_ps", y1, nthreads, yn, y1 / ghz);
	printf("theoretical: %d cores x %.3f GHz x 2 FMA pipes x %d lanes x 2 FLOP = %.1f GFLOP/s (%.1f per core)\n", nthreads,
	       ghz, lanes, theo_core * nthreads, theo_core);
	printf("(assumes two 512-bit FMA pipes per core; 32 FLOP/cycle measured on zmm means 256-bit pipes or one pipe,\n"
	       " and a multi-thread figure below threads x 1-thread means shared cores, SMT or a lower all-core clock)\n");
	return 0;
}
