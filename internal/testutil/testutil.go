// Package testutil holds small test helpers that tests of several packages
// share and that need no OpenCL device (those are in cltest).
package testutil

import (
	"bytes"
	"image"
	"image/png"
	"os"
	"testing"
)

// EncodePNG returns img as PNG bytes.
func EncodePNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// Names lists the names in dir, sorted; a missing dir is empty.
func Names(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var n []string
	for _, e := range entries {
		n = append(n, e.Name())
	}
	return n
}

// Unavailable skips a test whose environment lacks what it needs (a FIFO,
// a symbolic link), or fails it when CI is "true": CI runs on Debian, where
// all of it exists, so a skip there would hide a test that never ran.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true, and this test cannot run: "+format, args...)
	}
	t.Skipf(format, args...)
}
