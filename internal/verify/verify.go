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

// Step runs Forward and BackwardStep with the optimiser settings h on the
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
	s := &stepCheck{ctx: ctx, net: net, plan: net.Plan(), rows: rows, sizes: net.Sizes()}
	if err := s.reference(); err != nil {
		return nil, err
	}
	if err := s.forward(); err != nil {
		return nil, err
	}
	if err := s.backwardStep(h); err != nil {
		return nil, err
	}
	return s.checks, nil
}

// stepCheck is one Step in progress: the device's network and its plan, the
// reference, and the checks so far. The tensors it compares are the
// outputs of the plan's launches, in the order they run.
type stepCheck struct {
	ctx   context.Context
	net   *nn.Network
	plan  *nn.Plan
	rows  int
	sizes []int

	ref       *cpuref.Params
	labels    []int
	act       *cpuref.Activations // the reference's forward pass
	deviceAct *cpuref.Activations // the device's, where the backward reference starts
	checks    []Check
}

func (s *stepCheck) add(name string, got []float32, want *mat.Dense, tol float64) {
	s.checks = append(s.checks, Check{Tensor: name, Err: cpuref.RelErr(got, want), Tol: tol, Ref: mat.Norm(want, 2)})
}

// read reads the plan's tensor name at the step's rows.
func (s *stepCheck) read(name string) ([]float32, error) {
	t, ok := s.plan.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("verify: the plan has no tensor %s", name)
	}
	got, err := s.net.Read(s.net.Tensor(name), t.Elems(s.rows))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return got, nil
}

// reference builds the float64 network from the device's parameters and
// runs its forward pass on the device's batch.
func (s *stepCheck) reference() error {
	w, b, err := s.net.Params()
	if err != nil {
		return err
	}
	if s.ref, err = cpuref.FromFloat32(s.sizes, w, b); err != nil {
		return err
	}
	x, err := s.read("X")
	if err != nil {
		return err
	}
	labels32, err := s.net.Labels(s.rows)
	if err != nil {
		return err
	}
	s.labels = make([]int, s.rows)
	for i, y := range labels32 {
		s.labels[i] = int(y)
	}
	if err := await(s.ctx, func() { s.act = cpuref.Forward(s.ref, cpuref.Dense32(s.rows, s.sizes[0], x)) }); err != nil {
		return err
	}
	s.deviceAct = &cpuref.Activations{Z: make([]*mat.Dense, len(s.sizes))}
	s.deviceAct.Z[0] = s.act.Z[0]
	return nil
}

// forward runs the device's forward pass and checks what each of its
// launches wrote: Z[l] (the logits last) and Yp, then the batch's loss and
// correct count.
func (s *stepCheck) forward() error {
	L := len(s.sizes) - 1
	if err := s.net.Forward(s.rows); err != nil {
		return err
	}
	for _, l := range s.plan.Launches {
		if l.Pass != nn.PassForward {
			continue
		}
		if l.Kernel != nn.KernelGemm {
			got, err := s.read("Yp")
			if err != nil {
				return err
			}
			s.add("Yp", got, s.act.Yp, cpuref.TolForward)
			continue
		}
		got, err := s.read(l.C)
		if err != nil {
			return err
		}
		name := l.C
		if l.Layer == L {
			name += " (logits)"
		}
		s.add(name, got, s.act.Z[l.Layer], cpuref.TolForward)
		s.deviceAct.Z[l.Layer] = cpuref.Dense32(s.rows, s.sizes[l.Layer], got)
	}
	return s.batchLoss()
}

// batchLoss checks the summed loss and the correct count against the
// reference's on the device's logits, so that two logits within rounding of
// a tie cannot flip an arg-max and fail an exact count.
func (s *stepCheck) batchLoss() error {
	loss, correct, err := s.net.BatchLoss(s.rows)
	if err != nil {
		return err
	}
	softmaxLoss := cpuref.SoftmaxMinusLabels
	if s.net.Loss == nn.MSE {
		softmaxLoss = cpuref.SoftmaxMSE
	}
	_, _, wantLoss, wantCorrect := softmaxLoss(s.deviceAct.Z[len(s.sizes)-1], s.labels)
	var sumLoss float64
	hits := 0
	for i, l := range wantLoss {
		sumLoss += l
		if wantCorrect[i] {
			hits++
		}
	}
	s.checks = append(s.checks,
		Check{Tensor: "loss (batch sum)", Err: math.Abs(loss-sumLoss) / max(math.Abs(sumLoss), math.SmallestNonzeroFloat64), Tol: cpuref.TolForward, Ref: sumLoss},
		Check{Tensor: "correct (count)", Err: math.Abs(float64(correct - hits)), Tol: 0, Ref: float64(hits)})
	return nil
}

// backwardStep runs the reference's backward pass and step, then the
// device's as training runs it (keeping the gradients it fuses away), and
// checks per fused update launch, from the last layer, the delta it reads,
// the dW and db it makes, and then the parameters and velocities it steps.
func (s *stepCheck) backwardStep(h kernels.Hyper) error {
	backward := cpuref.Backward
	if s.net.Loss == nn.MSE {
		backward = cpuref.BackwardMSE
	}
	var grads *cpuref.Grads
	if err := await(s.ctx, func() { grads = backward(s.ref, s.deviceAct, s.labels) }); err != nil {
		return err
	}
	vel, err := s.velocity(h)
	if err != nil {
		return err
	}
	if err := await(s.ctx, func() {
		cpuref.StepMomentum(s.ref, grads, vel, float64(h.LR), float64(h.Momentum), float64(h.WeightDecay), h.Nesterov)
	}); err != nil {
		return err
	}
	keep := s.net.KeepGradients
	s.net.KeepGradients = true
	err = s.net.BackwardStep(s.rows, h)
	s.net.KeepGradients = keep
	if err != nil {
		return err
	}
	updates := s.updates()
	for _, l := range updates {
		if err := s.gradients(l, grads); err != nil {
			return err
		}
	}
	return s.stepped(updates, vel, h)
}

// updates are the plan's fused update launches, the last layer's first.
func (s *stepCheck) updates() []nn.Launch {
	var out []nn.Launch
	for _, l := range s.plan.Launches {
		if l.Epi == kernels.EpiUpdate {
			out = append(out, l)
		}
	}
	return out
}

// velocity is the reference's copy of the device's velocities.
func (s *stepCheck) velocity(h kernels.Hyper) (*cpuref.Velocity, error) {
	vel := cpuref.NewVelocity(s.ref)
	if h.Momentum == 0 {
		return vel, nil
	}
	vw, vb, err := s.net.Velocity()
	if err != nil {
		return nil, err
	}
	if vw == nil {
		return nil, fmt.Errorf("momentum %v on a network without velocities", h.Momentum)
	}
	for l := 1; l < len(s.sizes); l++ {
		vel.W[l] = cpuref.Dense32(s.sizes[l-1], s.sizes[l], vw[l])
		vel.B[l] = cpuref.Dense32(1, s.sizes[l], vb[l]).RawRowView(0)
	}
	return vel, nil
}

// gradients checks the delta an update launch read (its B) and the dW (C)
// and db (ColSum) it made.
func (s *stepCheck) gradients(l nn.Launch, grads *cpuref.Grads) error {
	k := l.Layer
	got, err := s.read(l.B)
	if err != nil {
		return err
	}
	name := l.B
	if k < len(s.sizes)-1 {
		name = fmt.Sprintf("f'(Z%d).dZ%d", k, k)
	}
	s.add(name, got, grads.Delta[k], cpuref.TolGradient)
	if got, err = s.read(l.C); err != nil {
		return err
	}
	s.add(l.C, got, grads.DW[k], cpuref.TolGradient)
	if got, err = s.read(l.ColSum); err != nil {
		return err
	}
	s.add(l.ColSum, got, mat.NewDense(1, s.sizes[k], grads.DB[k]), cpuref.TolGradient)
	return nil
}

// stepped checks the parameters the update launches wrote, then the
// velocities.
func (s *stepCheck) stepped(updates []nn.Launch, vel *cpuref.Velocity, h kernels.Hyper) error {
	w, b, err := s.net.Params()
	if err != nil {
		return err
	}
	for _, l := range updates {
		k := l.Layer
		s.add(fmt.Sprintf("W%d updated", k), w[k], s.ref.W[k], cpuref.TolGradient)
		s.add(fmt.Sprintf("b%d updated", k), b[k], mat.NewDense(1, s.sizes[k], s.ref.B[k]), cpuref.TolGradient)
	}
	if h.Momentum == 0 {
		return nil
	}
	vw, vb, err := s.net.Velocity()
	if err != nil {
		return err
	}
	for _, l := range updates {
		k := l.Layer
		s.add(fmt.Sprintf("vW%d updated", k), vw[k], vel.W[k], cpuref.TolGradient)
		s.add(fmt.Sprintf("vb%d updated", k), vb[k], mat.NewDense(1, s.sizes[k], vel.B[k]), cpuref.TolGradient)
	}
	return nil
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
	return distortedX(net, set, rows, a.Width, a.Height, "gather_affine", func(r int, img []uint8) []float64 {
		return cpuref.Affine(img, a.Width, a.Height, transformOf(a.Draw(r)))
	})
}

// GatherElastic compares the network's X, which GatherElastic built from
// the images of set in file order with the distortion e, with cpuref.Elastic
// of the same images under the same draws (kernels.Elastic.Noise and Draw).
func GatherElastic(net *nn.Network, set *mnist.Set, rows int, e kernels.Elastic) (Check, error) {
	return distortedX(net, set, rows, e.Width, e.Height, "gather_elastic", func(r int, img []uint8) []float64 {
		noise := e.Noise(r)
		nf := make([]float64, len(noise))
		for i, v := range noise {
			nf[i] = float64(v)
		}
		dx, dy := cpuref.ElasticField(nf, e.Width, e.Height, float64(e.Sigma), float64(e.Alpha))
		return cpuref.Elastic(img, e.Width, e.Height, transformOf(e.Draw(r)), dx, dy)
	})
}

// transformOf is a kernels draw as cpuref's float64 transform.
func transformOf(d kernels.AffineDraw) cpuref.AffineTransform {
	return cpuref.AffineTransform{Angle: float64(d.Angle), Scale: float64(d.Scale), DX: float64(d.DX), DY: float64(d.DY)}
}

// distortedX compares the network's X for the first rows images of set,
// distorted as width x height images by kernel, with want's float64 image
// of each.
func distortedX(net *nn.Network, set *mnist.Set, rows, width, height int, kernel string, want func(r int, img []uint8) []float64) (Check, error) {
	px := set.Pixels()
	if rows > set.Len() || width*height != px {
		return Check{}, fmt.Errorf("verify %s: %d rows of %d images of %d pixels, distortion %dx%d", kernel, rows, set.Len(), px, width, height)
	}
	x, err := net.Read(net.Z[0], rows*px)
	if err != nil {
		return Check{}, fmt.Errorf("read X: %w", err)
	}
	all := make([]float64, 0, rows*px)
	for r := range rows {
		all = append(all, want(r, set.Images[r*px:(r+1)*px])...)
	}
	norm := 0.0
	for _, v := range all {
		norm += v * v
	}
	return Check{Tensor: "X (" + kernel + ")", Err: cpuref.RelErrVec(x, all), Tol: cpuref.TolForward, Ref: math.Sqrt(norm)}, nil
}
