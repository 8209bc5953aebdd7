// Package tuner measures which register-GEMM block is fastest for each
// GEMM shape of a step on one device, and keeps the answers in a cache on
// disk so that a device is measured once.
//
// The search space is the kernels package's: kernels.Registers.Candidates
// lists, for a shape, the blocks that fit the device's register file (a
// handful, so a device is tuned in seconds). Every candidate is first run on
// random operands and compared with cpuref's float64 product; one that
// builds but computes wrongly, or not accurately enough at the shape, is
// skipped, never chosen. The survivors are timed as a step runs them:
// queued back to back and waited for once, and then all of them a second
// time in the other order (confirm), each keeping its better time: the
// first block timed after each build ran slow.
//
// The input layer's products skip the input's zero pixels (a
// kernels.Shape with SparseA): they are timed that way, on stand-in images
// of pen strokes with MNIST's sparsity (strokes), and cached as shapes of
// their own. Dense, random operands had timed blocks that differ by a
// fifth when sparse (X^T dZ1 on Zen 5: 168 against 206 us a product on
// real images) within 1% of each other.
//
// A shape too large to time quickly (a batch of 55,000 rows) is timed at a
// stand-in with its batch dimensions cut to MaxSide; Gemm itself gives an
// untuned shape the block of its nearest tuned neighbour.
//
// Tuning stops at the next candidate when its context is cancelled, and the
// cache is only ever replaced whole (internal/atomicfile), so an interrupt
// leaves the old cache or the new one, never a mix.
package tuner
