package web

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/mnist-cl/mnist-cl/nn"
)

// Board is what the dashboard shows of one training run. The training loop
// calls its methods as the run goes; the server reads it for every page and
// event stream. All methods are safe for concurrent use.
type Board struct {
	mu  sync.Mutex
	st  State
	now func() time.Time

	// changed is closed and replaced at every update, waking every event
	// stream at once without a list of subscribers to maintain.
	changed chan struct{}
	// json is st encoded, kept until the next update so that many
	// streams do not encode the same state each.
	json []byte

	// prev is the last progress report of the current epoch, so that the
	// loss of the steps since then can be told from the epoch's running
	// mean.
	prev nn.Progress
}

// State is a Board's content as the page receives it, in JSON.
type State struct {
	Version int    `json:"version"`
	Status  Status `json:"status"`
	// Source says where the figures come from: a live run or a file.
	Source string `json:"source"`
	// Live is true for a run in this process, false for one read from a
	// metrics file, whose losses are per epoch.
	Live     bool      `json:"live"`
	Device   string    `json:"device,omitempty"`
	Network  string    `json:"network,omitempty"`
	Settings []Setting `json:"settings,omitempty"`
	Epochs   int       `json:"epochs,omitempty"` // the run's planned number

	// Intervals is the training loss of each reporting interval, at its
	// end in epochs (1.5: half way through the second).
	Intervals []Interval `json:"intervals"`
	// Done has one entry per finished epoch, as --metrics writes them.
	Done []nn.Epoch `json:"done"`
	// Now is the latest report of the epoch in progress, if any.
	Now *Now `json:"now,omitempty"`
	// Test is the test set's result, once the run has finished.
	Test *Test `json:"test,omitempty"`
	// Message explains a stopped or failed run.
	Message string `json:"message,omitempty"`
}

// Status is where a run is.
type Status string

// The states of a run, in the order they come.
const (
	Starting Status = "starting" // building kernels, loading data
	Training Status = "training"
	Testing  Status = "testing"
	Finished Status = "finished"
	Stopped  Status = "stopped" // interrupted or failed; Message says which
)

// Setting is one line of the run's configuration.
type Setting struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Interval is the mean training loss over the steps of one report.
type Interval struct {
	Epoch float64 `json:"epoch"`
	Loss  float64 `json:"loss"`
}

// Now is the epoch in progress.
type Now struct {
	Epoch        int     `json:"epoch"`
	Step         int     `json:"step"`
	Steps        int     `json:"steps"`
	ImagesPerSec float64 `json:"images_per_sec"`
	// SecondsLeft estimates the time to the end of the last epoch, from
	// the epochs done so far or, during the first, from this one's pace.
	SecondsLeft float64 `json:"seconds_left"`
}

// Test is the run's result on the test set.
type Test struct {
	Accuracy float64 `json:"accuracy"`
	Loss     float64 `json:"loss"`
	// Confusion[true][predicted] counts test images; nil when unknown (a
	// metrics file does not hold it).
	Confusion [][]int `json:"confusion,omitempty"`
}

// NewBoard returns an empty board for a run described by source ("live run",
// a file name).
func NewBoard(source string) *Board {
	b := &Board{now: time.Now, changed: make(chan struct{})}
	b.st.Status, b.st.Source, b.st.Live = Starting, source, true
	b.st.Intervals, b.st.Done = []Interval{}, []nn.Epoch{}
	b.encode()
	return b
}

// update runs f on the state under the lock, then wakes the streams.
func (b *Board) update(f func(st *State)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f(&b.st)
	b.st.Version++
	b.encode()
	close(b.changed)
	b.changed = make(chan struct{})
}

// encode keeps the JSON of the state; it cannot fail for these types
// unless a figure is NaN or infinite, which is reported as a message
// rather than breaking the stream.
func (b *Board) encode() {
	j, err := json.Marshal(&b.st)
	if err != nil {
		j, _ = json.Marshal(State{Version: b.st.Version, Status: Stopped, Source: b.st.Source,
			Intervals: []Interval{}, Done: []nn.Epoch{}, Message: "the run's figures cannot be shown: " + err.Error()})
	}
	b.json = j
}

// snapshot returns the state's JSON and a channel closed at the next update.
func (b *Board) snapshot() ([]byte, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.json, b.changed
}

// State returns a copy of the board's state (slices shared: treat them as
// read-only).
func (b *Board) State() State {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.st
}

// Describe sets what the run is: the device, the network and the settings.
func (b *Board) Describe(device, network string, epochs int, settings []Setting) {
	b.update(func(st *State) {
		st.Device, st.Network, st.Epochs, st.Settings = device, network, epochs, settings
	})
}

// Progress records a report of the training loop (nn.Trainer.Progress).
// Its Loss is the mean over the epoch so far; the board keeps the mean over
// the steps since the previous report, which is what moves on a chart.
func (b *Board) Progress(p nn.Progress) {
	b.update(func(st *State) {
		st.Status = Training
		prev := b.prev
		if prev.Epoch != p.Epoch || p.Images <= prev.Images {
			prev = nn.Progress{Epoch: p.Epoch}
		}
		if n := p.Images - prev.Images; n > 0 && p.Steps > 0 {
			loss := (p.Loss*float64(p.Images) - prev.Loss*float64(prev.Images)) / float64(n)
			x := float64(p.Epoch-1) + float64(p.Step)/float64(p.Steps)
			st.Intervals = thin(append(st.Intervals, Interval{Epoch: x, Loss: loss}))
		}
		b.prev = p
		st.Now = &Now{Epoch: p.Epoch, Step: p.Step, Steps: p.Steps, ImagesPerSec: p.ImagesPerSec,
			SecondsLeft: secondsLeft(st, p)}
	})
}

// maxIntervals bounds the intervals a board keeps, and so the size of every
// event: a default run on MNIST reports about 100, a long run with small
// batches could report without end.
const maxIntervals = 1000

// thin halves a full list by merging neighbours into one interval at the
// later's end with their mean loss (the intervals hold about as many steps
// each), so the curve keeps its shape at half the resolution.
func thin(iv []Interval) []Interval {
	if len(iv) <= maxIntervals {
		return iv
	}
	out := iv[:0]
	for i := 0; i+1 < len(iv); i += 2 {
		out = append(out, Interval{Epoch: iv[i+1].Epoch, Loss: (iv[i].Loss + iv[i+1].Loss) / 2})
	}
	if len(iv)%2 == 1 {
		out = append(out, iv[len(iv)-1])
	}
	return out
}

// secondsLeft estimates the rest of the run: the mean epoch so far (with
// its validation) times the epochs still to run, less what the current one
// has taken.
func secondsLeft(st *State, p nn.Progress) float64 {
	per := 0.0
	if len(st.Done) > 0 {
		for _, e := range st.Done {
			per += e.Seconds
		}
		per /= float64(len(st.Done))
	} else if p.Step > 0 {
		per = p.Elapsed.Seconds() * float64(p.Steps) / float64(p.Step)
	}
	left := per*float64(st.Epochs-p.Epoch+1) - p.Elapsed.Seconds()
	return max(left, 0)
}

// Epoch records a finished epoch.
func (b *Board) Epoch(e nn.Epoch) {
	b.update(func(st *State) {
		st.Done = append(st.Done, e)
		b.prev = nn.Progress{}
		if st.Now != nil {
			st.Now.Step = st.Now.Steps
			per := 0.0
			for _, d := range st.Done {
				per += d.Seconds
			}
			per /= float64(len(st.Done))
			st.Now.SecondsLeft = per * float64(max(st.Epochs-e.Epoch, 0))
		}
	})
}

// Testing says the run is measuring the test set.
func (b *Board) Testing() {
	b.update(func(st *State) { st.Status = Testing })
}

// Finish records the test set's result; confusion may be nil.
func (b *Board) Finish(accuracy, loss float64, confusion [][]int) {
	b.update(func(st *State) {
		st.Status = Finished
		st.Test = &Test{Accuracy: accuracy, Loss: loss, Confusion: confusion}
		if st.Now != nil {
			st.Now.SecondsLeft = 0
		}
	})
}

// Stop records that the run ended without a result, and why.
func (b *Board) Stop(why string) {
	b.update(func(st *State) {
		if st.Status != Finished {
			st.Status, st.Message = Stopped, why
		}
	})
}

// maxMetricsLine bounds one line of a metrics file; an epoch's line is
// about 200 bytes.
const maxMetricsLine = 64 << 10

// ReadMetrics fills a board from the JSON lines that train --metrics
// writes: the run record ({"run_record": ...}, which the board does not
// show), one object per epoch, then one with test_accuracy and test_loss.
// A metrics file has no per-interval losses, so the loss chart shows each
// epoch's, and no confusion matrix.
func ReadMetrics(r io.Reader, source string) (*Board, error) {
	b := NewBoard(source)
	st := &b.st
	st.Live = false
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), maxMetricsLine)
	for n := 1; sc.Scan(); n++ {
		var line struct {
			nn.Epoch
			TestAccuracy *float64        `json:"test_accuracy"`
			TestLoss     *float64        `json:"test_loss"`
			RunRecord    json.RawMessage `json:"run_record"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return nil, fmt.Errorf("%s line %d: %w", source, n, err)
		}
		switch {
		case line.RunRecord != nil:
			// What produced the run; files written before it existed lack it.
		case line.TestAccuracy != nil:
			st.Test = &Test{Accuracy: *line.TestAccuracy}
			if line.TestLoss != nil {
				st.Test.Loss = *line.TestLoss
			}
		case line.Epoch.Epoch > 0:
			st.Done = append(st.Done, line.Epoch)
			st.Intervals = append(st.Intervals, Interval{Epoch: float64(line.Epoch.Epoch), Loss: line.TrainLoss})
		default:
			return nil, fmt.Errorf("%s line %d: neither an epoch nor the test result", source, n)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", source, err)
	}
	if len(st.Done) == 0 {
		return nil, fmt.Errorf("%s: no epochs in it (is it a file from train --metrics?)", source)
	}
	st.Epochs = st.Done[len(st.Done)-1].Epoch
	st.Status = Finished
	if st.Test == nil {
		st.Status, st.Message = Stopped, "the file has no test result: the run did not finish"
	}
	b.encode()
	return b, nil
}

// Settings lists the parts of cfg that shape a run, as the dashboard shows
// them.
func Settings(cfg nn.Config) []Setting {
	s := []Setting{
		{"epochs", fmt.Sprint(cfg.Epochs)},
		{"batch", fmt.Sprint(cfg.Batch)},
		{"optimizer", cfg.Optimizer()},
		{"learning rate", fmt.Sprintf("%g", cfg.LR)},
		{"schedule", string(cfg.Schedule)},
	}
	if cfg.Schedule == nn.StepDecay {
		s = append(s, Setting{"step", fmt.Sprintf("×%g every %d epochs", cfg.StepGamma, cfg.StepEvery)})
	}
	if cfg.Momentum != 0 {
		s = append(s, Setting{"momentum", fmt.Sprintf("%g", cfg.Momentum)})
	}
	return append(s,
		Setting{"weight decay", fmt.Sprintf("%g", cfg.WeightDecay)},
		Setting{"loss", string(cfg.Loss)},
		Setting{"seed", fmt.Sprint(cfg.Seed)})
}
