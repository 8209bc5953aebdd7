package tuner

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/mnist-cl/mnist-cl/internal/atomicfile"
	"github.com/mnist-cl/mnist-cl/kernels"
)

// Cache is the on-disk record of tunings, one per kernels.Set.TuneKey.
type Cache struct {
	Path string
}

type cacheFile struct {
	Version int                                 `json:"version"`
	Devices map[string]map[string]kernels.Block `json:"devices"`
}

// DefaultCache is tuning.json in the per-user cache folder.
func DefaultCache() (*Cache, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return nil, fmt.Errorf("find a cache folder for GEMM tuning: %w", err)
	}
	return &Cache{Path: filepath.Join(dir, "mnist-cl", "tuning.json")}, nil
}

func (c *Cache) read() (*cacheFile, error) {
	f := &cacheFile{Version: 1, Devices: map[string]map[string]kernels.Block{}}
	b, err := os.ReadFile(c.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read tuning cache: %w", err)
	}
	if err := json.Unmarshal(b, f); err != nil || f.Version != 1 || f.Devices == nil {
		// A cache is only a cache: a damaged one is measured again.
		return &cacheFile{Version: 1, Devices: map[string]map[string]kernels.Block{}}, nil
	}
	return f, nil
}

// Load returns the cached blocks for key among shapes, and the shapes that
// have none. A block the kernel cannot build (a damaged or hand-edited
// cache) counts as none: it is measured again rather than refused.
func (c *Cache) Load(key string, shapes []kernels.Shape) (kernels.Tuning, []kernels.Shape, error) {
	f, err := c.read()
	if err != nil {
		return nil, nil, err
	}
	t := kernels.Tuning{}
	var missing []kernels.Shape
	for _, sh := range shapes {
		if b, ok := f.Devices[key][sh.String()]; ok && b.Valid() {
			t[sh] = b
		} else if !slices.Contains(missing, sh) {
			missing = append(missing, sh)
		}
	}
	return t, missing, nil
}

// Store adds t's blocks under key, atomically.
func (c *Cache) Store(key string, t kernels.Tuning) error {
	f, err := c.read()
	if err != nil {
		return err
	}
	if f.Devices[key] == nil {
		f.Devices[key] = map[string]kernels.Block{}
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
