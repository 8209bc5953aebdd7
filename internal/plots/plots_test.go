package plots

import (
	"bytes"
	"flag"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Looking at the pictures is the real check of their layout:
// go test ./internal/plots -args -out /tmp writes /tmp/plots-*.png.
var outDir = flag.String("out", "", "also write each rendered PNG to this folder as plots-NAME.png")

// decode checks that b is a PNG of roughly w x h pixels that is not one flat
// colour, saves it under -out, and returns it.
func decode(t *testing.T, name string, b []byte, w, h int) image.Image {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: png.Decode: %v", name, err)
	}
	bw, bh := img.Bounds().Dx(), img.Bounds().Dy()
	if bw < w*9/10 || bw > w*11/10 || bh < h*9/10 || bh > h*11/10 {
		t.Errorf("%s: %dx%d pixels, want about %dx%d", name, bw, bh, w, h)
	}
	// Antialiased text alone brings dozens of shades; a blank or failed
	// drawing has one or two.
	if n := len(colours(img)); n < 20 {
		t.Errorf("%s: only %d distinct colours: blank?", name, n)
	}
	if *outDir != "" {
		if err := os.WriteFile(filepath.Join(*outDir, "plots-"+name+".png"), b, 0o644); err != nil {
			t.Error(err)
		}
	}
	return img
}

func colours(img image.Image) map[color.RGBA]int {
	seen := map[color.RGBA]int{}
	// png.Decode gives the canvases' opaque RGBA back as *image.RGBA; its
	// Pix is far quicker to walk than At on a picture of a million pixels.
	if rgba, ok := img.(*image.RGBA); ok {
		for i := 0; i+3 < len(rgba.Pix); i += 4 {
			seen[color.RGBA{R: rgba.Pix[i], G: rgba.Pix[i+1], B: rgba.Pix[i+2], A: rgba.Pix[i+3]}]++
		}
		return seen
	}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			seen[color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)]++
		}
	}
	return seen
}

// curves is a plausible ten-epoch run.
func curves() []EpochPoint {
	tl := []float64{0.42, 0.16, 0.11, 0.085, 0.068, 0.055, 0.046, 0.038, 0.032, 0.027}
	vl := []float64{0.19, 0.13, 0.10, 0.089, 0.080, 0.076, 0.072, 0.071, 0.070, 0.070}
	ta := []float64{0.880, 0.953, 0.967, 0.975, 0.980, 0.984, 0.987, 0.989, 0.991, 0.993}
	va := []float64{0.944, 0.962, 0.970, 0.974, 0.976, 0.978, 0.979, 0.980, 0.980, 0.981}
	e := make([]EpochPoint, len(tl))
	for i := range e {
		e[i] = EpochPoint{Epoch: i + 1, TrainLoss: tl[i], ValLoss: vl[i], TrainAccuracy: ta[i], ValAccuracy: va[i]}
	}
	return e
}

func TestTrainingCurves(t *testing.T) {
	for _, tc := range []struct {
		name   string
		epochs []EpochPoint
	}{
		{"curves", curves()},
		{"curves-one-epoch", curves()[:1]},
	} {
		var b bytes.Buffer
		if err := TrainingCurves(&b, tc.epochs, "cross-entropy loss"); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		decode(t, tc.name, b.Bytes(), 1000, 450)
	}
}

func TestTrainingCurvesBadInput(t *testing.T) {
	nan := curves()
	nan[3].ValLoss = math.NaN()
	percent := curves()
	percent[2].ValAccuracy = 97
	for name, epochs := range map[string][]EpochPoint{
		"empty": nil, "NaN loss": nan, "accuracy in percent": percent,
	} {
		if err := TrainingCurves(&bytes.Buffer{}, epochs, "cross-entropy loss"); err == nil {
			t.Errorf("%s: no error", name)
		} else if !strings.HasPrefix(err.Error(), "training curves: ") {
			t.Errorf("%s: error %q lacks its context", name, err)
		}
	}
}

// mnistLike is a 10x10 confusion matrix of a ~98% model on MNIST's test set.
func mnistLike() [][]int {
	return [][]int{
		{971, 0, 1, 1, 0, 2, 2, 1, 2, 0},
		{0, 1124, 3, 1, 0, 1, 2, 1, 3, 0},
		{3, 1, 1008, 5, 2, 0, 2, 6, 5, 0},
		{0, 0, 3, 991, 0, 5, 0, 4, 4, 3},
		{1, 0, 3, 0, 962, 0, 4, 2, 1, 9},
		{2, 0, 0, 8, 1, 871, 4, 1, 4, 1},
		{4, 2, 1, 1, 3, 5, 940, 0, 2, 0},
		{1, 5, 9, 2, 1, 0, 0, 1002, 2, 6},
		{3, 0, 3, 6, 3, 4, 2, 3, 947, 3},
		{2, 3, 0, 5, 8, 3, 1, 5, 2, 980},
	}
}

func TestConfusionMatrix(t *testing.T) {
	var b bytes.Buffer
	if err := ConfusionMatrix(&b, mnistLike(), "Test set confusion matrix"); err != nil {
		t.Fatal(err)
	}
	img := decode(t, "confusion", b.Bytes(), 700, 700)
	// Both colour scales must show: blue diagonal cells, red error cells.
	var blue, red int
	for c, k := range colours(img) {
		r, g, bl := int(c.R), int(c.G), int(c.B)
		if bl > r+80 && bl > g+40 {
			blue += k
		}
		if r > bl+80 && r > g+80 {
			red += k
		}
	}
	if blue < 1000 || red < 1000 {
		t.Errorf("%d blue and %d red pixels: want both colour scales visible", blue, red)
	}

	// Many classes and four-digit counts: the counts must shrink to fit.
	const n = 20
	big := make([][]int, n)
	for i := range big {
		big[i] = make([]int, n)
		for j := range big[i] {
			big[i][j] = (i * j * 7) % 13
		}
		big[i][i] = 1000 + 100*i
	}
	b.Reset()
	if err := ConfusionMatrix(&b, big, "20 classes"); err != nil {
		t.Fatalf("20x20: %v", err)
	}
	decode(t, "confusion-20", b.Bytes(), 700, 700)

	b.Reset()
	if err := ConfusionMatrix(&b, [][]int{{5}}, ""); err != nil {
		t.Fatalf("1x1: %v", err)
	}
	decode(t, "confusion-1x1", b.Bytes(), 700, 700)
}

func TestConfusionMatrixBadInput(t *testing.T) {
	for name, m := range map[string][][]int{
		"nil":        nil,
		"empty row":  {{}},
		"not square": {{1, 2}, {3, 4}, {5, 6}},
		"ragged":     {{1, 2}, {3}},
		"negative":   {{1, 0}, {-1, 4}},
	} {
		if err := ConfusionMatrix(&bytes.Buffer{}, m, "x"); err == nil {
			t.Errorf("%s: no error", name)
		} else if !strings.HasPrefix(err.Error(), "confusion matrix: ") {
			t.Errorf("%s: error %q lacks its context", name, err)
		}
	}
}

// glyph is the digit d as a 28x28 MNIST-like image: f's numeral, white on
// black.
func glyph(f *face, d int) Digit {
	c := newCanvas(28, 28, black)
	c.text(f, string(rune('0'+d)), 14, 14, center, middle, white)
	px := make([]uint8, 28*28)
	for i := range px {
		px[i] = c.img.Pix[4*i] // the red channel of a grey
	}
	return Digit{Pixels: px, Rows: 28, Cols: 28, True: d, Pred: (d*7 + 3) % 10}
}

// testFace is Go Regular at size pixels.
func testFace(t *testing.T, size float64) *face {
	t.Helper()
	tf, err := newTypeface()
	if err != nil {
		t.Fatal(err)
	}
	f, err := tf.face(size)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestErrors(t *testing.T) {
	f := testFace(t, 24)
	digits := make([]Digit, 0, 130)
	for i := range 130 {
		digits = append(digits, glyph(f, i%10))
	}
	var b bytes.Buffer
	if err := Errors(&b, digits, 10); err != nil {
		t.Fatal(err)
	}
	img := decode(t, "errors", b.Bytes(), 1000, 1200)
	// The tiles are black with white ink on a white page.
	cs := colours(img)
	if cs[color.RGBA{A: 0xff}] < 100*28*28 || cs[color.RGBA{R: 0xff, G: 0xff, B: 0xff, A: 0xff}] < 10000 {
		t.Errorf("%d black and %d white pixels: digits missing?", cs[color.RGBA{A: 0xff}], cs[color.RGBA{R: 0xff, G: 0xff, B: 0xff, A: 0xff}])
	}

	// One image, more columns than images: a single tile, not a wide strip.
	b.Reset()
	if err := Errors(&b, digits[7:8], 10); err != nil {
		t.Fatalf("one image: %v", err)
	}
	if one, err := png.Decode(&b); err != nil {
		t.Fatalf("one image: %v", err)
	} else if w := one.Bounds().Dx(); w > 300 {
		t.Errorf("one image is %d pixels wide", w)
	}
}

func TestErrorsBadInput(t *testing.T) {
	good := Digit{Pixels: make([]uint8, 4), Rows: 2, Cols: 2}
	short := Digit{Pixels: make([]uint8, 3), Rows: 2, Cols: 2}
	zero := Digit{Rows: 0, Cols: 2}
	// A bad image past the first MaxErrors is not drawn but still refused.
	beyond := make([]Digit, MaxErrors+1)
	for i := range MaxErrors {
		beyond[i] = good
	}
	beyond[MaxErrors] = short
	for name, tc := range map[string]struct {
		imgs []Digit
		cols int
	}{
		"empty":          {nil, 10},
		"no columns":     {[]Digit{good}, 0},
		"wrong pixels":   {[]Digit{good, short}, 10},
		"zero rows":      {[]Digit{zero}, 10},
		"bad beyond cap": {beyond, 10},
	} {
		if err := Errors(&bytes.Buffer{}, tc.imgs, tc.cols); err == nil {
			t.Errorf("%s: no error", name)
		} else if !strings.HasPrefix(err.Error(), "misclassified images: ") {
			t.Errorf("%s: error %q lacks its context", name, err)
		}
	}
}
