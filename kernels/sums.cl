// sums: compensated summation, the one definition every program shares (the
// Set puts this file in front of each source). A pair (s, c) holds a sum s and
// the running total c of the exact rounding errors made in forming it:
// TwoSum recovers an addition's error exactly, fma a product's. s + c is then
// as accurate as if each addition had been done in twice the precision.
// Used where few outputs leave no averaging to hide cancellation: GEMMs of 16
// columns or fewer (a layer of one unit, the logits) and col_sum.

// Contraction would fuse the a - b steps below into fmas and lose the exact
// errors they recover.
#pragma OPENCL FP_CONTRACT OFF

#define DEFINE_SUMS(T)                                                         \
	/* twoSum_T adds b to (*s, *c) (Knuth's TwoSum). */                    \
	static inline void twoSum_##T(T *s, T *c, T b)                         \
	{                                                                      \
		const T t = *s + b;                                            \
		const T bv = t - *s;                                           \
		*c += (*s - (t - bv)) + (b - bv);                              \
		*s = t;                                                        \
	}                                                                      \
	/* fmaSum_T adds a*b to (*s, *c): the product's error from fma. */     \
	static inline void fmaSum_##T(T *s, T *c, T a, T b)                    \
	{                                                                      \
		const T p = a * b;                                             \
		*c += fma(a, b, -p);                                           \
		twoSum_##T(s, c, p);                                           \
	}

DEFINE_SUMS(float)
DEFINE_SUMS(float16)

#pragma OPENCL FP_CONTRACT ON
