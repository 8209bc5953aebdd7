// gemm_reg: C = op(A) B for CPU devices, row-major, by register tiling.
//
// Each work-item owns a TM x (16*TNV) block of C held in float16 registers. It
// walks k, loads the block's slice of B's row k with vload16 and broadcasts one
// element of op(A) per row into an fma. No local memory and no barriers in its
// inner loop: on a CPU (PoCL) the work-item loop becomes straight SIMD code,
// which measured 8-10x faster than a local-memory tiled kernel with barriers
// at the training shapes.
//
// Forms, as the backward pass needs them:
//   gemm_reg_nn: C[M,N] = A[M,K] B[K,N]
//   gemm_reg_tn: C[M,N] = A[K,M]^T B[K,N]   (rows of A^T are A's columns: one
//                element per row of the block is still a single load)
//   gemm_reg_nt: C[M,N] = A[M,K] B[N,K]^T   (a work-group packs B^T's rows
//                into local memory once, behind one barrier, then runs
//                gemm_reg_nn's loop from there; see the kernel)
// Edges: a block that sticks out of C (M % TM or N % (16*TNV) nonzero) takes the
// guarded path below; no caller buffer is ever padded.
//
// Fused work, so the pass reads each tensor once less and launches fewer
// kernels (epi, applied as the last k-chunk is stored):
//   EPI_BIAS       C = op(A) B + b             the logits: Z3 = Z2 W3 + b3
//   EPI_BIAS_RELU  C = f(op(A) B + b)          Z1 = f(X W1 + b1), Z2 = ...
//   EPI_MASK       C = (op(A) B) . [Z > 0]     f'(Z1 W2 + b2) . dZ1 made where
//                                              dZ1 = [..] W2^T is written
// and, for gemm_reg_tn, colsum: db[j] = sum_k B[k, j], the bias gradient
// from the delta that dW = Z^T delta has just brought into cache. The
// work-items of the first row-block do it after their products
// (columnSums).
//
// and EPI_UPDATE, for gemm_reg_tn only: the optimiser step of layers.cl's
// update kernel applied to W (aux) and its velocity where dW = Z^T delta is
// finished, and to b and its velocity where db is, so dW and db never go
// through memory (the step's largest stream after the weights themselves).
// The caller computes every product that reads the old W before this one.
//
// Accuracy: k is walked in chunks of kc (an argument: one build serves every
// chunk length the tuner tries); each chunk is summed in registers from
// zero and then added to the block of C. That is blocked summation: rounding
// grows with sqrt(K*kc) instead of K. Thin outputs (one float16 per row: the
// logits, or a layer of a few units) are built with COMPENSATED=1 instead:
// each product's rounding error comes exactly from an fma and each sum's from
// TwoSum, and they are carried in a second register. A layer of one unit has
// no other outputs to average its cancellation with; uncompensated, its
// relative error against float64 reached 8e-5.
//
// SPARSE=1 builds skip op(A)'s zero terms, for the products whose A is the
// input batch (images, mostly zero): each block walks a list of the k
// where any of its rows of op(A) is nonzero, made just before by
// nonzero_rows (A B) or nonzero_cols (A^T B) at the end of this file; see
// kernels/sparse.go. The chunks of kc run over the list's entries.

#ifndef TM
#define TM 4   // rows of C per work-item
#endif
#ifndef TNV
#define TNV 4  // float16 vectors per row of the block: 16*TNV columns of C
#endif
#ifndef SPARSE
#define SPARSE 0  // 1: k skips the terms whose elements of op(A) are all zero
#endif
#ifndef COMPENSATED
#define COMPENSATED 0  // 1: sum with sums.cl's compensation, see accumulate
#endif
#define TN (16 * TNV)

#define EPI_NONE 0
#define EPI_BIAS 1
#define EPI_BIAS_RELU 2
#define EPI_MASK 3
#define EPI_UPDATE 4

// Step is EPI_UPDATE's operands: the optimiser's settings (as update in
// layers.cl takes them), the velocities of W (V) and of b (Vb), b itself,
// and keep: nonzero to store dW and db as well (verify reads them).
typedef struct {
	float lr, mu, wd;
	int nesterov, keep;
	__global float *V, *bias, *Vb;
} Step;

// loadRow16 reads 16 consecutive floats of a row starting at column j, zero
// past column n-1 when guarded. overread says the 16 floats from j lie inside
// the buffer even where they pass the row's end (the row is not the last):
// then one vector load and a lane mask replace 16 scalar loads, which is what
// keeps a product 10 columns wide (every block ragged) from crawling.
static inline __attribute__((always_inline)) float16 loadRow16(__global const float *row, int j, int n,
							       bool guarded, bool overread)
{
	if (!guarded || j + 16 <= n)
		return vload16(0, row + j);
	if (overread) {
		const int16 lane = (int16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15) + j;
		return select((float16)(0.0f), vload16(0, row + j), lane < n);
	}
	float t[16];
	for (int e = 0; e < 16; e++)
		t[e] = (j + e < n) ? row[j + e] : 0.0f;
	return vload16(0, t);
}

// storeRow16 writes the columns of v that lie before n to a row from column j.
static inline __attribute__((always_inline)) void storeRow16(float16 v, __global float *row, int j, int n, bool guarded)
{
	if (!guarded || j + 16 <= n) {
		vstore16(v, 0, row + j);
		return;
	}
	float t[16];
	vstore16(v, 0, t);
	for (int e = 0; e < 16 && j + e < n; e++)
		row[j + e] = t[e];
}

// storeC16 writes v to a row of C, or adds it to what the row holds; on the
// last k-chunk it applies the epilogue (aux is the bias, or Z's row for the
// mask).
static inline __attribute__((always_inline)) void storeC16(float16 v, __global float *row, int j, int n, bool guarded, bool add,
			    bool last, int epi, __global const float *aux)
{
	if (add)
		v += loadRow16(row, j, n, guarded, false);
	if (last && epi != EPI_NONE) {
		const float16 x = loadRow16(aux, j, n, guarded, false);
		if (epi == EPI_MASK)
			v = select((float16)(0.0f), v, isgreater(x, (float16)(0.0f)));
		else
			v += x;
		if (epi == EPI_BIAS_RELU)
			v = fmax(v, (float16)(0.0f));
	}
	storeRow16(v, row, j, n, guarded);
}

// stepRow16 is update's step (layers.cl) on 16 parameters p from column j,
// with their gradient g and velocities v, written in the same operations so
// that it rounds alike:
//
//	g' = g + wd p;  v = mu v + g' (mu != 0);  p -= lr (nesterov ? g' + mu v : v)
static inline __attribute__((always_inline)) void stepRow16(float16 g, __global float *p, __global float *v, int j,
							    int n, bool guarded, float decay, const Step *st)
{
	float16 w = loadRow16(p, j, n, guarded, false);
	float16 step = g;
	if (decay != 0.0f)
		step += decay * w;
	if (st->mu != 0.0f) {
		const float16 vel = st->mu * loadRow16(v, j, n, guarded, false) + step;
		storeRow16(vel, v, j, n, guarded);
		step = st->nesterov ? step + st->mu * vel : vel;
	}
	w -= st->lr * step;
	storeRow16(w, p, j, n, guarded);
}

// finishC16 stores a block row's last k-chunk: the epilogue of storeC16, or
// with EPI_UPDATE the optimiser step on W's row (and dW too when kept).
static inline __attribute__((always_inline)) void finishC16(float16 v, __global float *crow, int j, int n, bool guarded,
							    bool add, bool last, int epi, __global const float *arow,
							    size_t off, const Step *st)
{
	if (!last || epi != EPI_UPDATE) {
		storeC16(v, crow, j, n, guarded, add, last, epi, arow);
		return;
	}
	if (add)
		v += loadRow16(crow, j, n, guarded, false);
	if (st->keep)
		storeRow16(v, crow, j, n, guarded);
	stepRow16(v, (__global float *)arow, st->V + off, j, n, guarded, st->wd, st);
}

// PREFETCH asks for the cache line of p ahead of a write. It is only a
// hint: oclgrind 21.10 cannot run llvm.prefetch, and its tests build with
// NO_PREFETCH (as with -Drestrict=, see cmd/mnist-cl/oclgrind_test.go).
#ifdef NO_PREFETCH
#define PREFETCH(p) ((void)(p))
#else
#define PREFETCH(p) __builtin_prefetch((p), 1, 3)
#endif

// prefetchStep asks for a block's rows of W and of its velocity (with
// momentum) before its products start, so that they arrive while the fmas
// run: the step at the end otherwise waited on each line from L3, which
// made the fused update of W1 cost half as much again as its product.
static inline __attribute__((always_inline)) void prefetchStep(__global const float *w, __global const float *v, int M,
							       int N, int ldc, int i0, int j0, bool guarded,
							       bool momentum)
{
	for (int r = 0; r < TM && (!guarded || i0 + r < M); r++) {
		const size_t off = (size_t)(i0 + r) * ldc + j0;
		for (int j = 0; j < TN && (!guarded || j0 + j < N); j += 16) {
			PREFETCH(w + off + j);
			if (momentum)
				PREFETCH(v + off + j);
		}
	}
}

// accumulate adds a*b to acc; compensated (sums.cl), its rounding errors go
// to comp, else comp stays zero and the compiler drops it.
static inline __attribute__((always_inline)) void accumulate(float16 *acc, float16 *comp, float a, float16 b)
{
#if COMPENSATED
	fmaSum_float16(acc, comp, (float16)(a), b);
#else
	*acc = fma((float16)(a), b, *acc);
#endif
}

// kstep adds term k of one block: B's row k (from B itself, or from panel
// when packed) times the block's TM elements of op(A)'s column k. ap[r]
// is where row r of the block's op(A) starts (clamped inside M): with
// pointers rather than row numbers, a sparse block's k, loaded from its
// list, no longer had its addresses built in vector registers and
// spilled; that made those products 8-10% faster, the dense ones the
// same. overread says B's
// 16-float loads from j0 stay inside the buffer at this k (see loadRow16).
static inline __attribute__((always_inline)) void kstep(int k, int k0, int N, int lda,
							__global const float *const *ap, __global const float *restrict B,
							int ldb, bool packed, __local const float *panel, int j0,
							bool transA, bool guarded, bool overread,
							float16 acc[TM][TNV], float16 comp[TM][TNV])
{
	__global const float *brow = B + (size_t)k * ldb;
	float16 b[TNV];
#pragma unroll
	for (int v = 0; v < TNV; v++)
		b[v] = packed ? vload16(0, panel + (k - k0) * TN + 16 * v)
			      : loadRow16(brow, j0 + 16 * v, N, guarded, overread);
#pragma unroll
	for (int r = 0; r < TM; r++) {
		const float a = transA ? ap[r][(size_t)k * lda] : ap[r][k];
#pragma unroll
		for (int v = 0; v < TNV; v++)
			accumulate(&acc[r][v], &comp[r][v], a, b[v]);
	}
}

// overreadRows is how many of B's K rows (ldb floats apart) a block at
// column j0 may read TN floats of from j0 with vector loads past N and
// still stay inside the buffer: all but the last one or two of a thin B.
static inline int overreadRows(int K, int ldb, int j0)
{
	const long room = (long)K * ldb - j0 - TN;
	return room < 0 ? 0 : (int)min(room / ldb + 1, (long)K);
}

// chunk computes terms k0 <= k < k1 of one block and stores them (adding
// to what C holds after the first chunk, applying the epilogue after the
// last). B's rows come from B itself, or when packed from panel: the
// chunk's rows of B^T as gemm_reg_nt packs them, TN floats a row, zero past
// N. transA, guarded and packed are compile-time constants at every call
// site, so inlining yields straight-line specialisations. In a SPARSE build
// (not packed) k0 and k1 index list, the block's nonzero terms, and kend
// is its length; otherwise they are terms themselves and kend is K.
static inline __attribute__((always_inline)) void chunk(int M, int N, int K, int k0, int k1, int kend,
		 __global const float *restrict A, int lda, __global const int *restrict list,
		 __global const float *restrict B, int ldb, bool packed, __local const float *panel,
		 __global float *restrict C, int ldc,
		 int i0, int j0, bool transA, bool guarded,
		 int epi, __global const float *restrict aux, const Step *st)
{
	float16 acc[TM][TNV], comp[TM][TNV];
#pragma unroll
	for (int r = 0; r < TM; r++)
#pragma unroll
		for (int v = 0; v < TNV; v++)
			acc[r][v] = comp[r][v] = (float16)(0.0f);

	// The guards are settled here, not at every k, which made a guarded
	// block (every block of a 10-wide product) run three to four times the
	// instructions of a full one. A row past M reads row M-1 again: its
	// sums are never stored. B's 16-float loads from j0 stay inside the
	// buffer for every row below kv (all but the last one or two of a thin
	// B), so those rows take masked vector loads (overread) and only the
	// rest scalar ones.
	__global const float *ap[TM];
#pragma unroll
	for (int r = 0; r < TM; r++) {
		const int row = guarded ? min(i0 + r, M - 1) : i0 + r;
		ap[r] = transA ? A + row : A + (size_t)row * lda;
	}
	const int kv = guarded && !packed ? overreadRows(K, ldb, j0) : K;
	// One loop, the overread test a compare with kv: two loops, one per
	// kind of load, measured no faster and took a tenth longer to tune,
	// whose time is mostly compiling.
	for (int i = k0; i < k1; i++) {
		const int k = SPARSE && !packed ? list[i] : i;
		kstep(k, k0, N, lda, ap, B, ldb, packed, panel, j0, transA, guarded, k < kv, acc, comp);
	}

	// The epilogue is long (guarded stores, the optimiser step): one copy
	// in a loop, not TM*TNV unrolled ones, which took 20 s per kernel to
	// compile. out lives on the stack; it is written once per chunk,
	// against (k1-k0)*TM*TNV fmas per element.
	float16 out[TM][TNV];
#pragma unroll
	for (int r = 0; r < TM; r++)
#pragma unroll
		for (int v = 0; v < TNV; v++)
			out[r][v] = acc[r][v] + comp[r][v];
#pragma unroll 1
	for (int e = 0; e < TM * TNV; e++) {
		const int r = e / TNV, v = e - r * TNV, j = j0 + 16 * v;
		if (guarded && (i0 + r >= M || j >= N))
			continue;
		const size_t off = (size_t)(i0 + r) * ldc;
		__global const float *arow = (epi == EPI_MASK || epi == EPI_UPDATE) ? aux + off : aux;
		finishC16(out[r][v], C + off, j, N, guarded, k0 > 0, k1 == kend, epi, arow, off, st);
	}
}

// columnSums sums B's K rows over the block's columns into dsum, the bias
// gradient db[j] = sum_k delta[k, j], compensated as the products are. It
// is a pass of its own over the block's panel of B, which the products
// have just brought into cache, rather than extra accumulators in their
// loop: those made every specialisation of that loop twice, which doubled
// gemm_reg_tn's compile time for the few blocks (the first row of blocks)
// that need the sums.
static inline __attribute__((always_inline)) void columnSums(__global const float *restrict B, int ldb, int N,
							     int K, int j0, bool guarded, float16 *dsum)
{
	float16 cs[TNV], csc[TNV];
#pragma unroll
	for (int v = 0; v < TNV; v++)
		cs[v] = csc[v] = (float16)(0.0f);
	const int kv = guarded ? overreadRows(K, ldb, j0) : K;
	for (int k = 0; k < K; k++)
#pragma unroll
		for (int v = 0; v < TNV; v++)
			accumulate(&cs[v], &csc[v], 1.0f, loadRow16(B + (size_t)k * ldb, j0 + 16 * v, N, guarded, k < kv));
#pragma unroll
	for (int v = 0; v < TNV; v++)
		dsum[v] = cs[v] + csc[v];
}

// tile computes one block from B in global memory, chunk by chunk, then,
// when colsum, the column sums, which it stores (or steps b with).
static inline __attribute__((always_inline)) void tile(int M, int N, int K, int kc,
		 __global const float *restrict A, int lda,
		 __global const float *restrict B, int ldb,
		 __global float *restrict C, int ldc,
		 int i0, int j0, bool transA, bool guarded,
		 int epi, __global const float *restrict aux,
		 bool colsum, __global float *restrict db, const Step *st,
		 __global const int *restrict list, int terms)
{
	if (epi == EPI_UPDATE)
		prefetchStep(aux, st->V, M, N, ldc, i0, j0, guarded, st->mu != 0.0f);
	// An empty list still runs one chunk: it writes C.
	for (int k0 = 0; k0 < terms || k0 == 0; k0 += kc)
		chunk(M, N, K, k0, min(k0 + kc, terms), terms, A, lda, list, B, ldb, false, (__local const float *)0, C, ldc, i0, j0,
		      transA, guarded, epi, aux, st);
	if (!colsum)
		return;
	float16 dsum[TNV];
	columnSums(B, ldb, N, K, j0, guarded, dsum);
#pragma unroll 1
	for (int v = 0; v < TNV; v++) {
		const int j = j0 + 16 * v;
		if (guarded && j >= N)
			continue;
		if (epi != EPI_UPDATE || st->keep)
			storeRow16(dsum[v], db, j, N, guarded);
		if (epi == EPI_UPDATE)
			stepRow16(dsum[v], st->bias, st->Vb, j, N, guarded, 0.0f, st);
	}
}

// onlyEpilogue is epi for a kernel that never runs EPI_UPDATE: its low two
// bits, which hold every other epilogue, so that the compiler can prove
// epi != EPI_UPDATE and drops the optimiser step and its prefetches.
static inline int onlyEpilogue(int epi) { return epi & 3; }

// Params are the sizes and settings of a launch, one struct argument rather
// than fifteen scalar ones: PoCL copies every argument of every launch. A
// thin product (128 x 256 x 10, queued 3000 times) took 17-19 us a launch
// against 19-23, and 22-24 us of the process's CPU time against 28-31
// (Zen 5), time the host's thread takes from PoCL's two. The host writes
// the fields in this order (regParams in kernels/gemm.go).
typedef struct {
	int M, N, K, kc;      // op(A) is M x K, C M x N; kc is the k-chunk
	int lda, ldb, ldc;    // row strides of A, B and C as stored
	int epi, colsum;      // the epilogue; 1: db gets B's column sums
	int nesterov, keep;   // EPI_UPDATE's (see Step)
	int lengthsAt;        // SPARSE: where the term lists' lengths start
	float lr, mu, wd;     // EPI_UPDATE's
} Params;

// Launch with global (ceil(M/TM), ceil(N/TN)) and local (1, 1): consecutive
// work-groups share one panel of B, which then stays in cache. kc is the
// k-chunk (0 or K and more: one chunk; compensated builds always take one).
// aux is the epilogue's operand (any buffer for EPI_NONE; W for EPI_UPDATE);
// db, when colsum is 1, gets the column sums of B (gemm_reg_tn only). V,
// bias and Vb are EPI_UPDATE's (see Step); other epilogues ignore them, and
// they may then be any buffer, as terms may outside a SPARSE build.
#define GEMM_REG_ARGS                                                           \
	const Params p, __global const float *restrict A,                       \
	__global const float *restrict B, __global float *restrict C,           \
	__global const float *restrict aux, __global float *restrict db,        \
	__global float *V, __global float *bias, __global float *Vb,            \
	__global const int *restrict terms
#define GEMM_REG(name, transA)                                                  \
	__kernel void name(GEMM_REG_ARGS)                                       \
	{                                                                       \
		const int M = p.M, N = p.N, K = p.K;                            \
		const int i0 = get_global_id(0) * TM;                           \
		const int j0 = get_global_id(1) * TN;                           \
		if (i0 >= M || j0 >= N)                                         \
			return;                                                 \
		const int kc = COMPENSATED || p.kc <= 0 || p.kc > K ? K : p.kc; \
		/* SPARSE: the block's list of terms and its length */         \
		__global const int *list = terms + (size_t)get_global_id(0) * K; \
		const int len = SPARSE ? terms[p.lengthsAt + get_global_id(0)] : K; \
		const Step st = {p.lr, p.mu, p.wd, p.nesterov, p.keep, V, bias, Vb}; \
		const bool full = i0 + TM <= M && j0 + TN <= N;                 \
		/* Only A^T B carries column sums and the update (the host      \
		   refuses them elsewhere): gemm_reg_nn drops their code. */    \
		const int e = transA ? p.epi : onlyEpilogue(p.epi);             \
		const bool sums = transA && p.colsum && i0 == 0;                \
		if (full)                                                       \
			tile(M, N, K, kc, A, p.lda, B, p.ldb, C, p.ldc, i0, j0, transA, false, e, aux, sums, db, &st, list, len); \
		else                                                            \
			tile(M, N, K, kc, A, p.lda, B, p.ldb, C, p.ldc, i0, j0, transA, true, e, aux, sums, db, &st, list, len); \
	}

GEMM_REG(gemm_reg_nn, false)
GEMM_REG(gemm_reg_tn, true)

// packPanel packs terms k0 <= k < k1 of B's rows j0 .. j0+TN-1 (B stored
// N x K) into panel as rows of B^T, TN floats each, zero past row N-1 of B:
// the work-items of the group take B's rows in turn, each read along k in
// vectors and written down a column of the panel.
static inline void packPanel(__local float *panel, __global const float *B, int ldb, int N, int j0, int k0, int k1)
{
	const int n = k1 - k0;
	for (int jj = get_local_id(0); jj < TN; jj += get_local_size(0)) {
		__local float *col = panel + jj;
		if (j0 + jj >= N) {
			for (int k = 0; k < n; k++)
				col[k * TN] = 0.0f;
			continue;
		}
		__global const float *row = B + (size_t)(j0 + jj) * ldb + k0;
		int k = 0;
		for (; k + 16 <= n; k += 16) {
			float t[16];
			vstore16(vload16(0, row + k), 0, t);
#pragma unroll
			for (int e = 0; e < 16; e++)
				col[(k + e) * TN] = t[e];
		}
		for (; k < n; k++)
			col[k * TN] = row[k];
	}
}

// gemm_reg_nt: C[M,N] = A[M,K] B^T for B stored N x K (ldb), the backward
// pass's dZ = delta W^T, with gemm_reg_nn's blocks and epilogues. A block
// reads B^T row by row; here those rows are B's columns, so a work-group,
// which shares one column block of C, first packs its B^T into local
// memory (panel) and its work-items then run
// gemm_reg_nn's inner loop from it, all of k in one chunk. That replaced a
// transpose launch of B into global memory before each such product. A
// loop of chunks with the pack and its barriers inside it corrupted PoCL
// 3.1's heap (groups of more than one work-item, the compensated SSE
// blocks), so there is one pack and one barrier, and a panel too large for
// local memory goes back to the transpose (Set.launchNT). Launch with
// global (ceil(M/TM) rounded up to the group, ceil(N/TN)) and local (group,
// 1), panel K * TN floats. The arguments are gemm_reg_nn's (kc, colsum and
// EPI_UPDATE unused) and the panel.
__kernel void gemm_reg_nt(GEMM_REG_ARGS, __local float *panel)
{
	const int M = p.M, N = p.N, K = p.K;
	const int i0 = get_global_id(0) * TM, j0 = get_group_id(1) * TN;
	packPanel(panel, B, p.ldb, N, j0, 0, K);
	barrier(CLK_LOCAL_MEM_FENCE);
	if (i0 >= M)
		return;
	const Step st = {p.lr, p.mu, p.wd, p.nesterov, p.keep, V, bias, Vb};
	const int e = onlyEpilogue(p.epi);
	if (i0 + TM <= M && j0 + TN <= N)
		chunk(M, N, K, 0, K, K, A, p.lda, (__global const int *)0, B, p.ldb, true, panel, C, p.ldc, i0, j0, false, false, e, aux, &st);
	else
		chunk(M, N, K, 0, K, K, A, p.lda, (__global const int *)0, B, p.ldb, true, panel, C, p.ldc, i0, j0, false, true, e, aux, &st);
}

#if SPARSE
// The term lists of a sparse product (see chunk), one work-item per block
// of TM rows of op(A): list b holds the k where any of the block's rows of
// op(A) is nonzero, at terms + b * K, and its length at terms[lengthsAt +
// b]. A term counts as nonzero when any bit of its float is set, so -0.0
// is kept too, which only costs its product. X is stored rows x cols.

// appendBits appends base + e to out[*n..] for each bit e set in bits, in
// order.
static inline void appendBits(__global int *out, int *n, uint bits, int base)
{
	for (; bits != 0; bits &= bits - 1)
		out[(*n)++] = base + 31 - clz(bits & (0u - bits));
}

// The lists are made 32 terms at a time: a word of flags from the loads,
// then an append per flag set, so the stores follow the nonzero terms.

// nonzero_rows lists for A B (op(A) = X): blocks of TM rows of X, terms
// along its columns (K = cols).
__kernel void nonzero_rows(__global const float *restrict X, const int rows, const int cols, const int lengthsAt,
			   __global int *restrict terms)
{
	const int b = get_global_id(0), r0 = b * TM;
	if (r0 >= rows)
		return;
	// A block sticking out of X reads its last row again.
	__global const uint *x[TM];
#pragma unroll
	for (int r = 0; r < TM; r++)
		x[r] = (__global const uint *)X + (size_t)min(r0 + r, rows - 1) * cols;
	__global int *out = terms + (size_t)b * cols;
	int n = 0;
	for (int k0 = 0; k0 < cols; k0 += 32) {
		uint bits = 0;
		for (int e = 0; e < 32 && k0 + e < cols; e++) {
			uint any = 0;
#pragma unroll
			for (int r = 0; r < TM; r++)
				any |= x[r][k0 + e];
			bits |= (uint)(any != 0) << e;
		}
		appendBits(out, &n, bits, k0);
	}
	terms[lengthsAt + b] = n;
}

// colFlags is a word of flags for rows r0 .. r0+31 (those below rows) of
// a block of TM columns of X from x, whose last column is last (TM - 1 for
// a whole block: then the loads are plain ones, where a clamped index made
// the compiler gather, at three times the cost).
static inline __attribute__((always_inline)) uint colFlags(__global const uint *x, int cols, int rows, int r0,
							   int last, bool whole)
{
	uint bits = 0;
	for (int e = 0; e < 32 && r0 + e < rows; e++) {
		__global const uint *row = x + (size_t)(r0 + e) * cols;
		uint any = 0;
#pragma unroll
		for (int c = 0; c < TM; c++)
			any |= row[whole ? c : min(c, last)];
		bits |= (uint)(any != 0) << e;
	}
	return bits;
}

// nonzero_cols lists for A^T B (op(A) = X^T): blocks of TM columns of X,
// terms along its rows (K = rows).
__kernel void nonzero_cols(__global const float *restrict X, const int rows, const int cols, const int lengthsAt,
			   __global int *restrict terms)
{
	const int b = get_global_id(0), c0 = b * TM;
	if (c0 >= cols)
		return;
	__global int *out = terms + (size_t)b * rows;
	__global const uint *x = (__global const uint *)X + c0;
	const int last = min(TM, cols - c0) - 1;
	int n = 0;
	for (int r0 = 0; r0 < rows; r0 += 32) {
		const uint bits = last == TM - 1 ? colFlags(x, cols, rows, r0, last, true)
						 : colFlags(x, cols, rows, r0, last, false);
		appendBits(out, &n, bits, r0);
	}
	terms[lengthsAt + b] = n;
}
#endif
