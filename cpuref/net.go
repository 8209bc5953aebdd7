package cpuref

import (
	"fmt"

	"gonum.org/v1/gonum/mat"
)

// Params is the network's parameters in float64.
type Params struct {
	// Sizes are the layer widths: Sizes[0] the inputs (784), Sizes[L] the
	// classes (10), the hidden widths between.
	Sizes []int
	// W[l] is Sizes[l-1] x Sizes[l] (fanIn x fanOut); W[0] is nil.
	W []*mat.Dense
	// B[l] has Sizes[l] entries; B[0] is nil.
	B [][]float64
}

// Layers returns L, the number of weight layers.
func (p *Params) Layers() int { return len(p.Sizes) - 1 }

// FromFloat32 builds Params from a device's float32 host copies: w[l] is
// W[l] row-major (Sizes[l-1]*Sizes[l] entries) and b[l] has Sizes[l] entries,
// for l = 1..L; w[0] and b[0] are ignored. The float32 values are widened
// exactly, so the reference starts from the very parameters the device holds.
// It returns an error if sizes has fewer than two widths, a width is not
// positive, or a length does not match.
func FromFloat32(sizes []int, w, b [][]float32) (*Params, error) {
	if len(sizes) < 2 {
		return nil, fmt.Errorf("cpuref: FromFloat32: %d sizes, want inputs, classes and any hidden widths between", len(sizes))
	}
	for i, s := range sizes {
		if s <= 0 {
			return nil, fmt.Errorf("cpuref: FromFloat32: sizes[%d] is %d, want > 0", i, s)
		}
	}
	L := len(sizes) - 1
	if len(w) != L+1 || len(b) != L+1 {
		return nil, fmt.Errorf("cpuref: FromFloat32: %d weights and %d biases for %d layers, want %d each (index 0 unused)", len(w), len(b), L, L+1)
	}
	p := &Params{
		Sizes: append([]int(nil), sizes...),
		W:     make([]*mat.Dense, L+1),
		B:     make([][]float64, L+1),
	}
	for l := 1; l <= L; l++ {
		fanIn, fanOut := sizes[l-1], sizes[l]
		if len(w[l]) != fanIn*fanOut {
			return nil, fmt.Errorf("cpuref: FromFloat32: w[%d] has %d entries, want %d x %d = %d", l, len(w[l]), fanIn, fanOut, fanIn*fanOut)
		}
		if len(b[l]) != fanOut {
			return nil, fmt.Errorf("cpuref: FromFloat32: b[%d] has %d entries, want %d", l, len(b[l]), fanOut)
		}
		p.W[l] = mat.NewDense(fanIn, fanOut, widen(w[l]))
		p.B[l] = widen(b[l])
	}
	return p, nil
}

// Dense32 is the r x c matrix of row-major float32 data x, widened exactly:
// the reference then sees the very inputs or outputs the device held.
// It panics unless len(x) is r*c.
func Dense32(r, c int, x []float32) *mat.Dense {
	if len(x) != r*c {
		panic(fmt.Sprintf("cpuref: Dense32: %d values for %d x %d", len(x), r, c))
	}
	return mat.NewDense(r, c, widen(x))
}

func widen(v []float32) []float64 {
	d := make([]float64, len(v))
	for i, x := range v {
		d[i] = float64(x)
	}
	return d
}

// Clone returns a deep copy of p, sharing no memory with it, so that a test
// can step one copy and keep the other.
func (p *Params) Clone() *Params {
	L := p.Layers()
	q := &Params{
		Sizes: append([]int(nil), p.Sizes...),
		W:     make([]*mat.Dense, L+1),
		B:     make([][]float64, L+1),
	}
	for l := 1; l <= L; l++ {
		q.W[l] = mat.DenseCopyOf(p.W[l])
		q.B[l] = append([]float64(nil), p.B[l]...)
	}
	return q
}

// Activations is what Forward computes and Backward needs.
type Activations struct {
	// Z[0] is the input X (the caller's matrix, not a copy), Z[l] for
	// 1 <= l < L the post-ReLU output of hidden layer l, Z[L] the logits.
	Z []*mat.Dense
	// Yp is softmax(Z[L]) per row.
	Yp *mat.Dense
}

// Forward runs the batch x (batch x Sizes[0]) through the network:
//
//	Z1 = f(X W1 + b1), Z2 = f(Z1 W2 + b2), Z3 = Z2 W3 + b3, Yp = softmax(Z3)
//
// that is, Z[l] = f(Z[l-1] W[l] + b[l]) for l < L and Z[L] = Z[L-1] W[L] + b[L].
// It panics if x does not have Sizes[0] columns.
func Forward(p *Params, x *mat.Dense) *Activations {
	L := p.Layers()
	if _, c := x.Dims(); c != p.Sizes[0] {
		panic(fmt.Sprintf("cpuref: Forward: x has %d columns, want Sizes[0] = %d", c, p.Sizes[0]))
	}
	a := &Activations{Z: make([]*mat.Dense, L+1)}
	a.Z[0] = x
	for l := 1; l < L; l++ {
		a.Z[l] = BiasReLU(MatMul(a.Z[l-1], p.W[l], false, false), p.B[l])
	}
	a.Z[L] = AddBias(MatMul(a.Z[L-1], p.W[L], false, false), p.B[L])
	a.Yp = softmax(a.Z[L])
	return a
}

func softmax(logits *mat.Dense) *mat.Dense {
	r, c := logits.Dims()
	yp := mat.NewDense(r, c, nil)
	for i := range r {
		softmaxRow(logits, i, yp)
	}
	return yp
}

// Grads is what Backward computes. Slices indexed by layer have L+1 entries
// with index 0 nil: there is no gradient for the input X.
type Grads struct {
	// DZ[l] is dLoss/dZ[l], Z[l] the post-activation output of layer l.
	DZ []*mat.Dense
	// Delta[l] is dLoss with respect to layer l's pre-activation,
	// f'(Z[l]) . DZ[l] for l < L; Delta[L] is DZ[L] itself (no activation on
	// the logits).
	Delta []*mat.Dense
	// DW[l] and DB[l] are dLoss/dW[l] and dLoss/db[l].
	DW []*mat.Dense
	DB [][]float64
	// Loss[r] is row r's cross-entropy -log Yp[r, label[r]] and Correct[r]
	// whether its arg-max is its label.
	Loss    []float64
	Correct []bool
}

// Backward computes the gradients of the batch-mean cross-entropy with
// respect to every parameter, from the activations of Forward and the batch's
// labels. It is the lecture's backprop, generalised to L layers:
//
//	dZ3 = Yp - Y
//	dZ2 = dZ3 W3^T
//	dZ1 = [f'(Z1 W2 + b2) . dZ2] W2^T
//	dW3 = Z2^T dZ3
//	dW2 = Z1^T [f'(Z1 W2 + b2) . dZ2]
//	dW1 = X^T [f'(X W1 + b1) . dZ1]
//	db3 = sum_l [dZ3]_{l,:}, db2 = sum_l [f'(Z1 W2 + b2) . dZ2]_{l,:}, ...
//
// with dZ3 divided by the batch size because the loss is the batch mean, and
// the bracket f'(...) . dZ named Delta. It panics on a label outside
// [0, classes) or if len(labels) is not the batch size.
func Backward(p *Params, a *Activations, labels []int) *Grads {
	// dZ3 = Yp - Y (over the batch size).
	_, dZ, loss, correct := SoftmaxMinusLabels(a.Z[p.Layers()], labels)
	g := BackwardFrom(p, a, dZ)
	g.Loss, g.Correct = loss, correct
	return g
}

// Step applies one step of gradient descent to p in place:
// W3 <- W3 - lr * dW3, b3 <- b3 - lr * db3, and so for every layer.
func Step(p *Params, g *Grads, lr float64) {
	for l := 1; l <= p.Layers(); l++ {
		SGD(p.W[l], g.DW[l], lr)
		SGDVec(p.B[l], g.DB[l], lr)
	}
}

// Loss returns the batch-mean cross-entropy of the network on x:
// (1/batch) sum_r -log Yp[r, labels[r]]. This is the loss whose gradient
// Backward computes. It panics on a label outside [0, classes).
func Loss(p *Params, x *mat.Dense, labels []int) float64 {
	return meanLoss(SoftmaxMinusLabels, p, x, labels)
}

// meanLoss is the batch mean of the per-row losses of softmaxLoss on the
// network's logits for x.
func meanLoss(softmaxLoss func(*mat.Dense, []int) (yp, dZ *mat.Dense, loss []float64, correct []bool),
	p *Params, x *mat.Dense, labels []int) float64 {
	a := Forward(p, x)
	_, _, loss, _ := softmaxLoss(a.Z[len(a.Z)-1], labels)
	var sum float64
	for _, v := range loss {
		sum += v
	}
	return sum / float64(len(loss))
}
