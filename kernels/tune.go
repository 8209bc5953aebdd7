package kernels

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/mnist-cl/mnist-cl/cl"
	"github.com/mnist-cl/mnist-cl/cpuref"
	"github.com/mnist-cl/mnist-cl/internal/atomicfile"
)

// Shape is one GEMM of the pass as Gemm sees it, after an A B^T has become
// A B with a transposed B: C[M,N] = op(A) B, op(A) = A^T when TransA.
type Shape struct {
	TransA  bool
	M, N, K int
}

// String names the shape as the benchmarks do: form M x K x N.
func (s Shape) String() string {
	f := "AB"
	if s.TransA {
		f = "AtB"
	}
	return fmt.Sprintf("%s %dx%dx%d", f, s.M, s.K, s.N)
}

// Block is a register-GEMM setting: TM rows by 16*TNV columns of C per
// work-item, k in chunks of KC (0 for the compensated single chunk).
type Block struct {
	TM          int  `json:"tm"`
	TNV         int  `json:"tnv"`
	KC          int  `json:"kc"`
	Compensated bool `json:"compensated,omitempty"`
}

func (b Block) config() regConfig {
	return regConfig{tm: b.TM, tnv: b.TNV, kc: b.KC, compensated: b.Compensated}
}

func blockOf(c regConfig) Block {
	return Block{TM: c.tm, TNV: c.tnv, KC: c.kc, Compensated: c.compensated}
}

// Tuning maps each shape to the block that measured fastest for it.
type Tuning map[Shape]Block

// Choice is one shape's outcome of Tune, for reports.
type Choice struct {
	Shape              Shape
	Block, Default     Block
	Micros, DefaultUs  float64
	Candidates, Failed int
}

// Candidates are the blocks Tune tries for a shape.
func Candidates(sh Shape) []Block {
	var out []Block
	for _, c := range candidates(sh) {
		out = append(out, blockOf(c))
	}
	return out
}

// candidates are the blocks tried for a shape: a few heights and k-chunks
// at the widths that fit N without many dead columns. Thin outputs keep
// their compensated single-vector block (see regFor) and only vary height.
func candidates(sh Shape) []regConfig {
	def := regFor(sh.N)
	if def.compensated {
		// Uncompensated thin blocks run several times faster; Tune's
		// check against cpuref at the shape itself decides whether
		// blocked summation is accurate enough there (at K in the
		// hundreds it is; a one-unit layer over 784 inputs was not).
		return []regConfig{{tm: 4, tnv: 1, compensated: true}, {tm: 8, tnv: 1, compensated: true}, def,
			{tm: 2, tnv: 1, kc: 64}, {tm: 4, tnv: 1, kc: 64}, {tm: 8, tnv: 1, kc: 64}}
	}
	var out []regConfig
	for _, tnv := range []int{1, 2, 4} {
		if 16*tnv > (sh.N+15)/16*16 && tnv > def.tnv {
			continue
		}
		for _, tm := range []int{2, 4, 6} {
			if tm*tnv > 24 { // AVX-512 has 32 registers; more accumulators spill
				continue
			}
			for _, kc := range []int{64, 128, 256} {
				if kc > 64 && sh.K <= 64 {
					continue
				}
				out = append(out, regConfig{tm: tm, tnv: tnv, kc: kc})
			}
		}
	}
	return out
}

// Tune times every candidate block on each shape and returns the fastest,
// each candidate first checked against cpuref on random operands (a block
// that builds but computes wrongly is skipped, never chosen). log, when not
// nil, gets a line per shape. Only the register GEMM is tuned; on a tiled
// Set Tune returns an empty Tuning.
func (s *Set) Tune(shapes []Shape, log func(format string, args ...any)) (Tuning, []Choice, error) {
	out := Tuning{}
	if s.kind != GemmRegister {
		return out, nil, nil
	}
	var choices []Choice
	rng := rand.New(rand.NewPCG(1, 1))
	for _, sh := range shapes {
		start := time.Now()
		ch, err := s.tuneShape(sh, rng)
		if err != nil {
			return nil, nil, fmt.Errorf("tune %v: %w", sh, err)
		}
		out[sh] = ch.Block
		choices = append(choices, ch)
		if log != nil {
			log("tuned %-18v %+v: %.0f us (default %+v: %.0f us), %d candidates in %.1fs",
				sh, ch.Block, ch.Micros, ch.Default, ch.DefaultUs, ch.Candidates, time.Since(start).Seconds())
		}
	}
	return out, choices, nil
}

func (s *Set) tuneShape(sh Shape, rng *rand.Rand) (Choice, error) {
	if sh.M <= 0 || sh.N <= 0 || sh.K <= 0 {
		return Choice{}, fmt.Errorf("sizes must be positive")
	}
	ar, ac := sh.M, sh.K
	if sh.TransA {
		ar, ac = sh.K, sh.M
	}
	a32 := make([]float32, ar*ac)
	b32 := make([]float32, sh.K*sh.N)
	for i := range a32 {
		a32[i] = rng.Float32()*2 - 1
	}
	for i := range b32 {
		b32[i] = rng.Float32()*2 - 1
	}
	want := cpuref.MatMul(cpuref.Dense32(ar, ac, a32), cpuref.Dense32(sh.K, sh.N, b32), sh.TransA, false)
	bufs := make([]*cl.Buffer, 0, 3)
	defer func() {
		for _, b := range bufs {
			b.Release()
		}
	}()
	newBuf := func(data []float32, n int) (*cl.Buffer, error) {
		b, err := s.ctx.NewBuffer(4 * n)
		if err != nil {
			return nil, err
		}
		bufs = append(bufs, b)
		if data != nil {
			err = s.q.WriteFloat32(b, 0, data)
		}
		return b, err
	}
	a, err := newBuf(a32, len(a32))
	if err != nil {
		return Choice{}, err
	}
	b, err := newBuf(b32, len(b32))
	if err != nil {
		return Choice{}, err
	}
	c, err := newBuf(nil, sh.M*sh.N)
	if err != nil {
		return Choice{}, err
	}
	got := make([]float32, sh.M*sh.N)
	saved := s.tuned
	defer func() { s.tuned = saved }()

	def := regFor(sh.N)
	ch := Choice{Shape: sh, Default: blockOf(def)}
	best := -1.0
	for _, cand := range append(candidates(sh), def) {
		s.tuned = map[Shape]regConfig{sh: cand}
		if err := s.q.FillFloat32(c, float32(math.NaN()), 0, sh.M*sh.N); err != nil {
			return ch, err
		}
		// A candidate that fails to build is skipped like one that is wrong.
		if err := s.Gemm(sh.TransA, false, sh.M, sh.N, sh.K, a, b, c); err != nil {
			var be *cl.BuildError
			if errors.As(err, &be) {
				ch.Failed++
				continue
			}
			return ch, err
		}
		if err := s.q.ReadFloat32(c, 0, got); err != nil {
			return ch, err
		}
		if e := cpuref.RelErr(got, want); !(e <= 1e-5) {
			ch.Failed++
			continue
		}
		us, err := s.timeGemm(sh, a, b, c)
		if err != nil {
			return ch, err
		}
		ch.Candidates++
		if cand == def {
			ch.DefaultUs = us
		}
		if best < 0 || us < best {
			best, ch.Block, ch.Micros = us, blockOf(cand), us
		}
	}
	if best < 0 {
		return ch, fmt.Errorf("no candidate block computed the product correctly")
	}
	return ch, nil
}

// timeGemm is the median over five runs of the microseconds per GEMM when
// enough are queued to take about 5 ms and waited for once, as a step does.
func (s *Set) timeGemm(sh Shape, a, b, c *cl.Buffer) (float64, error) {
	reps := 1
	var runs []float64
	for len(runs) < 5 {
		start := time.Now()
		for range reps {
			if err := s.Gemm(sh.TransA, false, sh.M, sh.N, sh.K, a, b, c); err != nil {
				return 0, err
			}
		}
		if err := s.q.Finish(); err != nil {
			return 0, err
		}
		el := time.Since(start)
		if el < 5*time.Millisecond && reps < 1<<12 {
			reps *= 2
			continue
		}
		runs = append(runs, float64(el.Microseconds())/float64(reps))
	}
	sort.Float64s(runs)
	return runs[len(runs)/2], nil
}

// UseTuning makes Gemm use t's block for each of its shapes (other shapes
// keep regFor's default), building the programs it needs now.
func (s *Set) UseTuning(t Tuning) error {
	if s.kind != GemmRegister {
		return nil
	}
	tuned := map[Shape]regConfig{}
	for sh, b := range t {
		if b.TM <= 0 || b.TM > 16 || b.TNV < 1 || b.TNV > 4 || b.KC < 0 || (b.Compensated && b.KC != 0) {
			return fmt.Errorf("tuning for %v: block %+v is not one gemm_reg.cl can build", sh, b)
		}
		if _, err := s.regKernels(b.config()); err != nil {
			return err
		}
		tuned[sh] = b.config()
	}
	s.tuned = tuned
	return nil
}

// TuneKey identifies what a tuning was measured on: the device, its driver
// and the GEMM's source. Any change means measuring again.
func (s *Set) TuneKey() (string, error) {
	h := sha256.New()
	for _, f := range []string{"sums.cl", "gemm_reg.cl"} {
		src, err := readSource(s.src, f)
		if err != nil {
			return "", err
		}
		io.WriteString(h, src)
	}
	return fmt.Sprintf("%s | %s | %s | %s", s.dev.Name, s.dev.Platform, s.dev.DriverVersion, hex.EncodeToString(h.Sum(nil))[:16]), nil
}

// TuneCache is the on-disk record of tunings, one per TuneKey.
type TuneCache struct {
	Path string
}

type cacheFile struct {
	Version int                         `json:"version"`
	Devices map[string]map[string]Block `json:"devices"`
}

// DefaultTuneCache is tuning.json in the per-user cache folder.
func DefaultTuneCache() (*TuneCache, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return nil, fmt.Errorf("find a cache folder for GEMM tuning: %w", err)
	}
	return &TuneCache{Path: filepath.Join(dir, "mnist-cl", "tuning.json")}, nil
}

func (c *TuneCache) read() (*cacheFile, error) {
	f := &cacheFile{Version: 1, Devices: map[string]map[string]Block{}}
	b, err := os.ReadFile(c.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read tuning cache: %w", err)
	}
	if err := json.Unmarshal(b, f); err != nil || f.Version != 1 || f.Devices == nil {
		// A cache is only a cache: a damaged one is measured again.
		return &cacheFile{Version: 1, Devices: map[string]map[string]Block{}}, nil
	}
	return f, nil
}

// Load returns the cached blocks for key among shapes, and the shapes that
// have none.
func (c *TuneCache) Load(key string, shapes []Shape) (Tuning, []Shape, error) {
	f, err := c.read()
	if err != nil {
		return nil, nil, err
	}
	t := Tuning{}
	var missing []Shape
	for _, sh := range shapes {
		if b, ok := f.Devices[key][sh.String()]; ok {
			t[sh] = b
		} else if !slices.Contains(missing, sh) {
			missing = append(missing, sh)
		}
	}
	return t, missing, nil
}

// Store adds t's blocks under key, atomically.
func (c *TuneCache) Store(key string, t Tuning) error {
	f, err := c.read()
	if err != nil {
		return err
	}
	if f.Devices[key] == nil {
		f.Devices[key] = map[string]Block{}
	}
	for sh, b := range t {
		f.Devices[key][sh.String()] = b
	}
	if err := os.MkdirAll(filepath.Dir(c.Path), 0o755); err != nil {
		return fmt.Errorf("write tuning cache: %w", err)
	}
	return atomicfile.Write(c.Path, 0o644, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(f)
	})
}
