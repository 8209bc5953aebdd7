// gemm_tiled: C = op(A) op(B) for GPUs, row-major, the textbook local-memory way.
//
// A TS x TS work-group stages a TS x TS tile of op(A) and of op(B) in local
// memory, waits at a barrier, and each work-item accumulates one element of C
// from the two tiles. Loads outside the matrices read as zero, so any M, N, K
// works; only in-range elements of C are written.
//
//   gemm_tiled_nn: C[M,N] = A[M,K]   B[K,N]
//   gemm_tiled_tn: C[M,N] = A[K,M]^T B[K,N]
//   gemm_tiled_nt: C[M,N] = A[M,K]   B[N,K]^T
//
// On a CPU device this design is slow (barriers split every work-group loop);
// gemm_reg.cl is the CPU kernel. Both are checked against cpuref in the tests.

#ifndef TS
#define TS 16  // tile edge; the work-group is TS x TS
#endif
#ifndef COMPENSATED
#define COMPENSATED 0  // 1: carry each product's and sum's rounding error (thin outputs)
#endif

// accumulate adds a*b to *acc; compensated (sums.cl), its rounding errors go
// to *comp.
static inline void accumulate(float *acc, float *comp, float a, float b)
{
#if COMPENSATED
	fmaSum_float(acc, comp, a, b);
#else
	*acc = fma(a, b, *acc);
#endif
}

#define A_NN(i, k) A[(size_t)(i) * lda + (k)]
#define A_TN(i, k) A[(size_t)(k) * lda + (i)]
#define B_NN(k, j) B[(size_t)(k) * ldb + (j)]
#define B_NT(k, j) B[(size_t)(j) * ldb + (k)]

// Launch with global (roundup(N, TS), roundup(M, TS)) and local (TS, TS).
#define GEMM_TILED(name, AEL, BEL)                                              \
	__kernel __attribute__((reqd_work_group_size(TS, TS, 1)))               \
	void name(const int M, const int N, const int K,                        \
		  __global const float *restrict A, const int lda,              \
		  __global const float *restrict B, const int ldb,              \
		  __global float *restrict C, const int ldc)                    \
	{                                                                       \
		__local float As[TS][TS];                                       \
		__local float Bs[TS][TS + 1];                                   \
		const int tx = get_local_id(0), ty = get_local_id(1);           \
		const int j = get_global_id(0), i = get_global_id(1);           \
		float acc = 0.0f, comp = 0.0f;                                  \
		for (int k0 = 0; k0 < K; k0 += TS) {                            \
			const int ka = k0 + tx, kb = k0 + ty;                   \
			As[ty][tx] = (i < M && ka < K) ? AEL(i, ka) : 0.0f;     \
			Bs[ty][tx] = (kb < K && j < N) ? BEL(kb, j) : 0.0f;     \
			barrier(CLK_LOCAL_MEM_FENCE);                           \
			for (int kk = 0; kk < TS; kk++)                         \
				accumulate(&acc, &comp, As[ty][kk], Bs[kk][tx]); \
			barrier(CLK_LOCAL_MEM_FENCE);                           \
		}                                                               \
		if (i < M && j < N)                                             \
			C[(size_t)i * ldc + j] = acc + comp;                    \
	}

GEMM_TILED(gemm_tiled_nn, A_NN, B_NN)
GEMM_TILED(gemm_tiled_tn, A_TN, B_NN)
GEMM_TILED(gemm_tiled_nt, A_NN, B_NT)
