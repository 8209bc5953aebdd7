package cpuref

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// This file holds one reference per device kernel, in the order a training
// step runs them. Each mirrors its kernel's corner cases too (NaN through
// ReLU, ties in the arg-max), so a difference between the two is a bug in one
// of them, never a matter of convention.

// MatMul returns op(a) op(b), where op(m) is m^T if the matching trans flag
// is set and m otherwise. The three forms a training step needs are
//
//	Z[l] before its bias:  Z[l-1] W[l]        MatMul(z, w, false, false)      X W1 in Z1 = f(X W1 + b1)
//	DZ[l-1]:               Delta[l] W[l]^T    MatMul(delta, w, false, true)   dZ2 = dZ3 W3^T
//	DW[l]:                 Z[l-1]^T Delta[l]  MatMul(z, delta, true, false)   dW3 = Z2^T dZ3
//
// It panics if the inner dimensions of op(a) and op(b) differ.
func MatMul(a, b *mat.Dense, transA, transB bool) *mat.Dense {
	var opA, opB mat.Matrix = a, b
	if transA {
		opA = a.T()
	}
	if transB {
		opB = b.T()
	}
	ar, ac := opA.Dims()
	br, bc := opB.Dims()
	if ac != br {
		panic(fmt.Sprintf("cpuref: MatMul: op(a) is %dx%d but op(b) is %dx%d", ar, ac, br, bc))
	}
	c := mat.NewDense(ar, bc, nil)
	c.Mul(opA, opB)
	return c
}

// Operands returns the shapes of a (ar x ac) and b (br x bc) that
// MatMul(a, b, transA, transB) takes to make an m x n product over k.
func Operands(m, n, k int, transA, transB bool) (ar, ac, br, bc int) {
	ar, ac = m, k
	if transA {
		ar, ac = k, m
	}
	br, bc = k, n
	if transB {
		br, bc = n, k
	}
	return ar, ac, br, bc
}

// AddBias returns a + b with b broadcast over the rows: the logits' form,
// Z3 = Z2 W3 + b3, with no activation on the last layer.
// It panics unless len(bias) is the number of columns of a.
func AddBias(a *mat.Dense, bias []float64) *mat.Dense {
	return mapBias("AddBias", a, bias, func(v float64) float64 { return v })
}

// BiasReLU returns f(a + b), f = ReLU, b broadcast over the rows: a hidden
// layer, Z1 = f(X W1 + b1), Z2 = f(Z1 W2 + b2). As OpenCL's fmax(v, 0) does,
// it maps NaN to 0, so the device and the reference agree on poisoned input.
// It panics unless len(bias) is the number of columns of a.
func BiasReLU(a *mat.Dense, bias []float64) *mat.Dense {
	return mapBias("BiasReLU", a, bias, relu)
}

func relu(v float64) float64 {
	if v > 0 {
		return v
	}
	return 0
}

func mapBias(name string, a *mat.Dense, bias []float64, f func(float64) float64) *mat.Dense {
	r, c := a.Dims()
	if len(bias) != c {
		panic(fmt.Sprintf("cpuref: %s: bias has %d entries for %d columns", name, len(bias), c))
	}
	z := mat.NewDense(r, c, nil)
	for i := range r {
		for j := range c {
			z.Set(i, j, f(a.At(i, j)+bias[j]))
		}
	}
	return z
}

// ReLUMask returns delta . f'(z) elementwise, the bracket of the lecture's
// dW2 = Z1^T [f'(Z1 W2 + b2) . dZ2]. The lecture's f' is taken at the
// pre-activation, but z here is the post-activation Z = f(pre): ReLU's
// output is positive exactly where its input is, so f'(pre) = [z > 0] and the
// pre-activation need not be kept. The kink at 0 gets derivative 0.
// It panics unless delta and z have the same shape.
func ReLUMask(delta, z *mat.Dense) *mat.Dense {
	r, c := delta.Dims()
	if zr, zc := z.Dims(); zr != r || zc != c {
		panic(fmt.Sprintf("cpuref: ReLUMask: delta is %dx%d but z is %dx%d", r, c, zr, zc))
	}
	m := mat.NewDense(r, c, nil)
	for i := range r {
		for j := range c {
			if z.At(i, j) > 0 {
				m.Set(i, j, delta.At(i, j))
			}
		}
	}
	return m
}

// SoftmaxMinusLabels takes the logits (batch x classes) and the batch's labels
// and returns, row by row:
//
//	yp      = softmax(logits), computed after subtracting the row's max so
//	          that exp never overflows;
//	dZ      = (yp - Y)/batch, Y the one-hot labels: the lecture's
//	          dZ3 = Yp - Y, divided by the batch because the loss is the mean;
//	loss[r] = -log yp[r, label[r]], computed as logsumexp(row) - logit[label]
//	          so that it stays finite where yp underflows to 0;
//	correct[r] = whether the row's arg-max is its label, the first maximum
//	          winning ties, as the kernel's strict > scan does.
//
// It panics unless len(labels) is the number of rows, and on a label outside
// [0, classes).
func SoftmaxMinusLabels(logits *mat.Dense, labels []int) (yp, dZ *mat.Dense, loss []float64, correct []bool) {
	_, cols := logits.Dims()
	return softmaxLoss("SoftmaxMinusLabels", logits, labels, func(yp, dZ *mat.Dense, r, label int, mx, sum, invBatch float64) float64 {
		for c := range cols {
			y := 0.0
			if c == label {
				y = 1
			}
			dZ.Set(r, c, (yp.At(r, c)-y)*invBatch)
		}
		return math.Log(sum) + mx - logits.At(r, label)
	})
}

// softmaxRow writes softmax(logits[r, :]) into yp[r, :] and returns the row's
// arg-max (first on ties), its max, and sum_c exp(logit_c - max), from which
// logsumexp = log(sum) + max.
func softmaxRow(logits *mat.Dense, r int, yp *mat.Dense) (arg int, mx, sum float64) {
	_, cols := logits.Dims()
	mx = logits.At(r, 0)
	for c := 1; c < cols; c++ {
		if v := logits.At(r, c); v > mx {
			mx, arg = v, c
		}
	}
	for c := range cols {
		e := math.Exp(logits.At(r, c) - mx)
		yp.Set(r, c, e)
		sum += e
	}
	for c := range cols {
		yp.Set(r, c, yp.At(r, c)/sum)
	}
	return arg, mx, sum
}

func checkLabels(name string, labels []int, classes int) {
	for r, l := range labels {
		if l < 0 || l >= classes {
			panic(fmt.Sprintf("cpuref: %s: label %d of row %d is outside [0, %d)", name, l, r, classes))
		}
	}
}

// ColSum returns the sum over rows of each column of d: the lecture's
// db3 = sum_l [dZ3]_{l,:}, and for the hidden layers the sums of the masked
// deltas, db2 = sum_l [f'(Z1 W2 + b2) . dZ2]_{l,:}.
func ColSum(d *mat.Dense) []float64 {
	r, c := d.Dims()
	s := make([]float64, c)
	for i := range r {
		for j := range c {
			s[j] += d.At(i, j)
		}
	}
	return s
}

// SGD updates w in place: W3 <- W3 - lr * dW3, as the lecture's gradient
// descent step. It panics unless w and dw have the same shape.
func SGD(w, dw *mat.Dense, lr float64) {
	r, c := w.Dims()
	if dr, dc := dw.Dims(); dr != r || dc != c {
		panic(fmt.Sprintf("cpuref: SGD: w is %dx%d but dw is %dx%d", r, c, dr, dc))
	}
	for i := range r {
		for j := range c {
			w.Set(i, j, w.At(i, j)-lr*dw.At(i, j))
		}
	}
}

// SGDVec updates b in place: b3 <- b3 - lr * db3.
// It panics unless b and db have the same length.
func SGDVec(b, db []float64, lr float64) {
	if len(b) != len(db) {
		panic(fmt.Sprintf("cpuref: SGDVec: b has %d entries but db has %d", len(b), len(db)))
	}
	for i := range b {
		b[i] -= lr * db[i]
	}
}

// Tolerances on RelErr, the project's one definition of them (verify,
// the self-check, the tuner and the kernel tests read these). float32 sums
// of up to 784 products keep about six digits; gradients pass through one
// more product and a mask, updates through one more subtraction.
const (
	TolForward  = 1e-5
	TolGradient = 1e-4
)

// softmaxLoss checks a softmax loss's labels against its logits, makes its
// outputs (Yp and dZ shaped like the logits, a loss and a flag per row) and
// fills them a row at a time: Yp's row (by softmaxRow) and the flag here,
// dZ's row and the loss by row, given the row's label, max and
// sum_c exp(logit_c - max), and 1/batch.
func softmaxLoss(name string, logits *mat.Dense, labels []int,
	row func(yp, dZ *mat.Dense, r, label int, mx, sum, invBatch float64) float64) (yp, dZ *mat.Dense, loss []float64, correct []bool) {
	rows, cols := logits.Dims()
	if len(labels) != rows {
		panic(fmt.Sprintf("cpuref: %s: %d labels for %d rows", name, len(labels), rows))
	}
	checkLabels(name, labels, cols)
	yp, dZ = mat.NewDense(rows, cols, nil), mat.NewDense(rows, cols, nil)
	loss, correct = make([]float64, rows), make([]bool, rows)
	invBatch := 1 / float64(rows)
	for r := range rows {
		arg, mx, sum := softmaxRow(logits, r, yp)
		loss[r] = row(yp, dZ, r, labels[r], mx, sum, invBatch)
		correct[r] = arg == labels[r]
	}
	return yp, dZ, loss, correct
}

// RelErr returns ||got - want||_F / ||want||_F, or ||got||_F where want is all
// zero, with got a device's float32 output in row-major order. It is the one
// measure of agreement in the project: 1e-5 for forward results and 1e-4 for
// gradients. A NaN or Inf in got gives a NaN or Inf, so compare with
// !(e <= tol) to fail on those. It panics unless len(got) matches want's size.
func RelErr(got []float32, want *mat.Dense) float64 {
	r, c := want.Dims()
	if len(got) != r*c {
		panic(fmt.Sprintf("cpuref: RelErr: got has %d entries for a %dx%d want", len(got), r, c))
	}
	var diff, norm float64
	for i := range r {
		for j := range c {
			w := want.At(i, j)
			d := float64(got[i*c+j]) - w
			diff += d * d
			norm += w * w
		}
	}
	return relErr(diff, norm)
}

// RelErrVec is RelErr for vectors (biases, per-row losses).
// It panics unless got and want have the same length.
func RelErrVec(got []float32, want []float64) float64 {
	if len(got) != len(want) {
		panic(fmt.Sprintf("cpuref: RelErrVec: got has %d entries but want has %d", len(got), len(want)))
	}
	var diff, norm float64
	for i, w := range want {
		d := float64(got[i]) - w
		diff += d * d
		norm += w * w
	}
	return relErr(diff, norm)
}

// relErr finishes RelErr from the squared norms. Where want is zero, diff is
// ||got||^2: the absolute size of got is then the only meaningful error.
func relErr(diff, norm float64) float64 {
	if norm == 0 {
		return math.Sqrt(diff)
	}
	return math.Sqrt(diff / norm)
}
