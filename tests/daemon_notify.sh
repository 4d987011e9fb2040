#!/bin/sh
# daemon_notify.sh: recd as a process under a fake service manager.  A test
# listener (tests/notify_listen) owns NOTIFY_SOCKET; the test asserts READY=1
# with STATUS=, STATUS= updates, WATCHDOG=1 at half of WATCHDOG_USEC,
# RELOADING=1 then READY=1 on SIGHUP (also with a broken config, which is
# logged with file:line and refused), STOPPING=1 and exit 0 on SIGTERM, no CPU
# use while idle, and the command line's exit codes.  Every wait is bounded.
. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"

RECD=${RECD:-$top_builddir/recd}
LISTEN=${NOTIFY_LISTEN:-$top_builddir/tests/notify_listen}
[ -x "$RECD" ] || skip "no recd at $RECD"
[ -x "$LISTEN" ] || skip "no notify_listen at $LISTEN"

rpid= lpid=
cleanup() {
	for p in $rpid $lpid; do kill -KILL "$p" 2>/dev/null || :; done
	rm -rf "$TMP"
}
trap cleanup EXIT

# count PATTERN FILE: lines whose message (4th field) matches PATTERN; 0
# while FILE does not exist yet.
count() {
	if [ -f "$2" ]; then awk -F'\t' -v p="$1" '$4 ~ p { n++ } END { print n + 0 }' "$2"; else echo 0; fi
}
# nth PATTERN N FILE: the datagram number of the Nth such line.
nth() { awk -F'\t' -v p="$1" -v n="$2" '$4 ~ p && ++c == n { print $1; exit }' "$3"; }
# wait_for FILE PATTERN N SECONDS: until N lines match, recd still running.
wait_for() {
	i=0
	while [ "$(count "$2" "$1")" -lt "$3" ]; do
		i=$((i + 1))
		[ "$i" -le $(($4 * 20)) ] ||
			fail "no $3 x '$2' within $4 s; got:$(printf '\n'; cat "$1"); recd said:$(printf '\n'; cat "$TMP/recd.log" 2>/dev/null)"
		if [ -n "$rpid" ] && ! kill -0 "$rpid" 2>/dev/null; then
			fail "recd died waiting for '$2': $(cat "$TMP/recd.log")"
		fi
		sleep 0.05
	done
}
# stop_recd SIGNAL: sends it, waits at most 10 s for recd to exit, and sets
# rc to its exit status.  (kill -0 cannot tell: it succeeds on a zombie.)
stop_recd() {
	kill "-$1" "$rpid"
	i=0
	while [ -e "/proc/$rpid" ] && [ "$(awk '{ print $3 }' "/proc/$rpid/stat" 2>/dev/null)" != Z ]; do
		i=$((i + 1))
		[ "$i" -le 200 ] || fail "recd did not exit within 10 s of SIG$1"
		sleep 0.05
	done
	rc=0
	wait "$rpid" || rc=$?
	rpid=
}
# listen NAME FILE: starts the listener and waits until it is bound.
listen() {
	"$LISTEN" "$1" "$2" 60 &
	lpid=$!
	wait_for "$2" '^LISTENING$' 1 5
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

conf=$TMP/recd.conf
mkdir "$TMP/state"
cat >"$conf" <<EOF
# test configuration
state_dir = $TMP/state
runtime_dir = $TMP/run
status_interval = 1
log_level = debug
EOF

# --- the command line -------------------------------------------------------
"$RECD" -V | grep -q '^recd [0-9]' || fail "recd -V: $("$RECD" -V)"
"$RECD" --help | grep -q -- '--check' || fail "recd --help does not list --check"
out=$("$RECD" -c "$conf" --check 2>&1) || fail "--check on a good config: $out"
[ "$out" = "$conf: configuration OK" ] || fail "--check said: $out"
printf 'log_level = info\nmax_clients = 0\n' >"$TMP/bad.conf"
rc=0; "$RECD" -c "$TMP/bad.conf" --check 2>"$TMP/err" || rc=$?
[ "$rc" -eq 1 ] || fail "--check on a bad config: exit $rc, expected 1"
grep -qF "<3>$TMP/bad.conf:2: max_clients: '0' is not a number from 1 to 4096" "$TMP/err" ||
	fail "--check message: $(cat "$TMP/err")"
rc=0; "$RECD" -c "$TMP/none.conf" --check 2>"$TMP/err" || rc=$?
[ "$rc" -eq 1 ] || fail "--check on a missing -c file: exit $rc, expected 1"
grep -qF "$TMP/none.conf: No such file or directory" "$TMP/err" || fail "missing -c: $(cat "$TMP/err")"
rc=0; "$RECD" --bogus 2>/dev/null || rc=$?
[ "$rc" -eq 2 ] || fail "unknown option: exit $rc, expected 2"
rc=0; "$RECD" -c "$conf" extra 2>/dev/null || rc=$?
[ "$rc" -eq 2 ] || fail "extra argument: exit $rc, expected 2"
rc=0; "$RECD" -c "$conf" -s "$TMP/no/such/dir" 2>"$TMP/err" || rc=$?
[ "$rc" -eq 1 ] || fail "unopenable store: exit $rc, expected 1"
grep -q "^<3>.*$TMP/no/such/dir" "$TMP/err" || fail "unopenable store: $(cat "$TMP/err")"

# --- a running recd ---------------------------------------------------------
sock=$TMP/notify.sock
msg=$TMP/notify.log
listen "$sock" "$msg"
# WATCHDOG_PID must be recd's own pid: the shell exports its $$ and execs recd.
NOTIFY_SOCKET=$sock WATCHDOG_USEC=200000 \
	sh -c 'WATCHDOG_PID=$$; export WATCHDOG_PID; exec "$0" "$@"' \
	"$RECD" -c "$conf" 2>"$TMP/recd.log" &
rpid=$!

# READY=1 with a STATUS= line in the same datagram, from recd's pid.
wait_for "$msg" '^READY=1$' 1 20
ready=$(nth '^READY=1$' 1 "$msg")
st=$(awk -F'\t' -v s="$ready" '$1 == s && $4 ~ /^STATUS=/ { print $4 }' "$msg")
[ "$st" = "STATUS=no model trained, serving nothing; 0 users, 0 items, 0 events; 0 clients, 0 requests, 0 errors" ] ||
	fail "READY=1 came with '$st'"
awk -F'\t' -v p="$rpid" '$1 > 0 && $3 != p { exit 1 }' "$msg" ||
	fail "a message came from another pid than recd's ($rpid): $(cat "$msg")"
grep -q '^<5>no model version stored; serving nothing until one is trained$' "$TMP/recd.log" ||
	fail "no 'no model' notice: $(cat "$TMP/recd.log")"

# WATCHDOG=1 about every 100 ms (half of 200 ms): at least 8, evenly spread.
wait_for "$msg" '^WATCHDOG=1$' 8 10
gap=$(awk -F'\t' '$4 == "WATCHDOG=1" { if (!n++) f = $2; l = $2 } END { print int((l - f) / (n - 1)) }' "$msg")
[ "$gap" -ge 60 ] && [ "$gap" -le 170 ] || fail "WATCHDOG=1 every $gap ms on average, expected about 100"

# STATUS= updates every status_interval (1 s).
wait_for "$msg" '^STATUS=' 3 10

# Idle: no CPU beyond the timers (a busy loop would burn ~100 ticks a second).
t0=$(cpu_ticks "$rpid")
sleep 1
t1=$(cpu_ticks "$rpid")
[ $((t1 - t0)) -le 20 ] || fail "recd used $((t1 - t0)) clock ticks in 1 s while idle"

# SIGHUP with a good config: RELOADING=1 (with MONOTONIC_USEC=), then READY=1.
sed -i 's/^status_interval = 1$/status_interval = 2/' "$conf"
kill -HUP "$rpid"
wait_for "$msg" '^READY=1$' 2 10
wait_for "$msg" '^RELOADING=1$' 1 1
rl=$(nth '^RELOADING=1$' 1 "$msg")
[ "$rl" -gt "$ready" ] && [ "$rl" -lt "$(nth '^READY=1$' 2 "$msg")" ] ||
	fail "RELOADING=1 is not between the two READY=1: $(cat "$msg")"
awk -F'\t' -v s="$rl" '$1 == s && $4 ~ /^MONOTONIC_USEC=[0-9]+$/ { ok = 1 } END { exit !ok }' "$msg" ||
	fail "RELOADING=1 came without MONOTONIC_USEC="
grep -q "^<6>configuration reloaded from $conf\$" "$TMP/recd.log" || fail "no reload line: $(cat "$TMP/recd.log")"

# SIGHUP with a broken config: logged with file:line, the old one kept, READY=1 again.
printf 'state_dir = %s\nruntime_dir = %s\nstatus_interval = 2\nbogus_key = 1\n' "$TMP/state" "$TMP/run" >"$conf"
kill -HUP "$rpid"
wait_for "$msg" '^READY=1$' 3 10
wait_for "$msg" '^RELOADING=1$' 2 1
grep -qF "<3>reload: $conf:4: unknown key 'bogus_key'; keeping the previous configuration" "$TMP/recd.log" ||
	fail "the bad config was not logged with file:line: $(cat "$TMP/recd.log")"
kill -0 "$rpid" || fail "recd died on a bad config"
n=$(count '^WATCHDOG=1$' "$msg")
wait_for "$msg" '^WATCHDOG=1$' $((n + 3)) 5

# SIGTERM: STOPPING=1 and exit 0.
stop_recd TERM
[ "$rc" -eq 0 ] || fail "recd exited $rc on SIGTERM: $(cat "$TMP/recd.log")"
wait_for "$msg" '^STOPPING=1$' 1 5
[ "$(nth '^STOPPING=1$' 1 "$msg")" -gt "$(nth '^READY=1$' 3 "$msg")" ] || fail "STOPPING=1 before the last READY=1"
grep -q '^<5>stopping on Terminated$' "$TMP/recd.log" || fail "no stop line: $(cat "$TMP/recd.log")"
kill "$lpid"; wait "$lpid" 2>/dev/null || :; lpid=

# --- an abstract socket; a watchdog meant for another process; SIGINT -------
printf 'state_dir = %s\nruntime_dir = %s\n' "$TMP/state" "$TMP/run" >"$conf"
msg2=$TMP/notify2.log
listen "@recd-test-$$" "$msg2"
NOTIFY_SOCKET="@recd-test-$$" WATCHDOG_USEC=200000 WATCHDOG_PID=1 \
	"$RECD" -c "$conf" 2>"$TMP/recd.log" &
rpid=$!
wait_for "$msg2" '^READY=1$' 1 20
sleep 0.5
[ "$(count '^WATCHDOG=1$' "$msg2")" -eq 0 ] || fail "WATCHDOG=1 sent though WATCHDOG_PID names another process"
stop_recd INT
[ "$rc" -eq 0 ] || fail "recd exited $rc on SIGINT"
wait_for "$msg2" '^STOPPING=1$' 1 5
kill "$lpid"; wait "$lpid" 2>/dev/null || :; lpid=
exit 0
