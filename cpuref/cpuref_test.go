package cpuref

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// Most tests here compare against values worked out by hand or against naive
// loops written independently of the code under test; the gradient test
// compares Backward against central finite differences of Loss, so the oracle
// answers to calculus rather than to itself.

func randDense(rng *rand.Rand, r, c int, lo, hi float64) *mat.Dense {
	d := make([]float64, r*c)
	for i := range d {
		d[i] = lo + (hi-lo)*rng.Float64()
	}
	return mat.NewDense(r, c, d)
}

// relFrob is ||got - want||_F / ||want||_F, computed apart from RelErr so the
// tests do not lean on the function they also test.
func relFrob(got, want *mat.Dense) float64 {
	var d mat.Dense
	d.Sub(got, want)
	return mat.Norm(&d, 2) / mat.Norm(want, 2)
}

func relVec(got, want []float64) float64 {
	return relFrob(mat.NewDense(1, len(got), got), mat.NewDense(1, len(want), want))
}

func mustPanic(t *testing.T, what, substr string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		if r == nil {
			t.Fatalf("%s: did not panic", what)
		}
		if msg := fmt.Sprint(r); !strings.Contains(msg, substr) {
			t.Fatalf("%s: panic %q does not mention %q", what, msg, substr)
		}
	}()
	f()
}

func equalDense(t *testing.T, what string, got, want *mat.Dense) {
	t.Helper()
	if !mat.Equal(got, want) {
		t.Fatalf("%s:\ngot  %v\nwant %v", what, mat.Formatted(got), mat.Formatted(want))
	}
}

func TestMatMul(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	forms := []struct {
		name   string
		ta, tb bool
	}{
		{"NN", false, false}, {"NT", false, true}, {"TN", true, false}, {"TT", true, true},
	}
	shapes := [][3]int{{1, 1, 1}, {3, 5, 2}, {7, 1, 4}, {1, 6, 9}, {4, 4, 13}} // m, n, k
	for _, f := range forms {
		for _, s := range shapes {
			m, n, k := s[0], s[1], s[2]
			t.Run(fmt.Sprintf("%s/%dx%dx%d", f.name, m, n, k), func(t *testing.T) {
				ar, ac, br, bc := Operands(m, n, k, f.ta, f.tb)
				a, b := randDense(rng, ar, ac, -1, 1), randDense(rng, br, bc, -1, 1)
				a0, b0 := mat.DenseCopyOf(a), mat.DenseCopyOf(b)
				at := func(i, p int) float64 { // op(a)[i, p]
					if f.ta {
						return a.At(p, i)
					}
					return a.At(i, p)
				}
				bt := func(p, j int) float64 {
					if f.tb {
						return b.At(j, p)
					}
					return b.At(p, j)
				}
				want := mat.NewDense(m, n, nil)
				for i := range m {
					for j := range n {
						var s float64
						for p := range k {
							s += at(i, p) * bt(p, j)
						}
						want.Set(i, j, s)
					}
				}
				got := MatMul(a, b, f.ta, f.tb)
				if r, c := got.Dims(); r != m || c != n {
					t.Fatalf("got %dx%d, want %dx%d", r, c, m, n)
				}
				if e := relFrob(got, want); e > 1e-14 {
					t.Fatalf("relative error %.3g against naive loops", e)
				}
				equalDense(t, "a changed", a, a0)
				equalDense(t, "b changed", b, b0)
			})
		}
	}
	mustPanic(t, "inner mismatch", "MatMul", func() {
		MatMul(mat.NewDense(2, 3, nil), mat.NewDense(2, 3, nil), false, false)
	})
}

func TestBiasForms(t *testing.T) {
	a := mat.NewDense(2, 3, []float64{1, -2, 3, -4, 5, -6})
	bias := []float64{0.5, 1, -3}
	a0 := mat.DenseCopyOf(a)
	equalDense(t, "AddBias", AddBias(a, bias), mat.NewDense(2, 3, []float64{1.5, -1, 0, -3.5, 6, -9}))
	equalDense(t, "BiasReLU", BiasReLU(a, bias), mat.NewDense(2, 3, []float64{1.5, 0, 0, 0, 6, 0}))
	equalDense(t, "input changed", a, a0)

	// fmax(NaN, 0) is 0 in OpenCL; the reference must agree on poisoned data.
	nan := mat.NewDense(1, 2, []float64{math.NaN(), -1})
	equalDense(t, "BiasReLU(NaN)", BiasReLU(nan, []float64{0, 3}), mat.NewDense(1, 2, []float64{0, 2}))

	mustPanic(t, "AddBias short bias", "AddBias", func() { AddBias(a, bias[:2]) })
	mustPanic(t, "BiasReLU short bias", "BiasReLU", func() { BiasReLU(a, bias[:2]) })
}

func TestReLUMask(t *testing.T) {
	delta := mat.NewDense(2, 3, []float64{1, 2, 3, 4, 5, 6})
	z := mat.NewDense(2, 3, []float64{0.1, 0, math.Copysign(0, -1), 2, -1, 1e-300})
	d0 := mat.DenseCopyOf(delta)
	// f'(0) = 0: the kink belongs to the flat side, as in the kernel.
	equalDense(t, "ReLUMask", ReLUMask(delta, z), mat.NewDense(2, 3, []float64{1, 0, 0, 4, 0, 6}))
	equalDense(t, "delta changed", delta, d0)
	mustPanic(t, "shape mismatch", "ReLUMask", func() { ReLUMask(delta, mat.NewDense(3, 2, nil)) })
}

func TestSoftmaxMinusLabels(t *testing.T) {
	e := math.Exp
	// softmax of (1, 2, 0), written out.
	s120 := []float64{e(1) / (e(0) + e(1) + e(2)), e(2) / (e(0) + e(1) + e(2)), e(0) / (e(0) + e(1) + e(2))}
	tests := []struct {
		name        string
		logits      []float64
		cols        int
		labels      []int
		wantYp      []float64 // nil: only the generic checks
		wantLoss    []float64
		wantCorrect []bool
	}{
		{
			name: "small", logits: []float64{1, 2, 0}, cols: 3, labels: []int{0},
			wantYp: s120, wantLoss: []float64{-math.Log(s120[0])}, wantCorrect: []bool{false},
		},
		{
			// Shifted by 1000: exp(1000) overflows, the max-subtracted form does not.
			name: "shifted", logits: []float64{1001, 1002, 1000, 1, 2, 0}, cols: 3, labels: []int{1, 2},
			wantYp:   append(append([]float64(nil), s120...), s120...),
			wantLoss: []float64{-math.Log(s120[1]), -math.Log(s120[2])}, wantCorrect: []bool{true, false},
		},
		{
			// Yp[label] underflows to 0, so -log Yp would be +Inf; logsumexp -
			// logit gives the true 2000.
			name: "underflow", logits: []float64{-1000, 0, 1000}, cols: 3, labels: []int{0},
			wantYp: []float64{0, 0, 1}, wantLoss: []float64{2000}, wantCorrect: []bool{false},
		},
		{
			// Ties: the first maximum is the arg-max, as the kernel's strict > scan.
			name: "ties", logits: []float64{3, 3, 1, 3, 3, 1, 2, 5, 5, 2, 5, 5}, cols: 3, labels: []int{0, 1, 1, 2},
			wantCorrect: []bool{true, false, true, false},
		},
		{
			name: "random", cols: 10, labels: []int{0, 9, 3, 3, 7, 1, 2},
		},
	}
	rng := rand.New(rand.NewPCG(2, 2))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rows := len(tc.labels)
			logits := tc.logits
			if logits == nil {
				logits = make([]float64, rows*tc.cols)
				for i := range logits {
					logits[i] = 6 * rng.NormFloat64()
				}
			}
			lg := mat.NewDense(rows, tc.cols, logits)
			lg0 := mat.DenseCopyOf(lg)
			yp, dZ, loss, correct := SoftmaxMinusLabels(lg, tc.labels)
			equalDense(t, "logits changed", lg, lg0)
			if tc.wantYp != nil {
				if e := relFrob(yp, mat.NewDense(rows, tc.cols, tc.wantYp)); e > 1e-14 {
					t.Errorf("yp = %v, want %v (relative error %.3g)", mat.Formatted(yp), tc.wantYp, e)
				}
			}
			if tc.wantLoss != nil {
				// The shifted rows lose digits to cancellation in
				// logsumexp - logit (1000 - 999.6 carries 1000's rounding).
				if e := relVec(loss, tc.wantLoss); e > 1e-12 {
					t.Errorf("loss = %v, want %v", loss, tc.wantLoss)
				}
			}
			if tc.wantCorrect != nil {
				for r := range rows {
					if correct[r] != tc.wantCorrect[r] {
						t.Errorf("correct[%d] = %v, want %v", r, correct[r], tc.wantCorrect[r])
					}
				}
			}
			for r := range rows {
				var sum float64
				arg := 0
				for c := range tc.cols {
					p := yp.At(r, c)
					if !(p >= 0 && p <= 1) {
						t.Fatalf("yp[%d,%d] = %v, not a probability", r, c, p)
					}
					sum += p
					if lg.At(r, c) > lg.At(r, arg) {
						arg = c
					}
					y := 0.0
					if c == tc.labels[r] {
						y = 1
					}
					if want := (p - y) / float64(rows); math.Abs(dZ.At(r, c)-want) > 1e-16 {
						t.Errorf("dZ[%d,%d] = %v, want (yp - y)/batch = %v", r, c, dZ.At(r, c), want)
					}
				}
				if math.Abs(sum-1) > 1e-14 {
					t.Errorf("row %d of yp sums to %v", r, sum)
				}
				if correct[r] != (arg == tc.labels[r]) {
					t.Errorf("correct[%d] = %v, arg-max %d, label %d", r, correct[r], arg, tc.labels[r])
				}
				// Where yp[label] is representable, loss is -log of it.
				if p := yp.At(r, tc.labels[r]); p > 1e-300 {
					if want := -math.Log(p); math.Abs(loss[r]-want) > 1e-12*math.Max(1, want) {
						t.Errorf("loss[%d] = %v, -log yp = %v", r, loss[r], want)
					}
				}
				if math.IsInf(loss[r], 0) || math.IsNaN(loss[r]) {
					t.Errorf("loss[%d] = %v", r, loss[r])
				}
			}
		})
	}

	checkLabelPanics(t, "", "Loss", "Backward", SoftmaxMinusLabels, Loss, Backward)
}

// checkLabelPanics checks that a loss's softmax, its Loss and its Backward
// (named lossName and backName) panic on labels out of range and on too few
// labels; tooFew prefixes the too-few message.
func checkLabelPanics(t *testing.T, tooFew, lossName, backName string,
	softmax func(*mat.Dense, []int) (yp, dZ *mat.Dense, loss []float64, correct []bool),
	loss func(*Params, *mat.Dense, []int) float64,
	backward func(*Params, *Activations, []int) *Grads) {
	t.Helper()
	lg := mat.NewDense(2, 3, nil)
	mustPanic(t, "label -1", "label -1 of row 1", func() { softmax(lg, []int{0, -1}) })
	mustPanic(t, "label = classes", "label 3 of row 0", func() { softmax(lg, []int{3, 0}) })
	mustPanic(t, "too few labels", tooFew+"1 labels for 2 rows", func() { softmax(lg, []int{0}) })
	x := mat.NewDense(1, 2, []float64{1, 2})
	p := &Params{Sizes: []int{2, 3}, W: []*mat.Dense{nil, mat.NewDense(2, 3, nil)}, B: [][]float64{nil, make([]float64, 3)}}
	mustPanic(t, lossName+" label out of range", "label 7", func() { loss(p, x, []int{7}) })
	mustPanic(t, backName+" label out of range", "label 3", func() { backward(p, Forward(p, x), []int{3}) })
}

func TestColSum(t *testing.T) {
	tests := []struct {
		name string
		d    *mat.Dense
		want []float64
	}{
		{"3x2", mat.NewDense(3, 2, []float64{1, 2, 3, 4, 5, -6}), []float64{9, 0}},
		{"1x3", mat.NewDense(1, 3, []float64{-1, 0, 7}), []float64{-1, 0, 7}},
		{"4x1", mat.NewDense(4, 1, []float64{0.5, 0.25, 0.125, 0.125}), []float64{1}},
	}
	for _, tc := range tests {
		got := ColSum(tc.d)
		if len(got) != len(tc.want) {
			t.Fatalf("%s: %d sums, want %d", tc.name, len(got), len(tc.want))
		}
		for j := range got {
			if got[j] != tc.want[j] {
				t.Errorf("%s: sum %d = %v, want %v", tc.name, j, got[j], tc.want[j])
			}
		}
	}
}

func TestSGD(t *testing.T) {
	w := mat.NewDense(2, 2, []float64{1, 2, 3, 4})
	SGD(w, mat.NewDense(2, 2, []float64{10, -10, 0, 1}), 0.5)
	equalDense(t, "SGD", w, mat.NewDense(2, 2, []float64{-4, 7, 3, 3.5}))
	b := []float64{1, -1, 0}
	SGDVec(b, []float64{2, 2, -4}, 0.25)
	if want := []float64{0.5, -1.5, 1}; b[0] != want[0] || b[1] != want[1] || b[2] != want[2] {
		t.Errorf("SGDVec: got %v, want %v", b, want)
	}
	mustPanic(t, "SGD shape", "SGD", func() { SGD(w, mat.NewDense(1, 4, nil), 1) })
	mustPanic(t, "SGDVec length", "SGDVec", func() { SGDVec(b, b[:2], 1) })
}

func TestRelErr(t *testing.T) {
	want := mat.NewDense(2, 3, []float64{1, 2, 3, 4, 5, 6})
	norm := math.Sqrt(91)
	tests := []struct {
		name string
		got  []float32
		want *mat.Dense
		rel  float64
	}{
		{"equal", []float32{1, 2, 3, 4, 5, 6}, want, 0},
		{"zero got", make([]float32, 6), want, 1},
		{"one off", []float32{1, 2, 3, 4, 5, 8}, want, 2 / norm},
		// Column-major order of the same values: RelErr must read row-major.
		{"column-major", []float32{1, 4, 2, 5, 3, 6}, want, math.Sqrt(0+2*2+1+1+2*2+0) / norm},
		{"zero want", []float32{3, 0, 4, 0, 0, 0}, mat.NewDense(2, 3, nil), 5},
	}
	for _, tc := range tests {
		r, c := tc.want.Dims()
		wantVec := make([]float64, 0, r*c)
		for i := range r {
			wantVec = append(wantVec, tc.want.RawRowView(i)...)
		}
		for name, e := range map[string]float64{"RelErr": RelErr(tc.got, tc.want), "RelErrVec": RelErrVec(tc.got, wantVec)} {
			if math.Abs(e-tc.rel) > 1e-15 {
				t.Errorf("%s %s = %v, want %v", name, tc.name, e, tc.rel)
			}
		}
	}
	// A NaN must fail a !(e <= tol) check rather than pass a e > tol one.
	if e := RelErr([]float32{float32(math.NaN()), 2, 3, 4, 5, 6}, want); !math.IsNaN(e) {
		t.Errorf("RelErr with NaN = %v, want NaN", e)
	}
	mustPanic(t, "RelErr length", "RelErr", func() { RelErr(make([]float32, 5), want) })
	mustPanic(t, "RelErrVec length", "RelErrVec", func() { RelErrVec(make([]float32, 5), make([]float64, 6)) })
}

func TestFromFloat32(t *testing.T) {
	sizes := []int{3, 2, 4}
	w := [][]float32{nil, {1, 2, 3, 4, 5, 6}, {0.5, -1, 2, 3, 4, 5, 6, 7}}
	b := [][]float32{nil, {0.25, -0.5}, {1, 2, 3, 4}}
	p, err := FromFloat32(sizes, w, b)
	if err != nil {
		t.Fatal(err)
	}
	if p.Layers() != 2 {
		t.Fatalf("Layers() = %d, want 2", p.Layers())
	}
	equalDense(t, "W[1]", p.W[1], mat.NewDense(3, 2, []float64{1, 2, 3, 4, 5, 6}))
	equalDense(t, "W[2]", p.W[2], mat.NewDense(2, 4, []float64{0.5, -1, 2, 3, 4, 5, 6, 7}))
	if p.W[0] != nil || p.B[0] != nil {
		t.Error("index 0 is not nil")
	}
	if p.B[1][0] != 0.25 || p.B[1][1] != -0.5 || p.B[2][3] != 4 {
		t.Errorf("B = %v", p.B)
	}
	sizes[0] = 99
	w[1][0] = 99
	if p.Sizes[0] != 3 || p.W[1].At(0, 0) != 1 {
		t.Error("Params shares memory with its arguments")
	}
	sizes[0] = 3

	bad := []struct {
		name  string
		sizes []int
		w, b  [][]float32
		msg   string
	}{
		{"one size", []int{3}, w[:1], b[:1], "sizes"},
		{"zero width", []int{3, 0, 4}, w, b, "sizes[1]"},
		{"missing layer", sizes, w[:2], b[:2], "for 2 layers"},
		{"short w", sizes, [][]float32{nil, w[1][:5], w[2]}, b, "w[1] has 5"},
		{"long b", sizes, w, [][]float32{nil, b[1], {1, 2, 3, 4, 5}}, "b[2] has 5"},
	}
	for _, tc := range bad {
		if _, err := FromFloat32(tc.sizes, tc.w, tc.b); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: error %v, want one mentioning %q", tc.name, err, tc.msg)
		}
	}
}

func TestClone(t *testing.T) {
	p := randParams(rand.New(rand.NewPCG(3, 3)), []int{4, 3, 2})
	q := p.Clone()
	q.Sizes[0] = 7
	q.W[1].Set(0, 0, 42)
	q.B[2][1] = 42
	if p.Sizes[0] != 4 || p.W[1].At(0, 0) == 42 || p.B[2][1] == 42 {
		t.Error("Clone shares memory with the original")
	}
	if q.W[0] != nil || q.B[0] != nil || len(q.W) != 3 {
		t.Error("Clone lost the index-0 convention")
	}
}

// TestForwardByHand runs a 2-2-2 network on one input worked out on paper.
func TestForwardByHand(t *testing.T) {
	p := &Params{
		Sizes: []int{2, 2, 2},
		W:     []*mat.Dense{nil, mat.NewDense(2, 2, []float64{1, -1, 2, 0.5}), mat.NewDense(2, 2, []float64{1, 0, -1, 1})},
		B:     [][]float64{nil, {0, -1}, {0, 0.5}},
	}
	x := mat.NewDense(1, 2, []float64{1, 1})
	a := Forward(p, x)
	if a.Z[0] != x {
		t.Error("Z[0] is not X")
	}
	// X W1 + b1 = (3, -1.5) -> Z1 = (3, 0); Z2 = Z1 W2 + b2 = (3, 0.5).
	equalDense(t, "Z1", a.Z[1], mat.NewDense(1, 2, []float64{3, 0}))
	equalDense(t, "Z2", a.Z[2], mat.NewDense(1, 2, []float64{3, 0.5}))
	e := 1 / (1 + math.Exp(-2.5))
	if d := relFrob(a.Yp, mat.NewDense(1, 2, []float64{e, 1 - e})); d > 1e-15 {
		t.Errorf("Yp = %v, want (%v, %v)", mat.Formatted(a.Yp), e, 1-e)
	}
	if got, want := Loss(p, x, []int{1}), -math.Log(1-e); math.Abs(got-want) > 1e-14 {
		t.Errorf("Loss = %v, want %v", got, want)
	}
	mustPanic(t, "wrong input width", "Forward", func() { Forward(p, mat.NewDense(1, 3, nil)) })
}

// randParams draws He-scaled normal weights and small normal biases, so that
// hidden units are neither all dead nor all saturated.
func randParams(rng *rand.Rand, sizes []int) *Params {
	L := len(sizes) - 1
	p := &Params{Sizes: sizes, W: make([]*mat.Dense, L+1), B: make([][]float64, L+1)}
	for l := 1; l <= L; l++ {
		std := math.Sqrt(2 / float64(sizes[l-1]))
		w := make([]float64, sizes[l-1]*sizes[l])
		for i := range w {
			w[i] = std * rng.NormFloat64()
		}
		p.W[l] = mat.NewDense(sizes[l-1], sizes[l], w)
		p.B[l] = make([]float64, sizes[l])
		for i := range p.B[l] {
			p.B[l][i] = 0.1 * rng.NormFloat64()
		}
	}
	return p
}

// forwardFrom runs layers from+1..L on z = Z[from], composing the kernel
// references itself rather than calling Forward, and returns the mean loss
// and the margin: the smallest |pre-activation| of a ReLU on the way, and
// whether every hidden layer has at least one unit alive.
func forwardFrom(p *Params, z *mat.Dense, from int, labels []int) (loss, margin float64, alive bool) {
	L := p.Layers()
	margin, alive = math.Inf(1), true
	for l := from + 1; l <= L; l++ {
		pre := AddBias(MatMul(z, p.W[l], false, false), p.B[l])
		if l == L {
			z = pre
			break
		}
		r, c := pre.Dims()
		z = mat.NewDense(r, c, nil)
		live := false
		for i := range r {
			for j := range c {
				v := pre.At(i, j)
				margin = math.Min(margin, math.Abs(v))
				if v > 0 {
					z.Set(i, j, v)
					live = true
				}
			}
		}
		alive = alive && live
	}
	_, _, rowLoss, _ := SoftmaxMinusLabels(z, labels)
	for _, v := range rowLoss {
		loss += v
	}
	return loss / float64(len(rowLoss)), margin, alive
}

const (
	fdStep = 1e-6
	// A ReLU whose input is within kinkGuard of 0 could cross its kink under
	// a step of fdStep, where the loss is not differentiable; data whose
	// margin is under pickMargin are redrawn.
	kinkGuard  = 1e-4
	pickMargin = 1e-3
	fdTol      = 1e-6
)

// centralDiff returns d loss / d v at v's current value, restoring v, and
// fails the test if either evaluation comes near a ReLU kink.
func centralDiff(t *testing.T, v *float64, loss func() (float64, float64)) float64 {
	t.Helper()
	v0 := *v
	*v = v0 + fdStep
	lp, mp := loss()
	*v = v0 - fdStep
	lm, mm := loss()
	*v = v0
	if mp < kinkGuard || mm < kinkGuard {
		t.Fatalf("a perturbed evaluation came within %.1g of a ReLU kink (margins %.3g, %.3g)", kinkGuard, mp, mm)
	}
	return (lp - lm) / (2 * fdStep)
}

func TestGradientFiniteDifference(t *testing.T) {
	tests := []netCase{
		{[]int{5, 4, 3}, 1},
		{[]int{5, 4, 3}, 7},
		{[]int{7, 6, 5, 3}, 1},
		{[]int{7, 6, 5, 3}, 7},
		{[]int{12, 1, 10}, 1},
		{[]int{12, 1, 10}, 7},
		{[]int{784, 3, 10}, 2},
		{[]int{4, 10}, 3}, // no hidden layer: softmax regression
	}
	forKinkFree(t, tests, 0, func(t *testing.T, tc netCase, p *Params, x *mat.Dense, labels []int) {
		L := len(tc.sizes) - 1

		a := Forward(p, x)
		g := Backward(p, a, labels)

		// Structure: the index-0 convention and the loss Backward reports.
		if g.DZ[0] != nil || g.Delta[0] != nil || g.DW[0] != nil || g.DB[0] != nil {
			t.Error("index 0 of the gradients is not nil")
		}
		want := Loss(p, x, labels)
		checkGradsLoss(t, g, want, 1e-14, "Loss")
		if l2, _, _ := forwardFrom(p, x, 0, labels); math.Abs(l2-want) > 1e-14*want {
			t.Errorf("Loss = %v, composed kernels give %v", want, l2)
		}

		worst := 0.0
		loss := func() (float64, float64) {
			_, m, _ := forwardFrom(p, x, 0, labels)
			return Loss(p, x, labels), m
		}
		for l := 1; l <= L; l++ {
			fdW, fdB := finiteDiffLayer(t, p, l, loss)
			worst = math.Max(worst, checkFiniteDiff(t, l, g, fdW, fdB))
		}

		// dZ[l] = dLoss/dZ[l], treating layer l's output as the input of
		// the rest of the network.
		for l := 1; l <= L; l++ {
			z := mat.DenseCopyOf(a.Z[l])
			r, c := z.Dims()
			raw := z.RawMatrix()
			fd := mat.NewDense(r, c, nil)
			lossFrom := func() (float64, float64) {
				v, m, _ := forwardFrom(p, z, l, labels)
				return v, m
			}
			for i := range r {
				for j := range c {
					fd.Set(i, j, centralDiff(t, &raw.Data[i*raw.Stride+j], lossFrom))
				}
			}
			if e := relFrob(g.DZ[l], fd); !(e < fdTol) {
				t.Errorf("dZ[%d]: relative error %.3g against finite differences", l, e)
			} else {
				worst = math.Max(worst, e)
			}
		}
		t.Logf("worst relative error against finite differences: %.2g", worst)
	})
}

// checkGradsLoss checks that g's Delta[L] is its DZ[L] and that the mean of
// g.Loss is want, the batch loss from the function called name, to a
// relative tol.
func checkGradsLoss(t *testing.T, g *Grads, want, tol float64, name string) {
	t.Helper()
	L := len(g.DZ) - 1
	if g.Delta[L] != g.DZ[L] {
		t.Error("Delta[L] is not DZ[L]")
	}
	var mean float64
	for _, v := range g.Loss {
		mean += v
	}
	if mean /= float64(len(g.Loss)); math.Abs(mean-want) > tol*want {
		t.Errorf("mean of Grads.Loss = %v, %s = %v", mean, name, want)
	}
}

// netCase is one case of a finite-difference test: a network's sizes and a
// batch.
type netCase struct {
	sizes []int
	batch int
}

// forKinkFree runs f as a subtest per case, on data that drawAwayFromKink
// draws from the PCG stream stream+i for case i.
func forKinkFree(t *testing.T, cases []netCase, stream uint64, f func(t *testing.T, tc netCase, p *Params, x *mat.Dense, labels []int)) {
	for i, tc := range cases {
		t.Run(fmt.Sprintf("%v/batch%d", tc.sizes, tc.batch), func(t *testing.T) {
			p, x, labels := drawAwayFromKink(t, tc.sizes, tc.batch, stream+uint64(i))
			f(t, tc, p, x, labels)
		})
	}
}

// drawAwayFromKink draws parameters, a batch and labels for sizes from the
// PCG stream (stream, seed) for seed 0, 1, ... until every ReLU is at least
// pickMargin away from its kink. An input of 784 takes pixels in [0, 1).
func drawAwayFromKink(t *testing.T, sizes []int, batch int, stream uint64) (p *Params, x *mat.Dense, labels []int) {
	t.Helper()
	L := len(sizes) - 1
	lo := -1.0
	if sizes[0] == 784 {
		lo = 0 // pixels in [0, 1)
	}
	for seed := uint64(0); ; seed++ {
		if seed == 1000 {
			t.Fatal("no data in 1000 draws keeps every ReLU away from its kink")
		}
		rng := rand.New(rand.NewPCG(stream, seed))
		p = randParams(rng, sizes)
		x = randDense(rng, batch, sizes[0], lo, 1)
		labels = make([]int, batch)
		for i := range labels {
			labels[i] = rng.IntN(sizes[L])
		}
		if _, m, alive := forwardFrom(p, x, 0, labels); m >= pickMargin && alive {
			return p, x, labels
		}
	}
}

// TestGradientCheckCanFail makes sure the finite-difference comparison has
// teeth: a gradient with the 1/batch left out must fail it.
func TestGradientCheckCanFail(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	p := randParams(rng, []int{5, 4, 3})
	x := randDense(rng, 4, 5, -1, 1)
	labels := []int{0, 1, 2, 0}
	g := Backward(p, Forward(p, x), labels)
	fd := mat.NewDense(4, 3, nil)
	for i := range 4 {
		for j := range 3 {
			fd.Set(i, j, centralDiff(t, &p.W[2].RawMatrix().Data[i*3+j], func() (float64, float64) {
				return Loss(p, x, labels), math.Inf(1)
			}))
		}
	}
	var wrong mat.Dense
	wrong.Scale(4, g.DW[2])
	if e := relFrob(&wrong, fd); e < fdTol {
		t.Fatalf("dW[2] without the 1/batch passed the check (relative error %.3g)", e)
	}
	if e := relFrob(g.DW[2], fd); !(e < fdTol) {
		t.Fatalf("dW[2]: relative error %.3g", e)
	}
}

// TestStepDecreasesLoss checks that a small step lowers the loss by about
// lr ||grad||^2, its first-order prediction, that it moves each parameter by
// -lr times its gradient, and that stepping a Clone leaves the original alone.
func TestStepDecreasesLoss(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	p := randParams(rng, []int{7, 6, 5, 3})
	x := randDense(rng, 16, 7, -1, 1)
	labels := make([]int, 16)
	for i := range labels {
		labels[i] = rng.IntN(3)
	}
	const lr = 1e-3
	before := Loss(p, x, labels)
	g := Backward(p, Forward(p, x), labels)
	var sq float64
	for l := 1; l <= p.Layers(); l++ {
		sq += math.Pow(mat.Norm(g.DW[l], 2), 2)
		for _, v := range g.DB[l] {
			sq += v * v
		}
	}
	q := p.Clone()
	Step(q, g, lr)
	after := Loss(q, x, labels)
	if !(after < before) {
		t.Fatalf("loss %v -> %v after a step of lr %v", before, after, lr)
	}
	if ratio := (before - after) / (lr * sq); ratio < 0.95 || ratio > 1.05 {
		t.Errorf("loss fell by %.4g, first order predicts lr ||grad||^2 = %.4g", before-after, lr*sq)
	}
	if Loss(p, x, labels) != before {
		t.Error("stepping the clone changed the original")
	}
	for l := 1; l <= p.Layers(); l++ {
		r, c := p.W[l].Dims()
		for i := range r {
			for j := range c {
				if want := p.W[l].At(i, j) - lr*g.DW[l].At(i, j); q.W[l].At(i, j) != want {
					t.Fatalf("W[%d][%d,%d] = %v after the step, want %v", l, i, j, q.W[l].At(i, j), want)
				}
			}
		}
		for j := range c {
			if want := p.B[l][j] - lr*g.DB[l][j]; q.B[l][j] != want {
				t.Fatalf("b[%d][%d] = %v after the step, want %v", l, j, q.B[l][j], want)
			}
		}
	}
}

// finiteDiffLayer is dW[l] and db[l] by central differences of loss.
func finiteDiffLayer(t *testing.T, p *Params, l int, loss func() (float64, float64)) (*mat.Dense, []float64) {
	fanIn, fanOut := p.W[l].Dims()
	fdW := mat.NewDense(fanIn, fanOut, nil)
	raw := p.W[l].RawMatrix()
	for i := range fanIn {
		for j := range fanOut {
			fdW.Set(i, j, centralDiff(t, &raw.Data[i*raw.Stride+j], loss))
		}
	}
	fdB := make([]float64, fanOut)
	for j := range fanOut {
		fdB[j] = centralDiff(t, &p.B[l][j], loss)
	}
	return fdW, fdB
}

// checkFiniteDiff holds g's dW[l] and db[l] to the finite differences and
// returns the worst relative error that passed.
func checkFiniteDiff(t *testing.T, l int, g *Grads, fdW *mat.Dense, fdB []float64) float64 {
	t.Helper()
	// Guard against a vacuous pass: the gradient being checked must not be
	// zero.
	if n := mat.Norm(fdW, 2); n < 1e-6 {
		t.Fatalf("dW[%d] by finite differences has norm %.3g: nothing to check", l, n)
	}
	worst := 0.0
	if e := relFrob(g.DW[l], fdW); !(e < fdTol) {
		t.Errorf("dW[%d]: relative error %.3g against finite differences", l, e)
	} else {
		worst = math.Max(worst, e)
	}
	if e := relVec(g.DB[l], fdB); !(e < fdTol) {
		t.Errorf("db[%d]: relative error %.3g against finite differences", l, e)
	} else {
		worst = math.Max(worst, e)
	}
	return worst
}
