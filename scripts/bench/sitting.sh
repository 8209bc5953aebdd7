#!/bin/sh
# sitting.sh: one benchmark sitting, every figure of a BENCHMARKS.md section
# in one go, one command after another (never two at once: the machine has
# two cores), each one's output in its own file under OUT.
#
#   sh scripts/bench/sitting.sh [OUT]        (default /tmp/sitting-DATE)
#
# Runs: the fma peak (peak.sh); mnist-cl bench (GEMMs, steps, every launch,
# the device's peak, an epoch, memory); OpenBLAS through numpy on the same
# GEMMs and PyTorch's epoch, both with the CPU's own OpenBLAS kernels
# (OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset in those commands only);
# then, where the CPU has AVX-512, the same for AVX2 (PoCL compiling for
# Haswell, mnist-cl sizing its blocks for 16 ymm registers, OpenBLAS's
# Haswell kernels), and three short trainings without and with the
# distortions. Needs a built ./mnist-cl, /usr/bin/python3 with numpy and
# torch, and libopenblas0-pthread (scripts/bench/README.md).
set -eu
OUT=${1:-/tmp/sitting-$(date -u +%Y%m%dT%H%M)}
mkdir -p "$OUT"
B=./mnist-cl
PY=/usr/bin/python3
run() { # run NAME CMD...: time CMD, its output to OUT/NAME.txt
	name=$1
	shift
	echo "$(date -u +%H:%M:%S) $name"
	/usr/bin/time -f "wall %e s, peak RSS %M KB" "$@" >"$OUT/$name.txt" 2>&1 || echo "  $name failed: see $OUT/$name.txt"
}
# The anchors run with OpenBLAS choosing its kernels from the CPU.
anchor="env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE"

lscpu >"$OUT/lscpu.txt"
run peak sh scripts/bench/peak.sh
run bench $B bench --reps 9
run numpy $anchor $PY scripts/bench/numpy_sgemm.py --threads 2 --openblas-core auto --no-peak
run pytorch $anchor $PY scripts/bench/pytorch_mnist.py --epochs 4 --threads 2 --openblas-core auto
if grep -q avx512f /proc/cpuinfo; then
	# AVX2 on this CPU: see BENCHMARKS.md on what this emulation is.
	cache=$(mktemp -d)
	run bench-avx2 env POCL_LLVM_CPU_NAME=haswell POCL_KERNELLIB_NAME=avx2 POCL_CACHE_DIR="$cache" \
		MNISTCL_REGISTERS=16x8 $B bench --reps 9
	run numpy-haswell $anchor $PY scripts/bench/numpy_sgemm.py --threads 2 --openblas-core Haswell --no-peak
	run pytorch-haswell $anchor $PY scripts/bench/pytorch_mnist.py --epochs 4 --threads 2 --openblas-core Haswell
	rm -rf "$cache"
fi
for a in none affine elastic; do
	run "train-$a" $B train --epochs 3 --augment $a
done
echo "results in $OUT"
