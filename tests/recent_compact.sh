#!/bin/sh
# recent_compact.sh: real-time ingest's recent table through recd and
# recctl: what recd leaves after a SIGKILL, recctl compact (partial, then
# the rest) with every user's events the same before and after, recd's
# compaction by count and by age, and at a clean stop.
. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"

RECD=${RECD:-$top_builddir/recd}
[ -x "$RECD" ] || skip "no recd at $RECD"
rpid=
cleanup() {
	[ -n "$rpid" ] && kill -KILL "$rpid" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT

state=$TMP/state
sock=$TMP/run/recd.sock
export RECD_SOCKET=$sock
"$RECCTL" -q -d "$state" generate --seed 7 --users 30 --items 20 --events-per-user 5 --import "$TMP/data" >/dev/null

count() {  # count KEY: "KEY": N of `recctl --json stats`
	"$RECCTL" -d "$state" --json stats | sed -n "s/^ *\"$1\": *\([0-9]*\).*/\1/p" | head -n 1
}
start() {  # start THRESHOLD MAX_AGE
	printf 'state_dir = %s\nruntime_dir = %s/run\nstatus_interval = 0\nlog_level = info\ncompact_threshold = %s\ncompact_max_age = %s\n' \
		"$state" "$TMP" "$1" "$2" >"$TMP/recd.conf"
	"$RECD" -c "$TMP/recd.conf" 2>>"$TMP/recd.log" &
	rpid=$!
	i=0
	until "$RECCTL" ping >/dev/null 2>&1; do
		i=$((i + 1)); [ "$i" -le 200 ] || fail "recd did not come up: $(cat "$TMP/recd.log")"
		sleep 0.05
	done
}
ingest() {  # ingest N SEED: N events of the generated users and items
	awk -F, -v n="$1" -v seed="$2" 'NR > 1 { u[++nu] = $1; it[nu] = $2 }
		END { srand(seed); print "user,item,time,action"
		      for (k = 0; k < n; k++) printf "%s,%s,%d,view\n", u[1 + int(rand() * nu)], it[1 + int(rand() * nu)], 1800000000 - int(rand() * 1000000) }' \
		"$TMP/data/events.csv" >"$TMP/ev.csv"
	"$RECCTL" ingest --file "$TMP/ev.csv" | grep -q "^$1 events stored" || fail "ingest of $1 events"
}
all_events() {  # every user's last 1000 events, as recctl events prints them
	for u in $(awk -F, 'NR > 1 { print $1 }' "$TMP/data/events.csv" | sort -u); do
		"$RECCTL" -d "$state" events -n 1000 "$u"
	done
}
wait_compacted() {  # wait_compacted WHAT: until no recent event is left
	i=0
	until [ "$(count recent_events)" = 0 ]; do
		i=$((i + 1)); [ "$i" -le 100 ] || fail "$1: $(count recent_events) recent events left: $(cat "$TMP/recd.log")"
		sleep 0.1
	done
}

base=$(count events)
[ "$(count recent_events)" = 0 ] || fail "an imported store has recent events"

# No compaction in recd; a SIGKILL leaves the recent table as it is.
start 0 0
ingest 300 1
[ "$(count recent_events)" = 300 ] || fail "recent events after ingest: $(count recent_events)"
[ "$(count events)" = $((base + 300)) ] || fail "events after ingest: $(count events)"
kill -KILL "$rpid"; wait "$rpid" 2>/dev/null || :; rpid=
[ "$(count recent_events)" = 300 ] || fail "recent events after SIGKILL: $(count recent_events)"
all_events >"$TMP/before"

out=$("$RECCTL" -d "$state" -q compact --max 120) || fail "compact --max 120: $out"
[ "$out" = "120 recent events moved into the users' lists, 180 left" ] || fail "compact --max 120 said: $out"
all_events >"$TMP/mid"
cmp -s "$TMP/before" "$TMP/mid" || fail "events differ after a partial compaction: $(diff "$TMP/before" "$TMP/mid" | head)"
"$RECCTL" -d "$state" --json compact | grep -q '"moved": *180' || fail "compact --json"
[ "$(count recent_events)" = 0 ] || fail "recent events after compact: $(count recent_events)"
[ "$(count events)" = $((base + 300)) ] || fail "events after compact: $(count events)"
all_events >"$TMP/after"
cmp -s "$TMP/before" "$TMP/after" || fail "events differ after compaction: $(diff "$TMP/before" "$TMP/after" | head)"
out=$("$RECCTL" -d "$state" compact) && [ "$out" = "0 recent events moved into the users' lists, 0 left" ] ||
	fail "compact with nothing to do: $out"
rc=0; "$RECCTL" -d "$state" compact --max 0 2>/dev/null || rc=$?
[ "$rc" = 2 ] || fail "compact --max 0: exit $rc"

# By count: past the threshold recd compacts on its own.
start 100 0
ingest 250 2
wait_compacted "by count"
[ "$(count events)" = $((base + 550)) ] || fail "events after compaction by count: $(count events)"
kill -TERM "$rpid"; wait "$rpid" || fail "recd's exit status"; rpid=

# By age: under the threshold, once the oldest has waited a second or so.
start 1000000 1
ingest 20 3
wait_compacted "by age"
kill -TERM "$rpid"; wait "$rpid" || fail "recd's exit status"; rpid=

# At a clean stop, whatever is left.
start 0 0
ingest 40 4
[ "$(count recent_events)" = 40 ] || fail "recent events before the stop: $(count recent_events)"
kill -TERM "$rpid"; wait "$rpid" || fail "recd's exit status"; rpid=
[ "$(count recent_events)" = 0 ] || fail "recent events after a clean stop: $(count recent_events)"
grep -q "moved 40 recent events into the users' lists" "$TMP/recd.log" || fail "no stop compaction in the log: $(cat "$TMP/recd.log")"
[ "$(count events)" = $((base + 610)) ] || fail "events at the end: $(count events)"
exit 0
