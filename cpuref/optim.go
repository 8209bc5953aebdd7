package cpuref

import (
	"fmt"

	"gonum.org/v1/gonum/mat"
)

// This file is the reference of the update kernel with its optional terms:
// PyTorch's torch.optim.SGD with dampening 0, of which the lecture's
// W <- W - lr dW (SGD, SGDVec, Step) is the case mu = wd = 0.

// Momentum updates w and v in place by one step of PyTorch's SGD with
// momentum mu, weight decay wd and dampening 0:
//
//	g = dW + wd W                    (weight decay)
//	v = mu v + g                     (the velocity, when mu != 0)
//	W <- W - lr (g + mu v)           if nesterov
//	W <- W - lr v                    otherwise
//
// and W <- W - lr g when mu = 0, whatever nesterov says. v starts at zero
// (NewVelocity), so the first step's v is g, as PyTorch's buffer is. The
// decay term is skipped when wd = 0 and v is left untouched when mu = 0, as
// the kernel does, so that mu = wd = 0 is SGD bit for bit. This project
// decays weights only: the caller passes wd = 0 for a bias (StepMomentum does).
// It panics unless w, dw and v have the same shape.
func Momentum(w, dw, v *mat.Dense, lr, mu, wd float64, nesterov bool) {
	r, c := w.Dims()
	if dr, dc := dw.Dims(); dr != r || dc != c {
		panic(fmt.Sprintf("cpuref: Momentum: w is %dx%d but dw is %dx%d", r, c, dr, dc))
	}
	if vr, vc := v.Dims(); vr != r || vc != c {
		panic(fmt.Sprintf("cpuref: Momentum: w is %dx%d but v is %dx%d", r, c, vr, vc))
	}
	for i := range r {
		for j := range c {
			step, vel := momentumStep(w.At(i, j), dw.At(i, j), v.At(i, j), mu, wd, nesterov)
			w.Set(i, j, w.At(i, j)-lr*step)
			v.Set(i, j, vel)
		}
	}
}

// MomentumVec is Momentum for a bias: b <- b - lr step, with the same g, v
// and step as Momentum; the project's caller passes wd = 0.
// It panics unless b, db and v have the same length.
func MomentumVec(b, db, v []float64, lr, mu, wd float64, nesterov bool) {
	if len(db) != len(b) {
		panic(fmt.Sprintf("cpuref: MomentumVec: b has %d entries but db has %d", len(b), len(db)))
	}
	if len(v) != len(b) {
		panic(fmt.Sprintf("cpuref: MomentumVec: b has %d entries but v has %d", len(b), len(v)))
	}
	for i := range b {
		var step float64
		step, v[i] = momentumStep(b[i], db[i], v[i], mu, wd, nesterov)
		b[i] -= lr * step
	}
}

// momentumStep returns the step of one parameter p with gradient d and
// velocity v, and the new velocity (v itself when mu = 0). The operations
// are the update kernel's, in its order, so that the float32 device and this
// reference round the same expression.
func momentumStep(p, d, v, mu, wd float64, nesterov bool) (step, vel float64) {
	step, vel = d, v
	if wd != 0 {
		step += wd * p
	}
	if mu != 0 {
		vel = mu*v + step
		if nesterov {
			step += mu * vel
		} else {
			step = vel
		}
	}
	return step, vel
}

// Velocity is the momentum buffers of StepMomentum, one per parameter and
// shaped like it: v in v = mu v + g. Like Params, W and B have L+1 entries
// with index 0 nil.
type Velocity struct {
	W []*mat.Dense
	B [][]float64
}

// NewVelocity returns a zero Velocity shaped like p: v = 0 before the first
// step, so that step's v = mu 0 + g is g, as PyTorch starts its buffer.
func NewVelocity(p *Params) *Velocity {
	L := p.Layers()
	v := &Velocity{W: make([]*mat.Dense, L+1), B: make([][]float64, L+1)}
	for l := 1; l <= L; l++ {
		v.W[l] = mat.NewDense(p.Sizes[l-1], p.Sizes[l], nil)
		v.B[l] = make([]float64, p.Sizes[l])
	}
	return v
}

// StepMomentum applies one step of Momentum to p and v in place, for every
// layer:
//
//	g = dW3 + wd W3, v = mu v + g, W3 <- W3 - lr (nesterov ? g + mu v : v)
//	g = db3,         v = mu v + g, b3 <- b3 - lr (nesterov ? g + mu v : v)
//
// and so on: weight decay applies to the weights, never to the biases. With
// mu = wd = 0 it is Step. It panics unless v has as many layers as p, or on a
// shape mismatch within one.
func StepMomentum(p *Params, g *Grads, v *Velocity, lr, mu, wd float64, nesterov bool) {
	L := p.Layers()
	if len(v.W) != L+1 || len(v.B) != L+1 {
		panic(fmt.Sprintf("cpuref: StepMomentum: velocity has %d weights and %d biases for %d layers, want %d each (index 0 unused)", len(v.W), len(v.B), L, L+1))
	}
	for l := 1; l <= L; l++ {
		Momentum(p.W[l], g.DW[l], v.W[l], lr, mu, wd, nesterov)
		MomentumVec(p.B[l], g.DB[l], v.B[l], lr, mu, 0, nesterov)
	}
}
