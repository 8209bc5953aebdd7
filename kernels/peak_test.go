package kernels_test

import (
	"testing"

	"github.com/mnist-cl/mnist-cl/kernels"
)

// TestPeakFMA checks that the peak kernel builds and measures something
// positive and finite on both register files' chain counts; its speed is
// bench's business.
func TestPeakFMA(t *testing.T) {
	if testing.Short() {
		t.Skip("times a loop of millions of fmas per work-item: too long to simulate")
	}
	for _, regs := range []kernels.Registers{{}, avx2} {
		s, _, _ := newSetOpts(t, kernels.Options{Gemm: kernels.GemmRegister, Registers: regs})
		g, err := s.PeakFMA()
		if err != nil {
			t.Fatal(err)
		}
		if !(g > 0 && g < 1e7) {
			t.Fatalf("registers %+v: peak %v GFLOP/s", regs, g)
		}
		t.Logf("registers %+v: %.1f GFLOP/s", s.Registers(), g)
	}
}
