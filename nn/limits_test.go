package nn

import (
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/mnist-cl/mnist-cl/cl"
	"github.com/mnist-cl/mnist-cl/internal/cltest"
	"github.com/mnist-cl/mnist-cl/kernels"
	"github.com/mnist-cl/mnist-cl/mnist"
)

// TestNeedHandCount checks Need against a count done by hand for a 4-3-2
// network at batch 5 on sets of 7, 3 and 2 images of 4 pixels.
func TestNeedHandCount(t *testing.T) {
	const (
		data     = (7*4 + 7 + 4*7) + (3*4 + 3 + 4*3) + (2*4 + 2 + 4*2) // pixels, labels, order: 63 + 27 + 18
		stats    = 4 * 2 * 2                                           // two slots: ceil(7/5) batches
		shuffle  = 4 * 7                                               // int32 per training image
		x        = 4 * 5 * 4                                           // X: 5 rows of 4 inputs
		layer1   = 4 * (12 + 3 + 12 + 3 + 5*3 + 5*3)                   // W1 b1 dW1 db1 Z1 dZ1
		layer2   = 4 * (6 + 2 + 6 + 2 + 5*2 + 5*2)                     // W2 b2 dW2 db2 Z2 dZ2
		rows     = 4*5*2 + 4*5 + 4*5 + 4*2 + 4*5                       // Yp, row losses, row flags, batch sums, labels
		velocity = 4 * (12 + 3 + 6 + 2)                                // VW1 VB1 VW2 VB2
		terms    = 4 * (5*4 + 5)                                       // X's term lists: rows x inputs, their lengths
		scratch  = 4*3*2 + terms                                       // W2^T for dZ1 = dZ2 W2^T, and the lists
	)
	sizes := []int{4, 3, 2}
	cases := []struct {
		momentum       bool
		total, buffers int
	}{
		{true, data + stats + shuffle + x + layer1 + layer2 + rows + velocity + scratch, 9 + 2 + 1 + 12 + 5 + 4 + 2},
		{false, data + stats + shuffle + x + layer1 + layer2 + rows + scratch, 9 + 2 + 1 + 12 + 5 + 2},
	}
	for _, c := range cases {
		m := Need(sizes, 5, 7, 3, 2, 4, c.momentum)
		if m.Total != uint64(c.total) || m.Buffers != c.buffers || m.Batch != 5 {
			t.Errorf("momentum %v: Need = %d bytes in %d buffers at batch %d; counted %d bytes in %d buffers at batch 5",
				c.momentum, m.Total, m.Buffers, m.Batch, c.total, c.buffers)
		}
		if m.Largest != terms || m.LargestName != "GEMM term lists" {
			t.Errorf("momentum %v: largest %s of %d bytes, want the term lists' %d", c.momentum, m.LargestName, m.Largest, terms)
		}
		if m.Scratch != scratch || m.ScratchBuffers != 2 || m.Unindexable != "" {
			t.Errorf("momentum %v: scratch %d (want %d), unindexable %q", c.momentum, m.Scratch, scratch, m.Unindexable)
		}
	}
	// The network alone, as verify, eval and predict build it.
	if m := NeedNetwork(sizes, 5, true); m.Total != x+layer1+layer2+rows+velocity+scratch || m.Buffers != 1+12+5+4+2 {
		t.Errorf("NeedNetwork = %d bytes in %d buffers; counted %d in %d", m.Total, m.Buffers, x+layer1+layer2+rows+velocity+scratch, 24)
	}
	if m := NeedNetwork([]int{784, 4, 10}, 16000000, false); !strings.Contains(m.Unindexable, "16000000 x 784") {
		t.Errorf("batch 16000000: unindexable %q", m.Unindexable)
	}
	// A batch above the largest set allocates only the rows that can be used.
	if m := Need(sizes, 1000, 7, 3, 2, 4, false); m.Batch != 7 {
		t.Errorf("batch 1000 on 7 images: Batch %d, want 7", m.Batch)
	}
	// One weight layer: no A B^T product, no B^T scratch; the term lists.
	if m := Need([]int{4, 2}, 5, 7, 3, 2, 4, false); m.Scratch != terms || m.ScratchBuffers != 1 {
		t.Errorf("4-2 network: scratch %d in %d buffers, want %d in 1", m.Scratch, m.ScratchBuffers, terms)
	}
	// The largest widths and batch Validate allows do not overflow the count.
	big := Need([]int{MaxSize, MaxSize, MaxSize}, MaxSize, 1<<20, 1<<20, 1<<20, MaxSize, true)
	if big.Largest != 4*MaxSize*MaxSize || big.Total < 7*big.Largest || big.Total > 1<<62 || big.Unindexable == "" {
		t.Errorf("widths 2^24: largest %d, total %d, unindexable %q", big.Largest, big.Total, big.Unindexable)
	}
}

// TestNeedMatchesTrainer builds real Trainers and adds up the buffers they
// hold: Need must count exactly those. The network's buffers are the Plan's
// tensors on both sides; what this guards is the Trainer's own (the data
// sets, the shuffle, the statistics) and the batch both take from
// StepBatch. (The GEMM scratch lives in the kernels and is left out.)
func TestNeedMatchesTrainer(t *testing.T) {
	rt := openLimits(t)
	split := SmallSplit(t)
	for _, cfg := range []Config{
		{Hidden: []int{37, 13}, Batch: 50, LR: 0.1, Epochs: 1, Seed: 1},
		{Hidden: []int{16}, Batch: 5000, LR: 0.1, Epochs: 1, Seed: 1, Momentum: 0.9, Nesterov: true},
		{Hidden: []int{5, 17, 3}, Batch: 33, LR: 0.1, Epochs: 1, Seed: 1, Momentum: 0.5},
	} {
		tr, err := NewTrainer(rt, split, cfg)
		if err != nil {
			t.Fatal(err)
		}
		bufs := append([]*cl.Buffer(nil), tr.Net.all...)
		for _, d := range []*DeviceSet{tr.train, tr.val, tr.test} {
			bufs = append(bufs, d.images, d.digits, d.order)
		}
		bufs = append(bufs, tr.perm, tr.stats)
		var total uint64
		for _, b := range bufs {
			total += uint64(b.Size())
		}
		tr.Release()
		m := NeedFor(split, cfg)
		if got, want := total, m.Total-m.Scratch; got != want || len(bufs) != m.Buffers-m.ScratchBuffers {
			t.Errorf("hidden %v batch %d momentum %v: the Trainer holds %d bytes in %d buffers, Need counts %d bytes in %d (and the scratch)",
				cfg.Hidden, cfg.Batch, cfg.Momentum, got, len(bufs), want, m.Buffers-m.ScratchBuffers)
		}
	}
}

// TestCheckFits lowers the device's reported memory just below what a run
// needs: NewTrainer must refuse with both numbers before allocating, and
// accept the run at exactly its need.
func TestCheckFits(t *testing.T) {
	rt := openLimits(t)
	split := SmallSplit(t)
	cfg := Config{Hidden: []int{64}, Batch: 32, LR: 0.1, Epochs: 1, Seed: 1}
	m := NeedFor(split, cfg)
	dev := rt.Device
	t.Cleanup(func() { rt.Device = dev })
	t.Logf("784-64-10 at batch 32 on 900/100/500 images: %d bytes in %d buffers, largest %s of %d bytes",
		m.Total, m.Buffers, m.LargestName, m.Largest)

	rt.Device.GlobalMem = m.Total - 1
	_, err := NewTrainer(rt, split, cfg)
	if err == nil {
		t.Fatalf("global memory %d bytes for a run of %d: NewTrainer accepted it", m.Total-1, m.Total)
	}
	for _, want := range []string{"network 784-64-10 at batch 32", "needs " + FormatBytes(m.Total), "has " + FormatBytes(m.Total-1), "largest allocation " + FormatBytes(dev.MaxAlloc)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	rt.Device.GlobalMem = m.Total
	tr, err := NewTrainer(rt, split, cfg)
	if err != nil {
		t.Fatalf("global memory of exactly the need: %v", err)
	}
	tr.Release()

	rt.Device.GlobalMem, rt.Device.MaxAlloc = dev.GlobalMem, m.Largest-1
	_, err = NewTrainer(rt, split, cfg)
	if err == nil || !strings.Contains(err.Error(), FormatBytes(m.Largest)+" in its largest buffer ("+m.LargestName+")") ||
		!strings.Contains(err.Error(), "largest allocation "+FormatBytes(m.Largest-1)) {
		t.Errorf("largest allocation %d for a buffer of %d: %v", m.Largest-1, m.Largest, err)
	}

	// The example on the real device: refused with both numbers and
	// the index limit, in one line.
	rt.Device = dev
	huge := Config{Hidden: []int{100000, 100000}, Batch: 128, LR: 0.1, Epochs: 1, Seed: 1, Momentum: 0.9}
	_, err = NewTrainer(rt, split, huge)
	t.Logf("hidden 100000,100000: %v", err)
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "GiB of device memory") ||
		!strings.Contains(err.Error(), dev.Name+" has "+FormatBytes(dev.GlobalMem)) || !strings.Contains(err.Error(), "2^31-1") {
		t.Errorf("hidden 100000,100000: %v", err)
	}
}

func openLimits(t *testing.T) *Runtime {
	t.Helper()
	rt, err := Open(cltest.Device(t), kernels.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Close)
	return rt
}

// SmallSplit loads testdata/mnist-small (900/100/500 images), for the tests
// of this package inside and outside it.
func SmallSplit(t testing.TB) *mnist.Split {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	s, err := mnist.Load(filepath.Join(filepath.Dir(file), "..", "testdata", "mnist-small"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
