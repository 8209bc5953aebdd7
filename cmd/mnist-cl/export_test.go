package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/mnist-cl/mnist-cl/cpuref"
	"github.com/mnist-cl/mnist-cl/internal/onnx"
	"github.com/mnist-cl/mnist-cl/mnist"
	"github.com/mnist-cl/mnist-cl/nn"
)

// systemPython is Debian's interpreter, named by path: a python3 earlier on
// PATH (pyenv's) lacks the Debian packages the checks need.
const systemPython = "/usr/bin/python3"

// onnxReport is what scripts/check_onnx.py prints.
type onnxReport struct {
	ProducerName  string            `json:"producer_name"`
	IRVersion     int               `json:"ir_version"`
	Opset         int               `json:"opset"`
	DocString     string            `json:"doc_string"`
	Metadata      map[string]string `json:"metadata"`
	Inputs        map[string][]any  `json:"inputs"`
	Outputs       map[string][]any  `json:"outputs"`
	Ops           []string          `json:"ops"`
	OpenCV        string            `json:"opencv"`
	Images        int               `json:"images"`
	Accuracy      float64           `json:"accuracy"`
	Probabilities [][]float32       `json:"probabilities"`
	Logits        [][]float32       `json:"logits"`
	ValueInfo     map[string][]any  `json:"value_info"`
}

// requireONNXPython fails (never skips) where Debian's onnx, OpenCV or NumPy
// is missing: CI installs them, and a consumer that is not there checks
// nothing.
func requireONNXPython(t *testing.T) {
	t.Helper()
	out, err := exec.Command(systemPython, "-c", "import onnx, cv2, numpy").CombinedOutput()
	if err != nil {
		t.Fatalf("%s cannot import onnx, cv2 and numpy (apt-get install python3-onnx python3-opencv python3-numpy): %v\n%s", systemPython, err, out)
	}
}

// TestExportRunsInOpenCV exports a default-trained network and networks of
// odd shapes, has the ONNX checker (with strict shape inference) accept each
// file and OpenCV's DNN module run it on the test set: its accuracy must be
// eval's and its probabilities cpuref's float64 forward pass of the
// checkpoint, within 1e-5 relative.
func TestExportRunsInOpenCV(t *testing.T) {
	requireONNXPython(t)
	test := readSmallTest(t)
	for _, c := range []struct {
		name  string
		train []string
	}{
		{"default 512,256", nil},
		{"one hidden layer", []string{"--hidden", "64", "--epochs", "3"}},
		{"three hidden layers", []string{"--hidden", "40,20,12", "--epochs", "3"}},
		// Width 1 trained gently enough that its unit stays alive, and
		// after a wider layer.
		{"width 1", []string{"--hidden", "1", "--lr", "0.01", "--epochs", "3"}},
		{"width 1 after 8", []string{"--hidden", "8,1", "--epochs", "3"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			model, out := filepath.Join(dir, "m.safetensors"), filepath.Join(dir, "m.onnx")
			if code, _, stderr := runCmd(t, append([]string{"train", "--data", smallData, "--quiet", "--save", model}, c.train...)...); code != 0 {
				t.Fatalf("train: exit %d: %s", code, stderr)
			}
			if code, _, stderr := runCmd(t, "export", "-model", model, "-o", out); code != 0 || !strings.Contains(stderr, "wrote "+out) {
				t.Fatalf("export: exit %d: %s", code, stderr)
			}
			ck, err := nn.ReadCheckpoint(model)
			if err != nil {
				t.Fatal(err)
			}
			r := checkONNX(t, out)
			checkReportStructure(t, r, ck)
			evalAcc := evalAccuracy(t, model)
			if math.Abs(r.Accuracy-evalAcc) > 0.01 {
				t.Errorf("OpenCV %s accuracy %.2f%%, eval %.2f%%", r.OpenCV, r.Accuracy, evalAcc)
			}
			probErr, logitErr, maxAbs := compareWithCpuref(t, ck, test, r)
			t.Logf("%s: OpenCV %s accuracy %.2f%%, eval %.2f%%; vs cpuref: probabilities rel %.2g (max abs %.2g), logits rel %.2g",
				ck.File().Metadata["sizes"], r.OpenCV, r.Accuracy, evalAcc, probErr, maxAbs, logitErr)
			if !(probErr <= 1e-5) || !(logitErr <= 1e-5) || !(maxAbs <= 1e-5) {
				t.Errorf("OpenCV vs cpuref: probabilities rel %.3g (max abs %.3g), logits rel %.3g; want <= 1e-5", probErr, maxAbs, logitErr)
			}
		})
	}
}

// checkONNX runs scripts/check_onnx.py on path and decodes its report.
func checkONNX(t *testing.T, path string) *onnxReport {
	t.Helper()
	cmd := exec.Command(systemPython, "../../scripts/check_onnx.py", path, "--data", smallData)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("check_onnx.py %s: %v: %s", path, err, stderr.String())
	}
	var r onnxReport
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("check_onnx.py output: %v", err)
	}
	return &r
}

// checkReportStructure checks what the checker and shape inference saw: the
// graph's operators, its input and outputs with the batch dimension
// symbolic, and the checkpoint's metadata.
func checkReportStructure(t *testing.T, r *onnxReport, ck *nn.Checkpoint) {
	t.Helper()
	L := len(ck.Sizes) - 1
	classes := float64(ck.Sizes[L])
	wantOps := strings.TrimSpace(strings.Repeat("Gemm Relu ", L-1) + "Gemm Softmax")
	if r.ProducerName != "mnist-cl" || r.Opset != onnx.Opset || r.IRVersion != onnx.IRVersion || strings.Join(r.Ops, " ") != wantOps {
		t.Errorf("producer %q, opset %d, IR %d, ops %v", r.ProducerName, r.Opset, r.IRVersion, r.Ops)
	}
	if want := []any{"N", 784.0}; !reflect.DeepEqual(r.Inputs[onnx.Input], want) {
		t.Errorf("input %v, want image %v", r.Inputs, want)
	}
	for _, name := range []string{onnx.Probabilities, onnx.Logits} {
		if want := []any{"N", classes}; !reflect.DeepEqual(r.Outputs[name], want) {
			t.Errorf("output %s %v, want %v", name, r.Outputs[name], want)
		}
	}
	// Shape inference must reach every hidden value: z1, h1, ...
	if len(r.ValueInfo) != 2*(L-1) {
		t.Errorf("shape inference found %d hidden values, want %d: %v", len(r.ValueInfo), 2*(L-1), r.ValueInfo)
	}
	for k, v := range ck.File().Metadata {
		if k == "format" {
			k = "checkpoint_format"
		}
		if r.Metadata[k] != v {
			t.Errorf("metadata %s = %q, want the checkpoint's %q", k, r.Metadata[k], v)
		}
	}
	if r.Metadata["input_scale"] != "1/255" || !strings.Contains(r.DocString, "divided by 255") {
		t.Errorf("the model does not say how pixels are scaled: %q, %q", r.Metadata["input_scale"], r.DocString)
	}
}

// evalAccuracy is the accuracy in percent that eval prints for model.
func evalAccuracy(t *testing.T, model string) float64 {
	t.Helper()
	code, out, stderr := runCmd(t, "eval", "--data", smallData, "--model", model)
	if code != 0 {
		t.Fatalf("eval: exit %d: %s", code, stderr)
	}
	var acc float64
	i := strings.Index(out, "accuracy ")
	if i < 0 {
		t.Fatalf("eval output: %s", out)
	}
	if _, err := fmt.Sscanf(out[i:], "accuracy %f%%", &acc); err != nil {
		t.Fatalf("parse %q: %v", out[i:], err)
	}
	return acc
}

// compareWithCpuref runs the checkpoint's network in float64 on the test
// images scaled as the model says (pixel / 255) and returns the relative
// errors of OpenCV's probabilities and logits, and the largest absolute
// difference of a probability.
func compareWithCpuref(t *testing.T, ck *nn.Checkpoint, test *mnist.Set, r *onnxReport) (probErr, logitErr, maxAbs float64) {
	t.Helper()
	p, err := cpuref.FromFloat32(ck.Sizes, ck.W, ck.B)
	if err != nil {
		t.Fatal(err)
	}
	n, px := test.Len(), test.Pixels()
	x := mat.NewDense(n, px, nil)
	for i := range n {
		for j := range px {
			x.Set(i, j, float64(test.Images[i*px+j])/255)
		}
	}
	a := cpuref.Forward(p, x)
	if sameRows(a.Z[len(a.Z)-1]) {
		t.Fatal("the network gives every image the same logits: a dead ReLU layer, which would check the biases only")
	}
	if len(r.Probabilities) != n || len(r.Logits) != n || r.Images != n {
		t.Fatalf("OpenCV gave %d probability rows and %d logit rows for %d images", len(r.Probabilities), len(r.Logits), n)
	}
	flat := func(rows [][]float32) []float32 {
		var f []float32
		for _, row := range rows {
			f = append(f, row...)
		}
		return f
	}
	probs := flat(r.Probabilities)
	_, classes := a.Yp.Dims()
	for i, v := range probs {
		maxAbs = math.Max(maxAbs, math.Abs(float64(v)-a.Yp.At(i/classes, i%classes)))
	}
	return cpuref.RelErr(probs, a.Yp), cpuref.RelErr(flat(r.Logits), a.Z[len(a.Z)-1]), maxAbs
}

// sameRows reports whether every row of m equals the first.
func sameRows(m *mat.Dense) bool {
	r, _ := m.Dims()
	for i := 1; i < r; i++ {
		if !mat.Equal(m.RowView(0), m.RowView(i)) {
			return false
		}
	}
	return true
}

// TestExportRefusals: usage mistakes exit 2; a file that is not a
// checkpoint or an output that cannot be written exit 1 with one line, and
// leave an existing output as it was.
func TestExportRefusals(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "m.safetensors")
	if code, _, stderr := runCmd(t, "train", "--data", smallData, "--hidden", "8", "--epochs", "1", "--quiet", "--save", model); code != 0 {
		t.Fatalf("train: exit %d: %s", code, stderr)
	}
	if code, stdout, _ := runCmd(t, "export", "-h"); code != 0 || !strings.Contains(stdout, "usage: mnist-cl export") || !strings.Contains(stdout, "255") {
		t.Errorf("export -h: exit %d: %s", code, stdout)
	}
	out := filepath.Join(dir, "out.onnx")
	for _, args := range [][]string{
		{"export", "-o", out},
		{"export", "-model", model},
		{"export", "-model", model, "-o", out, "extra"},
		{"export", "-model", model, "-o", out, "-frobnicate"},
	} {
		if code, _, stderr := runCmd(t, args...); code != 2 || !strings.Contains(stderr, "mnist-cl export: ") {
			t.Errorf("%v: exit %d, stderr %q; want a usage error", args, code, stderr)
		}
	}

	old := []byte("the previous export\n")
	if err := os.WriteFile(out, old, 0o644); err != nil {
		t.Fatal(err)
	}
	text := filepath.Join(dir, "text.safetensors")
	if err := os.WriteFile(text, []byte("hello, world\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		model, out, want string
	}{
		{text, out, "checkpoint"},
		{filepath.Join(dir, "nope.safetensors"), out, "nope.safetensors"},
		{dir, out, "checkpoint"},
		{model, filepath.Join(dir, "no", "such", "m.onnx"), "does not exist"},
		{model, dir, "not a regular file"},
	} {
		code, _, stderr := runCmd(t, "export", "-model", c.model, "-o", c.out)
		line := errorLine(stderr)
		if code != 1 || !strings.HasPrefix(line, "mnist-cl: ") || !strings.Contains(line, c.want) || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
			t.Errorf("export -model %s -o %s: exit %d, stderr %q; want one line naming %q", c.model, c.out, code, stderr, c.want)
		}
	}
	if b, _ := os.ReadFile(out); !bytes.Equal(b, old) {
		t.Errorf("a refused export changed %s: %q", out, b)
	}
	if code, _, stderr := runCmd(t, "export", "-model", model, "-o", out); code != 0 {
		t.Fatalf("export: exit %d: %s", code, stderr)
	}
	if b, _ := os.ReadFile(out); bytes.Equal(b, old) || len(b) < 4*784*8 {
		t.Errorf("export did not replace %s (%d bytes)", out, len(b))
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 3 {
		t.Errorf("files left beside the export: %v", entries)
	}
}
