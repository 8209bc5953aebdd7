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

// philox4x32_10 is Philox4x32-10 (Salmon et al., "Parallel random numbers:
// as easy as 1, 2, 3", SC 2011): four 32-bit words of counter and two of key
// give four random words. Counter-based, so any work-item draws the numbers
// of any image with no state carried between launches or across a resume.
// kernels/philox.go is its Go twin, checked against Random123's kat_vectors.
static inline uint4 philox4x32_10(uint4 ctr, uint2 key)
{
	for (int r = 0; r < 10; r++) {
		if (r > 0)
			key += (uint2)(0x9E3779B9u, 0xBB67AE85u);
		const uint lo0 = 0xD2511F53u * ctr.x, hi0 = mul_hi(0xD2511F53u, ctr.x);
		const uint lo1 = 0xCD9E8D57u * ctr.z, hi1 = mul_hi(0xCD9E8D57u, ctr.z);
		ctr = (uint4)(hi1 ^ ctr.y ^ key.x, lo1, hi0 ^ ctr.w ^ key.y, lo0);
	}
	return ctr;
}

// uniformPM1 maps a random word to [-1, 1) in steps of 2^-23; every step is
// exact in float32, so Go's Uniform gives the same bits.
static inline float uniformPM1(uint x)
{
	return (float)(x >> 8) * (1.0f / 8388608.0f) - 1.0f;
}

// AUGMENT_STREAM is the counter's last word for augmentation draws
// (kernels.augmentStream): other uses of the seed's key take other words.
#define AUGMENT_STREAM 0x61756731u

// philox_blocks writes n blocks of four words, block i from the counter ctr
// with i added to its first word: the device's generator laid bare for the
// test against Go's.
__kernel void philox_blocks(const uint c0, const uint c1, const uint c2, const uint c3,
			    const uint k0, const uint k1, const int n, __global uint *restrict out)
{
	const int i = get_global_id(0);
	if (i >= n)
		return;
	vstore4(philox4x32_10((uint4)(c0 + (uint)i, c1, c2, c3), (uint2)(k0, k1)), i, out);
}

// pixelsOr0 are 16 pixels (x, y) of an image, each 0 outside it: the zero
// border the bilinear sampling of gather_affine reads past the edge. Every
// lane loads from an address clamped into the image and is then masked, so
// no lane branches.
static inline float16 pixelsOr0(__global const uchar *in, const int16 x, const int16 y, const int w, const int h)
{
	// Vector bounds, not the scalar-bound overload of clamp: oclgrind
	// 21.10 gets clamp(int16, int, int) wrong and read out of the image.
	const int16 at = clamp(y, (int16)(0), (int16)(h - 1)) * w + clamp(x, (int16)(0), (int16)(w - 1));
	const float16 v = (float16)(in[at.s0], in[at.s1], in[at.s2], in[at.s3], in[at.s4], in[at.s5], in[at.s6], in[at.s7],
				    in[at.s8], in[at.s9], in[at.sa], in[at.sb], in[at.sc], in[at.sd], in[at.se], in[at.sf]);
	return select((float16)0.0f, v, (x >= 0) & (x < w) & (y >= 0) & (y < h));
}

// DISTORT_KERNEL_ARGS are the arguments gather_affine and gather_elastic
// share: the data set, the shuffle and the first row, the image size, the
// Philox key (the seed) and epoch, and the affine ranges.
#define DISTORT_KERNEL_ARGS                                                          \
	__global const uchar *restrict images, __global const uchar *restrict digits, \
		__global const int *restrict perm, const int first, const int width,  \
		const int height, const uint key0, const uint key1, const uint epoch, \
		const float rotate, const float scale, const float shiftX,            \
		const float shiftY

// affineMap draws image src's affine map for the epoch (Philox at counter
// (src, epoch, 0, AUGMENT_STREAM)) into map: sx = map0 ox + map1 oy + map2,
// sy = map3 ox + map4 oy + map5, the source point of output pixel (ox, oy).
// gather_affine and gather_elastic draw it alike.
static inline void affineMap(__local float *map, const int src, const uint epoch, const uint2 key,
			     const float rotate, const float scale, const float shiftX, const float shiftY,
			     const int width, const int height)
{
	const uint4 u = philox4x32_10((uint4)((uint)src, epoch, 0u, AUGMENT_STREAM), key);
	const float angle = rotate * uniformPM1(u.x), s = 1.0f + scale * uniformPM1(u.y);
	const float dx = shiftX * uniformPM1(u.z), dy = shiftY * uniformPM1(u.w);
	const float ca = cos(angle) / s, sa = sin(angle) / s;
	const float cx = (width - 1) * 0.5f, cy = (height - 1) * 0.5f;
	// in - c = R(-a) (out - c - t) / s, expanded in out's coordinates.
	const float tx = cx + dx, ty = cy + dy;
	map[0] = ca;
	map[1] = sa;
	map[2] = cx - ca * tx - sa * ty;
	map[3] = -sa;
	map[4] = ca;
	map[5] = cy + sa * tx - ca * ty;
}

// gather_affine is gather with a random affine distortion of every image,
// drawn from Philox keyed by the seed, counter (image index in the data set,
// epoch, 0, AUGMENT_STREAM): the same image gets the same distortion in an
// epoch wherever it lands in the shuffle, and a resumed run redraws it. With
// u0..u3 uniform in [-1, 1), the forward map about the centre c is
//
//	out = c + t + s R(a) (in - c),  a = rotate u0, s = 1 + scale u1,
//	t = (shiftX u2, shiftY u3)
//
// and each output pixel samples the source bilinearly at the inverse map
// in = c + R(-a) (out - c - t) / s, zero outside the image (cpuref.Affine).
// With a = 0, s = 1, t = 0 the map is exactly the identity, the weights 1
// and 0, and X is gather's to the bit.
//
// A work-group is one image (or a run of its 16-pixel chunks; global size:
// chunks rounded up to the group, times rows). Its first work-item draws
// the image's map into local memory: a draw (Philox, sin, cos) per pixel
// cost 150 ns of scalar code. A work-item makes 16 pixels in float16 lanes,
// written out by hand since PoCL ran one pixel per work-item scalar (2 ms a
// batch of 128; 0.35 ms now, against 0.03 for gather, most of it the 64
// scalar byte loads of 16 bilinear samples).
__kernel void gather_affine(DISTORT_KERNEL_ARGS, const float invWidth,
			    __global float *restrict X, __global int *restrict labels)
{
	__local float map[6]; // sx = map0 ox + map1 oy + map2, sy = map3 ox + map4 oy + map5
	__local int image;
	const int r = get_global_id(1), pixels = width * height;
	if (get_local_id(0) == 0) {
		const int src = perm[first + r];
		affineMap(map, src, epoch, (uint2)(key0, key1), rotate, scale, shiftX, shiftY, width, height);
		image = src;
		if (get_group_id(0) == 0)
			labels[r] = digits[src];
	}
	barrier(CLK_LOCAL_MEM_FENCE);
	const int p0 = get_global_id(0) * 16;
	if (p0 >= pixels)
		return;
	const int16 p = p0 + (int16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
	// p / width without an integer division, which no CPU has in vector
	// form: (p + 1/2) / width is at least 1/(2 width) from an integer, far
	// more than two float roundings move it while p < 2^22 (GatherAffine
	// checks).
	const int16 oy = convert_int16((convert_float16(p) + 0.5f) * invWidth), ox = p - oy * width;
	const float16 fox = convert_float16(ox), foy = convert_float16(oy);
	const float16 sx = map[0] * fox + map[1] * foy + map[2], sy = map[3] * fox + map[4] * foy + map[5];
	const float16 fx0 = floor(sx), fy0 = floor(sy);
	const float16 fx = sx - fx0, fy = sy - fy0;
	const int16 x0 = convert_int16(fx0), y0 = convert_int16(fy0);
	__global const uchar *in = images + (size_t)image * pixels;
	const float16 top = (1.0f - fx) * pixelsOr0(in, x0, y0, width, height) + fx * pixelsOr0(in, x0 + 1, y0, width, height);
	const float16 bottom = (1.0f - fx) * pixelsOr0(in, x0, y0 + 1, width, height) + fx * pixelsOr0(in, x0 + 1, y0 + 1, width, height);
	const float16 v = ((1.0f - fy) * top + fy * bottom) * (1.0f / 255.0f);
	__global float *out = X + (size_t)r * pixels + p0;
	if (p0 + 16 <= pixels) {
		vstore16(v, 0, out);
		return;
	}
	float tail[16];
	vstore16(v, 0, tail);
	for (int e = 0; e < pixels - p0; e++)
		out[e] = tail[e];
}

// ELASTIC_STREAM is the counter's last word for the displacement noise of
// gather_elastic (kernels.elasticStream), apart from the affine draws.
#define ELASTIC_STREAM 0x656c6131u

// ELASTIC_MAX_RADIUS bounds the Gaussian's radius ceil(3 sigma)
// (kernels.ElasticMaxRadius).
#define ELASTIC_MAX_RADIUS 32

// gather_elastic is gather_affine followed by Simard et al.'s (2003)
// elastic distortion. Per image, two fields of noise uniform in [-1, 1)
// (dx then dy, pixel p's value is word p mod 4 of Philox at counter (image,
// epoch, p / 4, ELASTIC_STREAM) counting the dx field's pixels then dy's) are
// each smoothed by a Gaussian of radius ceil(3 sigma), zero outside the
// image, and scaled by gain = alpha / S^2 (S the sum of the unnormalised 1D
// weights exp(-k^2 / (2 sigma^2)), so alpha scales the unit-sum blur). Output
// pixel o then samples the source bilinearly at A^-1(o) + (dx, dy)(o), A the
// affine map of gather_affine (the identity with zero ranges), zero outside
// (cpuref.Elastic). With alpha = 0 and zero ranges X is gather's to the bit.
//
// One work-group per image; the fields and the blur's intermediate live in
// local memory (field and tmp, 2 pixels floats each), and the work-items
// loop over them between barriers.
__kernel void gather_elastic(DISTORT_KERNEL_ARGS,
			     const float inv2s2, const int radius, const float gain,
			     __global float *restrict X, __global int *restrict labels,
			     __local float *field, __local float *tmp)
{
	__local float map[6];
	__local float wts[ELASTIC_MAX_RADIUS + 1];
	const int r = get_group_id(1), lid = get_local_id(0), group = get_local_size(0);
	const int pixels = width * height, n = 2 * pixels;
	const int src = perm[first + r];
	if (lid == 0) {
		affineMap(map, src, epoch, (uint2)(key0, key1), rotate, scale, shiftX, shiftY, width, height);
		labels[r] = digits[src];
	}
	for (int k = lid; k <= radius; k += group)
		wts[k] = exp(-(float)(k * k) * inv2s2);
	for (int j = lid; 4 * j < n; j += group) {
		const uint4 u = philox4x32_10((uint4)((uint)src, epoch, (uint)j, ELASTIC_STREAM), (uint2)(key0, key1));
		const float v[4] = {uniformPM1(u.x), uniformPM1(u.y), uniformPM1(u.z), uniformPM1(u.w)};
		for (int c = 0; c < 4 && 4 * j + c < n; c++)
			field[4 * j + c] = v[c];
	}
	barrier(CLK_LOCAL_MEM_FENCE);
	// Rows: tmp = field blurred along x.
	for (int i = lid; i < n; i += group) {
		const int f = i >= pixels, p = i - f * pixels, y = p / width, x = p - y * width;
		__local const float *row = field + f * pixels + y * width;
		float sum = 0.0f;
		for (int k = max(-radius, -x); k <= min(radius, width - 1 - x); k++)
			sum += wts[abs(k)] * row[x + k];
		tmp[i] = sum;
	}
	barrier(CLK_LOCAL_MEM_FENCE);
	// Columns: field = gain times tmp blurred along y.
	for (int i = lid; i < n; i += group) {
		const int f = i >= pixels, p = i - f * pixels, y = p / width, x = p - y * width;
		__local const float *col = tmp + f * pixels + x;
		float sum = 0.0f;
		for (int k = max(-radius, -y); k <= min(radius, height - 1 - y); k++)
			sum += wts[abs(k)] * col[(y + k) * width];
		field[i] = gain * sum;
	}
	barrier(CLK_LOCAL_MEM_FENCE);
	__global const uchar *in = images + (size_t)src * pixels;
	__global float *out = X + (size_t)r * pixels;
	for (int p = lid; p < pixels; p += group) {
		const int oy = p / width, ox = p - oy * width;
		const float sx = map[0] * ox + map[1] * oy + map[2] + field[p];
		const float sy = map[3] * ox + map[4] * oy + map[5] + field[pixels + p];
		const float fx0 = floor(sx), fy0 = floor(sy);
		const float fx = sx - fx0, fy = sy - fy0;
		// Clamped before the conversion: a wild displacement must not
		// overflow int.
		const int x0 = (int)clamp(fx0, -2.0f, (float)width), y0 = (int)clamp(fy0, -2.0f, (float)height);
		float q[4];
		for (int c = 0; c < 4; c++) {
			const int x = x0 + (c & 1), y = y0 + (c >> 1);
			q[c] = (x >= 0 && x < width && y >= 0 && y < height) ? (float)in[y * width + x] : 0.0f;
		}
		const float top = (1.0f - fx) * q[0] + fx * q[1];
		const float bottom = (1.0f - fx) * q[2] + fx * q[3];
		out[p] = ((1.0f - fy) * top + fy * bottom) * (1.0f / 255.0f);
	}
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
