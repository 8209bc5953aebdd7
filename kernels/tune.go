package kernels

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
)

// UseTuning makes Gemm use t's block for each of its shapes (other shapes
// take blockFor's), building the programs it needs now.
func (s *Set) UseTuning(t Tuning) error {
	if s.kind != GemmRegister {
		return nil
	}
	tuned := map[Shape]Block{}
	for sh, b := range t {
		if !b.valid() {
			return fmt.Errorf("tuning for %v: block %+v is not one gemm_reg.cl can build", sh, b)
		}
		if _, err := s.regKernels(b); err != nil {
			return err
		}
		tuned[sh] = b
	}
	s.tuned = tuned
	return nil
}

// TuneKey identifies what a tuning was measured on: the device, its driver,
// the register file the blocks were sized for and the GEMM's source. Any
// change means measuring again.
func (s *Set) TuneKey() (string, error) {
	h := sha256.New()
	for _, f := range []string{"sums.cl", "gemm_reg.cl"} {
		src, err := readSource(s.src, f)
		if err != nil {
			return "", err
		}
		io.WriteString(h, src)
	}
	return fmt.Sprintf("%s | %s | %s | %d x %d floats | %s", s.dev.Name, s.dev.Platform, s.dev.DriverVersion,
		s.regs.Count, s.regs.Width, hex.EncodeToString(h.Sum(nil))[:16]), nil
}
