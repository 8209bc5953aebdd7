package kernels_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/mnist-cl/mnist-cl/cpuref"
	"github.com/mnist-cl/mnist-cl/internal/cltest"
	"github.com/mnist-cl/mnist-cl/kernels"
)

// trainingShapes are the eight GEMMs of a 784-512-256-10 step at batch 128.
var trainingShapes = []kernels.Shape{
	{M: 128, N: 512, K: 784}, {TransA: true, M: 784, N: 512, K: 128},
	{M: 128, N: 256, K: 512}, {TransA: true, M: 512, N: 256, K: 128}, {M: 128, N: 512, K: 256},
	{M: 128, N: 10, K: 256}, {TransA: true, M: 256, N: 10, K: 128}, {M: 128, N: 256, K: 10},
}

// TestEveryTunedBlockIsCorrect runs every block Tune may choose for the
// training shapes on products of odd sizes of the same kind (thin or wide,
// both forms), so that a tuning can never pick a block that is wrong off
// the shapes it was timed on.
func TestEveryTunedBlockIsCorrect(t *testing.T) {
	s, ctx, q := newSet(t, kernels.GemmRegister)
	rng := rand.New(rand.NewPCG(cltest.Seed(t), 21))
	seen := map[kernels.Block]bool{}
	for _, sh := range trainingShapes {
		for _, b := range kernels.Candidates(sh) {
			if seen[b] {
				continue
			}
			seen[b] = true
			odd := [][3]int{{7, 37, 13}, {129, 65, 131}, {1, 100, 1}, {13, 129, 300}}
			if b.Compensated {
				odd = [][3]int{{7, 10, 13}, {129, 1, 257}, {1, 10, 784}, {37, 16, 5}}
			}
			for _, o := range odd {
				m, n, k := o[0], o[1], o[2]
				for _, ta := range []bool{false, true} {
					sh := kernels.Shape{TransA: ta, M: m, N: n, K: k}
					if err := s.UseTuning(kernels.Tuning{sh: b}); err != nil {
						t.Fatal(err)
					}
					ar, ac := m, k
					if ta {
						ar, ac = k, m
					}
					a32 := cltest.Float32(cltest.Rand(rng, ar, ac, -1, 1))
					b32 := cltest.Float32(cltest.Rand(rng, k, n, -1, 1))
					c := cltest.Buffer(t, ctx, q, m*n, nil)
					if err := s.Gemm(ta, false, m, n, k, cltest.Buffer(t, ctx, q, ar*ac, a32), cltest.Buffer(t, ctx, q, k*n, b32), c); err != nil {
						t.Fatal(err)
					}
					want := cpuref.MatMul(cpuref.Dense32(ar, ac, a32), cpuref.Dense32(k, n, b32), ta, false)
					check(t, fmt.Sprintf("block %+v on %v", b, sh), cltest.Read(t, q, c, m*n), want, tolForward)
				}
			}
		}
	}
	if len(seen) < 10 {
		t.Fatalf("only %d candidate blocks: the search space shrank", len(seen))
	}
}

func TestTuneAndCache(t *testing.T) {
	s, _, _ := newSet(t, kernels.GemmRegister)
	shapes := []kernels.Shape{{M: 9, N: 40, K: 33}, {TransA: true, M: 17, N: 10, K: 5}}
	tuning, choices, err := s.Tune(shapes, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if len(tuning) != 2 || len(choices) != 2 {
		t.Fatalf("tuning %v, choices %v", tuning, choices)
	}
	for _, c := range choices {
		if c.Candidates == 0 || c.Micros <= 0 || c.Failed != 0 {
			t.Errorf("%v: %+v", c.Shape, c)
		}
	}
	if err := s.UseTuning(tuning); err != nil {
		t.Fatal(err)
	}
	cache := &kernels.TuneCache{Path: filepath.Join(t.TempDir(), "sub", "tuning.json")}
	key, err := s.TuneKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := cache.Store(key, tuning); err != nil {
		t.Fatal(err)
	}
	got, missing, err := cache.Load(key, append(shapes, kernels.Shape{M: 1, N: 1, K: 1}))
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) != 1 || got[shapes[0]] != tuning[shapes[0]] || got[shapes[1]] != tuning[shapes[1]] {
		t.Fatalf("cache gave %v, missing %v; stored %v", got, missing, tuning)
	}
	if _, missing, _ := cache.Load(key+"x", shapes); len(missing) != 2 {
		t.Fatalf("another device's key found %d shapes", 2-len(missing))
	}
	// A damaged cache is measured again, not an error.
	if err := os.WriteFile(cache.Path, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, missing, err := cache.Load(key, shapes); err != nil || len(missing) != 2 {
		t.Fatalf("damaged cache: %v, missing %v", err, missing)
	}
	if err := s.UseTuning(kernels.Tuning{shapes[0]: {TM: 0, TNV: 9}}); err == nil {
		t.Fatal("an impossible block was accepted")
	}
}
