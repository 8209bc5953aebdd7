package cpuref

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// The squared-error loss is checked as cross-entropy is: a row worked out on
// paper, then SoftmaxMSE's dZ and BackwardMSE's dW, db against central finite
// differences of the loss itself, with the helpers of cpuref_test.go.

func TestSoftmaxMSEByHand(t *testing.T) {
	ln2 := math.Log(2)
	tests := []struct {
		name     string
		logits   []float64
		labels   []int
		wantYp   []float64
		wantDZ   []float64
		wantLoss []float64
		correct  []bool
		tol      float64
	}{
		{
			// z = (0, ln 2, 0) gives yp = (1, 2, 1)/4.
			// Row 0, label 0: yp - y = (-3/4, 1/2, 1/4);
			//   loss = 1/2 (9 + 4 + 1)/16 = 7/16;
			//   s = (-3/4)(1/4) + (1/2)(1/2) + (1/4)(1/4) = (-3 + 4 + 1)/16 = 1/8;
			//   dL/dz = (1/4 (-3/4 - 1/8), 1/2 (1/2 - 1/8), 1/4 (1/4 - 1/8))
			//         = (-7/32, 3/16, 1/32), over batch 2: (-7/64, 3/32, 1/64).
			// Row 1, label 1: yp - y = (1/4, -1/2, 1/4);
			//   loss = 1/2 (1 + 4 + 1)/16 = 3/16;
			//   s = 1/16 - 1/4 + 1/16 = -1/8;
			//   dL/dz = (1/4 (1/4 + 1/8), 1/2 (-1/2 + 1/8), 1/4 (1/4 + 1/8))
			//         = (3/32, -3/16, 3/32), over batch 2: (3/64, -3/32, 3/64).
			name:     "quarters",
			logits:   []float64{0, ln2, 0, 0, ln2, 0},
			labels:   []int{0, 1},
			wantYp:   []float64{0.25, 0.5, 0.25, 0.25, 0.5, 0.25},
			wantDZ:   []float64{-7.0 / 64, 3.0 / 32, 1.0 / 64, 3.0 / 64, -3.0 / 32, 3.0 / 64},
			wantLoss: []float64{7.0 / 16, 3.0 / 16},
			correct:  []bool{false, true},
			tol:      1e-15,
		},
		{
			// The same rows shifted by 1000, where exp(1000) would overflow;
			// 1000 + ln 2 rounds to 1.1e-13, hence the looser tolerance.
			name:     "shifted",
			logits:   []float64{1000, 1000 + ln2, 1000, 1000, 1000 + ln2, 1000},
			labels:   []int{0, 1},
			wantYp:   []float64{0.25, 0.5, 0.25, 0.25, 0.5, 0.25},
			wantDZ:   []float64{-7.0 / 64, 3.0 / 32, 1.0 / 64, 3.0 / 64, -3.0 / 32, 3.0 / 64},
			wantLoss: []float64{7.0 / 16, 3.0 / 16},
			correct:  []bool{false, true},
			tol:      1e-12,
		},
		{
			// A confidently right row: a = exp(-40), D = 1 + 2a (which rounds
			// to 1), yp = (a, 1, a)/D, label 1, so yp - y = (a, -2a, a)/D;
			//   loss = 1/2 (a^2 + 4a^2 + a^2)/D^2 = 3a^2/D^2;
			//   s = (a^2 - 2a + a^2)/D^2;
			//   dL/dz_0 = (a/D)(a/D - s) = a (aD + 2a - 2a^2)/D^3 = 3a^2/D^3,
			//   as dL/dz_2, and dL/dz_1 = (1/D)(-2a/D - s) = -6a^2/D^3;
			// D^-k is 1 to 1e-17. yp_1 - 1 computed as such is 0, which would
			// give a loss of a^2 and dL/dz = (a^2, -2a^2, a^2).
			name:     "confident",
			logits:   []float64{0, 40, 0},
			labels:   []int{1},
			wantYp:   []float64{math.Exp(-40), 1, math.Exp(-40)},
			wantDZ:   []float64{3 * math.Exp(-80), -6 * math.Exp(-80), 3 * math.Exp(-80)},
			wantLoss: []float64{3 * math.Exp(-80)},
			correct:  []bool{true},
			tol:      1e-14,
		},
		{
			// The lecture's answer: a confidently wrong row. yp = (0, 0, 1)
			// (exp(-1000) and exp(-2000) underflow), label 0: yp - y =
			// (-1, 0, 1), loss = 1/2 (1 + 1) = 1, s = 0 + 0 + 1 = 1, and
			// dL/dz = (0 (-1 - 1), 0 (0 - 1), 1 (1 - 1)) = 0: no gradient at all,
			// where cross-entropy's is (1, 0, -1).
			name:     "saturated",
			logits:   []float64{-1000, 0, 1000},
			labels:   []int{0},
			wantYp:   []float64{0, 0, 1},
			wantDZ:   []float64{0, 0, 0},
			wantLoss: []float64{1},
			correct:  []bool{false},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rows := len(tc.labels)
			lg := mat.NewDense(rows, 3, tc.logits)
			lg0 := mat.DenseCopyOf(lg)
			yp, dZ, loss, correct := SoftmaxMSE(lg, tc.labels)
			equalDense(t, "logits changed", lg, lg0)
			if e := relFrob(yp, mat.NewDense(rows, 3, tc.wantYp)); !(e <= tc.tol) {
				t.Errorf("yp = %v, want %v (relative error %.3g)", mat.Formatted(yp), tc.wantYp, e)
			}
			want := mat.NewDense(rows, 3, tc.wantDZ)
			if mat.Norm(want, 2) == 0 {
				equalDense(t, "dZ", dZ, want)
			} else if e := relFrob(dZ, want); !(e <= tc.tol) {
				t.Errorf("dZ = %v, want %v (relative error %.3g)", mat.Formatted(dZ), tc.wantDZ, e)
			}
			if e := relVec(loss, tc.wantLoss); !(e <= tc.tol) {
				t.Errorf("loss = %v, want %v (relative error %.3g)", loss, tc.wantLoss, e)
			}
			// The softmax and the arg-max are SoftmaxMinusLabels', bit for bit.
			ypCE, dZCE, _, correctCE := SoftmaxMinusLabels(lg, tc.labels)
			equalDense(t, "yp against SoftmaxMinusLabels", yp, ypCE)
			for r := range rows {
				if correct[r] != tc.correct[r] || correct[r] != correctCE[r] {
					t.Errorf("correct[%d] = %v, want %v", r, correct[r], tc.correct[r])
				}
			}
			if tc.name == "saturated" && mat.Norm(dZCE, 2) == 0 {
				t.Error("cross-entropy's gradient vanished too: the example shows nothing")
			}
		})
	}

	checkLabelPanics(t, "SoftmaxMSE: ", "LossMSE", "BackwardMSE", SoftmaxMSE, LossMSE, BackwardMSE)
}

// TestSoftmaxMSEFiniteDifference checks dZ against central differences of
// the batch mean of SoftmaxMSE's row losses (LossMSE's convention), logit by
// logit, so the softmax Jacobian and the 1/batch are both answered by
// calculus.
func TestSoftmaxMSEFiniteDifference(t *testing.T) {
	tests := []struct {
		rows, cols int
		scale      float64 // standard deviation of the logits
	}{
		{1, 3, 1},
		{4, 2, 2},
		{5, 10, 3},
		{7, 10, 0.5},
		{3, 10, 8}, // near saturation: small gradients
	}
	rng := rand.New(rand.NewPCG(10, 10))
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%dx%d/scale%g", tc.rows, tc.cols, tc.scale), func(t *testing.T) {
			z := make([]float64, tc.rows*tc.cols)
			for i := range z {
				z[i] = tc.scale * rng.NormFloat64()
			}
			lg := mat.NewDense(tc.rows, tc.cols, z)
			raw := lg.RawMatrix()
			labels := make([]int, tc.rows)
			for i := range labels {
				labels[i] = rng.IntN(tc.cols)
			}
			mean := func() (float64, float64) {
				_, _, loss, _ := SoftmaxMSE(lg, labels)
				var s float64
				for _, v := range loss {
					s += v
				}
				return s / float64(tc.rows), math.Inf(1) // no ReLU, no kink
			}
			_, dZ, _, _ := SoftmaxMSE(mat.DenseCopyOf(lg), labels)
			fd := mat.NewDense(tc.rows, tc.cols, nil)
			for i := range tc.rows {
				for j := range tc.cols {
					fd.Set(i, j, centralDiff(t, &raw.Data[i*raw.Stride+j], mean))
				}
			}
			if n := mat.Norm(fd, 2); n < 1e-9 {
				t.Fatalf("dZ by finite differences has norm %.3g: nothing to check", n)
			}
			e := relFrob(dZ, fd)
			if !(e < 1e-7) {
				t.Errorf("dZ: relative error %.3g against finite differences", e)
			}
			t.Logf("dZ: relative error %.2g against finite differences (norm %.3g)", e, mat.Norm(fd, 2))
			for r := range tc.rows {
				var s float64
				for c := range tc.cols {
					s += dZ.At(r, c)
				}
				// The entries are differences of quantities up to 1, over the
				// batch: their rounding, not their size, sets the scale.
				if math.Abs(s) > 1e-15/float64(tc.rows) {
					t.Errorf("row %d of dZ sums to %.3g, want 0 (softmax is shift-invariant)", r, s)
				}
			}
			// Teeth: the cross-entropy gradient and dZ without the 1/batch
			// must both fail the same comparison.
			_, dZCE, _, _ := SoftmaxMinusLabels(lg, labels)
			if e := relFrob(dZCE, fd); e < 1e-7 {
				t.Errorf("cross-entropy's dZ passed the check (relative error %.3g)", e)
			}
			if tc.rows > 1 {
				var wrong mat.Dense
				wrong.Scale(float64(tc.rows), dZ)
				if e := relFrob(&wrong, fd); e < 1e-7 {
					t.Errorf("dZ without the 1/batch passed the check (relative error %.3g)", e)
				}
			}
		})
	}
}

// TestBackwardFromIsBackward checks that BackwardFrom started from
// SoftmaxMinusLabels' dZ is Backward bit for bit, so that the recurrence
// BackwardMSE relies on is the one TestGradientFiniteDifference checks,
// dZ[l] included.
func TestBackwardFromIsBackward(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 11))
	p := randParams(rng, []int{7, 6, 5, 3})
	x := randDense(rng, 9, 7, -1, 1)
	labels := []int{0, 1, 2, 2, 1, 0, 0, 1, 2}
	a := Forward(p, x)
	want := Backward(p, a, labels)
	_, dZ, _, _ := SoftmaxMinusLabels(a.Z[3], labels)
	got := BackwardFrom(p, a, dZ)
	if got.DZ[3] != dZ || got.Delta[3] != dZ {
		t.Error("DZ[L] and Delta[L] are not the caller's dZL")
	}
	if got.DZ[0] != nil || got.Delta[0] != nil || got.DW[0] != nil || got.DB[0] != nil {
		t.Error("index 0 of the gradients is not nil")
	}
	if got.Loss != nil || got.Correct != nil {
		t.Error("BackwardFrom filled Loss or Correct")
	}
	for l := 1; l <= 3; l++ {
		equalDense(t, fmt.Sprintf("DW[%d]", l), got.DW[l], want.DW[l])
		equalDense(t, fmt.Sprintf("DZ[%d]", l), got.DZ[l], want.DZ[l])
		equalDense(t, fmt.Sprintf("Delta[%d]", l), got.Delta[l], want.Delta[l])
		for j := range want.DB[l] {
			if got.DB[l][j] != want.DB[l][j] {
				t.Fatalf("DB[%d] = %v, want %v", l, got.DB[l], want.DB[l])
			}
		}
	}
	mustPanic(t, "dZL shape", "BackwardFrom: dZL is 9x4 but the logits are 9x3", func() {
		BackwardFrom(p, a, mat.NewDense(9, 4, nil))
	})
}

// TestBackwardMSEFiniteDifference is TestGradientFiniteDifference for the
// squared-error loss: dW and db of BackwardMSE against central differences
// of LossMSE, on data drawn to keep every ReLU away from its kink.
func TestBackwardMSEFiniteDifference(t *testing.T) {
	tests := []netCase{
		{[]int{5, 4, 3}, 1},
		{[]int{5, 4, 3}, 7},
		{[]int{7, 6, 5, 3}, 7},
		{[]int{12, 1, 10}, 7},
		{[]int{784, 3, 10}, 2},
		{[]int{4, 10}, 3}, // no hidden layer
	}
	forKinkFree(t, tests, 100, func(t *testing.T, tc netCase, p *Params, x *mat.Dense, labels []int) {
		L := len(tc.sizes) - 1

		a := Forward(p, x)
		g := BackwardMSE(p, a, labels)
		checkGradsLoss(t, g, LossMSE(p, x, labels), 1e-15, "LossMSE")
		ce := Backward(p, a, labels)

		// forwardFrom supplies the ReLU margin; the loss is LossMSE's.
		loss := func() (float64, float64) {
			_, m, _ := forwardFrom(p, x, 0, labels)
			return LossMSE(p, x, labels), m
		}
		worst := 0.0
		for l := 1; l <= L; l++ {
			fdW, fdB := finiteDiffLayer(t, p, l, loss)
			worst = math.Max(worst, checkFiniteDiff(t, l, g, fdW, fdB))
			// Teeth: cross-entropy's gradient is not this loss's.
			if e := relFrob(ce.DW[l], fdW); e < fdTol {
				t.Errorf("cross-entropy's dW[%d] passed the check (relative error %.3g)", l, e)
			}
		}
		t.Logf("worst relative error against finite differences: %.2g", worst)
	})
}
