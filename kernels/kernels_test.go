package kernels_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/mnist-cl/mnist-cl/cl"
	"github.com/mnist-cl/mnist-cl/cpuref"
	"github.com/mnist-cl/mnist-cl/internal/cltest"
	"github.com/mnist-cl/mnist-cl/kernels"
)

// big reports whether a case of n multiply-adds is skipped in -short mode,
// the mode the kernel tests run in under oclgrind, which simulates every
// work-item one at a time: the small and odd sizes are the ones that find
// edge bugs, and they stay.
func big(n int) bool { return testing.Short() && n > 1<<16 }

// avx2 is the register file of an AVX2 CPU: the tests build its blocks on
// whatever CPU runs them (they are plain OpenCL C, correct anywhere).
var avx2 = kernels.Registers{Width: 8, Count: 16}

// sse is the register file of a CPU without AVX: 16 registers of 4 floats.
var sse = kernels.Registers{Width: 4, Count: 16}

// Tolerances on ||got - want||_F / ||want||_F, float32 device against
// float64: cpuref's.
const (
	tolForward  = cpuref.TolForward
	tolGradient = cpuref.TolGradient
)

func newSet(t testing.TB, kind kernels.GemmKind) (*kernels.Set, *cl.Context, *cl.Queue) {
	return newSetOpts(t, kernels.Options{Gemm: kind})
}

func newSetOpts(t testing.TB, opts kernels.Options) (*kernels.Set, *cl.Context, *cl.Queue) {
	t.Helper()
	ctx, q := cltest.Queue(t)
	s, err := kernels.New(ctx, q, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Release)
	return s, ctx, q
}

func check(t *testing.T, what string, got []float32, want *mat.Dense, tol float64) {
	t.Helper()
	for i, g := range got {
		if math.IsNaN(float64(g)) {
			t.Fatalf("%s: element %d is NaN (never written?)", what, i)
		}
	}
	if e := cpuref.RelErr(got, want); !(e <= tol) {
		t.Fatalf("%s: relative error %.3g > %.0g", what, e, tol)
	}
}

// gemmShapes mixes the training shapes with sizes that fit no tile: 1, prime,
// one past a block, and the thin N = 10 of the logits. Between them every
// register block regFor picks (1 to 4 vectors wide, compensated or not) meets
// both whole and ragged edges.
var gemmShapes = [][3]int{ // m, n, k
	{1, 1, 1}, {1, 10, 784}, {7, 37, 13}, {6, 64, 5}, {7, 65, 3}, {13, 1, 37},
	{129, 10, 256}, {37, 129, 1}, {12, 128, 17}, {128, 512, 784}, {784, 512, 128},
	{128, 256, 512}, {256, 10, 128}, {128, 784, 10},
	// Two and three float16 vectors wide (n in 17..48), full and ragged.
	{9, 31, 40}, {16, 17, 2}, {12, 32, 7}, {5, 48, 33}, {13, 47, 129},
}

func TestGemm(t *testing.T) {
	for _, opts := range []kernels.Options{{Gemm: kernels.GemmRegister}, {Gemm: kernels.GemmRegister, Registers: avx2},
		{Gemm: kernels.GemmRegister, Registers: sse}, {Gemm: kernels.GemmTiled}, {Gemm: kernels.GemmTiled, TileEdge: 8}} {
		t.Run(fmt.Sprintf("%s/tile%d/regs%v", opts.Gemm, opts.TileEdge, opts.Registers), func(t *testing.T) {
			s, ctx, q := newSetOpts(t, opts)
			rng := rand.New(rand.NewPCG(cltest.Seed(t), 2))
			for _, sh := range gemmShapes {
				m, n, k := sh[0], sh[1], sh[2]
				if big(m * n * k) {
					continue
				}
				for _, f := range []struct{ ta, tb bool }{{false, false}, {true, false}, {false, true}} {
					ar, ac, br, bc := cpuref.Operands(m, n, k, f.ta, f.tb)
					a32 := cltest.Float32(cltest.Rand(rng, ar, ac, -1, 1))
					b32 := cltest.Float32(cltest.Rand(rng, br, bc, -1, 1))
					a := cltest.Buffer(t, ctx, q, ar*ac, a32)
					b := cltest.Buffer(t, ctx, q, br*bc, b32)
					c := cltest.Buffer(t, ctx, q, m*n, nil)
					if err := s.Gemm(formOf(f.ta, f.tb), m, n, k, a, b, c); err != nil {
						t.Fatal(err)
					}
					want := cpuref.MatMul(cpuref.Dense32(ar, ac, a32), cpuref.Dense32(br, bc, b32), f.ta, f.tb)
					check(t, fmt.Sprintf("gemm transA=%v transB=%v %dx%dx%d", f.ta, f.tb, m, n, k),
						cltest.Read(t, q, c, m*n), want, tolForward)
				}
			}
		})
	}
}

// checkColumnSums runs A^T B (A^T: k x m) with db = the column sums of B
// (k x n) on random operands and holds C and db to cpuref; what prefixes
// the failure messages.
func checkColumnSums(t *testing.T, s *kernels.Set, ctx *cl.Context, q *cl.Queue, rng *rand.Rand, what string, m, n, k int) {
	t.Helper()
	at32 := cltest.Float32(cltest.Rand(rng, k, m, -1, 1))
	d32 := cltest.Float32(cltest.Rand(rng, k, n, -1, 1))
	at, d := cltest.Buffer(t, ctx, q, k*m, at32), cltest.Buffer(t, ctx, q, k*n, d32)
	out, db := cltest.Buffer(t, ctx, q, m*n, nil), cltest.Buffer(t, ctx, q, n, nil)
	if err := s.GemmFused(kernels.TransA, m, n, k, at, d, out, kernels.Fused{ColSum: db}); err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("%sA^T B with column sums %dx%dx%d", what, m, n, k)
	check(t, name, cltest.Read(t, q, out, m*n),
		cpuref.MatMul(cpuref.Dense32(k, m, at32), cpuref.Dense32(k, n, d32), true, false), tolForward)
	check(t, name+" db", cltest.Read(t, q, db, n), mat.NewDense(1, n, cpuref.ColSum(cpuref.Dense32(k, n, d32))), tolForward)
}

// TestColumnSumsEveryRegisterFile checks A^T B with db = column sums of B,
// which the first row of blocks sums in a pass of its own after its
// products, with the blocks of every register file (wide, narrow,
// compensated for thin outputs) at TestGemm's shapes. The tiled kernel and
// the default registers are TestGemmFused's.
func TestColumnSumsEveryRegisterFile(t *testing.T) {
	if testing.Short() {
		t.Skip("the default registers' sums are TestGemmFused's; oclgrind need not build two more files")
	}
	for _, regs := range []kernels.Registers{avx2, sse} {
		s, ctx, q := newSetOpts(t, kernels.Options{Gemm: kernels.GemmRegister, Registers: regs})
		rng := rand.New(rand.NewPCG(cltest.Seed(t), 5))
		for _, sh := range gemmShapes {
			checkColumnSums(t, s, ctx, q, rng, fmt.Sprintf("registers %+v: ", regs), sh[0], sh[1], sh[2])
		}
	}
}

// TestGemmFused checks every extra a GEMM can do as it writes C, on the
// shapes of TestGemm that are not too slow to repeat, for both kernels: the
// epilogues on A B and A B^T, and the column sums of B on A^T B.
func TestGemmFused(t *testing.T) {
	for _, kind := range []kernels.GemmKind{kernels.GemmRegister, kernels.GemmTiled} {
		t.Run(kind.String(), func(t *testing.T) {
			s, ctx, q := newSet(t, kind)
			rng := rand.New(rand.NewPCG(cltest.Seed(t), 3))
			for _, sh := range gemmShapes {
				m, n, k := sh[0], sh[1], sh[2]
				if m*n*k > 1<<22 || big(m*n*k) {
					continue
				}
				for _, tb := range []bool{false, true} {
					br, bc := k, n
					if tb {
						br, bc = n, k
					}
					a32 := cltest.Float32(cltest.Rand(rng, m, k, -1, 1))
					b32 := cltest.Float32(cltest.Rand(rng, br, bc, -1, 1))
					bias32 := cltest.Float32(cltest.Rand(rng, 1, n, -1, 1))
					// Z for the mask: about half its entries positive.
					z32 := cltest.Float32(cltest.Rand(rng, m, n, -1, 1))
					a, b := cltest.Buffer(t, ctx, q, m*k, a32), cltest.Buffer(t, ctx, q, br*bc, b32)
					bias, z := cltest.Buffer(t, ctx, q, n, bias32), cltest.Buffer(t, ctx, q, m*n, z32)
					prod := cpuref.MatMul(cpuref.Dense32(m, k, a32), cpuref.Dense32(br, bc, b32), false, tb)
					biasRow := cpuref.Dense32(1, n, bias32).RawRowView(0)
					for _, c := range []struct {
						f    kernels.Fused
						want *mat.Dense
					}{
						{kernels.Fused{Epi: kernels.EpiBias, Aux: bias}, cpuref.AddBias(prod, biasRow)},
						{kernels.Fused{Epi: kernels.EpiBiasReLU, Aux: bias}, cpuref.BiasReLU(prod, biasRow)},
						{kernels.Fused{Epi: kernels.EpiMask, Aux: z}, cpuref.ReLUMask(prod, cpuref.Dense32(m, n, z32))},
					} {
						out := cltest.Buffer(t, ctx, q, m*n, nil)
						if err := s.GemmFused(formOf(false, tb), m, n, k, a, b, out, c.f); err != nil {
							t.Fatal(err)
						}
						check(t, fmt.Sprintf("gemm transB=%v epilogue %d %dx%dx%d", tb, c.f.Epi, m, n, k),
							cltest.Read(t, q, out, m*n), c.want, tolForward)
					}
				}
				checkColumnSums(t, s, ctx, q, rng, "gemm ", m, n, k)
			}
			// Extras that do not fit the form or the buffers are refused.
			buf := cltest.Buffer(t, ctx, q, 64, nil)
			if err := s.GemmFused(kernels.NN, 4, 4, 4, buf, buf, buf, kernels.Fused{ColSum: buf}); err == nil {
				t.Error("column sums on A B accepted")
			}
			small := cltest.Buffer(t, ctx, q, 10, nil)
			if err := s.GemmFused(kernels.NN, 8, 8, 4, buf, buf, buf, kernels.Fused{Epi: kernels.EpiMask, Aux: small}); err == nil {
				t.Error("a 10-float mask accepted for an 8x8 product")
			}
			if err := s.GemmFused(kernels.NN, 4, 4, 4, buf, buf, buf, kernels.Fused{Epi: kernels.EpiBias}); err == nil {
				t.Error("a bias epilogue without a bias accepted")
			}
		})
	}
}

func TestGemmRejectsBadShapes(t *testing.T) {
	s, ctx, q := newSet(t, kernels.GemmAuto)
	small := cltest.Buffer(t, ctx, q, 10, nil)
	big := cltest.Buffer(t, ctx, q, 100, nil)
	if err := s.Gemm(kernels.NN, 5, 5, 5, small, big, big); err == nil {
		t.Fatal("A of 10 floats passed for a 5x5 product")
	}
	if err := s.Gemm(kernels.NN, 0, 5, 5, big, big, big); err == nil {
		t.Fatal("m = 0 passed")
	}
	if err := s.Gemm(kernels.Form(7), 5, 5, 5, big, big, big); err == nil {
		t.Fatal("form 7 passed")
	}
	// Sizes reach the kernels as 32-bit ints: a larger one is refused,
	// not wrapped (before the buffers' sizes are even looked at).
	if err := s.Gemm(kernels.NN, 1<<31, 1, 1, big, big, big); err == nil || !strings.Contains(err.Error(), "32-bit") {
		t.Fatalf("m = 2^31: %v", err)
	}
	if s.Kind() == kernels.GemmRegister {
		sh := kernels.Shape{M: 1, N: 1, K: 1 << 31}
		if err := s.GemmBlock(kernels.Block{TM: 4, TNV: 1}, sh, big, big, big); err == nil || !strings.Contains(err.Error(), "32-bit") {
			t.Fatalf("GemmBlock, k = 2^31: %v", err)
		}
	}
}

var rowsCols = [][2]int{{1, 1}, {1, 10}, {7, 37}, {129, 10}, {128, 512}, {3, 1}, {1000, 13}}

// forRowsCols runs f on each shape r x c of rowsCols, with a Set of the
// default GEMM and a generator on the PCG stream (the test's seed, stream).
func forRowsCols(t *testing.T, stream uint64, f func(s *kernels.Set, ctx *cl.Context, q *cl.Queue, rng *rand.Rand, r, c int)) {
	t.Helper()
	s, ctx, q := newSet(t, kernels.GemmAuto)
	rng := rand.New(rand.NewPCG(cltest.Seed(t), stream))
	for _, rc := range rowsCols {
		f(s, ctx, q, rng, rc[0], rc[1])
	}
}

func TestBiasAndActivation(t *testing.T) {
	forRowsCols(t, 4, func(s *kernels.Set, ctx *cl.Context, q *cl.Queue, rng *rand.Rand, r, c int) {
		z32 := cltest.Float32(cltest.Rand(rng, r, c, -1, 1))
		b32 := cltest.Float32(cltest.Rand(rng, 1, c, -1, 1))
		bias := make([]float64, c)
		for i, v := range b32 {
			bias[i] = float64(v)
		}
		zr := cltest.Buffer(t, ctx, q, r*c, z32)
		za := cltest.Buffer(t, ctx, q, r*c, z32)
		b := cltest.Buffer(t, ctx, q, c, b32)
		if err := s.BiasReLU(zr, b, r, c); err != nil {
			t.Fatal(err)
		}
		if err := s.BiasAdd(za, b, r, c); err != nil {
			t.Fatal(err)
		}
		check(t, fmt.Sprintf("bias_relu %dx%d", r, c), cltest.Read(t, q, zr, r*c), cpuref.BiasReLU(cpuref.Dense32(r, c, z32), bias), tolForward)
		check(t, fmt.Sprintf("bias_add %dx%d", r, c), cltest.Read(t, q, za, r*c), cpuref.AddBias(cpuref.Dense32(r, c, z32), bias), tolForward)
	})
}

func TestReLUMask(t *testing.T) {
	forRowsCols(t, 6, func(s *kernels.Set, ctx *cl.Context, q *cl.Queue, rng *rand.Rand, r, c int) {
		d32 := cltest.Float32(cltest.Rand(rng, r, c, -1, 1))
		// Z as a ReLU leaves it: about half exact zeros, the rest positive.
		z32 := cltest.Float32(cltest.Rand(rng, r, c, -1, 1))
		for i, v := range z32 {
			z32[i] = max(v, 0)
		}
		d := cltest.Buffer(t, ctx, q, r*c, d32)
		z := cltest.Buffer(t, ctx, q, r*c, z32)
		if err := s.ReLUMask(d, z, r*c); err != nil {
			t.Fatal(err)
		}
		check(t, fmt.Sprintf("relu_mask %dx%d", r, c), cltest.Read(t, q, d, r*c),
			cpuref.ReLUMask(cpuref.Dense32(r, c, d32), cpuref.Dense32(r, c, z32)), tolForward)
	})
}

// softmaxLosses pairs each loss kernel with its reference.
var softmaxLosses = []struct {
	name   string
	device func(s *kernels.Set, a kernels.LossArgs) error
	ref    func(logits *mat.Dense, labels []int) (yp, dZ *mat.Dense, loss []float64, correct []bool)
}{
	{"softmax_minus_labels", (*kernels.Set).SoftmaxMinusLabels, cpuref.SoftmaxMinusLabels},
	{"softmax_mse", (*kernels.Set).SoftmaxMSE, cpuref.SoftmaxMSE},
}

func TestSoftmaxLossesAndStats(t *testing.T) {
	for _, sl := range softmaxLosses {
		t.Run(sl.name, func(t *testing.T) { testSoftmaxLoss(t, sl.device, sl.ref) })
	}
}

func testSoftmaxLoss(t *testing.T,
	device func(s *kernels.Set, a kernels.LossArgs) error,
	ref func(logits *mat.Dense, labels []int) (yp, dZ *mat.Dense, loss []float64, correct []bool)) {
	s, ctx, q := newSet(t, kernels.GemmAuto)
	rng := rand.New(rand.NewPCG(cltest.Seed(t), 8))
	for _, rc := range [][2]int{{1, 10}, {7, 10}, {129, 10}, {5, 1}, {3, 37}} {
		r, c := rc[0], rc[1]
		// Rows offset far from zero check the max subtraction (exp(90)
		// overflows float32); spreads of up to 16 within a row keep every
		// probability a normal float32, where a relative error means something.
		lm := cltest.Rand(rng, r, c, -8, 8)
		for i := 0; i < r; i++ {
			off := -80 + 160*rng.Float64()
			for j := 0; j < c; j++ {
				lm.Set(i, j, lm.At(i, j)+off)
			}
		}
		l32 := cltest.Float32(lm)
		labels := make([]int, r)
		l32i := make([]int32, r)
		for i := range labels {
			labels[i] = rng.IntN(c)
			l32i[i] = int32(labels[i])
		}
		logits := cltest.Buffer(t, ctx, q, r*c, l32)
		lab, err := ctx.NewBuffer(4 * r)
		if err != nil {
			t.Fatal(err)
		}
		defer lab.Release()
		if err := q.WriteInt32(lab, 0, l32i); err != nil {
			t.Fatal(err)
		}
		yp, dz := cltest.Buffer(t, ctx, q, r*c, nil), cltest.Buffer(t, ctx, q, r*c, nil)
		loss, corr := cltest.Buffer(t, ctx, q, r, nil), cltest.Buffer(t, ctx, q, r, nil)
		stats := cltest.Buffer(t, ctx, q, 6, nil)
		if err := device(s, kernels.LossArgs{Logits: logits, Labels: lab, Rows: r, Cols: c, Batch: r, Yp: yp, DZ: dz, RowLoss: loss, RowCorrect: corr}); err != nil {
			t.Fatal(err)
		}
		if err := s.BatchStats(loss, corr, r, stats, 2); err != nil {
			t.Fatal(err)
		}
		wyp, wdz, wloss, wcorr := ref(cpuref.Dense32(r, c, l32), labels)
		name := fmt.Sprintf("softmax %dx%d", r, c)
		check(t, name+" Yp", cltest.Read(t, q, yp, r*c), wyp, tolForward)
		check(t, name+" dZ", cltest.Read(t, q, dz, r*c), wdz, tolForward)
		if e := cpuref.RelErrVec(cltest.Read(t, q, loss, r), wloss); !(e <= tolForward) {
			t.Fatalf("%s row loss: relative error %.3g", name, e)
		}
		var sumLoss, nCorrect float64
		for i, ok := range wcorr {
			sumLoss += wloss[i]
			if ok {
				nCorrect++
			}
		}
		got := cltest.Read(t, q, corr, r)
		for i, ok := range wcorr {
			if (got[i] == 1) != ok || (got[i] != 0 && got[i] != 1) {
				t.Fatalf("%s row %d: correct flag %v, want %v", name, i, got[i], ok)
			}
		}
		st := cltest.Read(t, q, stats, 6)
		if !math.IsNaN(float64(st[0])) || !math.IsNaN(float64(st[3])) {
			t.Fatalf("batch_stats wrote outside slot 2: %v", st)
		}
		if e := math.Abs(float64(st[4])-sumLoss) / max(sumLoss, 1); !(e <= tolForward) || float64(st[5]) != nCorrect {
			t.Fatalf("%s stats: got loss %v correct %v, want %v %v", name, st[4], st[5], sumLoss, nCorrect)
		}
	}
}

func TestColSum(t *testing.T) {
	for _, edge := range []int{16, 8} {
		testColSum(t, edge)
	}
}

func testColSum(t *testing.T, edge int) {
	s, ctx, q := newSetOpts(t, kernels.Options{TileEdge: edge})
	rng := rand.New(rand.NewPCG(cltest.Seed(t), 10))
	for _, rc := range append(rowsCols, [2]int{17, 33}, [2]int{4096, 3}) {
		r, c := rc[0], rc[1]
		d32 := cltest.Float32(cltest.Rand(rng, r, c, -1, 1))
		d := cltest.Buffer(t, ctx, q, r*c, d32)
		db := cltest.Buffer(t, ctx, q, c, nil)
		if err := s.ColSum(d, r, c, db); err != nil {
			t.Fatal(err)
		}
		want := cpuref.ColSum(cpuref.Dense32(r, c, d32))
		check(t, fmt.Sprintf("col_sum %dx%d (edge %d)", r, c, edge), cltest.Read(t, q, db, c), mat.NewDense(1, c, want), tolGradient)
	}
}

// TestGemmFusedUpdate checks EpiUpdate, dW = Z^T delta and db made and the
// optimiser step applied in the same launch, against cpuref's gradient and
// step for every optimiser over three steps (so the velocities carry), on
// both GEMMs and the AVX2 blocks, with and without keeping dW and db.
func TestGemmFusedUpdate(t *testing.T) {
	for _, opts := range []kernels.Options{{Gemm: kernels.GemmRegister}, {Gemm: kernels.GemmRegister, Registers: avx2}, {Gemm: kernels.GemmTiled}} {
		t.Run(fmt.Sprintf("%v/regs%v", opts.Gemm, opts.Registers), func(t *testing.T) {
			s, ctx, q := newSetOpts(t, opts)
			rng := rand.New(rand.NewPCG(cltest.Seed(t), 31))
			for i, h := range []kernels.Hyper{
				{LR: 0.05},
				{LR: 0.05, Momentum: 0.9},
				{LR: 0.05, Momentum: 0.9, Nesterov: true, WeightDecay: 1e-3},
			} {
				for _, sh := range [][3]int{{1, 1, 1}, {7, 37, 13}, {37, 10, 129}, {13, 65, 300}, {784, 512, 128}} {
					if big(sh[0] * sh[1] * sh[2]) {
						continue
					}
					fusedUpdateSteps(t, s, ctx, q, rng, h, sh, i%2 == 0)
				}
			}
		})
	}
}

// fusedUpdateSteps runs three EpiUpdate steps of layer shape sh (m inputs,
// n outputs, k rows) and checks W, b, the velocities and, with keep, dW, db.
// Each step's reference starts from the device's W, b and velocities, and
// the step's results are measured against the size of the terms that made
// them (checkStep): a velocity mu v + g that cancels to nearly zero in a
// tiny layer is as accurate as its terms, not as its own size.
func fusedUpdateSteps(t *testing.T, s *kernels.Set, ctx *cl.Context, q *cl.Queue, rng *rand.Rand, h kernels.Hyper, sh [3]int, keep bool) {
	m, n, k := sh[0], sh[1], sh[2]
	name := fmt.Sprintf("fused update %+v %dx%d, %d rows, keep %v", h, m, n, k, keep)
	w32, b32 := cltest.Float32(cltest.Rand(rng, m, n, -1, 1)), cltest.Float32(cltest.Rand(rng, 1, n, -1, 1))
	st := &kernels.FusedStep{Hyper: h, B: cltest.Buffer(t, ctx, q, n, b32), Keep: keep}
	w := cltest.Buffer(t, ctx, q, m*n, w32)
	if h.Momentum != 0 {
		st.VW, st.VB = cltest.Buffer(t, ctx, q, m*n, make([]float32, m*n)), cltest.Buffer(t, ctx, q, n, make([]float32, n))
	}
	dw, db := cltest.Buffer(t, ctx, q, m*n, nil), cltest.Buffer(t, ctx, q, n, nil)
	for step := range 3 {
		before := readStep(t, q, w, st, m, n)
		z32, d32 := cltest.Float32(cltest.Rand(rng, k, m, -1, 1)), cltest.Float32(cltest.Rand(rng, k, n, -1, 1))
		f := kernels.Fused{Epi: kernels.EpiUpdate, Aux: w, ColSum: db, Step: st}
		if err := s.GemmFused(kernels.TransA, m, n, k, cltest.Buffer(t, ctx, q, k*m, z32), cltest.Buffer(t, ctx, q, k*n, d32), dw, f); err != nil {
			t.Fatal(err)
		}
		g := cpuref.MatMul(cpuref.Dense32(k, m, z32), cpuref.Dense32(k, n, d32), true, false)
		gb := mat.NewDense(1, n, cpuref.ColSum(cpuref.Dense32(k, n, d32)))
		if keep {
			check(t, fmt.Sprintf("%s step %d dW", name, step), cltest.Read(t, q, dw, m*n), g, tolForward)
			check(t, fmt.Sprintf("%s step %d db", name, step), cltest.Read(t, q, db, n), gb, tolForward)
		}
		what, after := fmt.Sprintf("%s step %d", name, step), readStep(t, q, w, st, m, n)
		checkStep(t, what+" W", after[0], after[1], before[0], before[1], g, h, float64(h.WeightDecay))
		checkStep(t, what+" b", after[2], after[3], before[2], before[3], gb, h, 0)
	}
}

// readStep reads W, its velocity, b and its velocity (zeros without
// momentum) into float64 matrices.
func readStep(t *testing.T, q *cl.Queue, w *cl.Buffer, st *kernels.FusedStep, m, n int) [4]*mat.Dense {
	out := [4]*mat.Dense{cpuref.Dense32(m, n, cltest.Read(t, q, w, m*n)), mat.NewDense(m, n, nil),
		cpuref.Dense32(1, n, cltest.Read(t, q, st.B, n)), mat.NewDense(1, n, nil)}
	if st.VW != nil {
		out[1], out[3] = cpuref.Dense32(m, n, cltest.Read(t, q, st.VW, m*n)), cpuref.Dense32(1, n, cltest.Read(t, q, st.VB, n))
	}
	return out
}

// checkStep checks one parameter's step from p and velocity v with
// gradient g (gotP, gotV: the device's new p and v) against
// cpuref.Momentum, each relative to the norm of the sizes of the terms:
// mu |v| + |g| + wd |p| for the velocity, and |p| + lr (1 + mu) times that
// for p.
func checkStep(t *testing.T, what string, gotP, gotV, p, v, g *mat.Dense, h kernels.Hyper, wd float64) {
	t.Helper()
	lr, mu := float64(h.LR), float64(h.Momentum)
	want, vel := mat.DenseCopyOf(p), mat.DenseCopyOf(v)
	cpuref.Momentum(want, g, vel, lr, mu, wd, h.Nesterov)
	r, c := p.Dims()
	terms, size := mat.NewDense(r, c, nil), mat.NewDense(r, c, nil)
	terms.Apply(func(i, j int, _ float64) float64 {
		return mu*math.Abs(v.At(i, j)) + math.Abs(g.At(i, j)) + wd*math.Abs(p.At(i, j))
	}, terms)
	size.Apply(func(i, j int, _ float64) float64 { return math.Abs(p.At(i, j)) + lr*(1+mu)*terms.At(i, j) }, size)
	for _, c := range []struct {
		name            string
		got, want, size *mat.Dense
	}{{"", gotP, want, size}, {" velocity", gotV, vel, terms}} {
		var diff mat.Dense
		diff.Sub(c.got, c.want)
		if e := mat.Norm(&diff, 2) / math.Max(mat.Norm(c.size, 2), math.SmallestNonzeroFloat64); !(e <= tolForward) {
			t.Fatalf("%s%s: error %.3g of the terms' size > %.0g", what, c.name, e, tolForward)
		}
	}
}

// TestUpdate runs three steps of each optimiser, so the velocity carried
// from one step into the next is checked too, with W and b in one launch.
func TestUpdate(t *testing.T) {
	s, ctx, q := newSet(t, kernels.GemmAuto)
	rng := rand.New(rand.NewPCG(cltest.Seed(t), 12))
	for _, h := range []kernels.Hyper{
		{LR: 0.05},
		{LR: 0.05, WeightDecay: 5e-4},
		{LR: 0.05, Momentum: 0.9},
		{LR: 0.05, Momentum: 0.9, Nesterov: true, WeightDecay: 1e-3},
	} {
		for _, rc := range rowsCols {
			r, c := rc[0], rc[1]
			name := fmt.Sprintf("update %+v %dx%d", h, r, c)
			w32 := cltest.Float32(cltest.Rand(rng, r, c, -1, 1))
			b32 := cltest.Float32(cltest.Rand(rng, 1, c, -1, 1))
			w, b := cltest.Buffer(t, ctx, q, r*c, w32), cltest.Buffer(t, ctx, q, c, b32)
			var vw, vb *cl.Buffer
			if h.Momentum != 0 {
				vw, vb = cltest.Buffer(t, ctx, q, r*c, make([]float32, r*c)), cltest.Buffer(t, ctx, q, c, make([]float32, c))
			}
			want, wantB := cpuref.Dense32(r, c, w32), cpuref.Dense32(1, c, b32).RawRowView(0)
			velW, velB := mat.NewDense(r, c, nil), make([]float64, c)
			lr, mu, wd := float64(h.LR), float64(h.Momentum), float64(h.WeightDecay)
			for step := range 3 {
				dw32 := cltest.Float32(cltest.Rand(rng, r, c, -1, 1))
				db32 := cltest.Float32(cltest.Rand(rng, 1, c, -1, 1))
				dw, db := cltest.Buffer(t, ctx, q, r*c, dw32), cltest.Buffer(t, ctx, q, c, db32)
				if err := s.Update(kernels.Param{Value: w, Grad: dw, Velocity: vw, N: r * c}, kernels.Param{Value: b, Grad: db, Velocity: vb, N: c}, h); err != nil {
					t.Fatal(err)
				}
				cpuref.Momentum(want, cpuref.Dense32(r, c, dw32), velW, lr, mu, wd, h.Nesterov)
				cpuref.MomentumVec(wantB, cpuref.Dense32(1, c, db32).RawRowView(0), velB, lr, mu, 0, h.Nesterov)
				check(t, fmt.Sprintf("%s step %d W", name, step), cltest.Read(t, q, w, r*c), want, tolForward)
				check(t, fmt.Sprintf("%s step %d b", name, step), cltest.Read(t, q, b, c), mat.NewDense(1, c, wantB), tolForward)
				if h.Momentum != 0 {
					check(t, fmt.Sprintf("%s step %d vW", name, step), cltest.Read(t, q, vw, r*c), velW, tolForward)
				}
			}
		}
	}
}

func TestTranspose(t *testing.T) {
	forRowsCols(t, 15, func(s *kernels.Set, ctx *cl.Context, q *cl.Queue, rng *rand.Rand, r, c int) {
		in32 := cltest.Float32(cltest.Rand(rng, r, c, -1, 1))
		in := cltest.Buffer(t, ctx, q, r*c, in32)
		out := cltest.Buffer(t, ctx, q, r*c, nil)
		if err := s.Transpose(in, r, c, out); err != nil {
			t.Fatal(err)
		}
		tr := mat.DenseCopyOf(cpuref.Dense32(r, c, in32).T())
		check(t, fmt.Sprintf("transpose %dx%d", r, c), cltest.Read(t, q, out, r*c), tr, 0)
	})
}

// TestGather covers rows shorter than the kernel's 16-pixel vector (13),
// with a ragged tail (37) and MNIST's (784, whole vectors).
func TestGather(t *testing.T) {
	s, ctx, q := newSet(t, kernels.GemmAuto)
	for _, pixels := range []int{13, 37, 784} {
		gatherCase(t, s, ctx, q, pixels)
	}
}

func gatherCase(t *testing.T, s *kernels.Set, ctx *cl.Context, q *cl.Queue, pixels int) {
	const n = 50
	rng := rand.New(rand.NewPCG(cltest.Seed(t), 14))
	d := newAugmentData(t, ctx, q, rng, n, pixels)
	images, digits, perm, ib, db, pb, lb := d.images, d.digits, d.perm, d.ib, d.db, d.pb, d.lb
	for _, fr := range [][2]int{{0, 1}, {3, 7}, {43, 7}, {0, 50}} {
		first, rows := fr[0], fr[1]
		x := cltest.Buffer(t, ctx, q, rows*pixels, nil)
		if err := q.FillInt32(lb, -1, 0, n); err != nil {
			t.Fatal(err)
		}
		if err := s.Gather(ib, db, pb, first, rows, pixels, x, lb); err != nil {
			t.Fatal(err)
		}
		got := cltest.Read(t, q, x, rows*pixels)
		labels := make([]int32, rows)
		if err := q.ReadInt32(lb, 0, labels); err != nil {
			t.Fatal(err)
		}
		for r := 0; r < rows; r++ {
			src := int(perm[first+r])
			if labels[r] != int32(digits[src]) {
				t.Fatalf("gather first=%d row %d: label %d, want %d", first, r, labels[r], digits[src])
			}
			for p := 0; p < pixels; p++ {
				want := float32(images[src*pixels+p]) * (1.0 / 255.0)
				if d := math.Abs(float64(got[r*pixels+p] - want)); d > 1e-7 {
					t.Fatalf("gather first=%d row %d pixel %d: %v, want %v", first, r, p, got[r*pixels+p], want)
				}
			}
		}
	}
}

// TestCompensatedSums feeds 1e8 + 1 - 1e8, whose float32 running sum is 0, to
// every compensated path: the thin GEMM of both kernels (as A B, A^T B and
// A B^T) and col_sum. Each must return exactly 1.
func TestCompensatedSums(t *testing.T) {
	terms := []float32{1e8, 1, -1e8}
	ones := []float32{1, 1, 1}
	for _, opts := range []kernels.Options{{Gemm: kernels.GemmRegister}, {Gemm: kernels.GemmTiled}} {
		s, ctx, q := newSetOpts(t, opts)
		for _, f := range []struct{ ta, tb bool }{{false, false}, {true, false}, {false, true}} {
			// op(A) is the 1 x 3 row of terms whatever the storage; B is ones.
			a := cltest.Buffer(t, ctx, q, 3, terms)
			b := cltest.Buffer(t, ctx, q, 3, ones)
			c := cltest.Buffer(t, ctx, q, 1, nil)
			if err := s.Gemm(formOf(f.ta, f.tb), 1, 1, 3, a, b, c); err != nil {
				t.Fatal(err)
			}
			if got := cltest.Read(t, q, c, 1)[0]; got != 1 {
				t.Errorf("%s gemm transA=%v transB=%v: 1e8 + 1 - 1e8 = %v, want 1", opts.Gemm, f.ta, f.tb, got)
			}
		}
		for _, edge := range []int{16, 8} {
			s, ctx, q := newSetOpts(t, kernels.Options{TileEdge: edge})
			// 40 rows so every lane of the reduction tree gets terms.
			col := make([]float32, 40)
			col[0], col[17], col[39] = 1e8, 1, -1e8
			d := cltest.Buffer(t, ctx, q, 40, col)
			db := cltest.Buffer(t, ctx, q, 1, nil)
			if err := s.ColSum(d, 40, 1, db); err != nil {
				t.Fatal(err)
			}
			if got := cltest.Read(t, q, db, 1)[0]; got != 1 {
				t.Errorf("col_sum (edge %d): 1e8 + 1 - 1e8 = %v, want 1", edge, got)
			}
		}
	}
}

// formOf is the form of a product whose A and B are stored transposed or not.
func formOf(transA, transB bool) kernels.Form {
	switch {
	case transA:
		return kernels.TransA
	case transB:
		return kernels.TransB
	}
	return kernels.NN
}
