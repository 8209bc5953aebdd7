// layers: every kernel of the pass that is not a GEMM, in the order a training
// step runs them. Shapes are row-major with the batch along rows. Element-wise
// kernels take a flat count n and are launched on a global size rounded up to
// the work-group size, hence the bounds check at the top of each.

// gather builds a mini-batch on the device from the data set uploaded once as
// uint8: row r of X is image perm[first + r] scaled to [0,1], and labels[r] its
// digit. Only the permutation goes up, once per epoch. A work-item converts
// 16 pixels of one row with one vector load and store (chunks = ceil(pixels /
// 16) per row); one per pixel spent more on scheduling work-items than on
// the copy (120 us for a batch of 128 on Zen 5, against 15).
//
// A shuffled batch's images lie anywhere in the data set (43 MB for MNIST's
// training images), so each row's lines come from memory, one after another
// as the work-items reach them. The first work-item of a row therefore asks
// for all the lines of the image gatherAhead rows on: in the epoch's order,
// a batch took 46-49 us without that and 32-35 us with it (Zen 5; 28 us in
// file order, which the prefetcher follows by itself).
// OpenCL's own prefetch() does nothing on PoCL, so this is clang's
// builtin, which the host asks for on CPU devices only (CPU_PREFETCH): a
// GPU's compiler need not know it. oclgrind 21.10 cannot run
// llvm.prefetch, and its tests build with NO_PREFETCH (gemm_reg.cl).
#define gatherAhead 4
#if defined(CPU_PREFETCH) && !defined(NO_PREFETCH)
#define PREFETCH_READ(p) __builtin_prefetch((p), 0, 0)
#else
#define PREFETCH_READ(p) ((void)(p))
#endif
__kernel void gather(__global const uchar *restrict images,
		     __global const uchar *restrict digits,
		     __global const int *restrict perm, const int first,
		     const int rows, const int pixels,
		     __global float *restrict X, __global int *restrict labels)
{
	const int chunks = (pixels + 15) / 16;
	const int i = get_global_id(0);
	if (i >= rows * chunks)
		return;
	const int r = i / chunks, p = (i - r * chunks) * 16;
	const int src = perm[first + r];
	if (p == 0 && r + gatherAhead < rows) {
		__global const uchar *next = images + (size_t)perm[first + r + gatherAhead] * pixels;
		for (int q = 0; q < pixels; q += 64)
			PREFETCH_READ(next + q);
	}
	__global const uchar *in = images + (size_t)src * pixels + p;
	__global float *out = X + (size_t)r * pixels + p;
	if (p + 16 <= pixels)
		vstore16(convert_float16(vload16(0, in)) * (1.0f / 255.0f), 0, out);
	else
		for (int e = 0; e < pixels - p; e++)
			out[e] = in[e] * (1.0f / 255.0f);
	if (p == 0)
		labels[r] = digits[src];
}

// bias_relu: Z = f(Z + b), in place on a GEMM's output, b broadcast over rows.
// Z1 = f(X W1 + b1), Z2 = f(Z1 W2 + b2).
__kernel void bias_relu(__global float *restrict Z, __global const float *restrict b,
			const int n, const int cols)
{
	const int i = get_global_id(0);
	if (i >= n)
		return;
	Z[i] = fmax(Z[i] + b[i % cols], 0.0f);
}

// bias_add: Z = Z + b, the logits' form (no activation on the last layer).
// Z3 = Z2 W3 + b3.
__kernel void bias_add(__global float *restrict Z, __global const float *restrict b,
		       const int n, const int cols)
{
	const int i = get_global_id(0);
	if (i >= n)
		return;
	Z[i] += b[i % cols];
}

// softmaxRow finds a row's arg-max (first on ties), its max and the sum of
// exp(z - max) over the other columns. The max's own term is exp(0) = 1;
// keeping the others apart lets the loss use log1p and Yp - 1 keep its digits
// when a row is confidently right (see softmax_minus_labels).
static inline void softmaxRow(__global const float *z, const int cols, int *arg, float *mx, float *others)
{
	int a = 0;
	float m = z[0];
	for (int c = 1; c < cols; c++)
		if (z[c] > m) {
			m = z[c];
			a = c;
		}
	float o = 0.0f;
	for (int c = 0; c < cols; c++)
		if (c != a)
			o += exp(z[c] - m);
	*arg = a;
	*mx = m;
	*others = o;
}

// LOSS_KERNEL_ARGS: the arguments of both softmax kernels, which the host
// launches alike.
#define LOSS_KERNEL_ARGS                                                       \
	__global const float *restrict logits, __global const int *restrict labels, \
	const int rows, const int cols, const float invBatch,                  \
	__global float *restrict Yp, __global float *restrict dZ,              \
	__global float *restrict rowLoss, __global float *restrict rowCorrect

// lossRow is where both softmax kernels start on row r: its logits z,
// softmaxRow's arg-max, max and sum of the others, its label and
// inv = 1 / (1 + others), the reciprocal of the row's sum of exp(z - max).
typedef struct {
	__global const float *z;
	int arg, label;
	float mx, others, inv;
} lossRow;

static inline lossRow loadLossRow(__global const float *logits, __global const int *labels,
				  const int r, const int cols)
{
	lossRow w;
	w.z = logits + (size_t)r * cols;
	softmaxRow(w.z, cols, &w.arg, &w.mx, &w.others);
	w.label = labels[r];
	w.inv = 1.0f / (1.0f + w.others);
	return w;
}

// softmax_minus_labels: one work-item per row. dZ3 = Yp - Y, scaled by
// 1/batch because the loss is the batch mean. The softmax subtracts the row's
// max so exp never overflows. It also writes each row's loss
// (-log Yp[label] = logsumexp - logit[label]) and whether the arg-max (first
// on ties) is the label, so diagnostics need no copy of the logits.
__kernel void softmax_minus_labels(LOSS_KERNEL_ARGS)
{
	const int r = get_global_id(0);
	if (r >= rows)
		return;
	const lossRow w = loadLossRow(logits, labels, r, cols);
	for (int c = 0; c < cols; c++) {
		const float p = (c == w.arg) ? w.inv : exp(w.z[c] - w.mx) * w.inv;
		// Yp - 1 at a confident right answer is a difference of two
		// numbers near 1; -others/(1+others) is the same value, exactly.
		float d = p;
		if (c == w.label)
			d = (c == w.arg) ? -w.others * w.inv : p - 1.0f;
		Yp[(size_t)r * cols + c] = p;
		dZ[(size_t)r * cols + c] = d * invBatch;
	}
	rowLoss[r] = log1p(w.others) + (w.mx - w.z[w.label]);
	rowCorrect[r] = (w.arg == w.label) ? 1.0f : 0.0f;
}

// softmax_mse: the lecture's open question, an L2 loss on the softmax
// instead of cross-entropy. Per row, L = 1/2 sum_j (p_j - y_j)^2 with
// p = softmax(z); through the softmax Jacobian dp_j/dz_i = p_j (d_ij - p_i),
//
//	dL/dz_i = p_i [(p_i - y_i) - s],   s = sum_j (p_j - y_j) p_j,
//
// scaled by 1/batch like dZ3 above. p_y - 1 would cancel on a confidently
// right row, so everything is written with rest = sum_{j != y} p_j (= 1 - p_y)
// and q2 = sum_{j != y} p_j^2, sums of small terms:
//
//	L = (rest^2 + q2) / 2,   s = q2 - p_y rest,
//	dL/dz_i = p_i (p_i - s) for i != y,   dL/dz_y = -p_y (rest^2 + q2).
//
// Yp, the row loss and the correct flag are as softmax_minus_labels writes them.
__kernel void softmax_mse(LOSS_KERNEL_ARGS)
{
	const int r = get_global_id(0);
	if (r >= rows)
		return;
	const lossRow w = loadLossRow(logits, labels, r, cols);
	__global float *p = Yp + (size_t)r * cols;
	float rest = 0.0f, q2 = 0.0f;
	for (int c = 0; c < cols; c++) {
		p[c] = (c == w.arg) ? w.inv : exp(w.z[c] - w.mx) * w.inv;
		if (c != w.label) {
			rest += p[c];
			q2 = fma(p[c], p[c], q2);
		}
	}
	const float py = p[w.label], sq = fma(rest, rest, q2);
	const float s = q2 - py * rest;
	for (int c = 0; c < cols; c++)
		dZ[(size_t)r * cols + c] = (c == w.label ? -py * sq : p[c] * (p[c] - s)) * invBatch;
	rowLoss[r] = 0.5f * sq;
	rowCorrect[r] = (w.arg == w.label) ? 1.0f : 0.0f;
}

// batch_stats sums a batch's row losses and correct flags into stats[2*slot]
// and stats[2*slot+1]. One work-item, a fixed order: the sums are the same on
// every run, and a batch is at most a few thousand rows.
__kernel void batch_stats(__global const float *restrict rowLoss,
			  __global const float *restrict rowCorrect,
			  const int rows, __global float *restrict stats,
			  const int slot)
{
	if (get_global_id(0) != 0)
		return;
	float loss = 0.0f, correct = 0.0f;
	for (int r = 0; r < rows; r++) {
		loss += rowLoss[r];
		correct += rowCorrect[r];
	}
	stats[2 * slot] = loss;
	stats[2 * slot + 1] = correct;
}

// relu_mask: delta = delta . f'(Z), in place. f'(a) = [a > 0], and Z = f(a) is
// positive exactly where a is, so the post-activation stands in for
// f'(Z1 W2 + b2) without keeping the pre-activation.
__kernel void relu_mask(__global float *restrict delta, __global const float *restrict Z,
			const int n)
{
	const int i = get_global_id(0);
	if (i >= n)
		return;
	if (!(Z[i] > 0.0f))
		delta[i] = 0.0f;
}

#ifndef CS_COLS
#define CS_COLS 16  // columns per work-group of col_sum
#endif
#ifndef CS_ROWS
#define CS_ROWS 16  // row lanes per work-group of col_sum: a power of two
#endif

// col_sum: db = sum over rows of delta (db3 = sum_l [dZ3]_l,: and the masked
// deltas for db2, db1). A CS_COLS x CS_ROWS work-group: lane y sums rows
// y, y+CS_ROWS, ... of its column, then a tree in local memory adds the lanes.
// Every addition is compensated (sums.cl): a bias gradient is a sum of terms of both
// signs that often nearly cancel, and it costs nothing next to the GEMMs.
// Launch with global (roundup(cols, CS_COLS), CS_ROWS), local (CS_COLS, CS_ROWS).
__kernel __attribute__((reqd_work_group_size(CS_COLS, CS_ROWS, 1)))
void col_sum(__global const float *restrict delta, const int rows, const int cols,
	     __global float *restrict db)
{
	__local float part[CS_ROWS][CS_COLS], comp[CS_ROWS][CS_COLS];
	const int x = get_local_id(0), y = get_local_id(1);
	const int c = get_global_id(0);
	float s = 0.0f, e = 0.0f;
	if (c < cols)
		for (int r = y; r < rows; r += CS_ROWS)
			twoSum_float(&s, &e, delta[(size_t)r * cols + c]);
	part[y][x] = s;
	comp[y][x] = e;
	barrier(CLK_LOCAL_MEM_FENCE);
	for (int h = CS_ROWS / 2; h > 0; h /= 2) {
		if (y < h) {
			float s = part[y][x], e = comp[y][x] + comp[y + h][x];
			twoSum_float(&s, &e, part[y + h][x]);
			part[y][x] = s;
			comp[y][x] = e;
		}
		barrier(CLK_LOCAL_MEM_FENCE);
	}
	if (y == 0 && c < cols)
		db[c] = part[0][x] + comp[0][x];
}

// update: one optimiser step for a layer's W and b in a single launch,
// work-items 0..nW-1 on W and the next nb on b. It is PyTorch's SGD with
// dampening 0; with mu = wd = 0 it is the lecture's W <- W - lr dW:
//
//	g = dW + wd W                       (weight decay, weights only)
//	v = mu v + g                        (momentum, when mu != 0)
//	W <- W - lr (nesterov ? g + mu v : v)
//
// V and Vb are only touched when mu != 0; without momentum the caller may
// pass any buffer for them.
__kernel void update(__global float *restrict W, __global const float *restrict dW,
		     __global float *restrict V, const int nW,
		     __global float *restrict b, __global const float *restrict db,
		     __global float *restrict Vb, const int nb,
		     const float lr, const float mu, const float wd, const int nesterov)
{
	int i = get_global_id(0);
	if (i >= nW + nb)
		return;
	__global float *p = W, *v = V;
	__global const float *g = dW;
	float decay = wd;
	if (i >= nW) {
		i -= nW;
		p = b;
		v = Vb;
		g = db;
		decay = 0.0f;
	}
	float step = g[i];
	if (decay != 0.0f)
		step += decay * p[i];
	if (mu != 0.0f) {
		const float vel = mu * v[i] + step;
		v[i] = vel;
		step = nesterov ? step + mu * vel : vel;
	}
	p[i] -= lr * step;
}

// transpose: out[cols, rows] = in[rows, cols]^T. The CPU GEMM has no A B^T
// form; dZ1 = [f'(Z1 W2 + b2) . dZ2] W2^T runs as a product with W2^T made
// here. A work-item reads 16 consecutive floats of one row and writes them
// down a column; launched in groups of 16 consecutive rows (global
// (roundup(rows, 16), ceil(cols/16)), local (16, 1)), PoCL runs the group as
// one vector loop, so each of the 16 stores is 16 consecutive floats of out.
__kernel void transpose(__global const float *restrict in, const int rows, const int cols,
			__global float *restrict out)
{
	const int i = get_global_id(0), j0 = get_global_id(1) * 16;
	if (i >= rows || j0 >= cols)
		return;
	__global const float *src = in + (size_t)i * cols + j0;
	__global float *dst = out + (size_t)j0 * rows + i;
	if (j0 + 16 <= cols) {
		const float16 v = vload16(0, src);
		dst[0] = v.s0;
		dst[(size_t)rows] = v.s1;
		dst[(size_t)2 * rows] = v.s2;
		dst[(size_t)3 * rows] = v.s3;
		dst[(size_t)4 * rows] = v.s4;
		dst[(size_t)5 * rows] = v.s5;
		dst[(size_t)6 * rows] = v.s6;
		dst[(size_t)7 * rows] = v.s7;
		dst[(size_t)8 * rows] = v.s8;
		dst[(size_t)9 * rows] = v.s9;
		dst[(size_t)10 * rows] = v.sa;
		dst[(size_t)11 * rows] = v.sb;
		dst[(size_t)12 * rows] = v.sc;
		dst[(size_t)13 * rows] = v.sd;
		dst[(size_t)14 * rows] = v.se;
		dst[(size_t)15 * rows] = v.sf;
		return;
	}
	for (int c = 0; c < cols - j0; c++)
		dst[(size_t)c * rows] = src[c];
}
