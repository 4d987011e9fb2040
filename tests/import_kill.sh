#!/bin/sh
# import_kill.sh: kill -9 `recctl import` at random moments, several rounds,
# then let it finish: the store must hold every line of the file as exactly
# one event, and importing the file once more must apply nothing.
. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"

[ -x "$RECCTL" ] || skip "$RECCTL is not built"
N=300000
F=$TMP/seq.txt
ST=$TMP/state
# ml1m-seq: 'user item' lines; users come back now and then, so a resumed
# import has to rebuild their positions from the lines applied before.
awk -v n=$N 'BEGIN { for (i = 0; i < n; i++) printf "u%d i%d\n", int(i / 40) % 5000, (i * 7919) % 4000 }' >"$F"

count() {  # count KEY: the first (top-level) "KEY": N of `recctl --json stats`
	"$RECCTL" -d "$ST" --json stats | grep -o "\"$1\": *[0-9]*" | head -n 1 | grep -o '[0-9]*$' || true
}

partial=0
for round in 1 2 3 4 5 6 7 8; do
	# Small batches: many commits (about 2 ms apart here), so a kill lands
	# anywhere: before the first commit, between two, or inside one.
	before=0
	[ -f "$ST/data.mdb" ] && before=$(count events)
	"$RECCTL" -d "$ST" -q import --batch 500 ml1m-seq "$F" >/dev/null 2>&1 &
	pid=$!
	# Wait (bounded) until this run has committed something, so the kill
	# lands mid-import however slow start-up is (ASan builds are), then
	# kill at a random moment after that.
	waited=0
	while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt 300 ]; do
		[ -f "$ST/data.mdb" ] && [ "$(count events)" -gt "$before" ] && break
		sleep 0.1
		waited=$((waited + 1))
	done
	delay=$(awk -v s="$round$$" 'BEGIN { srand(s); printf "%.3f", rand() * 0.1 }')
	sleep "$delay"
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	[ -f "$ST/data.mdb" ] || { echo "round $round: killed after ${delay}s, before the store existed"; continue; }
	n=$(count events)
	[ "$n" -le "$N" ] || fail "round $round: $n events after a kill, more than the $N lines"
	[ "$n" -lt "$N" ] && partial=$((partial + 1))
	echo "round $round: killed after ${delay}s, $n events in the store"
done
[ "$partial" -gt 0 ] || skip "every import finished before its kill; nothing was tested"

out=$("$RECCTL" -d "$ST" -q --json import ml1m-seq "$F") || fail "the final import failed"
echo "$out"
n=$(count events)
[ "$n" = "$N" ] || fail "$n events in the store, expected exactly $N"
[ "$(count users)" = 5000 ] || fail "$(count users) users, expected 5000"
[ "$(count items)" = 4000 ] || fail "$(count items) items, expected 4000"

out=$("$RECCTL" -d "$ST" -q --json import ml1m-seq "$F") || fail "the repeated import failed"
echo "$out" | grep -q '"already_imported":true' || fail "a repeated import did not say it was done before: $out"
echo "$out" | grep -q '"events_added":0' || fail "a repeated import added events: $out"
[ "$(count events)" = "$N" ] || fail "a repeated import changed the event count"
echo "ok: $partial rounds left a partial import, then exactly $N events"
