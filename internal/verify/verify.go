// Package verify runs one training step on the device and the same step in
// cpuref, and reports each tensor's relative error against its tolerance.
// The verify command prints it; the tests of nn assert it.
package verify

import (
	"context"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/mnist-cl/mnist-cl/cpuref"
	"github.com/mnist-cl/mnist-cl/kernels"
	"github.com/mnist-cl/mnist-cl/mnist"
	"github.com/mnist-cl/mnist-cl/nn"
)

// Tolerances on ||device - reference||_F / ||reference||_F. float32 sums of
// up to 784 products keep about six digits; gradients pass through one more
// product and a mask, updates through one more subtraction.
const (
	TolForward  = 1e-5
	TolGradient = 1e-4
)

// Check is one tensor's comparison.
type Check struct {
	Tensor string
	Err    float64
	Tol    float64
	// Ref is the reference's Frobenius norm (for the hit count, the count).
	// Where a tensor's is 0, Err is the device's own norm and the check says
	// only that both are zero, as for a layer whose ReLUs are all off.
	Ref float64
}

// Pass reports whether the error is within the tolerance; NaN never passes.
func (c Check) Pass() bool { return c.Err <= c.Tol }

// Step runs Forward, Backward and Step with the optimiser settings h on the
// batch of rows rows already on the device (SetBatch or GatherBatch), and the
// same step in cpuref from the same float32 parameters, velocities and
// inputs, with the network's loss.
//
// The forward tensors are compared with cpuref's own forward pass. The
// backward reference then starts from the device's activations, not its own:
// a pre-activation within float32 rounding of zero (|a| ~ 1e-7) can land on
// either side of the ReLU, and one unit masked differently out of 65,536 moves
// a gradient by 1e-3 while saying nothing about the backward kernels. Each
// stage is thus held to the reference on identical inputs.
func Step(net *nn.Network, rows int, h kernels.Hyper) ([]Check, error) {
	return StepContext(context.Background(), net, rows, h)
}

// StepContext is Step that gives up when ctx is done. The reference's
// float64 products run on another goroutine, so a cancelled ctx ends the
// wait at once however large the shapes (train's self-check must stop
// within moments of a Ctrl-C); the device's calls stay on the caller's
// goroutine, which run pins to the thread that made the OpenCL context.
func StepContext(ctx context.Context, net *nn.Network, rows int, h kernels.Hyper) ([]Check, error) {
	sizes, L := net.Sizes(), net.Layers()
	w, b, err := net.Params()
	if err != nil {
		return nil, err
	}
	ref, err := cpuref.FromFloat32(sizes, w, b)
	if err != nil {
		return nil, err
	}
	x, err := net.Read(net.Z[0], rows*sizes[0])
	if err != nil {
		return nil, fmt.Errorf("read X: %w", err)
	}
	labels32, err := net.Labels(rows)
	if err != nil {
		return nil, err
	}
	labels := make([]int, rows)
	for i, y := range labels32 {
		labels[i] = int(y)
	}

	var act *cpuref.Activations
	if err := await(ctx, func() { act = cpuref.Forward(ref, cpuref.Dense32(rows, sizes[0], x)) }); err != nil {
		return nil, err
	}
	deviceAct := &cpuref.Activations{Z: make([]*mat.Dense, L+1)}
	deviceAct.Z[0] = act.Z[0]

	var checks []Check
	add := func(name string, got []float32, want *mat.Dense, tol float64) {
		checks = append(checks, Check{Tensor: name, Err: cpuref.RelErr(got, want), Tol: tol, Ref: mat.Norm(want, 2)})
	}

	if err := net.Forward(rows); err != nil {
		return nil, err
	}
	for l := 1; l <= L; l++ {
		got, err := net.Read(net.Z[l], rows*sizes[l])
		if err != nil {
			return nil, err
		}
		name := fmt.Sprintf("Z%d", l)
		if l == L {
			name += " (logits)"
		}
		add(name, got, act.Z[l], TolForward)
		deviceAct.Z[l] = cpuref.Dense32(rows, sizes[l], got)
	}
	got, err := net.Read(net.Yp, rows*sizes[L])
	if err != nil {
		return nil, err
	}
	add("Yp", got, act.Yp, TolForward)
	loss, correct, err := net.BatchLoss(rows)
	if err != nil {
		return nil, err
	}
	// On the device's logits, so that two logits within rounding of a tie
	// cannot flip an arg-max and fail an exact count.
	softmaxLoss, backward := cpuref.SoftmaxMinusLabels, cpuref.Backward
	if net.Loss == nn.MSE {
		softmaxLoss, backward = cpuref.SoftmaxMSE, cpuref.BackwardMSE
	}
	_, _, wantLoss, wantCorrect := softmaxLoss(deviceAct.Z[L], labels)
	var sumLoss float64
	hits := 0
	for i, l := range wantLoss {
		sumLoss += l
		if wantCorrect[i] {
			hits++
		}
	}
	checks = append(checks,
		Check{Tensor: "loss (batch sum)", Err: math.Abs(loss-sumLoss) / max(math.Abs(sumLoss), math.SmallestNonzeroFloat64), Tol: TolForward, Ref: sumLoss},
		Check{Tensor: "correct (count)", Err: math.Abs(float64(correct - hits)), Tol: 0, Ref: float64(hits)})

	var grads *cpuref.Grads
	if err := await(ctx, func() { grads = backward(ref, deviceAct, labels) }); err != nil {
		return nil, err
	}
	vel := cpuref.NewVelocity(ref)
	if h.Momentum != 0 {
		vw, vb, err := net.Velocity()
		if err != nil {
			return nil, err
		}
		if vw == nil {
			return nil, fmt.Errorf("momentum %v on a network without velocities", h.Momentum)
		}
		for l := 1; l <= L; l++ {
			vel.W[l] = cpuref.Dense32(sizes[l-1], sizes[l], vw[l])
			vel.B[l] = cpuref.Dense32(1, sizes[l], vb[l]).RawRowView(0)
		}
	}
	if err := await(ctx, func() {
		cpuref.StepMomentum(ref, grads, vel, float64(h.LR), float64(h.Momentum), float64(h.WeightDecay), h.Nesterov)
	}); err != nil {
		return nil, err
	}
	// The step as training runs it, keeping the gradients it fuses away.
	keep := net.KeepGradients
	net.KeepGradients = true
	err = net.BackwardStep(rows, h)
	net.KeepGradients = keep
	if err != nil {
		return nil, err
	}
	for l := L; l >= 1; l-- {
		got, err := net.Read(net.DZ[l], rows*sizes[l])
		if err != nil {
			return nil, err
		}
		name := fmt.Sprintf("dZ%d", l)
		if l < L {
			name = fmt.Sprintf("f'(Z%d).dZ%d", l, l)
		}
		add(name, got, grads.Delta[l], TolGradient)
		if got, err = net.Read(net.DW[l], sizes[l-1]*sizes[l]); err != nil {
			return nil, err
		}
		add(fmt.Sprintf("dW%d", l), got, grads.DW[l], TolGradient)
		if got, err = net.Read(net.DB[l], sizes[l]); err != nil {
			return nil, err
		}
		add(fmt.Sprintf("db%d", l), got, mat.NewDense(1, sizes[l], grads.DB[l]), TolGradient)
	}

	w, b, err = net.Params()
	if err != nil {
		return nil, err
	}
	for l := L; l >= 1; l-- {
		add(fmt.Sprintf("W%d updated", l), w[l], ref.W[l], TolGradient)
		add(fmt.Sprintf("b%d updated", l), b[l], mat.NewDense(1, sizes[l], ref.B[l]), TolGradient)
	}
	if h.Momentum != 0 {
		vw, vb, err := net.Velocity()
		if err != nil {
			return nil, err
		}
		for l := L; l >= 1; l-- {
			add(fmt.Sprintf("vW%d updated", l), vw[l], vel.W[l], TolGradient)
			add(fmt.Sprintf("vb%d updated", l), vb[l], mat.NewDense(1, sizes[l], vel.B[l]), TolGradient)
		}
	}
	return checks, nil
}

// await runs f on its own goroutine and waits for it or for ctx, whichever
// ends first. f touches only the reference's own float64 values, so when ctx
// wins, f may finish unobserved while the caller returns.
func await(ctx context.Context, f func()) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("verify: %w", ctx.Err())
	}
}

// GatherAffine compares the network's X, which GatherAffine built from the
// images of set in file order with the distortion a, with cpuref.Affine of
// the same images under the same draws (kernels.Affine.Draw).
func GatherAffine(net *nn.Network, set *mnist.Set, rows int, a kernels.Affine) (Check, error) {
	px := set.Pixels()
	if rows > set.Len() || a.Width*a.Height != px {
		return Check{}, fmt.Errorf("verify gather_affine: %d rows of %d images of %d pixels, distortion %dx%d", rows, set.Len(), px, a.Width, a.Height)
	}
	x, err := net.Read(net.Z[0], rows*px)
	if err != nil {
		return Check{}, fmt.Errorf("read X: %w", err)
	}
	want := make([]float64, 0, rows*px)
	for r := range rows {
		d := a.Draw(r)
		t := cpuref.AffineTransform{Angle: float64(d.Angle), Scale: float64(d.Scale), DX: float64(d.DX), DY: float64(d.DY)}
		want = append(want, cpuref.Affine(set.Images[r*px:(r+1)*px], a.Width, a.Height, t)...)
	}
	norm := 0.0
	for _, v := range want {
		norm += v * v
	}
	return Check{Tensor: "X (gather_affine)", Err: cpuref.RelErrVec(x, want), Tol: TolForward, Ref: math.Sqrt(norm)}, nil
}
