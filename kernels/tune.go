package kernels

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"
)

// UseTuning makes Gemm use t's block for each of its shapes (other shapes
// take blockFor's), building the programs it needs now.
func (s *Set) UseTuning(t Tuning) error {
	if s.kind != GemmRegister {
		return nil
	}
	tuned := map[Shape]Block{}
	for sh, b := range t {
		if !b.Valid() {
			return fmt.Errorf("tuning for %v: block %+v is not one gemm_reg.cl can build", sh, b)
		}
		if _, err := s.regKernels(b); err != nil {
			return err
		}
		if s.runsSparse(sh) {
			if _, err := s.sparseKernels(s.regs.sparseBlock(b)); err != nil {
				return err
			}
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

// SourcesHash is the SHA-256 (in hex, shortened to 16 digits) of every .cl
// file in the Set's source folder, by name in sorted order: the built-in
// sources or those of Options.Dir. Unlike TuneKey's hash it covers every
// kernel, so that a change to any of them (layers.cl's update, say) is a
// new one.
func (s *Set) SourcesHash() (string, error) {
	names, err := fs.Glob(s.src, "*.cl")
	if err != nil {
		return "", fmt.Errorf("list kernel sources: %w", err)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, name := range names {
		src, err := readSource(s.src, name)
		if err != nil {
			return "", err
		}
		// The name and length delimit each file, so moving text from one
		// file to the next changes the hash.
		fmt.Fprintf(h, "%s %d\n", name, len(src))
		io.WriteString(h, src)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// CheckKey identifies what a self-check of training on this Set vouches
// for: the device and its driver, the GEMM kind, its tile edge or register
// file and the blocks in use for shapes, and every kernel source. The same
// key means the same code on the same device and driver, so a step checked
// once need not be checked again; any change means checking again.
func (s *Set) CheckKey(shapes []Shape) (string, error) {
	src, err := s.SourcesHash()
	if err != nil {
		return "", err
	}
	gemm := fmt.Sprintf("%v GEMM, tile edge %d", s.kind, s.tileEdge)
	if s.kind == GemmRegister {
		var blocks []string
		for _, b := range s.BlocksFor(shapes) {
			blocks = append(blocks, b.Block)
		}
		gemm = fmt.Sprintf("%v GEMM, %d x %d floats, blocks %s", s.kind, s.regs.Count, s.regs.Width, strings.Join(blocks, "; "))
	}
	return fmt.Sprintf("%s | %s | %s | %s | %s", s.dev.Name, s.dev.Platform, s.dev.DriverVersion, gemm, src), nil
}

// Candidates are the blocks worth timing for sh as Gemm runs it on s: a
// SparseA shape too small to skip zeros here (runsSparse) runs dense, and
// so tries the dense product's blocks, not the cut sparse set.
func (s *Set) Candidates(sh Shape) []Block {
	if !s.runsSparse(sh) {
		sh.SparseA = false
	}
	return s.regs.Candidates(sh)
}
