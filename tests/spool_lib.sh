# tests/spool_lib.sh: what the spool tests share (source after tests/lib.sh):
# a small trained store, a recd.conf with a spool, starting and stopping
# recd, and bounded waits for jobs to end.
RECD=${RECD:-$top_builddir/recd}
[ -x "$RECD" ] || skip "no recd at $RECD"
[ -x "$RECCTL" ] || skip "no recctl at $RECCTL"
SPOOL=$TMP/spool
rpid=
spool_cleanup() {
	[ -z "$rpid" ] || kill -KILL "$rpid" 2>/dev/null || :
	rm -rf "$TMP"
}
trap spool_cleanup EXIT

# make_store DIR: the sample data (200 users, 100 items) and a 1-epoch model.
make_store() {
	"$RECCTL" -q -d "$1" generate --users 200 --items 100 --days 30 --events-per-user 20 \
		--import "$TMP/data" >/dev/null 2>"$TMP/gen.err" || fail "generate: $(cat "$TMP/gen.err")"
	"$RECCTL" -q -d "$1" train --epochs 1 --dim 16 --blocks 1 --heads 1 --maxlen 20 --threads 1 \
		>/dev/null 2>"$TMP/train.err" || fail "train: $(cat "$TMP/train.err")"
}

# write_conf STATE SPOOL [EXTRA LINES]: $TMP/recd.conf.  The runtime
# directory is made by recd (a unique one per run, so sockets never clash).
write_conf() {
	mkdir -p "$2"
	cat >"$TMP/recd.conf" <<EOC
state_dir = $1
runtime_dir = $TMP/run.$$
spool_dir = $2
spool_rescan_interval = 1
log_level = debug
${3:-}
EOC
}

# start_recd: in the background, logging to $TMP/recd.log; waits for ready.
start_recd() {
	rm -rf "$TMP/run.$$"
	"$RECD" -c "$TMP/recd.conf" >>"$TMP/recd.log" 2>&1 &
	rpid=$!
	i=0
	until grep -q 'ready:' "$TMP/recd.log" 2>/dev/null && [ "$(grep -c 'ready:' "$TMP/recd.log")" -gt "${readies:-0}" ]; do
		i=$((i + 1))
		[ "$i" -le 600 ] || fail "recd not ready within 60 s: $(tail -20 "$TMP/recd.log")"
		kill -0 "$rpid" 2>/dev/null || fail "recd died at start: $(tail -20 "$TMP/recd.log")"
		sleep 0.1
	done
	readies=$(grep -c 'ready:' "$TMP/recd.log")
}

# stop_recd: SIGTERM and wait (daemon_notify.sh checks how recd stops).
stop_recd() {
	kill -TERM "$rpid"
	wait "$rpid" || :
	rpid=
}

# wait_ended NAME SECONDS: until NAME is in finished/ or failed/ (or
# failed/badname-* for NAME=badname).
wait_ended() {
	i=0
	while ! { [ -e "$SPOOL/finished/$1" ] || [ -e "$SPOOL/failed/$1" ] || [ -L "$SPOOL/failed/$1" ]; }; do
		i=$((i + 1))
		[ "$i" -le $(($2 * 10)) ] || fail "job $1 did not end within $2 s: $(ls -R "$SPOOL"); $(tail -20 "$TMP/recd.log")"
		sleep 0.1
	done
}

# events_in STATE: the store's event count.
events_in() {
	"$RECCTL" -d "$1" stats --json | sed -n 's/^ *"events": *\([0-9]*\).*/\1/p' | head -1
}
