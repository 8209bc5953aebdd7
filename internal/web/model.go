package web

import (
	"fmt"
	"math"

	"github.com/mnist-cl/mnist-cl/internal/digit"
	"github.com/mnist-cl/mnist-cl/nn"
)

// Model is a trained network's parameters on the host. It is never written
// after NewModel, so any number of requests may call Forward at once.
type Model struct {
	sizes []int
	// w[l] is row-major sizes[l-1] x sizes[l] and b[l] has sizes[l]
	// entries, for l = 1..L; index 0 is unused, as in nn.Checkpoint.
	w, b [][]float32
	// Summary says what the network is, for the page: its widths, loss and
	// how far it was trained.
	Summary string
}

// NewModel takes the parameters of a checkpoint for a network of 28x28
// inputs and 10 classes, the shapes the drawing page knows how to show.
// The checkpoint's slices are shared, not copied: the caller must not
// change them afterwards.
func NewModel(ck *nn.Checkpoint) (*Model, error) {
	s := ck.Sizes
	if len(s) < 2 || s[0] != digit.Side*digit.Side || s[len(s)-1] != classes {
		return nil, fmt.Errorf("the network is %s; the drawing page needs %d inputs and %d classes", nn.FormatSizes(s), digit.Side*digit.Side, classes)
	}
	L := len(s) - 1
	if len(ck.W) != L+1 || len(ck.B) != L+1 {
		return nil, fmt.Errorf("the checkpoint has %d weights and %d biases for %d layers", len(ck.W), len(ck.B), L)
	}
	for l := 1; l <= L; l++ {
		if len(ck.W[l]) != s[l-1]*s[l] || len(ck.B[l]) != s[l] {
			return nil, fmt.Errorf("layer %d: %d weights and %d biases, want %dx%d and %d", l, len(ck.W[l]), len(ck.B[l]), s[l-1], s[l], s[l])
		}
	}
	sum := fmt.Sprintf("%s, %s loss, %d of %d epochs trained", nn.FormatSizes(s), ck.Config.Loss, ck.Epoch, ck.Config.Epochs)
	return &Model{sizes: append([]int(nil), s...), w: ck.W, b: ck.B, Summary: sum}, nil
}

// classes is the number of answers the drawing page shows bars for.
const classes = 10

// Forward returns the softmax probabilities of the network for one image of
// Side*Side bytes, 0 for background and 255 for ink, read as the gather
// kernel reads training images (x/255). It is the device's forward pass in
// the same float32 arithmetic, one row at a time:
//
//	Z[l] = f(Z[l-1] W[l] + b[l]) for l < L, Z[L] = Z[L-1] W[L] + b[L], Yp = softmax(Z[L])
//
// with sums in another order than the device's GEMM, so results agree to
// float32 rounding, not bit for bit.
func (m *Model) Forward(pixels []uint8) []float32 {
	a := make([]float32, len(pixels))
	for i, p := range pixels {
		a[i] = float32(p) * (1.0 / 255.0)
	}
	L := len(m.sizes) - 1
	for l := 1; l <= L; l++ {
		out := m.sizes[l]
		z := append([]float32(nil), m.b[l]...)
		w := m.w[l]
		// Row i of W[l] is contiguous, so walking the inputs in the outer
		// loop reads W once, in order; a digit is mostly background, and a
		// zero input adds nothing.
		for i, x := range a {
			if x == 0 {
				continue
			}
			row := w[i*out : (i+1)*out]
			for j, wij := range row {
				z[j] += x * wij
			}
		}
		if l < L {
			for j, v := range z {
				// As OpenCL's fmax(v, 0): NaN becomes 0.
				if !(v > 0) {
					z[j] = 0
				}
			}
		}
		a = z
	}
	return softmax(a)
}

// softmax subtracts the row's maximum before exp, as the kernel does, so a
// large logit cannot overflow.
func softmax(z []float32) []float32 {
	mx := z[0]
	for _, v := range z[1:] {
		mx = max(mx, v)
	}
	var sum float64
	e := make([]float64, len(z))
	for j, v := range z {
		e[j] = math.Exp(float64(v - mx))
		sum += e[j]
	}
	p := make([]float32, len(z))
	for j := range p {
		p[j] = float32(e[j] / sum)
	}
	return p
}
