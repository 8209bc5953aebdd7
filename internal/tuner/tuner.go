package tuner

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/mnist-cl/mnist-cl/cl"
	"github.com/mnist-cl/mnist-cl/cpuref"
	"github.com/mnist-cl/mnist-cl/kernels"
	"gonum.org/v1/gonum/mat"
)

// MaxSide bounds the M and K a shape is timed at: a larger one is timed at
// a stand-in cut to MaxSide, whose block it then takes. The blocks depend
// on N and on the register file; past a few hundred rows M and K only
// lengthen the loops.
const MaxSide = 1024

// tolerance is the relative error (Frobenius, against float64) a block
// must meet on the shape to be eligible: the forward tolerance.
const tolerance = cpuref.TolForward

// Choice is one shape's outcome, for reports.
type Choice struct {
	Shape              kernels.Shape
	Block, Default     kernels.Block
	Micros, DefaultUs  float64
	Candidates, Failed int
	Seconds            float64 // wall time of the shape's tuning, builds included
	// Timed is every candidate that computed correctly, with its time.
	Timed []Timed
}

// Timed is one candidate's time on a shape (see timeGemm and confirm).
type Timed struct {
	Block  kernels.Block
	Micros float64
}

// Tune times the candidate blocks of each shape on s's device and returns
// the fastest of each. log, when not nil, gets a line per shape. It returns
// ctx's error, and no tuning, as soon as it sees ctx cancelled. On a Set
// without the register GEMM it returns an empty Tuning.
func Tune(ctx context.Context, s *kernels.Set, shapes []kernels.Shape, log func(format string, args ...any)) (kernels.Tuning, []Choice, error) {
	out := kernels.Tuning{}
	if s.Kind() != kernels.GemmRegister {
		return out, nil, nil
	}
	var choices []Choice
	rng := rand.New(rand.NewPCG(1, 1))
	for _, sh := range shapes {
		start := time.Now()
		ch, err := tuneShape(ctx, s, sh, rng)
		if err != nil {
			return nil, nil, fmt.Errorf("tune %v: %w", sh, err)
		}
		ch.Seconds = time.Since(start).Seconds()
		out[sh] = ch.Block
		choices = append(choices, ch)
		if log != nil {
			log("tuned %-18v %v: %.0f us (default %v: %.0f us), %d candidates in %.1fs",
				sh, ch.Block, ch.Micros, ch.Default, ch.DefaultUs, ch.Candidates, ch.Seconds)
		}
	}
	return out, choices, nil
}

// standIn is the shape sh is timed at: M and K cut to MaxSide.
func standIn(sh kernels.Shape) kernels.Shape {
	sh.M, sh.K = min(sh.M, MaxSide), min(sh.K, MaxSide)
	return sh
}

// operands are a shape's random A and B with cpuref's product, on the
// device and on the host.
type operands struct {
	a, b, c *cl.Buffer
	want    *mat.Dense
	got     []float32
	poison  []float32 // NaN, written over C before each check
}

func (o *operands) release() {
	o.a.Release()
	o.b.Release()
	o.c.Release()
}

func newOperands(s *kernels.Set, sh kernels.Shape, rng *rand.Rand) (*operands, error) {
	ar, ac := sh.M, sh.K
	if sh.TransA {
		ar, ac = sh.K, sh.M
	}
	br, bc := sh.K, sh.N
	if sh.TransB {
		br, bc = sh.N, sh.K
	}
	a32, b32 := random(rng, ar*ac), random(rng, br*bc)
	if sh.SparseA {
		a32 = strokes(rng, ar, ac) // A's rows are images in both forms
	}
	want := cpuref.MatMul(cpuref.Dense32(ar, ac, a32), cpuref.Dense32(br, bc, b32), sh.TransA, sh.TransB)
	o := &operands{got: make([]float32, sh.M*sh.N), want: want, poison: make([]float32, sh.M*sh.N)}
	for i := range o.poison {
		o.poison[i] = float32(math.NaN())
	}
	var err error
	upload := func(data []float32, n int) *cl.Buffer {
		if err != nil {
			return nil
		}
		var b *cl.Buffer
		if b, err = s.Context().NewBuffer(4 * n); err == nil && data != nil {
			err = s.Queue().WriteFloat32(b, 0, data)
		}
		return b
	}
	o.a, o.b, o.c = upload(a32, len(a32)), upload(b32, len(b32)), upload(nil, sh.M*sh.N)
	if err != nil {
		o.release()
		return nil, err
	}
	return o, nil
}

func random(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = rng.Float32()*2 - 1
	}
	return x
}

// check runs blk once on poisoned C and compares it with the product. The
// poison is written, not filled: oclgrind 21.10 marks a filled buffer
// uninitialized (testdata/oclgrind/fill_uninitialized.c).
func (o *operands) check(s *kernels.Set, blk kernels.Block, sh kernels.Shape) (float64, error) {
	if err := s.Queue().WriteFloat32(o.c, 0, o.poison); err != nil {
		return 0, err
	}
	if err := s.GemmBlock(blk, sh, o.a, o.b, o.c); err != nil {
		return 0, err
	}
	if err := s.Queue().ReadFloat32(o.c, 0, o.got); err != nil {
		return 0, err
	}
	return cpuref.RelErr(o.got, o.want), nil
}

// tuneShape checks and times every candidate block of sh, then times them
// all again (confirm).
func tuneShape(ctx context.Context, s *kernels.Set, sh kernels.Shape, rng *rand.Rand) (Choice, error) {
	if sh.M <= 0 || sh.N <= 0 || sh.K <= 0 {
		return Choice{}, fmt.Errorf("sizes must be positive")
	}
	at := standIn(sh)
	o, err := newOperands(s, at, rng)
	if err != nil {
		return Choice{}, err
	}
	defer o.release()
	cands := s.Candidates(at)
	ch := Choice{Shape: sh, Default: cands[0]}
	best := math.Inf(1)
	for _, cand := range cands {
		if err := ctx.Err(); err != nil {
			return ch, err
		}
		e, err := o.check(s, cand, at)
		var be *cl.BuildError
		if errors.As(err, &be) || (err == nil && !(e <= tolerance)) {
			ch.Failed++ // a block that fails to build is skipped like a wrong one
			continue
		}
		if err != nil {
			return ch, err
		}
		us, err := timeGemm(ctx, s, cand, at, o)
		if err != nil {
			return ch, err
		}
		ch.Candidates++
		ch.Timed = append(ch.Timed, Timed{cand, us})
	}
	if ch.Candidates == 0 {
		return ch, fmt.Errorf("no candidate block computed the product correctly")
	}
	if err := confirm(ctx, s, at, o, ch.Timed); err != nil {
		return ch, err
	}
	for _, c := range ch.Timed {
		if c.Block == ch.Default {
			ch.DefaultUs = c.Micros
		}
		if c.Micros < best {
			best, ch.Block, ch.Micros = c.Micros, c.Block, c.Micros
		}
	}
	return ch, nil
}

// confirm times every candidate a second time, last first, and keeps each
// one's better time. In one pass the first block timed after each build
// came out slow (the device's first tens of milliseconds after a build ran
// slow on PoCL, Zen 5 under KVM): 6 x 64 at kc 256 took 187 us on Z2's
// shape where the same program took 112-118 at other k-chunks, and kc 256
// and one chunk measured 130 and 127 us alternated. The second pass, in
// the other order, times each block long after its build, which also made
// a warm-up before the first timing needless; it costs about 20 ms a
// candidate, where a build costs hundreds.
func confirm(ctx context.Context, s *kernels.Set, sh kernels.Shape, o *operands, timed []Timed) error {
	for i := len(timed) - 1; i >= 0; i-- {
		us, err := timeGemm(ctx, s, timed[i].Block, sh, o)
		if err != nil {
			return err
		}
		timed[i].Micros = min(timed[i].Micros, us)
	}
	return nil
}

// queue runs blk's product n times back to back and waits once, as a step
// runs its launches.
func queue(s *kernels.Set, blk kernels.Block, sh kernels.Shape, o *operands, n int) error {
	for range n {
		if err := s.GemmBlock(blk, sh, o.a, o.b, o.c); err != nil {
			return err
		}
	}
	return s.Queue().Finish()
}

// timeGemm is the least over seven runs of the microseconds per GEMM when
// enough are queued to take about 2 ms and waited for once, as a step does.
// The least, not the median: on a shared machine the runs are bimodal (a
// run the other core interrupts takes half as long again), and the fastest
// is the block's own speed.
func timeGemm(ctx context.Context, s *kernels.Set, blk kernels.Block, sh kernels.Shape, o *operands) (float64, error) {
	reps := 1
	var runs []float64
	for len(runs) < 7 {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		start := time.Now()
		if err := queue(s, blk, sh, o, reps); err != nil {
			return 0, err
		}
		el := time.Since(start)
		if el < 2*time.Millisecond && reps < 1<<12 {
			reps *= 2
			continue
		}
		runs = append(runs, float64(el.Microseconds())/float64(reps))
	}
	return slices.Min(runs), nil
}

// Apply gives s the blocks for shapes: from cache where it has them for
// s's device, else measured now and added to the cache (every shape is
// measured again when force). It returns the choices it measured. A
// cancelled ctx stops it before anything is stored; a cache that cannot be
// written is reported through log, and the blocks measured are used anyway.
func Apply(ctx context.Context, s *kernels.Set, cache *Cache, shapes []kernels.Shape, force bool, log func(format string, args ...any)) ([]Choice, error) {
	if s.Kind() != kernels.GemmRegister {
		return nil, nil
	}
	key, err := s.TuneKey()
	if err != nil {
		return nil, err
	}
	t, missing, err := cache.Load(key, shapes)
	if err != nil {
		return nil, err
	}
	if force {
		t, missing = kernels.Tuning{}, shapes
	}
	var choices []Choice
	if len(missing) > 0 {
		var found kernels.Tuning
		if found, choices, err = Tune(ctx, s, missing, log); err != nil {
			return nil, err
		}
		for sh, b := range found {
			t[sh] = b
		}
		if err := cache.Store(key, found); err != nil && log != nil {
			log("warning: %v (the next run measures again)", err)
		}
	}
	return choices, s.UseTuning(t)
}
