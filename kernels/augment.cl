// augment: the distorting gathers of --augment, which build a batch like
// layers.cl's gather with every image distorted on the way, and the Philox
// generator they draw from. Work-groups are images: global size (group,
// rows), the work-items of a group taking the image's work in turn.

// LANES are the lane numbers of a 16-wide vector.
#define LANES ((int16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15))

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

// The distorting gathers sample an image bilinearly at 16 points at a time,
// zero outside it. Reading its uint8 pixels from global memory took 64
// scalar loads, index extractions and masks per 16 pixels (0.3 ms a batch of
// 128 on Zen 5, ten times gather). Instead the work-group stages the image in
// local memory once, as a quad per pixel: the four pixels (x, y), (x+1, y),
// (x, y+1), (x+1, y+1), 8 bits each, that bilinear sampling with top-left tap
// (x, y) reads, zero off the image. A 16-point sample is then one 32-bit
// gather (vpgatherdd) and some shifts. Top-left taps are clamped into [-2,
// w] x [-2, h]: a clamped coordinate lies at least one pixel off the image,
// so both its taps are, and read the zeros a clamp must give.

// quadStride is the row stride of the staged quads: top-left taps x from -2
// to w, rounded up to whole vectors.
static inline int quadStride(const int w)
{
	return (w + 3 + 15) / 16 * 16;
}

// stageImage stages the w x h uint8 image in for bilinear: quad (x, y) at
// quads[(y + 2) quadStride(w) + x + 2] for x in [-2, w], y in [-2, h]. The
// host sizes quads (kernels.stagedBytes) for the quads' h + 3 rows followed
// by the image itself as uint8 with a zero border: h + 4 rows of
// quadStride(w) + 16 bytes, pixel (x, y) at (y + 2) stride + 16 + x, so a
// row's 16-pixel chunks store aligned (PoCL stores a vstore16 of uchar byte
// by byte) and a quad's right-hand pixels stay in the row. Every work-item
// of the group calls it: it has barriers.
static inline void stageImage(__local uint *quads, __global const uchar *in, const int w, const int h)
{
	const int lid = get_local_id(0), group = get_local_size(0);
	const int qs = quadStride(w), ps = qs + 16;
	__local uchar *px = (__local uchar *)(quads + (h + 3) * qs);
	for (int i = lid * 16; i < (h + 4) * ps; i += group * 16)
		*(__local uchar16 *)(px + i) = (uchar16)(0);
	barrier(CLK_LOCAL_MEM_FENCE);
	const int chunks = (w + 15) / 16;
	for (int i = lid; i < h * chunks; i += group) {
		const int y = i / chunks, x = (i - y * chunks) * 16;
		__global const uchar *row = in + y * w + x;
		__local uchar *to = px + (y + 2) * ps + 16 + x;
		if (y * w + x + 16 <= w * h) {
			// A whole vector, though it may run into the next row: those
			// lanes store zeros in this row's padding.
			const char16 inside = convert_char16(x + LANES < w);
			*(__local uchar16 *)to = select((uchar16)(0), vload16(0, row), inside);
		} else {
			// The image's last chunk, which a vector load would read past.
			for (int e = 0; e < w - x; e++)
				to[e] = row[e];
		}
	}
	barrier(CLK_LOCAL_MEM_FENCE);
	for (int i = lid; i < (h + 3) * (qs / 16); i += group) {
		const int y = i / (qs / 16), x = (i - y * (qs / 16)) * 16;
		__local const uchar *top = px + y * ps + 14 + x, *bottom = top + ps;
		*(__local uint16 *)(quads + y * qs + x) = convert_uint16(vload16(0, top)) | convert_uint16(vload16(0, top + 1)) << 8 |
							    convert_uint16(vload16(0, bottom)) << 16 | convert_uint16(vload16(0, bottom + 1)) << 24;
	}
	barrier(CLK_LOCAL_MEM_FENCE);
}

// bilinear samples the w x h image staged by stageImage at (sx, sy) in 16
// lanes, 0..255, zero outside the image.
static inline float16 bilinear(__local const uint *quads, const int w, const int h, const float16 sx, const float16 sy)
{
	// Clamped before the conversion to int, which a wild coordinate would
	// overflow: a point clamped to -2 or the width reads two zeros,
	// whatever its weights. fmax and fmin with vector bounds: NaN goes to
	// the bound, and oclgrind 21.10 gets the scalar-bound clamp wrong.
	const float16 cx = fmin(fmax(sx, (float16)(-2.0f)), (float16)(w));
	const float16 cy = fmin(fmax(sy, (float16)(-2.0f)), (float16)(h));
	// floor as a truncation, one lower where that rounded a negative
	// coordinate up: PoCL's floor spends a dozen instructions on
	// infinities and magnitudes past 2^23 that cannot occur here.
	const int16 tx = convert_int16(cx), ty = convert_int16(cy);
	const int16 x0 = tx + (convert_float16(tx) > cx), y0 = ty + (convert_float16(ty) > cy);
	const float16 fx = cx - convert_float16(x0), fy = cy - convert_float16(y0);
	const int16 at = (y0 + 2) * quadStride(w) + x0 + 2;
	const uint16 q = (uint16)(quads[at.s0], quads[at.s1], quads[at.s2], quads[at.s3], quads[at.s4], quads[at.s5],
				  quads[at.s6], quads[at.s7], quads[at.s8], quads[at.s9], quads[at.sa], quads[at.sb],
				  quads[at.sc], quads[at.sd], quads[at.se], quads[at.sf]);
	const float16 top = (1.0f - fx) * convert_float16(q & 0xffu) + fx * convert_float16((q >> 8) & 0xffu);
	const float16 bottom = (1.0f - fx) * convert_float16((q >> 16) & 0xffu) + fx * convert_float16(q >> 24);
	return (1.0f - fy) * top + fy * bottom;
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
// A work-group is one image: its first work-item draws the map into local
// memory (a draw, Philox, sin and cos, per pixel cost 150 ns of scalar
// code), the group stages the image (stageImage), and a work-item makes 16
// pixels at a time in float16 lanes, written out by hand since PoCL ran one
// pixel per work-item scalar (2 ms a batch of 128). Sampling the uint8
// image in global memory took 0.16 ms a batch; the staged quads take 0.10,
// against 0.026 for gather (Zen 5, 2 threads).
__kernel void gather_affine(DISTORT_KERNEL_ARGS, const float invWidth,
			    __global float *restrict X, __global int *restrict labels,
			    __local uint *quads)
{
	__local float map[6]; // sx = map0 ox + map1 oy + map2, sy = map3 ox + map4 oy + map5
	const int r = get_group_id(1), lid = get_local_id(0), group = get_local_size(0), pixels = width * height;
	const int src = perm[first + r];
	if (lid == 0) {
		affineMap(map, src, epoch, (uint2)(key0, key1), rotate, scale, shiftX, shiftY, width, height);
		labels[r] = digits[src];
	}
	stageImage(quads, images + (size_t)src * pixels, width, height);
	for (int p0 = lid * 16; p0 < pixels; p0 += group * 16) {
		const int16 p = p0 + LANES;
		// p / width without an integer division, which no CPU has in
		// vector form: (p + 1/2) / width is at least 1/(2 width) from an
		// integer, far more than two float roundings move it while p <
		// 2^22 (GatherAffine checks).
		const int16 oy = convert_int16((convert_float16(p) + 0.5f) * invWidth), ox = p - oy * width;
		const float16 fox = convert_float16(ox), foy = convert_float16(oy);
		const float16 sx = map[0] * fox + map[1] * foy + map[2], sy = map[3] * fox + map[4] * foy + map[5];
		const float16 v = bilinear(quads, width, height, sx, sy) * (1.0f / 255.0f);
		__global float *out = X + (size_t)r * pixels + p0;
		if (p0 + 16 <= pixels) {
			vstore16(v, 0, out);
		} else {
			float tail[16];
			vstore16(v, 0, tail);
			for (int e = 0; e < pixels - p0; e++)
				out[e] = tail[e];
		}
	}
}

// ELASTIC_STREAM is the counter's last word for the displacement noise of
// gather_elastic (kernels.elasticStream), apart from the affine draws.
#define ELASTIC_STREAM 0x656c6131u

// ELASTIC_ROWS is how many rows of a field a work-item blurs at once: each
// load of a weight vector (rows) or of a row of tmp (columns) then feeds
// that many fmas. A multiple of 4, the rows of a Philox call's noise.
#define ELASTIC_ROWS 4

// ELASTIC_CHUNKS is how many 16-column chunks of those rows: ELASTIC_ROWS
// times ELASTIC_CHUNKS accumulators hide the fma's latency.
#define ELASTIC_CHUNKS 2

// philox16 is sixteen philox4x32_10 in lanes, one counter per lane (words
// c0..c3 of each) under one key: the noise of a row of 16 pixels at once.
typedef struct {
	uint16 c0, c1, c2, c3;
} philox16;

// philoxRound is a round of philox4x32_10 in the low words of 8 ulong
// lanes, whose high words are don't-cares: a 32x32->64 multiply (vpmuludq)
// reads only the low words and leaves the product whole, its high word the
// mul_hi, so a round is two multiplies, two shifts and two three-way xors.
// (PoCL's mul_hi on uint16 is four 32-bit multiplies of 16-bit halves.)
static inline void philoxRound(ulong8 *c0, ulong8 *c1, ulong8 *c2, ulong8 *c3, const uint2 key)
{
	const ulong8 p0 = (*c0 & 0xffffffffUL) * 0xD2511F53UL, p1 = (*c2 & 0xffffffffUL) * 0xCD9E8D57UL;
	*c0 = (p1 >> 32) ^ *c1 ^ (ulong)key.x;
	*c1 = p1;
	*c2 = (p0 >> 32) ^ *c3 ^ (ulong)key.y;
	*c3 = p0;
}

// philox4x32_10x16 is philox4x32_10 on the 16 lanes' counters of c: the
// even lanes and the odd ones each as the low words of 8 ulongs, a round of
// one beside the same round of the other, since a round waits on the last.
static inline philox16 philox4x32_10x16(const philox16 c, uint2 key)
{
	ulong8 e0 = as_ulong8(c.c0), e1 = as_ulong8(c.c1), e2 = as_ulong8(c.c2), e3 = as_ulong8(c.c3);
	ulong8 o0 = e0 >> 32, o1 = e1 >> 32, o2 = e2 >> 32, o3 = e3 >> 32;
	for (int r = 0; r < 10; r++) {
		if (r > 0)
			key += (uint2)(0x9E3779B9u, 0xBB67AE85u);
		philoxRound(&e0, &e1, &e2, &e3, key);
		philoxRound(&o0, &o1, &o2, &o3, key);
	}
	const ulong8 low = 0xffffffffUL;
	return (philox16){as_uint16((e0 & low) | (o0 << 32)), as_uint16((e1 & low) | (o1 << 32)),
			  as_uint16((e2 & low) | (o2 << 32)), as_uint16((e3 & low) | (o3 << 32))};
}

// halfPM1 maps 16 random bits (of a lane's word, the high half or the low)
// to [-1, 1) in steps of 2^-15, exact like uniformPM1 (kernels.Uniform16).
static inline float16 halfPM1(const uint16 bits)
{
	return convert_float16(bits) * (1.0f / 32768.0f) - 1.0f;
}

// elasticShape is the layout of an image's fields in local memory: each
// field is hp rows of wp floats (the width rounded up to ELASTIC_CHUNKS
// chunks of 16 and the height to ELASTIC_ROWS, so the blurs' blocks tile
// it), dx's rows then dy's; the Gaussian's weight of offset d is
// taps[centre + d] for d in [-centre, ntaps - centre). kernels.elasticLocal
// sizes the same arrays.
typedef struct {
	int chunks, wp, hp, centre, ntaps;
} elasticShape;

static inline elasticShape elasticShapeOf(const int w, const int h)
{
	elasticShape s;
	s.chunks = (w + 16 * ELASTIC_CHUNKS - 1) / (16 * ELASTIC_CHUNKS) * ELASTIC_CHUNKS;
	s.wp = 16 * s.chunks;
	s.hp = (h + ELASTIC_ROWS - 1) / ELASTIC_ROWS * ELASTIC_ROWS;
	s.centre = max(w, s.hp) - 1;
	s.ntaps = s.centre + max(s.wp, s.hp);
	return s;
}

// elasticNoise fills taps with the truncated Gaussian's weights and field
// with image src's noise (see gather_elastic): a Philox call in 16 lanes
// makes both fields of 16 columns of 4 rows. Padding is zero, so every
// float the blurs read is written.
static inline void elasticNoise(__local float *field, __local float *taps, const elasticShape s, const int src,
				const uint epoch, const uint2 key, const int w, const int h, const float inv2s2,
				const int radius)
{
	const int lid = get_local_id(0), group = get_local_size(0);
	for (int i = lid * 16; i < s.ntaps; i += group * 16) {
		const int16 d = i + LANES - s.centre;
		// Vector bounds: see bilinear.
		vstore16(select((float16)(0.0f), exp(-convert_float16(d * d) * inv2s2), (d >= (int16)(-radius)) & (d <= (int16)(radius))), 0, taps + i);
	}
	for (int u = lid; u < s.hp / 4 * s.chunks; u += group) {
		const int q = u / s.chunks, x = (u - q * s.chunks) * 16;
		const philox16 r = philox4x32_10x16((philox16){(uint16)((uint)src), (uint16)(epoch), as_uint16(q * w + x + LANES),
								(uint16)(ELASTIC_STREAM)}, key);
		const uint16 words[4] = {r.c0, r.c1, r.c2, r.c3};
		const int16 inside = x + LANES < (int16)(w);
#pragma unroll
		for (int i = 0; i < 4; i++) {
			const int16 in = inside & (int16)(-(4 * q + i < h));
			__local float *dx = field + (4 * q + i) * s.wp + x;
			*(__local float16 *)dx = select((float16)(0.0f), halfPM1(words[i] >> 16), in);
			*(__local float16 *)(dx + s.hp * s.wp) = select((float16)(0.0f), halfPM1(words[i] & 0xffffu), in);
		}
	}
}

// elasticBlur blurs both fields in place, rows then columns, as
// tmp[y][x] = sum_k field[y][k] g(x - k) and field[y][x] = gain sum_k
// g(y - k) tmp[k][x], k over the window of the Gaussian within the image;
// a field at a time, so tmp is one field's size (and then free for the
// image: see gather_elastic). A work-item makes ELASTIC_ROWS rows of
// ELASTIC_CHUNKS 16-column chunks from contiguous vectors times broadcast
// scalars; the weight vectors come shifted out of the symmetric taps, whose
// zeros past the radius cover the window's ragged ends.
static inline void elasticBlur(__local float *field, __local float *tmp, __local const float *taps, const elasticShape s,
			       const int w, const int h, const int radius, const float gain)
{
	const int lid = get_local_id(0), group = get_local_size(0);
	const int across = s.chunks / ELASTIC_CHUNKS, units = s.hp / ELASTIC_ROWS * across;
	float16 acc[ELASTIC_ROWS][ELASTIC_CHUNKS];
	for (int f = 0; f < 2; f++, field += s.hp * s.wp) {
		for (int u = lid; u < units; u += group) {
			const int y = u / across * ELASTIC_ROWS, x = (u - u / across * across) * 16 * ELASTIC_CHUNKS;
			__local const float *n = field + y * s.wp;
#pragma unroll
			for (int i = 0; i < ELASTIC_ROWS; i++)
#pragma unroll
				for (int c = 0; c < ELASTIC_CHUNKS; c++)
					acc[i][c] = 0.0f;
			for (int k = max(0, x - radius); k <= min(w - 1, x + 16 * ELASTIC_CHUNKS - 1 + radius); k++) {
				float16 g[ELASTIC_CHUNKS];
#pragma unroll
				for (int c = 0; c < ELASTIC_CHUNKS; c++)
					g[c] = vload16(0, taps + s.centre + x + 16 * c - k);
#pragma unroll
				for (int i = 0; i < ELASTIC_ROWS; i++)
#pragma unroll
					for (int c = 0; c < ELASTIC_CHUNKS; c++)
						acc[i][c] += n[i * s.wp + k] * g[c];
			}
#pragma unroll
			for (int i = 0; i < ELASTIC_ROWS; i++)
#pragma unroll
				for (int c = 0; c < ELASTIC_CHUNKS; c++)
					*(__local float16 *)(tmp + (y + i) * s.wp + x + 16 * c) = acc[i][c];
		}
		barrier(CLK_LOCAL_MEM_FENCE);
		for (int u = lid; u < units; u += group) {
			const int y = u / across * ELASTIC_ROWS, x = (u - u / across * across) * 16 * ELASTIC_CHUNKS;
			__local const float *g = taps + s.centre - y;
#pragma unroll
			for (int i = 0; i < ELASTIC_ROWS; i++)
#pragma unroll
				for (int c = 0; c < ELASTIC_CHUNKS; c++)
					acc[i][c] = 0.0f;
			for (int k = max(0, y - radius); k <= min(h - 1, y + ELASTIC_ROWS - 1 + radius); k++) {
				float16 v[ELASTIC_CHUNKS];
#pragma unroll
				for (int c = 0; c < ELASTIC_CHUNKS; c++)
					v[c] = *(__local const float16 *)(tmp + k * s.wp + x + 16 * c);
#pragma unroll
				for (int i = 0; i < ELASTIC_ROWS; i++)
#pragma unroll
					for (int c = 0; c < ELASTIC_CHUNKS; c++)
						acc[i][c] += g[k - i] * v[c];
			}
#pragma unroll
			for (int i = 0; i < ELASTIC_ROWS; i++)
#pragma unroll
				for (int c = 0; c < ELASTIC_CHUNKS; c++)
					*(__local float16 *)(field + (y + i) * s.wp + x + 16 * c) = gain * acc[i][c];
		}
		barrier(CLK_LOCAL_MEM_FENCE);
	}
}

// gather_elastic is gather_affine followed by Simard et al.'s (2003)
// elastic distortion. Per image, two fields of noise uniform in [-1, 1) in
// steps of 2^-15 (pixel (x, 4q + i) takes word i of Philox at counter
// (image, epoch, q width + x, ELASTIC_STREAM), its high half for dx and its
// low half for dy: kernels.Elastic.Noise) are each smoothed by a Gaussian
// of radius ceil(3 sigma), zero outside the image, and scaled by gain =
// alpha / S^2 (S the sum of the unnormalised 1D weights exp(-k^2 / (2
// sigma^2)), so alpha scales the unit-sum blur). Output pixel o then
// samples the source bilinearly at A^-1(o) + (dx, dy)(o), A the affine map
// of gather_affine (the identity with zero ranges), zero outside
// (cpuref.Elastic). With alpha = 0 and zero ranges X is gather's to the bit.
//
// One work-group per image, everything in local memory and in float16
// lanes written out by hand, between barriers: the noise (elasticNoise),
// the blur a field at a time (elasticBlur), the image staged where the
// blur's intermediate was (stageImage), then a row of X per work-item.
// PoCL runs a group's work-items in a loop and vectorises none of this
// itself: the first version's scalar loops took 6 ms a batch of 128, this
// one 0.18 ms (Zen 5, 2 threads), about a third each the blur and the
// sampling, a tenth Philox.
__kernel void gather_elastic(DISTORT_KERNEL_ARGS, const float inv2s2, const int radius, const float gain,
			     __global float *restrict X, __global int *restrict labels, __local float *field,
			     __local float *tmp, __local float *taps)
{
	__local float map[6];
	const int r = get_group_id(1), lid = get_local_id(0), group = get_local_size(0);
	const int src = perm[first + r];
	const elasticShape s = elasticShapeOf(width, height);
	if (lid == 0) {
		affineMap(map, src, epoch, (uint2)(key0, key1), rotate, scale, shiftX, shiftY, width, height);
		labels[r] = digits[src];
	}
	elasticNoise(field, taps, s, src, epoch, (uint2)(key0, key1), width, height, inv2s2, radius);
	barrier(CLK_LOCAL_MEM_FENCE);
	elasticBlur(field, tmp, taps, s, width, height, radius, gain);
	// The image goes where the blur's intermediate was.
	__local uint *quads = (__local uint *)tmp;
	stageImage(quads, images + (size_t)src * width * height, width, height);
	// A work-item makes a row of X, 16 pixels at a time; a row's last
	// chunk overlaps the one before when the width is not a multiple of
	// 16, so every store is a whole vector (but in images narrower than
	// one).
	for (int y = lid; y < height; y += group) {
		__global float *out = X + ((size_t)r * height + y) * width;
		for (int x0 = 0; x0 < width; x0 += 16) {
			const int x = width >= 16 ? min(x0, width - 16) : 0;
			// oy converted from an int16, not splat from a float:
			// oclgrind 21.10's --uninitialized crashed on the splat.
			const float16 ox = convert_float16(x + LANES), oy = convert_float16((int16)(y));
			__local const float *d = field + y * s.wp + x;
			const float16 sx = map[0] * ox + map[1] * oy + map[2] + vload16(0, d);
			const float16 sy = map[3] * ox + map[4] * oy + map[5] + vload16(0, d + s.hp * s.wp);
			const float16 v = bilinear(quads, width, height, sx, sy) * (1.0f / 255.0f);
			if (width >= 16) {
				vstore16(v, 0, out + x);
			} else {
				float tail[16];
				vstore16(v, 0, tail);
				for (int e = 0; e < width; e++)
					out[e] = tail[e];
			}
		}
	}
}

// elastic_fields writes the displacement fields gather_elastic makes for
// image perm[first + r] to row r of out, dx's width x height values then
// dy's: the device's noise and blur laid bare for the test against Go's
// noise and cpuref.ElasticField.
__kernel void elastic_fields(__global const int *restrict perm, const int first, const int width, const int height,
			     const uint key0, const uint key1, const uint epoch, const float inv2s2, const int radius,
			     const float gain, __global float *restrict out, __local float *field, __local float *tmp,
			     __local float *taps)
{
	const int r = get_group_id(1), lid = get_local_id(0), group = get_local_size(0);
	const elasticShape s = elasticShapeOf(width, height);
	elasticNoise(field, taps, s, perm[first + r], epoch, (uint2)(key0, key1), width, height, inv2s2, radius);
	barrier(CLK_LOCAL_MEM_FENCE);
	elasticBlur(field, tmp, taps, s, width, height, radius, gain);
	const int pixels = width * height;
	for (int i = lid; i < 2 * pixels; i += group) {
		const int f = i >= pixels, y = (i - f * pixels) / width, x = i - f * pixels - y * width;
		out[(size_t)r * 2 * pixels + i] = field[(f * s.hp + y) * s.wp + x];
	}
}
