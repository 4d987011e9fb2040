#!/bin/sh
# run-serve.sh: recommendations through recd's request ring: p50/p99 of one
# client's round trips and of N client threads at once, and the rate they
# reach.  Makes a scratch store from the built-in sample (recctl generate:
# USERS users, default 1000, 500 items, 50 events each), trains the small
# preset for EPOCHS epochs (default 2: the timing does not depend on the
# quality), starts recd on it and runs bench/ipc_bin -R in recommend mode.
# Arguments go to bench/ipc_bin: -n REQUESTS (default 20000), -k K (default
# 10), -s CLIENTS (default 2).  BUILDDIR: the configured build tree, default
# the source tree.  The last line printed is one JSON object.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
builddir=${BUILDDIR:-$top}
bin=$builddir/bench/ipc_bin
if [ ! -x "$bin" ] || [ ! -x "$builddir/recd" ] || [ ! -x "$builddir/recctl" ]; then
	[ -f "$builddir/Makefile" ] || {
		echo "run-serve.sh: $builddir is not configured (run ./configure there, or set BUILDDIR)" >&2; exit 1; }
	make -C "$builddir" recd recctl bench/ipc_bin >&2
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/recd-bench-serve.XXXXXX")
rpid=
cleanup() { [ -n "$rpid" ] && kill "$rpid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
"$builddir/recctl" -q -d "$tmp/state" generate --seed 7 --users "${USERS:-1000}" --items 500 \
	--events-per-user 50 --import "$tmp/data" >/dev/null
"$builddir/recctl" -q -d "$tmp/state" train --epochs "${EPOCHS:-2}" --eval-every 0 -q >/dev/null
awk -F, 'NR > 1 && !seen[$1]++ { print $1 }' "$tmp/data/events.csv" >"$tmp/users"
printf 'state_dir = %s/state\nruntime_dir = %s/run\nstatus_interval = 0\nlog_level = warning\n' "$tmp" "$tmp" >"$tmp/recd.conf"
"$builddir/recd" -c "$tmp/recd.conf" 2>"$tmp/recd.log" &
rpid=$!
i=0
until [ -S "$tmp/run/recd.sock" ]; do
	i=$((i + 1)); [ "$i" -le 600 ] || { cat "$tmp/recd.log" >&2; exit 1; }
	sleep 0.05
done
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) before the run"
echo "store: $(wc -l <"$tmp/users") users; model: small preset, ${EPOCHS:-2} epochs"
"$bin" "$tmp/run/recd.sock" -R "$tmp/users" -s 2 "$@"
