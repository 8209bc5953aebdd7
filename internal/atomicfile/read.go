package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// Read opens path (a regular file, see OpenRegular) and hands it to read,
// naming path in any error.
func Read[T any](path string, read func(io.Reader) (T, error)) (T, error) {
	var zero T
	f, _, err := OpenRegular(path)
	if err != nil {
		return zero, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	v, err := read(f)
	if err != nil {
		return zero, fmt.Errorf("read %s: %w", path, err)
	}
	return v, nil
}

// WithoutPath drops the path an *fs.PathError repeats, for a caller that
// names it already; errors.Is still sees the cause.
func WithoutPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// OpenRegular opens path for reading once it is known to be a regular file,
// and returns its information too: opening a named pipe waits for a writer
// (a hang that Ctrl-C cannot end), and reading a device might never end. Its
// errors leave the path to the caller, which names it.
func OpenRegular(path string) (*os.File, fs.FileInfo, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, nil, WithoutPath(err)
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("is %s, not a regular file", Kind(fi.Mode()))
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, WithoutPath(err)
	}
	return f, fi, nil
}
