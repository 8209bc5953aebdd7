// gemm_dot: C[M,N] = A[M,K] B[N,K]^T for thin C (N at most 16) on CPU
// devices, as dot products along k: the A B^T form of the thin layers, whose
// W^T (N x K, the layer's mirror) lies row by row like A.
//
// The register GEMM (gemm_reg.cl) spreads columns of C over vector lanes:
// with 10 columns, 6 of 16 lanes idle and every block ragged. Here the lanes
// run along k instead, so each lane is busy whatever N is: a work-item holds
// one vector accumulator per output of its TM x NC block, loads a vector of
// each of its rows of A and of each row of B per VW terms, and reduces the
// lanes at the end. NC, the columns, is the product's N itself, fixed at
// build time so the block is all registers.
//
// Accuracy: thin outputs are summed with sums.cl's compensation, as the thin
// register blocks are (no other outputs average one's cancellation away):
// every lane carries its rounding errors, and the lanes are reduced with
// TwoSum. The result is as accurate as a sum in twice the precision.
//
// Epilogues, the Epilogue values of kernels/gemm.go:
#define EPI_NONE 0
#define EPI_BIAS 1      // + b[j]
#define EPI_BIAS_RELU 2 // f(. + b[j])
#define EPI_MASK 3      // . [Z > 0], Z shaped like C

#ifndef NC
#define NC 10 // columns of C: N
#endif
#ifndef TM
#define TM 1 // rows of C per work-item
#endif
#ifndef VW
#define VW 16 // floats per vector: the device's native width
#endif

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define vec CAT(float, VW)
#define vloadv CAT(vload, VW)
#define fmaSumV CAT(fmaSum_, vec)

// halve adds the upper half of (*s, *c), n lanes, into the lower half with
// TwoSum. The halves go through private memory, not .lo and .hi: oclgrind
// 21.10's --uninitialized check crashed on the vector shuffles (a memcpy in
// Uninitialized::instructionExecuted), and PoCL compiles both alike.
#define HALVE(T, H, n)                                         \
	static inline void halve_##T(float *s, float *c)       \
	{                                                      \
		H sl = CAT(vload, n)(0, s), sh = CAT(vload, n)(1, s); \
		H cl = CAT(vload, n)(0, c) + CAT(vload, n)(1, c);     \
		twoSum_##H(&sl, &cl, sh);                        \
		CAT(vstore, n)(sl, 0, s);                        \
		CAT(vstore, n)(cl, 0, c);                        \
	}
HALVE(float16, float8, 8)
HALVE(float8, float4, 4)
HALVE(float4, float2, 2)

// total is s + c reduced over the lanes, halving with TwoSum.
static inline float total(vec s, vec c)
{
	float ts[VW], tc[VW];
	CAT(vstore, VW)(s, 0, ts);
	CAT(vstore, VW)(c, 0, tc);
#if VW == 16
	halve_float16(ts, tc);
#endif
#if VW >= 8
	halve_float8(ts, tc);
#endif
	halve_float4(ts, tc);
	float sum = ts[0], err = tc[0] + tc[1];
	twoSum_float(&sum, &err, ts[1]);
	return sum + err;
}

// tailOf is the last K % VW terms of a row from column k, zero past them: a
// vector load there could run off the buffer's end.
static inline vec tailOf(__global const float *row, int k, int K)
{
	float t[VW];
	for (int e = 0; e < VW; e++)
		t[e] = k + e < K ? row[k + e] : 0.0f;
	return vloadv(0, t);
}

// Launch with global ceil(M/TM) and local 1. aux is the epilogue's operand
// (any buffer for EPI_NONE).
__kernel void gemm_dot(const int M, const int K, __global const float *restrict A, const int lda,
		       __global const float *restrict B, const int ldb, __global float *restrict C, const int ldc,
		       const int epi, __global const float *restrict aux)
{
	const int i0 = get_global_id(0) * TM;
	if (i0 >= M)
		return;
	vec acc[TM][NC], comp[TM][NC];
	__global const float *arow[TM];
#pragma unroll
	for (int r = 0; r < TM; r++) {
		// Rows past M repeat the last one; their sums are never stored.
		arow[r] = A + (size_t)min(i0 + r, M - 1) * lda;
#pragma unroll
		for (int c = 0; c < NC; c++)
			acc[r][c] = comp[r][c] = (vec)(0.0f);
	}
	const int kv = K - K % VW;
	for (int k = 0; k <= kv; k += VW) {
		if (k == K)
			break;
		const bool tail = k == kv;
		vec a[TM];
#pragma unroll
		for (int r = 0; r < TM; r++)
			a[r] = tail ? tailOf(arow[r], k, K) : vloadv(0, arow[r] + k);
#pragma unroll
		for (int c = 0; c < NC; c++) {
			__global const float *brow = B + (size_t)c * ldb;
			const vec b = tail ? tailOf(brow, k, K) : vloadv(0, brow + k);
#pragma unroll
			for (int r = 0; r < TM; r++)
				fmaSumV(&acc[r][c], &comp[r][c], a[r], b);
		}
	}
#pragma unroll
	for (int r = 0; r < TM; r++) {
		if (i0 + r >= M)
			break;
		__global float *crow = C + (size_t)(i0 + r) * ldc;
#pragma unroll
		for (int c = 0; c < NC; c++) {
			float v = total(acc[r][c], comp[r][c]);
			if (epi == EPI_MASK)
				v = aux[(size_t)(i0 + r) * ldc + c] > 0.0f ? v : 0.0f;
			else if (epi != EPI_NONE)
				v += aux[c];
			if (epi == EPI_BIAS_RELU)
				v = fmax(v, 0.0f);
			crow[c] = v;
		}
	}
}
