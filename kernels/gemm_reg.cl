// gemm_reg: C = op(A) B for CPU devices, row-major, by register tiling.
//
// Each work-item owns a TM x (16*TNV) block of C held in float16 registers. It
// walks k, loads the block's slice of B's row k with vload16 and broadcasts one
// element of op(A) per row into an fma. No local memory and no barriers: on a
// CPU (PoCL) the work-item loop becomes straight SIMD code, which measured 8-10x
// faster than a local-memory tiled kernel with barriers at the training shapes.
//
// Forms, as the backward pass needs them (A B^T is done by transposing B first):
//   gemm_reg_nn: C[M,N] = A[M,K] B[K,N]
//   gemm_reg_tn: C[M,N] = A[K,M]^T B[K,N]   (rows of A^T are A's columns: one
//                element per row of the block is still a single load)
// Edges: a block that sticks out of C (M % TM or N % (16*TNV) nonzero) takes the
// guarded path below; no caller buffer is ever padded.
//
// Accuracy: k is walked in chunks of KC; each chunk is summed in registers from
// zero and then added to the block of C. That is blocked summation: rounding
// grows with sqrt(K*KC) instead of K. Thin outputs (one float16 per row: the
// logits, or a layer of a few units) are built with COMPENSATED=1 instead:
// each product's rounding error comes exactly from an fma and each sum's from
// TwoSum, and they are carried in a second register. A layer of one unit has
// no other outputs to average its cancellation with; uncompensated, its
// relative error against float64 reached 8e-5.

#ifndef TM
#define TM 4   // rows of C per work-item
#endif
#ifndef TNV
#define TNV 4  // float16 vectors per row of the block: 16*TNV columns of C
#endif
#ifndef COMPENSATED
#define COMPENSATED 0  // 1: sum with sums.cl's compensation, see accumulate
#endif
#if COMPENSATED
#define KC 0x7fffffff  // one chunk: the compensation carries the whole sum
#endif
#ifndef KC
#define KC 64  // k per chunk summed from zero before it is added to C
#endif
#define TN (16 * TNV)

// loadRow16 reads 16 consecutive floats of a row starting at column j, zero
// past column n-1 when guarded.
static inline float16 loadRow16(__global const float *row, int j, int n, bool guarded)
{
	if (!guarded || j + 16 <= n)
		return vload16(0, row + j);
	float t[16];
	for (int e = 0; e < 16; e++)
		t[e] = (j + e < n) ? row[j + e] : 0.0f;
	return vload16(0, t);
}

// storeC16 writes v to a row of C, or adds it to what the row holds.
static inline void storeC16(float16 v, __global float *row, int j, int n, bool guarded, bool add)
{
	if (add)
		v += loadRow16(row, j, n, guarded);
	if (!guarded || j + 16 <= n) {
		vstore16(v, 0, row + j);
		return;
	}
	float t[16];
	vstore16(v, 0, t);
	for (int e = 0; e < 16 && j + e < n; e++)
		row[j + e] = t[e];
}

// accumulate adds a*b to acc; compensated (sums.cl), its rounding errors go
// to comp, else comp stays zero and the compiler drops it.
static inline void accumulate(float16 *acc, float16 *comp, float a, float16 b)
{
#if COMPENSATED
	fmaSum_float16(acc, comp, (float16)(a), b);
#else
	*acc = fma((float16)(a), b, *acc);
#endif
}

// tile computes one block. transA and guarded are compile-time constants at
// every call site, so inlining yields four straight-line specialisations.
static inline void tile(int M, int N, int K,
		 __global const float *restrict A, int lda,
		 __global const float *restrict B, int ldb,
		 __global float *restrict C, int ldc,
		 int i0, int j0, bool transA, bool guarded)
{
	for (int k0 = 0; k0 < K; k0 += KC) {
		const int k1 = min(k0 + KC, K);
		float16 acc[TM][TNV], comp[TM][TNV];
#pragma unroll
		for (int r = 0; r < TM; r++)
#pragma unroll
			for (int v = 0; v < TNV; v++)
				acc[r][v] = comp[r][v] = (float16)(0.0f);

		for (int k = k0; k < k1; k++) {
			__global const float *brow = B + (size_t)k * ldb;
			float16 b[TNV];
#pragma unroll
			for (int v = 0; v < TNV; v++)
				b[v] = loadRow16(brow, j0 + 16 * v, N, guarded);
#pragma unroll
			for (int r = 0; r < TM; r++) {
				const int i = i0 + r;
				float a;
				if (guarded && i >= M)
					a = 0.0f;
				else if (transA)
					a = A[(size_t)k * lda + i];
				else
					a = A[(size_t)i * lda + k];
#pragma unroll
				for (int v = 0; v < TNV; v++)
					accumulate(&acc[r][v], &comp[r][v], a, b[v]);
			}
		}

#pragma unroll
		for (int r = 0; r < TM; r++) {
			if (guarded && i0 + r >= M)
				break;
			__global float *crow = C + (size_t)(i0 + r) * ldc;
#pragma unroll
			for (int v = 0; v < TNV; v++)
				if (!guarded || j0 + 16 * v < N)
					storeC16(acc[r][v] + comp[r][v], crow, j0 + 16 * v, N, guarded, k0 > 0);
		}
	}
}

// Launch with global (ceil(M/TM), ceil(N/TN)) and local (1, 1): consecutive
// work-groups share one panel of B, which then stays in cache.
#define GEMM_REG(name, transA)                                                  \
	__kernel void name(const int M, const int N, const int K,               \
			   __global const float *restrict A, const int lda,     \
			   __global const float *restrict B, const int ldb,     \
			   __global float *restrict C, const int ldc)           \
	{                                                                       \
		const int i0 = get_global_id(0) * TM;                           \
		const int j0 = get_global_id(1) * TN;                           \
		if (i0 >= M || j0 >= N)                                         \
			return;                                                 \
		if (i0 + TM <= M && j0 + TN <= N)                               \
			tile(M, N, K, A, lda, B, ldb, C, ldc, i0, j0, transA, false); \
		else                                                            \
			tile(M, N, K, A, lda, B, ldb, C, ldc, i0, j0, transA, true); \
	}

GEMM_REG(gemm_reg_nn, false)
GEMM_REG(gemm_reg_tn, true)
