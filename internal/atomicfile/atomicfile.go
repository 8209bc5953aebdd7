// Package atomicfile writes a file so that a reader, or a crash, sees either
// the old contents or the complete new ones, never a half-written file: it
// writes a temporary file in the same folder and renames it over the target.
// A checkpoint saved after hours of training must not be lost to a full disk
// or a kill in the middle of the write. Read and Kind are the reading side's
// small helpers, shared by the packages that load files.
package atomicfile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Write writes the file at path with permissions perm through write, which
// gets a buffered writer on a temporary file in path's folder. Only when
// write and every step after it succeed is the temporary file renamed over
// path; otherwise, error or panic, the temporary file is removed and
// whatever was at path is left untouched.
//
// A path that exists and is not a regular file (a folder, a FIFO, a device)
// is refused. A symbolic link is followed, so the file it points to is
// replaced and the link kept, as os.WriteFile would do. perm is set with
// chmod, so the umask does not apply to it.
func Write(path string, perm os.FileMode, write func(w io.Writer) error) error {
	p, err := Create(path, perm)
	if err != nil {
		return err
	}
	// Deferred rather than on each error path so that a panic in write
	// cleans up too; after Commit it does nothing.
	defer p.Abort()
	bw := bufio.NewWriter(p)
	if err := write(bw); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return p.Commit()
}

// Pending is a write of a file that readers see only once committed: a
// temporary file beside the target, for a writer that keeps it open for a
// while (train's metrics file) where Write's callback does not fit.
type Pending struct {
	f            *os.File
	path, target string
	perm         os.FileMode
	done         bool
}

// Create starts a write of path with permissions perm, refusing a path that
// is not a regular file and following a symbolic link as Write does.
func Create(path string, perm os.FileMode) (*Pending, error) {
	target, err := resolve(path)
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	f, err := CreateTemp(target)
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return &Pending{f: f, path: path, target: target, perm: perm}, nil
}

// Write writes to the temporary file.
func (p *Pending) Write(b []byte) (int, error) { return p.f.Write(b) }

// Commit sets the permissions, syncs the temporary file and renames it over
// the target; on an error the temporary file is removed.
func (p *Pending) Commit() error {
	err := p.f.Chmod(p.perm)
	// Without the sync a crash after the rename can leave an empty file
	// at path on file systems that reorder data and metadata writes.
	if err == nil {
		err = p.f.Sync()
	}
	if cerr := p.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(p.f.Name(), p.target)
	}
	if err != nil {
		os.Remove(p.f.Name())
		p.done = true
		return fmt.Errorf("write %s: %w", p.path, err)
	}
	p.done = true
	syncDir(filepath.Dir(p.target))
	return nil
}

// Abort removes the temporary file unless Commit ran.
func (p *Pending) Abort() {
	if p == nil || p.done {
		return
	}
	p.done = true
	p.f.Close() // may fail on a closed file; the error says nothing new
	os.Remove(p.f.Name())
}

// syncDir makes the rename durable. It is best effort: the new file is
// already in place and readable, and some systems cannot sync a folder.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	d.Sync()
	d.Close()
}

// CheckWritable reports, before a long job, whether Write could later write
// path: its folder exists and is a folder, path is absent or a regular file,
// and a file can be created (and is removed again) in the folder. It cannot
// rule out a full disk or a folder whose permissions change in between.
func CheckWritable(path string) error {
	// The folder first: a missing folder is the likelier mistake, and
	// resolve would report it less plainly.
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cannot write %s: folder %s does not exist", path, dir)
	}
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("cannot write %s: %s is not a folder", path, dir)
	}
	target, err := resolve(path)
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	// A symbolic link may point into another folder, which is the one
	// Write will create its temporary file in.
	dir = filepath.Dir(target)
	f, err := os.CreateTemp(dir, "."+filepath.Base(target)+".check-*")
	if err != nil {
		// The PathError would name the random temporary file; the folder
		// is what the user must fix.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("cannot write to folder %s: %w", dir, err)
	}
	name := f.Name()
	f.Close()
	if err := os.Remove(name); err != nil {
		return fmt.Errorf("cannot write to folder %s: remove test file: %w", dir, err)
	}
	return nil
}

// resolve follows a symbolic link at path and checks that what it names is
// absent or a regular file; it returns the path to write. Its errors do not
// name path: the callers do.
func resolve(path string) (string, error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return path, nil
	}
	if err != nil {
		return "", err
	}
	target := path
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, err = filepath.EvalSymlinks(path)
		if err != nil {
			return "", fmt.Errorf("follow symbolic link: %w", err)
		}
		if fi, err = os.Stat(target); err != nil {
			return "", err
		}
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("exists and is %s, not a regular file", Kind(fi.Mode()))
	}
	return target, nil
}

// Kind names a file type that is not a regular file for an error message:
// "a folder", "a FIFO", "a device"...
func Kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a folder"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	default:
		return "a file of mode " + m.String()
	}
}

// CreateTemp creates the temporary file of a write of target beside it,
// named ".BASE.tmp-PID-RANDOM" after the writing process, once the
// temporary files of earlier writes of target that were left behind are
// removed (see RemoveStale). Write uses it; so can a writer that keeps its
// file open and renames it over target itself (train's metrics file).
func CreateTemp(target string) (*os.File, error) {
	dir, base := filepath.Split(target)
	if dir == "" {
		dir = "."
	}
	RemoveStale(target)
	return os.CreateTemp(dir, tempPrefix(base)+strconv.Itoa(os.Getpid())+"-*")
}

// tempPrefix begins the name of every temporary file of a write of base.
func tempPrefix(base string) string { return "." + base + ".tmp-" }

// StaleAge is how long a temporary file whose name holds no process id may
// go unmodified before RemoveStale takes it for one a killed process left: a
// live write of even a large checkpoint touches its file far more often.
const StaleAge = time.Minute

// LiveStaleAge is the same for a file whose writer's process id is running:
// that writer may keep its file open between writes (train's metrics file,
// written once an epoch), so only a file left far longer than any epoch is
// taken for one whose process id was reused since.
const LiveStaleAge = 24 * time.Hour

// RemoveStale removes the temporary files that writes of target by other
// processes left behind: a SIGKILL or a power cut between creating one and
// renaming it leaves ".BASE.tmp-*" beside target, which no one else cleans
// up. A file goes when its writer's process id (in its name) is no longer
// running, or when it has not been written for StaleAge (a name without a
// process id) or LiveStaleAge (a running one, reused since). This process's own files are
// left alone, and so is everything not of target's naming. It is best
// effort: a file it cannot remove only costs disk space.
func RemoveStale(target string) {
	dir, base := filepath.Split(target)
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), tempPrefix(base))
		if !ok || !e.Type().IsRegular() {
			continue
		}
		pid, hasPID := writerPID(rest)
		if hasPID && pid == os.Getpid() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		age := time.Since(info.ModTime())
		if hasPID && (!running(pid) || age > LiveStaleAge) || !hasPID && age > StaleAge {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// writerPID reads the process id at the start of what follows the prefix
// of a temporary file's name ("1234-567890"); names from before the id was
// added have none.
func writerPID(rest string) (int, bool) {
	digits, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	pid, err := strconv.Atoi(digits)
	return pid, err == nil && pid > 0
}
