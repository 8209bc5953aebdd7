package mnist

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/mnist-cl/mnist-cl/internal/atomicfile"
)

// The four files of MNIST, by their original names; Fashion-MNIST and other
// drop-in sets use the same ones.
const (
	TrainImagesFile = "train-images-idx3-ubyte.gz"
	TrainLabelsFile = "train-labels-idx1-ubyte.gz"
	TestImagesFile  = "t10k-images-idx3-ubyte.gz"
	TestLabelsFile  = "t10k-labels-idx1-ubyte.gz"
)

// Set is a set of images with their labels. Images holds Len()*Pixels()
// bytes: one image per row, each row-major Rows x Cols, 0 for background and
// 255 for ink. Labels[i] is the digit of image i.
type Set struct {
	Images     []uint8
	Labels     []uint8
	Rows, Cols int
}

// Len is the number of images.
func (s *Set) Len() int { return len(s.Labels) }

// Pixels is the number of bytes of one image, the network's input width.
func (s *Set) Pixels() int { return s.Rows * s.Cols }

// Slice returns images from up to, but not including, to. It shares memory
// with s; its capacity ends at to, so appending to the slice cannot overwrite
// the images after it. Out-of-range bounds panic, as slicing does.
func (s *Set) Slice(from, to int) *Set {
	px := s.Pixels()
	return &Set{
		Images: s.Images[from*px : to*px : to*px],
		Labels: s.Labels[from:to:to],
		Rows:   s.Rows,
		Cols:   s.Cols,
	}
}

// unitScale[p] is p/255: the same float32 the device computes for a pixel.
var unitScale = func() (t [256]float32) {
	for p := range t {
		t[p] = float32(p) / 255
	}
	return t
}()

// ScaleBatch writes the images idx[0], idx[1], ... to dst as float32 in
// [0, 1], one row of Pixels() values per image, for host-side references and
// checks; training itself scales on the device. It panics, as slicing would,
// if dst holds fewer than len(idx)*Pixels() values or an index is out of
// range.
func (s *Set) ScaleBatch(idx []int, dst []float32) {
	px := s.Pixels()
	if len(dst) < len(idx)*px {
		panic(fmt.Sprintf("mnist: ScaleBatch: dst holds %d values, want %d images of %d pixels", len(dst), len(idx), px))
	}
	for b, i := range idx {
		row := dst[b*px : (b+1)*px]
		for j, p := range s.Images[i*px : (i+1)*px] {
			row[j] = unitScale[p]
		}
	}
}

// Batch is every image of the set scaled to [0, 1] (as ScaleBatch) and its
// label as int32: the batch nn.Network.SetBatch takes.
func (s *Set) Batch() ([]float32, []int32) {
	idx := make([]int, s.Len())
	for i := range idx {
		idx[i] = i
	}
	x := make([]float32, s.Len()*s.Pixels())
	s.ScaleBatch(idx, x)
	labels := make([]int32, s.Len())
	for i, y := range s.Labels {
		labels[i] = int32(y)
	}
	return x, labels
}

// Split is the three parts the lecture uses: Train and Validation come from
// the training file and share its memory, Test is the test file.
type Split struct {
	Train, Validation, Test *Set
}

// ValidationLen is how many images at the end of a training file of n images
// are held out for validation: 5,000 as in the lecture (55,000 train / 5,000
// validation) when n >= 10,000, and n/10 for the small subsets tests use, so
// that a 1,000-image file still splits 900/100.
func ValidationLen(n int) int {
	if n >= 10000 {
		return 5000
	}
	return n / 10
}

// ReadSet reads an images file and a labels file, each raw or gzipped, and
// checks that they hold the same number of images.
func ReadSet(imagesPath, labelsPath string) (*Set, error) {
	type images struct {
		data          []uint8
		n, rows, cols int
	}
	im, err := atomicfile.Read(imagesPath, func(r io.Reader) (im images, err error) {
		im.data, im.n, im.rows, im.cols, err = ReadImages(r)
		return im, err
	})
	if err != nil {
		return nil, err
	}
	labels, err := atomicfile.Read(labelsPath, ReadLabels)
	if err != nil {
		return nil, err
	}
	if len(labels) != im.n {
		return nil, fmt.Errorf("read %s: %d labels, but %s holds %d images", labelsPath, len(labels), imagesPath, im.n)
	}
	return &Set{Images: im.data, Labels: labels, Rows: im.rows, Cols: im.cols}, nil
}

// Load reads the four standard files from dir as they are: nothing is
// checked against a checksum and nothing is written to dir, so any data set
// in the same format (Fashion-MNIST, for one) works. For each file the
// gzipped name is used if present, else the same name without ".gz"; either
// may be raw or gzipped. The split follows ValidationLen.
func Load(dir string) (*Split, error) {
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("load %s: %w", dir, atomicfile.WithoutPath(err))
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("load %s: not a folder", dir)
	}
	var paths [4]string
	for i, name := range [4]string{TrainImagesFile, TrainLabelsFile, TestImagesFile, TestLabelsFile} {
		p, err := findFile(dir, name)
		if err != nil {
			return nil, err
		}
		paths[i] = p
	}
	train, err := ReadSet(paths[0], paths[1])
	if err != nil {
		return nil, err
	}
	test, err := ReadSet(paths[2], paths[3])
	if err != nil {
		return nil, err
	}
	if test.Rows != train.Rows || test.Cols != train.Cols {
		return nil, fmt.Errorf("load %s: test images are %dx%d, training images %dx%d", dir, test.Rows, test.Cols, train.Rows, train.Cols)
	}
	return newSplit(dir, train, test)
}

// findFile returns the path of name in dir, or of name without ".gz". It
// accepts only regular files: a pipe or device would block the read with no
// way to interrupt it, and a folder is a mistake worth naming.
func findFile(dir, name string) (string, error) {
	gz := filepath.Join(dir, name)
	fi, err := os.Stat(gz)
	path := gz
	if errors.Is(err, fs.ErrNotExist) {
		path = strings.TrimSuffix(gz, ".gz")
		fi, err = os.Stat(path)
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("load %s: neither %s nor %s is there", dir, name, strings.TrimSuffix(name, ".gz"))
		}
	}
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, atomicfile.WithoutPath(err))
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("read %s: not a regular file", path)
	}
	return path, nil
}

// newSplit holds out the end of train for validation.
func newSplit(dir string, train, test *Set) (*Split, error) {
	n := train.Len()
	v := ValidationLen(n)
	if v == 0 {
		return nil, fmt.Errorf("load %s: %d training images are too few to hold out a validation set (want at least 10)", dir, n)
	}
	return &Split{Train: train.Slice(0, n-v), Validation: train.Slice(n-v, n), Test: test}, nil
}
