package onnx

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/advancedclimatesystems/gonnx"
	"gonum.org/v1/gonum/mat"
	"gorgonia.org/tensor"

	"github.com/mnist-cl/mnist-cl/cpuref"
)

// TestGonnxRunsModel has a Go ONNX runtime that shares no code with this
// package (gonnx decodes with its own generated onnx.pb.go and runs its own
// opset-13 Gemm, Relu and Softmax) run models of odd shapes, and holds its
// outputs to cpuref's float64 forward pass within the project's forward
// tolerance, 1e-5 relative. It is the check that runs without Python.
func TestGonnxRunsModel(t *testing.T) {
	for _, sizes := range [][]int{{784, 512, 256, 10}, {784, 1, 10}, {784, 3, 5, 7, 10}, {5, 1}} {
		t.Run(fmt.Sprint(sizes), func(t *testing.T) {
			m := randomMLP(sizes, 2)
			// Weights in [-4/In, 4/In), so that deep random networks keep
			// logits of order 1 rather than vanishing or saturating softmax.
			for i, l := range m.Layers {
				for j := range l.Weight {
					m.Layers[i].Weight[j] /= float32(l.In) / 4
				}
			}
			b, err := m.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			model, err := gonnx.NewModelFromBytes(b)
			if err != nil {
				t.Fatalf("gonnx refuses the model: %v", err)
			}
			const rows = 7
			rng := rand.New(rand.NewPCG(9, 9))
			x := make([]float32, rows*sizes[0])
			for i := range x {
				x[i] = float32(rng.IntN(256)) / 255 // pixels as training scales them
			}
			out, err := model.Run(gonnx.Tensors{Input: tensor.New(tensor.WithShape(rows, sizes[0]), tensor.WithBacking(x))})
			if err != nil {
				t.Fatalf("gonnx run: %v", err)
			}
			want := cpuref.Forward(reference(t, m), cpuref.Dense32(rows, sizes[0], x))
			logits := want.Z[len(want.Z)-1]
			if mat.Equal(logits.RowView(0), logits.RowView(1)) {
				// A dead ReLU layer: the comparison would check the biases only.
				t.Fatalf("the random network gives every image the same logits; pick another seed")
			}
			for name, w := range map[string]*mat.Dense{Probabilities: want.Yp, Logits: logits} {
				got, ok := out[name]
				if !ok {
					t.Fatalf("gonnx gave no %s: %v", name, out)
				}
				data, ok := got.Data().([]float32)
				if !ok || fmt.Sprint(got.Shape()) != fmt.Sprint(tensor.Shape{rows, sizes[len(sizes)-1]}) {
					t.Fatalf("%s: %T of shape %v", name, got.Data(), got.Shape())
				}
				e := cpuref.RelErr(data, w)
				t.Logf("%s: relative error %.2g against cpuref", name, e)
				if !(e <= 1e-5) {
					t.Errorf("%s: relative error %.3g against cpuref, want <= 1e-5", name, e)
				}
			}
		})
	}
}

// reference is m's parameters in cpuref's layout: W[l] is [in, out], the
// transpose of the [out, in] weight the model stores.
func reference(t *testing.T, m *MLP) *cpuref.Params {
	t.Helper()
	sizes := []int{m.Layers[0].In}
	w, b := [][]float32{nil}, [][]float32{nil}
	for _, l := range m.Layers {
		wt := make([]float32, len(l.Weight))
		for o := range l.Out {
			for i := range l.In {
				wt[i*l.Out+o] = l.Weight[o*l.In+i]
			}
		}
		sizes = append(sizes, l.Out)
		w, b = append(w, wt), append(b, l.Bias)
	}
	p, err := cpuref.FromFloat32(sizes, w, b)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
