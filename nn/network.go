package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/mnist-cl/mnist-cl/cl"
	"github.com/mnist-cl/mnist-cl/kernels"
)

// Network is the lecture's MLP with its parameters, activations and gradients
// in device buffers. Slices indexed by layer run 1..L with index 0 unused
// (Z[0] is the input X), so the code reads like the lecture: dW[3] = Z[2]^T dZ[3].
//
// The buffers are exported to be read (Read) or filled by tests; the Network
// owns them and Release frees them, so a caller never replaces or releases one.
type Network struct {
	rt       *Runtime
	sizes    []int
	maxBatch int

	W, B   []*cl.Buffer // W[l]: sizes[l-1] x sizes[l]; B[l]: sizes[l]
	DW, DB []*cl.Buffer
	// Z[l] is the output of layer l (Z[L] the logits) for up to maxBatch rows.
	Z []*cl.Buffer
	// DZ[l] is dLoss/dZ[l]; for hidden layers Backward masks it in place into
	// f'(Z[l]) . dZ[l], the delta that dW[l] and db[l] are made from.
	DZ []*cl.Buffer

	// VW and VB are the optimiser's velocities, nil until AllocVelocity.
	VW, VB []*cl.Buffer

	// Loss is what Forward differentiates; the zero value is CrossEntropy.
	Loss Loss
	// KeepGradients makes BackwardStep store dW and db, which its fused
	// update otherwise never writes, so that verify can read them.
	KeepGradients bool

	Yp, labels, rowLoss, rowCorrect *cl.Buffer
	sums                            *cl.Buffer // one slot of batch_stats, for BatchLoss
	all                             []*cl.Buffer

	plan *Plan        // the step, whose launches Forward and BackwardStep run
	bufs []*cl.Buffer // the buffer of each of the plan's tensors, nil until allocated
	// steps holds per layer the fused update's operands of the step in
	// flight: a FusedStep made per launch would escape to the heap.
	steps []kernels.FusedStep
}

// Layers is L, the number of weight layers.
func (n *Network) Layers() int { return len(n.sizes) - 1 }

// Sizes returns the layer widths, inputs first and classes last.
func (n *Network) Sizes() []int { return append([]int(nil), n.sizes...) }

// Sizes returns the widths of a network with the given hidden layers.
func Sizes(inputs int, hidden []int, classes int) []int {
	s := append([]int{inputs}, hidden...)
	return append(s, classes)
}

// InitParams draws He-initialised weights (normal, variance 2/fanIn, suited to
// ReLU) and zero biases from seed. It runs on the host with a fixed generator,
// so a seed gives the same network on every device. Index 0 is unused.
func InitParams(sizes []int, seed uint64) (w, b [][]float32) {
	L := len(sizes) - 1
	w, b = make([][]float32, L+1), make([][]float32, L+1)
	for l := 1; l <= L; l++ {
		rng := rand.New(rand.NewPCG(seed, uint64(l)))
		std := math.Sqrt(2 / float64(sizes[l-1]))
		w[l] = make([]float32, sizes[l-1]*sizes[l])
		for i := range w[l] {
			w[l][i] = float32(rng.NormFloat64() * std)
		}
		b[l] = make([]float32, sizes[l])
	}
	return w, b
}

// NewNetwork allocates a network of the given widths for batches of up to
// maxBatch rows and initialises it from seed. Its buffers are the tensors of
// the step's Plan, but for the velocities (AllocVelocity) and the GEMM
// scratch (the kernels').
func NewNetwork(rt *Runtime, sizes []int, maxBatch int, seed uint64) (*Network, error) {
	p, err := NewPlan(sizes, maxBatch, CrossEntropy)
	if err != nil {
		return nil, err
	}
	L := len(sizes) - 1
	n := &Network{rt: rt, sizes: append([]int(nil), sizes...), maxBatch: maxBatch, plan: p,
		bufs: make([]*cl.Buffer, len(p.Tensors)), steps: make([]kernels.FusedStep, L+1),
		W: make([]*cl.Buffer, L+1), B: make([]*cl.Buffer, L+1),
		DW: make([]*cl.Buffer, L+1), DB: make([]*cl.Buffer, L+1),
		Z: make([]*cl.Buffer, L+1), DZ: make([]*cl.Buffer, L+1)}
	for i, t := range p.Tensors {
		if t.Role == Velocity || t.Role == Scratch {
			continue
		}
		b, err := rt.floats(t.Name, t.Rows*t.Cols)
		if err != nil {
			n.Release()
			return nil, err
		}
		n.bufs[i] = b
		n.all = append(n.all, b)
		n.bind(t, b)
	}
	w, b := InitParams(sizes, seed)
	if err := n.SetParams(w, b); err != nil {
		n.Release()
		return nil, err
	}
	return n, nil
}

// bind gives the buffer of t its exported name.
func (n *Network) bind(t Tensor, b *cl.Buffer) {
	// X is Z[0], the input of the first layer.
	perLayer := map[Role][]*cl.Buffer{Input: n.Z, Weight: n.W, Bias: n.B, WeightGrad: n.DW, BiasGrad: n.DB, Activation: n.Z, Delta: n.DZ}
	if layers, ok := perLayer[t.Role]; ok {
		layers[t.Layer] = b
		return
	}
	named := map[string]**cl.Buffer{"Yp": &n.Yp, "labels": &n.labels, "row losses": &n.rowLoss, "row flags": &n.rowCorrect, "batch sums": &n.sums}
	if p, ok := named[t.Name]; ok {
		*p = b
	}
}

// buf is the buffer of the plan's tensor name ("" is none).
func (n *Network) buf(name string) *cl.Buffer {
	if name == "" {
		return nil
	}
	i, ok := n.plan.index[name]
	if !ok {
		panic(fmt.Sprintf("nn: the plan has no tensor %q", name))
	}
	return n.bufs[i]
}

// Tensor is the buffer of the plan's tensor name, nil for one not allocated
// (the velocities before AllocVelocity, the kernels' scratch). It panics
// on a name the plan lacks.
func (n *Network) Tensor(name string) *cl.Buffer { return n.buf(name) }

// Plan is the step this network runs, with its Loss.
func (n *Network) Plan() *Plan { return planOf(n.sizes, n.maxBatch, n.Loss) }

// Release frees every buffer of the network. The Runtime stays open.
func (n *Network) Release() {
	for _, b := range n.all {
		b.Release()
	}
	n.all = nil
}

// SetParams uploads weights and biases (index 0 unused, W[l] row-major
// sizes[l-1] x sizes[l]).
func (n *Network) SetParams(w, b [][]float32) error {
	return n.writeLayers(n.W, n.B, w, b, "")
}

// Params reads the weights and biases back (index 0 unused).
func (n *Network) Params() (w, b [][]float32, err error) {
	return n.readLayers(n.W, n.B, "")
}

// checkLayers reports whether w and b (index 0 unused) have the network's
// shapes.
func (n *Network) checkLayers(w, b [][]float32, what string) error {
	if len(w) != n.Layers()+1 || len(b) != n.Layers()+1 {
		return fmt.Errorf("set %sparams: %d and %d layers for a network of %d", what, len(w)-1, len(b)-1, n.Layers())
	}
	for l := 1; l <= n.Layers(); l++ {
		if len(w[l]) != n.sizes[l-1]*n.sizes[l] || len(b[l]) != n.sizes[l] {
			return fmt.Errorf("set %sparams: layer %d has %d weights and %d biases, want %d and %d",
				what, l, len(w[l]), len(b[l]), n.sizes[l-1]*n.sizes[l], n.sizes[l])
		}
	}
	return nil
}

// writeLayers uploads w and b into dw and db once their shapes are checked.
func (n *Network) writeLayers(dw, db []*cl.Buffer, w, b [][]float32, what string) error {
	q := n.rt.Queue
	if err := n.checkLayers(w, b, what); err != nil {
		return err
	}
	for l := 1; l <= n.Layers(); l++ {
		if err := q.WriteFloat32(dw[l], 0, w[l]); err != nil {
			return fmt.Errorf("upload %sW%d: %w", what, l, err)
		}
		if err := q.WriteFloat32(db[l], 0, b[l]); err != nil {
			return fmt.Errorf("upload %sb%d: %w", what, l, err)
		}
	}
	return nil
}

func (n *Network) readLayers(dw, db []*cl.Buffer, what string) (w, b [][]float32, err error) {
	L := n.Layers()
	w, b = make([][]float32, L+1), make([][]float32, L+1)
	for l := 1; l <= L; l++ {
		if w[l], err = n.read(dw[l], n.sizes[l-1]*n.sizes[l]); err != nil {
			return nil, nil, fmt.Errorf("read %sW%d: %w", what, l, err)
		}
		if b[l], err = n.read(db[l], n.sizes[l]); err != nil {
			return nil, nil, fmt.Errorf("read %sb%d: %w", what, l, err)
		}
	}
	return w, b, nil
}

func (n *Network) read(b *cl.Buffer, count int) ([]float32, error) {
	out := make([]float32, count)
	return out, n.rt.Queue.ReadFloat32(b, 0, out)
}

// Read copies the first count floats of one of the network's buffers to the
// host (a blocking read, so it also waits for queued work).
func (n *Network) Read(b *cl.Buffer, count int) ([]float32, error) { return n.read(b, count) }

// SetBatch uploads a batch from the host: rows x sizes[0] inputs and rows
// labels. Training gathers on the device instead; this is for tests, verify
// and prediction.
func (n *Network) SetBatch(x []float32, labels []int32) error {
	rows := len(labels)
	if rows == 0 || rows > n.maxBatch || len(x) != rows*n.sizes[0] {
		return fmt.Errorf("set batch: %d labels and %d inputs for a network of %d inputs and batch <= %d",
			rows, len(x), n.sizes[0], n.maxBatch)
	}
	for _, y := range labels {
		if y < 0 || int(y) >= n.sizes[n.Layers()] {
			return fmt.Errorf("set batch: label %d out of range [0,%d)", y, n.sizes[n.Layers()])
		}
	}
	if err := n.rt.Queue.WriteFloat32(n.Z[0], 0, x); err != nil {
		return fmt.Errorf("upload X: %w", err)
	}
	if err := n.rt.Queue.WriteInt32(n.labels, 0, labels); err != nil {
		return fmt.Errorf("upload labels: %w", err)
	}
	return nil
}

// GatherBatch builds the batch on the device from images order[first:first+rows]
// of d, where order is a device buffer of int32 indices into d.
func (n *Network) GatherBatch(d *DeviceSet, order *cl.Buffer, first, rows int) error {
	if rows <= 0 || rows > n.maxBatch {
		return fmt.Errorf("gather batch: %d rows for a network of batch <= %d", rows, n.maxBatch)
	}
	if d.pixels != n.sizes[0] {
		return fmt.Errorf("gather batch: images have %d pixels, the network %d inputs", d.pixels, n.sizes[0])
	}
	return n.rt.Kernels.Gather(d.images, d.digits, order, first, rows, d.pixels, n.Z[0], n.labels)
}

// Forward runs the plan's forward pass on the batch's first rows rows:
//
//	Z1 = f(X W1 + b1), Z2 = f(Z1 W2 + b2), Z3 = Z2 W3 + b3, Yp = softmax(Z3)
//
// and, since the labels are on the device already, dZ3 = (Yp - Y)/batch with
// each row's loss and correct flag (with Loss MSE, dZ3 is the squared error's
// gradient instead). Nothing is waited for.
func (n *Network) Forward(rows int) error {
	for _, l := range n.plan.Launches {
		if l.Pass != PassForward {
			continue
		}
		if l.Kernel == KernelGemm {
			if err := n.gemm(l, rows, kernels.Fused{Epi: l.Epi, Aux: n.buf(l.Aux), Sparse: l.Sparse}); err != nil {
				return fmt.Errorf("forward layer %d: %w", l.Layer, err)
			}
			continue
		}
		if err := n.softmax(l, rows); err != nil {
			return fmt.Errorf("forward: %w", err)
		}
	}
	return nil
}

// gemm launches l's product at rows rows with the extras f.
func (n *Network) gemm(l Launch, rows int, f kernels.Fused) error {
	m, nn, k := l.Dims(rows)
	return n.rt.Kernels.GemmFused(l.Form, m, nn, k, n.buf(l.A), n.buf(l.B), n.buf(l.C), f)
}

// softmax launches the loss of l, the one of n.Loss (the plan is built
// before the loss is set).
func (n *Network) softmax(l Launch, rows int) error {
	k := n.rt.Kernels
	loss := k.SoftmaxMinusLabels
	if n.Loss == MSE {
		loss = k.SoftmaxMSE
	}
	return loss(kernels.LossArgs{Logits: n.buf(l.Reads[0]), Labels: n.labels, Rows: rows, Cols: n.sizes[l.Layer], Batch: rows,
		Yp: n.Yp, DZ: n.buf(l.Writes[1]), RowLoss: n.rowLoss, RowCorrect: n.rowCorrect})
}

// Stats records the batch's summed loss and correct count in stats[2*slot:].
func (n *Network) Stats(rows int, stats *cl.Buffer, slot int) error {
	return n.rt.Kernels.BatchStats(n.rowLoss, n.rowCorrect, rows, stats, slot)
}

// BatchLoss returns the summed cross-entropy and the number of rows whose
// arg-max was the label, for the last Forward of rows rows. It reads them
// back, so it waits for the queue; the Trainer batches these reads instead.
func (n *Network) BatchLoss(rows int) (loss float64, correct int, err error) {
	if err := n.Stats(rows, n.sums, 0); err != nil {
		return 0, 0, err
	}
	s, err := n.read(n.sums, 2)
	if err != nil {
		return 0, 0, fmt.Errorf("read batch loss: %w", err)
	}
	return float64(s[0]), int(s[1]), nil
}

// Backward runs the lecture's backward pass from dZ[L] (left by Forward):
//
//	dZ3 = Yp - Y                      (Forward wrote it)
//	dW3 = Z2^T dZ3,  db3 = sum_l dZ3
//	dZ2 = dZ3 W3^T
//	dW2 = Z1^T [f'(Z1 W2 + b2) . dZ2], db2 = column sums of the same
//	dZ1 = [f'(Z1 W2 + b2) . dZ2] W2^T
//	dW1 = X^T [f'(X W1 + b1) . dZ1],   db1 = column sums of the same
//
// for any number of layers: the plan's backward launches with the
// gradients stored and no step. DZ[l] of a hidden layer holds the masked
// delta f'(.) . dZ: the GEMM that makes dZ applies the mask as it writes,
// and the GEMM that makes dW from it sums its columns into db in the same
// pass.
func (n *Network) Backward(rows int) error {
	return n.backward(rows, nil)
}

// Step applies one optimiser step to every layer, W and b in one launch
// each: W <- W - lr dW for the lecture's SGD (h.Momentum 0), PyTorch's SGD
// with momentum, Nesterov and weight decay otherwise (kernels.Hyper).
// Momentum needs AllocVelocity first.
func (n *Network) Step(h kernels.Hyper) error {
	k := n.rt.Kernels
	if h.Momentum != 0 && n.VW == nil {
		return fmt.Errorf("step: momentum %v needs velocities (AllocVelocity)", h.Momentum)
	}
	for l := 1; l <= n.Layers(); l++ {
		var vw, vb *cl.Buffer
		if n.VW != nil {
			vw, vb = n.VW[l], n.VB[l]
		}
		w := kernels.Param{Value: n.W[l], Grad: n.DW[l], Velocity: vw, N: n.sizes[l-1] * n.sizes[l]}
		b := kernels.Param{Value: n.B[l], Grad: n.DB[l], Velocity: vb, N: n.sizes[l]}
		if err := k.Update(w, b, h); err != nil {
			return fmt.Errorf("step layer %d: %w", l, err)
		}
	}
	return nil
}

// BackwardStep is Backward and Step in one pass down the layers, which is
// how training runs them: the plan's backward launches, per layer first the
// delta of the layer below (it reads the old W), then one GEMM that makes
// dW = Z^T delta and db and applies the optimiser step to W and b as they
// are finished (the register GEMM's EpiUpdate; the tiled one follows its
// product with col_sum and update). dW and db then never go through memory,
// unless KeepGradients.
func (n *Network) BackwardStep(rows int, h kernels.Hyper) error {
	if h.Momentum != 0 && n.VW == nil {
		return fmt.Errorf("step: momentum %v needs velocities (AllocVelocity)", h.Momentum)
	}
	return n.backward(rows, &h)
}

// backward runs the plan's backward launches; with h nil, the dW GEMMs
// store the gradients instead of stepping.
func (n *Network) backward(rows int, h *kernels.Hyper) error {
	for _, l := range n.plan.Launches {
		if l.Pass != PassBackward {
			continue
		}
		f := kernels.Fused{Epi: l.Epi, Aux: n.buf(l.Aux), ColSum: n.buf(l.ColSum), Sparse: l.Sparse}
		if l.Epi == kernels.EpiUpdate {
			if h == nil {
				f.Epi, f.Aux = kernels.EpiNone, nil
			} else {
				// The Network's own slot: a FusedStep made here would escape
				// to the heap at every step.
				st := &n.steps[l.Layer]
				*st = kernels.FusedStep{Hyper: *h, B: n.B[l.Layer], Keep: n.KeepGradients}
				if n.VW != nil {
					st.VW, st.VB = n.VW[l.Layer], n.VB[l.Layer]
				}
				f.Step = st
			}
		}
		if err := n.gemm(l, rows, f); err != nil {
			return fmt.Errorf("backward: %s: %w", l.Product, err)
		}
	}
	return nil
}

// AllocVelocity allocates the momentum velocities, the plan's Velocity
// tensors, zeroed, once.
func (n *Network) AllocVelocity() error {
	if n.VW != nil {
		return nil
	}
	L := n.Layers()
	vw, vb := make([]*cl.Buffer, L+1), make([]*cl.Buffer, L+1)
	var made []int
	for i, t := range n.plan.Tensors {
		if t.Role != Velocity {
			continue
		}
		b, err := n.rt.floats(t.Name, t.Rows*t.Cols)
		// Zeros are written from the host rather than filled: oclgrind
		// 21.10's --uninitialized check mistracks clEnqueueFillBuffer (each
		// pattern element's store resizes the whole buffer's shadow to 4
		// bytes), so filled velocities read as uninitialized in update and
		// every step would be reported (issue 12; reproducer in
		// testdata/oclgrind/fill_uninitialized.c). A write is
		// tracked correctly, and this runs once per network.
		if err == nil {
			n.bufs[i] = b
			made = append(made, i)
			err = n.rt.Queue.WriteFloat32(b, 0, make([]float32, t.Rows*t.Cols))
		}
		if err != nil {
			for _, j := range made {
				n.bufs[j].Release()
				n.bufs[j] = nil
			}
			return err
		}
		if strings.HasPrefix(t.Name, "velocity of b") {
			vb[t.Layer] = b
		} else {
			vw[t.Layer] = b
		}
	}
	n.VW, n.VB = vw, vb
	for _, j := range made {
		n.all = append(n.all, n.bufs[j])
	}
	return nil
}

// Velocity reads the momentum velocities back (index 0 unused), laid out as
// Params; it returns nil slices when there are none.
func (n *Network) Velocity() (w, b [][]float32, err error) {
	if n.VW == nil {
		return nil, nil, nil
	}
	return n.readLayers(n.VW, n.VB, "velocity of ")
}

// SetVelocity uploads velocities, allocating them if needed.
func (n *Network) SetVelocity(w, b [][]float32) error {
	if err := n.AllocVelocity(); err != nil {
		return err
	}
	return n.writeLayers(n.VW, n.VB, w, b, "velocity of ")
}

// Labels reads back the labels of the batch's first rows rows.
func (n *Network) Labels(rows int) ([]int32, error) {
	out := make([]int32, rows)
	if err := n.rt.Queue.ReadInt32(n.labels, 0, out); err != nil {
		return nil, fmt.Errorf("read labels: %w", err)
	}
	return out, nil
}
