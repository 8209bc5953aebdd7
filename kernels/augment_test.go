package kernels_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/mnist-cl/mnist-cl/cl"
	"github.com/mnist-cl/mnist-cl/cpuref"
	"github.com/mnist-cl/mnist-cl/internal/cltest"
	"github.com/mnist-cl/mnist-cl/kernels"
)

// philoxKAT are the philox4x32 10 lines of Random123's kat_vectors
// (counter, key, expected), the generator's published known answers.
var philoxKAT = []struct {
	ctr  [4]uint32
	key  [2]uint32
	want [4]uint32
}{
	{[4]uint32{0, 0, 0, 0}, [2]uint32{0, 0}, [4]uint32{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
	{[4]uint32{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, [2]uint32{0xffffffff, 0xffffffff}, [4]uint32{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
	{[4]uint32{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, [2]uint32{0xa4093822, 0x299f31d0}, [4]uint32{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
}

func TestPhiloxKnownAnswers(t *testing.T) {
	for _, c := range philoxKAT {
		if got := kernels.Philox4x32(c.ctr, c.key); got != c.want {
			t.Errorf("Philox4x32(%08x, %08x) = %08x, want %08x", c.ctr, c.key, got, c.want)
		}
	}
}

func TestUniform(t *testing.T) {
	for _, c := range []struct {
		x    uint32
		want float32
	}{{0, -1}, {0xff, -1}, {1 << 31, 0}, {0xffffffff, 1 - 1.0/(1<<23)}} {
		if got := kernels.Uniform(c.x); got != c.want {
			t.Errorf("Uniform(%#x) = %v, want %v", c.x, got, c.want)
		}
	}
}

// TestPhiloxDevice holds the device's generator to Go's, word for word, on
// the known-answer inputs and on runs of counters from them (the carry-free
// first word covers what gather_affine counts: images).
func TestPhiloxDevice(t *testing.T) {
	s, ctx, q := newSet(t, kernels.GemmAuto)
	const n = 37
	out := cltest.Buffer(t, ctx, q, 4*n, nil)
	for _, c := range philoxKAT {
		if err := s.Philox(c.ctr, c.key, n, out); err != nil {
			t.Fatal(err)
		}
		got := make([]int32, 4*n)
		if err := q.ReadInt32(out, 0, got); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			ctr := c.ctr
			ctr[0] += uint32(i)
			want := kernels.Philox4x32(ctr, c.key)
			for j, w := range want {
				if uint32(got[4*i+j]) != w {
					t.Fatalf("device Philox at counter %08x key %08x word %d: %08x, Go %08x", ctr, c.key, j, uint32(got[4*i+j]), w)
				}
			}
		}
	}
}

// augmentData is n random images of width x height on the device, their
// digits, a shuffle and room for n labels, as gather and gather_affine read
// them; buffers are released with the test.
type augmentData struct {
	images, digits []uint8
	perm           []int32
	ib, db, pb, lb *cl.Buffer
}

func newAugmentData(t testing.TB, ctx *cl.Context, q *cl.Queue, rng *rand.Rand, n, pixels int) *augmentData {
	t.Helper()
	d := &augmentData{images: make([]uint8, n*pixels), digits: make([]uint8, n), perm: make([]int32, n)}
	for i := range d.images {
		d.images[i] = uint8(rng.IntN(256))
	}
	for i := range d.digits {
		d.digits[i] = uint8(rng.IntN(10))
	}
	for i, p := range rng.Perm(n) {
		d.perm[i] = int32(p)
	}
	var err error
	alloc := func(bytes int) *cl.Buffer {
		b, e := ctx.NewBuffer(bytes)
		if e != nil {
			err = e
			return nil
		}
		t.Cleanup(b.Release)
		return b
	}
	d.ib, d.db, d.pb, d.lb = alloc(len(d.images)), alloc(n), alloc(4*n), alloc(4*n)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []error{q.WriteUint8(d.ib, 0, d.images), q.WriteUint8(d.db, 0, d.digits), q.WriteInt32(d.pb, 0, d.perm)} {
		if e != nil {
			t.Fatal(e)
		}
	}
	return d
}

// TestGatherAffine runs gather_affine at odd sizes (square and not, smaller
// than a 16-pixel chunk and not a multiple of one), batches of 1 and 7 at
// several offsets, and checks every row against cpuref.Affine from the Go
// draw of the same image; and, with zero ranges, against gather bit for bit.
func TestGatherAffine(t *testing.T) {
	s, ctx, q := newSet(t, kernels.GemmAuto)
	const n = 23
	for _, wh := range [][2]int{{1, 1}, {5, 3}, {13, 7}, {27, 27}, {28, 28}, {37, 29}} {
		w, h := wh[0], wh[1]
		d := newAugmentData(t, ctx, q, rand.New(rand.NewPCG(cltest.Seed(t), 16)), n, w*h)
		for _, fr := range [][2]int{{0, 1}, {5, 7}, {16, 7}, {22, 1}} {
			first, rows := fr[0], fr[1]
			mnistLike := kernels.Affine{Width: w, Height: h, Seed: 0x1234_5678_9abc, Epoch: 3, Rotate: 12, Scale: 0.1, Shift: 0.1}
			strong := kernels.Affine{Width: w, Height: h, Seed: 7, Epoch: 1, Rotate: 90, Scale: 0.5, Shift: 0.4}
			for _, a := range []kernels.Affine{mnistLike, strong} {
				affineCase(t, s, ctx, q, d, first, rows, a)
			}
			identityCase(t, s, ctx, q, d, first, rows, kernels.Affine{Width: w, Height: h, Seed: 99, Epoch: 2})
		}
	}
	// An image whose staging would not fit in local memory is refused,
	// not run.
	d := newAugmentData(t, ctx, q, rand.New(rand.NewPCG(1, 3)), 1, 25)
	x := cltest.Buffer(t, ctx, q, 25, nil)
	if err := s.GatherAffine(d.ib, d.db, d.pb, 0, 1, kernels.Affine{Width: 1000, Height: 1000}, x, d.lb); err == nil {
		t.Error("GatherAffine of a 1000x1000 image: no error")
	}
}

// runGather runs one distorting gather of rows images into a poisoned X,
// with the labels poisoned too, and reads both back.
func runGather(t *testing.T, ctx *cl.Context, q *cl.Queue, d *augmentData, rows, pixels int, gather func(x *cl.Buffer) error) ([]float32, []int32) {
	t.Helper()
	x := cltest.Buffer(t, ctx, q, rows*pixels, nil)
	if err := q.FillInt32(d.lb, -1, 0, len(d.perm)); err != nil {
		t.Fatal(err)
	}
	if err := gather(x); err != nil {
		t.Fatal(err)
	}
	labels := make([]int32, rows)
	if err := q.ReadInt32(d.lb, 0, labels); err != nil {
		t.Fatal(err)
	}
	return cltest.Read(t, q, x, rows*pixels), labels
}

func affineCase(t *testing.T, s *kernels.Set, ctx *cl.Context, q *cl.Queue, d *augmentData, first, rows int, a kernels.Affine) {
	t.Helper()
	pixels := a.Width * a.Height
	got, labels := runGather(t, ctx, q, d, rows, pixels, func(x *cl.Buffer) error {
		return s.GatherAffine(d.ib, d.db, d.pb, first, rows, a, x, d.lb)
	})
	want := make([]float64, 0, rows*pixels)
	for r := range rows {
		src := int(d.perm[first+r])
		if labels[r] != int32(d.digits[src]) {
			t.Fatalf("%dx%d first=%d row %d: label %d, want %d", a.Width, a.Height, first, r, labels[r], d.digits[src])
		}
		dr := a.Draw(src)
		tr := cpuref.AffineTransform{Angle: float64(dr.Angle), Scale: float64(dr.Scale), DX: float64(dr.DX), DY: float64(dr.DY)}
		want = append(want, cpuref.Affine(d.images[src*pixels:(src+1)*pixels], a.Width, a.Height, tr)...)
	}
	for i, g := range got {
		if math.IsNaN(float64(g)) {
			t.Fatalf("%dx%d first=%d: X[%d] is NaN (never written?)", a.Width, a.Height, first, i)
		}
	}
	if e := cpuref.RelErrVec(got, want); !(e <= tolForward) {
		t.Errorf("gather_affine %dx%d first=%d rows=%d %+v: relative error %.3g > %.0g", a.Width, a.Height, first, rows, a, e, tolForward)
	}
}

// identityCase checks that zero ranges give gather's X exactly: the
// bilinear weights are then 1 and 0, and 1 * p + 0 * q is p.
func identityCase(t *testing.T, s *kernels.Set, ctx *cl.Context, q *cl.Queue, d *augmentData, first, rows int, a kernels.Affine) {
	t.Helper()
	pixels := a.Width * a.Height
	x := cltest.Buffer(t, ctx, q, rows*pixels, nil)
	plain := cltest.Buffer(t, ctx, q, rows*pixels, nil)
	if err := s.GatherAffine(d.ib, d.db, d.pb, first, rows, a, x, d.lb); err != nil {
		t.Fatal(err)
	}
	if err := s.Gather(d.ib, d.db, d.pb, first, rows, pixels, plain, d.lb); err != nil {
		t.Fatal(err)
	}
	got, want := cltest.Read(t, q, x, rows*pixels), cltest.Read(t, q, plain, rows*pixels)
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("identity gather_affine %dx%d first=%d: X[%d] = %v, gather %v", a.Width, a.Height, first, i, got[i], want[i])
		}
	}
}

// elasticSizes are the image sizes of the elastic tests: a single pixel,
// images narrower than a 16-pixel chunk, square and not, MNIST's, and wider
// than two chunks with neither side a multiple of 4 or 16.
var elasticSizes = [][2]int{{1, 1}, {5, 3}, {13, 7}, {28, 28}, {37, 29}}

// TestGatherElastic runs gather_elastic at odd sizes, batches of 1 and 7,
// alone and after an affine map, and checks every row against cpuref.Elastic
// of the fields cpuref.ElasticField makes from the Go draw of the same
// noise; with alpha 0 and zero ranges X must be gather's bit for bit.
func TestGatherElastic(t *testing.T) {
	s, ctx, q := newSet(t, kernels.GemmAuto)
	const n = 23
	for _, wh := range elasticSizes {
		w, h := wh[0], wh[1]
		d := newAugmentData(t, ctx, q, rand.New(rand.NewPCG(cltest.Seed(t), 17)), n, w*h)
		for _, fr := range [][2]int{{0, 1}, {5, 7}, {22, 1}} {
			first, rows := fr[0], fr[1]
			simard := kernels.Elastic{Affine: kernels.Affine{Width: w, Height: h, Seed: 0x1234_5678_9abc, Epoch: 3}, Sigma: 4, Alpha: 34}
			strong := kernels.Elastic{Affine: kernels.Affine{Width: w, Height: h, Seed: 7, Epoch: 1, Rotate: 30, Scale: 0.2, Shift: 0.2}, Sigma: 1.5, Alpha: 80}
			wide := kernels.Elastic{Affine: kernels.Affine{Width: w, Height: h, Seed: 5, Epoch: 2}, Sigma: 10, Alpha: 300}
			for _, e := range []kernels.Elastic{simard, strong, wide} {
				elasticCase(t, s, ctx, q, d, first, rows, e)
			}
			id := kernels.Elastic{Affine: kernels.Affine{Width: w, Height: h, Seed: 99, Epoch: 2}, Sigma: 4}
			x := cltest.Buffer(t, ctx, q, rows*w*h, nil)
			plain := cltest.Buffer(t, ctx, q, rows*w*h, nil)
			if err := s.GatherElastic(d.ib, d.db, d.pb, first, rows, id, x, d.lb); err != nil {
				t.Fatal(err)
			}
			if err := s.Gather(d.ib, d.db, d.pb, first, rows, w*h, plain, d.lb); err != nil {
				t.Fatal(err)
			}
			got, want := cltest.Read(t, q, x, rows*w*h), cltest.Read(t, q, plain, rows*w*h)
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("alpha 0 gather_elastic %dx%d first=%d: X[%d] = %v, gather %v", w, h, first, i, got[i], want[i])
				}
			}
		}
	}
	bad := kernels.Elastic{Affine: kernels.Affine{Width: 5, Height: 5}, Sigma: 11, Alpha: 1}
	x := cltest.Buffer(t, ctx, q, 25, nil)
	d := newAugmentData(t, ctx, q, rand.New(rand.NewPCG(1, 2)), 1, 25)
	huge := kernels.Elastic{Affine: kernels.Affine{Width: 1 << 12, Height: 1 << 12}, Sigma: 1, Alpha: 1}
	for _, e := range []kernels.Elastic{bad, {Affine: bad.Affine, Sigma: 0}, {Affine: bad.Affine, Sigma: 1, Alpha: -1}, huge} {
		if err := s.GatherElastic(d.ib, d.db, d.pb, 0, 1, e, x, d.lb); err == nil {
			t.Errorf("GatherElastic(%+v): no error", e)
		}
	}
}

func elasticCase(t *testing.T, s *kernels.Set, ctx *cl.Context, q *cl.Queue, d *augmentData, first, rows int, e kernels.Elastic) {
	t.Helper()
	w, h := e.Width, e.Height
	pixels := w * h
	got, labels := runGather(t, ctx, q, d, rows, pixels, func(x *cl.Buffer) error {
		return s.GatherElastic(d.ib, d.db, d.pb, first, rows, e, x, d.lb)
	})
	want := make([]float64, 0, rows*pixels)
	moved := 0.0
	for r := range rows {
		src := int(d.perm[first+r])
		if labels[r] != int32(d.digits[src]) {
			t.Fatalf("%dx%d first=%d row %d: label %d, want %d", w, h, first, r, labels[r], d.digits[src])
		}
		noise := e.Noise(src)
		nf := make([]float64, len(noise))
		for i, v := range noise {
			nf[i] = float64(v)
		}
		dx, dy := cpuref.ElasticField(nf, w, h, float64(e.Sigma), float64(e.Alpha))
		for i := range dx {
			moved = max(moved, math.Abs(dx[i]), math.Abs(dy[i]))
		}
		dr := e.Draw(src)
		tr := cpuref.AffineTransform{Angle: float64(dr.Angle), Scale: float64(dr.Scale), DX: float64(dr.DX), DY: float64(dr.DY)}
		want = append(want, cpuref.Elastic(d.images[src*pixels:(src+1)*pixels], w, h, tr, dx, dy)...)
	}
	// A single pixel's field is one noise value times the blur's centre
	// weight squared over alpha's normalisation: too small to test.
	if moved < 0.2 && pixels > 1 {
		t.Errorf("%dx%d %+v: displacements at most %.3g pixels", w, h, e, moved)
	}
	for i, g := range got {
		if math.IsNaN(float64(g)) {
			t.Fatalf("%dx%d first=%d: X[%d] is NaN (never written?)", w, h, first, i)
		}
	}
	if err := cpuref.RelErrVec(got, want); !(err <= tolForward) {
		t.Errorf("gather_elastic %dx%d first=%d rows=%d %+v: relative error %.3g > %.0g", w, h, first, rows, e, err, tolForward)
	}
}

// TestElasticFields holds the device's displacement fields to
// cpuref.ElasticField of Go's noise at odd sizes, and its noise to Go's: at
// sigma 0.1 the blur's off-centre weight exp(-50) is far below the noise's
// step of 2^-15 and the gain rounds to 1, so the fields are the noise
// itself (but for 1e-22 where it is 0).
func TestElasticFields(t *testing.T) {
	s, ctx, q := newSet(t, kernels.GemmAuto)
	const n = 23
	for _, wh := range elasticSizes {
		w, h := wh[0], wh[1]
		d := newAugmentData(t, ctx, q, rand.New(rand.NewPCG(cltest.Seed(t), 18)), n, w*h)
		first, rows := 5, 7
		for _, e := range []kernels.Elastic{
			{Affine: kernels.Affine{Width: w, Height: h, Seed: 0x1234_5678_9abc, Epoch: 3}, Sigma: 0.1, Alpha: 1},
			{Affine: kernels.Affine{Width: w, Height: h, Seed: 7, Epoch: 1}, Sigma: 1.5, Alpha: 80},
			{Affine: kernels.Affine{Width: w, Height: h, Seed: 5, Epoch: 2}, Sigma: 10, Alpha: 300},
		} {
			out := cltest.Buffer(t, ctx, q, 2*rows*w*h, nil)
			if err := s.ElasticFields(d.pb, first, rows, e, out); err != nil {
				t.Fatal(err)
			}
			got := cltest.Read(t, q, out, 2*rows*w*h)
			var want []float64
			for r := range rows {
				noise := e.Noise(int(d.perm[first+r]))
				if e.Sigma < 1 {
					for i, v := range got[2*r*w*h : 2*(r+1)*w*h] {
						if math.Abs(float64(v-noise[i])) > 1e-20 {
							t.Fatalf("%dx%d row %d: device noise %d is %v, Go's %v", w, h, r, i, v, noise[i])
						}
					}
				}
				nf := make([]float64, len(noise))
				for i, v := range noise {
					nf[i] = float64(v)
				}
				dx, dy := cpuref.ElasticField(nf, w, h, float64(e.Sigma), float64(e.Alpha))
				want = append(append(want, dx...), dy...)
			}
			if err := cpuref.RelErrVec(got, want); !(err <= tolForward) {
				t.Errorf("elastic_fields %dx%d sigma %g: relative error %.3g > %.0g", w, h, e.Sigma, err, tolForward)
			}
		}
	}
}

// BenchmarkGather times a training step's batch of 128 MNIST-sized images
// built by gather and by gather_affine with the default ranges, queued b.N
// times and waited for once, as training runs them.
func BenchmarkGather(b *testing.B) {
	s, ctx, q := newSet(b, kernels.GemmAuto)
	const n, rows, side = 1000, 128, 28
	rng := rand.New(rand.NewPCG(1, 16))
	d := newAugmentData(b, ctx, q, rng, n, side*side)
	ib, db, pb, lb := d.ib, d.db, d.pb, d.lb
	x := cltest.Buffer(b, ctx, q, rows*side*side, nil)
	a := kernels.Affine{Width: side, Height: side, Seed: 1, Epoch: 1, Rotate: 12, Scale: 0.1, Shift: 0.1}
	el := kernels.Elastic{Affine: kernels.Affine{Width: side, Height: side, Seed: 1, Epoch: 1}, Sigma: 4, Alpha: 34}
	for _, c := range []struct {
		name string
		run  func(first int) error
	}{
		{"gather_128x784", func(first int) error { return s.Gather(ib, db, pb, first, rows, side*side, x, lb) }},
		{"gather_affine_128x784", func(first int) error { return s.GatherAffine(ib, db, pb, first, rows, a, x, lb) }},
		{"gather_elastic_128x784", func(first int) error { return s.GatherElastic(ib, db, pb, first, rows, el, x, lb) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if err := c.run(i % (n - rows)); err != nil {
					b.Fatal(err)
				}
			}
			if err := q.Finish(); err != nil {
				b.Fatal(err)
			}
		})
	}
}
