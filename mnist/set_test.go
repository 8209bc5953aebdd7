package mnist

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// gunzipIDX reads an IDX file with nothing but compress/gzip, as a check
// independent of the package's reader: it returns the payload after a
// header of headerLen bytes and the first dimension.
func gunzipIDX(t testing.TB, path string, headerLen int) (payload []byte, n int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b[headerLen:], int(binary.BigEndian.Uint32(b[4:]))
}

// TestLoadSmall reads the 1,000/500 subset and checks the 900/100/500 split
// byte for byte against an independent read of the files.
func TestLoadSmall(t *testing.T) {
	s, err := Load(smallDir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Train.Len() != 900 || s.Validation.Len() != 100 || s.Test.Len() != 500 {
		t.Fatalf("split %d/%d/%d, want 900/100/500", s.Train.Len(), s.Validation.Len(), s.Test.Len())
	}
	for _, set := range []*Set{s.Train, s.Validation, s.Test} {
		if set.Rows != 28 || set.Cols != 28 || set.Pixels() != 784 || len(set.Images) != set.Len()*784 {
			t.Fatalf("set of %d images is %dx%d with %d bytes", set.Len(), set.Rows, set.Cols, len(set.Images))
		}
	}
	trainImages, n := gunzipIDX(t, filepath.Join(smallDir, TrainImagesFile), 16)
	trainLabels, _ := gunzipIDX(t, filepath.Join(smallDir, TrainLabelsFile), 8)
	testImages, _ := gunzipIDX(t, filepath.Join(smallDir, TestImagesFile), 16)
	testLabels, _ := gunzipIDX(t, filepath.Join(smallDir, TestLabelsFile), 8)
	if n != 1000 {
		t.Fatalf("independent read: %d training images, want 1000", n)
	}
	checks := []struct {
		name          string
		got           []byte
		want          []byte
		firstExpected []byte // the first digits of MNIST, as published
	}{
		{"train labels", s.Train.Labels, trainLabels[:900], []byte{5, 0, 4, 1, 9, 2, 1, 3, 1, 4}},
		{"validation labels", s.Validation.Labels, trainLabels[900:], nil},
		{"test labels", s.Test.Labels, testLabels, []byte{7, 2, 1, 0, 4, 1, 4, 9, 5, 9}},
		{"train images", s.Train.Images, trainImages[:900*784], nil},
		{"validation images", s.Validation.Images, trainImages[900*784:], nil},
		{"test images", s.Test.Images, testImages, nil},
	}
	for _, c := range checks {
		if !bytes.Equal(c.got, c.want) {
			t.Errorf("%s differ from an independent read", c.name)
		}
		if c.firstExpected != nil && !bytes.HasPrefix(c.got, c.firstExpected) {
			t.Errorf("%s start %v, want %v", c.name, c.got[:len(c.firstExpected)], c.firstExpected)
		}
	}
}

// TestLoadRawNames: a folder of gunzipped files under the names without
// ".gz" loads the same, and one with a raw file under the ".gz" name too.
func TestLoadRawNames(t *testing.T) {
	want, err := Load(smallDir)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, name := range []string{TrainImagesFile, TrainLabelsFile, TestImagesFile, TestLabelsFile} {
		var raw []byte
		if strings.Contains(name, "images") {
			payload, n := gunzipIDX(t, filepath.Join(smallDir, name), 16)
			raw = idx(imagesMagic, []uint32{uint32(n), 28, 28}, payload)
		} else {
			payload, n := gunzipIDX(t, filepath.Join(smallDir, name), 8)
			raw = idx(labelsMagic, []uint32{uint32(n)}, payload)
		}
		target := strings.TrimSuffix(name, ".gz")
		if name == TestLabelsFile {
			target = name // raw bytes under the gzip name: told by content
		}
		if err := os.WriteFile(filepath.Join(dir, target), raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct{ got, want *Set }{{got.Train, want.Train}, {got.Validation, want.Validation}, {got.Test, want.Test}} {
		if !bytes.Equal(p.got.Images, p.want.Images) || !bytes.Equal(p.got.Labels, p.want.Labels) {
			t.Errorf("raw files read differently from gzipped ones")
		}
	}
}

// TestLoadWritesNothing: a user's folder is read, never written.
func TestLoadWritesNothing(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{TrainImagesFile, TrainLabelsFile, TestImagesFile, TestLabelsFile} {
		b, err := os.ReadFile(filepath.Join(smallDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o444); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(dir, old, old); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)
	if _, err := Load(dir); err != nil {
		t.Fatal(err)
	}
	if after := snapshot(t, dir); after != before {
		t.Errorf("Load changed the folder:\nbefore %s\nafter  %s", before, after)
	}
}

// snapshot describes every entry of dir and dir itself: name, size, mode,
// modification time.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %v %v %d; ", path, fi.Mode(), fi.ModTime(), fi.Size())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestLoadErrors(t *testing.T) {
	missingOne := t.TempDir()
	for _, name := range []string{TrainImagesFile, TrainLabelsFile, TestImagesFile} {
		b, err := os.ReadFile(filepath.Join(smallDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(missingOne, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Test images of another size than the training images.
	otherSize := t.TempDir()
	tiny := func(magic uint32, dims []uint32, payload []byte) []byte { return gz(t, idx(magic, dims, payload)) }
	files := map[string][]byte{
		TrainImagesFile: tiny(0x803, []uint32{20, 2, 2}, make([]byte, 80)),
		TrainLabelsFile: tiny(0x801, []uint32{20}, make([]byte, 20)),
		TestImagesFile:  tiny(0x803, []uint32{1, 3, 3}, make([]byte, 9)),
		TestLabelsFile:  tiny(0x801, []uint32{1}, []byte{0}),
	}
	writeAll(t, otherSize, files)
	tooFew := t.TempDir()
	files[TrainImagesFile] = tiny(0x803, []uint32{9, 3, 3}, make([]byte, 81))
	files[TrainLabelsFile] = tiny(0x801, []uint32{9}, make([]byte, 9))
	writeAll(t, tooFew, files)

	tests := []struct {
		name, dir, want string
	}{
		{"no folder", filepath.Join(t.TempDir(), "nope"), "no such file"},
		{"a file", filepath.Join(smallDir, TrainImagesFile), "not a folder"},
		{"one missing", missingOne, "neither t10k-labels-idx1-ubyte.gz nor t10k-labels-idx1-ubyte"},
		{"sizes differ", otherSize, "test images are 3x3, training images 2x2"},
		{"too few", tooFew, "9 training images are too few"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.dir) {
				t.Errorf("Load: %v, want an error naming %s and saying %q", err, tt.dir, tt.want)
			}
		})
	}
}

func writeAll(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestValidationLen(t *testing.T) {
	for _, tt := range []struct{ n, want int }{
		{60000, 5000}, {10000, 5000}, {9999, 999}, {1000, 100}, {10, 1}, {9, 0}, {0, 0},
	} {
		if got := ValidationLen(tt.n); got != tt.want {
			t.Errorf("ValidationLen(%d) = %d, want %d", tt.n, got, tt.want)
		}
	}
}

func TestSliceSharesAndIsCapped(t *testing.T) {
	s := &Set{Images: []uint8{0, 1, 2, 3, 4, 5, 6, 7}, Labels: []uint8{0, 1, 2, 3}, Rows: 1, Cols: 2}
	head, tail := s.Slice(0, 2), s.Slice(2, 4)
	if head.Len() != 2 || !bytes.Equal(tail.Images, []uint8{4, 5, 6, 7}) || !bytes.Equal(tail.Labels, []uint8{2, 3}) {
		t.Fatalf("Slice: head %v, tail %v", head, tail)
	}
	tail.Images[0] = 99
	if s.Images[4] != 99 {
		t.Error("Slice copied instead of sharing")
	}
	head.Images = append(head.Images, 42, 42)
	head.Labels = append(head.Labels, 9)
	if s.Images[4] != 99 || s.Labels[2] != 2 {
		t.Error("appending to the first part overwrote the second")
	}
}

func TestScaleBatch(t *testing.T) {
	s := &Set{Images: []uint8{0, 255, 128, 1, 51, 254}, Labels: []uint8{1, 2, 3}, Rows: 1, Cols: 2}
	dst := make([]float32, 7)
	dst[6] = -1 // past the batch: must stay as it is
	s.ScaleBatch([]int{2, 0, 1}, dst)
	want := []float32{51.0 / 255, 254.0 / 255, 0, 1, 128.0 / 255, 1.0 / 255, -1}
	for i := range want {
		if dst[i] != want[i] {
			t.Errorf("dst[%d] = %v, want %v", i, dst[i], want[i])
		}
	}

	small, err := Load(smallDir)
	if err != nil {
		t.Fatal(err)
	}
	idx := []int{0, 899, 17}
	batch := make([]float32, len(idx)*small.Train.Pixels())
	small.Train.ScaleBatch(idx, batch)
	var lo, hi float32 = 1, 0
	for i, v := range batch {
		if v < 0 || v > 1 {
			t.Fatalf("batch[%d] = %v, outside [0, 1]", i, v)
		}
		lo, hi = min(lo, v), max(hi, v)
		if p := small.Train.Images[idx[i/784]*784+i%784]; v != float32(p)/255 {
			t.Fatalf("batch[%d] = %v, want %d/255", i, v, p)
		}
	}
	if lo != 0 || hi != 1 {
		t.Errorf("batch spans [%v, %v], want [0, 1] for real digits", lo, hi)
	}

	defer func() {
		if recover() == nil {
			t.Error("ScaleBatch into a short dst did not panic")
		}
	}()
	small.Train.ScaleBatch(idx, batch[:10])
}

func BenchmarkScaleBatch128(b *testing.B) {
	s, err := Load(smallDir)
	if err != nil {
		b.Fatal(err)
	}
	idx := make([]int, 128)
	for i := range idx {
		idx[i] = (i * 37) % s.Train.Len()
	}
	dst := make([]float32, len(idx)*s.Train.Pixels())
	b.SetBytes(int64(len(dst)))
	for b.Loop() {
		s.Train.ScaleBatch(idx, dst)
	}
}

// TestBatch checks Set.Batch: every image in order, scaled as ScaleBatch
// scales, with its label.
func TestBatch(t *testing.T) {
	s := &Set{Images: []uint8{0, 255, 128, 1, 51, 254}, Labels: []uint8{7, 0, 9}, Rows: 1, Cols: 2}
	x, labels := s.Batch()
	wantX := []float32{0, 1, 128.0 / 255, 1.0 / 255, 51.0 / 255, 254.0 / 255}
	if len(x) != len(wantX) || len(labels) != 3 {
		t.Fatalf("Batch: %d values and %d labels, want %d and 3", len(x), len(labels), len(wantX))
	}
	for i := range wantX {
		if x[i] != wantX[i] {
			t.Errorf("x[%d] = %v, want %v", i, x[i], wantX[i])
		}
	}
	for i, want := range []int32{7, 0, 9} {
		if labels[i] != want {
			t.Errorf("labels[%d] = %d, want %d", i, labels[i], want)
		}
	}
}
