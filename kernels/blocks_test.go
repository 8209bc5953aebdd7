package kernels

import "testing"

// TestBlocksFitTheRegisters checks the blocks derived from each register
// file: the defaults are the ones measured best (6 x 64 with AVX-512's 32
// zmm registers, 8 x 32 for its A B^T and 5 x 64 skipping zeros; 6 x 16
// with AVX2's 16 ymm, 2 x 32 skipping zeros), and no candidate spills.
func TestBlocksFitTheRegisters(t *testing.T) {
	for _, c := range []struct {
		regs                   Registers
		wide, nt, sparse, thin Block
	}{
		{Registers{Width: 16, Count: 32}, Block{TM: 6, TNV: 4, KC: defaultKC}, Block{TM: 8, TNV: 2, KC: defaultKC},
			Block{TM: 5, TNV: 4, KC: defaultKC}, Block{TM: 12, TNV: 1, Compensated: true}},
		{Registers{Width: 8, Count: 16}, Block{TM: 6, TNV: 1, KC: defaultKC}, Block{TM: 6, TNV: 1, KC: defaultKC},
			Block{TM: 2, TNV: 2, KC: defaultKC}, Block{TM: 3, TNV: 1, Compensated: true}},
		{Registers{Width: 4, Count: 16}, Block{TM: 2, TNV: 1, KC: defaultKC}, Block{TM: 2, TNV: 1, KC: defaultKC},
			Block{TM: 2, TNV: 1, KC: defaultKC}, Block{TM: 1, TNV: 1, Compensated: true}},
	} {
		for _, d := range []struct {
			sh   Shape
			want Block
		}{
			{Shape{M: 128, N: 512, K: 784}, c.wide},
			{Shape{TransA: true, M: 784, N: 512, K: 128}, c.wide},
			{Shape{TransB: true, M: 128, N: 512, K: 256}, c.nt},
			{Shape{M: 128, N: 512, K: 784, SparseA: true}, c.sparse},
			{Shape{M: 128, N: 10, K: 256}, c.thin},
			{Shape{TransB: true, M: 128, N: 10, K: 256}, c.thin},
		} {
			if got := c.regs.DefaultBlock(d.sh); got != d.want {
				t.Errorf("%+v: default for %v %v, want %v", c.regs, d.sh, got, d.want)
			}
		}
		programs := map[Block]bool{}
		for _, sh := range []Shape{{M: 128, N: 512, K: 784}, {TransA: true, M: 784, N: 512, K: 128}, {M: 128, N: 10, K: 256}, {M: 7, N: 37, K: 3},
			{TransB: true, M: 128, N: 512, K: 256}, {TransB: true, M: 128, N: 256, K: 10}} {
			cands := c.regs.Candidates(sh)
			def := c.regs.DefaultBlock(sh)
			if sh.TransB {
				def.KC = 0 // gemm_reg_nt sums k in one chunk
			}
			if len(cands) == 0 || cands[0] != def {
				t.Errorf("%+v %v: candidates %v do not start with the default", c.regs, sh, cands)
			}
			for _, b := range cands {
				if sh.M != 7 { // the training shapes
					programs[b.program()] = true
				}
				if !b.Valid() || (b.TM > 1 && !c.regs.fits(b.TM, b.TNV, b.Compensated)) {
					t.Errorf("%+v %v: candidate %v does not fit", c.regs, sh, b)
				}
				if sh.TransB && b.KC != 0 {
					t.Errorf("%+v %v: candidate %v has a k-chunk gemm_reg_nt would ignore", c.regs, sh, b)
				}
			}
		}
		// Builds are what tuning spends its time on.
		if len(programs) > 8 {
			t.Errorf("%+v: %d programs to build", c.regs, len(programs))
		}
	}
}

func TestNearest(t *testing.T) {
	a, b := Block{TM: 6, TNV: 4}, Block{TM: 4, TNV: 2}
	tuned := map[Shape]Block{
		{M: 128, N: 512, K: 784}:               a,
		{M: 64, N: 512, K: 784}:                b,
		{TransA: true, M: 784, N: 512, K: 128}: b,
	}
	for _, c := range []struct {
		sh   Shape
		want Block
		ok   bool
	}{
		{Shape{M: 55000, N: 512, K: 784}, a, true},
		{Shape{M: 50, N: 512, K: 784}, b, true},
		{Shape{TransA: true, M: 784, N: 512, K: 55000}, b, true},
		{Shape{M: 128, N: 256, K: 784}, Block{}, false},
		// A sparse product takes no dense shape's block, nor the reverse.
		{Shape{M: 128, N: 512, K: 784, SparseA: true}, Block{}, false},
	} {
		if got, ok := nearest(tuned, c.sh); got != c.want || ok != c.ok {
			t.Errorf("nearest(%v) = %v, %v; want %v, %v", c.sh, got, ok, c.want, c.ok)
		}
	}
}

// TestBlockForSparse checks where a product skipping zeros gets its block:
// its own tuning, else the nearest sparse one, else the sparse default,
// never the dense product's, unless it is too small to skip zeros and
// runs dense.
func TestBlockForSparse(t *testing.T) {
	dense, sparse := Shape{M: 128, N: 512, K: 784}, Shape{M: 128, N: 512, K: 784, SparseA: true}
	a, b := Block{TM: 8, TNV: 2}, Block{TM: 4, TNV: 4, KC: 128}
	s := &Set{regs: Registers{Width: 16, Count: 32}, tuned: map[Shape]Block{dense: a}, minSparse: minSparseWork}
	if got, want := s.blockFor(sparse), s.regs.DefaultBlock(sparse); got != want {
		t.Errorf("untuned sparse product: block %v, want the sparse default %v", got, want)
	}
	small := Shape{M: 2, N: 512, K: 784, SparseA: true} // runs dense
	if got := s.blockFor(small); got != a {
		t.Errorf("untuned sparse product too small to skip zeros: block %v, want the dense one's %v", got, a)
	}
	s.tuned[sparse] = b
	bigger := sparse
	bigger.M = 55000
	for _, sh := range []Shape{sparse, bigger} {
		if got := s.blockFor(sh); got != b {
			t.Errorf("%v: block %v, want the sparse tuning's %v", sh, got, b)
		}
	}
	if got := s.blockFor(dense); got != a {
		t.Errorf("dense product: block %v, want %v", got, a)
	}
	if got, want := sparse.String(), "AB 128x784x512 sparse A"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// TestSparseCandidates checks the blocks a product skipping zeros tries:
// the default's, cut, first; each as it will run (already cut); a build
// per width at most, so that tuning them compiles little.
func TestSparseCandidates(t *testing.T) {
	for _, r := range []Registers{{Width: 16, Count: 32}, {Width: 8, Count: 16}, {Width: 4, Count: 16}} {
		for _, sh := range []Shape{{M: 128, N: 512, K: 784, SparseA: true}, {TransA: true, M: 784, N: 512, K: 128, SparseA: true}} {
			cands := r.Candidates(sh)
			if len(cands) == 0 || cands[0] != r.DefaultBlock(sh) {
				t.Fatalf("registers %+v, %v: candidates %v, want the default's cut first", r, sh, cands)
			}
			widths := map[int]int{}
			for _, b := range cands {
				if r.sparseBlock(b) != b {
					t.Errorf("registers %+v, %v: candidate %v runs as %v", r, sh, b, r.sparseBlock(b))
				}
				if tm, ok := widths[b.TNV]; ok && tm != b.TM {
					t.Errorf("registers %+v, %v: two builds %d and %d rows high at width %d", r, sh, tm, b.TM, b.TNV)
				}
				widths[b.TNV] = b.TM
			}
		}
	}
}

// TestSparseBlock checks the cut of a sparse product's block: the
// accumulators, a row of B and the TM broadcasts of A fit the registers.
func TestSparseBlock(t *testing.T) {
	avx2, avx512 := Registers{Width: 8, Count: 16}, Registers{Width: 16, Count: 32}
	for _, c := range []struct {
		r        Registers
		in, want Block
	}{
		{avx2, Block{TM: 6, TNV: 1, KC: 256}, Block{TM: 4, TNV: 1, KC: 256}},
		{avx2, Block{TM: 4, TNV: 1}, Block{TM: 4, TNV: 1}},
		{avx512, Block{TM: 6, TNV: 4}, Block{TM: 5, TNV: 4}},
		{avx512, Block{TM: 8, TNV: 2, KC: 128}, Block{TM: 8, TNV: 2, KC: 128}},
		{Registers{Width: 4, Count: 16}, Block{TM: 2, TNV: 2}, Block{TM: 1, TNV: 2}},
	} {
		if got := c.r.sparseBlock(c.in); got != c.want {
			t.Errorf("registers %+v: sparseBlock(%v) = %v, want %v", c.r, c.in, got, c.want)
		}
	}
}
