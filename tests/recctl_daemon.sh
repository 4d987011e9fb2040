#!/bin/sh
# recctl_daemon.sh: recctl's commands that talk to a running recd (status,
# ping, recommend, score, ingest from arguments and from a file, model use,
# each with --json), the rule that -d means in-process (recommend, score),
# and config-check.
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
"$RECCTL" -q -d "$state" generate --seed 5 --users 40 --items 30 --events-per-user 10 --import "$TMP/data" >/dev/null
"$RECCTL" -q -d "$state" train --dim 16 --blocks 1 --heads 1 --maxlen 16 --epochs 1 --eval-every 0 --threads 1 -q >/dev/null
conf=$TMP/recd.conf
printf 'state_dir = %s\nruntime_dir = %s/run\nstatus_interval = 0\n' "$state" "$TMP" >"$conf"

# config-check: good, bad (FILE:LINE), --json.
out=$("$RECCTL" config-check "$conf") || fail "config-check on a good file: $out"
[ "$out" = "$conf: configuration OK" ] || fail "config-check said: $out"
printf 'state_dir = /x\nmax_clients = lots\n' >"$TMP/bad.conf"
rc=0; "$RECCTL" config-check "$TMP/bad.conf" 2>"$TMP/err" || rc=$?
[ "$rc" -eq 1 ] || fail "config-check on a bad file: exit $rc"
grep -qF "recctl: $TMP/bad.conf:2: max_clients: 'lots' is not a number from 1 to 4096" "$TMP/err" ||
	fail "config-check message: $(cat "$TMP/err")"
"$RECCTL" --json config-check "$TMP/bad.conf" 2>/dev/null | grep -q '"ok": *false' || fail "config-check --json"

# Not running: a clear error, exit 1.
sock=$TMP/run/recd.sock
rc=0; "$RECCTL" --socket "$sock" ping 2>"$TMP/err" || rc=$?
[ "$rc" -eq 1 ] || fail "ping without recd: exit $rc"
grep -q "no such socket: is recd running" "$TMP/err" || fail "ping without recd: $(cat "$TMP/err")"

"$RECD" -c "$conf" 2>"$TMP/recd.log" &
rpid=$!
i=0
until "$RECCTL" --socket "$sock" ping >/dev/null 2>&1; do
	i=$((i + 1)); [ "$i" -le 200 ] || fail "recd did not come up: $(cat "$TMP/recd.log")"
	sleep 0.05
done

export RECD_SOCKET=$sock
"$RECCTL" ping -c 20 | grep -q '^20 replies from recd' || fail "ping -c 20"
"$RECCTL" --json ping | grep -q '"avg_us"' || fail "ping --json"
out=$("$RECCTL" status) || fail "status: $out"
echo "$out" | grep -q "^model:     version 1 served" || fail "status: $out"
"$RECCTL" --json status | grep -q '"model_version": *1' || fail "status --json"

user=$(awk -F, 'NR == 2 { print $1 }' "$TMP/data/events.csv")
# Through recd (RECD_SOCKET set, no -d) ...
out=$("$RECCTL" recommend -k 5 "$user") || fail "recommend via recd: $out"
echo "$out" | grep -q "from recd" || fail "recommend did not ask recd: $out"
top=$(echo "$out" | awk 'NR == 2 { print $2 }')
"$RECCTL" --json recommend -k 3 --explain "$user" | grep -q '"source": *"recd"' || fail "recommend --json"
# ... and in-process with -d, whatever RECD_SOCKET says.
"$RECCTL" -d "$state" recommend -k 5 "$user" | grep -q "from recd" && fail "-d still asked recd"
rc=0; "$RECCTL" recommend no-such-user 2>"$TMP/err" || rc=$?
[ "$rc" -eq 1 ] && grep -q "no-such-user" "$TMP/err" || fail "unknown user: exit $rc, $(cat "$TMP/err")"

out=$("$RECCTL" score "$user" "$top") || fail "score: $out"
echo "$out" | grep -q "^  $top " || fail "score: $out"
"$RECCTL" --json score "$user" "$top" | grep -q '"score"' || fail "score --json"
# score with -d computes in this process: the same model gives the same score.
local=$("$RECCTL" -d "$state" score "$user" "$top") || fail "score -d: $local"
[ "$(echo "$local" | awk 'NR == 2')" = "$(echo "$out" | awk 'NR == 2')" ] ||
	fail "score -d differs from recd's: $local / $out"
rc=0; "$RECCTL" -d "$state" score "$user" no-such-item 2>"$TMP/err" || rc=$?
[ "$rc" -eq 1 ] && grep -q "no item 'no-such-item'" "$TMP/err" || fail "score -d, unknown item: exit $rc, $(cat "$TMP/err")"

# Ingest the top item: it is seen now, so no longer recommended.
"$RECCTL" ingest --action purchase "$user" "$top" | grep -q '^1 events stored' || fail "ingest"
"$RECCTL" recommend -k 5 "$user" | awk 'NR > 1 { print $2 }' | grep -qx "$top" && fail "ingested item still recommended"
printf 'user,item,time,action\n%s,%s,2026-03-01T10:00:00Z,view\n%s,%s,1772359200,click\n' \
	"$user" "$top" "$user" "$top" >"$TMP/ev.csv"
"$RECCTL" --json ingest --file "$TMP/ev.csv" | grep -q '"events": *2' || fail "ingest --file"
printf 'user,item,time\n%s,%s,yesterday\n' "$user" "$top" >"$TMP/bad.csv"
rc=0; "$RECCTL" ingest --file "$TMP/bad.csv" 2>"$TMP/err" || rc=$?
[ "$rc" -eq 1 ] && grep -qF "$TMP/bad.csv:2: field 'time'" "$TMP/err" || fail "bad events file: $(cat "$TMP/err")"

out=$("$RECCTL" model use 1) || fail "model use: $out"
[ "$out" = "recd now serves model version 1" ] || fail "model use said: $out"
"$RECCTL" model use --json latest | grep -q '"model_version": *1' || fail "model use --json"

kill -TERM "$rpid"
wait "$rpid" || fail "recd exited $? on SIGTERM"
rpid=
exit 0
