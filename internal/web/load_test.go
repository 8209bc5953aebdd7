package web

import (
	"bytes"
	"io"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// p99Bound is what TestLoad allows the slowest 1% of 200 simultaneous
// predictions to take on the default network. Each one is a PNG decode,
// internal/digit's preparation and a forward pass, a few milliseconds of one
// core; 200 at once on two shared cores queue behind each other, so the
// last wait about 200 x 3 ms / 2 = 0.3 s. The bound leaves ten times that
// for a loaded CI machine.
const p99Bound = 3 * time.Second

// TestLoad sends rounds of 200 concurrent predictions to the default
// 784-512-256-10 network: every one must be answered, the p99 latency stay
// within p99Bound, and the heap in use after a collection not grow from
// round to round.
func TestLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("200 concurrent requests, five times")
	}
	url := start(t, Options{Model: newModel(t, 784, 512, 256, 10)})
	body := digitPNG(t, 280, 280)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 200}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	const n, rounds = 200, 5
	var heap []uint64
	for round := range rounds {
		lat := make([]time.Duration, n)
		errs := make(chan error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				start := time.Now()
				res, err := client.Post(url+"/api/predict", "image/png", bytes.NewReader(body))
				if err != nil {
					errs <- err
					return
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				lat[i] = time.Since(start)
				if res.StatusCode != http.StatusOK {
					errs <- &statusError{res.StatusCode}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("round %d: %v", round, err)
		}
		slices.Sort(lat)
		p50, p99 := lat[n/2], lat[n*99/100-1]
		t.Logf("round %d: p50 %v, p99 %v, max %v", round, p50.Round(time.Millisecond), p99.Round(time.Millisecond), lat[n-1].Round(time.Millisecond))
		if p99 > p99Bound {
			t.Errorf("round %d: p99 %v over %v", round, p99, p99Bound)
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		heap = append(heap, ms.HeapInuse)
	}
	t.Logf("heap in use after each round (MiB): %v", mib(heap))
	// The first round sizes the pools of both ends; after it, 200 requests
	// more must not leave memory behind. 4 MiB is below what one round
	// would leak if each request kept its 28x28 answer and decode buffers.
	if grown := int64(heap[rounds-1]) - int64(heap[1]); grown > 4<<20 {
		t.Errorf("heap in use grew by %d KiB from round 2 to %d", grown>>10, rounds)
	}
}

type statusError struct{ code int }

// Error names the status.
func (e *statusError) Error() string { return http.StatusText(e.code) }

func mib(b []uint64) []float64 {
	out := make([]float64, len(b))
	for i, v := range b {
		out[i] = float64(v) / (1 << 20)
	}
	return out
}
