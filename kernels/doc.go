// Package kernels holds the OpenCL C sources of the network's pass, embedded
// so an installed binary needs no source tree, and a Set that builds them for
// one device and launches them with typed arguments.
//
// # Files
//
//	gemm_reg.cl    C = op(A) B by register blocks (float16 accumulators): CPUs;
//	               built with SPARSE=1, the products that skip the input
//	               batch's zero terms and the kernels that list them
//	               (sparse.go)
//	gemm_tiled.cl  C = op(A) op(B) by local-memory tiles: GPUs
//	layers.cl      gather, bias_relu, bias_add, softmax_minus_labels,
//	               softmax_mse, batch_stats, relu_mask, col_sum, update,
//	               transpose
//	augment.cl     gather_affine and gather_elastic, the distorting gathers,
//	               with the Philox generator they draw from; philox_blocks
//	               and elastic_fields for tests
//	sums.cl        compensated summation (TwoSum, fma), put in front of each
//	               of the others so the delicate arithmetic is written once
//
// Each kernel has its float64 twin in package cpuref, and the tests of this
// package run every kernel on the real device at odd sizes (1, 7, 37, 129 ...)
// against it, with output buffers poisoned first so an element a kernel
// forgets to write shows as NaN.
//
// # Layout and numbers
//
// Matrices are row-major float32 and packed (the leading dimension is the row
// length); a batch runs along the rows. W of a layer is fanIn x fanOut, so a
// layer computes Z = X W + b as in the lecture. The caller owns every buffer
// it passes; the Set's only buffers of its own are the scratch that holds
// B^T for the register GEMM's A B^T form where B^T does not fit a
// work-group's local memory (gemm_reg_nt packs it there otherwise), grown
// once to the largest such B, and the term lists of the sparse products.
//
// # Register blocks
//
// The register GEMM's block (rows x 16*TNV columns of C per work-item) is a
// -D build option; its k-chunk is an argument, so one build serves every
// chunk. Blocks are sized from the device's float vector width
// (RegistersOf): a float16 accumulator is one zmm register with AVX-512 (32
// of them) and two ymm with AVX2 (16), and a block that does not fit spills
// in its inner loop. DefaultBlock derives the built-in block of a shape
// from that (6 x 64 and 6 x 16; 8 x 32 for AVX-512's A B^T; 5 x 64 and
// 2 x 32 skipping zeros), Candidates the few the tuner (internal/tuner) times;
// Gemm uses a shape's tuned block, else its nearest tuned neighbour's, else
// the default. A product that skips zeros is a shape of its own
// (Shape.SparseA): its blocks are cut to fit the registers with the
// broadcasts a list of terms needs (sparseBlock), and tuned as they run. A
// launch's sizes and settings go as one struct argument (gemm_reg.cl's
// Params). The tiled GEMM for GPUs keeps fixed 16 x 16 tiles.
//
// # Tolerances
//
// Against cpuref, relative errors ||got - want||_F / ||want||_F stay below
// 1e-5 for forward tensors and 1e-4 for gradients and updates. Outputs of 16
// columns or fewer are summed with compensation (exact fma product errors and
// TwoSum), as are column sums, and wide GEMMs sum k in chunks (blocked
// summation; the tuner keeps a block only if it meets 1e-5 at the shape):
// without compensation, a layer of one unit lost up to 8e-5 to cancellation
// over 784 terms.
// The softmax keeps a confident row's loss and Yp - 1 exact in form (log1p
// and -others/(1+others)) rather than differences of numbers near 1.
package kernels
