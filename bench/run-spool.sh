#!/bin/sh
# run-spool.sh: batch jobs end to end: small recommend jobs submitted to
# recd's spool directory (as recctl submit does: staging/, fsync, rename into
# intake/) until their result file is in results/, side by side with the same
# jobs sent through the request ring (recd_job_submit) and the same users
# asked directly (recd_recommend).  Makes a scratch store from the built-in
# sample (recctl generate: USERS users, default 1000, 500 items, 50 events
# each), trains the small preset for EPOCHS epochs (default 1: the timing does
# not depend on the quality), starts recd on it with a spool in the scratch
# directory (SPOOL_WORKERS workers, default recd's) and runs bench/spool_bin.
# Arguments go to bench/spool_bin: -n JOBS (default 5000 each way), -u USERS
# a job (default 1), -k K (default 10), -c SUBMITTERS (default 16), -w
# WINDOW (jobs in flight, default 256), -m disk,spool,ring,direct (disk: the
# file system's own pace at two new files made durable a job, one after the
# other, without recd, measured first as a reference for the spool's figure;
# recd, which commits results in batches, can beat it).  TMPDIR: where
# the scratch directory goes (the spool's file system is what is measured).
# BUILDDIR: the configured build tree, default the source tree.  The last
# line printed is one JSON object.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
builddir=${BUILDDIR:-$top}
bin=$builddir/bench/spool_bin
if [ ! -x "$bin" ] || [ ! -x "$builddir/recd" ] || [ ! -x "$builddir/recctl" ]; then
	[ -f "$builddir/Makefile" ] || {
		echo "run-spool.sh: $builddir is not configured (run ./configure there, or set BUILDDIR)" >&2; exit 1; }
	make -C "$builddir" recd recctl bench/spool_bin >&2
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/recd-bench-spool.XXXXXX")
rpid=
cleanup() { [ -n "$rpid" ] && kill "$rpid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
"$builddir/recctl" -q -d "$tmp/state" generate --seed 7 --users "${USERS:-1000}" --items 500 \
	--events-per-user 50 --import "$tmp/data" >/dev/null
"$builddir/recctl" -q -d "$tmp/state" train --epochs "${EPOCHS:-1}" --eval-every 0 -q >/dev/null
awk -F, 'NR > 1 && !seen[$1]++ { print $1 }' "$tmp/data/events.csv" >"$tmp/users"
mkdir -p "$tmp/spool"
{
	printf 'state_dir = %s/state\nruntime_dir = %s/run\nspool_dir = %s/spool\n' "$tmp" "$tmp" "$tmp"
	printf 'status_interval = 0\nlog_level = warning\nallow_users = %s\n' "$(id -un)"
	[ -z "${SPOOL_WORKERS:-}" ] || printf 'spool_workers = %s\n' "$SPOOL_WORKERS"
} >"$tmp/recd.conf"
"$builddir/recd" -c "$tmp/recd.conf" 2>"$tmp/recd.log" &
rpid=$!
i=0
until [ -S "$tmp/run/recd.sock" ]; do
	i=$((i + 1)); [ "$i" -le 600 ] || { cat "$tmp/recd.log" >&2; exit 1; }
	kill -0 "$rpid" 2>/dev/null || { echo "run-spool.sh: recd exited:" >&2; cat "$tmp/recd.log" >&2; exit 1; }
	sleep 0.05
done
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) before the run"
echo "store: $(wc -l <"$tmp/users") users; model: small preset, ${EPOCHS:-1} epoch(s); spool on $(df -PT "$tmp" | awk 'NR == 2 { print $2 " (" $1 ")" }')"
"$bin" "$tmp/spool" "$tmp/run/recd.sock" "$tmp/users" "$@"
