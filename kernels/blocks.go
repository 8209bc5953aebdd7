package kernels

import (
	"fmt"
	"math"
	"slices"

	"github.com/mnist-cl/mnist-cl/cl"
)

// Shape is one GEMM of the pass as Gemm runs it: C[M,N] = op(A) op(B),
// op(A) = A^T when TransA (gemm_reg_tn), op(B) = B^T when TransB
// (gemm_reg_nt, which packs B^T and so takes its blocks without k-chunks),
// never both. SparseA marks a product whose op(A) is the input batch,
// mostly zero pixels, which Gemm runs on its nonzero terms where that pays
// (Fused.Sparse, sparse.go): the blocks that run it fastest are not those
// of the dense product, so it is tuned, and cached, as a shape of its own.
type Shape struct {
	TransA, TransB bool
	M, N, K        int
	SparseA        bool
}

// Form is the shape's product form.
func (s Shape) Form() Form {
	switch {
	case s.TransA:
		return TransA
	case s.TransB:
		return TransB
	}
	return NN
}

// strides are the row strides of A and B as stored, packed: op(A) is
// M x K (A stored K x M when TransA), op(B) K x N (B stored N x K when
// TransB).
func (s Shape) strides() (lda, ldb int) {
	lda, ldb = s.K, s.N
	if s.TransA {
		lda = s.M
	}
	if s.TransB {
		ldb = s.K
	}
	return lda, ldb
}

// String names the shape as the benchmarks do: form M x K x N, and
// "sparse A" for SparseA.
func (s Shape) String() string {
	f := "AB"
	switch {
	case s.TransA:
		f = "AtB"
	case s.TransB:
		f = "ABt"
	}
	name := fmt.Sprintf("%s %dx%dx%d", f, s.M, s.K, s.N)
	if s.SparseA {
		name += " sparse A"
	}
	return name
}

// Block is a register-GEMM setting: TM rows by 16*TNV columns of C per
// work-item, k in chunks of KC (0: one chunk, as compensated blocks always
// take). TM, TNV and Compensated select a program; KC is an argument.
type Block struct {
	TM          int  `json:"tm"`
	TNV         int  `json:"tnv"`
	KC          int  `json:"kc"`
	Compensated bool `json:"compensated,omitempty"`
}

// String is the block as reports print it: "6 x 64, kc 128".
func (b Block) String() string {
	s := fmt.Sprintf("%d x %d", b.TM, 16*b.TNV)
	switch {
	case b.Compensated:
		return s + ", compensated"
	case b.KC == 0:
		return s + ", one k-chunk"
	}
	return fmt.Sprintf("%s, kc %d", s, b.KC)
}

// program is the part of a Block that needs its own build.
func (b Block) program() Block { return Block{TM: b.TM, TNV: b.TNV, Compensated: b.Compensated} }

// Valid reports whether gemm_reg.cl builds b.
func (b Block) Valid() bool {
	return b.TM >= 1 && b.TM <= 16 && b.TNV >= 1 && b.TNV <= 4 && b.KC >= 0 && !(b.Compensated && b.KC != 0)
}

// Tuning maps each shape to the block that measured fastest for it.
type Tuning map[Shape]Block

// Registers is what a CPU's SIMD unit offers the register GEMM: Width floats
// per vector register and Count registers. A float16 accumulator takes
// 16/Width of them (two on AVX2, one on AVX-512).
type Registers struct {
	Width, Count int
}

// RegistersOf derives the register file from what the device reports: its
// native float vector width (its preferred one where a driver gives no
// native). x86 has 16 vector registers up to AVX2 and 32 with AVX-512,
// whose vectors are the first to hold 16 floats; a wider vector than that
// is taken as AVX-512's.
func RegistersOf(dev cl.Device) Registers {
	w := dev.NativeFloatVector
	if w <= 1 {
		w = dev.PreferredFloatVector
	}
	w = min(max(w, 4), 16)
	if w >= 16 {
		return Registers{Width: 16, Count: 32}
	}
	return Registers{Width: w, Count: 16}
}

// perVector is the registers one float16 occupies.
func (r Registers) perVector() int { return (16 + r.Width - 1) / r.Width }

// fits reports whether a TM x 16*TNV block keeps its accumulators (twice as
// many when compensated), one row of B and the broadcast element of A in
// registers; a block that does not spills to the stack in its inner loop,
// and measured 2-3x slower as well as slower to compile.
func (r Registers) fits(tm, tnv int, compensated bool) bool {
	acc := tm * tnv * r.perVector()
	if compensated {
		acc *= 2
	}
	return acc+tnv*r.perVector()+1 <= r.Count
}

// tallest is the most rows, at most limit, that fit with tnv vectors; 0 if
// not one does.
func (r Registers) tallest(tnv int, compensated bool, limit int) int {
	tm := 0
	for t := 1; t <= limit && r.fits(t, tnv, compensated); t++ {
		tm = t
	}
	return tm
}

// defaultKC is the k-chunk of the built-in blocks: long enough that C is
// reread only every 256 terms (784 inputs: 4 chunks, within 5% of one chunk
// on Zen 5), short enough for blocked summation's accuracy (gemm_reg.cl).
const defaultKC = 256

// minRows is the fewest rows worth a block: each k loads TNV vectors of B
// and broadcasts TM elements of A into TM*TNV fmas, so fewer rows spend the
// loads on too little arithmetic.
const minRows = 4

// maxRows bounds the height of a wide block: taller ones leave ragged
// row-blocks at batch 128 and gained nothing measured.
const maxRows = 8

// ntWidest is the widest default of an A B^T in vectors. gemm_reg_nt reads
// its row of B from the group's packed panel, and at 64 columns ran slower
// than at 32 on Zen 5 with AVX-512 whatever the rows or the batch (dZ1 =
// dZ2 W2^T: 161-175 us at 6 x 64 against 134-145 at 8 x 32; at batch
// 1000, 960 against 800), where A B and A^T B ran as fast at either width.
const ntWidest = 2

// DefaultBlock is the block for sh without tuning, derived from the
// registers:
//   - thin outputs (16 columns or fewer) take the tallest compensated single
//     vector that fits;
//   - wider ones the widest row of vectors, up to what covers N (and
//     ntWidest for an A B^T), with which at least minRows rows fit, at the
//     tallest height that fits: 6 x 64 on AVX-512 (8 x 32 for A B^T) and
//     6 x 16 on AVX2;
//   - a product skipping zeros (SparseA) the widest with at least two rows
//     once cut to its registers (sparseBlock): 5 x 64 on AVX-512 and 2 x 32
//     on AVX2, where the cut 6 x 16 (4 x 16) ran X^T dZ1 on a real batch
//     in 375 us against 335.
func (r Registers) DefaultBlock(sh Shape) Block {
	if thin(sh.N) {
		return Block{TM: max(1, r.tallest(1, true, 12)), TNV: 1, Compensated: true}
	}
	cover := min(4, (sh.N+15)/16)
	if sh.TransB {
		cover = min(cover, ntWidest)
	}
	for tnv := cover; tnv > 1; tnv-- {
		b := Block{TM: r.tallest(tnv, false, maxRows), TNV: tnv, KC: defaultKC}
		if sh.SparseA && r.sparseBlock(b).TM >= 2 {
			return r.sparseBlock(b)
		}
		if !sh.SparseA && b.TM >= minRows {
			return b
		}
	}
	b := Block{TM: max(1, r.tallest(1, false, maxRows)), TNV: 1, KC: defaultKC}
	if sh.SparseA {
		return r.sparseBlock(b)
	}
	return b
}

// Candidates are the blocks worth timing for sh on these registers, the
// default first: at the default's width, the width that covers N (up to 64
// columns) and half that, the tallest block that fits and (but for A^T B)
// one two rows shorter, each at a few k-chunks (an A B^T, whose
// gemm_reg_nt sums k in one chunk, at that one only); thin outputs also
// try uncompensated blocks (Tune's check against cpuref decides whether
// blocked summation is accurate enough at the shape). Every one fits the
// registers, so none spills, and a width takes at most two builds. A
// product skipping zeros (SparseA) tries fewer: see sparseCandidates.
func (r Registers) Candidates(sh Shape) []Block {
	if sh.SparseA {
		dense := sh
		dense.SparseA = false
		return r.sparseCandidates(r.DefaultBlock(sh), r.Candidates(dense))
	}
	def := r.DefaultBlock(sh)
	kcs := []int{defaultKC}
	switch {
	case sh.TransB:
		kcs, def.KC = []int{0}, 0
	case sh.K > defaultKC/2:
		kcs = append(kcs, defaultKC/2, 0)
	}
	out := []Block{def}
	add := func(b Block) {
		for _, o := range out {
			if o == b {
				return
			}
		}
		out = append(out, b)
	}
	if def.Compensated {
		for _, tm := range []int{r.tallest(1, false, maxRows), minRows} {
			if tm > 0 && r.fits(tm, 1, false) {
				add(Block{TM: tm, TNV: 1, KC: kcs[0]})
			}
		}
		return out
	}
	cover := min(4, (sh.N+15)/16)
	for _, tnv := range []int{def.TNV, cover, cover / 2} {
		top := r.tallest(tnv, false, maxRows)
		heights := []int{top, top - 2}
		if sh.TransA {
			// gemm_reg_tn launches in groups along a row of blocks, and PoCL
			// compiles a kernel again for each group size, a second or so
			// per block tried; the shorter blocks never won (Zen 5, dW2:
			// 4 x 64 at 147 us and 6 x 32 at 142 against 6 x 64 at 127 and
			// 8 x 32 at 114; built for AVX2, 4 x 16 at 286-304 against
			// 6 x 16 at 243-257).
			heights = heights[:1]
		}
		for _, tm := range heights {
			if tnv < 1 || tm < 2 {
				continue
			}
			for _, kc := range kcs {
				add(Block{TM: tm, TNV: tnv, KC: kc})
			}
		}
	}
	return out
}

// sparseCandidates are the blocks a product skipping zeros tries: its
// default def, then from the dense candidates cands at each width only the
// tallest, cut to the registers as it will run (sparseBlock), each at its
// k-chunks. Every width is a SPARSE build of its own, compiled for the
// tuning alone (the dense ones serve the other shapes too), which is what
// made tuning take seconds more; the shorter blocks measured within a few
// percent of the tallest (Zen 5, real images: X W1 185-196 us against
// 183-192).
func (r Registers) sparseCandidates(def Block, cands []Block) []Block {
	tallest := map[int]int{}
	for _, b := range cands {
		tallest[b.TNV] = max(tallest[b.TNV], b.TM)
	}
	out := []Block{def}
	for _, b := range cands {
		if b.TM != tallest[b.TNV] {
			continue
		}
		if c := r.sparseBlock(b); !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// nearest is the tuned block of the shape of the same form, output width
// and sparsity closest to sh in log M and log K: a batch of 55,000 takes
// the block measured at 128 rather than being timed for minutes. ok is
// false when no tuned shape has sh's form, width and sparsity.
func nearest(t map[Shape]Block, sh Shape) (Block, bool) {
	best, found := math.Inf(1), Block{}
	ok := false
	for s, b := range t {
		if s.TransA != sh.TransA || s.TransB != sh.TransB || s.N != sh.N || s.SparseA != sh.SparseA {
			continue
		}
		d := math.Abs(math.Log(float64(s.M)/float64(sh.M))) + math.Abs(math.Log(float64(s.K)/float64(sh.K)))
		if d < best {
			best, found, ok = d, b, true
		}
	}
	return found, ok
}
