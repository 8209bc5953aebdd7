package mnist

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

const (
	smallDir = "../testdata/mnist-small"
	badDir   = "../testdata/bad"
)

// idx builds an IDX file: magic, dimensions, payload.
func idx(magic uint32, dims []uint32, payload []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, magic)
	for _, d := range dims {
		b = binary.BigEndian.AppendUint32(b, d)
	}
	return append(b, payload...)
}

func gz(t testing.TB, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestReadSetBadFiles holds every malformed file under testdata/bad to an
// error that names the file and says what is wrong with it.
func TestReadSetBadFiles(t *testing.T) {
	goodImages := filepath.Join(smallDir, TrainImagesFile)
	goodLabels := filepath.Join(smallDir, TrainLabelsFile)
	bad := func(name string) string { return filepath.Join(badDir, name) }
	tests := []struct {
		images, labels string
		want           []string // substrings of the error
	}{
		{bad("truncated.gz"), goodLabels, []string{"images file", "truncated", "7840 bytes"}},
		{bad("truncated-raw-images"), goodLabels, []string{"images file", "truncated", "data ends after 3912"}},
		{bad("notgzip"), goodLabels, []string{"images file", "bad magic 0x86ad05dc, want 0x00000803"}},
		{goodImages, bad("notgzip"), []string{"labels file", "bad magic 0x86ad05dc, want 0x00000801"}},
		{bad("badmagic-images.gz"), goodLabels, []string{"images file: bad magic 0x00000801, want 0x00000803"}},
		{goodImages, goodImages, []string{"labels file: bad magic 0x00000803, want 0x00000801"}},
		{bad("huge-header-images"), goodLabels, []string{"claims 2147483648 images of 28x28", "limit"}},
		{bad("labels-count-mismatch-images.gz"), bad("labels-count-mismatch-labels.gz"), []string{"9 labels", "holds 10 images"}},
		{bad("corrupt-crc.gz"), goodLabels, []string{"images file", "gzip: invalid checksum"}},
		{goodImages, bad("bad-label.gz"), []string{"label 11 at index 3"}},
		{bad("trailing-bytes.gz"), goodLabels, []string{"trailing bytes"}},
		{goodImages, bad("trailing-bytes-raw-labels"), []string{"labels file", "trailing bytes"}},
		{bad("trailing-after-gzip.gz"), goodLabels, []string{"trailing bytes after the gzip stream"}},
		{bad("missing"), goodLabels, []string{"no such file"}},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.images)+"+"+filepath.Base(tt.labels), func(t *testing.T) {
			s, err := ReadSet(tt.images, tt.labels)
			if err == nil {
				t.Fatalf("ReadSet read %d images, want an error", s.Len())
			}
			msg := err.Error()
			if !strings.Contains(msg, "read "+tt.images+": ") && !strings.Contains(msg, "read "+tt.labels+": ") {
				t.Errorf("error %q names neither file", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not say %q", msg, w)
				}
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error %q is more than one line", msg)
			}
		})
	}
}

// TestReadMalformed covers the headers and streams that are easier to build
// in memory than to keep as files.
func TestReadMalformed(t *testing.T) {
	px := make([]byte, 4*3*2)
	tests := []struct {
		name   string
		labels bool // read with ReadLabels, not ReadImages
		data   []byte
		want   string
	}{
		{"empty", false, nil, "images file: empty"},
		{"empty gzip", false, gz(t, nil), "images file: empty"},
		{"one byte", false, []byte{0x1f}, "truncated header: 1 of 16 bytes"},
		{"magic only", false, idx(0x803, nil, nil), "truncated header: 4 of 16 bytes"},
		{"short wrong magic", false, idx(0x801, []uint32{5}, nil), "bad magic 0x00000801"},
		{"zero images", false, idx(0x803, []uint32{0, 28, 28}, nil), "0 images"},
		{"zero rows", false, idx(0x803, []uint32{4, 0, 28}, nil), "4 images of 0x28"},
		{"max dims", false, idx(0x803, []uint32{1<<32 - 1, 1<<32 - 1, 1<<32 - 1}, nil), "limit"},
		{"just over the limit", false, idx(0x803, []uint32{1<<30 + 1, 1, 1}, nil), "limit"},
		{"gzip of truncated", false, gz(t, idx(0x803, []uint32{4, 3, 2}, px[:23])), "data ends after 23"},
		{"garbage gzip header", false, []byte{0x1f, 0x8b, 0, 0, 0, 0, 0, 0, 0, 0}, "gzip"},
		{"corrupt deflate", false, append([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255}, bytes.Repeat([]byte{0xff}, 40)...), "images file"},
		{"labels empty", true, nil, "labels file: empty"},
		{"labels zero", true, idx(0x801, []uint32{0}, nil), "0 labels"},
		{"labels over the limit", true, idx(0x801, []uint32{1<<32 - 1}, nil), "limit"},
		{"labels truncated", true, idx(0x801, []uint32{5}, []byte{1, 2}), "truncated: header claims 5 labels (5 bytes), data ends after 2"},
		{"labels 10", true, idx(0x801, []uint32{3}, []byte{9, 0, 10}), "label 10 at index 2"},
		{"labels 255", true, idx(0x801, []uint32{1}, []byte{255}), "label 255 at index 0"},
		{"labels trailing", true, gz(t, idx(0x801, []uint32{1}, []byte{1, 2})), "trailing bytes"},
		{"labels as images", true, idx(0x803, []uint32{1, 1, 1}, []byte{1}), "labels file: bad magic 0x00000803, want 0x00000801"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.labels {
				_, err = ReadLabels(bytes.NewReader(tt.data))
			} else {
				_, _, _, _, err = ReadImages(bytes.NewReader(tt.data))
			}
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
		})
	}
}

// TestReadWellFormed reads tiny files both raw and gzipped.
func TestReadWellFormed(t *testing.T) {
	px := []byte{0, 1, 2, 3, 4, 5, 250, 251, 252, 253, 254, 255}
	images := idx(0x803, []uint32{2, 3, 2}, px)
	labels := idx(0x801, []uint32{2}, []byte{0, 9})
	for _, form := range []struct {
		name           string
		images, labels []byte
	}{{"raw", images, labels}, {"gzip", gz(t, images), gz(t, labels)}} {
		t.Run(form.name, func(t *testing.T) {
			data, n, rows, cols, err := ReadImages(bytes.NewReader(form.images))
			if err != nil {
				t.Fatal(err)
			}
			if n != 2 || rows != 3 || cols != 2 || !bytes.Equal(data, px) {
				t.Errorf("ReadImages = %v, %d, %d, %d; want %v, 2, 3, 2", data, n, rows, cols, px)
			}
			l, err := ReadLabels(bytes.NewReader(form.labels))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(l, []byte{0, 9}) {
				t.Errorf("ReadLabels = %v, want [0 9]", l)
			}
		})
	}
}

// TestLyingHeaderAllocatesLittle checks that what a header claims is not
// what gets allocated: the data read so far is.
func TestLyingHeaderAllocatesLittle(t *testing.T) {
	huge, err := os.ReadFile(filepath.Join(badDir, "huge-header-images"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"2^31 images", huge, "limit"},
		// 822 MB claimed, under the limit, so only reading finds the lie.
		{"2^20 images", idx(0x803, []uint32{1 << 20, 28, 28}, make([]byte, 100)), "data ends after 100"},
		{"2^20 images gzipped", gz(t, idx(0x803, []uint32{1 << 20, 28, 28}, make([]byte, 100))), "data ends after 100"},
		{"2^30 labels", idx(0x801, []uint32{1 << 30}, make([]byte, 100)), "data ends after 100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			var err error
			if binary.BigEndian.Uint32(tt.data) == labelsMagic {
				_, err = ReadLabels(bytes.NewReader(tt.data))
			} else {
				_, _, _, _, err = ReadImages(bytes.NewReader(tt.data))
			}
			runtime.ReadMemStats(&after)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one saying %q", err, tt.want)
			}
			if got := after.TotalAlloc - before.TotalAlloc; got > 2*firstChunk {
				t.Errorf("allocated %d bytes for a %d-byte file", got, len(tt.data))
			}
		})
	}
}
