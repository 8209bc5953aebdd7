#!/bin/sh
# rounds.sh: a benchmark sitting, side-by-side figures that survive this
# VM's drifting speed. It measures the fma peak (peak.sh, into OUT/peak.txt)
# and the CPU (lscpu), then each of N rounds (default 5) runs mnist-cl bench and OpenBLAS's sgemm
# through numpy with the CPU's own kernels, then both again built for AVX2
# (PoCL compiling for Haswell, 16 ymm registers; OpenBLAS's Haswell
# kernels); then three rounds of train --epochs 3 beside PyTorch's epochs,
# for both, and train with each distortion. Every output lands in OUT;
# rounds_summary.py OUT gives the medians and ratios of BENCHMARKS.md.
# The AVX2 half runs only on a CPU with AVX-512 (on an AVX2-only one the
# first half is AVX2 already). Needs a built ./mnist-cl, tuned for the
# register files it runs (mnist-cl tune, and on AVX-512 again with
# MNISTCL_REGISTERS=16x8 and the two POCL_ variables below).
#
#   sh scripts/bench/rounds.sh OUT [ROUNDS]
set -eu
OUT=${1:?usage: rounds.sh OUT [ROUNDS]}; N=${2:-5}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd) # before the cd below, which a relative OUT would follow
cd "$(dirname "$0")/../.."
A="env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE"
lscpu > "$OUT/lscpu.txt"
sh scripts/bench/peak.sh > "$OUT/peak.txt" 2>&1
H="env POCL_LLVM_CPU_NAME=haswell POCL_KERNELLIB_NAME=avx2 MNISTCL_REGISTERS=16x8"
emulate=false
if grep -qw avx512f /proc/cpuinfo; then emulate=true; fi
cache=$(mktemp -d)
for i in $(seq "$N"); do
  echo "round $i $(date -u +%T)"
  ./mnist-cl bench --reps 9 > $OUT/bench-$i.txt 2>&1
  $A /usr/bin/python3 scripts/bench/numpy_sgemm.py --threads 2 --openblas-core auto --no-peak > $OUT/numpy-$i.txt 2>&1
  if $emulate; then
    $H POCL_CACHE_DIR=$cache ./mnist-cl bench --reps 9 > $OUT/bench-avx2-$i.txt 2>&1
    $A /usr/bin/python3 scripts/bench/numpy_sgemm.py --threads 2 --openblas-core Haswell --no-peak > $OUT/numpy-haswell-$i.txt 2>&1
  fi
done
for i in 1 2 3; do
  echo "epochs $i $(date -u +%T)"
  ./mnist-cl train --epochs 3 > $OUT/train-$i.txt 2>&1
  $A /usr/bin/python3 scripts/bench/pytorch_mnist.py --epochs 3 --threads 2 --openblas-core auto > $OUT/pytorch-$i.txt 2>&1
  if $emulate; then
    $H POCL_CACHE_DIR=$cache ./mnist-cl train --epochs 3 > $OUT/train-avx2-$i.txt 2>&1
    $A /usr/bin/python3 scripts/bench/pytorch_mnist.py --epochs 3 --threads 2 --openblas-core Haswell > $OUT/pytorch-haswell-$i.txt 2>&1
  fi
  for a in affine elastic; do ./mnist-cl train --epochs 3 --augment $a > $OUT/train-$a-$i.txt 2>&1; done
done
rm -rf $cache
echo done $(date -u +%T)
