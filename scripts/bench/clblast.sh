#!/bin/sh
# Build and run clblast_sgemm (CLBlast SGEMM on PoCL, the eight training GEMMs).
# Arguments go to the program: --batch B --reps N --target S --device SUBSTR --no-peak --json
# The build and the package versions go to stderr, so --json output stays one object.
set -eu
here=$(dirname "$0")
bin=${CLBLAST_BIN:-/tmp/clblast_sgemm}
gcc -O2 -Wall -o "$bin" "$here/clblast_sgemm.c" -lclblast -lOpenCL -lm
dpkg-query -W -f '${Package} ${Version}\n' libclblast1 pocl-opencl-icd libpocl2 >&2 2>/dev/null || true
exec "$bin" "$@"
