package safetensors

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

// maxFuzzInput keeps each execution cheap: what Read allocates is bounded
// by its input, and nothing a larger input could reach is missing from a
// smaller one.
const maxFuzzInput = 64 << 10

// FuzzRead checks that Read never panics, that its errors are one line
// naming the package, and that what it accepts survives Write and Read
// unchanged.
func FuzzRead(f *testing.F) {
	f.Add(mustWrite(f, &File{}))
	f.Add(mustWrite(f, sample(nil)))
	f.Add(mustWrite(f, sample(map[string]string{"framework": "mnist-cl", "epochs": "3"})))
	f.Add(mustWrite(f, &File{Tensors: []Tensor{
		{Name: "fc1.weight", Shape: []int{2, 3}, Data: ramp(6)},
		{Name: "fc1.bias", Shape: []int{2}, Data: ramp(2)},
	}}))
	eight := make([]byte, 8)
	for _, raw := range [][]byte{
		nil,
		binary.LittleEndian.AppendUint64(nil, 1<<32),
		file(`{`),
		file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, eight...),
		file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}`, eight...),
		file(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}`, eight...),
		file(`{"a":{"dtype":"F16","shape":[4],"data_offsets":[0,8]}}`, eight...),
		file(`{"__metadata__":{"k":"v","k":1}}`),
		file(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"b":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}`, 1, 2, 3, 4),
	} {
		f.Add(raw)
	}

	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) > maxFuzzInput {
			t.Skip()
		}
		got, err := Read(bytes.NewReader(raw), int64(len(raw)))
		if err != nil {
			if msg := err.Error(); !strings.HasPrefix(msg, "safetensors: ") || strings.Contains(msg, "\n") {
				t.Fatalf("error %q is not one line starting with the package name", msg)
			}
			return
		}
		var b bytes.Buffer
		if err := Write(&b, got); err != nil {
			t.Fatalf("Write refused what Read accepted: %v", err)
		}
		again, err := Read(bytes.NewReader(b.Bytes()), int64(b.Len()))
		if err != nil {
			t.Fatalf("Read refused what Write wrote: %v", err)
		}
		if d := sameFiles(got, again); d != "" {
			t.Fatalf("after Write and Read: %s", d)
		}
	})
}
