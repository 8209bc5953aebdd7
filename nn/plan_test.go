package nn

import (
	"slices"
	"testing"

	"github.com/mnist-cl/mnist-cl/kernels"
)

// TestPlanOperands checks that every launch names only tensors of its plan
// and that a GEMM's operands have the sizes its form asks for, at the
// plan's batch and at a short last batch.
func TestPlanOperands(t *testing.T) {
	for _, sizes := range [][]int{{784, 512, 256, 10}, {4, 3, 2}, {5, 1}, {7, 2, 9, 3, 4}} {
		p, err := NewPlan(sizes, 6, MSE)
		if err != nil {
			t.Fatal(err)
		}
		names := map[string]bool{}
		for _, tn := range p.Tensors {
			if names[tn.Name] {
				t.Errorf("%v: tensor %s declared twice", sizes, tn.Name)
			}
			names[tn.Name] = true
		}
		for _, l := range p.Launches {
			for _, n := range slices.Concat([]string{l.A, l.B, l.C, l.Aux, l.ColSum}, l.Reads, l.Writes) {
				if n != "" && !names[n] {
					t.Errorf("%v: %s names %q, which the plan lacks", sizes, l.Product, n)
				}
			}
			if l.Kernel != KernelGemm {
				continue
			}
			for _, rows := range []int{6, 1} {
				m, n, k := l.Dims(rows)
				a, b, c := p.elems(l.A, rows), p.elems(l.B, rows), p.elems(l.C, rows)
				if a != m*k || b != k*n || c != m*n {
					t.Errorf("%v rows %d: %s is %v m=%d n=%d k=%d but A, B, C have %d, %d, %d elements", sizes, rows, l.Product, l.Form, m, n, k, a, b, c)
				}
			}
		}
		if got, want := len(p.Gemms()), 3*(len(sizes)-1)-1; got != want {
			t.Errorf("%v: %d GEMMs, want %d", sizes, got, want)
		}
	}
}

func (p *Plan) elems(name string, rows int) int {
	t, _ := p.Tensor(name)
	return t.Elems(rows)
}

// TestShapesOfDefaultNetwork pins the GEMMs the tuner measures for the
// default network: per layer the forward product, dW = Z^T dZ and, above the
// first layer, dZ = dZ W^T (an A B^T, which gemm_reg_nt runs).
func TestShapesOfDefaultNetwork(t *testing.T) {
	want := []kernels.Shape{
		{M: 128, N: 512, K: 784, SparseA: true}, {M: 128, N: 256, K: 512}, {M: 128, N: 10, K: 256},
		{TransB: true, M: 128, N: 256, K: 10}, {TransA: true, M: 256, N: 10, K: 128},
		{TransB: true, M: 128, N: 512, K: 256}, {TransA: true, M: 512, N: 256, K: 128},
		{TransA: true, M: 784, N: 512, K: 128, SparseA: true},
	}
	if got := Shapes([]int{784, 512, 256, 10}, 128); !slices.Equal(got, want) {
		t.Errorf("Shapes = %v, want %v", got, want)
	}
}
