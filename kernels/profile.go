package kernels

import (
	"fmt"
	"strings"
	"time"

	"github.com/mnist-cl/mnist-cl/cl"
)

// Launch is one kernel launch as Record saw it: the kernel, its sizes (M, N
// and K for a GEMM; the element or row count, and columns, for the others)
// and how long it ran on the device.
type Launch struct {
	Kernel   string
	M, N, K  int
	Duration time.Duration
}

type launched struct {
	kernel  string
	m, n, k int
	ev      *cl.Event
}

// enqueue launches k on the Set's queue; while recording, it keeps the
// launch's event.
func (s *Set) enqueue(k *cl.Kernel, global, local []int, m, n, kk int) error {
	if !s.record {
		return s.q.Enqueue(k, global, local)
	}
	ev, err := s.q.EnqueueEvent(k, global, local)
	if err != nil {
		return err
	}
	s.launches = append(s.launches, launched{k.Name(), m, n, kk, ev})
	return nil
}

// Record starts keeping every launch's event, for Launches, or stops and
// drops those kept. The queue must have been made with profiling for the
// durations to exist. Launches cost a little more while it is on (an event
// each), so it is for benchmarks, never for training.
func (s *Set) Record(on bool) {
	s.record = on
	if !on {
		for _, l := range s.launches {
			l.ev.Release()
		}
		s.launches = nil
	}
}

// Launches waits for the launches kept since Record (or the last call) and
// returns them in order with their device times.
func (s *Set) Launches() ([]Launch, error) {
	kept := s.launches
	s.launches = nil
	out := make([]Launch, 0, len(kept))
	var firstErr error
	for _, l := range kept {
		d, err := l.ev.Duration()
		l.ev.Release()
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("time launch of %s: %w", l.kernel, err)
		}
		out = append(out, Launch{Kernel: l.kernel, M: l.m, N: l.n, K: l.k, Duration: d})
	}
	return out, firstErr
}

// IsGEMM reports whether a launch of the named kernel is a product: every
// kernel of gemm_reg.cl and gemm_tiled.cl, and only those, is named gemm_.
func IsGEMM(kernel string) bool { return strings.HasPrefix(kernel, "gemm_") }
