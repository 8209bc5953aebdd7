package safetensors

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/mnist-cl/mnist-cl/internal/atomicfile"
)

// MaxHeaderSize is the largest JSON header, in bytes, that Read accepts and
// Write produces: the reference implementation's limit.
const MaxHeaderSize = 100_000_000

// metadataKey is the header key that holds the file's metadata rather than
// a tensor.
const metadataKey = "__metadata__"

// f32Size is the size in bytes of the one dtype this package handles.
const f32Size = 4

// chunkSize bounds the byte buffer that converts between float32 values and
// their little-endian bytes, so that converting never doubles a tensor's
// memory.
const chunkSize = 64 << 10

// knownDtype reports whether s is a dtype of the format, so that an error
// can tell a dtype that this package does not handle from a corrupt one.
func knownDtype(s string) bool {
	switch s {
	case "BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2",
		"I16", "U16", "F16", "BF16", "I32", "U32", "F32", "I64", "U64", "F64", "C64":
		return true
	}
	return false
}

// Tensor is one named float32 tensor. Data holds product(Shape) values in
// row-major order; an empty Shape is a scalar, with one value.
type Tensor struct {
	Name  string
	Shape []int
	Data  []float32
}

// File is the contents of a safetensors file.
type File struct {
	// Metadata is the file's "__metadata__"; nil or empty writes none.
	Metadata map[string]string
	// Tensors are in the order of their data in the file.
	Tensors []Tensor
}

// Get returns the tensor called name, and whether there is one. The
// pointer is into f.Tensors.
func (f *File) Get(name string) (*Tensor, bool) {
	for i := range f.Tensors {
		if f.Tensors[i].Name == name {
			return &f.Tensors[i], true
		}
	}
	return nil, false
}

// numElements returns the product of shape's dimensions, and false if a
// dimension is negative or the product overflows an int.
func numElements(shape []int) (int, bool) {
	n := uint64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, false
		}
		hi, lo := bits.Mul64(n, uint64(d))
		if hi != 0 || lo > math.MaxInt {
			return 0, false
		}
		n = lo
	}
	return int(n), true
}

// Write writes f to w in the safetensors format: the tensors' data in the
// order of f.Tensors, and f.Metadata (keys sorted) if it is not empty. It
// refuses, before writing anything, a tensor whose name is empty, repeated,
// "__metadata__" or not UTF-8, whose shape has a negative dimension or
// overflows, or whose Data does not hold product(Shape) values, and a
// header that would exceed MaxHeaderSize.
func Write(w io.Writer, f *File) error {
	if f == nil {
		return errors.New("safetensors: write: nil File")
	}
	header, err := encodeHeader(f)
	if err != nil {
		return fmt.Errorf("safetensors: write: %w", err)
	}
	var prefix [8]byte
	binary.LittleEndian.PutUint64(prefix[:], uint64(len(header)))
	if _, err := w.Write(prefix[:]); err != nil {
		return fmt.Errorf("safetensors: write: %w", err)
	}
	if _, err := w.Write(header); err != nil {
		return fmt.Errorf("safetensors: write: %w", err)
	}
	buf := make([]byte, 0, chunkSize)
	for _, t := range f.Tensors {
		for _, v := range t.Data {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
			if len(buf) == cap(buf) {
				if _, err := w.Write(buf); err != nil {
					return fmt.Errorf("safetensors: write tensor %q: %w", t.Name, err)
				}
				buf = buf[:0]
			}
		}
	}
	if len(buf) > 0 {
		if _, err := w.Write(buf); err != nil {
			return fmt.Errorf("safetensors: write: %w", err)
		}
	}
	return nil
}

// encodeHeader validates f and returns its JSON header, padded with spaces
// to a multiple of 8 bytes. The JSON is built by hand because the offsets
// must follow the order of f.Tensors and encoding/json sorts map keys.
func encodeHeader(f *File) ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	if len(f.Metadata) > 0 {
		appendString(&b, metadataKey)
		b.WriteString(":{")
		for i, k := range slices.Sorted(maps.Keys(f.Metadata)) {
			v := f.Metadata[k]
			if !utf8.ValidString(k) || !utf8.ValidString(v) {
				return nil, fmt.Errorf("metadata %q: %q is not valid UTF-8", k, v)
			}
			if i > 0 {
				b.WriteByte(',')
			}
			appendString(&b, k)
			b.WriteByte(':')
			appendString(&b, v)
		}
		b.WriteByte('}')
	}
	seen := make(map[string]bool, len(f.Tensors))
	var offset uint64
	for i, t := range f.Tensors {
		switch {
		case t.Name == "":
			return nil, fmt.Errorf("tensor %d has an empty name", i)
		case t.Name == metadataKey:
			return nil, fmt.Errorf("tensor %d is named %s, the key reserved for metadata", i, metadataKey)
		case !utf8.ValidString(t.Name):
			return nil, fmt.Errorf("tensor name %q is not valid UTF-8", t.Name)
		case seen[t.Name]:
			return nil, fmt.Errorf("two tensors are named %q", t.Name)
		}
		seen[t.Name] = true
		n, ok := numElements(t.Shape)
		if !ok {
			return nil, fmt.Errorf("tensor %q has shape %v: a negative dimension or too many elements", t.Name, t.Shape)
		}
		if len(t.Data) != n {
			return nil, fmt.Errorf("tensor %q has %d values but shape %v needs %d", t.Name, len(t.Data), t.Shape, n)
		}
		end := offset + uint64(n)*f32Size
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		appendString(&b, t.Name)
		b.WriteString(`:{"dtype":"F32","shape":[`)
		for j, d := range t.Shape {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Itoa(d))
		}
		fmt.Fprintf(&b, `],"data_offsets":[%d,%d]}`, offset, end)
		offset = end
	}
	b.WriteByte('}')
	for b.Len()%8 != 0 {
		b.WriteByte(' ')
	}
	if b.Len() > MaxHeaderSize {
		return nil, fmt.Errorf("header would be %d bytes, more than the format's limit of %d", b.Len(), MaxHeaderSize)
	}
	return b.Bytes(), nil
}

// appendString writes s as a JSON string. It leaves <, > and & as they are,
// as the reference implementation does; s must be valid UTF-8, which
// encoding/json would otherwise silently alter.
func appendString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	// A string always encodes and a bytes.Buffer never fails, so the
	// error is nil; Encode ends with a newline, which goes.
	enc.Encode(s)
	b.Truncate(b.Len() - 1)
}

// ReadFile reads the safetensors file at path, which must be a regular file.
func ReadFile(path string) (*File, error) {
	fh, fi, err := atomicfile.OpenRegular(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %s: %w", path, err)
	}
	defer fh.Close()
	f, err := read(bufio.NewReaderSize(fh, chunkSize), fi.Size())
	if err != nil {
		return nil, fmt.Errorf("safetensors: %s: %w", path, err)
	}
	return f, nil
}

// Read reads a safetensors file of size bytes from r. It reads exactly size
// bytes and does not look beyond them; size bounds what it allocates, so it
// must be the input's real size, not a guess. The tensors come back in the
// order of their data.
func Read(r io.Reader, size int64) (*File, error) {
	f, err := read(r, size)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	return f, nil
}

// readFull fills b from r. The input was promised to hold size bytes, so
// running out at any point, even between two reads, is an unexpected EOF.
func readFull(r io.Reader, b []byte) error {
	_, err := io.ReadFull(r, b)
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// entry is one tensor's line of the header.
type entry struct {
	name       string
	dtype      string
	shape      []int
	begin, end uint64
}

func read(r io.Reader, size int64) (*File, error) {
	header, err := readHeader(r, size)
	if err != nil {
		return nil, err
	}
	entries, meta, err := parseHeader(header)
	if err != nil {
		return nil, err
	}
	dataSize := uint64(size) - 8 - uint64(len(header))
	counts, err := layOut(entries, dataSize)
	if err != nil {
		return nil, err
	}
	f := &File{Metadata: meta, Tensors: make([]Tensor, len(entries))}
	buf := make([]byte, min(dataSize, chunkSize))
	for i, e := range entries {
		data := make([]float32, counts[i])
		for done := 0; done < len(data); {
			chunk := buf[:min(len(buf), (len(data)-done)*f32Size)]
			if err := readFull(r, chunk); err != nil {
				return nil, fmt.Errorf("read tensor %q: %w", e.name, err)
			}
			for j := 0; j < len(chunk); j += f32Size {
				data[done] = math.Float32frombits(binary.LittleEndian.Uint32(chunk[j:]))
				done++
			}
		}
		f.Tensors[i] = Tensor{Name: e.name, Shape: e.shape, Data: data}
	}
	return f, nil
}

// readHeader reads the length and the JSON header of a file of size bytes,
// checking the length before allocating for it.
func readHeader(r io.Reader, size int64) ([]byte, error) {
	if size < 8 {
		return nil, fmt.Errorf("file has %d bytes, fewer than the 8 of the header length", size)
	}
	var prefix [8]byte
	if err := readFull(r, prefix[:]); err != nil {
		return nil, fmt.Errorf("read header length: %w", err)
	}
	n := binary.LittleEndian.Uint64(prefix[:])
	// Checked before allocating the header: the length field is what a
	// corrupt file gets wrong first.
	if n > uint64(size-8) {
		return nil, fmt.Errorf("header claims %d bytes but the file has %d (%d after the 8-byte length)", n, size, size-8)
	}
	if n > MaxHeaderSize {
		return nil, fmt.Errorf("header claims %d bytes, more than the format's limit of %d", n, MaxHeaderSize)
	}
	header := make([]byte, n)
	if err := readFull(r, header); err != nil {
		return nil, fmt.Errorf("read %d-byte header: %w", n, err)
	}
	if n == 0 {
		return nil, errors.New("header is empty")
	}
	if header[0] != '{' {
		return nil, fmt.Errorf("header starts with %q, not '{'", header[0])
	}
	if !utf8.Valid(header) {
		return nil, errors.New("header is not valid UTF-8")
	}
	return header, nil
}

// layOut sorts the entries in file order and checks that they are F32 and
// tile the dataSize bytes of data exactly; it returns their element counts.
func layOut(entries []entry, dataSize uint64) ([]int, error) {
	// Sort by begin, then end, so that empty tensors sharing an offset with
	// the next tensor come first; the stable sort keeps the header's order
	// among equal offsets, which is Write's order.
	slices.SortStableFunc(entries, func(a, b entry) int {
		return cmp.Or(cmp.Compare(a.begin, b.begin), cmp.Compare(a.end, b.end))
	})
	counts := make([]int, len(entries))
	var pos uint64
	for i, e := range entries {
		if e.dtype != "F32" {
			if knownDtype(e.dtype) {
				return nil, fmt.Errorf("tensor %q has dtype %s; only F32 is supported", e.name, e.dtype)
			}
			return nil, fmt.Errorf("tensor %q has unknown dtype %q", e.name, e.dtype)
		}
		switch {
		case e.end < e.begin:
			return nil, fmt.Errorf("tensor %q has data_offsets [%d, %d], ending before it begins", e.name, e.begin, e.end)
		case e.begin < pos:
			return nil, fmt.Errorf("tensor %q begins at byte %d of the data, overlapping the tensor before it, which ends at %d", e.name, e.begin, pos)
		case e.begin > pos:
			return nil, fmt.Errorf("bytes %d to %d of the data belong to no tensor (a hole before tensor %q)", pos, e.begin, e.name)
		case e.end > dataSize:
			return nil, fmt.Errorf("tensor %q ends at byte %d of the data but the file has only %d bytes of data", e.name, e.end, dataSize)
		}
		count, ok := numElements(e.shape)
		if !ok || count > math.MaxInt/f32Size {
			return nil, fmt.Errorf("tensor %q has shape %v, whose size overflows", e.name, e.shape)
		}
		if want := uint64(count) * f32Size; e.end-e.begin != want {
			return nil, fmt.Errorf("tensor %q has shape %v, %d bytes of F32, but data_offsets [%d, %d] hold %d",
				e.name, e.shape, want, e.begin, e.end, e.end-e.begin)
		}
		counts[i] = count
		pos = e.end
	}
	if pos != dataSize {
		return nil, fmt.Errorf("the tensors end at byte %d of the data but the file has %d bytes of data", pos, dataSize)
	}
	return counts, nil
}

// parseHeader walks the header's tokens rather than decoding it into a map:
// encoding/json would keep the last of two equal keys without a word, and a
// file whose readers disagree about its weights must be refused.
func parseHeader(header []byte) ([]entry, map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(header))
	dec.UseNumber()
	if err := expectDelim(dec, '{', "header"); err != nil {
		return nil, nil, err
	}
	var (
		entries []entry
		meta    map[string]string
		seen    = make(map[string]bool)
	)
	for dec.More() {
		key, err := objectKey(dec, seen, "header")
		if err != nil {
			return nil, nil, err
		}
		if key == metadataKey {
			if meta, err = parseMetadata(dec); err != nil {
				return nil, nil, err
			}
			continue
		}
		if key == "" {
			return nil, nil, errors.New("header has a tensor with an empty name")
		}
		e, err := parseEntry(dec, key)
		if err != nil {
			return nil, nil, err
		}
		entries = append(entries, e)
	}
	if err := expectDelim(dec, '}', "header"); err != nil {
		return nil, nil, err
	}
	rest := header[dec.InputOffset():]
	if i := bytes.IndexFunc(rest, func(r rune) bool { return r != ' ' }); i >= 0 {
		return nil, nil, fmt.Errorf("header has %q after its JSON object, where only space padding may be", truncate(rest[i:]))
	}
	return entries, meta, nil
}

// truncate shortens b for an error message.
func truncate(b []byte) []byte {
	if len(b) > 20 {
		return b[:20]
	}
	return b
}

// jsonErr words a token error; encoding/json reports the end of the input
// as a bare io.EOF.
func jsonErr(err error) error {
	if errors.Is(err, io.EOF) {
		return errors.New("header is not valid JSON: unexpected end")
	}
	return fmt.Errorf("header is not valid JSON: %w", err)
}

// tokenString shows a JSON token as it would appear in the header, for an
// error message.
func tokenString(tok json.Token) string {
	switch t := tok.(type) {
	case json.Delim:
		return fmt.Sprintf("'%c'", rune(t))
	case string:
		return strconv.Quote(t)
	case nil:
		return "null"
	default:
		return fmt.Sprint(t)
	}
}

// expectDelim reads the next token and checks that it is delim.
func expectDelim(dec *json.Decoder, delim json.Delim, what string) error {
	tok, err := dec.Token()
	if err != nil {
		return jsonErr(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != delim {
		return fmt.Errorf("%s: want '%c', found %s", what, delim, tokenString(tok))
	}
	return nil
}

// objectKey reads an object's next key and checks that seen does not hold
// it yet.
func objectKey(dec *json.Decoder, seen map[string]bool, what string) (string, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", jsonErr(err)
	}
	// Token returns only strings in key position; checked all the same,
	// since a panic on a corrupt file would be worse than an odd message.
	key, ok := tok.(string)
	if !ok {
		return "", fmt.Errorf("%s: key is %s, not a string", what, tokenString(tok))
	}
	if seen[key] {
		return "", fmt.Errorf("%s has key %q twice", what, key)
	}
	seen[key] = true
	return key, nil
}

// parseMetadata reads the value of "__metadata__": an object of strings.
func parseMetadata(dec *json.Decoder) (map[string]string, error) {
	const what = metadataKey
	if err := expectDelim(dec, '{', what); err != nil {
		return nil, err
	}
	meta := make(map[string]string)
	seen := make(map[string]bool)
	for dec.More() {
		key, err := objectKey(dec, seen, what)
		if err != nil {
			return nil, err
		}
		tok, err := dec.Token()
		if err != nil {
			return nil, jsonErr(err)
		}
		v, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("%s: value of %q is %s, not a string", what, key, tokenString(tok))
		}
		meta[key] = v
	}
	return meta, expectDelim(dec, '}', what)
}

// parseEntry reads the value of tensor name: its dtype, shape and
// data_offsets, each exactly once and nothing else.
func parseEntry(dec *json.Decoder, name string) (entry, error) {
	e := entry{name: name}
	what := fmt.Sprintf("tensor %q", name)
	if err := expectDelim(dec, '{', what); err != nil {
		return e, err
	}
	seen := make(map[string]bool)
	for dec.More() {
		key, err := objectKey(dec, seen, what)
		if err != nil {
			return e, err
		}
		switch key {
		case "dtype":
			tok, err := dec.Token()
			if err != nil {
				return e, jsonErr(err)
			}
			s, ok := tok.(string)
			if !ok {
				return e, fmt.Errorf("%s: dtype is %s, not a string", what, tokenString(tok))
			}
			e.dtype = s
		case "shape":
			nums, err := intArray(dec, what+": shape")
			if err != nil {
				return e, err
			}
			e.shape = make([]int, len(nums))
			for i, s := range nums {
				d, err := strconv.ParseInt(s, 10, 0)
				if err != nil || d < 0 {
					return e, fmt.Errorf("%s: dimension %s is not an integer from 0 to %d", what, s, math.MaxInt)
				}
				e.shape[i] = int(d)
			}
		case "data_offsets":
			nums, err := intArray(dec, what+": data_offsets")
			if err != nil {
				return e, err
			}
			if len(nums) != 2 {
				return e, fmt.Errorf("%s: data_offsets has %d numbers, not 2", what, len(nums))
			}
			var off [2]uint64
			for i, s := range nums {
				if off[i], err = strconv.ParseUint(s, 10, 64); err != nil {
					return e, fmt.Errorf("%s: offset %s is not an integer from 0 to %d", what, s, uint64(math.MaxUint64))
				}
			}
			e.begin, e.end = off[0], off[1]
		default:
			return e, fmt.Errorf("%s has unknown key %q", what, key)
		}
	}
	if err := expectDelim(dec, '}', what); err != nil {
		return e, err
	}
	for _, k := range []string{"dtype", "shape", "data_offsets"} {
		if !seen[k] {
			return e, fmt.Errorf("%s has no %s", what, k)
		}
	}
	return e, nil
}

// intArray reads an array of numbers and returns their text, which the
// caller parses as integers: a float64 would round large offsets.
func intArray(dec *json.Decoder, what string) ([]string, error) {
	if err := expectDelim(dec, '[', what); err != nil {
		return nil, err
	}
	nums := []string{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, jsonErr(err)
		}
		n, ok := tok.(json.Number)
		if !ok {
			return nil, fmt.Errorf("%s holds %s, not a number", what, tokenString(tok))
		}
		nums = append(nums, string(n))
	}
	return nums, expectDelim(dec, ']', what)
}
