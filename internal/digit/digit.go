// Package digit turns a picture of one handwritten digit into a 28x28 image
// prepared the way MNIST's were, so that a network trained on MNIST sees the
// user's digit as it saw its training data.
//
// LeCun et al. describe the MNIST preparation as: size-normalise the digit
// to fit a 20x20 box preserving its aspect ratio, anti-aliased, then place it
// in a 28x28 field so that its intensity-weighted centre of mass is at the
// centre. MNIST pixels are 0 for the background and 255 for full ink, row by
// row, which is what every function here returns.
//
// A user's picture is not a clean binary scan, so some steps come first:
//
//  1. Grey levels are luma (ITU-R BT.601 weights, as image/color uses), and
//     transparent pixels are composited over white paper.
//  2. The background level is the median of the outermost ring of pixels.
//     Paper brighter than mid-grey (above 127) means dark ink on light
//     paper, and the image is inverted so that ink is bright, as in MNIST.
//  3. Ink must stand out: if the brightest ink is less than 32 levels above
//     the background, the picture is blank. Levels up to a fifth of the way
//     from the background to the brightest ink are noise (JPEG ringing,
//     paper grain, faint shadows) and become 0. Above that, levels are
//     stretched linearly so that the brightest quarter of the ink pixels is
//     255, as MNIST's strokes are saturated.
//  4. The digit's box is the bounding box of what is left, less at most 0.5%
//     of the ink mass trimmed from each side, so that a speck of dust far
//     from the digit does not make the box, and so the digit, tiny.
//  5. The box is scaled with a Catmull-Rom filter so that its longer side is
//     20 pixels, and placed by whole pixels so that its centre of mass, in
//     pixel-index coordinates, is as near (14, 14) as rounding allows; MNIST's
//     own digits average (14.0, 14.0) by that measure.
package digit

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"math"
	"os"

	"golang.org/x/image/draw"

	"github.com/mnist-cl/mnist-cl/internal/atomicfile"
)

// Side is the width and height of the images this package returns; they
// hold Side*Side bytes.
const Side = 28

// Limits on what is decoded. A picture of a digit needs nothing near them:
// they are there so that a hostile or broken file cannot take the memory of
// the machine.
const (
	// MaxFileBytes is the largest file Load and Decode read.
	MaxFileBytes = 64 << 20
	// MaxSide is the largest width or height accepted.
	MaxSide = 10_000
	// MaxPixels is the largest width times height accepted, so 50
	// megapixels: a big phone photo, a few hundred MB while decoding.
	MaxPixels = 50_000_000
)

// Errors that callers may want to tell apart; what is returned wraps one of
// them with the details.
var (
	// ErrBlank means no ink stands out from the background.
	ErrBlank = errors.New("no digit found: the image is blank")
	// ErrFormat means the bytes are not a PNG, JPEG or GIF image.
	ErrFormat = errors.New("not a PNG, JPEG or GIF image")
	// ErrTooLarge means the file or the image is over the limits above.
	ErrTooLarge = errors.New("image too large")
)

const (
	box = 20 // the side of the box that digits are normalised to

	minContrast = 32  // levels by which the brightest ink must beat the background
	noiseDiv    = 5   // levels below 1/noiseDiv of the way to the brightest ink are noise
	whiteDiv    = 4   // the brightest 1/whiteDiv of the ink pixels become 255
	trimDiv     = 200 // at most 1/trimDiv of the ink mass is trimmed from each side of the box
)

// Load reads a PNG, JPEG or GIF file of any size and returns the digit in it
// as Side*Side bytes, row by row, 0 for the background and 255 for ink. Only
// regular files are read: a folder or a named pipe is an error, not a wait.
func Load(path string) ([]uint8, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, atomicfile.WithoutPath(err))
	}
	if !fi.Mode().IsRegular() {
		// Opening a named pipe would wait for a writer, and reading a
		// device might never end.
		return nil, fmt.Errorf("read %s: is %s, not an image file", path, atomicfile.Kind(fi.Mode()))
	}
	if fi.Size() > MaxFileBytes {
		return nil, fmt.Errorf("read %s: %w: the file is %d bytes, over the %d MiB limit",
			path, ErrTooLarge, fi.Size(), MaxFileBytes>>20)
	}
	return atomicfile.Read(path, Decode)
}

// Decode reads a PNG, JPEG or GIF image from r, at most MaxFileBytes of it,
// and returns the digit in it as FromImage does. The image's size is checked
// against the limits before its pixels are decoded.
func Decode(r io.Reader) ([]uint8, error) {
	return decode(r, MaxFileBytes)
}

// decode is Decode with the file limit as a parameter, so that tests can
// reach it without 64 MiB of data.
func decode(r io.Reader, maxBytes int64) ([]uint8, error) {
	// The whole file is read first: it is small next to the pixels it
	// decodes to, it lets the header's claims be checked against the real
	// length, and it lets the header be parsed twice.
	data, err := io.ReadAll(io.LimitReader(r, maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read image data: %w", err)
	}
	if int64(len(data)) > maxBytes {
		return nil, fmt.Errorf("%w: the file is over the %d-byte limit", ErrTooLarge, maxBytes)
	}
	img, err := decodeImage(data)
	if err != nil {
		return nil, err
	}
	return FromImage(img)
}

// codec is one image format, named as people know it.
type codec struct {
	name    string
	trailer string // the bytes a complete file ends with

	// density bounds the pixels a file may claim per byte of its length,
	// about twice what the format can reach, so that a header from a
	// truncated or forged file is refused before the decoder allocates
	// what it claims.
	density int64

	config func(io.Reader) (image.Config, error)
	decode func(io.Reader) (image.Image, error)
}

// sniff picks the codec by the file's magic bytes. It is done here rather
// than by image.Decode so that what is accepted does not depend on which
// formats other packages of the program happen to register.
func sniff(data []byte) (codec, bool) {
	switch {
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		// A 1-bit image of one colour: 8 pixels a byte, and deflate
		// expands at most about 1032 times.
		return codec{"PNG", "IEND\xaeB`\x82", 16 << 10, png.DecodeConfig, png.Decode}, true
	case bytes.HasPrefix(data, []byte("\xff\xd8")):
		// At least a bit of Huffman code for each 8x8 block, in the DC
		// scan of a progressive file; two in a baseline one.
		jpegDecode := func(r io.Reader) (image.Image, error) { return jpeg.Decode(r) }
		return codec{"JPEG", "\xff\xd9", 1 << 10, jpeg.DecodeConfig, jpegDecode}, true
	case bytes.HasPrefix(data, []byte("GIF87a")), bytes.HasPrefix(data, []byte("GIF89a")):
		// A 12-bit LZW code stands for fewer than 4096 pixels.
		return codec{"GIF", ";", 6 << 10, gif.DecodeConfig, gif.Decode}, true
	}
	return codec{}, false
}

// decodeImage decodes data after checking what its header claims.
func decodeImage(data []byte) (image.Image, error) {
	c, ok := sniff(data)
	if !ok {
		if len(data) == 0 {
			return nil, fmt.Errorf("%w: the file is empty", ErrFormat)
		}
		return nil, ErrFormat
	}
	cfg, err := c.config(bytes.NewReader(data))
	if err != nil {
		return nil, c.error("header", data, err)
	}
	if err := checkSize(cfg.Width, cfg.Height); err != nil {
		return nil, fmt.Errorf("%s %w", c.name, err)
	}
	if int64(cfg.Width)*int64(cfg.Height) > c.density*int64(len(data)) {
		return nil, fmt.Errorf("%s image is truncated or corrupt: %d bytes cannot hold the %dx%d pixels its header claims",
			c.name, len(data), cfg.Width, cfg.Height)
	}
	img, err := c.decode(bytes.NewReader(data))
	if err != nil {
		return nil, c.error("image", data, err)
	}
	return img, nil
}

// error wraps a decoder's error for part of data, saying "truncated"
// plainly when the bytes ran out or, for the image, when the file lacks its
// last bytes: the commonest fault of a file from the web, which decoders
// report only as whatever ran short first.
func (c codec) error(part string, data []byte, err error) error {
	short := errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
	if short || part == "image" && !bytes.HasSuffix(data, []byte(c.trailer)) {
		return fmt.Errorf("%s %s is truncated: %w", c.name, part, err)
	}
	return fmt.Errorf("decode %s %s: %w", c.name, part, err)
}

// checkSize holds a width and height to the limits; it is called with what a
// header claims, before anything of that size exists.
func checkSize(w, h int) error {
	switch {
	case w <= 0 || h <= 0:
		return fmt.Errorf("image has no pixels (%dx%d)", w, h)
	case w > MaxSide || h > MaxSide || w*h > MaxPixels:
		return fmt.Errorf("%w: %dx%d pixels, over the limit of %d on a side and %d megapixels",
			ErrTooLarge, w, h, MaxSide, MaxPixels/1_000_000)
	}
	return nil
}

// FromImage returns the digit in img as Side*Side bytes, row by row, 0 for
// the background and 255 for ink, prepared as the package comment describes.
// It returns an error wrapping ErrBlank when no ink stands out, and one
// wrapping ErrTooLarge for an image over the size limits.
func FromImage(img image.Image) ([]uint8, error) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if err := checkSize(w, h); err != nil {
		return nil, err
	}
	ink := paperLevels(img)

	// The ring of outermost pixels is the background unless the digit covers
	// most of it, so its median is the paper (or board) level.
	bg := borderMedian(ink, w, h)
	if bg > 127 {
		for i, v := range ink {
			ink[i] = 255 - v
		}
		bg = 255 - bg
	}
	var hist [256]int
	for _, v := range ink {
		hist[v]++
	}
	top := 255
	for hist[top] == 0 {
		top--
	}
	if top-int(bg) < minContrast {
		return nil, ErrBlank
	}
	floor := int(bg) + (top-int(bg))/noiseDiv
	// The white point is where the brightest quarter of the ink begins, not
	// the brightest pixel: a pen's stroke or a photo's ink varies, and
	// stretching to its extreme would leave most of the stroke grey where
	// MNIST's strokes are saturated (a quarter to half of MNIST's ink pixels
	// are 250 or more).
	inked := 0
	for v := floor + 1; v <= top; v++ {
		inked += hist[v]
	}
	white, brighter := top, hist[top]
	for brighter*whiteDiv < inked {
		white--
		brighter += hist[white]
	}
	var curve [256]uint8
	for v := floor + 1; v < 256; v++ {
		curve[v] = uint8(min(255, ((v-floor)*255+(white-floor)/2)/(white-floor)))
	}
	rows := make([]uint64, h)
	cols := make([]uint64, w)
	for y := range h {
		line := ink[y*w : (y+1)*w]
		for x, v := range line {
			v = curve[v]
			line[x] = v
			rows[y] += uint64(v)
			cols[x] += uint64(v)
		}
	}
	y0, y1 := span(rows)
	x0, x1 := span(cols)
	if y0 > y1 || x0 > x1 {
		return nil, ErrBlank
	}
	src := &image.Gray{Pix: ink, Stride: w, Rect: image.Rect(0, 0, w, h)}
	digit := scaleToBox(src, image.Rect(x0, y0, x1+1, y1+1))
	out, ok := centre(digit)
	if !ok {
		return nil, ErrBlank
	}
	return out, nil
}

// paperLevels returns img's luma, composited over white, as w*h bytes, row
// by row. The common decoder outputs are read directly rather than through
// At, which costs an allocation a pixel.
func paperLevels(img image.Image) []uint8 {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	out := make([]uint8, w*h)
	switch m := img.(type) {
	case *image.Gray:
		for y := range h {
			copy(out[y*w:(y+1)*w], m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):])
		}
	case *image.YCbCr:
		// JPEG's Y is BT.601 luma already.
		for y := range h {
			copy(out[y*w:(y+1)*w], m.Y[m.YOffset(b.Min.X, b.Min.Y+y):])
		}
	case *image.NRGBA:
		lumaOverWhite(out, w, h, m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride,
			func(c, a uint32) uint32 { return (c*a + 255*(255-a) + 127) / 255 })
	case *image.RGBA:
		// Premultiplied, so white shows through as 255-a; min guards
		// against colours brighter than their alpha allows.
		lumaOverWhite(out, w, h, m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride,
			func(c, a uint32) uint32 { return min(255, c+255-a) })
	case *image.Paletted:
		// An index past the palette is paper: the image is malformed, and
		// ink that may not exist should not be invented.
		var lut [256]uint8
		for i := range lut {
			lut[i] = 255
			if i < len(m.Palette) && m.Palette[i] != nil {
				r, g, bl, a := m.Palette[i].RGBA()
				lut[i] = luma16(r, g, bl, a)
			}
		}
		for y := range h {
			p := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := range w {
				out[y*w+x] = lut[p[x]]
			}
		}
	case image.RGBA64Image:
		for y := range h {
			for x := range w {
				c := m.RGBA64At(b.Min.X+x, b.Min.Y+y)
				out[y*w+x] = luma16(uint32(c.R), uint32(c.G), uint32(c.B), uint32(c.A))
			}
		}
	default:
		for y := range h {
			for x := range w {
				r, g, bl, a := m.At(b.Min.X+x, b.Min.Y+y).RGBA()
				out[y*w+x] = luma16(r, g, bl, a)
			}
		}
	}
	return out
}

// lumaOverWhite writes into out (w x h) the luma of the RGBA bytes in pix,
// rows stride apart, each channel laid over white by over(channel, alpha).
func lumaOverWhite(out []uint8, w, h int, pix []uint8, stride int, over func(c, a uint32) uint32) {
	for y := range h {
		p := pix[y*stride:]
		for x := range w {
			q := p[4*x : 4*x+4 : 4*x+4]
			a := uint32(q[3])
			out[y*w+x] = luma8(over(uint32(q[0]), a), over(uint32(q[1]), a), over(uint32(q[2]), a))
		}
	}
}

// luma8 is color.GrayModel's luma for 8-bit channels.
func luma8(r, g, b uint32) uint8 {
	return uint8((19595*r + 38470*g + 7471*b + 1<<15) >> 16)
}

// luma16 is the 8-bit luma of a premultiplied 16-bit colour over white.
func luma16(r, g, b, a uint32) uint8 {
	over := func(c uint32) uint32 { return min(0xffff, c+0xffff-a) }
	return uint8((19595*over(r) + 38470*over(g) + 7471*over(b) + 1<<15) >> 24)
}

// borderMedian is the median level of the outermost ring of pixels.
func borderMedian(pix []uint8, w, h int) uint8 {
	var hist [256]int
	n := 0
	add := func(i int) { hist[pix[i]]++; n++ }
	for x := range w {
		add(x)
		if h > 1 {
			add((h-1)*w + x)
		}
	}
	for y := 1; y < h-1; y++ {
		add(y * w)
		if w > 1 {
			add(y*w + w - 1)
		}
	}
	seen := 0
	for v, k := range hist {
		seen += k
		if 2*seen >= n {
			return uint8(v)
		}
	}
	return 255 // unreachable: the ring holds at least one pixel
}

// span returns the first and last index of mass left after trimming up to
// 1/trimDiv of the total from each end; first > last when there is no mass.
// Since less than half is trimmed in all, what is left is never empty.
func span(mass []uint64) (first, last int) {
	var total uint64
	for _, m := range mass {
		total += m
	}
	if total == 0 {
		return 1, 0
	}
	cut := total / trimDiv
	first, last = 0, len(mass)-1
	for acc := mass[0]; acc <= cut; acc += mass[first] {
		first++
	}
	for acc := mass[last]; acc <= cut; acc += mass[last] {
		last--
	}
	return first, last
}

// scaleToBox scales the part r of src so that its longer side is box pixels
// and the shorter keeps the aspect ratio (at least one pixel).
func scaleToBox(src *image.Gray, r image.Rectangle) *image.Gray {
	w, h := r.Dx(), r.Dy()
	dw, dh := box, box
	if w > h {
		dh = max(1, (h*box+w/2)/w)
	} else {
		dw = max(1, (w*box+h/2)/h)
	}
	dst := image.NewGray(image.Rect(0, 0, dw, dh))
	// Catmull-Rom widens its support when shrinking, so it averages over
	// every source pixel instead of sampling a few: the anti-aliasing MNIST
	// had. Its slight overshoot at edges is clipped to 0..255.
	draw.CatmullRom.Scale(dst, dst.Bounds(), src, r, draw.Src, nil)
	return dst
}

// centre places d in a Side x Side frame with its centre of mass as near
// the centre as a whole-pixel shift allows; ok is false if d has no ink.
func centre(d *image.Gray) (out []uint8, ok bool) {
	w, h := d.Rect.Dx(), d.Rect.Dy()
	var m, mx, my float64
	for y := range h {
		for x := range w {
			v := float64(d.Pix[y*d.Stride+x])
			m += v
			mx += v * float64(x)
			my += v * float64(y)
		}
	}
	if m == 0 {
		return nil, false
	}
	// A digit is at most box pixels a side, so the clamp only ever stops a
	// lopsided digit from leaving the frame; it never has to choose.
	ox := min(max(int(math.Round(Side/2-mx/m)), 0), Side-w)
	oy := min(max(int(math.Round(Side/2-my/m)), 0), Side-h)
	out = make([]uint8, Side*Side)
	for y := range h {
		copy(out[(oy+y)*Side+ox:], d.Pix[y*d.Stride:y*d.Stride+w])
	}
	return out, true
}
