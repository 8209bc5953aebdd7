package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/mnist-cl/mnist-cl/internal/atomicfile"
	"github.com/mnist-cl/mnist-cl/internal/verify"
	"github.com/mnist-cl/mnist-cl/mnist"
	"github.com/mnist-cl/mnist-cl/nn"
)

// Self-check results as the run record names them.
const (
	selfCheckPassed = "passed"
	selfCheckCached = "passed earlier (cached)"
	selfCheckOff    = "off (MNISTCL_SELFCHECK=off)"
)

// selfCheck runs, before training on a device it has not vouched for, one
// step of the run's own network, batch, loss and optimiser on a random batch
// on the device and in cpuref (verify.Step, with its tolerances), and refuses
// to train when a tensor is outside its tolerance: a driver or a kernel that
// computes wrongly would otherwise train for hours to a quietly wrong
// network. A pass is cached under the Set's CheckKey (device, driver, GEMM
// and its blocks, every kernel source), so later runs pay nothing.
// MNISTCL_SELFCHECK=off skips it. It returns the result for the run record.
func selfCheck(e *env, rt *nn.Runtime, sizes []int, rows int, cfg nn.Config) (string, error) {
	if e.getenv("MNISTCL_SELFCHECK") == "off" {
		return selfCheckOff, nil
	}
	key, err := rt.Kernels.CheckKey(nn.Shapes(sizes, rows))
	if err != nil {
		return "", fmt.Errorf("self-check: %w", err)
	}
	cache, err := defaultSelfCheckCache()
	if err != nil {
		return "", err
	}
	if cache.passed(key) {
		return selfCheckCached, nil
	}
	fmt.Fprintf(e.stderr, "self-check: one step of network %s at batch %d on %s against cpuref (once per device, driver and kernel sources)\n",
		nn.FormatSizes(sizes), rows, rt.Device.Name)
	start := time.Now()
	checks, err := selfCheckStep(e, rt, sizes, rows, cfg)
	if ctxErr := e.ctx.Err(); ctxErr != nil {
		return "", fmt.Errorf("%w during the self-check: %v", errInterrupted, ctxErr)
	}
	if err != nil {
		return "", fmt.Errorf("self-check on %s: %w", rt.Device.Name, err)
	}
	for _, c := range checks {
		if !c.Pass() {
			return "", fmt.Errorf("self-check failed on %s: %s relative error %.1e > %.0e; the device computes wrongly, not training",
				rt.Device.Name, c.Tensor, c.Err, c.Tol)
		}
	}
	if err := cache.store(key); err != nil {
		// The check passed; failing to remember it only costs its seconds
		// on the next run.
		fmt.Fprintf(e.stderr, "self-check: warning: %v\n", err)
	}
	fmt.Fprintf(e.stderr, "self-check passed: %d tensors within tolerance in %.2fs (cached in %s)\n",
		len(checks), time.Since(start).Seconds(), cache.path)
	return selfCheckPassed, nil
}

// selfCheckStep is verify's random-batch step at the run's shapes, on a
// network of its own that it releases.
func selfCheckStep(e *env, rt *nn.Runtime, sizes []int, rows int, cfg nn.Config) ([]verify.Check, error) {
	cfg.Batch = rows
	net, err := newVerifyNetwork(rt, sizes, cfg)
	if err != nil {
		return nil, err
	}
	defer net.Release()
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5e1f))
	if err := unsettle(net, rng); err != nil {
		return nil, err
	}
	x := make([]float32, rows*sizes[0])
	for i := range x {
		x[i] = rng.Float32()
	}
	labels := make([]int32, rows)
	for i := range labels {
		labels[i] = int32(rng.IntN(mnist.NumClasses))
	}
	if err := net.SetBatch(x, labels); err != nil {
		return nil, err
	}
	return verify.StepContext(e.ctx, net, rows, cfg.Hyper(cfg.LR))
}

// unsettle gives the network random biases and, with momentum, random
// velocities: at a run's first step both are zero, and a step from zeros
// cannot tell a bias added from one subtracted, or a velocity's term from
// none.
func unsettle(net *nn.Network, rng *rand.Rand) error {
	jitter := func(sets [][]float32) {
		for _, s := range sets {
			for i := range s {
				s[i] = 0.1 * (2*rng.Float32() - 1)
			}
		}
	}
	w, b, err := net.Params()
	if err != nil {
		return err
	}
	jitter(b)
	if err := net.SetParams(w, b); err != nil {
		return err
	}
	vw, vb, err := net.Velocity()
	if err != nil || vw == nil {
		return err
	}
	jitter(vw)
	jitter(vb)
	return net.SetVelocity(vw, vb)
}

// selfCheckCache is selfcheck.json in the per-user cache folder: the keys
// whose self-check passed, with when.
type selfCheckCache struct{ path string }

type selfCheckFile struct {
	Version int                  `json:"version"`
	Passed  map[string]time.Time `json:"passed"`
}

// maxSelfChecks bounds the cache: each edit of a kernel source adds a key,
// and only the newest matter.
const maxSelfChecks = 64

func defaultSelfCheckCache() (*selfCheckCache, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return nil, fmt.Errorf("find a cache folder for the self-check (MNISTCL_SELFCHECK=off skips it): %w", err)
	}
	return &selfCheckCache{path: filepath.Join(dir, "mnist-cl", "selfcheck.json")}, nil
}

// read returns the cache's contents; a missing or damaged file is an empty
// cache, since the worst it costs is a check run again.
func (c *selfCheckCache) read() *selfCheckFile {
	f := &selfCheckFile{}
	b, err := os.ReadFile(c.path)
	if err != nil || json.Unmarshal(b, f) != nil || f.Version != 1 || f.Passed == nil {
		return &selfCheckFile{Version: 1, Passed: map[string]time.Time{}}
	}
	return f
}

func (c *selfCheckCache) passed(key string) bool {
	_, ok := c.read().Passed[key]
	return ok
}

// store adds key, dropping the oldest keys beyond maxSelfChecks, atomically.
func (c *selfCheckCache) store(key string) error {
	f := c.read()
	f.Passed[key] = time.Now().UTC()
	if len(f.Passed) > maxSelfChecks {
		keys := make([]string, 0, len(f.Passed))
		for k := range f.Passed {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return f.Passed[keys[i]].After(f.Passed[keys[j]]) })
		for _, k := range keys[maxSelfChecks:] {
			delete(f.Passed, k)
		}
	}
	if err := os.MkdirAll(filepath.Dir(c.path), 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("write self-check cache: %w", err)
	}
	return atomicfile.Write(c.path, 0o644, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(f)
	})
}
