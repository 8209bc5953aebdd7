package kernels

import "fmt"

// Program is one OpenCL program a Set built: its source file and the build
// options it was built with.
type Program struct {
	File    string `json:"file"`
	Options string `json:"options"`
}

// Programs lists the programs built so far, in the order they were built:
// what a run record names as the build options in use.
func (s *Set) Programs() []Program {
	return append([]Program(nil), s.built...)
}

// TileEdge is the edge of gemm_tiled's and col_sum's square work-groups.
func (s *Set) TileEdge() int { return s.tileEdge }

// ShapeBlock is the register block Gemm uses for one shape, both as text.
type ShapeBlock struct {
	Shape string `json:"shape"`
	Block string `json:"block"`
	// Tuned is true where the block came from a tuning (the shape's own or
	// the nearest tuned shape's), false where it is the default.
	Tuned bool `json:"tuned"`
}

// BlocksFor reports the register block each of shapes runs with now: its
// tuned one, the nearest tuned shape's, or the default for its width. The
// tiled GEMM has no blocks, and gets nil.
func (s *Set) BlocksFor(shapes []Shape) []ShapeBlock {
	if s.kind != GemmRegister {
		return nil
	}
	var out []ShapeBlock
	seen := map[Shape]bool{}
	for _, sh := range shapes {
		if seen[sh] {
			continue
		}
		seen[sh] = true
		_, own := s.tuned[sh]
		_, near := nearest(s.tuned, sh)
		out = append(out, ShapeBlock{Shape: sh.String(), Block: fmt.Sprintf("%v", s.blockFor(sh)), Tuned: own || near})
	}
	return out
}
