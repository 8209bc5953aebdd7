package kernels_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/mnist-cl/mnist-cl/cl"
	"github.com/mnist-cl/mnist-cl/internal/cltest"
	"github.com/mnist-cl/mnist-cl/kernels"
)

// trainingGemms are the eight products of one batch-128 step of the
// 784-512-256-10 network, as m, n, k of op(A) op(B).
var trainingGemms = []struct {
	name   string
	ta, tb bool
	m, n   int
	k      int
}{
	{"Z1=XW1", false, false, 128, 512, 784},
	{"Z2=Z1W2", false, false, 128, 256, 512},
	{"Z3=Z2W3", false, false, 128, 10, 256},
	{"dW3=Z2tD3", true, false, 256, 10, 128},
	{"dZ2=D3W3t", false, true, 128, 256, 10},
	{"dW2=Z1tD2", true, false, 512, 256, 128},
	{"dZ1=D2W2t", false, true, 128, 512, 256},
	{"dW1=XtD1", true, false, 784, 512, 128},
}

// BenchmarkGemm times each training GEMM, queued b.N times and waited for
// once, as training runs them. Names carry the shape m x n x k.
func BenchmarkGemm(b *testing.B) {
	for _, kind := range []kernels.GemmKind{kernels.GemmRegister, kernels.GemmTiled} {
		s, ctx, q := newSet(b, kind)
		rng := rand.New(rand.NewPCG(1, 1))
		for _, g := range trainingGemms {
			b.Run(fmt.Sprintf("%s/%s_%dx%dx%d", kind, g.name, g.m, g.n, g.k), func(b *testing.B) {
				a := cltest.Buffer(b, ctx, q, g.m*g.k, cltest.Float32(cltest.Rand(rng, g.m, g.k, -1, 1)))
				bb := cltest.Buffer(b, ctx, q, g.k*g.n, cltest.Float32(cltest.Rand(rng, g.k, g.n, -1, 1)))
				c := cltest.Buffer(b, ctx, q, g.m*g.n, nil)
				if err := s.Gemm(formOf(g.ta, g.tb), g.m, g.n, g.k, a, bb, c); err != nil {
					b.Fatal(err)
				}
				if err := q.Finish(); err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := s.Gemm(formOf(g.ta, g.tb), g.m, g.n, g.k, a, bb, c); err != nil {
						b.Fatal(err)
					}
				}
				if err := q.Finish(); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(2*float64(g.m)*float64(g.n)*float64(g.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// BenchmarkTranspose times the transposes of W2 and W3 that the A B^T
// products of a step (dZ1, dZ2) need on the register path.
func BenchmarkTranspose(b *testing.B) {
	s, ctx, q := newSet(b, kernels.GemmRegister)
	rng := rand.New(rand.NewPCG(1, 1))
	for _, sh := range [][2]int{{512, 256}, {256, 10}} {
		rows, cols := sh[0], sh[1]
		b.Run(fmt.Sprintf("%dx%d", rows, cols), func(b *testing.B) {
			in := cltest.Buffer(b, ctx, q, rows*cols, cltest.Float32(cltest.Rand(rng, rows, cols, -1, 1)))
			out := cltest.Buffer(b, ctx, q, rows*cols, nil)
			if err := s.Transpose(in, rows, cols, out); err != nil {
				b.Fatal(err)
			}
			if err := q.Finish(); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := s.Transpose(in, rows, cols, out); err != nil {
					b.Fatal(err)
				}
			}
			if err := q.Finish(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(8*float64(rows*cols)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
		})
	}
}

// BenchmarkGemmFusedUpdate times the dW products of W2 and W1 with the
// optimiser step fused into their epilogue (Nesterov with weight decay, as
// training runs them) and without it: the difference is what the update
// of W, b and their velocities costs in the launch.
func BenchmarkGemmFusedUpdate(b *testing.B) {
	s, ctx, q := newSet(b, kernels.GemmRegister)
	zeros := func(n int) *cl.Buffer { return cltest.Buffer(b, ctx, q, n, make([]float32, n)) }
	for _, sh := range [][3]int{{512, 256, 128}, {784, 512, 128}} {
		m, n, k := sh[0], sh[1], sh[2]
		a, d, c := zeros(k*m), zeros(k*n), zeros(m*n)
		st := &kernels.FusedStep{Hyper: kernels.Hyper{LR: 0.1, Momentum: 0.9, Nesterov: true, WeightDecay: 5e-4},
			VW: zeros(m * n), B: zeros(n), VB: zeros(n)}
		for _, f := range []struct {
			name  string
			fused kernels.Fused
		}{{"product", kernels.Fused{}}, {"product+update", kernels.Fused{Epi: kernels.EpiUpdate, Aux: zeros(m * n), ColSum: zeros(n), Step: st}}} {
			b.Run(fmt.Sprintf("%dx%dx%d/%s", m, n, k, f.name), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					if err := s.GemmFused(kernels.TransA, m, n, k, a, d, c, f.fused); err != nil {
						b.Fatal(err)
					}
				}
				if err := q.Finish(); err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}
