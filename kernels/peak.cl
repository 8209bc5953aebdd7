// peak: the device's fused multiply-add throughput, the ceiling the GEMMs
// are measured against (bench prints each as a share of it). Each work-item
// runs CHAINS independent float16 chains of fmas, enough to cover the fma
// latency on every pipe without spilling: on a CPU a float16 is one zmm
// (AVX-512) or two ymm (AVX2) register, so the host sizes CHAINS to the
// register file. a and b are arguments so the compiler cannot fold the
// loop; out keeps the result alive.
#ifndef CHAINS
#define CHAINS 8
#endif

__kernel void fma_peak(const int iters, const float a, const float b, __global float *out)
{
	float16 acc[CHAINS];
#pragma unroll
	for (int c = 0; c < CHAINS; c++)
		acc[c] = (float16)(get_global_id(0) + c);
	for (int i = 0; i < iters; i++)
#pragma unroll
		for (int c = 0; c < CHAINS; c++)
			acc[c] = fma(acc[c], (float16)(a), (float16)(b));
	float16 s = acc[0];
#pragma unroll
	for (int c = 1; c < CHAINS; c++)
		s += acc[c];
	out[get_global_id(0)] = s.s0 + s.s1 + s.s2 + s.s3 + s.s4 + s.s5 + s.s6 + s.s7 + s.s8 + s.s9 + s.sa + s.sb +
				s.sc + s.sd + s.se + s.sf;
}
