package tuner_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mnist-cl/mnist-cl/cpuref"
	"github.com/mnist-cl/mnist-cl/internal/cltest"
	"github.com/mnist-cl/mnist-cl/internal/tuner"
	"github.com/mnist-cl/mnist-cl/kernels"
)

// trainingShapes are the eight GEMMs of a 784-512-256-10 step at batch 128.
var trainingShapes = []kernels.Shape{
	{M: 128, N: 512, K: 784}, {TransA: true, M: 784, N: 512, K: 128},
	{M: 128, N: 256, K: 512}, {TransA: true, M: 512, N: 256, K: 128}, {TransB: true, M: 128, N: 512, K: 256},
	{M: 128, N: 10, K: 256}, {TransA: true, M: 256, N: 10, K: 128}, {TransB: true, M: 128, N: 256, K: 10},
}

// registerFiles are AVX-512's and AVX2's: whichever CPU runs the tests, the
// blocks of both are built and checked.
var registerFiles = []kernels.Registers{{Width: 16, Count: 32}, {Width: 8, Count: 16}}

func newSet(t *testing.T, regs kernels.Registers) *kernels.Set {
	t.Helper()
	ctx, q := cltest.Queue(t)
	s, err := kernels.New(ctx, q, kernels.Options{Gemm: kernels.GemmRegister, Registers: regs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Release)
	return s
}

// TestEveryCandidateIsCorrect runs every block Tune may choose for the
// training shapes, on either register file, on products of odd sizes of the
// same kind (thin or wide, all three forms), so that a tuning can never pick a
// block that is wrong off the shapes it was timed on.
func TestEveryCandidateIsCorrect(t *testing.T) {
	for _, regs := range registerFiles {
		t.Run(fmt.Sprintf("%dx%d", regs.Count, regs.Width), func(t *testing.T) {
			s := newSet(t, regs)
			ctx, q := s.Context(), s.Queue()
			rng := rand.New(rand.NewPCG(cltest.Seed(t), 21))
			seen := map[kernels.Block]bool{}
			for _, sh := range trainingShapes {
				for _, b := range regs.Candidates(sh) {
					if seen[b] {
						continue
					}
					seen[b] = true
					odd := [][3]int{{7, 37, 13}, {129, 65, 131}, {1, 100, 1}, {13, 129, 300}}
					if b.Compensated {
						odd = [][3]int{{7, 10, 13}, {129, 1, 257}, {1, 10, 784}, {37, 16, 5}}
					}
					for _, o := range odd {
						for _, f := range []kernels.Form{kernels.NN, kernels.TransA, kernels.TransB} {
							ta, tb := f.Trans()
							sh := kernels.Shape{TransA: ta, TransB: tb, M: o[0], N: o[1], K: o[2]}
							ar, ac, br, bc := cpuref.Operands(sh.M, sh.N, sh.K, ta, tb)
							a32 := cltest.Float32(cltest.Rand(rng, ar, ac, -1, 1))
							b32 := cltest.Float32(cltest.Rand(rng, br, bc, -1, 1))
							c := cltest.Buffer(t, ctx, q, sh.M*sh.N, nil)
							if err := s.GemmBlock(b, sh, cltest.Buffer(t, ctx, q, ar*ac, a32), cltest.Buffer(t, ctx, q, br*bc, b32), c); err != nil {
								t.Fatal(err)
							}
							want := cpuref.MatMul(cpuref.Dense32(ar, ac, a32), cpuref.Dense32(br, bc, b32), ta, tb)
							if e := cpuref.RelErr(cltest.Read(t, q, c, sh.M*sh.N), want); !(e <= 1e-5) {
								t.Fatalf("block %v on %v: relative error %.3g", b, sh, e)
							}
						}
					}
				}
			}
			if len(seen) < 6 {
				t.Fatalf("only %d candidate blocks: the search space shrank", len(seen))
			}
		})
	}
}

func TestTuneAndCache(t *testing.T) {
	s := newSet(t, kernels.Registers{})
	shapes := []kernels.Shape{{M: 9, N: 40, K: 33}, {TransA: true, M: 17, N: 10, K: 5}}
	cache := &tuner.Cache{Path: filepath.Join(t.TempDir(), "sub", "tuning.json")}
	choices, err := tuner.Apply(context.Background(), s, cache, shapes, false, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if len(choices) != 2 {
		t.Fatalf("choices %v", choices)
	}
	for _, c := range choices {
		if c.Candidates == 0 || c.Micros <= 0 || c.Failed != 0 {
			t.Errorf("%v: %+v", c.Shape, c)
		}
	}
	key, err := s.TuneKey()
	if err != nil {
		t.Fatal(err)
	}
	got, missing, err := cache.Load(key, append(shapes, kernels.Shape{M: 1, N: 1, K: 1}))
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) != 1 || got[shapes[0]] != choices[0].Block || got[shapes[1]] != choices[1].Block {
		t.Fatalf("cache gave %v, missing %v; chose %v", got, missing, choices)
	}
	// A second Apply finds everything cached and measures nothing.
	if again, err := tuner.Apply(context.Background(), s, cache, shapes, false, t.Logf); err != nil || len(again) != 0 {
		t.Fatalf("second apply measured %v (%v)", again, err)
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
	// So is a cache that parses but holds a block the kernel cannot build:
	// Apply measures that shape again and runs.
	if err := cache.Store(key, kernels.Tuning{shapes[0]: {TM: 0, TNV: 9}, shapes[1]: choices[1].Block}); err != nil {
		t.Fatal(err)
	}
	if _, missing, err := cache.Load(key, shapes); err != nil || len(missing) != 1 || missing[0] != shapes[0] {
		t.Fatalf("cache with an impossible block: %v, missing %v", err, missing)
	}
	if again, err := tuner.Apply(context.Background(), s, cache, shapes, false, t.Logf); err != nil || len(again) != 1 {
		t.Fatalf("apply over an impossible cached block: measured %v (%v)", again, err)
	}
}

// TestCancelStoresNothing cancels tuning after its first steps: Apply
// returns the context's error and leaves the cache as it was.
func TestCancelStoresNothing(t *testing.T) {
	s := newSet(t, kernels.Registers{})
	cache := &tuner.Cache{Path: filepath.Join(t.TempDir(), "tuning.json")}
	for _, steps := range []int{0, 3} {
		ctx := cltest.StepsContext(steps)
		_, err := tuner.Apply(ctx, s, cache, trainingShapes[:2], false, nil)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("after %d steps: %v, want the context's error", steps, err)
		}
		if _, err := os.Stat(cache.Path); !os.IsNotExist(err) {
			t.Fatalf("after %d steps the cache was written (%v)", steps, err)
		}
	}
}

// TestHugeShapeTimedAtStandIn tunes a batch of 55,000 rows: it is timed
// with M and K cut to tuner.MaxSide, and its block is one of the stand-in's
// candidates.
func TestHugeShapeTimedAtStandIn(t *testing.T) {
	s := newSet(t, kernels.Registers{})
	sh := kernels.Shape{TransA: true, M: 784, N: 512, K: 55000}
	tuning, choices, err := tuner.Tune(context.Background(), s, []kernels.Shape{sh}, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	b, ok := tuning[sh]
	if !ok || len(choices) != 1 {
		t.Fatalf("tuning %v", tuning)
	}
	found := false
	for _, c := range s.Registers().Candidates(kernels.Shape{TransA: true, M: 784, N: 512, K: tuner.MaxSide}) {
		found = found || c == b
	}
	if !found {
		t.Fatalf("block %v is not a candidate of the stand-in", b)
	}
}

// TestTuneSparse tunes the input layer's two products as a step runs them,
// skipping X's zeros: on image-like operands, with the SPARSE build, cached
// under their own names, apart from the dense products of the same sizes.
func TestTuneSparse(t *testing.T) {
	s := newSet(t, kernels.Registers{})
	shapes := []kernels.Shape{{M: 128, N: 512, K: 784, SparseA: true}, {TransA: true, M: 784, N: 512, K: 128, SparseA: true}}
	_, choices, err := tuner.Tune(context.Background(), s, shapes, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if len(choices) != 2 || choices[0].Candidates == 0 || choices[1].Candidates == 0 {
		t.Fatalf("choices %+v", choices)
	}
	if !cltest.BuiltSparse(s) {
		t.Error("no SPARSE=1 program was built: the sparse shapes were timed dense")
	}
	cache := &tuner.Cache{Path: filepath.Join(t.TempDir(), "tuning.json")}
	if _, err := tuner.Apply(context.Background(), s, cache, shapes, false, nil); err != nil {
		t.Fatal(err)
	}
	key, err := s.TuneKey()
	if err != nil {
		t.Fatal(err)
	}
	dense := []kernels.Shape{shapes[0], shapes[1]}
	for i := range dense {
		dense[i].SparseA = false
	}
	if _, missing, err := cache.Load(key, append(dense, shapes...)); err != nil || !slices.Equal(missing, dense) {
		t.Fatalf("cache: %v, missing %v; want only the dense shapes missing", err, missing)
	}
	b, err := os.ReadFile(cache.Path)
	if err != nil || !strings.Contains(string(b), `"AB 128x784x512 sparse A"`) {
		t.Fatalf("cache file (%v) lacks the sparse shape's name:\n%s", err, b)
	}
}

// TestEveryCandidateIsCorrectSparse runs every block Tune may choose for the
// input layer's products on their SPARSE build (cut to the registers) at odd
// sizes, on blank and inked rows, against cpuref.
func TestEveryCandidateIsCorrectSparse(t *testing.T) {
	for _, regs := range registerFiles {
		t.Run(fmt.Sprintf("%dx%d", regs.Count, regs.Width), func(t *testing.T) {
			ctx, q := cltest.Queue(t)
			s, err := kernels.New(ctx, q, kernels.Options{Gemm: kernels.GemmRegister, Registers: regs, MinSparseWork: 1})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(s.Release)
			rng := rand.New(rand.NewPCG(cltest.Seed(t), 22))
			for _, train := range []kernels.Shape{trainingShapes[0], trainingShapes[1]} {
				for _, b := range regs.Candidates(train) {
					for _, o := range [][3]int{{7, 37, 13}, {129, 65, 131}} {
						sh := kernels.Shape{TransA: train.TransA, M: o[0], N: o[1], K: o[2], SparseA: true}
						ar, ac, br, bc := cpuref.Operands(sh.M, sh.N, sh.K, sh.TransA, false)
						a32 := cltest.Float32(cltest.Rand(rng, ar, ac, -1, 1))
						for i := range a32 {
							if i/ac%3 == 1 || rng.IntN(4) > 0 {
								a32[i] = 0 // every third row blank, three in four of the rest
							}
						}
						b32 := cltest.Float32(cltest.Rand(rng, br, bc, -1, 1))
						c := cltest.Buffer(t, ctx, q, sh.M*sh.N, nil)
						if err := s.GemmBlock(b, sh, cltest.Buffer(t, ctx, q, ar*ac, a32), cltest.Buffer(t, ctx, q, br*bc, b32), c); err != nil {
							t.Fatal(err)
						}
						want := cpuref.MatMul(cpuref.Dense32(ar, ac, a32), cpuref.Dense32(br, bc, b32), sh.TransA, false)
						if e := cpuref.RelErr(cltest.Read(t, q, c, sh.M*sh.N), want); !(e <= 1e-5) {
							t.Fatalf("block %v on %v: relative error %.3g", b, sh, e)
						}
					}
				}
			}
			if !cltest.BuiltSparse(s) {
				t.Error("no SPARSE=1 program was built: the blocks ran every term")
			}
		})
	}
}

// TestSparseCandidatesWhereSparse checks that a sparse shape tries the cut
// sparse blocks only where Gemm will skip zeros for it: at a batch of 7 the
// input layer's product runs dense, and tries the dense product's blocks.
func TestSparseCandidatesWhereSparse(t *testing.T) {
	s := newSet(t, kernels.Registers{})
	for _, c := range []struct {
		rows   int
		sparse bool
	}{{7, false}, {128, true}} {
		sh := kernels.Shape{M: c.rows, N: 512, K: 784, SparseA: true}
		dense := sh
		dense.SparseA = false
		got, want := s.Candidates(sh), s.Registers().Candidates(sh)
		if !c.sparse {
			want = s.Registers().Candidates(dense)
		}
		if !slices.Equal(got, want) {
			t.Errorf("batch %d: candidates %v, want %v", c.rows, got, want)
		}
		if c.sparse && slices.Equal(got, s.Registers().Candidates(dense)) {
			t.Errorf("batch %d: the dense product's candidates for a product skipping zeros", c.rows)
		}
	}
}
