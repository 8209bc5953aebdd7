package kernels

// Philox4x32-10 (Salmon, Moraes, Dror and Shaw, "Parallel random numbers: as
// easy as 1, 2, 3", SC 2011), the generator of augment.cl's philox4x32_10
// written again in Go, operation for operation, so the host knows every
// number a kernel draws.
const (
	philoxM0 = 0xD2511F53 // multiplier of counter word 0
	philoxM1 = 0xCD9E8D57 // multiplier of counter word 2
	philoxW0 = 0x9E3779B9 // key schedule: golden ratio
	philoxW1 = 0xBB67AE85 // key schedule: sqrt(3) - 1
)

// Philox4x32 returns the four random words of counter ctr under key: ten
// rounds of two 32x32->64 multiplies, the key bumped by the Weyl constants
// between rounds.
func Philox4x32(ctr [4]uint32, key [2]uint32) [4]uint32 {
	for r := range 10 {
		if r > 0 {
			key[0] += philoxW0
			key[1] += philoxW1
		}
		p0 := uint64(philoxM0) * uint64(ctr[0])
		p1 := uint64(philoxM1) * uint64(ctr[2])
		ctr = [4]uint32{uint32(p1>>32) ^ ctr[1] ^ key[0], uint32(p1), uint32(p0>>32) ^ ctr[3] ^ key[1], uint32(p0)}
	}
	return ctr
}

// Uniform maps a random word to [-1, 1) in steps of 2^-23, as uniformPM1 in
// augment.cl: the top 24 bits times 2^-23, less 1. Each operation is exact in
// float32, so the device and Go agree to the bit whatever either rounds.
func Uniform(x uint32) float32 {
	return float32(x>>8)*(1.0/8388608) - 1
}

// Uniform16 maps 16 random bits to [-1, 1) in steps of 2^-15, as halfPM1
// in augment.cl, exact in float32 like Uniform: the elastic noise, which
// the blur averages over hundreds of pixels, takes two values a word.
func Uniform16(x uint16) float32 {
	return float32(x)*(1.0/32768) - 1
}
