package nn

import (
	"fmt"
	"math"

	"github.com/mnist-cl/mnist-cl/kernels"
)

// Role is what a tensor of a step is for.
type Role int

const (
	// Input is the batch X (rows x inputs), gathered or uploaded.
	Input Role = iota
	// Labels are the batch's digits, int32.
	Labels
	// Weight and Bias are a layer's parameters W[l] and b[l].
	Weight
	Bias
	// WeightGrad and BiasGrad are dW[l] and db[l]: scratch of the fused
	// step, written only when KeepGradients.
	WeightGrad
	BiasGrad
	// Activation is Z[l], the output of layer l (Z[L] the logits).
	Activation
	// Delta is dZ[l], masked in place for hidden layers.
	Delta
	// Output is Yp, the softmax probabilities.
	Output
	// RowStat are the per-row losses and correct flags and the batch sums
	// that BatchLoss reads.
	RowStat
	// Velocity is a momentum velocity of W[l] or b[l], allocated by
	// AllocVelocity and counted only for runs with momentum.
	Velocity
	// Scratch is what the register GEMM allocates for itself at its first
	// product of a kind: the B^T of an A B^T product whose B^T is too large
	// to pack into local memory, and the term lists of the sparse products;
	// counted for every network, to err on the safe side.
	Scratch
)

var roleNames = map[Role]string{Input: "input", Labels: "labels", Weight: "weight", Bias: "bias",
	WeightGrad: "weight gradient", BiasGrad: "bias gradient", Activation: "activation", Delta: "delta",
	Output: "output", RowStat: "row statistics", Velocity: "velocity", Scratch: "GEMM scratch"}

// String names the role for mnist-cl plan.
func (r Role) String() string {
	if name, ok := roleNames[r]; ok {
		return name
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// Tensor is one device buffer of a step: Rows x Cols float32 (int32 for
// Labels), row-major. Batched tensors have the batch as their rows and are
// allocated for the plan's batch; a step of fewer rows uses their top.
type Tensor struct {
	Name       string
	Rows, Cols int
	Batched    bool
	Role       Role
	Layer      int // 1..L for per-layer tensors, 0 otherwise
}

// Elems is the tensor's element count at rows rows (its own Rows unless
// Batched).
func (t Tensor) Elems(rows int) int {
	if t.Batched {
		return rows * t.Cols
	}
	return t.Rows * t.Cols
}

// Bytes is what Runtime.floats allocates for it: at least one element.
func (t Tensor) Bytes() uint64 { return 4 * uint64(max(t.Rows*t.Cols, 1)) }

// Kernel names the kernel a launch runs.
type Kernel string

const (
	// KernelGather builds X and the labels from the data set on the device.
	KernelGather Kernel = "gather"
	// KernelGemm is a product with its epilogue (kernels.Set.GemmFused).
	KernelGemm Kernel = "gemm"
	// KernelSoftmax is softmax_minus_labels, KernelSoftmaxMSE softmax_mse.
	KernelSoftmax    Kernel = "softmax_minus_labels"
	KernelSoftmaxMSE Kernel = "softmax_mse"
	// KernelStats sums the row losses and flags into a statistics slot.
	KernelStats Kernel = "batch_stats"
)

// Pass is the part of a step a launch belongs to, in the order they run.
type Pass int

const (
	// PassGather is the batch's gather (Trainer.runStep).
	PassGather Pass = iota
	// PassForward is Network.Forward.
	PassForward
	// PassStats is Network.Stats.
	PassStats
	// PassBackward is Network.BackwardStep.
	PassBackward
)

// Launch is one kernel launch of a step. Operands are tensor names of the
// plan; a GEMM's sizes are given at the plan's batch, BatchDim says which of
// them is the batch (see Dims).
type Launch struct {
	Kernel  Kernel
	Pass    Pass
	Layer   int
	Product string // the equation, e.g. "Z1 = f(X W1 + b1)"

	Form     kernels.Form
	M, N, K  int
	BatchDim byte // 'M' or 'K' for a GEMM
	Epi      kernels.Epilogue

	A, B, C     string // the GEMM's operands; C is the result
	Aux, ColSum string // the epilogue's operand and the column sums, or ""
	// Sparse marks the products whose A is the input batch X, images that
	// are mostly zero: the register GEMM skips their zero terms
	// (kernels.Fused.Sparse).
	Sparse bool

	Reads, Writes []string // every tensor the launch reads and writes
}

// Dims are the GEMM's m, n and k for a step of rows rows.
func (l Launch) Dims(rows int) (m, n, k int) {
	m, n, k = l.M, l.N, l.K
	switch l.BatchDim {
	case 'M':
		m = rows
	case 'K':
		k = rows
	}
	return m, n, k
}

// Shape is the GEMM as the tuner and kernels.Set see it at rows rows.
func (l Launch) Shape(rows int) kernels.Shape {
	m, n, k := l.Dims(rows)
	return kernels.Shape{TransA: l.Form == kernels.TransA, TransB: l.Form == kernels.TransB, M: m, N: n, K: k, SparseA: l.Sparse}
}

// Plan is one training step of a network, declared once from the widths
// and the batch: its tensors and its launches in the order they run.
// NewNetwork allocates the tensors, Need counts them, Forward and
// BackwardStep run the launches, and tuning, bench, verify and the plan
// command read them.
type Plan struct {
	Sizes    []int
	Batch    int
	Loss     Loss
	Tensors  []Tensor
	Launches []Launch
	index    map[string]int
}

// NewPlan declares the step of a network of the given widths (inputs first,
// classes last) at batch rows trained on loss.
func NewPlan(sizes []int, batch int, loss Loss) (*Plan, error) {
	if len(sizes) < 2 {
		return nil, fmt.Errorf("network needs at least inputs and outputs, got sizes %v", sizes)
	}
	for _, s := range sizes {
		if s <= 0 {
			return nil, fmt.Errorf("layer widths must be positive, got %v", sizes)
		}
	}
	if batch <= 0 {
		return nil, fmt.Errorf("batch must be positive, got %d", batch)
	}
	p := planOf(sizes, batch, loss)
	if msg := p.unindexable(); msg != "" {
		return nil, fmt.Errorf("%s", msg)
	}
	return p, nil
}

// planOf is NewPlan without the checks, for Need, which counts what it is
// given (sizes of zero included).
func planOf(sizes []int, batch int, loss Loss) *Plan {
	p := &Plan{Sizes: append([]int(nil), sizes...), Batch: batch, Loss: loss, index: map[string]int{}}
	p.declareTensors()
	p.declareLaunches()
	return p
}

// Z is the name of layer l's output: X for l = 0.
func zName(l int) string {
	if l == 0 {
		return "X"
	}
	return fmt.Sprintf("Z%d", l)
}

func (p *Plan) tensor(t Tensor) {
	p.index[t.Name] = len(p.Tensors)
	p.Tensors = append(p.Tensors, t)
}

// declareTensors lists the buffers in the order NewNetwork allocates them;
// the velocities and the scratch, allocated later, come last.
func (p *Plan) declareTensors() {
	s, b, L := p.Sizes, p.Batch, len(p.Sizes)-1
	p.tensor(Tensor{Name: "X", Rows: b, Cols: s[0], Batched: true, Role: Input})
	for l := 1; l <= L; l++ {
		in, out := s[l-1], s[l]
		p.tensor(Tensor{Name: fmt.Sprintf("W%d", l), Rows: in, Cols: out, Role: Weight, Layer: l})
		p.tensor(Tensor{Name: fmt.Sprintf("b%d", l), Rows: 1, Cols: out, Role: Bias, Layer: l})
		p.tensor(Tensor{Name: fmt.Sprintf("dW%d", l), Rows: in, Cols: out, Role: WeightGrad, Layer: l})
		p.tensor(Tensor{Name: fmt.Sprintf("db%d", l), Rows: 1, Cols: out, Role: BiasGrad, Layer: l})
		p.tensor(Tensor{Name: zName(l), Rows: b, Cols: out, Batched: true, Role: Activation, Layer: l})
		p.tensor(Tensor{Name: fmt.Sprintf("dZ%d", l), Rows: b, Cols: out, Batched: true, Role: Delta, Layer: l})
	}
	p.tensor(Tensor{Name: "Yp", Rows: b, Cols: s[L], Batched: true, Role: Output})
	p.tensor(Tensor{Name: "row losses", Rows: b, Cols: 1, Batched: true, Role: RowStat})
	p.tensor(Tensor{Name: "row flags", Rows: b, Cols: 1, Batched: true, Role: RowStat})
	p.tensor(Tensor{Name: "batch sums", Rows: 1, Cols: 2, Role: RowStat})
	p.tensor(Tensor{Name: "labels", Rows: b, Cols: 1, Batched: true, Role: Labels})
	for l := 1; l <= L; l++ {
		p.tensor(Tensor{Name: fmt.Sprintf("velocity of W%d", l), Rows: s[l-1], Cols: s[l], Role: Velocity, Layer: l})
		p.tensor(Tensor{Name: fmt.Sprintf("velocity of b%d", l), Rows: 1, Cols: s[l], Role: Velocity, Layer: l})
	}
	// dZ[l-1] = dZ[l] W[l]^T may transpose W[l] into the scratch first
	// (kernels.Set.launchNT); the kernels keep one as large as the largest.
	scratch := 0
	for l := 2; l <= L; l++ {
		scratch = max(scratch, s[l-1]*s[l])
	}
	if scratch > 0 {
		p.tensor(Tensor{Name: "GEMM scratch", Rows: 1, Cols: scratch, Role: Scratch})
	}
	// The term lists of the products that skip X's zeros (Launch.Sparse),
	// at their largest (kernels.TermInts).
	p.tensor(Tensor{Name: "GEMM term lists", Rows: 1, Cols: kernels.TermInts(b, s[0]), Role: Scratch})
}

// declareLaunches lists a training step: the gather, the forward pass
//
//	Z1 = f(X W1 + b1), Z2 = f(Z1 W2 + b2), Z3 = Z2 W3 + b3, Yp = softmax(Z3)
//
// with dZ3 = (Yp - Y)/batch, the statistics, then per layer from the last
// the delta of the layer below (it reads the old W) and one GEMM that makes
// dW = Z^T delta and db and steps W and b with them (kernels.EpiUpdate).
func (p *Plan) declareLaunches() {
	s, b, L := p.Sizes, p.Batch, len(p.Sizes)-1
	p.Launches = append(p.Launches, Launch{Kernel: KernelGather, Pass: PassGather, Product: "X, labels = images, digits [order]",
		Writes: []string{"X", "labels"}})
	for l := 1; l <= L; l++ {
		w, bias := fmt.Sprintf("W%d", l), fmt.Sprintf("b%d", l)
		epi, eq := kernels.EpiBiasReLU, fmt.Sprintf("%s = f(%s %s + %s)", zName(l), zName(l-1), w, bias)
		if l == L {
			epi, eq = kernels.EpiBias, fmt.Sprintf("%s = %s %s + %s", zName(l), zName(l-1), w, bias)
		}
		p.Launches = append(p.Launches, Launch{Kernel: KernelGemm, Pass: PassForward, Layer: l, Product: eq,
			Form: kernels.NN, M: b, N: s[l], K: s[l-1], BatchDim: 'M', Epi: epi,
			A: zName(l - 1), B: w, C: zName(l), Aux: bias, Sparse: l == 1,
			Reads: []string{zName(l - 1), w, bias}, Writes: []string{zName(l)}})
	}
	loss, eq := KernelSoftmax, fmt.Sprintf("Yp = softmax(Z%d), dZ%d = (Yp - Y)/batch", L, L)
	if p.Loss == MSE {
		loss, eq = KernelSoftmaxMSE, fmt.Sprintf("Yp = softmax(Z%d), dZ%d = Yp . (Yp - Y - s)/batch", L, L)
	}
	p.Launches = append(p.Launches,
		Launch{Kernel: loss, Pass: PassForward, Layer: L, Product: eq,
			Reads: []string{zName(L), "labels"}, Writes: []string{"Yp", fmt.Sprintf("dZ%d", L), "row losses", "row flags"}},
		Launch{Kernel: KernelStats, Pass: PassStats, Product: "loss, correct = sums of the rows",
			Reads: []string{"row losses", "row flags"}})
	for l := L; l >= 1; l-- {
		in, out := s[l-1], s[l]
		w, bias, dz := fmt.Sprintf("W%d", l), fmt.Sprintf("b%d", l), fmt.Sprintf("dZ%d", l)
		if l > 1 {
			below := fmt.Sprintf("dZ%d", l-1)
			p.Launches = append(p.Launches, Launch{Kernel: KernelGemm, Pass: PassBackward, Layer: l,
				Product: fmt.Sprintf("%s = f'(%s) . (%s %s^T)", below, zName(l-1), dz, w),
				Form:    kernels.TransB, M: b, N: in, K: out, BatchDim: 'M', Epi: kernels.EpiMask,
				A: dz, B: w, C: below, Aux: zName(l - 1),
				Reads: []string{dz, w, zName(l - 1)}, Writes: []string{below}})
		}
		p.Launches = append(p.Launches, Launch{Kernel: KernelGemm, Pass: PassBackward, Layer: l,
			Product: fmt.Sprintf("dW%d = %s^T %s, db%d = sum %s; step W%d, b%d", l, zName(l-1), dz, l, dz, l, l),
			Form:    kernels.TransA, M: in, N: out, K: b, BatchDim: 'K', Epi: kernels.EpiUpdate,
			A: zName(l - 1), B: dz, C: fmt.Sprintf("dW%d", l), Aux: w, ColSum: fmt.Sprintf("db%d", l), Sparse: l == 1,
			Reads: []string{zName(l - 1), dz, w, bias}, Writes: []string{w, bias}})
	}
}

// unindexable names a tensor with more elements than a kernel's 32-bit
// index reaches, or is "".
func (p *Plan) unindexable() string {
	for _, t := range p.Tensors {
		if t.Rows > 0 && t.Cols > 0 && t.Rows > math.MaxInt32/t.Cols {
			return fmt.Sprintf("%s: a %d x %d tensor has more elements than a kernel can index (2^31-1)", t.Name, t.Rows, t.Cols)
		}
	}
	return ""
}

// Tensor returns the tensor of the given name.
func (p *Plan) Tensor(name string) (Tensor, bool) {
	i, ok := p.index[name]
	if !ok {
		return Tensor{}, false
	}
	return p.Tensors[i], true
}

// Gemms are the plan's GEMM launches in the order they run.
func (p *Plan) Gemms() []Launch {
	var out []Launch
	for _, l := range p.Launches {
		if l.Kernel == KernelGemm {
			out = append(out, l)
		}
	}
	return out
}

// Shapes are the distinct GEMM shapes of a step at the plan's batch, in the
// order they run: what the tuner measures.
func (p *Plan) Shapes() []kernels.Shape {
	var out []kernels.Shape
	seen := map[kernels.Shape]bool{}
	for _, l := range p.Gemms() {
		if sh := l.Shape(p.Batch); !seen[sh] {
			seen[sh] = true
			out = append(out, sh)
		}
	}
	return out
}

// Shapes lists the distinct GEMM shapes of one training step of a network
// of the given widths at batch rows (see Plan.Shapes).
func Shapes(sizes []int, batch int) []kernels.Shape {
	return planOf(sizes, batch, CrossEntropy).Shapes()
}

// Bytes is what a launch moves at rows rows: every tensor it reads and
// writes once (a GEMM reads its operands at least once and writes C, even
// when its epilogue keeps C from memory, so this is a lower bound for it).
func (p *Plan) Bytes(l Launch, rows int) uint64 {
	var n uint64
	count := func(names ...string) {
		for _, name := range names {
			if t, ok := p.Tensor(name); ok {
				n += 4 * uint64(t.Elems(rows))
			}
		}
	}
	count(l.Reads...)
	count(l.Writes...)
	return n
}

// FLOPs is a launch's arithmetic at rows rows: 2mnk for a product and one
// operation per element written for its epilogue and the other kernels.
func (p *Plan) FLOPs(l Launch, rows int) uint64 {
	if l.Kernel == KernelGemm {
		m, n, k := l.Dims(rows)
		return 2*uint64(m)*uint64(n)*uint64(k) + uint64(m)*uint64(n)
	}
	var n uint64
	for _, name := range l.Writes {
		if t, ok := p.Tensor(name); ok {
			n += uint64(t.Elems(rows))
		}
	}
	return n
}

// StepBatch is the rows a run allocates and tunes for, given the images of
// its data sets: the configured batch, no larger than the largest set (more
// rows would never be used). NewTrainer, Need and the command's tuning all
// take it from here.
func StepBatch(batch int, images ...int) int {
	most := 0
	for _, n := range images {
		most = max(most, n)
	}
	if most > 0 && batch > most {
		return most
	}
	return batch
}
