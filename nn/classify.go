package nn

import (
	"fmt"
	"math"

	"github.com/mnist-cl/mnist-cl/mnist"
)

// Outputs are a network's answers for a set of images.
type Outputs struct {
	Classes int
	Probs   []float32 // row-major images x Classes: softmax(Z3)
	// Loss is each image's loss against its label (when labels were given).
	Loss []float32
}

// Pred returns the arg-max of row i (the first of equal maxima, as the
// kernels count hits).
func (o *Outputs) Pred(i int) int {
	row := o.Probs[i*o.Classes : (i+1)*o.Classes]
	best := 0
	for c, p := range row {
		if p > row[best] {
			best = c
		}
	}
	return best
}

// Classify runs the forward pass over a set, uploaded to the device and
// gathered in batches of the network's size exactly as training evaluates
// (so eval's accuracy is train's to the last image). Loss is each image's
// loss against set.Labels.
func (n *Network) Classify(set *mnist.Set) (*Outputs, error) {
	if set.Pixels() != n.sizes[0] {
		return nil, fmt.Errorf("classify: images of %d pixels for a network of %d inputs", set.Pixels(), n.sizes[0])
	}
	d, err := n.rt.Upload(set)
	if err != nil {
		return nil, err
	}
	defer d.Release()
	count, classes := set.Len(), n.sizes[n.Layers()]
	out := &Outputs{Classes: classes, Probs: make([]float32, count*classes), Loss: make([]float32, count)}
	for first := 0; first < count; first += n.maxBatch {
		rows := min(n.maxBatch, count-first)
		if err := n.GatherBatch(d, d.order, first, rows); err != nil {
			return nil, err
		}
		if err := n.Forward(rows); err != nil {
			return nil, err
		}
		if err := n.rt.Queue.ReadFloat32(n.Yp, 0, out.Probs[first*classes:(first+rows)*classes]); err != nil {
			return nil, fmt.Errorf("read Yp: %w", err)
		}
		if err := n.rt.Queue.ReadFloat32(n.rowLoss, 0, out.Loss[first:first+rows]); err != nil {
			return nil, fmt.Errorf("read row losses: %w", err)
		}
	}
	for i, p := range out.Probs {
		if math.IsNaN(float64(p)) {
			return nil, fmt.Errorf("classify: image %d has a NaN probability (a corrupt model?)", i/classes)
		}
	}
	return out, nil
}
