package cpuref

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// The numbers of the worked examples are dyadic (lr = mu = 0.5, wd = 0.25),
// so every intermediate is exact in float64 and the results are compared
// bit for bit.

// TestMomentumByHand runs two steps from W = (1, -2), v = 0 with the
// gradients dW = (2, 4) then (-2, 1), lr = mu = 0.5, worked out on paper.
func TestMomentumByHand(t *testing.T) {
	tests := []struct {
		name     string
		wd       float64
		nesterov bool
		// after the first step and after the second
		wantW1, wantV1, wantW2, wantV2 []float64
	}{
		{
			// Step 1: g = (2, 4); v = 0.5 0 + g = (2, 4); W = (1, -2) - 0.5 (2, 4) = (0, -4).
			// Step 2: g = (-2, 1); v = 0.5 (2, 4) + (-2, 1) = (-1, 3);
			//         W = (0, -4) - 0.5 (-1, 3) = (0.5, -5.5).
			name:   "momentum",
			wantW1: []float64{0, -4}, wantV1: []float64{2, 4},
			wantW2: []float64{0.5, -5.5}, wantV2: []float64{-1, 3},
		},
		{
			// Step 1: g = (2, 4); v = (2, 4); step = g + 0.5 v = (3, 6);
			//         W = (1, -2) - 0.5 (3, 6) = (-0.5, -5).
			// Step 2: g = (-2, 1); v = 0.5 (2, 4) + (-2, 1) = (-1, 3);
			//         step = (-2, 1) + 0.5 (-1, 3) = (-2.5, 2.5);
			//         W = (-0.5, -5) - 0.5 (-2.5, 2.5) = (0.75, -6.25).
			name: "nesterov", nesterov: true,
			wantW1: []float64{-0.5, -5}, wantV1: []float64{2, 4},
			wantW2: []float64{0.75, -6.25}, wantV2: []float64{-1, 3},
		},
		{
			// Step 1: g = (2, 4) + 0.25 (1, -2) = (2.25, 3.5); v = (2.25, 3.5);
			//         W = (1, -2) - 0.5 (2.25, 3.5) = (-0.125, -3.75).
			// Step 2: g = (-2, 1) + 0.25 (-0.125, -3.75) = (-2.03125, 0.0625);
			//         v = 0.5 (2.25, 3.5) + g = (-0.90625, 1.8125);
			//         W = (-0.125, -3.75) - 0.5 (-0.90625, 1.8125) = (0.328125, -4.65625).
			name: "momentum+decay", wd: 0.25,
			wantW1: []float64{-0.125, -3.75}, wantV1: []float64{2.25, 3.5},
			wantW2: []float64{0.328125, -4.65625}, wantV2: []float64{-0.90625, 1.8125},
		},
		{
			// Step 1: g = (2.25, 3.5); v = (2.25, 3.5); step = g + 0.5 v = (3.375, 5.25);
			//         W = (1, -2) - 0.5 (3.375, 5.25) = (-0.6875, -4.625).
			// Step 2: g = (-2, 1) + 0.25 (-0.6875, -4.625) = (-2.171875, -0.15625);
			//         v = 0.5 (2.25, 3.5) + g = (-1.046875, 1.59375);
			//         step = g + 0.5 v = (-2.6953125, 0.640625);
			//         W = (-0.6875, -4.625) - 0.5 step = (0.66015625, -4.9453125).
			name: "nesterov+decay", wd: 0.25, nesterov: true,
			wantW1: []float64{-0.6875, -4.625}, wantV1: []float64{2.25, 3.5},
			wantW2: []float64{0.66015625, -4.9453125}, wantV2: []float64{-1.046875, 1.59375},
		},
	}
	const lr, mu = 0.5, 0.5
	grads := [][]float64{{2, 4}, {-2, 1}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantW := [][]float64{tc.wantW1, tc.wantW2}
			wantV := [][]float64{tc.wantV1, tc.wantV2}

			w, v := mat.NewDense(1, 2, []float64{1, -2}), mat.NewDense(1, 2, nil)
			b, vb := []float64{1, -2}, make([]float64, 2)
			for s, d := range grads {
				dw := mat.NewDense(1, 2, append([]float64(nil), d...))
				Momentum(w, dw, v, lr, mu, tc.wd, tc.nesterov)
				equalDense(t, fmt.Sprintf("W after step %d", s+1), w, mat.NewDense(1, 2, wantW[s]))
				equalDense(t, fmt.Sprintf("v after step %d", s+1), v, mat.NewDense(1, 2, wantV[s]))
				equalDense(t, "dW changed", dw, mat.NewDense(1, 2, d))

				MomentumVec(b, d, vb, lr, mu, tc.wd, tc.nesterov)
				for i := range b {
					if b[i] != wantW[s][i] || vb[i] != wantV[s][i] {
						t.Fatalf("MomentumVec step %d: b = %v, v = %v; want %v, %v", s+1, b, vb, wantW[s], wantV[s])
					}
				}
			}
		})
	}
}

// TestMomentumZeroIsSGD checks that mu = wd = 0 is SGD bit for bit, Nesterov
// flag or not, and that the velocity is then left alone.
func TestMomentumZeroIsSGD(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	const lr = 0.037
	for _, nesterov := range []bool{false, true} {
		w, dw := randDense(rng, 4, 3, -1, 1), randDense(rng, 4, 3, -1, 1)
		v := randDense(rng, 4, 3, -1, 1)
		want, v0 := mat.DenseCopyOf(w), mat.DenseCopyOf(v)
		SGD(want, dw, lr)
		Momentum(w, dw, v, lr, 0, 0, nesterov)
		equalDense(t, fmt.Sprintf("Momentum (nesterov %v)", nesterov), w, want)
		equalDense(t, "v changed with mu = 0", v, v0)

		b, db, vb := []float64{0.3, -1.7, 2}, []float64{1.1, 0.25, -3}, []float64{5, 6, 7}
		wantB := append([]float64(nil), b...)
		SGDVec(wantB, db, lr)
		MomentumVec(b, db, vb, lr, 0, 0, nesterov)
		for i := range b {
			if b[i] != wantB[i] {
				t.Fatalf("MomentumVec (nesterov %v): b = %v, SGDVec gives %v", nesterov, b, wantB)
			}
		}
		if vb[0] != 5 || vb[1] != 6 || vb[2] != 7 {
			t.Errorf("MomentumVec changed v with mu = 0: %v", vb)
		}
	}

	p := randParams(rng, []int{5, 4, 3})
	x := randDense(rng, 6, 5, -1, 1)
	g := Backward(p, Forward(p, x), []int{0, 1, 2, 2, 1, 0})
	q, r := p.Clone(), p.Clone()
	Step(q, g, lr)
	StepMomentum(r, g, NewVelocity(p), lr, 0, 0, true)
	for l := 1; l <= p.Layers(); l++ {
		equalDense(t, fmt.Sprintf("StepMomentum W[%d]", l), r.W[l], q.W[l])
		for j := range q.B[l] {
			if r.B[l][j] != q.B[l][j] {
				t.Fatalf("StepMomentum b[%d] = %v, Step gives %v", l, r.B[l], q.B[l])
			}
		}
	}
}

// TestWeightDecayIsSGD checks that with mu = 0 weight decay is SGD on
// dW + wd W, and that StepMomentum decays the weights but not the biases.
func TestWeightDecayIsSGD(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	const lr, wd = 0.05, 0.3
	w, dw := randDense(rng, 3, 5, -1, 1), randDense(rng, 3, 5, -1, 1)
	decayed := mat.NewDense(3, 5, nil)
	for i := range 3 {
		for j := range 5 {
			decayed.Set(i, j, dw.At(i, j)+wd*w.At(i, j))
		}
	}
	want := mat.DenseCopyOf(w)
	SGD(want, decayed, lr)
	Momentum(w, dw, mat.NewDense(3, 5, nil), lr, 0, wd, false)
	equalDense(t, "Momentum with decay", w, want)

	b, db := []float64{0.5, -2, 1.25}, []float64{-1, 0.125, 3}
	wantB := append([]float64(nil), b...)
	SGDVec(wantB, []float64{db[0] + wd*b[0], db[1] + wd*b[1], db[2] + wd*b[2]}, lr)
	MomentumVec(b, db, make([]float64, 3), lr, 0, wd, false)
	for i := range b {
		if b[i] != wantB[i] {
			t.Fatalf("MomentumVec with decay: b = %v, want %v", b, wantB)
		}
	}

	p := randParams(rng, []int{4, 3, 2})
	g := Backward(p, Forward(p, randDense(rng, 5, 4, -1, 1)), []int{0, 1, 1, 0, 1})
	q := p.Clone()
	StepMomentum(q, g, NewVelocity(p), lr, 0, wd, false)
	for l := 1; l <= p.Layers(); l++ {
		r, c := p.W[l].Dims()
		for i := range r {
			for j := range c {
				if want := p.W[l].At(i, j) - lr*(g.DW[l].At(i, j)+wd*p.W[l].At(i, j)); q.W[l].At(i, j) != want {
					t.Fatalf("W[%d][%d,%d] = %v, want %v", l, i, j, q.W[l].At(i, j), want)
				}
			}
		}
		// No decay on the biases.
		for j := range c {
			if want := p.B[l][j] - lr*g.DB[l][j]; q.B[l][j] != want {
				t.Fatalf("b[%d][%d] = %v, want %v (not decayed)", l, j, q.B[l][j], want)
			}
		}
	}
}

func TestNewVelocity(t *testing.T) {
	p := randParams(rand.New(rand.NewPCG(7, 7)), []int{4, 3, 2})
	v := NewVelocity(p)
	if len(v.W) != 3 || len(v.B) != 3 || v.W[0] != nil || v.B[0] != nil {
		t.Fatal("NewVelocity lost the index-0 convention")
	}
	for l := 1; l <= 2; l++ {
		equalDense(t, fmt.Sprintf("v.W[%d]", l), v.W[l], mat.NewDense(p.Sizes[l-1], p.Sizes[l], nil))
		if len(v.B[l]) != p.Sizes[l] {
			t.Fatalf("v.B[%d] has %d entries, want %d", l, len(v.B[l]), p.Sizes[l])
		}
		for _, x := range v.B[l] {
			if x != 0 {
				t.Fatalf("v.B[%d] = %v, want zeros", l, v.B[l])
			}
		}
	}
}

func TestMomentumShapes(t *testing.T) {
	w := mat.NewDense(2, 3, nil)
	mustPanic(t, "Momentum dw", "dw is 3x2", func() { Momentum(w, mat.NewDense(3, 2, nil), mat.NewDense(2, 3, nil), 1, 0.9, 0, false) })
	mustPanic(t, "Momentum v", "v is 2x2", func() { Momentum(w, mat.NewDense(2, 3, nil), mat.NewDense(2, 2, nil), 1, 0.9, 0, false) })
	b := make([]float64, 3)
	mustPanic(t, "MomentumVec db", "db has 2", func() { MomentumVec(b, b[:2], make([]float64, 3), 1, 0.9, 0, false) })
	mustPanic(t, "MomentumVec v", "v has 4", func() { MomentumVec(b, make([]float64, 3), make([]float64, 4), 1, 0.9, 0, false) })

	p := randParams(rand.New(rand.NewPCG(8, 8)), []int{4, 3, 2})
	g := Backward(p, Forward(p, mat.NewDense(1, 4, nil)), []int{1})
	short := NewVelocity(&Params{Sizes: []int{4, 3}})
	mustPanic(t, "StepMomentum layers", "for 2 layers", func() { StepMomentum(p, g, short, 1, 0.9, 0, false) })
	other := NewVelocity(&Params{Sizes: []int{4, 5, 2}})
	mustPanic(t, "StepMomentum shapes", "Momentum", func() { StepMomentum(p, g, other, 1, 0.9, 0, false) })
}

// TestMomentumConvergesFaster minimises f(w) = (1/2) sum_i a_i w_i^2 with
// curvatures 1 and 100 (condition number 100) at the same learning rate
// 0.01 = 1/max(a). SGD's slow direction shrinks by 1 - 0.01 per step; with
// mu = 0.9 both directions of the heavy ball shrink by about sqrt(0.9) =
// 0.95, so momentum should reach a millionth of f(w0) in several times
// fewer steps (458 against 103 as written, Nesterov 24). A sanity check of
// the direction of the effect, not of exact rates.
func TestMomentumConvergesFaster(t *testing.T) {
	a := []float64{1, 100}
	f := func(w *mat.Dense) float64 {
		return 0.5 * (a[0]*w.At(0, 0)*w.At(0, 0) + a[1]*w.At(0, 1)*w.At(0, 1))
	}
	const lr, tol, maxSteps = 0.01, 1e-6, 10000
	steps := func(mu float64, nesterov bool) int {
		w, v := mat.NewDense(1, 2, []float64{1, 1}), mat.NewDense(1, 2, nil)
		f0 := f(w)
		for k := range maxSteps {
			if f(w) <= tol*f0 {
				return k
			}
			dw := mat.NewDense(1, 2, []float64{a[0] * w.At(0, 0), a[1] * w.At(0, 1)})
			Momentum(w, dw, v, lr, mu, 0, nesterov)
		}
		return maxSteps
	}
	sgd, heavy, nag := steps(0, false), steps(0.9, false), steps(0.9, true)
	t.Logf("steps to f <= %g f(w0): SGD %d, momentum %d, Nesterov %d", tol, sgd, heavy, nag)
	if sgd == maxSteps {
		t.Fatalf("SGD did not converge in %d steps", maxSteps)
	}
	if 3*heavy > sgd || 3*nag > sgd {
		t.Errorf("momentum (%d steps) or Nesterov (%d) is not several times faster than SGD (%d)", heavy, nag, sgd)
	}
}

// TestVelocityDecaysWithoutGradient checks the memory of the velocity: with
// dW = 0 after one step, v keeps shrinking by mu and W keeps moving by
// -lr v, so the total displacement after many steps is lr g / (1 - mu).
func TestVelocityDecaysWithoutGradient(t *testing.T) {
	const lr, mu = 0.5, 0.75
	w, v := mat.NewDense(1, 1, []float64{0}), mat.NewDense(1, 1, nil)
	Momentum(w, mat.NewDense(1, 1, []float64{1}), v, lr, mu, 0, false)
	zero := mat.NewDense(1, 1, nil)
	for range 200 {
		Momentum(w, zero, v, lr, mu, 0, false)
	}
	if want := -lr / (1 - mu); math.Abs(w.At(0, 0)-want) > 1e-14 {
		t.Errorf("W = %v after the impulse, want lr / (1 - mu) = %v", w.At(0, 0), want)
	}
}
