package kernels

import (
	"fmt"

	"github.com/mnist-cl/mnist-cl/cl"
)

// The register GEMM skips op(A)'s zero terms where Fused.Sparse asks it
// to: a product whose A is the input batch, images of mostly black pixels
// (81% of MNIST's are zero). Before such a product one launch lists, per
// block of TM rows of op(A), the terms k where any of its rows is nonzero
// (nonzero_rows for A B, nonzero_cols for A^T B), and the product, built
// with SPARSE=1, walks only those. A term dropped only ever added zeros,
// so the sums are those of the dense product, up to where blocked
// summation's chunks fall.

// sparseBlock is b cut to the rows whose accumulators, row of B and
// broadcasts of A all fit the registers. A sparse block's term comes from
// its list, so the compiler loads the term's TM elements of A ahead of the
// fmas, and each takes a register a dense block's did not hold at once:
// AVX2's 6 x 16 then kept an accumulator on the stack, and X W1 took 570
// us where 4 x 16 took 370 (Zen 5 built for Haswell, one real batch).
func (r Registers) sparseBlock(b Block) Block {
	for b.TM > 1 && (b.TM+1)*b.TNV*r.perVector()+b.TM > r.Count {
		b.TM--
	}
	return b
}

// sparseKernels are gemm_reg.cl's SPARSE=1 kernels for block b (built on
// first use): gemm_reg_nn, gemm_reg_tn, nonzero_rows, nonzero_cols.
func (s *Set) sparseKernels(b Block) ([4]*cl.Kernel, error) {
	b = b.program()
	if ks, ok := s.gemmSparse[b]; ok {
		return ks, nil
	}
	ks, err := s.buildReg(b, " -D SPARSE=1", "gemm_reg_nn", "gemm_reg_tn", "nonzero_rows", "nonzero_cols")
	if err != nil {
		return [4]*cl.Kernel{}, err
	}
	s.gemmSparse[b] = [4]*cl.Kernel(ks)
	return s.gemmSparse[b], nil
}

// termInts is the ints of the term lists of a product whose op(A) has
// blocks blocks of rows and k terms: a list of k per block, then the
// blocks' lengths.
func termInts(blocks, k int) int { return blocks*k + blocks }

// TermInts bounds the term lists of the sparse products of a batch of rows
// rows and inputs inputs, A B (op(A) rows x inputs) and A^T B (inputs x
// rows), at blocks of one row: the ints the kernels allocate at the first
// such product.
func TermInts(rows, inputs int) int {
	return max(termInts(rows, inputs), termInts(inputs, rows))
}

// ensureTerms makes the term lists hold n ints.
func (s *Set) ensureTerms(n int) error {
	return s.grow(&s.terms, 4*n, fmt.Sprintf("gemm term lists of %d ints", n))
}

// launchSparse is launchReg for a product that skips op(A)'s zero terms:
// it lists each block's nonzero terms into s.terms (blocks lists of k
// entries, then their lengths), then runs blk's SPARSE=1 product on them.
// A is stored packed: m x k for A B, k x m for A^T B.
func (s *Set) launchSparse(blk Block, transA bool, m, n, k int, a, b, c *cl.Buffer, ldb int, f Fused) error {
	blk = s.regs.sparseBlock(blk)
	ks, err := s.sparseKernels(blk)
	if err != nil {
		return err
	}
	blocks := (m + blk.TM - 1) / blk.TM
	if err := s.ensureTerms(termInts(blocks, k)); err != nil {
		return err
	}
	// The lengths follow the lists in one buffer (a sub-buffer would need
	// an aligned offset). A stored rows x cols: blocks of op(A)'s rows are
	// blocks of A's rows for A B, of its columns for A^T B.
	lister, kern, lda, rows, cols := ks[2], ks[0], k, m, k
	if transA {
		lister, kern, lda, rows, cols = ks[3], ks[1], m, k, m
	}
	if err := lister.SetArgs(a, rows, cols, blocks*k, s.terms); err != nil {
		return err
	}
	if err := s.enqueue(lister, []int{blocks}, []int{1}, m, 0, k); err != nil {
		return err
	}
	if err := setRegArgs(kern, blk.KC, m, n, k, a, lda, b, ldb, c, f, s.terms, blocks*k); err != nil {
		return err
	}
	return s.enqueueReg(kern, blk, transA, m, n, k)
}
