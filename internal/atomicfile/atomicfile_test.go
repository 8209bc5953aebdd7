package atomicfile

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mnist-cl/mnist-cl/internal/testutil"
)

func writeString(s string) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := io.WriteString(w, s)
		return err
	}
}

func TestWriteNewAndReplace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	if err := Write(path, 0o644, writeString("first")); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, 0o644, writeString("second")); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "second" {
		t.Errorf("contents %q, want %q", got, "second")
	}
	if n := testutil.Names(t, dir); !slices.Equal(n, []string{"model.safetensors"}) {
		t.Errorf("folder holds %q, want only the file", n)
	}
}

func TestWriteRelativePath(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := Write("plain", 0o600, writeString("x")); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile("plain"); err != nil || string(got) != "x" {
		t.Errorf("read back %q, %v", got, err)
	}
}

func TestWriteErrorKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ckpt")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := Write(path, 0o644, func(w io.Writer) error {
		// More than bufio's buffer, so part of it reaches the temporary file.
		if _, err := w.Write(make([]byte, 10000)); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("error %v, want one wrapping %v", err, boom)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name %s", err, path)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "old" {
		t.Errorf("old file now holds %d bytes, want %q", len(got), "old")
	}
	if n := testutil.Names(t, dir); !slices.Equal(n, []string{"ckpt"}) {
		t.Errorf("folder holds %q, want only the old file", n)
	}
}

func TestWritePanicRemovesTemp(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ckpt")
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the panic did not propagate")
			}
		}()
		Write(path, 0o644, func(io.Writer) error { panic("write panicked") })
	}()
	if n := testutil.Names(t, dir); len(n) != 0 {
		t.Errorf("folder holds %q, want nothing", n)
	}
}

func TestWriteRefusesFolder(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub")
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"Write":         Write(path, 0o644, writeString("x")),
		"CheckWritable": CheckWritable(path),
	} {
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "folder") {
			t.Errorf("%s: error %v, want one naming %s as a folder", name, err, path)
		}
	}
	if n := testutil.Names(t, dir); !slices.Equal(n, []string{"sub"}) {
		t.Errorf("folder holds %q, want only sub", n)
	}
}

func TestWriteRefusesFIFO(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		testutil.Unavailable(t, "cannot make a FIFO here: %v", err)
	}
	for name, err := range map[string]error{
		"Write":         Write(path, 0o644, writeString("x")),
		"CheckWritable": CheckWritable(path),
	} {
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "FIFO") {
			t.Errorf("%s: error %v, want one naming %s as a FIFO", name, err, path)
		}
	}
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode()&fs.ModeNamedPipe == 0 {
		t.Errorf("the FIFO is gone or changed: %v, %v", fi, err)
	}
}

func TestWriteFollowsSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "real")
	link := filepath.Join(dir, "link")
	if err := os.WriteFile(target, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real", link); err != nil {
		testutil.Unavailable(t, "no symbolic links here: %v", err)
	}
	if err := Write(link, 0o644, writeString("new")); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(target); string(got) != "new" {
		t.Errorf("target holds %q, want %q", got, "new")
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("the link was replaced: %v, %v", fi, err)
	}
}

func TestWritePerm(t *testing.T) {
	dir := t.TempDir()
	for _, perm := range []os.FileMode{0o600, 0o644, 0o640} {
		path := filepath.Join(dir, perm.String())
		if err := Write(path, perm, writeString("x")); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != perm {
			t.Errorf("mode %v, want %v", got, perm)
		}
	}
}

func TestCheckWritable(t *testing.T) {
	dir := t.TempDir()
	if err := CheckWritable(filepath.Join(dir, "new")); err != nil {
		t.Errorf("new file in a writable folder: %v", err)
	}
	existing := filepath.Join(dir, "existing")
	if err := os.WriteFile(existing, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	// A read-only file is no obstacle: Write replaces it by renaming.
	if err := CheckWritable(existing); err != nil {
		t.Errorf("read-only file in a writable folder: %v", err)
	}
	if n := testutil.Names(t, dir); !slices.Equal(n, []string{"existing"}) {
		t.Errorf("folder holds %q after the checks, want only the file", n)
	}

	missing := filepath.Join(dir, "nope", "model")
	if err := CheckWritable(missing); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing folder: error %v", err)
	}
	notDir := filepath.Join(existing, "model")
	if err := CheckWritable(notDir); err == nil || !strings.Contains(err.Error(), "not a folder") {
		t.Errorf("file as folder: error %v", err)
	}
}

func TestReadOnlyFolder(t *testing.T) {
	if os.Geteuid() == 0 {
		// Root writes anywhere, and CI runs as root: the test runs again
		// in a process of the unprivileged user nobody.
		runAsNobody(t, "TestReadOnlyFolder")
		return
	}
	dir := t.TempDir()
	ro := filepath.Join(dir, "ro")
	if err := os.Mkdir(ro, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(ro, 0o755) })
	path := filepath.Join(ro, "model")

	err := CheckWritable(path)
	if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "cannot write to folder "+ro) {
		t.Errorf("CheckWritable: error %v, want a permission error naming %s", err, ro)
	}
	if err := Write(path, 0o644, writeString("x")); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("Write: error %v, want a permission error", err)
	}
	if n := testutil.Names(t, ro); len(n) != 0 {
		t.Errorf("read-only folder holds %q", n)
	}
}

// TestWriteRemovesStaleTemps puts beside a target the temporary files that
// killed writers leave: the next Write of that target removes those whose
// writer is gone or that have not been written for StaleAge (no process
// id) or LiveStaleAge (a running one), and keeps its own process's, a live
// writer's even when a minute old (a metrics file between two epochs), a
// fresh one without a process id, and every file of another name.
func TestWriteRemovesStaleTemps(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "run.safetensors")
	// A process id that is certainly gone: a child that has been waited for.
	child := exec.Command("true")
	if err := child.Run(); err != nil {
		t.Fatal(err)
	}
	dead := strconv.Itoa(child.Process.Pid)
	live := strconv.Itoa(os.Getppid())
	files := []struct {
		name string
		age  time.Duration
		gone bool
	}{
		{".run.safetensors.tmp-" + dead + "-123", 0, true},
		{".run.safetensors.tmp-" + strconv.Itoa(os.Getpid()) + "-1", 2 * StaleAge, false},
		{".run.safetensors.tmp-" + live + "-1", 0, false},
		{".run.safetensors.tmp-" + live + "-2", 2 * StaleAge, false},
		{".run.safetensors.tmp-" + live + "-3", 2 * LiveStaleAge, true},
		{".run.safetensors.tmp-4567", 2 * StaleAge, true}, // the naming before process ids
		{".run.safetensors.tmp-4568", 0, false},
		{".other.tmp-" + dead + "-1", 2 * StaleAge, false},
		{"run.safetensors.tmp-" + dead + "-1", 2 * StaleAge, false},
	}
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		if err := os.WriteFile(p, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
		if f.age > 0 {
			when := time.Now().Add(-f.age)
			if err := os.Chtimes(p, when, when); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := Write(target, 0o644, func(w io.Writer) error { _, err := io.WriteString(w, "whole"); return err }); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		_, err := os.Stat(filepath.Join(dir, f.name))
		if gone := errors.Is(err, fs.ErrNotExist); gone != f.gone {
			t.Errorf("%s: removed %v, want %v", f.name, gone, f.gone)
		}
	}
	if b, err := os.ReadFile(target); err != nil || string(b) != "whole" {
		t.Errorf("target: %q %v", b, err)
	}
}

// runAsNobody runs this package's test named test in a copy of the test
// binary as the user nobody (uid and gid 65534), in a folder that user may
// write to, and fails unless it ran and passed there.
func runAsNobody(t *testing.T, test string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// os.MkdirTemp makes it 0700, and the test's own t.TempDir goes in it.
	if err := os.Chmod(dir, 0o777|fs.ModeSticky); err != nil {
		t.Fatal(err)
	}
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "atomicfile.test")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^"+test+"$", "-test.v", "-test.count=1")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TMPDIR="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil && strings.Contains(err.Error(), "operation not permitted") {
		testutil.Unavailable(t, "cannot run a process as nobody: %v", err)
		return
	}
	if err != nil || !strings.Contains(string(out), "--- PASS: "+test) {
		t.Fatalf("%s as nobody: %v\n%s", test, err, out)
	}
}
