#!/bin/sh
# run-ipc.sh: recd's request ring against a plain Unix-socket
# request/response (bench/bench_ipc.c): ping round trip p50/p99 and pipelined
# throughput for both, and their ratio.  Starts its own recd on an empty
# scratch store (a ping needs no model) and stops it after.  Arguments go to
# bench/ipc_bin: -n ROUNDTRIPS (default 20000), -t SECONDS per throughput
# run (default 1), -s CLIENTS (also N client threads at once).  BUILDDIR: the
# configured build tree, default the source tree.  The last line printed is
# one JSON object.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
builddir=${BUILDDIR:-$top}
bin=$builddir/bench/ipc_bin
if [ ! -x "$bin" ] || [ ! -x "$builddir/recd" ]; then
	[ -f "$builddir/Makefile" ] || {
		echo "run-ipc.sh: $builddir is not configured (run ./configure there, or set BUILDDIR)" >&2; exit 1; }
	make -C "$builddir" recd bench/ipc_bin >&2
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/recd-bench-ipc.XXXXXX")
rpid=
cleanup() { [ -n "$rpid" ] && kill "$rpid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
printf 'state_dir = %s/state\nruntime_dir = %s/run\nstatus_interval = 0\nlog_level = warning\n' "$tmp" "$tmp" >"$tmp/recd.conf"
"$builddir/recd" -c "$tmp/recd.conf" 2>"$tmp/recd.log" &
rpid=$!
i=0
until [ -S "$tmp/run/recd.sock" ]; do
	i=$((i + 1)); [ "$i" -le 200 ] || { cat "$tmp/recd.log" >&2; exit 1; }
	sleep 0.05
done
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) before the run"
"$bin" "$tmp/run/recd.sock" "$@"
