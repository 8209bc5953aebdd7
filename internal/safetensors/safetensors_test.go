package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// sameFiles reports how a and b differ, or "" if they hold the same
// metadata and tensors; values compare by bits, so NaN equals NaN.
func sameFiles(a, b *File) string {
	if !maps.Equal(a.Metadata, b.Metadata) {
		return "metadata differ"
	}
	if len(a.Tensors) != len(b.Tensors) {
		return "tensor counts differ"
	}
	for i, x := range a.Tensors {
		y := b.Tensors[i]
		if x.Name != y.Name || !slices.Equal(x.Shape, y.Shape) || len(x.Data) != len(y.Data) {
			return "tensor " + x.Name + " differs in name, shape or length"
		}
		for j := range x.Data {
			if math.Float32bits(x.Data[j]) != math.Float32bits(y.Data[j]) {
				return "tensor " + x.Name + " differs in data"
			}
		}
	}
	return ""
}

func mustWrite(t testing.TB, f *File) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Write(&b, f); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func ramp(n int) []float32 {
	d := make([]float32, n)
	for i := range d {
		d[i] = float32(i)*0.5 - 3
	}
	return d
}

// sample has what a checkpoint holds, in an order that is not sorted by
// name, and the odd cases: a scalar, an empty tensor, special values.
func sample(meta map[string]string) *File {
	return &File{
		Metadata: meta,
		Tensors: []Tensor{
			{Name: "fc2.weight", Shape: []int{10, 3}, Data: ramp(30)},
			{Name: "fc1.weight", Shape: []int{3, 5}, Data: ramp(15)},
			{Name: "empty", Shape: []int{4, 0}, Data: []float32{}},
			{Name: "fc1.bias", Shape: []int{3}, Data: []float32{float32(math.NaN()), float32(math.Inf(-1)), float32(math.Copysign(0, -1))}},
			{Name: "step", Shape: []int{}, Data: []float32{42}},
			{Name: "optimizer.fc1.weight.velocity", Shape: []int{3, 5}, Data: ramp(15)},
		},
	}
}

func TestRoundTrip(t *testing.T) {
	for name, meta := range map[string]map[string]string{
		"no metadata":    nil,
		"empty metadata": {},
		"metadata":       {"format": "pt", "epochs": "3", "odd <&> \"quoted\"\n": "ünïcode"},
	} {
		t.Run(name, func(t *testing.T) {
			want := sample(meta)
			raw := mustWrite(t, want)
			n := binary.LittleEndian.Uint64(raw)
			if n%8 != 0 {
				t.Errorf("header is %d bytes, not a multiple of 8", n)
			}
			got, err := Read(bytes.NewReader(raw), int64(len(raw)))
			if err != nil {
				t.Fatal(err)
			}
			if d := sameFiles(want, got); d != "" {
				t.Error(d)
			}
			if tn, ok := got.Get("step"); !ok || len(tn.Data) != 1 || tn.Data[0] != 42 {
				t.Errorf("Get(step) = %v, %v", tn, ok)
			}
			if _, ok := got.Get("nope"); ok {
				t.Error("Get found a tensor that is not there")
			}
		})
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.safetensors")
	want := sample(map[string]string{"k": "v"})
	if err := os.WriteFile(path, mustWrite(t, want), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if d := sameFiles(want, got); d != "" {
		t.Error(d)
	}
	if _, err := ReadFile(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("ReadFile of a folder: %v", err)
	}
	if _, err := ReadFile(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadFile of a missing file: %v", err)
	}
}

// TestBytesExact checks Write against files built by hand from the spec.
// The first two are also the reference implementation's own test vectors
// (test_serialization_forced_alignement, test_empty).
func TestBytesExact(t *testing.T) {
	// f32le is each value's bytes in the file, written out by hand rather
	// than by encoding/binary so that the test does not share the code
	// under test.
	f32le := map[float32][]byte{
		0: {0x00, 0x00, 0x00, 0x00},
		1: {0x00, 0x00, 0x80, 0x3f},
		2: {0x00, 0x00, 0x00, 0x40},
		3: {0x00, 0x00, 0x40, 0x40},
		4: {0x00, 0x00, 0x80, 0x40},
		5: {0x00, 0x00, 0xa0, 0x40},
	}
	attn := []byte{72, 0, 0, 0, 0, 0, 0, 0} // 65 bytes of JSON, padded to 72
	attn = append(attn, `{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}`+"       "...)
	for v := range 6 {
		attn = append(attn, f32le[float32(v)]...)
	}

	cases := []struct {
		name string
		f    *File
		want []byte
	}{
		{"forced alignment", &File{Tensors: []Tensor{{Name: "attn0", Shape: []int{1, 1, 2, 3}, Data: []float32{0, 1, 2, 3, 4, 5}}}}, attn},
		{"empty", &File{}, append([]byte{8, 0, 0, 0, 0, 0, 0, 0}, "{}      "...)},
		{"metadata only", &File{Metadata: map[string]string{"framework": "pt"}},
			append([]byte{40, 0, 0, 0, 0, 0, 0, 0}, `{"__metadata__":{"framework":"pt"}}`+"     "...)},
		{"scalar, empty, order", &File{
			Metadata: map[string]string{"b": "<&>", "a": "1"},
			Tensors: []Tensor{
				{Name: "z", Shape: []int{2}, Data: []float32{2, 3}},
				{Name: "e", Shape: []int{0, 5}, Data: nil},
				{Name: "s", Data: []float32{1}},
			},
		}, slices.Concat(
			// 197 bytes of JSON and 3 of padding.
			[]byte{200, 0, 0, 0, 0, 0, 0, 0},
			[]byte(`{"__metadata__":{"a":"1","b":"<&>"},`+
				`"z":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},`+
				`"e":{"dtype":"F32","shape":[0,5],"data_offsets":[8,8]},`+
				`"s":{"dtype":"F32","shape":[],"data_offsets":[8,12]}}   `),
			f32le[2], f32le[3], f32le[1],
		)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := mustWrite(t, c.f)
			if !bytes.Equal(got, c.want) {
				t.Errorf("Write gave\n%q\nwant\n%q", got, c.want)
			}
			back, err := Read(bytes.NewReader(c.want), int64(len(c.want)))
			if err != nil {
				t.Fatal(err)
			}
			if d := sameFiles(c.f, back); d != "" {
				t.Error(d)
			}
		})
	}
}

// file builds a file from its header, padded to a multiple of 8, and its
// data.
func file(header string, data ...byte) []byte {
	for len(header)%8 != 0 {
		header += " "
	}
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(b, header...), data...)
}

// entry1 is the header entry of a one-tensor file, for the malformed cases.
func entry1(name, dtype, shape string, begin, end int) string {
	return `"` + name + `":{"dtype":"` + dtype + `","shape":` + shape +
		`,"data_offsets":[` + strconv.Itoa(begin) + `,` + strconv.Itoa(end) + `]}`
}

func TestMalformed(t *testing.T) {
	valid := mustWrite(t, &File{
		Metadata: map[string]string{"k": "v"},
		Tensors: []Tensor{
			{Name: "a", Shape: []int{2, 2}, Data: ramp(4)},
			{Name: "b", Shape: []int{3}, Data: ramp(3)},
		},
	})
	hdrEnd := 8 + int(binary.LittleEndian.Uint64(valid))
	eight := make([]byte, 8)
	sixteen := make([]byte, 16)
	a := entry1("a", "F32", "[2]", 0, 8)

	cases := []struct {
		name string
		raw  []byte
		want string // a part of the error
	}{
		{"nothing", nil, "fewer than the 8"},
		{"7 bytes", valid[:7], "fewer than the 8"},
		{"length only", valid[:8], "header claims"},
		{"cut in header", valid[:20], "header claims"},
		{"cut before header end", valid[:hdrEnd-1], "header claims"},
		{"cut at header end", valid[:hdrEnd], "ends at byte"},
		{"cut in first tensor", valid[:hdrEnd+5], "ends at byte"},
		{"cut in last tensor", valid[:len(valid)-1], "ends at byte"},
		{"header length 2^32", append(binary.LittleEndian.AppendUint64(nil, 1<<32), make([]byte, 112)...),
			"header claims 4294967296 bytes but the file has 120"},
		{"header length 2^64-1", append(binary.LittleEndian.AppendUint64(nil, math.MaxUint64), "{}"...), "header claims"},
		{"empty header", file(""), "empty"},
		{"not an object", file(`["a"]`), "not '{'"},
		{"leading space", file(` {}`), "not '{'"},
		{"bad JSON", file(`{"a":`), "not valid JSON"},
		{"bad JSON comma", file(`{"a":{"dtype":"F32",}}`), "not valid JSON"},
		{"two objects", file(`{} {}`), "after its JSON object"},
		{"newline padding", file("{}\n"), "after its JSON object"},
		{"NUL padding", append(binary.LittleEndian.AppendUint64(nil, 8), "{}\x00\x00\x00\x00\x00\x00"...), "after its JSON object"},
		{"invalid UTF-8", file("{\"\xff\":{}}"), "UTF-8"},
		{"unknown dtype", file(`{`+entry1("w", "F33", "[2]", 0, 8)+`}`, eight...), `tensor "w" has unknown dtype "F33"`},
		{"unsupported dtype", file(`{`+entry1("w", "F16", "[4]", 0, 8)+`}`, eight...), `tensor "w" has dtype F16`},
		{"dtype not a string", file(`{"w":{"dtype":32,"shape":[],"data_offsets":[0,4]}}`, 0, 0, 0, 0), "dtype is 32"},
		{"overlap", file(`{`+a+`,`+entry1("b", "F32", "[2]", 4, 12)+`}`, sixteen[:12]...), "overlapping"},
		{"hole", file(`{`+a+`,`+entry1("b", "F32", "[1]", 12, 16)+`}`, sixteen...), "belong to no tensor"},
		{"hole at start", file(`{`+entry1("b", "F32", "[1]", 4, 8)+`}`, eight...), "bytes 0 to 4"},
		{"trailing bytes", file(`{`+a+`}`, sixteen[:9]...), "the tensors end at byte 8 of the data but the file has 9"},
		{"trailing bytes, no tensors", file(`{}`, 0), "end at byte 0 of the data but the file has 1"},
		{"end before begin", file(`{`+entry1("b", "F32", "[0]", 8, 0)+`}`, eight...), "ending before it begins"},
		{"offsets beyond data", file(`{`+entry1("b", "F32", "[4]", 0, 16)+`}`, eight...), "ends at byte 16"},
		{"shape too small", file(`{`+entry1("b", "F32", "[1]", 0, 8)+`}`, eight...), "hold 8"},
		{"shape too large", file(`{`+entry1("b", "F32", "[3]", 0, 8)+`}`, eight...), "hold 8"},
		{"negative dim", file(`{`+entry1("b", "F32", "[-2,-1]", 0, 8)+`}`, eight...), "dimension -2"},
		{"fractional dim", file(`{`+entry1("b", "F32", "[2.0]", 0, 8)+`}`, eight...), "dimension 2.0"},
		{"exponent dim", file(`{`+entry1("b", "F32", "[2e0]", 0, 8)+`}`, eight...), "dimension 2e0"},
		{"dim beyond int", file(`{`+entry1("b", "F32", "[99999999999999999999]", 0, 8)+`}`, eight...), "not an integer"},
		{"dims overflow", file(`{`+entry1("b", "F32", "[4294967296,4294967296]", 0, 8)+`}`, eight...), "overflows"},
		{"bytes overflow", file(`{`+entry1("b", "F32", "[4611686018427387904]", 0, 8)+`}`, eight...), "overflows"},
		{"shape not array", file(`{"b":{"dtype":"F32","shape":2,"data_offsets":[0,8]}}`, eight...), "want '['"},
		{"shape of strings", file(`{"b":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}}`, eight...), "not a number"},
		{"three offsets", file(`{"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8,8]}}`, eight...), "not 2"},
		{"negative offset", file(`{"b":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}}`, eight...), "offset -8"},
		{"missing offsets", file(`{"b":{"dtype":"F32","shape":[2]}}`, eight...), "has no data_offsets"},
		{"missing dtype", file(`{"b":{"shape":[2],"data_offsets":[0,8]}}`, eight...), "has no dtype"},
		{"unknown key", file(`{"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}}`, eight...), `unknown key "x"`},
		{"entry not object", file(`{"b":[1]}`), "want '{'"},
		{"duplicate tensor", file(`{`+a+`,`+entry1("a", "F32", "[2]", 8, 16)+`}`, sixteen...), `key "a" twice`},
		{"duplicate field", file(`{"b":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, eight...), `key "dtype" twice`},
		{"duplicate metadata", file(`{"__metadata__":{},"__metadata__":{}}`), `key "__metadata__" twice`},
		{"duplicate metadata key", file(`{"__metadata__":{"k":"1","k":"2"}}`), `key "k" twice`},
		{"metadata value number", file(`{"__metadata__":{"k":1}}`), `value of "k" is 1, not a string`},
		{"metadata value object", file(`{"__metadata__":{"k":{}}}`), "not a string"},
		{"metadata null", file(`{"__metadata__":null}`), "found null"},
		{"metadata string", file(`{"__metadata__":"x"}`), "want '{'"},
		{"empty name", file(`{`+entry1("", "F32", "[2]", 0, 8)+`}`, eight...), "empty name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := Read(bytes.NewReader(c.raw), int64(len(c.raw)))
			if err == nil {
				t.Fatalf("read %d tensors, want an error", len(f.Tensors))
			}
			msg := err.Error()
			t.Log(msg)
			if !strings.HasPrefix(msg, "safetensors: ") || strings.Contains(msg, "\n") {
				t.Errorf("error %q is not one line starting with the package name", msg)
			}
			if !strings.Contains(msg, c.want) {
				t.Errorf("error %q does not say %q", msg, c.want)
			}
		})
	}
}

// prefixOnly is a reader that holds only an 8-byte header length, so a
// test can claim a large file without making one.
func prefixOnly(n uint64) io.Reader {
	return bytes.NewReader(binary.LittleEndian.AppendUint64(nil, n))
}

func TestHeaderLimit(t *testing.T) {
	// The header fits the claimed file but not the format: refused before
	// anything is allocated or read past the length.
	_, err := Read(prefixOnly(MaxHeaderSize+1), 2*MaxHeaderSize)
	if err == nil || !strings.Contains(err.Error(), "limit of 100000000") {
		t.Errorf("error %v, want the header limit", err)
	}
	// A size that the reader cannot back is a read error, not a panic.
	_, err = Read(prefixOnly(100), 1000)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("error %v, want an unexpected EOF", err)
	}
}

func TestWriteRefuses(t *testing.T) {
	cases := []struct {
		name string
		t    []Tensor
		want string
	}{
		{"empty name", []Tensor{{Name: "", Data: []float32{1}}}, "empty name"},
		{"metadata name", []Tensor{{Name: "__metadata__", Data: []float32{1}}}, "reserved"},
		{"duplicate", []Tensor{{Name: "a", Data: []float32{1}}, {Name: "a", Data: []float32{1}}}, `two tensors are named "a"`},
		{"bad UTF-8", []Tensor{{Name: "\xff", Data: []float32{1}}}, "UTF-8"},
		{"short data", []Tensor{{Name: "a", Shape: []int{2, 2}, Data: ramp(3)}}, "has 3 values but shape [2 2] needs 4"},
		{"scalar without data", []Tensor{{Name: "a"}}, "needs 1"},
		{"negative dim", []Tensor{{Name: "a", Shape: []int{-1, -1}, Data: []float32{1}}}, "negative"},
		{"overflow", []Tensor{{Name: "a", Shape: []int{1 << 32, 1 << 32}}}, "too many"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			err := Write(&b, &File{Tensors: c.t})
			if err == nil || !strings.HasPrefix(err.Error(), "safetensors: ") || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one saying %q", err, c.want)
			}
			if b.Len() != 0 {
				t.Errorf("wrote %d bytes before refusing", b.Len())
			}
		})
	}
	if err := Write(io.Discard, &File{Metadata: map[string]string{"k": "\xff"}}); err == nil {
		t.Error("metadata that is not UTF-8 was written")
	}
}

// failWriter fails after accepting n bytes.
type failWriter struct{ n int }

var errDisk = errors.New("disk full")

func (w *failWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		k := w.n
		w.n = 0
		return k, errDisk
	}
	w.n -= len(p)
	return len(p), nil
}

func TestWriteError(t *testing.T) {
	big := &File{Tensors: []Tensor{{Name: "w", Shape: []int{100000}, Data: make([]float32, 100000)}}}
	for _, n := range []int{0, 8, 100, 200000} {
		if err := Write(&failWriter{n: n}, big); !errors.Is(err, errDisk) {
			t.Errorf("failing after %d bytes: error %v, want one wrapping %v", n, err, errDisk)
		}
	}
}
