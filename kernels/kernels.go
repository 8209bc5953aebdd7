package kernels

import (
	"embed"
	"fmt"
	"io/fs"
	"os"

	"github.com/mnist-cl/mnist-cl/cl"
)

//go:embed *.cl
var sources embed.FS

func readSource(fsys fs.FS, name string) (string, error) {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return "", fmt.Errorf("kernel source %s: %w", name, err)
	}
	return string(b), nil
}

// Options chooses how a Set is built.
type Options struct {
	Gemm GemmKind
	// Dir, when set, is a folder whose .cl files replace the built-in ones:
	// a kernel can be edited and tried without rebuilding the program.
	Dir string
	// TileEdge is the edge of the square work-groups of gemm_tiled and
	// col_sum: 16 or 8. Zero picks 16 where the device runs 256 work-items
	// in a group, else 8; tests set 8 to cover the small-device path.
	TileEdge int
	// Profile makes nn.Open create a profiling queue, so that Record's
	// launches have device times (bench's per-kernel table).
	Profile bool
	// Registers overrides the register file RegistersOf reads off the
	// device, which sizes the register GEMM's blocks: a test builds the
	// AVX2 blocks on an AVX-512 machine with it.
	Registers Registers
	// MinSparseWork is the fewest multiply-adds a product must have to skip
	// its zero terms when Fused.Sparse asks; 0 takes minSparseWork. Tests
	// set 1 to run the sparse kernels at every size.
	MinSparseWork uint64
	// Stop, when set, is asked before each program is built: a build takes
	// up to a second or two on a cold compiler cache and cannot be cut short
	// once started, so a Ctrl-C during New waits for one program, not all.
	Stop func() error
}

// GemmKind names a GEMM implementation.
type GemmKind int

const (
	// GemmAuto picks GemmRegister on CPU devices and GemmTiled elsewhere.
	GemmAuto GemmKind = iota
	// GemmRegister is gemm_reg.cl: register blocks, no local memory.
	GemmRegister
	// GemmTiled is gemm_tiled.cl: local-memory tiles with barriers.
	GemmTiled
)

// String returns the name used in flags and reports.
func (g GemmKind) String() string {
	switch g {
	case GemmRegister:
		return "register"
	case GemmTiled:
		return "tiled"
	default:
		return "auto"
	}
}

// ParseGemmKind is the inverse of String.
func ParseGemmKind(s string) (GemmKind, error) {
	for _, g := range []GemmKind{GemmAuto, GemmRegister, GemmTiled} {
		if s == g.String() {
			return g, nil
		}
	}
	return GemmAuto, fmt.Errorf("unknown GEMM kind %q (want auto, register or tiled)", s)
}

// Set holds every kernel of the pass built for one device, with typed launch
// methods. Launches are queued on the Set's queue and never wait; the caller
// reads a result (a blocking read) or calls Finish when it needs one.
// A Set is not safe for concurrent use.
type Set struct {
	ctx  *cl.Context
	q    *cl.Queue
	dev  cl.Device
	kind GemmKind
	src  fs.FS

	programs []*cl.Program
	regs     Registers
	gemmReg  map[Block][3]*cl.Kernel // by Block.program(): nn, tn, nt
	// gemmSparse are the SPARSE=1 builds, by Block.program(): nn, tn,
	// nonzero_rows, nonzero_cols (sparse.go).
	gemmSparse map[Block][4]*cl.Kernel
	gemmTile   [2][3]*cl.Kernel // [compensated][nn, tn, nt]
	tileEdge   int
	csCols     int
	csRows     int
	wg         int // work-group size of element-wise kernels

	gather, biasReLU, biasAdd, softmax, softmaxMSE, stats, mask, colSum, update, transpose *cl.Kernel
	gatherAffine, philox                                                                   *cl.Kernel
	affineGroup                                                                            int // work-items gather_affine may run in a group
	gatherElastic, elasticFields                                                           *cl.Kernel
	elasticGroup                                                                           int // work-items gather_elastic and elastic_fields may run in a group

	scratch        *cl.Buffer // holds B^T for the register GEMM's A B^T form
	terms          *cl.Buffer // the term lists of the sparse products (sparse.go)
	transposeGroup int        // rows per work-group of transpose: 16, or what the device allows

	minSparse uint64          // Options.MinSparseWork, or minSparseWork
	tuned     map[Shape]Block // per-shape register blocks from a tuning
	built     []Program       // every program built, in order, for the run record
	stop      func() error    // Options.Stop

	record   bool       // keep each launch's event (see Record)
	launches []launched // the events kept since Record
}

// New builds the kernels for the device of ctx. Building takes about half a
// second per program on PoCL the first time; PoCL caches the binaries after.
func New(ctx *cl.Context, q *cl.Queue, opts Options) (*Set, error) {
	dev := ctx.Device()
	kind := opts.Gemm
	var src fs.FS = sources
	if opts.Dir != "" {
		src = os.DirFS(opts.Dir)
	}
	if kind == GemmAuto {
		kind = GemmTiled
		if dev.Type == cl.DeviceCPU {
			kind = GemmRegister
		}
	}
	regs := opts.Registers
	if regs == (Registers{}) {
		regs = RegistersOf(dev)
	}
	s := &Set{ctx: ctx, q: q, dev: dev, kind: kind, src: src, regs: regs, gemmReg: map[Block][3]*cl.Kernel{},
		gemmSparse: map[Block][4]*cl.Kernel{}, stop: opts.Stop, minSparse: opts.MinSparseWork}
	if s.minSparse == 0 {
		s.minSparse = minSparseWork
	}
	edge := opts.TileEdge
	switch {
	case edge == 0 && dev.MaxWorkGroupSize >= 256:
		edge = 16
	case edge == 0:
		edge = 8
	case edge != 8 && edge != 16:
		return nil, fmt.Errorf("tile edge %d: want 8 or 16", edge)
	}
	s.tileEdge, s.csCols, s.csRows = edge, edge, edge
	if err := s.build(); err != nil {
		s.Release()
		return nil, err
	}
	return s, nil
}

// Kind reports the GEMM implementation in use.
func (s *Set) Kind() GemmKind { return s.kind }

func (s *Set) program(file, options string) (*cl.Program, error) {
	if s.stop != nil {
		if err := s.stop(); err != nil {
			return nil, fmt.Errorf("build %s: %w", file, err)
		}
	}
	sums, err := readSource(s.src, "sums.cl")
	if err != nil {
		return nil, err
	}
	text, err := readSource(s.src, file)
	if err != nil {
		return nil, err
	}
	// sums.cl goes in front of every program (OpenCL 1.2 has no portable
	// #include); #line keeps the compiler's line numbers those of file.
	// -w: clang's warnings (an unroll it declined) go to the process's
	// stderr on PoCL; errors still come back in the BuildError's log.
	p, err := s.ctx.BuildProgram(sums+"\n#line 1 \""+file+"\"\n"+text, options+" -w")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	s.programs = append(s.programs, p)
	s.built = append(s.built, Program{File: file, Options: options + " -w"})
	return p, nil
}

func kernelsOf(p *cl.Program, names ...string) ([]*cl.Kernel, error) {
	ks := make([]*cl.Kernel, len(names))
	for i, n := range names {
		k, err := p.Kernel(n)
		if err != nil {
			for _, made := range ks[:i] {
				made.Release()
			}
			return nil, err
		}
		ks[i] = k
	}
	return ks, nil
}

func (s *Set) build() error {
	opts := fmt.Sprintf("-D CS_COLS=%d -D CS_ROWS=%d", s.csCols, s.csRows)
	if s.dev.Type == cl.DeviceCPU {
		opts += " -D CPU_PREFETCH" // layers.cl's gather; see there
	}
	p, err := s.program("layers.cl", opts)
	if err != nil {
		return err
	}
	ks, err := kernelsOf(p, "gather", "bias_relu", "bias_add", "softmax_minus_labels", "softmax_mse",
		"batch_stats", "relu_mask", "col_sum", "update", "transpose")
	if err != nil {
		return err
	}
	s.gather, s.biasReLU, s.biasAdd, s.softmax, s.softmaxMSE, s.stats, s.mask, s.colSum, s.update, s.transpose =
		ks[0], ks[1], ks[2], ks[3], ks[4], ks[5], ks[6], ks[7], ks[8], ks[9]
	if p, err = s.program("augment.cl", ""); err != nil {
		return err
	}
	if ks, err = kernelsOf(p, "gather_affine", "philox_blocks", "gather_elastic", "elastic_fields"); err != nil {
		return err
	}
	s.gatherAffine, s.philox, s.gatherElastic, s.elasticFields = ks[0], ks[1], ks[2], ks[3]
	// 64 work-items per group for the element-wise kernels, or what the
	// least of them allows on this device.
	s.wg = 64
	for _, k := range []*cl.Kernel{s.gather, s.biasReLU, s.biasAdd, s.softmax, s.softmaxMSE, s.mask, s.update, s.philox} {
		wg, err := k.WorkGroupSize(s.dev)
		if err != nil {
			return err
		}
		s.wg = max(1, min(s.wg, wg))
	}
	if s.affineGroup, err = s.gatherAffine.WorkGroupSize(s.dev); err != nil {
		return err
	}
	// The elastic kernels' groups: up to 256 work-items, or what the
	// device allows (see imageGroup).
	s.elasticGroup = 256
	for _, k := range []*cl.Kernel{s.gatherElastic, s.elasticFields} {
		wg, err := k.WorkGroupSize(s.dev)
		if err != nil {
			return err
		}
		s.elasticGroup = max(1, min(s.elasticGroup, wg))
	}
	tg, err := s.transpose.WorkGroupSize(s.dev)
	if err != nil {
		return err
	}
	s.transposeGroup = max(1, min(16, tg))
	if err := fitsGroup(s.dev, s.colSum, s.csCols*s.csRows); err != nil {
		return err
	}

	if s.kind == GemmTiled {
		for comp := range 2 {
			p, err := s.program("gemm_tiled.cl", fmt.Sprintf("-D TS=%d -D COMPENSATED=%d", s.tileEdge, comp))
			if err != nil {
				return err
			}
			ks, err := kernelsOf(p, "gemm_tiled_nn", "gemm_tiled_tn", "gemm_tiled_nt")
			if err != nil {
				return err
			}
			copy(s.gemmTile[comp][:], ks)
			for _, k := range ks {
				if err := fitsGroup(s.dev, k, s.tileEdge*s.tileEdge); err != nil {
					return err
				}
			}
		}
		return nil
	}
	// Every dense default block (outputs one to four vectors wide, A B^T's
	// too), now: a broken source fails here, and no step of training waits
	// for a compiler.
	for n := 16; n <= 64; n += 16 {
		for _, nt := range []bool{false, true} {
			if _, err := s.regKernels(s.regs.DefaultBlock(Shape{N: n, TransB: nt})); err != nil {
				return err
			}
		}
	}
	return nil
}

// Registers is the register file the Set's register blocks are sized for.
func (s *Set) Registers() Registers { return s.regs }

// Context and Queue are the Set's, for a caller (the tuner) that needs
// buffers and waits of its own.
func (s *Set) Context() *cl.Context { return s.ctx }

// Queue is the queue the Set launches on.
func (s *Set) Queue() *cl.Queue { return s.q }

// fitsGroup checks that the device runs k in work-groups of n work-items,
// which its reqd_work_group_size demands; a driver may allow fewer for a
// kernel than for the device.
func fitsGroup(dev cl.Device, k *cl.Kernel, n int) error {
	wg, err := k.WorkGroupSize(dev)
	if err != nil {
		return err
	}
	if wg < n {
		return fmt.Errorf("kernel %s needs work-groups of %d on %s, which allows %d (try a tile edge of 8)", k.Name(), n, dev.Name, wg)
	}
	return nil
}

// Release frees every kernel, program and scratch buffer of the Set. The
// context and queue belong to the caller.
func (s *Set) Release() {
	for _, k := range []*cl.Kernel{s.gather, s.biasReLU, s.biasAdd, s.softmax, s.softmaxMSE, s.stats, s.mask, s.colSum, s.update, s.transpose, s.gatherAffine, s.philox, s.gatherElastic, s.elasticFields} {
		k.Release()
	}
	for _, ks := range s.gemmTile {
		for _, k := range ks {
			k.Release()
		}
	}
	for _, ks := range s.gemmReg {
		for _, k := range ks {
			k.Release()
		}
	}
	s.gemmReg = map[Block][3]*cl.Kernel{}
	for _, ks := range s.gemmSparse {
		for _, k := range ks {
			k.Release()
		}
	}
	s.gemmSparse = map[Block][4]*cl.Kernel{}
	for _, p := range s.programs {
		p.Release()
	}
	s.programs = nil
	s.scratch.Release()
	s.scratch = nil
	s.terms.Release()
	s.terms = nil
	s.Record(false)
}

func roundUp(n, m int) int { return (n + m - 1) / m * m }

// operand is a buffer with the float32 count a kernel will touch in it.
type operand struct {
	name   string
	b      *cl.Buffer
	floats int
}

// need checks that each buffer holds its operand's count, so a wrong shape is
// a Go error naming op instead of a device write out of bounds.
func need(op string, ops ...operand) error {
	if err := fit(ops...); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// fit is need without the name, for callers that build the name only when
// there is an error.
func fit(ops ...operand) error {
	for _, o := range ops {
		if o.b == nil {
			return fmt.Errorf("%s buffer is nil", o.name)
		}
		if o.b.Size() < 4*o.floats {
			return fmt.Errorf("%s buffer holds %d bytes, need %d", o.name, o.b.Size(), 4*o.floats)
		}
	}
	return nil
}

func (s *Set) launch1D(k *cl.Kernel, n int, args ...any) error {
	if n <= 0 {
		return nil
	}
	if err := k.SetArgs(args...); err != nil {
		return err
	}
	return s.enqueue(k, []int{roundUp(n, s.wg)}, []int{s.wg}, n, 0, 0)
}

// Gather writes rows images perm[first:first+rows] of the uint8 data set into X
// as float32 in [0,1] and their digits into labels (int32).
func (s *Set) Gather(images, digits, perm *cl.Buffer, first, rows, pixels int, x, labels *cl.Buffer) error {
	if err := need("gather", operand{"X", x, rows * pixels}, operand{"labels", labels, rows}, operand{"perm", perm, first + rows}); err != nil {
		return err
	}
	return s.launch1D(s.gather, rows*((pixels+15)/16), images, digits, perm, first, rows, pixels, x, labels)
}

// BiasReLU computes Z = f(Z + b) in place for a rows x cols Z.
func (s *Set) BiasReLU(z, b *cl.Buffer, rows, cols int) error {
	if err := need("bias_relu", operand{"Z", z, rows * cols}, operand{"b", b, cols}); err != nil {
		return err
	}
	return s.launch1D(s.biasReLU, rows*cols, z, b, rows*cols, cols)
}

// BiasAdd computes Z = Z + b in place: the logits have no activation.
func (s *Set) BiasAdd(z, b *cl.Buffer, rows, cols int) error {
	if err := need("bias_add", operand{"Z", z, rows * cols}, operand{"b", b, cols}); err != nil {
		return err
	}
	return s.launch1D(s.biasAdd, rows*cols, z, b, rows*cols, cols)
}

// LossArgs are the operands of a softmax loss: Rows x Cols logits and Rows
// int32 labels in; Yp = softmax(logits) and dZ (both Rows x Cols), each
// row's loss and a 1/0 correct flag out. dZ is divided by Batch, the rows
// the mean loss is over.
type LossArgs struct {
	Logits, Labels      *cl.Buffer
	Rows, Cols, Batch   int
	Yp, DZ              *cl.Buffer
	RowLoss, RowCorrect *cl.Buffer
}

// SoftmaxMinusLabels writes Yp = softmax(logits) and dZ = (Yp - Y)/batch,
// plus each row's loss and correct flag.
func (s *Set) SoftmaxMinusLabels(a LossArgs) error {
	return s.softmaxLoss(s.softmax, a)
}

// SoftmaxMSE is SoftmaxMinusLabels for the squared-error loss
// 1/2 sum_j (Yp_j - Y_j)^2 per row: dZ is its gradient through the softmax,
// Yp (Yp - Y - s)/batch with s = sum_j (Yp_j - Y_j) Yp_j per row.
func (s *Set) SoftmaxMSE(a LossArgs) error {
	return s.softmaxLoss(s.softmaxMSE, a)
}

func (s *Set) softmaxLoss(k *cl.Kernel, a LossArgs) error {
	rc := a.Rows * a.Cols
	if err := fit(operand{"logits", a.Logits, rc}, operand{"labels", a.Labels, a.Rows}, operand{"Yp", a.Yp, rc},
		operand{"dZ", a.DZ, rc}, operand{"rowLoss", a.RowLoss, a.Rows}, operand{"rowCorrect", a.RowCorrect, a.Rows}); err != nil {
		return fmt.Errorf("%s: %w", k.Name(), err)
	}
	return s.launch1D(k, a.Rows, a.Logits, a.Labels, a.Rows, a.Cols, float32(1/float64(a.Batch)), a.Yp, a.DZ, a.RowLoss, a.RowCorrect)
}

// BatchStats writes the sums of rowLoss and rowCorrect over rows into
// stats[2*slot] and stats[2*slot+1].
func (s *Set) BatchStats(rowLoss, rowCorrect *cl.Buffer, rows int, stats *cl.Buffer, slot int) error {
	if err := need("batch_stats", operand{"rowLoss", rowLoss, rows}, operand{"rowCorrect", rowCorrect, rows}, operand{"stats", stats, 2*slot + 2}); err != nil {
		return err
	}
	if err := s.stats.SetArgs(rowLoss, rowCorrect, rows, stats, slot); err != nil {
		return err
	}
	return s.enqueue(s.stats, []int{1}, []int{1}, rows, 0, 0)
}

// ReLUMask computes delta = delta . f'(Z) in place over n elements.
func (s *Set) ReLUMask(delta, z *cl.Buffer, n int) error {
	if err := need("relu_mask", operand{"delta", delta, n}, operand{"Z", z, n}); err != nil {
		return err
	}
	return s.launch1D(s.mask, n, delta, z, n)
}

// ColSum writes db[c] = sum over rows of delta[r, c].
func (s *Set) ColSum(delta *cl.Buffer, rows, cols int, db *cl.Buffer) error {
	if err := need("col_sum", operand{"delta", delta, rows * cols}, operand{"db", db, cols}); err != nil {
		return err
	}
	if err := s.colSum.SetArgs(delta, rows, cols, db); err != nil {
		return err
	}
	return s.enqueue(s.colSum, []int{roundUp(cols, s.csCols), s.csRows}, []int{s.csCols, s.csRows}, rows, cols, 0)
}

// Hyper are an optimiser step's settings: PyTorch's SGD with dampening 0.
// The zero value but LR is the lecture's plain SGD.
type Hyper struct {
	LR          float32
	Momentum    float32 // mu; 0 is plain SGD and leaves the velocities alone
	WeightDecay float32 // wd, applied to weights, not biases
	Nesterov    bool
}

// Param is one parameter tensor of an optimiser step: N values, their
// gradient and their velocity (nil when the step has no momentum).
type Param struct {
	Value, Grad, Velocity *cl.Buffer
	N                     int
}

// Update applies one optimiser step to a layer's weights w and biases b in
// one launch (see update in layers.cl).
func (s *Set) Update(w, b Param, h Hyper) error {
	if h.Momentum == 0 {
		// Not touched by the kernel; any valid buffer fills the argument.
		w.Velocity, b.Velocity = w.Grad, b.Grad
	}
	if err := need("update", operand{"W", w.Value, w.N}, operand{"dW", w.Grad, w.N}, operand{"vW", w.Velocity, w.N},
		operand{"b", b.Value, b.N}, operand{"db", b.Grad, b.N}, operand{"vb", b.Velocity, b.N}); err != nil {
		return err
	}
	return s.launch1D(s.update, w.N+b.N, w.Value, w.Grad, w.Velocity, w.N, b.Value, b.Grad, b.Velocity, b.N,
		h.LR, h.Momentum, h.WeightDecay, boolInt(h.Nesterov))
}

// Transpose writes out[cols, rows] = in[rows, cols]^T.
func (s *Set) Transpose(in *cl.Buffer, rows, cols int, out *cl.Buffer) error {
	if err := need("transpose", operand{"in", in, rows * cols}, operand{"out", out, rows * cols}); err != nil {
		return err
	}
	if err := s.transpose.SetArgs(in, rows, cols, out); err != nil {
		return err
	}
	return s.enqueue(s.transpose, []int{roundUp(rows, s.transposeGroup), (cols + 15) / 16}, []int{s.transposeGroup, 1}, rows, cols, 0)
}
