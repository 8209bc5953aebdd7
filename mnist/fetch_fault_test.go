package mnist

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mnist-cl/mnist-cl/internal/testutil"
)

// smallOfficial stands in for the official table: the four files of
// testdata/mnist-small under the same names, with their own sums and sizes.
// The fault tests then need neither the network nor the module cache, which
// a clean CI machine may not have warm, and the cache they fill loads.
func smallOfficial(t *testing.T) ([]official, map[string][]byte) {
	t.Helper()
	var table []official
	files := map[string][]byte{}
	for _, o := range officialFiles {
		b, err := os.ReadFile(filepath.Join(smallDir, o.name))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		table = append(table, official{name: o.name, sha256: hex.EncodeToString(sum[:]), size: int64(len(b))})
		files[o.name] = b
	}
	return table, files
}

// faultFetcher is testFetcher with the small files as the official ones and
// the module fallback off: these tests are about the mirrors alone. Its
// stall limit is long, since a loaded machine running the race detector can
// keep even a local server from sending for a few hundred milliseconds; the
// tests of stalls shorten it to shortStall.
func faultFetcher(t *testing.T) (*Fetcher, *strings.Builder, map[string][]byte) {
	t.Helper()
	table, files := smallOfficial(t)
	f, log := testFetcher(t)
	f.files = table
	f.StallTimeout = 5 * time.Second
	f.ModuleDownload = nil
	return f, log, files
}

// shortStall is the stall limit of the tests that make a server stall: short
// enough to keep them quick, long enough that a good server on a loaded
// machine still makes it.
const shortStall = 500 * time.Millisecond

// checkNoLeftovers fails unless everything in dir is one of f's files with
// its right sum: no temporary file, nothing partial under a real name.
func checkNoLeftovers(t *testing.T, f *Fetcher, dir string) {
	t.Helper()
	for _, name := range testutil.Names(t, dir) {
		i := slices.IndexFunc(f.table(), func(o official) bool { return o.name == name })
		if i < 0 {
			t.Errorf("cache holds %s after the fetch", name)
			continue
		}
		if sum, err := fileSHA256(filepath.Join(dir, name)); err != nil || sum != f.table()[i].sha256 {
			t.Errorf("cache holds %s with sha256 %s (%v), want %s", name, sum, err, f.table()[i].sha256)
		}
	}
}

// checkRefetch: after whatever went wrong, a fetch from a good mirror fills
// the cache with every file, verified and loadable, and nothing else.
func checkRefetch(t *testing.T, f *Fetcher, dir string, files map[string][]byte) {
	t.Helper()
	good := newMirror(t, serving(files))
	f.Mirrors = []string{good.base()}
	f.StallTimeout = 5 * time.Second
	if err := f.Ensure(context.Background(), dir); err != nil {
		t.Fatalf("fetch from a good mirror after the fault: %v", err)
	}
	checkNoLeftovers(t, f, dir)
	if got := testutil.Names(t, dir); len(got) != len(f.table()) {
		t.Errorf("cache holds %v after a good fetch", got)
	}
	s, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Train.Len() != 900 || s.Validation.Len() != 100 || s.Test.Len() != 500 {
		t.Errorf("refetched cache splits %d/%d/%d, want 900/100/500", s.Train.Len(), s.Validation.Len(), s.Test.Len())
	}
}

// cutOff answers with the status line and a Content-Length of the whole
// file, sends a few hundred bytes of it and drops the connection: with a
// FIN, or with reset set, an RST (SO_LINGER 0), as a crashing server or a
// middlebox would.
func cutOff(t *testing.T, files map[string][]byte, reset bool) func(http.ResponseWriter, *http.Request, string) {
	return func(w http.ResponseWriter, r *http.Request, name string) {
		b := files[name]
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer conn.Close()
		fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", len(b))
		buf.Write(b[:min(300, len(b)/2)])
		if err := buf.Flush(); err != nil {
			t.Errorf("write: %v", err)
		}
		if reset {
			if err := conn.(*net.TCPConn).SetLinger(0); err != nil {
				t.Errorf("linger: %v", err)
			}
		}
	}
}

// TestEnsureMirrorFaults: a mirror failing in each way is an error that says
// how, in bounded time, leaving nothing in the cache; a good mirror after it
// in the list fills the cache, the failing one asked once; and a later fetch
// from a good mirror succeeds. The cases run in parallel, each with its own
// servers and cache, so that the stalls overlap.
func TestEnsureMirrorFaults(t *testing.T) {
	_, files := smallOfficial(t)
	tests := []struct {
		name    string
		handle  func(w http.ResponseWriter, r *http.Request, name string)
		want    []string // all in the error
		wantAny []string // one of them in the error
		stall   bool     // the server stalls: use shortStall
	}{
		{
			name:   "404",
			handle: func(w http.ResponseWriter, r *http.Request, name string) { http.NotFound(w, r) },
			want:   []string{"HTTP 404 Not Found"},
		},
		{
			name:   "closed mid-file",
			handle: cutOff(t, files, false),
			want:   []string{"connection lost after 300 of 161188 bytes: unexpected EOF"},
		},
		{
			name:   "reset mid-file",
			handle: cutOff(t, files, true),
			want:   []string{"connection lost after "},
			// An RST can overtake the bytes sent before it.
			wantAny: []string{"connection reset", "unexpected EOF"},
		},
		{
			name: "stall after headers",
			handle: func(w http.ResponseWriter, r *http.Request, name string) {
				w.Header().Set("Content-Length", fmt.Sprint(len(files[name])))
				w.WriteHeader(http.StatusOK)
				w.(http.Flusher).Flush()
				waitForClient(r)
			},
			want:  []string{"stalled: no data for " + shortStall.String()},
			stall: true,
		},
		{
			name: "wrong sha256",
			handle: func(w http.ResponseWriter, r *http.Request, name string) {
				b := slices.Clone(files[name])
				b[len(b)/2] ^= 0x40
				w.Write(b)
			},
			want: []string{"checksum mismatch", "sha256 ", "want " + sha256Hex(files[TrainImagesFile])},
		},
		{
			name: "HTML with 200",
			handle: func(w http.ResponseWriter, r *http.Request, name string) {
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				fmt.Fprint(w, loginPage)
			},
			want: []string{"checksum mismatch", "HTML page", fmt.Sprintf("(%d bytes, want %d)", len(loginPage), len(files[TrainImagesFile]))},
		},
		{
			name: "Content-Length too long",
			handle: func(w http.ResponseWriter, r *http.Request, name string) {
				w.Header().Set("Content-Length", fmt.Sprint(int64(1)<<40))
				w.WriteHeader(http.StatusOK)
				w.(http.Flusher).Flush()
				waitForClient(r) // a client that read on would stall here
			},
			want: []string{"announces 1099511627776 bytes, more than the 161188 bytes of the official file"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name+"/alone", func(t *testing.T) {
			t.Parallel()
			bad := newMirror(t, tt.handle)
			f, _, files := faultFetcher(t)
			f.Mirrors = []string{bad.base()}
			if tt.stall {
				f.StallTimeout = shortStall
			}
			cache := t.TempDir()
			start := time.Now()
			err := f.Ensure(context.Background(), cache)
			// Far below the 5 s stall limit of the other cases and the 10 s a
			// stalling handler waits: the fault itself ended the fetch.
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("Ensure took %v", d)
			}
			if err == nil {
				t.Fatal("Ensure took the file from a failing mirror")
			}
			msg := err.Error()
			for _, w := range append(tt.want, "fetch "+TrainImagesFile+": every source failed: "+bad.base()+TrainImagesFile+": ") {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not say %q", msg, w)
				}
			}
			if tt.wantAny != nil && !slices.ContainsFunc(tt.wantAny, func(w string) bool { return strings.Contains(msg, w) }) {
				t.Errorf("error %q says none of %q", msg, tt.wantAny)
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error %q is more than one line", msg)
			}
			t.Log(msg)
			checkNoLeftovers(t, f, cache)
			checkRefetch(t, f, cache, files)
		})
		t.Run(tt.name+"/then a good mirror", func(t *testing.T) {
			t.Parallel()
			bad := newMirror(t, tt.handle)
			good := newMirror(t, serving(files))
			f, log, files := faultFetcher(t)
			f.Mirrors = []string{bad.base(), good.base()}
			if tt.stall {
				f.StallTimeout = shortStall
			}
			cache := t.TempDir()
			if err := f.Ensure(context.Background(), cache); err != nil {
				t.Fatal(err)
			}
			checkNoLeftovers(t, f, cache)
			if got := testutil.Names(t, cache); len(got) != len(f.table()) {
				t.Errorf("cache holds %v", got)
			}
			if got := bad.hits.Load(); got != 1 {
				t.Errorf("failing mirror asked %d times, want 1", got)
			}
			if got := good.hits.Load(); got != 4 {
				t.Errorf("good mirror asked %d times, want 4", got)
			}
			if !strings.Contains(log.String(), bad.base()) {
				t.Errorf("log does not name the failing mirror:\n%s", log)
			}
			checkRefetch(t, f, cache, files)
		})
	}
}

// loginPage is what a captive portal answers for any URL, with status 200.
const loginPage = "<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>Please sign in to continue.</body></html>\n"

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// TestEnsureContentEncoding: a server that marks .gz files as
// Content-Encoding: gzip, as some are configured to, still delivers the
// bytes as stored, which is what the checksum is over.
func TestEnsureContentEncoding(t *testing.T) {
	t.Parallel()
	f, _, files := faultFetcher(t)
	m := newMirror(t, func(w http.ResponseWriter, r *http.Request, name string) {
		w.Header().Set("Content-Encoding", "gzip")
		w.Write(files[name])
	})
	f.Mirrors = []string{m.base()}
	cache := t.TempDir()
	if err := f.Ensure(context.Background(), cache); err != nil {
		t.Fatal(err)
	}
	checkNoLeftovers(t, f, cache)
	if got := testutil.Names(t, cache); len(got) != 4 {
		t.Errorf("cache holds %v", got)
	}
}

// TestEnsureAllMirrorsFailNoModule: with the fallback off, the error is one
// line naming every mirror and how it failed, and nothing else.
func TestEnsureAllMirrorsFailNoModule(t *testing.T) {
	t.Parallel()
	f, _, files := faultFetcher(t)
	a := newMirror(t, func(w http.ResponseWriter, r *http.Request, name string) { http.NotFound(w, r) })
	b := newMirror(t, func(w http.ResponseWriter, r *http.Request, name string) { http.Error(w, "down for maintenance", 503) })
	c := newMirror(t, cutOff(t, files, false))
	d := newMirror(t, func(w http.ResponseWriter, r *http.Request, name string) { waitForClient(r) })
	f.Mirrors = []string{a.base(), b.base(), c.base(), d.base()}
	f.StallTimeout = shortStall
	cache := t.TempDir()
	err := f.Ensure(context.Background(), cache)
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, w := range []string{
		"fetch " + TrainImagesFile + ": every source failed: ",
		a.base() + TrainImagesFile + ": HTTP 404 Not Found; ",
		b.base() + TrainImagesFile + ": HTTP 503 Service Unavailable; ",
		c.base() + TrainImagesFile + ": connection lost after 300 of 161188 bytes: unexpected EOF; ",
		d.base() + TrainImagesFile + ": stalled: no data for " + shortStall.String(),
	} {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not say %q", msg, w)
		}
	}
	if strings.Contains(msg, "module") || strings.Contains(msg, "\n") {
		t.Errorf("error %q names the module that is off, or is more than one line", msg)
	}
	checkNoLeftovers(t, f, cache)
	if n := testutil.Names(t, cache); len(n) != 0 {
		t.Errorf("cache holds %v", n)
	}

	f.Mirrors = nil
	if err := f.Ensure(context.Background(), cache); err == nil || !strings.Contains(err.Error(), "no sources configured") {
		t.Errorf("Ensure with no source: %v, want an error saying so", err)
	}
	checkRefetch(t, f, cache, files)
}

// TestEnsureCanceledMidFile: the caller's cancel, with part of a file in the
// temporary file, returns the context's error at once and removes it.
func TestEnsureCanceledMidFile(t *testing.T) {
	t.Parallel()
	f, _, files := faultFetcher(t)
	f.StallTimeout = 10 * time.Second // only the cancel may end the fetch
	var once sync.Once
	sent := make(chan struct{})
	m := newMirror(t, func(w http.ResponseWriter, r *http.Request, name string) {
		w.Header().Set("Content-Length", fmt.Sprint(len(files[name])))
		w.Write(files[name][:len(files[name])/2])
		w.(http.Flusher).Flush()
		once.Do(func() { close(sent) })
		waitForClient(r)
	})
	f.Mirrors = []string{m.base()}
	cache := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	canceled := make(chan time.Time, 1)
	go func() {
		<-sent
		// Let the half file reach the temporary file before the cancel.
		time.Sleep(50 * time.Millisecond)
		canceled <- time.Now()
		cancel()
	}()
	err := f.Ensure(ctx, cache)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Ensure: %v, want context.Canceled", err)
	}
	if d := time.Since(<-canceled); d > time.Second {
		t.Errorf("Ensure returned %v after the cancel", d)
	}
	if n := testutil.Names(t, cache); len(n) != 0 {
		t.Errorf("cache holds %v after the cancel", n)
	}
	checkRefetch(t, f, cache, files)
}

// TestEnsureRemovesStaleTemps: a temporary file that a killed process left
// is removed once it is old; a fresh one, which another process may still be
// writing, and files of other names stay.
func TestEnsureRemovesStaleTemps(t *testing.T) {
	t.Parallel()
	f, log, files := faultFetcher(t)
	cache := t.TempDir()
	old := time.Now().Add(-2 * staleTempAge)
	write := func(name string, mtime time.Time) {
		p := filepath.Join(cache, name)
		if err := os.WriteFile(p, []byte("half a file"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	stale := "." + TrainImagesFile + ".tmp-1234"
	fresh := "." + TestLabelsFile + ".tmp-5678"
	write(stale, old)
	write(fresh, time.Now())
	write("notes.txt", old)
	m := newMirror(t, serving(files))
	f.Mirrors = []string{m.base()}
	if err := f.Ensure(context.Background(), cache); err != nil {
		t.Fatal(err)
	}
	got := testutil.Names(t, cache)
	if slices.Contains(got, stale) {
		t.Errorf("stale %s is still there", stale)
	}
	if !slices.Contains(got, fresh) || !slices.Contains(got, "notes.txt") {
		t.Errorf("cache holds %v; a fresh temporary file or another file was removed", got)
	}
	if !strings.Contains(log.String(), "removed "+filepath.Join(cache, stale)) {
		t.Errorf("log does not report the removal:\n%s", log)
	}
}
