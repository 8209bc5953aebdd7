#!/usr/bin/env python3
"""Evaluate a mnist-cl checkpoint on the MNIST test set with numpy alone.

Usage: python3 scripts/eval_checkpoint.py MODEL.safetensors [--data DIR]

The checkpoint is read by the safetensors spec, not by mnist-cl's own code,
so this checks the file format and the trained network independently of the
Go reader. Tensors fc1.weight ([out, in], as PyTorch's nn.Linear keeps
them), fc1.bias ([out]), fc2.weight, ... make the network; hidden layers
are ReLU, the last gives the logits. Tensors whose names do not start with
"fc" (optimizer state) are ignored. DIR holds t10k-images-idx3-ubyte.gz and
t10k-labels-idx1-ubyte.gz; it defaults to testdata/mnist-small of this
repository.

Prints "accuracy A loss L (N images)" on stdout and the checkpoint's
__metadata__ on stderr; on a malformed file, one line on stderr and exit 1.
"""

import argparse
import gzip
import json
import os
import re
import struct
import sys

try:
    import numpy as np
except ImportError:
    sys.stderr.write(
        "eval_checkpoint: needs numpy, which %s lacks "
        "(apt-get install python3-numpy, then run /usr/bin/python3)\n" % sys.executable
    )
    sys.exit(1)

# The reference implementation's limit: a larger header is corrupt or hostile.
MAX_HEADER_SIZE = 100_000_000

# Sizes of the format's dtypes, so that offsets of tensors this script
# ignores can still be checked.
DTYPE_SIZES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4,
    "I64": 8, "U64": 8, "F64": 8,
}

LAYER = re.compile(r"fc([1-9][0-9]*)\.(weight|bias)")


class Malformed(Exception):
    """A file that does not say what it should; the message is one line."""


def no_duplicates(pairs):
    # json.loads keeps the last of two equal keys; two readers of one
    # file could then load different weights, so refuse it.
    out = {}
    for k, v in pairs:
        if k in out:
            raise Malformed("header has key %r twice" % k)
        out[k] = v
    return out


def is_uint(x):
    # bool is an int in Python; JSON true is not a dimension.
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def read_safetensors(path):
    """Returns (metadata dict, {name: (dtype, array)}); the array of a
    tensor that is not F32 is None, as nothing here needs one."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise Malformed("file has %d bytes, fewer than the 8 of the header length" % len(raw))
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8:
        raise Malformed("header claims %d bytes but the file has %d" % (n, len(raw)))
    if n > MAX_HEADER_SIZE:
        raise Malformed("header claims %d bytes, more than the limit of %d" % (n, MAX_HEADER_SIZE))
    header = raw[8:8 + n]
    if not header.startswith(b"{"):
        raise Malformed("header does not start with '{'")
    try:
        text = header.decode("utf-8")
    except UnicodeDecodeError:
        raise Malformed("header is not valid UTF-8")
    body = text.rstrip(" ")
    try:
        obj = json.loads(body, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as e:
        raise Malformed("header is not valid JSON: %s" % e)
    except RecursionError:
        raise Malformed("header is not valid JSON: nested too deeply")
    if not isinstance(obj, dict):
        raise Malformed("header is not a JSON object")

    meta = obj.pop("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise Malformed("__metadata__ is not an object of strings")

    data = memoryview(raw)[8 + n:]
    entries = []
    for name, info in obj.items():
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise Malformed("tensor %r does not have exactly dtype, shape and data_offsets" % name)
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in DTYPE_SIZES:
            raise Malformed("tensor %r has unknown dtype %r" % (name, dtype))
        if not isinstance(shape, list) or not all(is_uint(d) for d in shape):
            raise Malformed("tensor %r has shape %r, not a list of non-negative integers" % (name, shape))
        if not isinstance(offsets, list) or len(offsets) != 2 or not all(is_uint(o) for o in offsets):
            raise Malformed("tensor %r has data_offsets %r, not two non-negative integers" % (name, offsets))
        entries.append((offsets[0], offsets[1], name, dtype, shape))

    entries.sort(key=lambda e: (e[0], e[1]))
    tensors = {}
    pos = 0
    for begin, end, name, dtype, shape in entries:
        if begin != pos or end < begin:
            raise Malformed("tensor %r has data_offsets [%d, %d] but the previous tensor ends at %d"
                            % (name, begin, end, pos))
        if end > len(data):
            raise Malformed("tensor %r ends at byte %d of the data but the file has %d"
                            % (name, end, len(data)))
        count = 1
        for d in shape:
            count *= d  # Python ints do not overflow
        if count * DTYPE_SIZES[dtype] != end - begin:
            raise Malformed("tensor %r has shape %r of %s but data_offsets [%d, %d]"
                            % (name, shape, dtype, begin, end))
        array = None
        if dtype == "F32":
            array = np.frombuffer(data[begin:end], dtype="<f4").reshape(shape)
        tensors[name] = (dtype, array)
        pos = end
    if pos != len(data):
        raise Malformed("the tensors end at byte %d of the data but the file has %d" % (pos, len(data)))
    return meta, tensors


def network(tensors):
    """Returns [(weight, bias)] in layer order, checking names and shapes."""
    layers = {}
    for name, (dtype, t) in tensors.items():
        if not name.startswith("fc"):
            continue
        m = LAYER.fullmatch(name)
        if not m:
            raise Malformed("tensor %r starts with fc but is not fcN.weight or fcN.bias" % name)
        if dtype != "F32":
            raise Malformed("tensor %r has dtype %s, not F32" % (name, dtype))
        layers.setdefault(int(m.group(1)), {})[m.group(2)] = t
    if not layers:
        raise Malformed("no fc1.weight in the checkpoint")
    if sorted(layers) != list(range(1, len(layers) + 1)):
        raise Malformed("layers %s are not numbered 1 to %d" % (sorted(layers), len(layers)))
    out = []
    width = 28 * 28
    for k in range(1, len(layers) + 1):
        lay = layers[k]
        if "weight" not in lay or "bias" not in lay:
            raise Malformed("layer fc%d lacks its %s" % (k, "weight" if "weight" not in lay else "bias"))
        w, b = lay["weight"], lay["bias"]
        if w.ndim != 2 or w.shape[1] != width:
            raise Malformed("fc%d.weight has shape %s, want [out, %d]" % (k, list(w.shape), width))
        if b.shape != (w.shape[0],):
            raise Malformed("fc%d.bias has shape %s, want [%d]" % (k, list(b.shape), w.shape[0]))
        width = w.shape[0]
        out.append((w, b))
    if width != 10:
        raise Malformed("the last layer has %d outputs, not 10" % width)
    return out


def read_idx(path, magic, dims):
    """Reads a gzipped IDX file with the given magic number and rank."""
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        # strerror, where there is one, leaves out the path named already.
        raise Malformed("%s: %s" % (path, e.strerror or e))
    except EOFError as e:
        raise Malformed("%s: %s" % (path, e))
    if len(raw) < 4 + 4 * dims:
        raise Malformed("%s: %d bytes, too short for an IDX header" % (path, len(raw)))
    (got,) = struct.unpack(">I", raw[:4])
    if got != magic:
        raise Malformed("%s: magic number 0x%08x, want 0x%08x" % (path, got, magic))
    shape = struct.unpack(">%dI" % dims, raw[4:4 + 4 * dims])
    count = 1
    for d in shape:
        count *= d
    body = raw[4 + 4 * dims:]
    if len(body) != count:
        raise Malformed("%s: header says %d bytes of data, file has %d" % (path, count, len(body)))
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


def evaluate(layers, images, labels):
    """Returns (accuracy, mean cross-entropy) of the network on the images."""
    h = images.reshape(len(images), -1).astype(np.float32) / np.float32(255)
    for i, (w, b) in enumerate(layers):
        h = h @ w.T + b
        if i < len(layers) - 1:
            h = np.maximum(h, np.float32(0))
    # The loss in float64: it is a mean over many images, and a log-softmax
    # that subtracts the row maximum first cannot overflow.
    z = h.astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    loss = -logp[np.arange(len(labels)), labels].mean()
    acc = (h.argmax(axis=1) == labels).mean()
    return acc, loss


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description="Evaluate a mnist-cl checkpoint on the MNIST test set.")
    ap.add_argument("model", help="checkpoint in safetensors format")
    ap.add_argument("--data", default=os.path.join(here, "..", "testdata", "mnist-small"),
                    help="folder of t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz "
                         "(default: testdata/mnist-small)")
    args = ap.parse_args()
    try:
        meta, tensors = read_safetensors(args.model)
        for k in sorted(meta):
            sys.stderr.write("metadata %s: %s\n" % (k, meta[k]))
        layers = network(tensors)
        images = read_idx(os.path.join(args.data, "t10k-images-idx3-ubyte.gz"), 0x00000803, 3)
        labels = read_idx(os.path.join(args.data, "t10k-labels-idx1-ubyte.gz"), 0x00000801, 1)
        if images.shape[1:] != (28, 28):
            raise Malformed("test images are %dx%d, not 28x28" % images.shape[1:])
        if len(images) != len(labels):
            raise Malformed("%d test images but %d labels" % (len(images), len(labels)))
        if len(labels) == 0:
            raise Malformed("the test set is empty")
        if labels.max() > 9:
            raise Malformed("a test label is %d, not a digit" % labels.max())
    except Malformed as e:
        sys.stderr.write("eval_checkpoint: %s\n" % e)
        sys.exit(1)
    except OSError as e:
        sys.stderr.write("eval_checkpoint: %s\n" % e)
        sys.exit(1)
    acc, loss = evaluate(layers, images, labels.astype(np.int64))
    print("accuracy %.4f loss %.4f (%d images)" % (acc, loss, len(labels)))


if __name__ == "__main__":
    main()
