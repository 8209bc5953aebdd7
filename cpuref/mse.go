package cpuref

import (
	"fmt"

	"gonum.org/v1/gonum/mat"
)

// This file answers the lecture's open question, "what if we used L2 loss
// with softmax instead of cross-entropy?", with a second loss on the same
// network: half the squared distance between the softmax and the one-hot
// label. Its gradient is that distance carried back through the softmax's
// Jacobian, which cross-entropy's log cancels and this loss does not: a
// confidently wrong row (yp near a wrong one-hot) has loss near 1 but a
// gradient near 0, where cross-entropy's (Yp - Y)/batch stays large.

// SoftmaxMSE is SoftmaxMinusLabels for the squared-error loss. It takes the
// logits z (batch x classes) and the batch's labels and returns, row by row:
//
//	yp      = softmax(z), the same max-subtracted softmax as
//	          SoftmaxMinusLabels, bit for bit;
//	loss[r] = 1/2 sum_j (yp_j - y_j)^2, y the one-hot label;
//	dZ      = dLoss/dz / batch, through dyp_j/dz_i = yp_j (delta_ij - yp_i):
//	          dZ_i = yp_i [(yp_i - y_i) - s] / batch,
//	          s = sum_j (yp_j - y_j) yp_j,
//	          divided by the batch because the loss is the batch mean, as in
//	          SoftmaxMinusLabels;
//	correct[r] = whether the row's arg-max is its label, the first maximum
//	          winning ties, as in SoftmaxMinusLabels.
//
// The label's entry is computed in the equal form -2 yp_y loss[r] / batch and
// 1 - yp_y as sum_{j != y} yp_j, free of the cancellation yp_y - 1 suffers
// where the label holds nearly all the mass (the kernel computes 1 - yp_y
// apart for the same reason). Each row of dZ sums to 0, as any gradient
// through a softmax does. It panics unless len(labels) is the number of rows,
// and on a label outside [0, classes).
func SoftmaxMSE(logits *mat.Dense, labels []int) (yp, dZ *mat.Dense, loss []float64, correct []bool) {
	_, cols := logits.Dims()
	return softmaxLoss("SoftmaxMSE", logits, labels, func(yp, dZ *mat.Dense, r, label int, _, _, invBatch float64) float64 {
		// rest = 1 - yp_y and q2 = sum_{j != y} yp_j^2, sums of positive
		// terms: where the label holds nearly all the mass, yp_y - 1 would
		// cancel to a few digits (and to 0 once yp_y rounds to 1), while the
		// loss and gradient are then of the size of rest^2.
		var rest, q2 float64
		for c := range cols {
			if c != label {
				p := yp.At(r, c)
				rest += p
				q2 += p * p
			}
		}
		py := yp.At(r, label)
		// 1/2 sum_j (yp_j - y_j)^2 with yp_y - 1 = -rest.
		loss := 0.5 * (rest*rest + q2)
		// s = sum_j (yp_j - y_j) yp_j, the Jacobian's rank-one part.
		s := q2 - py*rest
		for c := range cols {
			if c != label {
				p := yp.At(r, c)
				dZ.Set(r, c, p*(p-s)*invBatch)
			}
		}
		// (yp_y - 1) - s = -rest - q2 + yp_y rest = -(rest^2 + q2): the
		// difference written as a sum, so dZ_y = -2 yp_y loss[r] / batch.
		dZ.Set(r, label, -py*(rest*rest+q2)*invBatch)
		return loss
	})
}

// BackwardFrom is Backward for any loss on the logits: it backpropagates a
// given dZL = dLoss/dZ[L] (batch x classes, already scaled as the loss is,
// e.g. by 1/batch for a mean) through the network with Backward's recurrence,
//
//	Delta[L] = DZ[L] = dZL
//	Delta[l] = f'(Z[l]) . DZ[l]    for l < L
//	DZ[l-1]  = Delta[l] W[l]^T     for l >= 2
//	DW[l]    = Z[l-1]^T Delta[l],  DB[l] = column sums of Delta[l]
//
// DZ[L] is dZL itself, not a copy; Loss and Correct are left nil for the
// caller, who knows the loss. It panics unless dZL has the shape of the
// logits a.Z[L].
func BackwardFrom(p *Params, a *Activations, dZL *mat.Dense) *Grads {
	L := p.Layers()
	zr, zc := a.Z[L].Dims()
	if r, c := dZL.Dims(); r != zr || c != zc {
		panic(fmt.Sprintf("cpuref: BackwardFrom: dZL is %dx%d but the logits are %dx%d", r, c, zr, zc))
	}
	g := &Grads{
		DZ:    make([]*mat.Dense, L+1),
		Delta: make([]*mat.Dense, L+1),
		DW:    make([]*mat.Dense, L+1),
		DB:    make([][]float64, L+1),
	}
	g.DZ[L] = dZL
	for l := L; l >= 1; l-- {
		if l == L {
			g.Delta[l] = g.DZ[l]
		} else {
			// f'(Z1 W2 + b2) . dZ2, read off the post-activation Z2.
			g.Delta[l] = ReLUMask(g.DZ[l], a.Z[l])
		}
		// dW3 = Z2^T dZ3; dW2 = Z1^T [f'(Z1 W2 + b2) . dZ2]; dW1 = X^T [...].
		g.DW[l] = MatMul(a.Z[l-1], g.Delta[l], true, false)
		// db3 = sum_l [dZ3]_{l,:}; db2 = sum_l [f'(Z1 W2 + b2) . dZ2]_{l,:}.
		g.DB[l] = ColSum(g.Delta[l])
		if l >= 2 {
			// dZ2 = dZ3 W3^T; dZ1 = [f'(Z1 W2 + b2) . dZ2] W2^T.
			g.DZ[l-1] = MatMul(g.Delta[l], p.W[l], false, true)
		}
	}
	return g
}

// BackwardMSE is Backward for the batch-mean squared error of LossMSE: the
// same recurrence (BackwardFrom) started from SoftmaxMSE's
//
//	dZ3_i = yp_i [(yp_i - y_i) - sum_j (yp_j - y_j) yp_j] / batch
//
// in place of dZ3 = (Yp - Y)/batch. Grads.Loss[r] is then row r's
// 1/2 sum_j (yp_j - y_j)^2, and Grads.Correct is as Backward's. It panics on
// a label outside [0, classes) or if len(labels) is not the batch size.
func BackwardMSE(p *Params, a *Activations, labels []int) *Grads {
	_, dZ, loss, correct := SoftmaxMSE(a.Z[p.Layers()], labels)
	g := BackwardFrom(p, a, dZ)
	g.Loss, g.Correct = loss, correct
	return g
}

// LossMSE returns the batch-mean squared error of the network's softmax on x,
// (1/batch) sum_r 1/2 sum_j (Yp[r, j] - Y[r, j])^2, Y the one-hot labels: the
// mean, as Loss is, and the loss whose gradient BackwardMSE computes. It
// panics on a label outside [0, classes).
func LossMSE(p *Params, x *mat.Dense, labels []int) float64 {
	return meanLoss(SoftmaxMSE, p, x, labels)
}
