package web

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/color"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/mnist-cl/mnist-cl/cpuref"
	"github.com/mnist-cl/mnist-cl/internal/testutil"
	"github.com/mnist-cl/mnist-cl/nn"
)

// randomCheckpoint is a network of the given widths with weights scaled as
// He initialisation does, so activations stay in a useful range.
func randomCheckpoint(seed uint64, sizes ...int) *nn.Checkpoint {
	rng := rand.New(rand.NewPCG(seed, 1))
	L := len(sizes) - 1
	ck := &nn.Checkpoint{Config: nn.DefaultConfig(), Sizes: sizes, W: make([][]float32, L+1), B: make([][]float32, L+1)}
	for l := 1; l <= L; l++ {
		ck.W[l] = make([]float32, sizes[l-1]*sizes[l])
		scale := math.Sqrt(2 / float64(sizes[l-1]))
		for i := range ck.W[l] {
			ck.W[l][i] = float32(rng.NormFloat64() * scale)
		}
		ck.B[l] = make([]float32, sizes[l])
		for i := range ck.B[l] {
			ck.B[l][i] = float32(rng.NormFloat64() * 0.1)
		}
	}
	return ck
}

func newModel(t testing.TB, sizes ...int) *Model {
	t.Helper()
	m, err := NewModel(randomCheckpoint(1, sizes...))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestForwardMatchesCpuref holds the host's float32 forward pass to the
// float64 reference that the device kernels are checked against.
func TestForwardMatchesCpuref(t *testing.T) {
	for _, sizes := range [][]int{{784, 10}, {784, 64, 10}, {784, 96, 33, 10}} {
		ck := randomCheckpoint(7, sizes...)
		m, err := NewModel(ck)
		if err != nil {
			t.Fatal(err)
		}
		p, err := cpuref.FromFloat32(ck.Sizes, ck.W, ck.B)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(3, 3))
		for trial := range 20 {
			px := make([]uint8, 784)
			for i := range px {
				// Mostly background, as a digit is; the first trial all of it.
				if trial > 0 && rng.IntN(4) == 0 {
					px[i] = uint8(rng.IntN(256))
				}
			}
			x := make([]float64, 784)
			for i, v := range px {
				x[i] = float64(float32(v) * (1.0 / 255.0))
			}
			want := cpuref.Forward(p, mat.NewDense(1, 784, x)).Yp.RawRowView(0)
			got := m.Forward(px)
			for c := range want {
				if math.Abs(float64(got[c])-want[c]) > 1e-5 {
					t.Fatalf("%v trial %d class %d: host %v, cpuref %v", sizes, trial, c, got[c], want[c])
				}
			}
		}
	}
}

// TestNewModelRefusesOtherShapes: the page shows 784 inputs and 10 classes
// only, and a checkpoint whose slices do not match its sizes is refused.
func TestNewModelRefusesOtherShapes(t *testing.T) {
	for _, sizes := range [][]int{{100, 10}, {784, 32, 5}} {
		if _, err := NewModel(randomCheckpoint(1, sizes...)); err == nil {
			t.Errorf("%v: no error", sizes)
		}
	}
	ck := randomCheckpoint(1, 784, 16, 10)
	ck.W[2] = ck.W[2][:5]
	if _, err := NewModel(ck); err == nil {
		t.Error("short weights: no error")
	}
}

// TestBoardIntervals checks the loss per interval against the running
// epoch means the trainer reports, and the estimate of the time left.
func TestBoardIntervals(t *testing.T) {
	b := NewBoard("live run")
	b.Describe("dev", "784-10", 2, nil)
	b.Progress(nn.Progress{Epoch: 1, Step: 64, Steps: 90, Images: 640, Loss: 2.0, Elapsed: 640 * time.Millisecond})
	b.Progress(nn.Progress{Epoch: 1, Step: 90, Steps: 90, Images: 900, Loss: 1.5, Elapsed: 900 * time.Millisecond})
	b.Epoch(nn.Epoch{Epoch: 1, TrainLoss: 1.5, Seconds: 1})
	b.Progress(nn.Progress{Epoch: 2, Step: 64, Steps: 90, Images: 640, Loss: 0.5, Elapsed: 500 * time.Millisecond})
	st := b.State()
	want := []Interval{{64.0 / 90, 2}, {1, (1.5*900 - 2*640) / 260}, {1 + 64.0/90, 0.5}}
	if len(st.Intervals) != len(want) {
		t.Fatalf("intervals %v, want %v", st.Intervals, want)
	}
	for i, w := range want {
		g := st.Intervals[i]
		if math.Abs(g.Epoch-w.Epoch) > 1e-12 || math.Abs(g.Loss-w.Loss) > 1e-12 {
			t.Errorf("interval %d: %+v, want %+v", i, g, w)
		}
	}
	// One epoch of a second done, half a second into the last.
	if got := st.Now.SecondsLeft; math.Abs(got-0.5) > 1e-9 {
		t.Errorf("seconds left %v, want 0.5", got)
	}
	b.Finish(0.9, 0.3, nil)
	if st := b.State(); st.Status != Finished || st.Test.Accuracy != 0.9 || st.Now.SecondsLeft != 0 {
		t.Errorf("after Finish: %+v", st)
	}
	b.Stop("late")
	if st := b.State(); st.Status != Finished {
		t.Errorf("Stop after Finish changed the status to %s", st.Status)
	}
}

// TestThin keeps a long run's intervals bounded, in order, and ending at
// the latest.
func TestThin(t *testing.T) {
	b := NewBoard("live run")
	b.Describe("dev", "784-10", 1000, nil)
	for e := 1; e <= 700; e++ {
		b.Progress(nn.Progress{Epoch: e, Step: 1, Steps: 2, Images: 10, Loss: float64(e)})
		b.Progress(nn.Progress{Epoch: e, Step: 2, Steps: 2, Images: 20, Loss: float64(e)})
	}
	iv := b.State().Intervals
	if len(iv) > maxIntervals || len(iv) < maxIntervals/2 {
		t.Fatalf("%d intervals kept of 1400", len(iv))
	}
	for i := 1; i < len(iv); i++ {
		if iv[i].Epoch <= iv[i-1].Epoch {
			t.Fatalf("intervals out of order at %d: %v %v", i, iv[i-1], iv[i])
		}
	}
	if last := iv[len(iv)-1]; last.Epoch != 700 || last.Loss != 700 {
		t.Errorf("last interval %+v, want epoch 700 loss 700", last)
	}
}

// TestReadMetrics reads what train --metrics writes, and names the file in
// every error.
func TestReadMetrics(t *testing.T) {
	good := `{"epoch":1,"train_loss":0.5,"train_accuracy":0.8,"val_loss":0.4,"val_accuracy":0.85,"lr":0.1,"seconds":1,"images_per_sec":900}
{"epoch":2,"train_loss":0.3,"train_accuracy":0.9,"val_loss":0.35,"val_accuracy":0.88,"lr":0.05,"seconds":1,"images_per_sec":950}
{"test_accuracy":0.87,"test_loss":0.4}
`
	b, err := ReadMetrics(strings.NewReader(good), "m.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	st := b.State()
	if st.Status != Finished || st.Live || len(st.Done) != 2 || st.Epochs != 2 || st.Test.Accuracy != 0.87 || len(st.Intervals) != 2 {
		t.Errorf("state %+v", st)
	}
	// Since issue 12 a metrics file starts with the run record; files
	// written before it have none, and both read the same.
	record := `{"run_record":{"program":"mnist-cl","device":"cpu","args":["--epochs","2"],"seed":1}}` + "\n"
	b, err = ReadMetrics(strings.NewReader(record+good), "m.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if st := b.State(); st.Status != Finished || len(st.Done) != 2 || st.Test.Accuracy != 0.87 {
		t.Errorf("with a run record: state %+v", st)
	}
	for _, bad := range []string{"", "not json\n", `{"nothing":1}` + "\n", strings.Repeat("x", maxMetricsLine+1)} {
		if _, err := ReadMetrics(strings.NewReader(bad), "bad.jsonl"); err == nil || !strings.Contains(err.Error(), "bad.jsonl") {
			t.Errorf("%.30q: error %v, want one naming the file", bad, err)
		}
	}
}

// digitPNG is a canvas-like picture: a thick dark stroke on white paper.
func digitPNG(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	for y := h / 6; y < h*5/6; y++ {
		for x := w/2 - w/14; x < w/2+w/14; x++ {
			img.SetGray(x+(y-h/2)/5, y, color.Gray{})
		}
	}
	return testutil.EncodePNG(t, img)
}

// start runs a server on a free port of 127.0.0.1 until the test ends.
func start(t testing.TB, opt Options) string {
	t.Helper()
	s, err := New(opt)
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := r.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	return strings.TrimSuffix(r.URL, "/")
}

// TestPredict checks an answer's shape and that its probabilities are the
// forward pass of the pixels it says the network saw.
func TestPredict(t *testing.T) {
	m := newModel(t, 784, 32, 10)
	url := start(t, Options{Model: m})
	res, err := http.Post(url+"/api/predict", "image/png", bytes.NewReader(digitPNG(t, 280, 280)))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("status %d: %s", res.StatusCode, b)
	}
	var a answer
	if err := json.NewDecoder(res.Body).Decode(&a); err != nil {
		t.Fatal(err)
	}
	if len(a.Probabilities) != 10 || len(a.Pixels) != 784 {
		t.Fatalf("answer has %d probabilities and %d pixels", len(a.Probabilities), len(a.Pixels))
	}
	px := make([]uint8, 784)
	for i, v := range a.Pixels {
		px[i] = uint8(v)
	}
	want := m.Forward(px)
	for c := range want {
		if a.Probabilities[c] != want[c] {
			t.Fatalf("probabilities %v are not the forward pass of the pixels returned, %v", a.Probabilities, want)
		}
		if a.Probabilities[c] > a.Probabilities[a.Digit] {
			t.Fatalf("digit %d is not the arg-max of %v", a.Digit, a.Probabilities)
		}
	}
}

// TestSecurityHeaders checks every kind of answer, good and bad, for the
// headers that keep the pages from being framed, sniffed or scripted.
func TestSecurityHeaders(t *testing.T) {
	url := start(t, Options{Model: newModel(t, 784, 10)})
	for _, path := range []string{"/", "/draw", "/app.css", "/draw.js", "/nope", "/api/run"} {
		res, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		h := res.Header
		csp := h.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: headers %v", path, h)
		}
	}
}
