package onnx

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"sort"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/mnist-cl/mnist-cl/internal/atomicfile"
)

// The model's fixed facts: its versions and the names of its graph inputs,
// outputs and batch dimension.
const (
	// IRVersion is the ONNX IR version written; 7 is the one that goes with
	// opset 13.
	IRVersion = 7
	// Opset is the version of the default ("ai.onnx") operator set.
	Opset = 13
	// Input is the name of the graph input, float32 [N, In of fc1].
	Input = "image"
	// Probabilities is the graph output softmax(logits), [N, Out of fcL].
	Probabilities = "probabilities"
	// Logits is the graph output of the last Gemm, [N, Out of fcL].
	Logits = "logits"
	// BatchDim is the symbolic name of the batch dimension of the input and
	// the outputs.
	BatchDim = "N"
)

// maxMessage is protobuf's limit on the size of one encoded message.
const maxMessage = 1<<31 - 1

// Field numbers of onnx/onnx.proto, for the fields written.
const (
	modelIRVersion       = 1
	modelProducerName    = 2
	modelProducerVersion = 3
	modelDocString       = 6
	modelGraph           = 7
	modelOpsetImport     = 8
	modelMetadataProps   = 14

	opsetVersion = 2

	entryKey   = 1
	entryValue = 2

	graphNode        = 1
	graphName        = 2
	graphInitializer = 5
	graphDocString   = 10
	graphInput       = 11
	graphOutput      = 12

	nodeInput     = 1
	nodeOutput    = 2
	nodeName      = 3
	nodeOpType    = 4
	nodeAttribute = 5
	nodeDocString = 6

	attrName = 1
	attrI    = 3
	attrType = 20

	tensorDims     = 1
	tensorDataType = 2
	tensorName     = 8
	tensorRawData  = 9

	valueName      = 1
	valueType      = 2
	valueDocString = 3

	typeTensor = 1 // TypeProto.tensor_type

	tensorTypeElem  = 1 // TypeProto.Tensor.elem_type
	tensorTypeShape = 2

	shapeDim = 1 // TensorShapeProto.dim

	dimValue = 1
	dimParam = 2
)

const (
	attrTypeInt = 2 // AttributeProto.AttributeType.INT
	dataFloat   = 1 // TensorProto.DataType.FLOAT
)

// Layer is one fully connected layer, y = x Weightᵀ + Bias, as ONNX's Gemm
// with transB=1 computes it.
type Layer struct {
	In, Out int
	// Weight is Out x In, row-major: [out, in], as PyTorch's nn.Linear
	// keeps it.
	Weight []float32
	// Bias has Out entries.
	Bias []float32
}

// MLP is a classifier of fully connected layers with ReLU between them and
// softmax after the last, with what the model file says about it.
type MLP struct {
	// Layers are fc1, fc2, ...; each takes the previous one's Out as In.
	Layers []Layer
	// ProducerName and ProducerVersion name the program that wrote the model.
	ProducerName, ProducerVersion string
	// Doc is the model's doc_string; InputDoc that of the input, which is
	// the place to say how the input is scaled.
	Doc, InputDoc string
	// Metadata becomes metadata_props, written in the order of the keys.
	Metadata map[string]string
}

// Validate reports the first thing that keeps m from being a model: no
// layers, a layer whose In is not the previous Out, a width below 1, a
// weight or bias of the wrong length or not finite, or an encoding over
// protobuf's 2 GiB. Sizes are checked before any slice is looked at.
func (m *MLP) Validate() error {
	if len(m.Layers) == 0 {
		return fmt.Errorf("onnx: an MLP needs at least one layer")
	}
	var bytes int64
	for i, l := range m.Layers {
		name := fmt.Sprintf("fc%d", i+1)
		if l.In < 1 || l.Out < 1 {
			return fmt.Errorf("onnx: %s is %d x %d: widths must be at least 1", name, l.Out, l.In)
		}
		if i > 0 && l.In != m.Layers[i-1].Out {
			return fmt.Errorf("onnx: %s takes %d inputs, fc%d gives %d", name, l.In, i, m.Layers[i-1].Out)
		}
		bytes += 4 * (int64(l.In)*int64(l.Out) + int64(l.Out))
		if bytes > maxMessage {
			return fmt.Errorf("onnx: the weights reach %d bytes by %s, over protobuf's 2 GiB limit on a model", bytes, name)
		}
	}
	for i, l := range m.Layers {
		name := fmt.Sprintf("fc%d", i+1)
		if len(l.Weight) != l.In*l.Out {
			return fmt.Errorf("onnx: %s.weight has %d values, want %d x %d", name, len(l.Weight), l.Out, l.In)
		}
		if len(l.Bias) != l.Out {
			return fmt.Errorf("onnx: %s.bias has %d values, want %d", name, len(l.Bias), l.Out)
		}
		if j := nonFinite(l.Weight); j >= 0 {
			return fmt.Errorf("onnx: %s.weight[%d] is %v", name, j, l.Weight[j])
		}
		if j := nonFinite(l.Bias); j >= 0 {
			return fmt.Errorf("onnx: %s.bias[%d] is %v", name, j, l.Bias[j])
		}
	}
	return nil
}

// nonFinite returns the index of the first NaN or infinity in v, or -1.
func nonFinite(v []float32) int {
	for i, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return i
		}
	}
	return -1
}

// Marshal encodes m as an ONNX ModelProto.
func (m *MLP) Marshal() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	g := m.graph()
	if len(g) > maxMessage-1024 {
		return nil, fmt.Errorf("onnx: the graph encodes to %d bytes, over protobuf's 2 GiB limit on a model", len(g))
	}
	var b []byte
	b = appendVarint(b, modelIRVersion, IRVersion)
	b = appendBytes(b, modelOpsetImport, appendVarint(nil, opsetVersion, Opset))
	b = appendString(b, modelProducerName, m.ProducerName)
	b = appendString(b, modelProducerVersion, m.ProducerVersion)
	if m.Doc != "" {
		b = appendString(b, modelDocString, m.Doc)
	}
	b = appendBytes(b, modelGraph, g)
	keys := make([]string, 0, len(m.Metadata))
	for k := range m.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b = appendBytes(b, modelMetadataProps, appendString(appendString(nil, entryKey, k), entryValue, m.Metadata[k]))
	}
	return b, nil
}

// graph encodes the GraphProto: the nodes in order, the weights as
// initializers, the input and the two outputs.
func (m *MLP) graph() []byte {
	L := len(m.Layers)
	var g []byte
	prev := Input
	for i := range m.Layers {
		fc := fmt.Sprintf("fc%d", i+1)
		z := fmt.Sprintf("z%d", i+1)
		if i == L-1 {
			z = Logits
		}
		g = appendBytes(g, graphNode, node(fc, "Gemm", fmt.Sprintf("%s = %s %s.weightᵀ + %s.bias", z, prev, fc, fc),
			[]string{prev, fc + ".weight", fc + ".bias"}, z, intAttr("transB", 1)))
		prev = z
		if i < L-1 {
			h := fmt.Sprintf("h%d", i+1)
			g = appendBytes(g, graphNode, node(fmt.Sprintf("relu%d", i+1), "Relu", h+" = max("+z+", 0)", []string{z}, h))
			prev = h
		}
	}
	g = appendBytes(g, graphNode, node("softmax", "Softmax", "probabilities = softmax(logits) over each row",
		[]string{Logits}, Probabilities, intAttr("axis", 1)))
	g = appendString(g, graphName, "mlp")
	for i, l := range m.Layers {
		fc := fmt.Sprintf("fc%d", i+1)
		g = appendBytes(g, graphInitializer, floatTensor(fc+".weight", l.Weight, l.Out, l.In))
		g = appendBytes(g, graphInitializer, floatTensor(fc+".bias", l.Bias, l.Out))
	}
	g = appendString(g, graphDocString, fmt.Sprintf("%s: %d fully connected layers, ReLU between them, softmax after the last", m.ProducerName, L))
	in, out := m.Layers[0].In, m.Layers[L-1].Out
	g = appendBytes(g, graphInput, valueInfo(Input, in, m.InputDoc))
	g = appendBytes(g, graphOutput, valueInfo(Probabilities, out, "softmax of logits: each row sums to 1"))
	g = appendBytes(g, graphOutput, valueInfo(Logits, out, "the last layer's output before softmax"))
	return g
}

// node encodes a NodeProto of the default domain with one output.
func node(name, op, doc string, inputs []string, output string, attrs ...[]byte) []byte {
	var n []byte
	for _, in := range inputs {
		n = appendString(n, nodeInput, in)
	}
	n = appendString(n, nodeOutput, output)
	n = appendString(n, nodeName, name)
	n = appendString(n, nodeOpType, op)
	for _, a := range attrs {
		n = appendBytes(n, nodeAttribute, a)
	}
	return appendString(n, nodeDocString, doc)
}

// intAttr encodes an AttributeProto of type INT.
func intAttr(name string, v int64) []byte {
	a := appendString(nil, attrName, name)
	a = appendVarint(a, attrI, uint64(v))
	return appendVarint(a, attrType, attrTypeInt)
}

// floatTensor encodes a float32 TensorProto of the given dims with its
// values in raw_data, little-endian as the format requires.
func floatTensor(name string, v []float32, dims ...int) []byte {
	var t []byte
	for _, d := range dims {
		t = appendVarint(t, tensorDims, uint64(d))
	}
	t = appendVarint(t, tensorDataType, dataFloat)
	t = appendString(t, tensorName, name)
	raw := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(x))
	}
	return appendBytes(t, tensorRawData, raw)
}

// valueInfo encodes a ValueInfoProto of a float32 tensor [N, cols].
func valueInfo(name string, cols int, doc string) []byte {
	var shape []byte
	shape = appendBytes(shape, shapeDim, appendString(nil, dimParam, BatchDim))
	shape = appendBytes(shape, shapeDim, appendVarint(nil, dimValue, uint64(cols)))
	tensor := appendVarint(nil, tensorTypeElem, dataFloat)
	tensor = appendBytes(tensor, tensorTypeShape, shape)
	v := appendString(nil, valueName, name)
	v = appendBytes(v, valueType, appendBytes(nil, typeTensor, tensor))
	if doc != "" {
		v = appendString(v, valueDocString, doc)
	}
	return v
}

func appendVarint(b []byte, num protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

// Write encodes m and writes it to path atomically (see atomicfile): a
// failure at any point leaves whatever was at path untouched.
func Write(path string, m *MLP) error {
	b, err := m.Marshal()
	if err != nil {
		return fmt.Errorf("export %s: %w", path, err)
	}
	err = atomicfile.Write(path, 0o644, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}
