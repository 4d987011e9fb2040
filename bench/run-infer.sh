#!/bin/sh
# run-infer.sh: recommend latency through the serving engine (model/serve.c)
# on MovieLens-1M: top-10 for random users, one request at a time on one
# thread, uncached (cache off: events read, forward pass, scoring) and cached
# (repeats: scoring over the catalog only), p50/p99/mean over the requests.
# Usage: bench/run infer [--data FILE] [--requests N] [--trained] [--epochs N]
#                        [--preset small|large]
# Default data: ../shared/data/ml-1m/ml1m_sasrec_style.txt, imported with
# recctl import ml1m-seq.  The model is a freshly initialised one of the
# preset (latency does not depend on training quality); --trained trains
# one briefly instead (--epochs, default 2).  The last line printed is one
# JSON object.  Installs nothing; builds bench/infer_bin (a check program)
# if it is missing.  BUILDDIR: the configured build tree, default the source
# tree; RECCTL: the recctl to import with (default BUILDDIR/recctl).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
builddir=${BUILDDIR:-$top}
[ -d "$top/build" ] && [ -z "${BUILDDIR:-}" ] && [ ! -f "$top/Makefile" ] && builddir=$top/build
RECCTL=${RECCTL:-$builddir/recctl}
bin=$builddir/bench/infer_bin
data=$top/../shared/data/ml-1m/ml1m_sasrec_style.txt
requests=2000 trained=0 epochs=2 preset=small
while [ $# -gt 0 ]; do
	case $1 in
	--data) data=$2; shift 2 ;;
	--requests) requests=$2; shift 2 ;;
	--trained) trained=1; shift ;;
	--epochs) epochs=$2; shift 2 ;;
	--preset) preset=$2; shift 2 ;;
	*) echo "run-infer.sh: unknown option $1" >&2; exit 2 ;;
	esac
done
[ -f "$data" ] || { echo "run-infer.sh: $data not found (give --data FILE)" >&2; exit 77; }
if [ ! -x "$bin" ]; then
	[ -f "$builddir/Makefile" ] || {
		echo "run-infer.sh: $builddir is not configured (run ./configure there, or set BUILDDIR)" >&2; exit 1; }
	make -C "$builddir" bench/infer_bin >&2
fi
[ -x "$RECCTL" ] || { echo "run-infer.sh: $RECCTL is not built (run make, or set RECCTL)" >&2; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/recd-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

"$RECCTL" -q -d "$tmp/st" import ml1m-seq "$data" >/dev/null
# the users, in file order (the ml1m-seq format: "user item" lines)
cut -d' ' -f1 "$data" | uniq >"$tmp/users"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) before the run"
if [ "$trained" = 1 ]; then
	"$RECCTL" -q -d "$tmp/st" train --preset "$preset" --epochs "$epochs" --eval-every 0 >/dev/null
	exec "$bin" -s "$tmp/st" -u "$tmp/users" -n "$requests"
fi
"$bin" -s "$tmp/st" -u "$tmp/users" -n "$requests" --fresh --preset "$preset"
