package mnist

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// NumClasses is the number of digits, and so the number of logits; a label is
// always below it.
const NumClasses = 10

const (
	imagesMagic = 0x00000803 // unsigned bytes, 3 dimensions: count, rows, cols
	labelsMagic = 0x00000801 // unsigned bytes, 1 dimension: count

	// maxDataBytes bounds what a header may claim, so that a corrupt or
	// hostile count is rejected before anything is allocated for it. The
	// MNIST training images are 47 MB; the bound leaves room for larger
	// sets in the same format.
	maxDataBytes = 1 << 30

	// firstChunk is the most that is allocated before any data has arrived;
	// buffers then double as data keeps coming, so a header that lies costs
	// at most this plus four times what the file really holds (the buffers
	// together). Small, because it is the whole cost of a short file whose
	// header claims up to the limit; the doublings it adds for the 47 MB of
	// MNIST are a few copies, next to inflating them.
	firstChunk = 64 << 10
)

// idxStream is an IDX file as it is read: raw, or inside a gzip stream,
// whichever the first two bytes say.
type idxStream struct {
	r  io.Reader    // the IDX bytes
	gz *gzip.Reader // nil for a raw file
}

func newIDXStream(r io.Reader) (*idxStream, error) {
	br := bufio.NewReader(r)
	head, err := br.Peek(2)
	if err != nil && err != io.EOF {
		return nil, err
	}
	// Detected by content, not by name: people gunzip the files and keep the
	// name, or fetch them raw under the .gz name.
	if len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip header: %w", err)
		}
		return &idxStream{r: gz, gz: gz}, nil
	}
	return &idxStream{r: br}, nil
}

// header reads the magic and the dimensions that follow it.
func (s *idxStream) header(what string, magic uint32, dims int) ([]uint32, error) {
	buf := make([]byte, 4*(1+dims))
	if k, err := io.ReadFull(s.r, buf); err != nil {
		if k == 0 && err == io.EOF {
			return nil, fmt.Errorf("%s: empty", what)
		}
		if err == io.ErrUnexpectedEOF {
			// The magic alone already tells a wrong file apart from a short one.
			if k >= 4 {
				if got := binary.BigEndian.Uint32(buf); got != magic {
					return nil, fmt.Errorf("%s: bad magic 0x%08x, want 0x%08x", what, got, magic)
				}
			}
			return nil, fmt.Errorf("%s: truncated header: %d of %d bytes", what, k, len(buf))
		}
		return nil, fmt.Errorf("%s: read header: %w", what, err)
	}
	if got := binary.BigEndian.Uint32(buf); got != magic {
		return nil, fmt.Errorf("%s: bad magic 0x%08x, want 0x%08x", what, got, magic)
	}
	d := make([]uint32, dims)
	for i := range d {
		d[i] = binary.BigEndian.Uint32(buf[4*(i+1):])
	}
	return d, nil
}

// data reads exactly size bytes, growing its buffer only as bytes arrive.
func (s *idxStream) data(what string, size int, claim string) ([]byte, error) {
	buf := make([]byte, min(size, firstChunk))
	got := 0
	for {
		k, err := io.ReadFull(s.r, buf[got:])
		got += k
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			return nil, fmt.Errorf("%s: truncated: header claims %s (%d bytes), data ends after %d", what, claim, size, got)
		case err != nil:
			return nil, fmt.Errorf("%s: read data: %w", what, err)
		case got == size:
			return buf, nil
		}
		grown := make([]byte, min(2*len(buf), size))
		copy(grown, buf)
		buf = grown
	}
}

// end checks that the data is all there is. For gzip it also reads the stream
// to its end, since only there does the reader compare the CRC and length in
// the trailer: a damaged trailer would otherwise pass unnoticed.
func (s *idxStream) end(what string, claim string) error {
	var b [1]byte
	k, err := io.ReadFull(s.r, b[:])
	switch {
	case k > 0:
		return fmt.Errorf("%s: trailing bytes after the %s the header claims", what, claim)
	case err == io.EOF:
		return nil
	case s.gz != nil && errors.Is(err, gzip.ErrHeader):
		// The gzip reader takes what follows a member for the next member.
		return fmt.Errorf("%s: trailing bytes after the gzip stream", what)
	default:
		return fmt.Errorf("%s: %w", what, err)
	}
}

// ReadImages reads an IDX images file (magic 0x00000803), raw or gzipped,
// and returns its pixels as n images of rows x cols bytes, row-major, one
// image after the other. The whole stream is read: a short file, bytes after
// the data and a gzip stream whose checksum does not match are errors.
func ReadImages(r io.Reader) (data []uint8, n, rows, cols int, err error) {
	const what = "images file"
	s, err := newIDXStream(r)
	if err != nil {
		return nil, 0, 0, 0, fmt.Errorf("%s: %w", what, err)
	}
	d, err := s.header(what, imagesMagic, 3)
	if err != nil {
		return nil, 0, 0, 0, err
	}
	count, h, w := uint64(d[0]), uint64(d[1]), uint64(d[2])
	if count == 0 || h == 0 || w == 0 {
		return nil, 0, 0, 0, fmt.Errorf("%s: header claims %d images of %dx%d pixels; want at least one pixel and one image", what, count, h, w)
	}
	claim := fmt.Sprintf("%d images of %dx%d pixels", count, h, w)
	// h*w fits in 64 bits since both are below 2^32; count*h*w may not, so
	// the bound is checked by division.
	if count > maxDataBytes/(h*w) {
		return nil, 0, 0, 0, fmt.Errorf("%s: header claims %s, more than the %d GiB limit", what, claim, maxDataBytes>>30)
	}
	size := int(count * h * w)
	data, err = s.data(what, size, claim)
	if err != nil {
		return nil, 0, 0, 0, err
	}
	if err := s.end(what, claim); err != nil {
		return nil, 0, 0, 0, err
	}
	return data, int(count), int(h), int(w), nil
}

// ReadLabels reads an IDX labels file (magic 0x00000801), raw or gzipped,
// with the same checks as ReadImages; every label must be a digit below
// NumClasses.
func ReadLabels(r io.Reader) ([]uint8, error) {
	const what = "labels file"
	s, err := newIDXStream(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	d, err := s.header(what, labelsMagic, 1)
	if err != nil {
		return nil, err
	}
	count := uint64(d[0])
	if count == 0 {
		return nil, fmt.Errorf("%s: header claims 0 labels", what)
	}
	claim := fmt.Sprintf("%d labels", count)
	if count > maxDataBytes {
		return nil, fmt.Errorf("%s: header claims %s, more than the %d GiB limit", what, claim, maxDataBytes>>30)
	}
	labels, err := s.data(what, int(count), claim)
	if err != nil {
		return nil, err
	}
	if err := s.end(what, claim); err != nil {
		return nil, err
	}
	for i, l := range labels {
		if l >= NumClasses {
			return nil, fmt.Errorf("%s: label %d at index %d is not a digit 0-%d", what, l, i, NumClasses-1)
		}
	}
	return labels, nil
}
