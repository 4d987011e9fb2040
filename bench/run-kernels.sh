#!/bin/sh
# run-kernels.sh: times the forward and the backward pass of every CPU
# kernel at the SASRec ML-1M training shape (B 128, T 200, C 64, one head,
# V 3417 items, F 256, ML-1M-like sequence lengths) with 1 and 2 threads.
# Arguments go to bench/kernels_bin: -F 64, -C 50, -r 15 (repetitions),
# -g (portable kernels instead of AVX2), -o attention (one op), ...
# The last line printed is one JSON object with the milliseconds per op
# (median of the repetitions).  Installs nothing; builds bench/kernels_bin
# (a check program) if it is missing.  BUILDDIR: the configured build tree,
# default the source tree.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
builddir=${BUILDDIR:-$top}
bin=$builddir/bench/kernels_bin
if [ ! -x "$bin" ]; then
	[ -f "$builddir/Makefile" ] || {
		echo "run-kernels.sh: $builddir is not configured (run ./configure there, or set BUILDDIR)" >&2; exit 1; }
	make -C "$builddir" bench/kernels_bin >&2
fi
# Timings on a busy machine mean little; say how busy it was.
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) before the run"
exec "$bin" "$@"
