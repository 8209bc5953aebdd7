package kernels_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/mnist-cl/mnist-cl/cpuref"
	"github.com/mnist-cl/mnist-cl/internal/cltest"
	"github.com/mnist-cl/mnist-cl/kernels"
)

// images is a batch like the input layer's: rows x cols, each row a blob of
// nonzero values in a window of its columns (a digit in its frame), the
// rest exactly zero. Rows in [blank0, blank1) are all zero, so a block of
// rows can have no terms at all; one zero is negative, which counts as a
// term (its product is zero anyway).
func images(rng *rand.Rand, rows, cols, blank0, blank1 int) []float32 {
	x := make([]float32, rows*cols)
	for r := 0; r < rows; r++ {
		if r >= blank0 && r < blank1 {
			continue
		}
		lo := rng.IntN(cols)
		hi := min(cols, lo+1+rng.IntN(max(1, cols/3)))
		for c := lo; c < hi; c++ {
			if rng.Float64() < 0.7 {
				x[r*cols+c] = float32(rng.Float64())
			}
		}
	}
	if len(x) > 2 {
		x[len(x)/2] = float32(math.Copysign(0, -1))
	}
	return x
}

// TestGemmSparse checks the products that skip op(A)'s zero terms (the
// input layer's Z1 = f(X W1 + b1) and dW1 = X^T delta with db) against
// cpuref at every shape of TestGemm, for every register file: blocks with
// and without terms, batch 1, ragged edges, and k-chunks shorter than a
// list (products 16 or fewer columns wide run every term, and are checked
// as such). Outputs start poisoned (NaN), so a block that wrote nothing
// fails.
func TestGemmSparse(t *testing.T) {
	for _, regs := range []kernels.Registers{{}, avx2, sse} {
		if testing.Short() && regs != (kernels.Registers{}) {
			continue // oclgrind: one register file is enough to find a bad access
		}
		s, ctx, q := newSetOpts(t, kernels.Options{Gemm: kernels.GemmRegister, Registers: regs, MinSparseWork: 1})
		rng := rand.New(rand.NewPCG(cltest.Seed(t), 11))
		for _, sh := range gemmShapes {
			m, n, k := sh[0], sh[1], sh[2]
			if big(m * n * k) {
				continue
			}
			name := fmt.Sprintf("registers %+v: %dx%dx%d", regs, m, n, k)
			// A B: X is m x k, rows 1..3 blank.
			x32 := images(rng, m, k, 1, 4)
			w32 := cltest.Float32(cltest.Rand(rng, k, n, -1, 1))
			b32 := cltest.Float32(cltest.Rand(rng, 1, n, -1, 1))
			x, w, bias := cltest.Buffer(t, ctx, q, m*k, x32), cltest.Buffer(t, ctx, q, k*n, w32), cltest.Buffer(t, ctx, q, n, b32)
			z := cltest.Buffer(t, ctx, q, m*n, nil)
			if err := s.GemmFused(kernels.NN, m, n, k, x, w, z, kernels.Fused{Epi: kernels.EpiBiasReLU, Aux: bias, Sparse: true}); err != nil {
				t.Fatal(err)
			}
			prod := cpuref.MatMul(cpuref.Dense32(m, k, x32), cpuref.Dense32(k, n, w32), false, false)
			check(t, name+" f(X W + b)", cltest.Read(t, q, z, m*n), cpuref.BiasReLU(prod, cpuref.Dense32(1, n, b32).RawRowView(0)), tolForward)

			// A^T B: X is k x m (the batch along k), rows 0..1 blank.
			xt32 := images(rng, k, m, 0, 2)
			d32 := cltest.Float32(cltest.Rand(rng, k, n, -1, 1))
			xt, d := cltest.Buffer(t, ctx, q, k*m, xt32), cltest.Buffer(t, ctx, q, k*n, d32)
			dw, db := cltest.Buffer(t, ctx, q, m*n, nil), cltest.Buffer(t, ctx, q, n, nil)
			if err := s.GemmFused(kernels.TransA, m, n, k, xt, d, dw, kernels.Fused{ColSum: db, Sparse: true}); err != nil {
				t.Fatal(err)
			}
			check(t, name+" X^T delta", cltest.Read(t, q, dw, m*n),
				cpuref.MatMul(cpuref.Dense32(k, m, xt32), cpuref.Dense32(k, n, d32), true, false), tolForward)
			check(t, name+" db", cltest.Read(t, q, db, n), mat.NewDense(1, n, cpuref.ColSum(cpuref.Dense32(k, n, d32))), tolForward)
		}
		if !cltest.BuiltSparse(s) {
			t.Errorf("registers %+v: no SPARSE=1 program was built: the products ran every term", regs)
		}
	}
}

// TestGemmSparseOnlyWherePays checks that by default a small or thin
// product runs every term even when asked to skip zeros (its list would
// cost more than it saves), and a large wide one does not.
func TestGemmSparseOnlyWherePays(t *testing.T) {
	if testing.Short() {
		t.Skip("a training-size product; oclgrind would simulate it for minutes")
	}
	s, ctx, q := newSet(t, kernels.GemmRegister)
	rng := rand.New(rand.NewPCG(cltest.Seed(t), 13))
	run := func(m, n, k int) {
		x := cltest.Buffer(t, ctx, q, m*k, images(rng, m, k, 0, 0))
		w := cltest.Buffer(t, ctx, q, k*n, cltest.Float32(cltest.Rand(rng, k, n, -1, 1)))
		z := cltest.Buffer(t, ctx, q, m*n, nil)
		if err := s.GemmFused(kernels.NN, m, n, k, x, w, z, kernels.Fused{Sparse: true}); err != nil {
			t.Fatal(err)
		}
	}
	run(7, 37, 784)
	run(128, 10, 784)
	if cltest.BuiltSparse(s) {
		t.Error("a 7 x 37 x 784 or a 10-wide product skipped its zero terms")
	}
	run(128, 64, 784)
	if !cltest.BuiltSparse(s) {
		t.Error("a 128 x 64 x 784 product ran every term")
	}
}

// TestGemmSparseAllZero runs both sparse forms on an all-zero A, where
// every block's list is empty: C must still be written (zeros, then the
// epilogue), not left as it was.
func TestGemmSparseAllZero(t *testing.T) {
	s, ctx, q := newSetOpts(t, kernels.Options{Gemm: kernels.GemmRegister, MinSparseWork: 1})
	const m, n, k = 13, 37, 29
	rng := rand.New(rand.NewPCG(cltest.Seed(t), 12))
	b32 := cltest.Float32(cltest.Rand(rng, 1, n, -1, 1))
	zeros := cltest.Buffer(t, ctx, q, m*k, make([]float32, m*k))
	w := cltest.Buffer(t, ctx, q, k*n, cltest.Float32(cltest.Rand(rng, k, n, -1, 1)))
	bias := cltest.Buffer(t, ctx, q, n, b32)
	z := cltest.Buffer(t, ctx, q, m*n, nil)
	if err := s.GemmFused(kernels.NN, m, n, k, zeros, w, z, kernels.Fused{Epi: kernels.EpiBias, Aux: bias, Sparse: true}); err != nil {
		t.Fatal(err)
	}
	check(t, "0 W + b", cltest.Read(t, q, z, m*n), cpuref.AddBias(mat.NewDense(m, n, nil), cpuref.Dense32(1, n, b32).RawRowView(0)), tolForward)
	dw := cltest.Buffer(t, ctx, q, m*n, nil)
	if err := s.GemmFused(kernels.TransA, m, n, k, zeros, w, dw, kernels.Fused{Sparse: true}); err != nil {
		t.Fatal(err)
	}
	for i, v := range cltest.Read(t, q, dw, m*n) {
		if v != 0 {
			t.Fatalf("0^T B: element %d is %v", i, v)
		}
	}
	if err := s.GemmFused(kernels.TransB, m, n, k, zeros, w, z, kernels.Fused{Sparse: true}); err == nil {
		t.Error("a sparse A B^T accepted")
	}
	nt := kernels.Shape{TransB: true, M: m, N: n, K: k, SparseA: true}
	if err := s.GemmBlock(kernels.Block{TM: 4, TNV: 1}, nt, zeros, w, z); err == nil {
		t.Error("GemmBlock accepted a sparse A B^T")
	}
}
