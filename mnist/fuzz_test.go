package mnist

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"io"
	"math/bits"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"
)

// fuzzSeeds adds every file under testdata/bad, the small label files, the
// head of the small training files cut to two records, and headers that lie,
// each raw and gzipped. The head stands in for the 161 KB image file, which
// would slow every mutation down and cover nothing the head does not.
func fuzzSeeds(f *testing.F) {
	paths, err := filepath.Glob(filepath.Join(badDir, "*"))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no seed files under %s: %v", badDir, err)
	}
	paths = append(paths, filepath.Join(smallDir, TrainLabelsFile), filepath.Join(smallDir, TestLabelsFile))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	images, _ := gunzipIDX(f, filepath.Join(smallDir, TrainImagesFile), 16)
	labels, _ := gunzipIDX(f, filepath.Join(smallDir, TrainLabelsFile), 8)
	for _, b := range [][]byte{
		idx(imagesMagic, []uint32{2, 28, 28}, images[:2*28*28]),
		idx(labelsMagic, []uint32{2}, labels[:2]),
		idx(imagesMagic, []uint32{2, 3, 2}, make([]byte, 12)),
		idx(labelsMagic, []uint32{2}, []byte{0, 9}),
		// Claims under the limit that only reading finds false.
		idx(imagesMagic, []uint32{1 << 20, 28, 28}, make([]byte, 100)),
		idx(labelsMagic, []uint32{1 << 30}, make([]byte, 100)),
	} {
		f.Add(b)
		f.Add(gz(f, b))
	}
}

// inflateLimit bounds what the oracle inflates. The fuzzer's inputs are far
// too small to reach it (deflate expands at most about 1,000 times); it only
// keeps a stray huge input from eating memory in the check itself.
const inflateLimit = 64 << 20

// inflateState says how far the oracle got with an input.
type inflateState int

const (
	inflateOK      inflateState = iota // plain is everything the readers can see
	inflateFailed                      // the gzip stream is broken: the readers must fail
	inflateTooLong                     // more than inflateLimit: not checked
)

// asRead is b as the readers see it: inflated with compress/gzip alone when
// it starts with the gzip magic, as far as inflating gets, and as it is
// otherwise. The readers use the same decompressor, so this is no check of
// gzip; it is what the checks of the IDX layer compare against.
func asRead(b []byte) (plain []byte, state inflateState) {
	if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		return b, inflateOK
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, inflateFailed
	}
	var out bytes.Buffer
	_, err = io.Copy(&out, io.LimitReader(zr, inflateLimit+1))
	switch {
	case err != nil:
		return out.Bytes(), inflateFailed
	case out.Len() > inflateLimit:
		return nil, inflateTooLong
	}
	return out.Bytes(), inflateOK
}

// wellFormed is an IDX file by its definition, written apart from the
// reader: magic, dims nonzero dimensions whose product is at most
// maxDataBytes, and exactly that many bytes after the header. It returns
// those bytes.
func wellFormed(p []byte, magic uint32, dims int) ([]byte, bool) {
	headerLen := 4 * (1 + dims)
	if len(p) < headerLen || binary.BigEndian.Uint32(p) != magic {
		return nil, false
	}
	size := uint64(1)
	for i := range dims {
		d := uint64(binary.BigEndian.Uint32(p[4*(i+1):]))
		hi, lo := bits.Mul64(size, d)
		if d == 0 || hi != 0 || lo > maxDataBytes {
			return nil, false
		}
		size = lo
	}
	if uint64(len(p)-headerLen) != size {
		return nil, false
	}
	return p[headerLen:], true
}

// heapAllocated is the bytes allocated on the heap so far, as
// runtime/metrics has them: read without stopping the world, so the fuzzer
// can afford it on every input, but with small allocations counted late, in
// bursts when a collection flushes the per-P caches.
func heapAllocated() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// checkAllocation runs read, which reads input, and fails t if it allocates
// more than allocationAllowed for the bytes present (plain). The cheap
// heapAllocated decides for most inputs; a figure over the bound is measured
// again by totalAlloc, exact but stopping the world, so that a burst of late
// counts from earlier inputs does not pass for this one's cost. read must
// give the same result when run twice.
func checkAllocation(t *testing.T, input, plain []byte, state inflateState, read func()) {
	t.Helper()
	before := heapAllocated()
	read()
	allocated := heapAllocated() - before
	if state == inflateTooLong {
		return
	}
	allowed := allocationAllowed(len(plain))
	if allocated > allowed {
		allocated = totalAlloc(read)
	}
	if allocated > allowed {
		t.Errorf("allocated %d bytes for %d bytes of input (%d as read); allowed %d", allocated, len(input), len(plain), allowed)
	}
}

// allocationAllowed is what reading an input of which present bytes are
// there may cost: the buffers, which double as data arrives (at most four
// times the data together), and 1 MiB for the readers themselves (gzip's
// window and tables, bufio) and for noise. What a header claims is not in it.
func allocationAllowed(present int) uint64 {
	return 4*uint64(present) + 1<<20
}

// checkReadError holds an error to the package's form: one line, naming the
// kind of file first.
func checkReadError(t *testing.T, err error, what string) {
	t.Helper()
	if msg := err.Error(); !strings.HasPrefix(msg, what+": ") || strings.Contains(msg, "\n") {
		t.Errorf("error %q is not one line starting %q", msg, what+": ")
	}
}

// readFuzzed runs read on a fuzzed input b under checkAllocation and holds
// its error to checkReadError's form (what names the file); it returns b as
// the reader sees it, inflated if gzipped, how that went, and read's error.
func readFuzzed(t *testing.T, b []byte, what string, read func(io.Reader) error) (plain []byte, state inflateState, err error) {
	t.Helper()
	plain, state = asRead(b)
	checkAllocation(t, b, plain, state, func() { err = read(bytes.NewReader(b)) })
	if err != nil {
		checkReadError(t, err, what)
	}
	return plain, state, err
}

// FuzzReadImages: any input is an error or exactly the images it holds by
// the IDX definition; never a panic, and never an allocation that the bytes
// present do not justify, whatever the header claims.
func FuzzReadImages(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		var (
			data          []byte
			n, rows, cols int
		)
		plain, state, err := readFuzzed(t, b, "images file", func(r io.Reader) (err error) {
			data, n, rows, cols, err = ReadImages(r)
			return err
		})
		if err == nil && (n <= 0 || rows <= 0 || cols <= 0 || len(data) != n*rows*cols) {
			t.Fatalf("ReadImages = %d bytes, %d images of %dx%d", len(data), n, rows, cols)
		}
		if state == inflateTooLong {
			return
		}
		want, ok := wellFormed(plain, imagesMagic, 3)
		switch {
		case state == inflateFailed && err == nil:
			t.Fatalf("ReadImages read %d images from a broken gzip stream", n)
		case state == inflateFailed:
			// Then the error is all there is, and it was checked above.
		case ok && err != nil:
			t.Fatalf("ReadImages: %v, for a well-formed file", err)
		case !ok && err == nil:
			t.Fatalf("ReadImages read %d images of %dx%d from a malformed file", n, rows, cols)
		case ok && !bytes.Equal(data, want):
			t.Fatal("ReadImages returned other pixels than the file holds")
		case ok && (uint32(n) != binary.BigEndian.Uint32(plain[4:]) || uint32(rows) != binary.BigEndian.Uint32(plain[8:]) || uint32(cols) != binary.BigEndian.Uint32(plain[12:])):
			t.Fatalf("ReadImages = %d images of %dx%d, not what the header says", n, rows, cols)
		}
	})
}

// FuzzReadLabels: any input is an error or exactly the digits it holds;
// never a panic, never an allocation the bytes present do not justify.
func FuzzReadLabels(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		var labels []byte
		plain, state, err := readFuzzed(t, b, "labels file", func(r io.Reader) (err error) {
			labels, err = ReadLabels(r)
			return err
		})
		if err == nil {
			if len(labels) == 0 {
				t.Fatal("no labels and no error")
			}
			for i, l := range labels {
				if l >= NumClasses {
					t.Fatalf("label %d at index %d", l, i)
				}
			}
		}
		if state == inflateTooLong {
			return
		}
		want, ok := wellFormed(plain, labelsMagic, 1)
		for _, l := range want {
			if l >= NumClasses {
				ok = false
			}
		}
		switch {
		case state == inflateFailed && err == nil:
			t.Fatalf("ReadLabels read %d labels from a broken gzip stream", len(labels))
		case state == inflateFailed:
			// Then the error is all there is, and it was checked above.
		case ok && err != nil:
			t.Fatalf("ReadLabels: %v, for a well-formed file", err)
		case !ok && err == nil:
			t.Fatalf("ReadLabels read %d labels from a malformed file", len(labels))
		case ok && !bytes.Equal(labels, want):
			t.Fatal("ReadLabels returned other labels than the file holds")
		}
	})
}

// TestAllocationFollowsData: reading costs what the data present justifies,
// never what the header claims. The claims are under the 1 GiB limit, so
// only reading finds them false; a 100-byte file must cost under 1 MiB,
// and a gzipped one may cost what it inflates to, since deflate
// legitimately expands a thousandfold.
func TestAllocationFollowsData(t *testing.T) {
	images := func(present int) []byte {
		return idx(imagesMagic, []uint32{1 << 20, 28, 28}, make([]byte, present)) // 822 MB claimed
	}
	labels := func(present int) []byte {
		return idx(labelsMagic, []uint32{1 << 30}, make([]byte, present))
	}
	tests := []struct {
		name    string
		labels  bool // read with ReadLabels, not ReadImages
		data    []byte
		present int // bytes after inflating, header included
	}{
		{"empty images", false, images(0), 16},
		{"100 bytes of images", false, images(100), 116},
		{"100 bytes of images gzipped", false, gz(t, images(100)), 116},
		{"100 kB of images", false, images(100_000), 100_016},
		{"3 MB of images gzipped", false, gz(t, images(3_000_000)), 3_000_016},
		{"100 labels", true, labels(100), 108},
		{"100 labels gzipped", true, gz(t, labels(100)), 108},
		{"2 MB of labels", true, labels(2_000_000), 2_000_008},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			allocated := totalAlloc(func() {
				if tt.labels {
					_, err = ReadLabels(bytes.NewReader(tt.data))
				} else {
					_, _, _, _, err = ReadImages(bytes.NewReader(tt.data))
				}
			})
			if err == nil || !strings.Contains(err.Error(), "truncated") {
				t.Fatalf("error %v, want one saying the file is truncated", err)
			}
			if allowed := allocationAllowed(tt.present); allocated > allowed {
				t.Errorf("allocated %d bytes for %d bytes of data (%d in the file); allowed %d", allocated, tt.present, len(tt.data), allowed)
			}
			if tt.present < 1000 && allocated >= 1<<20 {
				t.Errorf("allocated %d bytes for a %d-byte file, want under 1 MiB", allocated, len(tt.data))
			}
		})
	}
}

// TestOverLimitAllocatesNothing: a header claiming more than the limit, such
// as 2^31 images in a 116-byte file, is refused from the header alone,
// before any buffer for the data exists.
func TestOverLimitAllocatesNothing(t *testing.T) {
	huge, err := os.ReadFile(filepath.Join(badDir, "huge-header-images"))
	if err != nil {
		t.Fatal(err)
	}
	hugeGz := gz(t, huge)
	hugeLabels := idx(labelsMagic, []uint32{1<<30 + 1}, make([]byte, 100))
	tests := []struct {
		name string
		read func() error
	}{
		{"images", func() error { _, _, _, _, err := ReadImages(bytes.NewReader(huge)); return err }},
		{"images gzipped", func() error { _, _, _, _, err := ReadImages(bytes.NewReader(hugeGz)); return err }},
		{"labels", func() error { _, err := ReadLabels(bytes.NewReader(hugeLabels)); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			allocated := totalAlloc(func() { err = tt.read() })
			if err == nil || !strings.Contains(err.Error(), "limit") {
				t.Fatalf("error %v, want one naming the limit", err)
			}
			// gzip's window and tables, the header, the message; no data buffer.
			if allocated >= firstChunk {
				t.Errorf("allocated %d bytes before refusing the header", allocated)
			}
		})
	}
}

// totalAlloc is the bytes run allocates, exactly: ReadMemStats flushes
// every cache, which the fuzzer cannot afford but one test can.
func totalAlloc(run func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	run()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
