package web

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mnist-cl/mnist-cl/nn"
)

// nextEvent reads one event of a stream and decodes its state.
func nextEvent(t *testing.T, r *bufio.Reader) State {
	t.Helper()
	var st State
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("read event: %v", err)
		}
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			if err := json.Unmarshal([]byte(data), &st); err != nil {
				t.Fatal(err)
			}
		}
		if line == "\n" && st.Version > 0 || line == "\n" && st.Source != "" {
			return st
		}
	}
}

// TestEventsOutliveTimeouts keeps a stream open past the server's read and
// write timeouts, which count from the start of a request, and sees each
// update arrive; then Shutdown ends the stream rather than waiting for it.
func TestEventsOutliveTimeouts(t *testing.T) {
	b := NewBoard("live run")
	timeouts := Timeouts{ReadHeader: 100 * time.Millisecond, Read: 200 * time.Millisecond, Write: 200 * time.Millisecond, Idle: time.Second}
	s, err := New(Options{Board: b, Timeouts: timeouts, EventEvery: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	run, err := s.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.Get(run.URL + "api/events")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	r := bufio.NewReader(res.Body)
	if st := nextEvent(t, r); st.Status != Starting {
		t.Fatalf("first event: %+v", st)
	}
	for i := 1; i <= 3; i++ {
		time.Sleep(150 * time.Millisecond) // 450 ms in all: past both timeouts
		b.Epoch(nn.Epoch{Epoch: i})
		if st := nextEvent(t, r); len(st.Done) != i {
			t.Fatalf("event %d has %d epochs", i, len(st.Done))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	if err := run.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("Shutdown waited %v for the stream", took)
	}
}
