package kernels

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/mnist-cl/mnist-cl/cl"
)

// thin reports whether a product's output is narrow enough that its rows
// are summed with compensation (see gemm_reg.cl): few outputs, so no
// averaging hides one output's cancellation, and cheap at that width.
func thin(n int) bool { return n <= 16 }

// regKernels are gemm_reg.cl's kernels for block b's program (built on
// first use): gemm_reg_nn, gemm_reg_tn and gemm_reg_nt.
func (s *Set) regKernels(b Block) ([3]*cl.Kernel, error) {
	b = b.program()
	if ks, ok := s.gemmReg[b]; ok {
		return ks, nil
	}
	ks, err := s.buildReg(b, "", "gemm_reg_nn", "gemm_reg_tn", "gemm_reg_nt")
	if err != nil {
		return [3]*cl.Kernel{}, err
	}
	s.gemmReg[b] = [3]*cl.Kernel(ks)
	return s.gemmReg[b], nil
}

// buildReg builds gemm_reg.cl for block b with the extra options and
// returns the named kernels of it.
func (s *Set) buildReg(b Block, extra string, names ...string) ([]*cl.Kernel, error) {
	comp := 0
	if b.Compensated {
		comp = 1
	}
	p, err := s.program("gemm_reg.cl", fmt.Sprintf("-D TM=%d -D TNV=%d -D COMPENSATED=%d%s", b.TM, b.TNV, comp, extra))
	if err != nil {
		return nil, err
	}
	return kernelsOf(p, names...)
}

// Form is which operand of a product is stored transposed, like gonum's
// blas.Transpose: the three forms a pass uses.
type Form int

const (
	// NN is C = A B.
	NN Form = iota
	// TransA is C = A^T B (A stored k x m): dW = Z^T delta.
	TransA
	// TransB is C = A B^T (B stored n x k): dZ = delta W^T.
	TransB
)

// Trans reports whether A and whether B is stored transposed.
func (f Form) Trans() (a, b bool) { return f == TransA, f == TransB }

// String writes the form as the product it computes: "A B^T".
func (f Form) String() string {
	switch f {
	case TransA:
		return "A^T B"
	case TransB:
		return "A B^T"
	case NN:
		return "A B"
	}
	return fmt.Sprintf("Form(%d)", int(f))
}

// Epilogue is work a GEMM does on C as it writes it (see gemm_reg.cl).
type Epilogue int32

const (
	// EpiNone leaves C = op(A) op(B).
	EpiNone Epilogue = iota
	// EpiBias adds a bias row: C = op(A) op(B) + b.
	EpiBias
	// EpiBiasReLU is a layer's forward pass: C = f(op(A) op(B) + b).
	EpiBiasReLU
	// EpiMask is the backward ReLU mask: C = (op(A) op(B)) . [Z > 0], Z
	// shaped like C.
	EpiMask
	// EpiUpdate is dW = A^T B and db = column sums of B followed by the
	// optimiser step on W (Aux) and b (see FusedStep): the A^T B form only,
	// with ColSum set.
	EpiUpdate
)

var epiNames = [...]string{"none", "+ bias", "+ bias, ReLU", "ReLU mask", "column sums, step"}

// String names the epilogue for mnist-cl plan.
func (e Epilogue) String() string {
	if e >= 0 && int(e) < len(epiNames) {
		return epiNames[e]
	}
	return fmt.Sprintf("Epilogue(%d)", int32(e))
}

// FusedStep is EpiUpdate's operands: the update kernel's settings and
// buffers. C and the Fused ColSum are then scratch for dW and db, which
// hold the gradients afterwards only with Keep.
type FusedStep struct {
	Hyper Hyper
	// VW and VB are the velocities of W and b; nil without momentum.
	VW, B, VB *cl.Buffer
	// Keep stores dW and db as well as stepping (verify reads them).
	Keep bool
}

// Fused are the extras of one GemmFused: an epilogue with its operand (the
// bias of EpiBias and EpiBiasReLU, Z of EpiMask), and for the A^T B form the
// column sums of B into ColSum (db = sum over rows of delta, read in the
// same launch as dW = Z^T delta, from the cache that product filled).
type Fused struct {
	Epi    Epilogue
	Aux    *cl.Buffer
	ColSum *cl.Buffer
	Step   *FusedStep
	// Sparse says op(A) is mostly zeros (A is the input batch): the register
	// GEMM then lists each block's nonzero terms and skips the rest (see
	// sparse.go) where that pays (runsSparse). A B and A^T B only; the
	// tiled GEMM runs every term.
	Sparse bool
}

// Gemm computes C[m,n] = op(A) op(B) in the given form, row-major and
// packed: op(A) is m x k (A is stored k x m in form TransA), op(B) is k x n
// (B stored n x k in form TransB).
func (s *Set) Gemm(form Form, m, n, k int, a, b, c *cl.Buffer) error {
	return s.GemmFused(form, m, n, k, a, b, c, Fused{})
}

// GemmFused is Gemm with the extras of f. The register GEMM does them in the
// same launch; the tiled GEMM follows its product with the separate kernels
// (bias_add, bias_relu, relu_mask, col_sum), so both give the same results.
func (s *Set) GemmFused(form Form, m, n, k int, a, b, c *cl.Buffer, f Fused) error {
	// The name is built only for an error: this runs eight times a step.
	op := func() string { return fmt.Sprintf("gemm(%s, m=%d n=%d k=%d)", form, m, n, k) }
	if err := checkSizes(m, n, k); err != nil {
		return fmt.Errorf("%s: %w", op(), err)
	}
	if form < NN || form > TransB {
		return fmt.Errorf("%s: not a form the pass uses", op())
	}
	transA, transB := form.Trans()
	if err := fit(operand{"A", a, m * k}, operand{"B", b, k * n}, operand{"C", c, m * n}); err != nil {
		return fmt.Errorf("%s: %w", op(), err)
	}
	if err := checkFused(form, m, n, f); err != nil {
		return fmt.Errorf("%s: %w", op(), err)
	}
	sh := Shape{TransA: transA, TransB: transB, M: m, N: n, K: k, SparseA: f.Sparse}
	if s.kind == GemmTiled {
		lda, ldb := sh.strides()
		return s.gemmTiled(form, m, n, k, a, lda, b, ldb, c, f)
	}
	return s.launchBlock(s.blockFor(sh), sh, a, b, c, f)
}

// launchBlock runs sh with register block blk as Gemm does: on op(A)'s
// nonzero terms where that pays (runsSparse), as gemm_reg_nt for an A B^T,
// else as gemm_reg_nn or gemm_reg_tn.
func (s *Set) launchBlock(blk Block, sh Shape, a, b, c *cl.Buffer, f Fused) error {
	lda, ldb := sh.strides()
	switch {
	case s.runsSparse(sh):
		return s.launchSparse(blk, sh.TransA, sh.M, sh.N, sh.K, a, b, c, ldb, f)
	case sh.TransB:
		return s.launchNT(blk, sh.M, sh.N, sh.K, a, lda, b, ldb, c, f)
	}
	return s.launchReg(blk, sh.TransA, sh.M, sh.N, sh.K, a, lda, b, ldb, c, f)
}

// minSparseWork is the default fewest multiply-adds for which a product
// lists its terms: the list is a launch of its own, 10-15 us on PoCL, and skipping
// half the terms of a product below this saves less than that (at 100-200
// GFLOP/s). Training at batch 7 ran its epochs a quarter slower with every
// product sparse.
const minSparseWork = 1 << 22

// checkSizes refuses sizes the kernels cannot take: they are 32-bit ints
// in gemm_reg.cl's Params.
func checkSizes(m, n, k int) error {
	if min(m, n, k) <= 0 || max(m, n, k) > math.MaxInt32 {
		return fmt.Errorf("sizes must be positive 32-bit ints")
	}
	return nil
}

// runsSparse reports whether Gemm runs sh on op(A)'s nonzero terms only:
// asked to (SparseA), large enough (Options.MinSparseWork), and wider than
// a thin output, which costs about what its list does. (The compensated
// SPARSE build of thin outputs also made oclgrind 21.10's --uninitialized
// take correct outputs for uninitialized after a momentum step.)
func (s *Set) runsSparse(sh Shape) bool {
	return sh.SparseA && !thin(sh.N) && uint64(sh.M)*uint64(sh.N)*uint64(sh.K) >= s.minSparse
}

// checkFused checks f's operands against a product of m x n.
func checkFused(form Form, m, n int, f Fused) error {
	if f.Sparse && form == TransB {
		return fmt.Errorf("zero terms are skipped in A B and A^T B only")
	}
	switch f.Epi {
	case EpiNone:
	case EpiBias, EpiBiasReLU:
		return fit(operand{"bias", f.Aux, n})
	case EpiMask:
		return fit(operand{"Z", f.Aux, m * n})
	case EpiUpdate:
		if f.Step == nil || f.ColSum == nil {
			return fmt.Errorf("the fused update needs its step and the column sums")
		}
		// Room for the velocities up front: an append past the literal's
		// length would allocate at every step.
		ops := append(make([]operand, 0, 4), operand{"W", f.Aux, m * n}, operand{"b", f.Step.B, n})
		if f.Step.Hyper.Momentum != 0 {
			ops = append(ops, operand{"velocity of W", f.Step.VW, m * n}, operand{"velocity of b", f.Step.VB, n})
		}
		if err := fit(ops...); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown epilogue %d", f.Epi)
	}
	if f.ColSum != nil {
		if form != TransA {
			return fmt.Errorf("column sums of B come only with the A^T B form")
		}
		return fit(operand{"column sums", f.ColSum, n})
	}
	return nil
}

// blockFor is the register block of a shape: its tuned one, else that of
// the nearest tuned shape of its form, width and sparsity, else the
// default. A SparseA shape too small to skip zeros (runsSparse) runs dense,
// with the dense product's block.
func (s *Set) blockFor(sh Shape) Block {
	if b, ok := s.tuned[sh]; ok {
		return b
	}
	if b, ok := nearest(s.tuned, sh); ok {
		return b
	}
	if sh.SparseA && !s.runsSparse(sh) {
		sh.SparseA = false
		return s.blockFor(sh)
	}
	return s.regs.DefaultBlock(sh)
}

// GemmBlock is Gemm's C = op(A) op(B) with block b, whatever the tuning
// says: what the tuner times, with the kernel Gemm runs for the shape (for
// a SparseA shape, the term lists and the SPARSE build where that pays).
func (s *Set) GemmBlock(b Block, sh Shape, a, bm, c *cl.Buffer) error {
	if s.kind != GemmRegister {
		return fmt.Errorf("gemm block %v: the %v GEMM has no blocks", b, s.kind)
	}
	if !b.Valid() || (sh.TransA && sh.TransB) || (sh.SparseA && sh.TransB) {
		return fmt.Errorf("gemm block %+v, %v: not one gemm_reg.cl builds", b, sh)
	}
	if err := checkSizes(sh.M, sh.N, sh.K); err != nil {
		return fmt.Errorf("gemm %v: %w", sh, err)
	}
	if err := fit(operand{"A", a, sh.M * sh.K}, operand{"B", bm, sh.K * sh.N}, operand{"C", c, sh.M * sh.N}); err != nil {
		return fmt.Errorf("gemm %v: %w", sh, err)
	}
	return s.launchBlock(b, sh, a, bm, c, Fused{Sparse: sh.SparseA})
}

// launchReg launches gemm_reg.cl's kernel of blk (building it on first use).
func (s *Set) launchReg(blk Block, transA bool, m, n, k int, a *cl.Buffer, lda int, b *cl.Buffer, ldb int, c *cl.Buffer, f Fused) error {
	ks, err := s.regKernels(blk)
	if err != nil {
		return err
	}
	kern := ks[0]
	if transA {
		kern = ks[1]
	}
	if err := setRegArgs(kern, blk.KC, m, n, k, a, lda, b, ldb, c, f, c, 0); err != nil {
		return err
	}
	return s.enqueueReg(kern, blk, transA, m, n, k)
}

// enqueueReg launches gemm_reg_nn or gemm_reg_tn, its arguments set, on
// blk's grid: a work-item per block of C.
func (s *Set) enqueueReg(kern *cl.Kernel, blk Block, transA bool, m, n, k int) error {
	tn := 16 * blk.TNV
	rows, cols := (m+blk.TM-1)/blk.TM, (n+tn-1)/tn
	local := []int{1, 1}
	if transA && !thin(n) {
		// A^T B in groups along a row of blocks: a group then writes whole
		// rows of C (and of W and its velocity, with EpiUpdate) and reads
		// its rows of A^T once. The step took 3-6% less (Zen 5, and built
		// for AVX2; real steps alternated in blocks of 64). A group spans
		// groupColumns whatever n, since PoCL compiles a kernel again for
		// each work-group size: a group the width of each product's row
		// made the first tuning 4-5 s longer and measured no faster.
		local[1] = min(groupColumns/tn, max(1, s.dev.MaxWorkGroupSize))
	}
	return s.enqueue(kern, []int{rows, roundUp(cols, local[1])}, local, m, n, k)
}

// groupColumns is how many columns of C a work-group of an A^T B product
// spans (work-items past n return at once): the default network's widest
// layer.
const groupColumns = 512

// regArgs is the count of arguments gemm_reg.cl's kernels share (setRegArgs):
// Params, then nine buffers. gemm_reg_nt's panel comes after them.
const regArgs = 10

// regParams is gemm_reg.cl's Params, field for field: every field 4 bytes,
// so the layout has no padding on any device.
type regParams struct {
	m, n, k, kc, lda, ldb, ldc, epi, colSum, nesterov, keep, lengthsAt int32
	lr, mu, wd                                                         float32
}

// paramsBytes is the size of gemm_reg.cl's Params.
const paramsBytes = 15 * 4

// encode lays p out as gemm_reg.cl's Params, in the host's byte order,
// which is the device's for every buffer this package writes too.
func (p *regParams) encode(b *[paramsBytes]byte) cl.Struct {
	ints := [...]int32{p.m, p.n, p.k, p.kc, p.lda, p.ldb, p.ldc, p.epi, p.colSum, p.nesterov, p.keep, p.lengthsAt}
	for i, v := range ints {
		binary.NativeEndian.PutUint32(b[4*i:], uint32(v))
	}
	for i, v := range [...]float32{p.lr, p.mu, p.wd} {
		binary.NativeEndian.PutUint32(b[4*(len(ints)+i):], math.Float32bits(v))
	}
	return b[:]
}

// setRegArgs sets the regArgs arguments gemm_reg.cl's kernels share, with
// k-chunk kc, and for a SPARSE=1 build the term lists (any buffer and 0
// for the others; see launchSparse).
func setRegArgs(kern *cl.Kernel, kc, m, n, k int, a *cl.Buffer, lda int, b *cl.Buffer, ldb int, c *cl.Buffer, f Fused,
	terms *cl.Buffer, lengthsAt int) error {
	aux, colSum, wantSum := f.Aux, f.ColSum, int32(0)
	if aux == nil {
		aux = c // not read without an epilogue; the argument needs a buffer
	}
	if colSum != nil {
		wantSum = 1
	} else {
		colSum = c
	}
	// The step's operands: any buffer where the epilogue leaves them alone.
	st := FusedStep{VW: c, B: c, VB: c}
	if f.Step != nil {
		st = *f.Step
		if st.Hyper.Momentum == 0 {
			st.VW, st.VB = c, c
		}
	}
	h := st.Hyper
	if lengthsAt > math.MaxInt32 {
		return fmt.Errorf("term lists of %d ints: past the kernel's 32-bit index", lengthsAt)
	}
	p := regParams{m: int32(m), n: int32(n), k: int32(k), kc: int32(kc), lda: int32(lda), ldb: int32(ldb), ldc: int32(n),
		epi: int32(f.Epi), colSum: wantSum, nesterov: boolInt(h.Nesterov), keep: boolInt(st.Keep), lengthsAt: int32(lengthsAt),
		lr: h.LR, mu: h.Momentum, wd: h.WeightDecay}
	var buf [paramsBytes]byte
	return kern.SetArgs(p.encode(&buf), a, b, c, aux, colSum, st.VW, st.B, st.VB, terms)
}

// panelBytes bounds gemm_reg_nt's panel of B^T (all of k for one column
// block), and so does half the device's local memory: 64 KB at 256 x 64.
const panelBytes = 128 << 10

// ntGroup is the most work-items of gemm_reg_nt that share one packed
// panel: more rows per pack, at the cost of fewer groups to share out. 32
// covers a batch of 128 in one group with the AVX2 blocks (22 of 6 rows),
// whose dZ1 then took 206 us against 230 with groups of 16.
const ntGroup = 32

// launchNT launches gemm_reg_nt for C = A B^T, B stored n x k, with the
// block's program and all of k in one chunk. Where that panel does not fit,
// B is transposed into the scratch instead and the product run as an A B.
func (s *Set) launchNT(blk Block, m, n, k int, a *cl.Buffer, lda int, b *cl.Buffer, ldb int, c *cl.Buffer, f Fused) error {
	tn := 16 * blk.TNV
	if uint64(4*k*tn) > min(uint64(panelBytes), s.dev.LocalMem/2) {
		if err := s.ensureScratch(k * n); err != nil {
			return err
		}
		if err := s.Transpose(b, n, k, s.scratch); err != nil {
			return err
		}
		return s.launchReg(blk, false, m, n, k, a, lda, s.scratch, n, c, f)
	}
	ks, err := s.regKernels(blk)
	if err != nil {
		return err
	}
	if err := setRegArgs(ks[2], k, m, n, k, a, lda, b, ldb, c, f, c, 0); err != nil {
		return err
	}
	if err := ks[2].SetArgsFrom(regArgs, cl.Local(4*k*tn)); err != nil {
		return err
	}
	blocks := (m + blk.TM - 1) / blk.TM
	group := min(blocks, ntGroup, max(1, s.dev.MaxWorkGroupSize))
	return s.enqueue(ks[2], []int{roundUp(blocks, group), (n + tn - 1) / tn}, []int{group, 1}, m, n, k)
}

func boolInt(b bool) int32 {
	if b {
		return 1
	}
	return 0
}

// gemmTiled is the GPU path: the product, then the extras as their own kernels.
func (s *Set) gemmTiled(form Form, m, n, k int, a *cl.Buffer, lda int, b *cl.Buffer, ldb int, c *cl.Buffer, f Fused) error {
	set := &s.gemmTile[0]
	if thin(n) {
		set = &s.gemmTile[1]
	}
	kern := set[0]
	switch form {
	case TransA:
		kern = set[1]
	case TransB:
		kern = set[2]
	}
	if err := kern.SetArgs(m, n, k, a, lda, b, ldb, c, n); err != nil {
		return err
	}
	if err := s.enqueue(kern, []int{roundUp(n, s.tileEdge), roundUp(m, s.tileEdge)}, []int{s.tileEdge, s.tileEdge}, m, n, k); err != nil {
		return err
	}
	var err error
	switch f.Epi {
	case EpiBias:
		err = s.BiasAdd(c, f.Aux, m, n)
	case EpiBiasReLU:
		err = s.BiasReLU(c, f.Aux, m, n)
	case EpiMask:
		err = s.ReLUMask(c, f.Aux, m*n)
	}
	if err == nil && f.ColSum != nil {
		err = s.ColSum(b, k, n, f.ColSum)
	}
	if err == nil && f.Epi == EpiUpdate {
		err = s.Update(Param{Value: f.Aux, Grad: c, Velocity: f.Step.VW, N: m * n},
			Param{Value: f.Step.B, Grad: f.ColSum, Velocity: f.Step.VB, N: n}, f.Step.Hyper)
	}
	return err
}

func (s *Set) ensureScratch(floats int) error {
	return s.grow(&s.scratch, 4*floats, fmt.Sprintf("gemm scratch of %d floats", floats))
}

// grow makes *buf, one of the Set's own buffers, hold at least bytes. The
// new buffer is made before the old one goes: oclgrind 21.10 took a buffer
// made where a released one had been for never written, and reported what
// the kernels had since written to it as uninitialized. what names the
// buffer in an error.
func (s *Set) grow(buf **cl.Buffer, bytes int, what string) error {
	if *buf != nil && (*buf).Size() >= bytes {
		return nil
	}
	b, err := s.ctx.NewBuffer(bytes)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	(*buf).Release()
	*buf = b
	return nil
}
