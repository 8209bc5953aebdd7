package tuner

import (
	"math/rand/v2"
	"testing"

	"github.com/mnist-cl/mnist-cl/internal/cltest"
	"github.com/mnist-cl/mnist-cl/kernels"
)

// TestConfirmTimesEveryCandidateAgain checks the second pass: every
// candidate is timed again, whatever its first time, and keeps the better
// of its two.
func TestConfirmTimesEveryCandidateAgain(t *testing.T) {
	ctx, q := cltest.Queue(t)
	s, err := kernels.New(ctx, q, kernels.Options{Gemm: kernels.GemmRegister})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	sh := kernels.Shape{M: 64, N: 48, K: 40}
	o, err := newOperands(s, sh, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	defer o.release()
	cands := s.Candidates(sh)
	if len(cands) < 3 {
		t.Fatalf("%v: %d candidates, want several", sh, len(cands))
	}
	const slow, fast = 1e9, 1e-9 // no product takes either
	timed := make([]Timed, len(cands))
	for i, b := range cands {
		timed[i] = Timed{b, slow}
	}
	timed[1].Micros = fast
	if err := confirm(t.Context(), s, sh, o, timed); err != nil {
		t.Fatal(err)
	}
	for i, c := range timed {
		switch {
		case i == 1 && c.Micros != fast:
			t.Errorf("%v: %g us, want its first and better time %g kept", c.Block, c.Micros, fast)
		case i != 1 && !(c.Micros > 0 && c.Micros < slow):
			t.Errorf("%v: %g us after confirm, want it timed again", c.Block, c.Micros)
		}
	}
}
