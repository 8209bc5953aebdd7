#!/usr/bin/python3
"""OpenBLAS sgemm through numpy on the eight GEMMs of one 784-512-256-10 step.

Shapes and names follow kernels/bench_test.go (BenchmarkGemm): NAME_MxNxK,
where C is M x N, K is the inner dimension, and op(A) op(B) is one of the
three forms the device kernels use, all row-major (C-contiguous) float32:

  NN  C = A   B     A: M x K,  B: K x N
  TN  C = A^T B     A stored K x M, passed as the view a.T
  NT  C = A   B^T   B stored N x K, passed as the view b.T

numpy hands a transposed view to cblas_sgemm as a transposed operand (a
C-contiguous array's .T is F-contiguous), so no copy is timed. Each result
goes into a preallocated out= array.

Run it with Debian's python (/usr/bin/python3), which has python3-numpy.
"""

import argparse
import os
import sys

from _common import add_openblas_core, openblas, set_openblas_core


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", "-B", type=int, default=128, help="batch size B")
    p.add_argument("--threads", type=int, default=2,
                   help="OPENBLAS_NUM_THREADS, set before numpy loads (0: leave the environment as it is)")
    add_openblas_core(p, "numpy")
    p.add_argument("--reps", type=int, default=7, help="timed repetitions per shape; the median is reported")
    p.add_argument("--target", type=float, default=0.2, help="seconds one repetition should take (sizes its loop)")
    p.add_argument("--no-peak", action="store_true", help="skip the 1024^3 anchor")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    return p.parse_args()


args = parse_args()
if args.threads > 0:
    os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)
set_openblas_core(args.openblas_core)

import contextlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402


def shapes(b):
    # name, ta, tb, m, n, k, in the order of kernels/bench_test.go.
    return [
        ("Z1=XW1", False, False, b, 512, 784),
        ("Z2=Z1W2", False, False, b, 256, 512),
        ("Z3=Z2W3", False, False, b, 10, 256),
        ("dW3=Z2tD3", True, False, 256, 10, b),
        ("dZ2=D3W3t", False, True, b, 256, 10),
        ("dW2=Z1tD2", True, False, 512, 256, b),
        ("dZ1=D2W2t", False, True, b, 512, 256),
        ("dW1=XtD1", True, False, 784, 512, b),
    ]


def time_gemm(name, ta, tb, m, n, k, rng):
    a = rng.uniform(-1, 1, (k, m) if ta else (m, k)).astype(np.float32)
    b = rng.uniform(-1, 1, (n, k) if tb else (k, n)).astype(np.float32)
    c = np.empty((m, n), dtype=np.float32)
    opa, opb = (a.T if ta else a), (b.T if tb else b)
    np.matmul(opa, opb, out=c)  # warm up: threads, pages
    ref = opa.astype(np.float64) @ opb.astype(np.float64)
    err = float(np.max(np.abs(c - ref)))
    # Size the loop so one repetition takes about args.target seconds.
    loops = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(loops):
            np.matmul(opa, opb, out=c)
        dt = time.perf_counter() - t0
        if dt >= args.target / 4 or loops >= 1 << 24:
            break
        loops *= 4
    loops = max(1, int(loops * args.target / max(dt, 1e-9)))
    per = []
    for _ in range(args.reps):
        t0 = time.perf_counter()
        for _ in range(loops):
            np.matmul(opa, opb, out=c)
        per.append((time.perf_counter() - t0) / loops)
    med = statistics.median(per)
    form = ("T" if ta else "N") + ("T" if tb else "N")
    return {"name": f"{name}_{m}x{n}x{k}", "form": form, "m": m, "n": n, "k": k,
            "loops": loops, "reps": args.reps,
            "median_us": med * 1e6, "min_us": min(per) * 1e6, "max_us": max(per) * 1e6,
            "gflops": 2.0 * m * n * k / med / 1e9, "max_abs_err": err}


def main():
    rng = np.random.default_rng(1)
    path, cfg, threads = openblas()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        np.show_config()
    blas_libs = [ln.strip() for ln in buf.getvalue().splitlines() if "libraries" in ln]
    info = {"tool": "numpy", "numpy_version": np.__version__, "python": sys.version.split()[0],
            "openblas_lib": path, "openblas_config": cfg, "openblas_threads": threads,
            "openblas_coretype_env": os.environ.get("OPENBLAS_CORETYPE"),
            "numpy_blas_config": blas_libs[:1],
            "libblas_so_3": os.path.realpath("/usr/lib/x86_64-linux-gnu/libblas.so.3"),
            "batch": args.batch, "convention": "NAME_MxNxK: C is M x N, K inner; form = op(A) op(B), row-major"}
    rows = []
    if not args.json:
        print(f"numpy {np.__version__}; numpy built against: {blas_libs[0] if blas_libs else '?'} "
              f"(libblas.so.3 -> {info['libblas_so_3']})")
        print(f"OpenBLAS: {cfg or 'not loaded'}, {threads} threads, OPENBLAS_CORETYPE={info['openblas_coretype_env']}")
        print(f"{info['convention']}; median of {args.reps} repetitions of ~{args.target} s each")
        print(f"{'shape':<26} {'form':>4} {'median_us':>10} {'GFLOP/s':>8} {'loops':>7} {'max_err':>8}")
    total_us, total_flop = 0.0, 0.0
    todo = shapes(args.batch)
    if not args.no_peak:
        todo = todo + [("peak", False, False, 1024, 1024, 1024)]
    for i, s in enumerate(todo):
        r = time_gemm(*s, rng)
        rows.append(r)
        if i < 8:
            total_us += r["median_us"]
            total_flop += 2.0 * r["m"] * r["n"] * r["k"]
        if not args.json:
            print(f"{r['name']:<26} {r['form']:>4} {r['median_us']:>10.2f} {r['gflops']:>8.1f} "
                  f"{r['loops']:>7} {r['max_abs_err']:>8.1e}", flush=True)
        if i == 7 and not args.json:
            print(f"{'total of the eight':<26} {'':>4} {total_us:>10.2f} {total_flop / total_us / 1e3:>8.1f}")
    info["shapes"] = rows
    info["total_eight_us"] = total_us
    info["total_eight_gflops"] = total_flop / total_us / 1e3
    if args.json:
        print(json.dumps(info))


if __name__ == "__main__":
    main()
