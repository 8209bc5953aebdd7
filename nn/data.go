package nn

import (
	"fmt"

	"github.com/mnist-cl/mnist-cl/cl"
	"github.com/mnist-cl/mnist-cl/mnist"
)

// DeviceSet is a data set uploaded once as uint8 pixels and digits. Batches
// are gathered from it on the device, so training moves no images per step.
type DeviceSet struct {
	images, digits *cl.Buffer
	order          *cl.Buffer // 0..n-1, for evaluation in file order
	n, pixels      int
	width, height  int // of an image: Cols and Rows of the set
}

// Upload copies set to the device of r.
func (r *Runtime) Upload(set *mnist.Set) (*DeviceSet, error) {
	n, px := set.Len(), set.Pixels()
	if n == 0 {
		return nil, fmt.Errorf("upload: the set is empty")
	}
	d := &DeviceSet{n: n, pixels: px, width: set.Cols, height: set.Rows}
	err := r.fits(fmt.Sprintf("a set of %d images", n), uint64(n)*uint64(px))
	alloc := func(bytes int) *cl.Buffer {
		if err != nil {
			return nil
		}
		var b *cl.Buffer
		b, err = r.Context.NewBuffer(bytes)
		return b
	}
	d.images, d.digits, d.order = alloc(n*px), alloc(n), alloc(4*n)
	if err != nil {
		d.Release()
		return nil, fmt.Errorf("upload %d images to %s: %w", n, r.Device.Name, err)
	}
	order := make([]int32, n)
	for i := range order {
		order[i] = int32(i)
	}
	for _, e := range []error{
		r.Queue.WriteUint8(d.images, 0, set.Images),
		r.Queue.WriteUint8(d.digits, 0, set.Labels),
		r.Queue.WriteInt32(d.order, 0, order),
	} {
		if e != nil {
			d.Release()
			return nil, fmt.Errorf("upload %d images to %s: %w", n, r.Device.Name, e)
		}
	}
	return d, nil
}

// Len is the number of images.
func (d *DeviceSet) Len() int { return d.n }

// Release frees the device copies.
func (d *DeviceSet) Release() {
	d.images.Release()
	d.digits.Release()
	d.order.Release()
}

// Order is the identity permutation 0..Len()-1 on the device, for gathering
// batches in file order.
func (d *DeviceSet) Order() *cl.Buffer { return d.order }
