package main

import (
	"fmt"
	"runtime/debug"

	"github.com/mnist-cl/mnist-cl/internal/atomicfile"
	"github.com/mnist-cl/mnist-cl/internal/onnx"
	"github.com/mnist-cl/mnist-cl/nn"
)

// pixelScaling is how the network's input is made from an image, as the
// gather kernel (kernels/layers.cl) builds each training batch; the model
// says it, since a runtime fed raw 0-255 bytes gets confident nonsense.
const pixelScaling = "float32 [N, %d], an image per row, its pixels row by row, each the MNIST grey level " +
	"(0 background, 255 full ink) divided by 255 into [0, 1], as training scales them"

const exportHelp = `Writes a saved network as an ONNX model (opset 13: Gemm, Relu, Softmax) that
ONNX runtimes and OpenCV's DNN module run. Its input "image" is float32
[N, 784], each pixel / 255 as in training; its outputs are "probabilities"
and "logits", [N, 10].`

func runExport(e *env, args []string) error {
	fs := newFlags("export")
	model := fs.String("model", "", "the checkpoint to export (a safetensors file written by train -save)")
	out := fs.String("o", "", "the ONNX file to write (replaced atomically if it exists)")
	if err := parse(e, fs, "-model FILE -o FILE.onnx", exportHelp, args); err != nil {
		return err
	}
	if *model == "" {
		return &usageError{err: fmt.Errorf("-model FILE is required")}
	}
	if *out == "" {
		return &usageError{err: fmt.Errorf("-o FILE.onnx is required")}
	}
	if err := atomicfile.CheckWritable(*out); err != nil {
		return err
	}
	ck, err := nn.ReadCheckpoint(*model)
	if err != nil {
		return err
	}
	m, err := mlpFromCheckpoint(ck)
	if err != nil {
		return fmt.Errorf("export %s: %w", *model, err)
	}
	if err := onnx.Write(*out, m); err != nil {
		return err
	}
	if !ck.Finished() {
		fmt.Fprintf(e.stderr, "note: %s is an unfinished run (epoch %d step %d of %d epochs)\n", *model, ck.Epoch, ck.Step, ck.Config.Epochs)
	}
	fmt.Fprintf(e.stderr, "wrote %s: network %s, ONNX opset %d\n", *out, m.Metadata["sizes"], onnx.Opset)
	return nil
}

// mlpFromCheckpoint lays a checkpoint out as an ONNX MLP from its safetensors
// form, whose fc<l>.weight tensors are already [out, in] as Gemm with
// transB=1 wants them; the checkpoint's metadata becomes the model's.
func mlpFromCheckpoint(ck *nn.Checkpoint) (*onnx.MLP, error) {
	f := ck.File()
	m := &onnx.MLP{
		ProducerName:    "mnist-cl",
		ProducerVersion: producerVersion(),
		Metadata:        map[string]string{},
		InputDoc:        fmt.Sprintf(pixelScaling, ck.Sizes[0]),
	}
	for k, v := range f.Metadata {
		if k == "format" {
			k = "checkpoint_format" // the safetensors layout, not this file's
		}
		m.Metadata[k] = v
	}
	m.Metadata["input_scale"] = "1/255"
	for l := 1; l < len(ck.Sizes); l++ {
		w, okW := f.Get(fmt.Sprintf("fc%d.weight", l))
		b, okB := f.Get(fmt.Sprintf("fc%d.bias", l))
		if !okW || !okB {
			return nil, fmt.Errorf("checkpoint lacks fc%d", l)
		}
		m.Layers = append(m.Layers, onnx.Layer{In: ck.Sizes[l-1], Out: ck.Sizes[l], Weight: w.Data, Bias: b.Data})
	}
	m.Doc = fmt.Sprintf("mnist-cl MNIST classifier %s (ReLU hidden layers, softmax output), trained %d of %d epochs with %s, lr %s, seed %d.\n"+
		"Input %q: %s.\nOutputs %q (softmax, each row sums to 1) and %q, [N, %d]: column d is digit d.",
		m.Metadata["sizes"], ck.Epoch, ck.Config.Epochs, ck.Config.Optimizer(), m.Metadata["lr"], ck.Config.Seed,
		onnx.Input, fmt.Sprintf(pixelScaling, ck.Sizes[0]), onnx.Probabilities, onnx.Logits, ck.Sizes[len(ck.Sizes)-1])
	return m, nil
}

// producerVersion is the module version of this build, with the commit when
// the build recorded one ("(devel)" from a checkout), or "devel".
func producerVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	v := bi.Main.Version
	if v == "" {
		v = "devel"
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " " + s.Value[:12]
		}
		if s.Key == "vcs.modified" && s.Value == "true" {
			v += "+dirty"
		}
	}
	return v
}
