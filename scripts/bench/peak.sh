#!/bin/sh
# Print the CPU (lscpu) and measure its single-precision FMA peak with peak.c.
# Arguments go to the program: --threads N --seconds S --json
# The lscpu summary goes to stderr, so --json output stays one object.
set -eu
here=$(dirname "$0")
bin=${PEAK_BIN:-/tmp/peak}
{
	lscpu | grep -E '^(Model name|CPU family|Model|Thread\(s\) per core|Core\(s\) per socket|Socket\(s\)|CPU\(s\)|CPU max MHz|Hypervisor vendor|L2 cache|L3 cache):' || true
	printf 'cpu MHz (/proc/cpuinfo, the TSC on a VM, not the boost clock): %s\n' \
		"$(awk -F': ' '/^cpu MHz/ {print $2; exit}' /proc/cpuinfo)"
	printf 'SIMD flags:'
	for f in avx2 fma avx512f avx512vl avx512_bf16 avx512_vnni; do
		if grep -qw "$f" /proc/cpuinfo; then printf ' %s' "$f"; fi
	done
	printf '\n'
} >&2
# No -m flags: peak.c compiles each width for its own target and picks at run time.
gcc -O2 -Wall -pthread -o "$bin" "$here/peak.c"
exec "$bin" "$@"
