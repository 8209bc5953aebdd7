// Package onnx writes a multilayer perceptron as an ONNX model, so that
// runtimes nobody here wrote (ONNX Runtime, OpenCV's DNN module, a browser)
// can run a network mnist-cl trained.
//
// # The graph
//
// An MLP of layers fc1..fcL becomes, at opset 13 (IR version 7):
//
//	image [N, In]                                   float32, N symbolic
//	z1 = Gemm(image, fc1.weight, fc1.bias, transB=1)  h1 = Relu(z1)
//	...
//	logits = Gemm(h(L-1), fcL.weight, fcL.bias, transB=1)
//	probabilities = Softmax(logits, axis=1)
//
// Gemm computes Y = A Bᵀ + C, so each weight is stored [out, in], the layout
// PyTorch's nn.Linear and mnist-cl's safetensors checkpoints keep. This is
// also the form OpenCV 4.6's importer accepts: it refuses a Gemm with
// transB=0 and an [in, out] weight. Graph outputs are probabilities and
// logits, both [N, Out]. The weights are initializers in raw_data
// (little-endian float32), not graph inputs.
//
// The model carries producer_name, producer_version, a doc_string and
// metadata_props (key, value strings) supplied by the caller; keys are
// written sorted, so the same MLP always gives the same bytes.
//
// # Why protowire by hand
//
// ONNX files are protocol buffers. The model needs ten messages (ModelProto,
// GraphProto, NodeProto, AttributeProto, TensorProto, ValueInfoProto,
// TypeProto and its Tensor, TensorShapeProto and its Dimension,
// OperatorSetIdProto, StringStringEntryProto), and only a few fields of
// each. Writing them with google.golang.org/protobuf/encoding/protowire
// costs about a hundred lines and keeps protoc, protoc-gen-go and a
// generated onnx.pb.go (over 3,000 lines as gonnx vendors it, of a schema
// that grows with each ONNX release) out of the repository and the build,
// while the maintained library still does the wire format. The field
// numbers are those of onnx/onnx.proto, named once as constants in onnx.go.
// The tests decode the bytes back with protowire and run the models in
// gonnx, a Go runtime with its own generated decoder; the command's tests
// hand exported files to the ONNX checker and to OpenCV.
//
// # Limits
//
// A protocol buffer message cannot exceed 2 GiB; Marshal refuses an MLP
// whose encoding would (ONNX's external-data files are not written).
// Non-finite weights are refused too: no runtime would give a useful answer.
package onnx
