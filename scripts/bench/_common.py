"""What numpy_sgemm.py and pytorch_mnist.py share: the --openblas-core flag,
which must act before numpy or torch loads OpenBLAS, and the report of the
OpenBLAS that did load. It imports neither numpy nor torch."""

import ctypes
import os


def add_openblas_core(p, loader):
    """Adds --openblas-core to the parser p; loader names what loads OpenBLAS."""
    p.add_argument("--openblas-core", default="env",
                   help=f"OPENBLAS_CORETYPE before {loader} loads: 'env' leaves the environment as it is, "
                        "'auto' removes it (OpenBLAS detects the CPU), anything else sets it (e.g. Haswell, SkylakeX)")


def set_openblas_core(core):
    """Sets OPENBLAS_CORETYPE as --openblas-core asks; call it before OpenBLAS loads."""
    if core == "auto":
        os.environ.pop("OPENBLAS_CORETYPE", None)
    elif core != "env":
        os.environ["OPENBLAS_CORETYPE"] = core


def openblas():
    """(library path, openblas_get_config, threads) of the OpenBLAS loaded, or Nones."""
    path = None
    with open("/proc/self/maps") as f:
        for line in f:
            name = line.split()[-1]
            if os.path.basename(name).startswith("libopenblas"):
                path = name
                break
    if path is None:
        return None, None, None
    try:
        lib = ctypes.CDLL(path)
        lib.openblas_get_config.restype = ctypes.c_char_p
        return path, lib.openblas_get_config().decode(), lib.openblas_get_num_threads()
    except (OSError, AttributeError):
        return path, None, None
