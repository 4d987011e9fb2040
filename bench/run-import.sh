#!/bin/sh
# run-import.sh: times `recctl import ml1m-seq` of MovieLens-1M (1,000,209
# events) into a fresh state directory, three runs, and reports the median.
# Usage: bench/run-import.sh [DATA_DIR_OR_FILE]   (default: ../shared/data)
# The last line printed is one JSON object: events, seconds, events_per_s,
# store_bytes (data.mdb's size on disk).  Installs nothing.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
# The recctl of ./quickstart's and ./run-tests' build, else of an in-place build.
if [ -z "${RECCTL:-}" ]; then
	RECCTL=$here/build/recctl
	[ -x "$RECCTL" ] || RECCTL=$here/recctl
fi
src=${1:-$here/../shared/data}
[ -d "$src" ] && src=$src/ml-1m/ml1m_full_origids.txt
[ -f "$src" ] || { echo "run-import.sh: $src not found (give the data directory or the file)" >&2; exit 77; }
[ -x "$RECCTL" ] || { echo "run-import.sh: $RECCTL is not built (run make)" >&2; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/recd-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# Warm the page cache so every run reads the file from memory.
cat "$src" >/dev/null
for run in 1 2 3; do
	st=$tmp/state$run
	# Wall-clock time of the whole command: process start, hashing the
	# file, parsing, every commit and the final fsync.
	t0=$(date +%s.%N)
	"$RECCTL" -d "$st" -q --json import ml1m-seq "$src" >"$tmp/out$run.json"
	t1=$(date +%s.%N)
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	events=$(grep -o '"events_added":[0-9]*' "$tmp/out$run.json" | cut -d: -f2)
	bytes=$(stat -c %s "$st/data.mdb")
	echo "$secs $events $bytes" >>"$tmp/runs"
	printf 'run %d: %s events in %.3f s, store %s bytes\n' "$run" "$events" "$secs" "$bytes"
done
sort -g "$tmp/runs" | sed -n 2p | {
	read -r secs events bytes
	eps=$(awk -v e="$events" -v s="$secs" 'BEGIN { printf "%.0f", e / s }')
	mib=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }')
	echo "ml1m-seq import of $(basename "$src"): median of 3 runs: $events events in $secs s = $eps events/s; store $mib MiB (target: >= 500000 events/s, <= 64 MiB)"
	echo "{\"events\":$events,\"seconds\":$secs,\"events_per_s\":$eps,\"store_bytes\":$bytes}"
}
