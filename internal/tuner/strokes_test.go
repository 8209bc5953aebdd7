package tuner

import (
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/mnist-cl/mnist-cl/mnist"
)

// kept is the fraction of the terms a sparse product keeps on x, rows
// images of cols pixels, in blocks of tm: for A B, the pixels where any of
// tm images is inked; for A^T B, the images where any of tm neighbouring
// pixels is.
func kept(x []float32, rows, cols, tm int) (ab, atb float64) {
	count := func(blocks, terms int, inked func(b, k int) bool) float64 {
		n := 0
		for b := range blocks {
			for k := range terms {
				if inked(b, k) {
					n++
				}
			}
		}
		return float64(n) / float64(blocks*terms)
	}
	ab = count(rows/tm, cols, func(b, k int) bool {
		return anyInked(tm, func(r int) float32 { return x[(b*tm+r)*cols+k] })
	})
	atb = count(cols/tm, rows, func(b, k int) bool {
		return anyInked(tm, func(c int) float32 { return x[k*cols+b*tm+c] })
	})
	return ab, atb
}

func anyInked(n int, at func(int) float32) bool {
	for i := range n {
		if at(i) != 0 {
			return true
		}
	}
	return false
}

// TestStrokesLikeMNIST holds the stand-in images to the sparsity of the
// real ones (testdata's 1,000 training images) where it sets a sparse
// product's speed: the terms kept by blocks of 2 to 8 rows, both forms.
func TestStrokesLikeMNIST(t *testing.T) {
	split, err := mnist.Load(filepath.Join("..", "..", "testdata", "mnist-small"))
	if err != nil {
		t.Fatal(err)
	}
	const rows, cols = 128, 784
	idx := make([]int, rows)
	for i := range idx {
		idx[i] = i
	}
	real := make([]float32, rows*cols)
	split.Train.ScaleBatch(idx, real)
	fake := strokes(rand.New(rand.NewPCG(1, 1)), rows, cols)
	for _, tm := range []int{2, 4, 6, 8} {
		rab, ratb := kept(real, rows, cols, tm)
		fab, fatb := kept(fake, rows, cols, tm)
		t.Logf("blocks of %d: MNIST keeps %.2f and %.2f of the terms, strokes %.2f and %.2f", tm, rab, ratb, fab, fatb)
		if d := fab / rab; d < 0.8 || d > 1.25 {
			t.Errorf("blocks of %d rows of X: strokes keep %.2f of the terms, MNIST %.2f", tm, fab, rab)
		}
		if d := fatb / ratb; d < 0.8 || d > 1.25 {
			t.Errorf("blocks of %d rows of X^T: strokes keep %.2f of the terms, MNIST %.2f", tm, fatb, ratb)
		}
	}
	// Pixels that make no square still get ink, and none past the row.
	line := strokes(rand.New(rand.NewPCG(2, 2)), 3, 37)
	for r := range 3 {
		if !anyInked(37, func(c int) float32 { return line[r*37+c] }) {
			t.Errorf("image %d of 37 pixels has no ink", r)
		}
	}
}
