package digit

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/draw"
	"image/gif"
	"image/jpeg"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mnist-cl/mnist-cl/internal/testutil"
	"github.com/mnist-cl/mnist-cl/mnist"
)

var (
	black = color.Gray{0}
	white = color.Gray{255}
)

// sheet is a w x h image of one colour.
func sheet(w, h int, c color.Color) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	fill(img, img.Bounds(), c)
	return img
}

// fill paints r of img in c, as a pen would: c's alpha blends over what is
// there.
func fill(img draw.Image, r image.Rectangle, c color.Color) {
	draw.Draw(img, r, image.NewUniform(c), image.Point{}, draw.Over)
}

// barOn is the "1" of the tests: a 20x240 bar in a 200x300 image.
func barOn(paper, ink color.Color) *image.RGBA {
	img := sheet(200, 300, paper)
	fill(img, image.Rect(90, 30, 110, 270), ink)
	return img
}

// sevenOn is a "7": a top stroke and a right stroke, whose centre of mass is
// far from the centre of its box, in a 300x300 image.
func sevenOn(paper, ink color.Color) *image.RGBA {
	img := sheet(300, 300, paper)
	drawSeven(img, image.Point{}, ink)
	return img
}

// drawSeven draws sevenOn's strokes on img, moved by off.
func drawSeven(img draw.Image, off image.Point, ink color.Color) {
	fill(img, image.Rect(60, 40, 240, 80).Add(off), ink)
	fill(img, image.Rect(200, 40, 240, 260).Add(off), ink)
}

func encodeJPEG(t testing.TB, img image.Image, quality int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: quality}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodeGIF(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := gif.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// pngHeader is a PNG signature and an IHDR chunk claiming w x h 8-bit grey
// pixels, with a correct CRC, so that only the missing data is wrong.
func pngHeader(w, h uint32) []byte {
	b := []byte("\x89PNG\r\n\x1a\n")
	chunk := binary.BigEndian.AppendUint32([]byte("IHDR"), w)
	chunk = binary.BigEndian.AppendUint32(chunk, h)
	chunk = append(chunk, 8, 0, 0, 0, 0) // depth, grey, deflate, no filter, no interlace
	b = binary.BigEndian.AppendUint32(b, uint32(len(chunk)-4))
	b = append(b, chunk...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(chunk))
}

// jpegHeader is a JPEG start and a baseline frame header claiming w x h grey
// pixels.
func jpegHeader(w, h uint16) []byte {
	b := []byte{0xff, 0xd8, 0xff, 0xc0, 0, 11, 8}
	b = binary.BigEndian.AppendUint16(b, h)
	b = binary.BigEndian.AppendUint16(b, w)
	// The start of a scan is where DecodeConfig stops reading.
	return append(b, 1, 1, 0x11, 0, 0xff, 0xda, 0, 8)
}

// shape is what the tests check of a result: its ink's centre of mass in
// pixel-index coordinates, its bounding box and its brightest pixel.
type shape struct {
	cx, cy float64
	box    image.Rectangle
	top    uint8
}

func measure(t testing.TB, px []uint8) shape {
	t.Helper()
	if len(px) != Side*Side {
		t.Fatalf("got %d bytes, want %d", len(px), Side*Side)
	}
	var s shape
	var m, mx, my float64
	for i, v := range px {
		x, y := i%Side, i/Side
		if v == 0 {
			continue
		}
		m += float64(v)
		mx += float64(v) * float64(x)
		my += float64(v) * float64(y)
		s.box = s.box.Union(image.Rect(x, y, x+1, y+1))
		s.top = max(s.top, v)
	}
	if m == 0 {
		t.Fatal("no ink in the result")
	}
	s.cx, s.cy = mx/m, my/m
	return s
}

// relL2 is |got-want| / |want| over the pixels.
func relL2(got, want []uint8) float64 {
	var d, n float64
	for i := range want {
		e := float64(got[i]) - float64(want[i])
		d += e * e
		n += float64(want[i]) * float64(want[i])
	}
	return math.Sqrt(d / n)
}

func mustFromImage(t testing.TB, img image.Image) []uint8 {
	t.Helper()
	px, err := FromImage(img)
	if err != nil {
		t.Fatalf("FromImage: %v", err)
	}
	return px
}

func mustDecode(t testing.TB, data []byte) []uint8 {
	t.Helper()
	px, err := Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	return px
}

// TestShapes checks the MNIST rules on drawn digits: bright ink, the longer
// side of the box 20 pixels, the centre of mass within rounding of (14, 14).
func TestShapes(t *testing.T) {
	tiny := sheet(5, 7, white)
	fill(tiny, image.Rect(2, 1, 3, 6), black)
	fill(tiny, image.Rect(1, 2, 2, 3), black)
	wide := sheet(400, 100, white)
	fill(wide, image.Rect(50, 40, 350, 60), black)
	tests := []struct {
		name string
		img  image.Image
		w, h int // the box the digit should fill
	}{
		{"bar", barOn(white, black), 2, 20},
		{"seven", sevenOn(white, black), 16, 20},
		{"tiny 5x7 upscaled", tiny, 8, 20},
		{"wide dash", wide, 20, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := measure(t, mustFromImage(t, tt.img))
			if s.box.Dx() != tt.w || s.box.Dy() != tt.h {
				t.Errorf("box %v is %dx%d, want %dx%d", s.box, s.box.Dx(), s.box.Dy(), tt.w, tt.h)
			}
			if math.Abs(s.cx-Side/2) > 0.5 || math.Abs(s.cy-Side/2) > 0.5 {
				t.Errorf("centre of mass (%.2f, %.2f), want within 0.5 of (14, 14)", s.cx, s.cy)
			}
			if s.top < 250 {
				t.Errorf("brightest ink %d, want near 255", s.top)
			}
		})
	}
}

// TestTinyIsAntiAliased checks that upscaling smooths rather than copies
// blocks: a 5x7 digit comes out with levels between paper and ink.
func TestTinyIsAntiAliased(t *testing.T) {
	tiny := sheet(5, 7, white)
	fill(tiny, image.Rect(2, 1, 3, 6), black)
	fill(tiny, image.Rect(1, 2, 2, 3), black)
	mid := 0
	for _, v := range mustFromImage(t, tiny) {
		if v > 20 && v < 235 {
			mid++
		}
	}
	if mid < 10 {
		t.Errorf("%d pixels between paper and ink, want the edges smoothed", mid)
	}
}

// TestSameDigit checks that ways of showing one digit come out alike:
// inverted, faded, noisy, transparent, in other image types. The seven is
// used because its centre of mass is not half-way between pixels, where
// the least noise would flip the rounding of the shift.
func TestSameDigit(t *testing.T) {
	want := mustFromImage(t, sevenOn(white, black))

	noisy := sevenOn(color.Gray{190}, color.Gray{70})
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range noisy.Pix {
		if i%4 != 3 {
			noisy.Pix[i] = uint8(int(noisy.Pix[i]) + rng.IntN(25) - 12)
		}
	}
	speck := sevenOn(white, black)
	fill(speck, image.Rect(5, 290, 7, 292), black)

	transparent := image.NewRGBA(image.Rect(0, 0, 300, 300)) // all clear
	drawSeven(transparent, image.Point{}, black)
	ntransparent := image.NewNRGBA(image.Rect(0, 0, 300, 300))
	for i := range ntransparent.Pix {
		ntransparent.Pix[i] = 255 // clear white, and then clear black pixels
		if i%4 == 3 || i%7 == 0 {
			ntransparent.Pix[i] = 0
		}
	}
	drawSeven(ntransparent, image.Point{}, black)

	gray := image.NewGray(image.Rect(0, 0, 300, 300))
	draw.Draw(gray, gray.Bounds(), sevenOn(white, black), image.Point{}, draw.Src)
	gray16 := image.NewGray16(gray.Bounds())
	draw.Draw(gray16, gray16.Bounds(), gray, image.Point{}, draw.Src)
	paletted := image.NewPaletted(gray.Bounds(), color.Palette{white, black})
	draw.Draw(paletted, paletted.Bounds(), gray, image.Point{}, draw.Src)
	cmyk := image.NewCMYK(gray.Bounds())
	draw.Draw(cmyk, cmyk.Bounds(), gray, image.Point{}, draw.Src)
	// A sub-image has bounds that do not start at 0.
	big := sheet(600, 600, white)
	drawSeven(big, image.Pt(100, 200), black)
	sub := big.SubImage(image.Rect(100, 200, 400, 500))

	tests := []struct {
		name string
		img  image.Image
		tol  float64 // relative L2 distance allowed from want
	}{
		{"white on black", sevenOn(black, white), 0},
		{"grey on dark grey", sevenOn(color.Gray{40}, color.Gray{200}), 0},
		{"noisy photo", noisy, 0.05},
		{"speck of dust in a corner", speck, 0},
		{"RGBA on transparent", transparent, 0},
		{"NRGBA on transparent", ntransparent, 0},
		{"Gray", gray, 0},
		{"Gray16", gray16, 0},
		{"Paletted", paletted, 0},
		{"CMYK", cmyk, 0},
		{"sub-image", sub, 0},
		{"only At", struct{ image.Image }{gray}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mustFromImage(t, tt.img)
			d := relL2(got, want)
			if d > tt.tol {
				t.Errorf("relative L2 distance %.4f from black on white, want at most %.4f", d, tt.tol)
			}
		})
	}
}

// TestFormats checks each file format against the image it was made from.
func TestFormats(t *testing.T) {
	img := sevenOn(white, black)
	want := mustFromImage(t, img)
	tests := []struct {
		name string
		data []byte
		tol  float64
	}{
		{"PNG", testutil.EncodePNG(t, img), 0},
		{"GIF", encodeGIF(t, img), 0},
		{"JPEG quality 90", encodeJPEG(t, img, 90), 0.01},
		{"JPEG quality 30", encodeJPEG(t, img, 30), 0.01},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := relL2(mustDecode(t, tt.data), want)
			if d > tt.tol {
				t.Errorf("relative L2 distance %.4f from the image encoded, want at most %.4f", d, tt.tol)
			}
		})
	}
}

// TestMNISTRoundTrip draws real MNIST digits as a user would, 4x larger and
// black on white, and checks that they come back close to the originals.
// MNIST's digits already fill a 20x20 box centred by mass, so what differs
// is the noise floor, the resampling, and the whole-pixel shift: MNIST's
// own centres of mass lie anywhere within half a pixel of (14, 14), and a
// digit near the half-way point may land a pixel to the other side, which
// alone costs up to 0.6 in relative L2. So the test holds the plain error
// to a mean, and the error at the best shift by a pixel to a worst case too.
func TestMNISTRoundTrip(t *testing.T) {
	small := filepath.Join("..", "..", "testdata", "mnist-small")
	set, err := mnist.ReadSet(filepath.Join(small, mnist.TestImagesFile), filepath.Join(small, mnist.TestLabelsFile))
	if err != nil {
		t.Fatal(err)
	}
	data, n, rows, cols := set.Images, set.Len(), set.Rows, set.Cols
	const count, scale = 50, 4
	if rows != Side || cols != Side || n < count {
		t.Fatalf("%d images of %dx%d, want %d of %dx%[3]d", n, rows, cols, count, Side)
	}
	// Measured: mean 0.218 and worst 0.671 plain; mean 0.150 and worst
	// 0.384 at the best shift.
	const meanPlain, meanShifted, worstShifted = 0.24, 0.17, 0.42
	var plain, shifted, worst float64
	for i := range count {
		orig := data[i*Side*Side : (i+1)*Side*Side]
		img := image.NewGray(image.Rect(0, 0, Side*scale, Side*scale))
		for p := range img.Pix {
			x, y := p%(Side*scale)/scale, p/(Side*scale)/scale
			img.Pix[p] = 255 - orig[y*Side+x]
		}
		got := mustDecode(t, testutil.EncodePNG(t, img))
		if s := measure(t, got); math.Abs(s.cx-Side/2) > 0.5 || math.Abs(s.cy-Side/2) > 0.5 {
			t.Errorf("digit %d: centre of mass (%.2f, %.2f), want within 0.5 of (14, 14)", i, s.cx, s.cy)
		}
		d := relL2(got, orig)
		best := d
		for dy := -1; dy <= 1; dy++ {
			for dx := -1; dx <= 1; dx++ {
				best = min(best, relL2(shift(got, dx, dy), orig))
			}
		}
		plain += d
		shifted += best
		worst = max(worst, best)
	}
	plain /= count
	shifted /= count
	t.Logf("relative L2 over %d digits: mean %.3f; at the best shift by a pixel, mean %.3f and worst %.3f",
		count, plain, shifted, worst)
	if plain > meanPlain || shifted > meanShifted || worst > worstShifted {
		t.Errorf("relative L2 mean %.3f, shifted mean %.3f, shifted worst %.3f; want at most %.2f, %.2f, %.2f",
			plain, shifted, worst, meanPlain, meanShifted, worstShifted)
	}
}

// shift moves px by (dx, dy) pixels, losing what leaves the frame.
func shift(px []uint8, dx, dy int) []uint8 {
	out := make([]uint8, len(px))
	for y := range Side {
		for x := range Side {
			sx, sy := x-dx, y-dy
			if sx >= 0 && sx < Side && sy >= 0 && sy < Side {
				out[y*Side+x] = px[sy*Side+sx]
			}
		}
	}
	return out
}

// TestBlank checks that pictures with no ink that stands out are refused.
func TestBlank(t *testing.T) {
	faint := sheet(60, 60, white)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range faint.Pix {
		if i%4 != 3 {
			faint.Pix[i] -= uint8(rng.IntN(20))
		}
	}
	tests := []struct {
		name string
		img  image.Image
	}{
		{"white", sheet(100, 100, white)},
		{"black", sheet(100, 100, black)},
		{"mid grey", sheet(100, 100, color.Gray{128})},
		{"one pixel", sheet(1, 1, black)},
		{"paper grain", faint},
		{"transparent", image.NewNRGBA(image.Rect(0, 0, 50, 50))},
		{"white ink on transparent", func() image.Image {
			img := image.NewRGBA(image.Rect(0, 0, 50, 50))
			fill(img, image.Rect(20, 10, 25, 40), white)
			return img
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			px, err := FromImage(tt.img)
			if !errors.Is(err, ErrBlank) {
				t.Fatalf("FromImage = %d bytes, %v; want %v", len(px), err, ErrBlank)
			}
			if err.Error() != "no digit found: the image is blank" {
				t.Errorf("error %q", err)
			}
		})
	}
}

// TestBadData checks that broken and hostile files are refused with an
// error that names the problem, and that a header claiming a huge image
// costs no more than the file does.
func TestBadData(t *testing.T) {
	good := testutil.EncodePNG(t, barOn(white, black))
	goodJPEG := encodeJPEG(t, barOn(white, black), 80)
	tests := []struct {
		name string
		data []byte
		is   error
		want string
	}{
		{"empty", nil, ErrFormat, "not a PNG, JPEG or GIF image: the file is empty"},
		{"garbage", []byte("this is not an image at all, just text"), ErrFormat, "not a PNG, JPEG or GIF image"},
		{"BMP", append([]byte("BM"), make([]byte, 60)...), ErrFormat, "not a PNG, JPEG or GIF image"},
		{"truncated PNG", good[:len(good)/2], nil, "PNG image is truncated"},
		{"PNG signature only", good[:8], nil, "PNG header is truncated"},
		{"truncated JPEG", goodJPEG[:len(goodJPEG)/2], nil, "JPEG image is truncated"},
		{"corrupt PNG", func() []byte {
			b := bytes.Clone(good)
			b[20] ^= 0xff // in IHDR, so its CRC fails
			return b
		}(), nil, "decode PNG header: png: invalid format"},
		{"PNG of 100000x100000", pngHeader(100_000, 100_000), ErrTooLarge,
			"PNG image too large: 100000x100000 pixels, over the limit of 10000 on a side and 50 megapixels"},
		{"PNG of 9000x9000", pngHeader(9000, 9000), ErrTooLarge, "over the limit"},
		{"PNG of 0x10", pngHeader(0, 10), nil, "PNG header: png: invalid format"},
		{"PNG header claiming 5000x5000", pngHeader(5000, 5000), nil,
			"PNG image is truncated or corrupt: 33 bytes cannot hold the 5000x5000 pixels its header claims"},
		{"JPEG of 60000x60000", jpegHeader(60000, 60000), ErrTooLarge, "JPEG image too large"},
		{"JPEG header claiming 4000x4000", jpegHeader(4000, 4000), nil, "JPEG image is truncated or corrupt"},
		{"GIF of 1x1 with no frame", []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00"), nil, "GIF image is truncated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			px, err := Decode(bytes.NewReader(tt.data))
			took := time.Since(start)
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Fatalf("Decode = %d bytes, want an error", len(px))
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %q does not wrap %q", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q, want one line containing %q", err, tt.want)
			}
			if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
				t.Errorf("allocated %d bytes for a %d-byte file", got, len(tt.data))
			}
			if took > time.Second {
				t.Errorf("took %v", took)
			}
		})
	}
}

// TestSizeLimits checks the limits that apply before and without decoding.
func TestSizeLimits(t *testing.T) {
	// The file limit, lowered so that the test needs no 64 MiB.
	data := testutil.EncodePNG(t, barOn(white, black))
	if _, err := decode(bytes.NewReader(data), int64(len(data))); err != nil {
		t.Errorf("file at the limit: %v", err)
	}
	_, err := decode(bytes.NewReader(data), int64(len(data)-1))
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "file is over") {
		t.Errorf("file over the limit: %v", err)
	}
	// An image in memory is held to the pixel limits too: a Uniform is a
	// few bytes claiming billions of pixels.
	if _, err := FromImage(image.NewUniform(black)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("FromImage(Uniform): %v, want %v", err, ErrTooLarge)
	}
	if _, err := FromImage(image.NewGray(image.Rect(3, 3, 3, 9))); err == nil || !strings.Contains(err.Error(), "no pixels") {
		t.Errorf("FromImage(empty): %v", err)
	}
}

// TestLoad checks Load on files, and on paths that are not image files.
func TestLoad(t *testing.T) {
	dir := t.TempDir()
	img := sevenOn(white, black)
	pngPath := filepath.Join(dir, "seven.png")
	if err := os.WriteFile(pngPath, testutil.EncodePNG(t, img), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := Load(pngPath)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if want := mustFromImage(t, img); !bytes.Equal(got, want) {
		t.Error("Load differs from FromImage on the same image")
	}

	huge := filepath.Join(dir, "huge.png")
	if err := os.WriteFile(huge, pngHeader(10, 10), 0o644); err != nil {
		t.Fatal(err)
	}
	// Sparse, so the test writes nothing; Load must refuse it unread.
	if err := os.Truncate(huge, MaxFileBytes+1); err != nil {
		t.Fatal(err)
	}
	text := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(text, []byte("seven\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path string
		is         error
		want       string
	}{
		{"folder", dir, nil, "read " + dir + ": is a folder, not an image file"},
		{"missing", filepath.Join(dir, "nope.png"), fs.ErrNotExist, "read " + filepath.Join(dir, "nope.png") + ": "},
		{"over 64 MiB", huge, ErrTooLarge, "over the 64 MiB limit"},
		{"text", text, ErrFormat, "read " + text + ": not a PNG, JPEG or GIF image"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			px, err := Load(tt.path)
			if err == nil {
				t.Fatalf("Load = %d bytes, want an error", len(px))
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %q does not wrap %q", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.want) || strings.Count(err.Error(), tt.path) != 1 {
				t.Errorf("error %q, want one naming the path once and containing %q", err, tt.want)
			}
		})
	}
}

// TestLoadFIFO checks that a named pipe is refused rather than waited on.
func TestLoadFIFO(t *testing.T) {
	mkfifo, err := exec.LookPath("mkfifo")
	if err != nil {
		testutil.Unavailable(t, "no mkfifo here")
	}
	path := filepath.Join(t.TempDir(), "pipe.png")
	if out, err := exec.Command(mkfifo, path).CombinedOutput(); err != nil {
		testutil.Unavailable(t, "mkfifo: %v: %s", err, out)
	}
	done := make(chan error, 1)
	go func() {
		_, err := Load(path)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "is a FIFO, not an image file") {
			t.Errorf("Load(fifo): %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Load is waiting on a named pipe")
	}
}
