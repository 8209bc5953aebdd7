#!/usr/bin/env python3
"""Check an ONNX model written by `mnist-cl export` with runtimes nobody here wrote.

Usage: python3 scripts/check_onnx.py MODEL.onnx [--data DIR] [--limit N]

1. The ONNX checker (`onnx.checker.check_model(full_check=True)`) and strict
   shape inference (`onnx.shape_inference.infer_shapes(strict_mode=True)`)
   must accept the file.
2. OpenCV's DNN module (`cv2.dnn.readNetFromONNX`) runs it on the test
   images of DIR (t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz,
   default testdata/mnist-small of this repository), fed as the model's
   doc_string says: float32 [N, 784], each pixel / 255.

Prints one JSON object on stdout: the model's producer, opset and metadata,
the shapes shape inference gives the outputs, the OpenCV version, the number
of images, OpenCV's accuracy in percent, and its probabilities and logits
(the first --limit rows, all by default). Any failure: one line on stderr,
exit 1. Needs Debian's python3-onnx, python3-opencv and python3-numpy; run
it with /usr/bin/python3 where another python3 comes first on PATH.
"""

import argparse
import gzip
import json
import os
import struct
import sys

try:
    import cv2
    import numpy as np
    import onnx
except ImportError as e:
    sys.stderr.write(
        "check_onnx: %s: %s lacks it (apt-get install python3-onnx python3-opencv "
        "python3-numpy, then run /usr/bin/python3)\n" % (e, sys.executable)
    )
    sys.exit(1)

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA = os.path.join(HERE, "..", "testdata", "mnist-small")


def read_idx(path, magic):
    """The array of an IDX file, gzipped or not, checked against its header."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    got, = struct.unpack(">I", data[:4])
    if got != magic:
        raise ValueError("%s: magic %#x, want %#x" % (path, got, magic))
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise ValueError("%s: %d bytes of data for dims %s" % (path, body.size, dims))
    return body.reshape(dims)


def dims_of(value):
    """A ValueInfoProto's shape as a list of ints and symbolic names."""
    return [d.dim_param if d.HasField("dim_param") else d.dim_value
            for d in value.type.tensor_type.shape.dim]


def check(path):
    """Runs the checker and strict shape inference; returns the facts to print."""
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    g = inferred.graph
    return {
        "producer_name": model.producer_name,
        "producer_version": model.producer_version,
        "ir_version": model.ir_version,
        "opset": [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")][0],
        "doc_string": model.doc_string,
        "metadata": {p.key: p.value for p in model.metadata_props},
        "inputs": {v.name: dims_of(v) for v in g.input},
        "outputs": {v.name: dims_of(v) for v in g.output},
        "value_info": {v.name: dims_of(v) for v in g.value_info},
        "ops": [n.op_type for n in g.node],
    }


def run_opencv(path, data, limit):
    """OpenCV's accuracy, probabilities and logits on the test images."""
    images = read_idx(os.path.join(data, "t10k-images-idx3-ubyte.gz"), 0x803)
    labels = read_idx(os.path.join(data, "t10k-labels-idx1-ubyte.gz"), 0x801)
    net = cv2.dnn.readNetFromONNX(path)
    net.setInput(images.reshape(len(images), -1).astype(np.float32) / 255)
    probs, logits = net.forward(["probabilities", "logits"])
    if probs.shape != logits.shape or probs.shape[0] != len(labels):
        raise ValueError("OpenCV gave probabilities %s and logits %s for %d images"
                         % (probs.shape, logits.shape, len(labels)))
    hits = int((probs.argmax(axis=1) == labels).sum())
    n = len(labels) if limit is None else min(limit, len(labels))
    return {
        "opencv": cv2.__version__,
        "images": len(labels),
        "accuracy": 100.0 * hits / len(labels),
        "probabilities": probs[:n].astype(float).tolist(),
        "logits": logits[:n].astype(float).tolist(),
    }


def main():
    ap = argparse.ArgumentParser(description="Check a mnist-cl ONNX export with onnx and OpenCV.")
    ap.add_argument("model")
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--limit", type=int, default=None, help="print only the first N rows of outputs")
    args = ap.parse_args()
    try:
        out = check(args.model)
        out.update(run_opencv(args.model, args.data, args.limit))
    except Exception as e:  # one line, whatever failed: the checker, OpenCV or the data
        sys.stderr.write("check_onnx: %s: %s: %s\n" % (args.model, type(e).__name__, str(e).strip().replace("\n", " ")))
        sys.exit(1)
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
