#!/bin/sh
# spool_badinput.sh: hostile files in recd's spool (recd-spool(5)).  Each bad
# job must end in failed/ with an .error file whose reason says exactly what
# was wrong; a symlink is moved, never followed; a fifo never blocks recd; a
# job for an unknown user finishes with a per-line error; an evaluate job
# runs; a running job is cancelled (recctl cancel) and recctl jobs/job show
# the states; a stale staging file is removed; a good job after all of them still runs, nothing reaches the
# store, and recd stays up.
. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"
. "$top_srcdir/tests/spool_lib.sh"

make_store "$TMP/state"
mkdir "$TMP/keys"
"$RECCTL" keygen --dir "$TMP/keys" alice >/dev/null || fail "keygen alice"
mkdir "$TMP/other"
"$RECCTL" keygen --dir "$TMP/other" alice >/dev/null || fail "keygen the other alice"
write_conf "$TMP/state" "$SPOOL" "spool_trusted_keys = $TMP/keys
spool_max_job_size = 1048576
spool_stale_age = 3600"
events0=$(events_in "$TMP/state")
start_recd
IN=$SPOOL/intake

# reason NAME TEXT: failed/NAME.error has "reason: TEXT" (a fixed string).
reason() {
	wait_ended "$1" 20
	[ -e "$SPOOL/failed/$1" ] || [ -L "$SPOOL/failed/$1" ] || fail "$1 is not in failed/: $(ls -R "$SPOOL")"
	grep -qxF "reason: $2" "$SPOOL/failed/$1.error" ||
		fail "$1: expected 'reason: $2', got: $(cat "$SPOOL/failed/$1.error" 2>&1)"
	[ ! -e "$SPOOL/results/$1.jsonl" ] || fail "$1 failed but has a result"
}
# drop NAME: the job text on stdin, written straight into intake/ (as a
# careless or hostile producer would).
drop() { cat >"$TMP/drop.$$"; mv "$TMP/drop.$$" "$IN/$1"; }

printf '{"format":1,"type":"recommend","users":["U00001"' | drop truncated
reason truncated 'job: JSON ends early (truncated) after 48 bytes'

echo '{"format":1,"type":"frobnicate"}' | drop unknown-type
reason unknown-type "type: unknown job type 'frobnicate' (expected recommend, score, ingest, train, evaluate or fine-tune)"

echo '{"format":99,"type":"recommend","users":["U00001"]}' | drop bad-version
reason bad-version 'format: version 99 is not supported (this recd reads version 1)'

echo '{"format":1,"type":"recommend","users":["U00001"],"k":"10"}' | drop wrong-type
reason wrong-type 'k: expected an integer, got a string'

echo '{"format":1,"type":"score","requests":[{"user":"U00001","items":"I00001"}]}' | drop wrong-type2
reason wrong-type2 'requests[0].items: expected an array, got a string'

truncate -s 100M "$TMP/big"
mv "$TMP/big" "$IN/big"
reason big 'file: 104857600 bytes, larger than spool_max_job_size (1048576)'

ln -s /etc/shadow "$IN/shadow"
reason shadow 'file: a symbolic link, not a regular file'
[ -L "$SPOOL/failed/shadow" ] || fail "the symlink was not moved aside as a link"

mkfifo "$IN/fifo"
reason fifo 'file: a fifo, not a regular file'
[ -p "$SPOOL/failed/fifo" ] || fail "the fifo was not moved aside"

echo '{"format":1,"type":"recommend","users":["U00001"]}' >"$TMP/linked"
ln "$TMP/linked" "$IN/hardlink"
reason hardlink 'file: has 2 hard links (a job file must have exactly one)'

# Names: moved to failed/badname-HASH, the name shown escaped in the error.
echo '{"format":1,"type":"recommend","users":["U00001"]}' | drop 'a..b'
echo '{"format":1,"type":"recommend","users":["U00001"]}' | drop "$(printf 'bad\377name')"
i=0
while [ "$(ls "$SPOOL/failed" | grep -c '^badname-.*\.error$')" -lt 2 ]; do
	i=$((i + 1)); [ "$i" -le 200 ] || fail "bad names not failed: $(ls -R "$SPOOL")"; sleep 0.1
done
grep -lxF "reason: file name: '..' in name" "$SPOOL"/failed/badname-*.error >/dev/null ||
	fail "no error for 'a..b': $(cat "$SPOOL"/failed/badname-*.error)"
grep -qxF 'job: a..b' $(grep -lxF "reason: file name: '..' in name" "$SPOOL"/failed/badname-*.error) ||
	fail "the '..' name is not named in its error"
grep -lxF 'reason: file name: name is not valid UTF-8' "$SPOOL"/failed/badname-*.error >/dev/null ||
	fail "no error for the invalid UTF-8 name: $(cat "$SPOOL"/failed/badname-*.error)"
grep -qxF 'job: bad\xffname' $(grep -lxF 'reason: file name: name is not valid UTF-8' "$SPOOL"/failed/badname-*.error) ||
	fail "the invalid UTF-8 name is not shown escaped"

# Signatures: by a key of the right name but not the trusted one; unsigned
# is fine here (spool_require_signature = no) but a bad signature never is.
echo '{"format":1,"type":"recommend","users":["U00001"]}' >"$TMP/job.json"
"$RECCTL" submit --spool "$SPOOL" --id badsig --sign "$TMP/other/alice.key" "$TMP/job.json" >/dev/null ||
	fail "submit --sign"
reason badsig "signature: bad signature by key 'alice' (the job was altered or signed with another key)"
"$RECCTL" submit --spool "$SPOOL" --id goodsig --sign "$TMP/keys/alice.key" "$TMP/job.json" >/dev/null
wait_ended goodsig 20
[ -e "$SPOOL/finished/goodsig" ] || fail "a well-signed job failed: $(cat "$SPOOL/failed/goodsig.error")"
# The same signed file again, after its traces are cleared: a replay.
cp "$SPOOL/finished/goodsig" "$TMP/replay"
rm "$SPOOL/finished/goodsig" "$SPOOL/results/goodsig.jsonl"
mv "$TMP/replay" "$IN/goodsig"
reason goodsig 'id: replayed: a signed job with this ID was accepted before'

# An unknown user is a line of the result, not a failed job.
echo '{"format":1,"type":"recommend","users":["U00001","nobody","U00002"],"k":5}' | drop unknown-user
wait_ended unknown-user 20
[ -e "$SPOOL/finished/unknown-user" ] || fail "unknown-user did not finish: $(cat "$SPOOL/failed/unknown-user.error")"
res=$SPOOL/results/unknown-user.jsonl
[ "$(wc -l <"$res")" -eq 3 ] || fail "unknown-user: expected 3 lines: $(cat "$res")"
sed -n 2p "$res" | grep -qxF '{"user":"nobody","error":"no user '"'"'nobody'"'"'"}' ||
	fail "line 2 is not the unknown user's error: $(cat "$res")"
sed -n 1p "$res" | grep -q '^{"user":"U00001","model":1,"items":\[{"item":"I[0-9]*","score":' ||
	fail "line 1 has no items: $(cat "$res")"
sed -n 3p "$res" | grep -q '^{"user":"U00002","model":1,"items":\[' || fail "line 3: $(cat "$res")"

# A model job: evaluate the stored version.
echo '{"format":1,"type":"evaluate","protocol":"full"}' | drop eval
wait_ended eval 60
[ -e "$SPOOL/finished/eval" ] || fail "evaluate failed: $(cat "$SPOOL/failed/eval.error")"
grep -q '^{"model":1,"results":\[{"protocol":"full-ranking' "$SPOOL/results/eval.jsonl" ||
	fail "evaluate: $(cat "$SPOOL/results/eval.jsonl")"

# Job states from the store, and cancelling a running job: a train job of
# 1000 epochs, which cannot end on its own before the cancel reaches it (a
# long recommend job could, on a fast machine with the tests run one by one).
echo '{"format":1,"type":"train","epochs":1000,"patience":0}' | drop long
i=0
until "$RECCTL" -d "$TMP/state" job --json long 2>/dev/null | grep -q '"state":"running"'; do
	i=$((i + 1)); [ "$i" -le 600 ] || fail "the long job never showed as running: $("$RECCTL" -d "$TMP/state" job long 2>&1)"; sleep 0.1
done
"$RECCTL" cancel --spool "$SPOOL" long >/dev/null || fail "recctl cancel"
reason long 'cancelled'
# The store's record follows the failed file within about 50 ms (recctl(1)).
i=0
until "$RECCTL" -d "$TMP/state" job --json long | grep -q '"state":"cancelled"'; do
	i=$((i + 1)); [ "$i" -le 50 ] || fail "recctl job: $("$RECCTL" -d "$TMP/state" job long)"; sleep 0.1
done
"$RECCTL" -d "$TMP/state" jobs | grep -q '^unknown-user  *recommend  *done  *3/3 ' ||
	fail "recctl jobs: $("$RECCTL" -d "$TMP/state" jobs)"
"$RECCTL" -d "$TMP/state" jobs | grep -q '^truncated ' &&
	fail "a job that never parsed has a record"

# Staging: a file older than spool_stale_age goes at the next rescan (every
# second here), a fresh one stays.
echo partial >"$SPOOL/staging/old.123"
touch -d '2 hours ago' "$SPOOL/staging/old.123"
echo partial >"$SPOOL/staging/new.124"
i=0
while [ -e "$SPOOL/staging/old.123" ]; do
	i=$((i + 1)); [ "$i" -le 50 ] || fail "a stale staging file was not removed"; sleep 0.1
done
[ -e "$SPOOL/staging/new.124" ] || fail "a fresh staging file was removed"
rm "$SPOOL/staging/new.124"

# Nothing else was touched: no job left behind, no stray results, the
# store's events as before, recd alive, and a good job still runs.
echo '{"format":1,"type":"score","requests":[{"user":"U00001","items":["I00001","I00002"]}]}' | drop after
wait_ended after 20
[ -e "$SPOOL/finished/after" ] || fail "a good job after the bad ones failed"
kill -0 "$rpid" 2>/dev/null || fail "recd died: $(tail -20 "$TMP/recd.log")"
[ -z "$(ls -A "$SPOOL/intake")$(ls -A "$SPOOL/active")" ] || fail "jobs left behind: $(ls -R "$SPOOL")"
[ "$(ls "$SPOOL/results")" = "$(printf 'after.jsonl\neval.jsonl\nunknown-user.jsonl')" ] ||
	fail "unexpected results: $(ls "$SPOOL/results")"
grep -q shadow "$SPOOL/results/"* && fail "something of /etc/shadow reached a result"
nfailed=$(ls "$SPOOL/failed" | grep -vc '\.error$')
[ "$nfailed" -eq 14 ] || fail "expected 14 jobs in failed/, got $nfailed: $(ls "$SPOOL/failed")"
stop_recd
[ "$(events_in "$TMP/state")" = "$events0" ] || fail "the store's events changed"
echo "spool_badinput: ok"
