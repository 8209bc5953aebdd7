package onnx

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// message is a decoded protobuf message: each field number's values in
// order, varints as v, length-delimited fields as b.
type message map[protowire.Number][]field

type field struct {
	v uint64
	b []byte
}

// decode parses b as a message of varint and length-delimited fields, the
// only wire types Marshal writes; anything else fails the test.
func decode(t *testing.T, b []byte) message {
	t.Helper()
	m := message{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.Fatalf("bad tag: %v", protowire.ParseError(n))
		}
		b = b[n:]
		var f field
		switch typ {
		case protowire.VarintType:
			f.v, n = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			f.b, n = protowire.ConsumeBytes(b)
		default:
			t.Fatalf("field %d: unexpected wire type %d", num, typ)
		}
		if n < 0 {
			t.Fatalf("field %d: %v", num, protowire.ParseError(n))
		}
		b = b[n:]
		m[num] = append(m[num], f)
	}
	return m
}

// one returns the only value of field num, failing when there is not
// exactly one.
func (m message) one(t *testing.T, num protowire.Number) field {
	t.Helper()
	if len(m[num]) != 1 {
		t.Fatalf("field %d: %d values, want 1", num, len(m[num]))
	}
	return m[num][0]
}

func (m message) str(t *testing.T, num protowire.Number) string {
	t.Helper()
	return string(m.one(t, num).b)
}

func (m message) strs(num protowire.Number) []string {
	var s []string
	for _, f := range m[num] {
		s = append(s, string(f.b))
	}
	return s
}

// randomMLP is an MLP of the given widths with weights in [-1, 1).
func randomMLP(sizes []int, seed uint64) *MLP {
	rng := rand.New(rand.NewPCG(seed, 0))
	m := &MLP{ProducerName: "test", ProducerVersion: "v0", Doc: "a doc", InputDoc: "pixels / 255",
		Metadata: map[string]string{"sizes": fmt.Sprint(sizes), "epoch": "3", "a": "first"}}
	for l := 1; l < len(sizes); l++ {
		in, out := sizes[l-1], sizes[l]
		layer := Layer{In: in, Out: out, Weight: make([]float32, in*out), Bias: make([]float32, out)}
		for i := range layer.Weight {
			layer.Weight[i] = 2*rng.Float32() - 1
		}
		for i := range layer.Bias {
			layer.Bias[i] = 2*rng.Float32() - 1
		}
		m.Layers = append(m.Layers, layer)
	}
	return m
}

func TestMarshalStructure(t *testing.T) {
	for _, sizes := range [][]int{{784, 512, 256, 10}, {784, 32, 10}, {784, 1, 10}, {784, 3, 5, 7, 10}, {2, 1}} {
		t.Run(fmt.Sprint(sizes), func(t *testing.T) {
			m := randomMLP(sizes, uint64(len(sizes)))
			b, err := m.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			again, _ := m.Marshal()
			if !bytes.Equal(b, again) {
				t.Error("two encodings of one MLP differ")
			}
			model := decode(t, b)
			if v := model.one(t, modelIRVersion).v; v != IRVersion {
				t.Errorf("ir_version %d", v)
			}
			opset := decode(t, model.one(t, modelOpsetImport).b)
			if opset.one(t, opsetVersion).v != Opset || len(opset[1]) != 0 {
				t.Errorf("opset_import %v, want the default domain at %d", opset, Opset)
			}
			if model.str(t, modelProducerName) != "test" || model.str(t, modelProducerVersion) != "v0" || model.str(t, modelDocString) != "a doc" {
				t.Error("producer or doc_string not as given")
			}
			checkMetadata(t, model, m.Metadata)
			checkGraph(t, decode(t, model.one(t, modelGraph).b), m)
		})
	}
}

func checkMetadata(t *testing.T, model message, want map[string]string) {
	t.Helper()
	var keys []string
	for _, f := range model[modelMetadataProps] {
		e := decode(t, f.b)
		k, v := e.str(t, entryKey), e.str(t, entryValue)
		if want[k] != v {
			t.Errorf("metadata %s = %q, want %q", k, v, want[k])
		}
		keys = append(keys, k)
	}
	if !reflect.DeepEqual(keys, []string{"a", "epoch", "sizes"}) {
		t.Errorf("metadata keys %v, want all three in order", keys)
	}
}

// checkGraph checks the nodes chain image through Gemm and Relu to logits
// and probabilities, and that the initializers hold m's weights bit for bit.
func checkGraph(t *testing.T, g message, m *MLP) {
	t.Helper()
	L := len(m.Layers)
	var ops []string
	prev := Input
	for i, f := range g[graphNode] {
		n := decode(t, f.b)
		op, ins, out := n.str(t, nodeOpType), n.strs(nodeInput), n.str(t, nodeOutput)
		ops = append(ops, op)
		if ins[0] != prev {
			t.Errorf("node %d (%s) reads %q, want %q", i, op, ins[0], prev)
		}
		prev = out
		switch op {
		case "Gemm":
			fc := fmt.Sprintf("fc%d", (i+2)/2)
			if !reflect.DeepEqual(ins[1:], []string{fc + ".weight", fc + ".bias"}) {
				t.Errorf("Gemm %d inputs %v", i, ins)
			}
			checkIntAttr(t, n, "transB", 1)
		case "Softmax":
			checkIntAttr(t, n, "axis", 1)
			if ins[0] != Logits || out != Probabilities {
				t.Errorf("softmax %v -> %s", ins, out)
			}
		}
	}
	want := strings.Repeat("Gemm Relu ", L-1) + "Gemm Softmax"
	if got := strings.Join(ops, " "); got != want {
		t.Errorf("ops %q, want %q", got, want)
	}
	if len(g[graphInitializer]) != 2*L {
		t.Fatalf("%d initializers, want %d", len(g[graphInitializer]), 2*L)
	}
	for i, l := range m.Layers {
		fc := fmt.Sprintf("fc%d", i+1)
		checkTensor(t, decode(t, g[graphInitializer][2*i].b), fc+".weight", []uint64{uint64(l.Out), uint64(l.In)}, l.Weight)
		checkTensor(t, decode(t, g[graphInitializer][2*i+1].b), fc+".bias", []uint64{uint64(l.Out)}, l.Bias)
	}
	in, out := m.Layers[0].In, m.Layers[L-1].Out
	if len(g[graphInput]) != 1 || len(g[graphOutput]) != 2 {
		t.Fatalf("%d inputs and %d outputs, want 1 and 2", len(g[graphInput]), len(g[graphOutput]))
	}
	checkValueInfo(t, decode(t, g[graphInput][0].b), Input, in)
	checkValueInfo(t, decode(t, g[graphOutput][0].b), Probabilities, out)
	checkValueInfo(t, decode(t, g[graphOutput][1].b), Logits, out)
}

func checkIntAttr(t *testing.T, n message, name string, v int64) {
	t.Helper()
	a := decode(t, n.one(t, nodeAttribute).b)
	if a.str(t, attrName) != name || int64(a.one(t, attrI).v) != v || a.one(t, attrType).v != attrTypeInt {
		t.Errorf("%s attribute: %v, want INT %s = %d", n.str(t, nodeOpType), a, name, v)
	}
}

func checkTensor(t *testing.T, tp message, name string, dims []uint64, want []float32) {
	t.Helper()
	var got []uint64
	for _, f := range tp[tensorDims] {
		got = append(got, f.v)
	}
	if tp.str(t, tensorName) != name || !reflect.DeepEqual(got, dims) || tp.one(t, tensorDataType).v != dataFloat {
		t.Errorf("tensor %s %v, want %s float %v", tp.str(t, tensorName), got, name, dims)
	}
	raw := tp.one(t, tensorRawData).b
	if len(raw) != 4*len(want) {
		t.Fatalf("%s: %d raw bytes, want %d", name, len(raw), 4*len(want))
	}
	for i, w := range want {
		if g := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:])); g != w {
			t.Fatalf("%s[%d] = %v, want %v", name, i, g, w)
		}
	}
}

func checkValueInfo(t *testing.T, v message, name string, cols int) {
	t.Helper()
	if v.str(t, valueName) != name {
		t.Errorf("value %q, want %q", v.str(t, valueName), name)
	}
	tensor := decode(t, decode(t, v.one(t, valueType).b).one(t, typeTensor).b)
	if tensor.one(t, tensorTypeElem).v != dataFloat {
		t.Errorf("%s: elem_type %d, want float", name, tensor.one(t, tensorTypeElem).v)
	}
	dims := decode(t, tensor.one(t, tensorTypeShape).b)[shapeDim]
	if len(dims) != 2 {
		t.Fatalf("%s: %d dims, want 2", name, len(dims))
	}
	batch, width := decode(t, dims[0].b), decode(t, dims[1].b)
	if batch.str(t, dimParam) != BatchDim || len(batch[dimValue]) != 0 || width.one(t, dimValue).v != uint64(cols) {
		t.Errorf("%s: dims %v %v, want [%s, %d]", name, batch, width, BatchDim, cols)
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name string
		edit func(m *MLP)
		want string
	}{
		{"no layers", func(m *MLP) { m.Layers = nil }, "at least one layer"},
		{"zero width", func(m *MLP) { m.Layers[1].Out = 0 }, "fc2 is 0 x 3"},
		{"chain broken", func(m *MLP) { m.Layers[1].In = 4 }, "fc2 takes 4 inputs, fc1 gives 3"},
		{"short weight", func(m *MLP) { m.Layers[0].Weight = m.Layers[0].Weight[1:] }, "fc1.weight has 23 values, want 3 x 8"},
		{"long bias", func(m *MLP) { m.Layers[1].Bias = append(m.Layers[1].Bias, 0) }, "fc2.bias has 3 values, want 2"},
		{"NaN", func(m *MLP) { m.Layers[1].Weight[4] = float32(math.NaN()) }, "fc2.weight[4] is NaN"},
		{"infinity", func(m *MLP) { m.Layers[0].Bias[2] = float32(math.Inf(-1)) }, "fc1.bias[2] is -Inf"},
		// 2^16 x 2^14 floats are 4 GiB: refused from the sizes alone,
		// before the (absent) weights are looked at.
		{"over 2 GiB", func(m *MLP) { m.Layers = []Layer{{In: 1 << 16, Out: 1 << 14}} }, "over protobuf's 2 GiB"},
	}
	for _, c := range cases {
		m := randomMLP([]int{8, 3, 2}, 1)
		c.edit(m)
		_, err := m.Marshal()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one naming %q", c.name, err, c.want)
		}
	}
}

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.onnx")
	m := randomMLP([]int{784, 5, 10}, 7)
	if err := Write(path, m); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	want, _ := m.Marshal()
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("file holds %d bytes (%v), want the %d of Marshal", len(got), err, len(want))
	}
	// A model that does not validate leaves the file as it was.
	m.Layers[0].Bias[0] = float32(math.NaN())
	if err := Write(path, m); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("NaN bias: error %v, want one naming %s", err, path)
	}
	if again, _ := os.ReadFile(path); !bytes.Equal(again, want) {
		t.Error("a refused model changed the file")
	}
	if err := Write(filepath.Join(dir, "missing", "m.onnx"), randomMLP([]int{3, 2}, 1)); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing folder: error %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
}
