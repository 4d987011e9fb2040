#!/bin/sh
# run-serve.sh: recommendations and real-time ingest through recd's request
# ring on the ML-1M `small` model (bench/bench_serve.c).
#
#   bench/run serve [--data FILE] [--epochs N] [--no-finetune] [SERVE_BIN ARGS]
#
# Imports FILE (default DATA/ml-1m/ml1m_sasrec_style.txt, DATA being
# $RECD_DATA_DIR, else ../shared/data: 'user item' lines; exit 77 when it is
# absent) with recctl import ml1m-seq into a scratch store, trains the small
# preset for N epochs (default 1, no validation: the timing does not depend
# on the model's quality), starts recd on it (with a spool) and runs
# bench/serve_bin: the first (cold) recommendation of each user, 1 client's
# cached round trips (p50, p99), 4 clients at once (rate, p50, p99), recd's
# VmRSS and VmHWM, ingest of batched events from 4 clients (each request one
# durable commit, confirmed in its reply), and (unless --no-finetune) 1
# client's round trips while a fine-tune job (20 steps, not activated) runs
# in recd, next to the same without it.  Other arguments go to
# bench/serve_bin: -n REQUESTS per measurement (default 50000), -k K
# (default 10), -c CLIENTS (default 4), -e EVENTS per ingest client (default
# 50000), -b BATCH events per ingest request (default 1000), -w WINDOW
# ingest requests in flight per client (default 4).  BUILDDIR: the
# configured build tree, default the source tree.  The last line printed is
# one JSON object.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
builddir=${BUILDDIR:-$top}
data=${RECD_DATA_DIR:-$top/../shared/data}/ml-1m/ml1m_sasrec_style.txt
epochs=1
finetune=1
while [ $# -gt 0 ]; do
	case $1 in
	--data) [ $# -ge 2 ] || { echo "run-serve.sh: --data needs a file" >&2; exit 2; }; data=$2; shift 2 ;;
	--epochs) [ $# -ge 2 ] || { echo "run-serve.sh: --epochs needs a number" >&2; exit 2; }; epochs=$2; shift 2 ;;
	--no-finetune) finetune=0; shift ;;
	*) break ;;
	esac
done
if [ ! -r "$data" ]; then
	echo "run-serve.sh: $data is not there (the ML-1M 'user item' file; --data FILE names another): skipped" >&2
	exit 77
fi
bin=$builddir/bench/serve_bin
if [ ! -x "$bin" ] || [ ! -x "$builddir/recd" ] || [ ! -x "$builddir/recctl" ]; then
	[ -f "$builddir/Makefile" ] || {
		echo "run-serve.sh: $builddir is not configured (run ./configure there, or set BUILDDIR)" >&2; exit 1; }
	make -C "$builddir" recd recctl bench/serve_bin >&2
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/recd-bench-serve.XXXXXX")
rpid=
cleanup() {
	if [ -n "$rpid" ]; then
		kill "$rpid" 2>/dev/null
		wait "$rpid" 2>/dev/null || :
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) before the run"
t0=$(date +%s.%N)
"$builddir/recctl" -q -d "$tmp/state" import ml1m-seq "$data" >/dev/null
t1=$(date +%s.%N)
"$builddir/recctl" -q -d "$tmp/state" train --preset small --epochs "$epochs" --eval-every 0 -q >/dev/null
t2=$(date +%s.%N)
awk 'NF >= 2 && !u[$1]++ { print $1 }' "$data" >"$tmp/users"
awk 'NF >= 2 && !i[$2]++ { print $2 }' "$data" >"$tmp/items"
echo "store: $data, $(wc -l <"$tmp/users") users, $(wc -l <"$tmp/items") items, imported in" \
	"$(echo "$t0 $t1" | awk '{ printf "%.1f", $2 - $1 }') s"
echo "model: small preset, $epochs epoch(s) without validation, trained in" \
	"$(echo "$t1 $t2" | awk '{ printf "%.1f", $2 - $1 }') s (the timing does not depend on its quality)"
mkdir "$tmp/spool"
printf 'state_dir = %s/state\nruntime_dir = %s/run\nspool_dir = %s/spool\nstatus_interval = 0\nlog_level = warning\n' \
	"$tmp" "$tmp" "$tmp" >"$tmp/recd.conf"
"$builddir/recd" -c "$tmp/recd.conf" 2>"$tmp/recd.log" &
rpid=$!
i=0
until [ -S "$tmp/run/recd.sock" ]; do
	i=$((i + 1)); [ "$i" -le 600 ] || { cat "$tmp/recd.log" >&2; exit 1; }
	kill -0 "$rpid" 2>/dev/null || { cat "$tmp/recd.log" >&2; exit 1; }
	sleep 0.05
done
set -- -u "$tmp/users" -i "$tmp/items" -M "ML-1M small, $epochs epoch(s)" "$@"
if [ "$finetune" = 1 ]; then
	# A short one (a step budget; the served version stays): the round trips
	# are timed for as long as it runs, its evaluations included.
	printf '{"format":1,"type":"fine-tune","epochs":1,"max_steps":20,"activate":"never"}\n' >"$tmp/finetune.json"
	set -- "$@" -f "$tmp/finetune.json"
fi
"$bin" "$tmp/run/recd.sock" "$@" || { echo "run-serve.sh: recd's log:" >&2; cat "$tmp/recd.log" >&2; exit 1; }
