package plots

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAugmentations(t *testing.T) {
	img := func(side int, v float32) []float32 {
		p := make([]float32, side*side)
		for i := range p {
			p[i] = v * float32(i%side) / float32(side)
		}
		return p
	}
	var buf bytes.Buffer
	grid := [][][]float32{{img(28, 1), img(28, 0.5), img(28, 2)}, {img(28, 0), img(28, -1), img(28, 1)}}
	if err := Augmentations(&buf, grid, 28, "heading"); err != nil {
		t.Fatal(err)
	}
	if *outDir != "" {
		if err := os.WriteFile(filepath.Join(*outDir, "plots-augmentations.png"), buf.Bytes(), 0o644); err != nil {
			t.Error(err)
		}
	}
	pic, err := png.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if b := pic.Bounds(); b.Dx() < 3*84 || b.Dy() < 2*84 {
		t.Fatalf("%v: too small for 2 rows of 3 images at 3x", b)
	}
	for name, c := range map[string]struct {
		grid [][][]float32
		side int
		want string
	}{
		"empty":  {nil, 28, "no images"},
		"ragged": {[][][]float32{{img(28, 1)}, {img(28, 1), img(28, 1)}}, 28, "row 1 has 2"},
		"size":   {[][][]float32{{img(27, 1)}}, 28, "want 28x28"},
	} {
		if err := Augmentations(&buf, c.grid, c.side, "h"); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", name, err, c.want)
		}
	}
}
