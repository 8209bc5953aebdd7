package digit

import (
	"bytes"
	"image"
	"image/color"
	"testing"

	"github.com/mnist-cl/mnist-cl/internal/testutil"
)

// FuzzDecode: any bytes are a digit of exactly Side*Side pixels or an error;
// never a panic.
func FuzzDecode(f *testing.F) {
	// Small real files of each format, so that mutations reach the
	// decoders' insides and this package's image handling.
	small := image.NewRGBA(image.Rect(0, 0, 12, 16))
	fill(small, small.Bounds(), white)
	fill(small, image.Rect(3, 2, 10, 5), black)
	fill(small, image.Rect(7, 2, 10, 14), color.Gray{60})
	gray := image.NewGray(small.Bounds())
	for i := range gray.Pix {
		gray.Pix[i] = small.Pix[4*i]
	}
	translucent := image.NewNRGBA(small.Bounds())
	fill(translucent, image.Rect(4, 3, 8, 13), color.NRGBA{0, 0, 0, 200})

	pngRGBA := testutil.EncodePNG(f, small)
	seeds := [][]byte{
		pngRGBA,
		testutil.EncodePNG(f, gray),
		testutil.EncodePNG(f, translucent),
		encodeJPEG(f, small, 75),
		encodeJPEG(f, gray, 50),
		encodeGIF(f, small),
		pngRGBA[:len(pngRGBA)-20],
		pngHeader(100_000, 100_000),
		pngHeader(3000, 3000),
		jpegHeader(4000, 4000),
		[]byte("GIF89a\x01\x00\x01\x00\x00\x00\x00"),
		[]byte("not an image"),
		nil,
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		px, err := Decode(bytes.NewReader(data))
		if err == nil && len(px) != Side*Side {
			t.Fatalf("Decode = %d bytes, want %d", len(px), Side*Side)
		}
		if err != nil && px != nil {
			t.Fatalf("Decode = %d bytes and error %v", len(px), err)
		}
	})
}
