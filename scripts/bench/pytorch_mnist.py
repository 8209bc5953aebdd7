#!/usr/bin/python3
"""The mnist-cl network and training in PyTorch on the CPU, for comparison.

784-512-256-10 MLP, ReLU hidden layers, softmax + cross-entropy (mean over
the batch), plain mini-batch SGD (no momentum, no weight decay), He-normal
weights (variance 2/fan_in) and zero biases, pixels x/255 as float32. The
training file's first n - v images train and its last v validate (v = 5,000
when n >= 10,000, else n/10, as mnist.ValidationLen); the test file tests.
Every epoch shuffles with torch.randperm; the last, partial batch is kept, as
in mnist-cl.

The per-epoch time covers the training loop only (shuffle, gather, forward,
loss, backward, update, and the running training loss/accuracy, which
mnist-cl also keeps); validation and test evaluation are timed apart.

Run it with Debian's python (/usr/bin/python3), which has python3-torch.
"""

import argparse
import os
import sys

from _common import add_openblas_core, openblas, set_openblas_core


def default_data():
    # mnist.DefaultCacheDir: os.UserCacheDir()/mnist-cl, i.e.
    # $XDG_CACHE_HOME/mnist-cl or ~/.cache/mnist-cl on Linux.
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    d = os.path.join(base, "mnist-cl")
    if os.path.exists(os.path.join(d, "train-images-idx3-ubyte.gz")):
        return d
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.normpath(os.path.join(here, "..", "..", "testdata", "mnist-small"))


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=None,
                   help="folder with the four gzipped IDX files (default: ~/.cache/mnist-cl, "
                        "else testdata/mnist-small)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.2)
    p.add_argument("--threads", type=int, default=2,
                   help="torch.set_num_threads, and OMP_NUM_THREADS/OPENBLAS_NUM_THREADS "
                        "(set before torch loads, since torch does not pass its count to OpenBLAS)")
    add_openblas_core(p, "torch")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the text report")
    return p.parse_args()


args = parse_args()
# OpenBLAS reads its thread count when it loads; torch.set_num_threads only
# reaches OpenMP (and MKL), so set both before importing torch.
os.environ["OMP_NUM_THREADS"] = str(args.threads)
os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)
set_openblas_core(args.openblas_core)

import gzip  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402


def read_idx(path, magic):
    with gzip.open(path, "rb") as f:
        buf = f.read()
    got = int.from_bytes(buf[0:4], "big")
    if got != magic:
        sys.exit(f"{path}: magic {got}, want {magic}")
    n = int.from_bytes(buf[4:8], "big")
    if magic == 2051:
        rows, cols = int.from_bytes(buf[8:12], "big"), int.from_bytes(buf[12:16], "big")
        return np.frombuffer(buf, dtype=np.uint8, offset=16).reshape(n, rows * cols)
    return np.frombuffer(buf, dtype=np.uint8, offset=8).reshape(n)


def load(folder, prefix):
    x = read_idx(os.path.join(folder, f"{prefix}-images-idx3-ubyte.gz"), 2051)
    y = read_idx(os.path.join(folder, f"{prefix}-labels-idx1-ubyte.gz"), 2049)
    if len(x) != len(y):
        sys.exit(f"{folder}: {len(x)} {prefix} images but {len(y)} labels")
    return torch.from_numpy(x.astype(np.float32) / np.float32(255)), torch.from_numpy(y.astype(np.int64))


def blas_info():
    for part in torch.__config__.show().replace(",", "\n").splitlines():
        if "BLAS_INFO=" in part and "LAPACK" not in part:
            return part[part.index("BLAS_INFO="):].strip()
    return "BLAS_INFO not reported"


def evaluate(model, x, y, batch=1000):
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            correct += (model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item()
    return correct / len(x)


def main():
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data = args.data or default_data()
    xtr_all, ytr_all = load(data, "train")
    xte, yte = load(data, "t10k")
    n_all = len(xtr_all)
    v = 5000 if n_all >= 10000 else n_all // 10
    xtr, ytr = xtr_all[:n_all - v].contiguous(), ytr_all[:n_all - v].contiguous()
    xva, yva = xtr_all[n_all - v:].contiguous(), ytr_all[n_all - v:].contiguous()
    n = len(xtr)

    model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10))
    for m in model:
        if isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")  # N(0, 2/fan_in)
            nn.init.zeros_(m.bias)
    loss_fn = nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=args.lr)

    lib, obcfg, _ = openblas()
    info = {
        "tool": "pytorch",
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "blas_info": blas_info(),
        "openblas_lib": lib,
        "openblas_config": obcfg,
        "openblas_coretype_env": os.environ.get("OPENBLAS_CORETYPE"),
        "data": data,
        "train": n, "validation": len(xva), "test": len(xte),
        "batch": args.batch, "lr": args.lr, "epochs": args.epochs,
    }
    if not args.json:
        print(f"torch {info['torch_version']}, threads {info['threads']}, {info['blas_info']}")
        print(f"OpenBLAS: {obcfg or 'not loaded'} ({lib or '-'}), OPENBLAS_CORETYPE={info['openblas_coretype_env']}")
        print(f"data {data}: {n} train / {len(xva)} validation / {len(xte)} test; batch {args.batch}, lr {args.lr}")
        print(f"{'epoch':>5} {'train_s':>9} {'images/s':>10} {'train_loss':>10} {'train_acc':>9} {'val_acc':>8} {'test_acc':>8}")

    epochs = []
    for ep in range(1, args.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        perm = torch.randperm(n)
        loss_sum = torch.zeros((), dtype=torch.float64)
        correct = torch.zeros((), dtype=torch.int64)
        for first in range(0, n, args.batch):
            idx = perm[first:first + args.batch]
            x, y = xtr[idx], ytr[idx]
            logits = model(x)
            loss = loss_fn(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                loss_sum += loss.detach().double() * len(idx)
                correct += (logits.argmax(1) == y).sum()
        train_s = time.perf_counter() - t0
        model.eval()
        val_acc = evaluate(model, xva, yva)
        test_acc = evaluate(model, xte, yte)
        e = {"epoch": ep, "train_seconds": train_s, "images_per_sec": n / train_s,
             "train_loss": loss_sum.item() / n, "train_accuracy": correct.item() / n,
             "val_accuracy": val_acc, "test_accuracy": test_acc}
        epochs.append(e)
        if not args.json:
            print(f"{ep:>5} {train_s:>9.3f} {e['images_per_sec']:>10.0f} {e['train_loss']:>10.4f} "
                  f"{e['train_accuracy']:>9.4f} {val_acc:>8.4f} {test_acc:>8.4f}", flush=True)

    rest = [e["train_seconds"] for e in epochs[1:]] or [e["train_seconds"] for e in epochs]
    med = statistics.median(rest)
    info["epochs_detail"] = epochs
    info["median_epoch_seconds"] = med
    info["median_excludes_first"] = len(epochs) > 1
    info["median_images_per_sec"] = n / med
    # ru_maxrss is in KiB on Linux.
    info["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if args.json:
        print(json.dumps(info))
    else:
        which = "excluding the first" if info["median_excludes_first"] else "only one epoch, so including it"
        print(f"median epoch {med:.3f} s ({which}), {info['median_images_per_sec']:.0f} images/s; "
              f"peak RSS {info['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
