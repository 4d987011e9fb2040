#!/bin/sh
# ring_jobs.sh: batch jobs over recd's request socket (RP_JOB_* in
# daemon/proto.h, librecd's recd_job_*, recctl run-job / job / cancel).
# With a spool and a small trained model: a recommend and a score job
# submitted over the ring give, read back in 7-byte chunks, exactly the lines
# the same jobs give through the spool; their states are followed with
# recctl job until done; a bad job is refused at submit naming its field; an
# unknown ID is "no job"; a long train job reports real progress while it
# runs (optimizer steps done advancing, of epochs times steps an epoch, an
# ETA, and epoch and loss in recd's status and in the store's record), and
# cancelled over the ring ends cancelled and its result says so; recctl job
# --watch follows a fine-tune to done in plain lines; without a spool
# directory job requests fail saying so while the other requests work.
. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"
. "$top_srcdir/tests/spool_lib.sh"

make_store "$TMP/state"
write_conf "$TMP/state" "$SPOOL"
start_recd
RECD_SOCKET=$TMP/run.$$/recd.sock
export RECD_SOCKET
unset RECD_STATE_DIR || :

mkdir "$TMP/jobs"
printf '{"format":1,"type":"recommend","k":5,"users":["U00001","nobody","U00002","U00017"]}\n' >"$TMP/jobs/rec"
printf '{"format":1,"type":"score","requests":[{"user":"U00003","items":["I00001","I00002","I00050"]},{"user":"U00004","items":["I00007"]},{"user":"ghost","items":["I00001"]}]}\n' \
	>"$TMP/jobs/score"

# job_state ID [DIR]: recd's state of ID (recctl job --json, through the
# socket), or with DIR the store's record of it (recctl -d DIR job --json).
job_state() {
	"$RECCTL" ${2:+-d "$2"} job --json "$1" 2>/dev/null | grep -o '"state": *"[a-z]*"' |
		head -n 1 | sed 's/.*"\([a-z]*\)"$/\1/'
}
# wait_state ID STATE SECONDS [DIR]
wait_state() {
	i=0
	until [ "$(job_state "$1" ${4:+"$4"})" = "$2" ]; do
		i=$((i + 1))
		[ "$i" -le $(($3 * 10)) ] ||
			fail "job $1 is not $2 within $3 s${4:+ in the records in $4}: $("$RECCTL" ${4:+-d "$4"} job "$1" 2>&1)"
		sleep 0.1
	done
}

for t in rec score; do
	# Through the spool ...
	"$RECCTL" submit --spool "$SPOOL" --id "spool-$t" "$TMP/jobs/$t" >/dev/null 2>"$TMP/err" ||
		fail "recctl submit $t: $(cat "$TMP/err")"
	wait_ended "spool-$t" 60
	[ -e "$SPOOL/finished/spool-$t" ] || fail "spool job $t failed: $(cat "$SPOOL/failed/spool-$t.error")"
	[ -s "$SPOOL/results/spool-$t.jsonl" ] || fail "spool job $t: no result"

	# ... and over the ring, waiting with run-job, read in 7-byte chunks.
	"$RECCTL" run-job --wait --chunk 7 "$TMP/jobs/$t" >"$TMP/ring-$t" 2>"$TMP/err" ||
		fail "run-job --wait $t: $(cat "$TMP/err")"
	cmp "$SPOOL/results/spool-$t.jsonl" "$TMP/ring-$t" ||
		fail "$t over the ring differs from the spool: $(diff "$SPOOL/results/spool-$t.jsonl" "$TMP/ring-$t")"

	# ... and submitted, polled with recctl job until done, then read.
	id=$("$RECCTL" run-job "$TMP/jobs/$t" 2>"$TMP/err") || fail "run-job $t: $(cat "$TMP/err")"
	case $id in r[0-9]*) ;; *) fail "run-job printed '$id', not a job ID" ;; esac
	wait_state "$id" done 60
	"$RECCTL" job "$id" >"$TMP/show" || fail "recctl job $id"
	grep -q "^state  *done$" "$TMP/show" || fail "recctl job $id: $(cat "$TMP/show")"
	"$RECCTL" job --result --chunk 3 "$id" >"$TMP/ring2-$t" 2>"$TMP/err" ||
		fail "recctl job --result $id: $(cat "$TMP/err")"
	cmp "$SPOOL/results/spool-$t.jsonl" "$TMP/ring2-$t" || fail "job --result $id differs from the spool"
	cmp "$SPOOL/results/$id.jsonl" "$TMP/ring2-$t" || fail "results/$id.jsonl differs from what was read"
	# The record in the store says the same (recctl job -d reads it) once
	# recd's record writer has had its turn (about 50 ms, recctl(1); a
	# busy disk's sync may take longer).
	wait_state "$id" done 10 "$TMP/state"
done
[ "$(wc -l <"$TMP/ring-rec")" -eq 4 ] || fail "recommend: not 4 lines: $(cat "$TMP/ring-rec")"
sed -n 2p "$TMP/ring-rec" | grep -q '"user":"nobody"' || fail "line 2 is not nobody's: $(cat "$TMP/ring-rec")"
[ "$(wc -l <"$TMP/ring-score")" -eq 3 ] || fail "score: not 3 lines: $(cat "$TMP/ring-score")"

# A bad job is refused at submit, naming the field.
printf '{"format":1,"type":"recommend","k":0,"users":["U00001"]}' >"$TMP/jobs/badk"
if "$RECCTL" run-job "$TMP/jobs/badk" >"$TMP/out" 2>"$TMP/err"; then fail "a job with k 0 was taken"; fi
grep -q "run-job: $TMP/jobs/badk: job submit: k: " "$TMP/err" || fail "bad k: $(cat "$TMP/err")"
printf '{"format":1,"type":"recommend","users":["U00001"' >"$TMP/jobs/trunc"
if "$RECCTL" run-job "$TMP/jobs/trunc" >"$TMP/out" 2>"$TMP/err"; then fail "truncated JSON was taken"; fi
grep -q "job submit: " "$TMP/err" || fail "truncated JSON: $(cat "$TMP/err")"
printf '{"format":1,"type":"sing","users":["U00001"]}' >"$TMP/jobs/badtype"
if "$RECCTL" run-job "$TMP/jobs/badtype" >"$TMP/out" 2>"$TMP/err"; then fail "an unknown type was taken"; fi
grep -q "job submit: type: unknown job type 'sing'" "$TMP/err" || fail "bad type: $(cat "$TMP/err")"
[ ! -s "$TMP/out" ] || fail "a refused job printed an ID: $(cat "$TMP/out")"

# Unknown and invalid IDs.
if "$RECCTL" job r1 >"$TMP/out" 2>"$TMP/err"; then fail "recctl job r1 succeeded"; fi
grep -q "job: job status: no job r1" "$TMP/err" || fail "unknown ID: $(cat "$TMP/err")"
if "$RECCTL" job --result r1 >"$TMP/out" 2>"$TMP/err"; then fail "recctl job --result r1 succeeded"; fi
grep -q "no job r1" "$TMP/err" || fail "unknown ID's result: $(cat "$TMP/err")"
if "$RECCTL" cancel r1 >"$TMP/out" 2>"$TMP/err"; then fail "recctl cancel r1 succeeded"; fi
grep -q "cancel: job cancel: no job r1" "$TMP/err" || fail "cancel unknown: $(cat "$TMP/err")"
if "$RECCTL" job 'a.error' >"$TMP/out" 2>"$TMP/err"; then fail "recctl job a.error succeeded"; fi
grep -q "job ID 'a.error'" "$TMP/err" || fail "invalid ID: $(cat "$TMP/err")"

# Cancelling a long job (train, many epochs, no early stop) over the ring.
printf '{"format":1,"type":"train","epochs":1000,"patience":0}' >"$TMP/jobs/train"
id=$("$RECCTL" run-job "$TMP/jobs/train" 2>"$TMP/err") || fail "run-job train: $(cat "$TMP/err")"
wait_state "$id" running 60
# Its progress is real while it runs: optimizer steps done of the most it may
# take (1000 whole epochs), advancing, with an ETA; the store's record (recctl
# -d, written about once a second) has the epoch and the training loss too.
job_num() {
	"$RECCTL" ${3:+-d "$3"} job --json "$1" | sed -n "s/^ *\"$2\": *\([0-9.e+-]*\).*/\1/p"
}
i=0
until d1=$(job_num "$id" done) && [ "${d1:-0}" -gt 0 ]; do
	i=$((i + 1))
	[ "$i" -le 600 ] || fail "train $id: no step done within 60 s: $("$RECCTL" job "$id")"
	sleep 0.1
done
total=$(job_num "$id" total)
[ "${total:-0}" -ge 1000 ] && [ $((total % 1000)) -eq 0 ] ||
	fail "train $id: total '$total' is not 1000 epochs of steps: $("$RECCTL" job "$id")"
# The ETA comes from the pace after the first step: there from the second.
i=0
until [ -n "$(job_num "$id" eta_s)" ]; do
	i=$((i + 1))
	[ "$i" -le 300 ] || fail "train $id: no ETA while running: $("$RECCTL" job --json "$id")"
	sleep 0.1
done
i=0
until d2=$(job_num "$id" done) && [ "$d2" -gt "$d1" ]; do
	i=$((i + 1))
	[ "$i" -le 300 ] || fail "train $id: progress stuck at $d1 of $total for 30 s"
	sleep 0.1
done
[ "$d2" -lt "$total" ] || fail "train $id: $d2 of $total steps done already"
i=0
until [ "$(job_num "$id" epochs "$TMP/state")" = 1000 ] && [ -n "$(job_num "$id" loss "$TMP/state")" ]; do
	i=$((i + 1))
	[ "$i" -le 100 ] || fail "train $id: the store's record has no epoch or loss: $("$RECCTL" -d "$TMP/state" job --json "$id")"
	sleep 0.1
done
e=$(job_num "$id" epoch "$TMP/state")
[ "${e:-0}" -ge 1 ] && [ "$e" -le 1000 ] || fail "train $id: epoch '$e' in the store's record"
"$RECCTL" -d "$TMP/state" job "$id" | grep -q "^progress .* steps  epoch [0-9]*/1000  loss [0-9.]*" ||
	fail "train $id: recctl job's progress line: $("$RECCTL" -d "$TMP/state" job "$id")"
# Through the socket, recd's own status has the epoch and the loss too.
[ "$(job_num "$id" epochs)" = 1000 ] || fail "train $id: epochs over the socket: $("$RECCTL" job --json "$id")"
e2=$(job_num "$id" epoch); l2=$(job_num "$id" loss)
[ "${e2:-0}" -ge 1 ] && [ "$e2" -le 1000 ] && [ -n "$l2" ] ||
	fail "train $id: epoch '$e2', loss '$l2' over the socket: $("$RECCTL" job --json "$id")"
awk -v l="$l2" 'BEGIN { exit !(l > 0 && l < 20) }' || fail "train $id: loss $l2 over the socket"
"$RECCTL" job "$id" | grep -q "^progress .* steps  epoch [0-9]*/1000  loss [0-9.]*  ETA [0-9]* s$" ||
	fail "train $id: recctl job's progress line over the socket: $("$RECCTL" job "$id")"
echo "train $id: $d1 then $d2 of $total steps, epoch $e; $("$RECCTL" -d "$TMP/state" job "$id" | grep '^progress')"
"$RECCTL" cancel "$id" >"$TMP/out" 2>"$TMP/err" || fail "recctl cancel $id: $(cat "$TMP/err")"
grep -q "cancel requested for $id" "$TMP/out" || fail "cancel: $(cat "$TMP/out")"
wait_state "$id" cancelled 60
if "$RECCTL" job --result "$id" >"$TMP/out" 2>"$TMP/err"; then fail "a cancelled job has a result"; fi
grep -q "job $id was cancelled" "$TMP/err" || fail "cancelled job's result: $(cat "$TMP/err")"
if "$RECCTL" cancel "$id" >"$TMP/out" 2>"$TMP/err"; then fail "cancelling an ended job succeeded"; fi
grep -q "job $id has already ended (cancelled)" "$TMP/err" || fail "second cancel: $(cat "$TMP/err")"
"$RECCTL" job --json "$id" | grep -q '"reason":"cancelled"' || fail "no reason: $("$RECCTL" job "$id")"

# A job that fails: evaluate a model version that does not exist.
printf '{"format":1,"type":"evaluate","model":99}' >"$TMP/jobs/eval99"
if "$RECCTL" run-job --wait "$TMP/jobs/eval99" >"$TMP/out" 2>"$TMP/err"; then fail "evaluate of model 99 succeeded"; fi
grep -q "failed: " "$TMP/err" || fail "a failed job's reason: $(cat "$TMP/err")"

# Fine-tune jobs: events arrive after the model's cut-off (now, through the
# ring); "activate":"never" stores a child that recd does not serve, even
# after a reload; "always" makes recd serve it at once.
served() {
	"$RECCTL" status --json | sed -n 's/^ *"model_version": *\([0-9]*\).*/\1/p'
}
v0=$(served)
[ -n "$v0" ] && [ "$v0" -ge 1 ] || fail "recd serves no model before fine-tuning: '$v0'"
for u in U00001 U00002 U00003 U00004 U00005 U00006; do
	for it in I00003 I00004 I00005; do
		"$RECCTL" ingest "$u" "$it" >/dev/null 2>"$TMP/err" || fail "ingest $u $it: $(cat "$TMP/err")"
	done
done
printf '{"format":1,"type":"fine-tune","epochs":1,"activate":"never"}' >"$TMP/jobs/ft-never"
# Followed with recctl job --watch (not a terminal: plain lines), which ends
# with the job done and every step of its one epoch counted.
id=$("$RECCTL" run-job "$TMP/jobs/ft-never" 2>"$TMP/err") || fail "run-job fine-tune: $(cat "$TMP/err")"
"$RECCTL" job --watch "$id" >"$TMP/watch" 2>"$TMP/err" || fail "job --watch $id: $(cat "$TMP/err") $(cat "$TMP/watch")"
grep -q "^state  *done$" "$TMP/watch" || fail "job --watch $id: $(cat "$TMP/watch")"
grep -q "^progress  *\[#*\] 100%  \([0-9]*\)/\1 steps  epoch [0-9]*/[0-9]*  loss [0-9.]*$" "$TMP/watch" || fail "job --watch $id: $(cat "$TMP/watch")"
! grep -q "$(printf '\r')" "$TMP/watch" || fail "job --watch $id drew a bar on a pipe: $(cat -A "$TMP/watch")"
"$RECCTL" job --result "$id" >"$TMP/out" 2>"$TMP/err" || fail "fine-tune never: $(cat "$TMP/err")"
grep -q '"activated":false' "$TMP/out" || fail "fine-tune never: $(cat "$TMP/out")"
grep -q '"activation":"not asked for (activate: never)"' "$TMP/out" || fail "fine-tune never: $(cat "$TMP/out")"
v1=$(sed -n 's/^{"model":\([0-9]*\),"parent":\([0-9]*\),.*/\1/p' "$TMP/out")
[ -n "$v1" ] && [ "$v1" -gt "$v0" ] || fail "fine-tune never stored no new version: $(cat "$TMP/out")"
grep -q "\"parent\":$v0," "$TMP/out" || fail "fine-tune never: parent is not $v0: $(cat "$TMP/out")"
echo "fine-tune, activate never: $(cat "$TMP/out")"
[ "$(served)" = "$v0" ] || fail "after activate never recd serves $(served), not $v0"
kill -HUP "$rpid"
sleep 1
[ "$(served)" = "$v0" ] || fail "after activate never and a reload recd serves $(served), not $v0"
"$RECCTL" ingest U00007 I00006 >/dev/null 2>"$TMP/err" || fail "ingest: $(cat "$TMP/err")"
"$RECCTL" ingest U00007 I00007 >/dev/null 2>"$TMP/err" || fail "ingest: $(cat "$TMP/err")"
printf '{"format":1,"type":"fine-tune","model":%s,"epochs":1,"activate":"always"}' "$v0" >"$TMP/jobs/ft-always"
"$RECCTL" run-job --wait "$TMP/jobs/ft-always" >"$TMP/out" 2>"$TMP/err" || fail "fine-tune always: $(cat "$TMP/err")"
grep -q '"activated":true' "$TMP/out" || fail "fine-tune always: $(cat "$TMP/out")"
v2=$(sed -n 's/^{"model":\([0-9]*\),.*/\1/p' "$TMP/out")
[ -n "$v2" ] && [ "$v2" -gt "$v1" ] || fail "fine-tune always: version '$v2' after $v1"
echo "fine-tune, activate always: $(cat "$TMP/out")"
[ "$(served)" = "$v2" ] || fail "after activate always recd serves $(served), not $v2"
"$RECCTL" recommend -k 3 U00001 >/dev/null 2>"$TMP/err" || fail "recommend after the swap: $(cat "$TMP/err")"
# The default, if-better: served exactly when the child's test NDCG@10 beats
# the parent's, which is the version served now.  Its events must be later
# than the parent's cut-off, the second of the last ingest above ("now", in
# whole seconds): wait for the next second.
sleep 1
"$RECCTL" ingest U00008 I00008 >/dev/null 2>"$TMP/err" || fail "ingest: $(cat "$TMP/err")"
"$RECCTL" ingest U00008 I00009 >/dev/null 2>"$TMP/err" || fail "ingest: $(cat "$TMP/err")"
printf '{"format":1,"type":"fine-tune","epochs":1}' >"$TMP/jobs/ft-default"
"$RECCTL" run-job --wait "$TMP/jobs/ft-default" >"$TMP/out" 2>"$TMP/err" || fail "fine-tune if-better: $(cat "$TMP/err")"
echo "fine-tune, activate if-better: $(cat "$TMP/out")"
v3=$(sed -n 's/^{"model":\([0-9]*\),.*/\1/p' "$TMP/out")
grep -q "\"parent\":$v2," "$TMP/out" || fail "fine-tune if-better: parent is not $v2: $(cat "$TMP/out")"
if grep -q '"activated":true,"activation":"test NDCG@10 [0-9.]* beats the parent' "$TMP/out"; then
	[ "$(served)" = "$v3" ] || fail "if-better activated $v3 but recd serves $(served)"
elif grep -q '"activated":false,"activation":"test NDCG@10 [0-9.]* does not beat the parent' "$TMP/out"; then
	[ "$(served)" = "$v2" ] || fail "if-better did not activate $v3 but recd serves $(served), not $v2"
else
	fail "fine-tune if-better: $(cat "$TMP/out")"
fi
printf '{"format":1,"type":"fine-tune","activate":"sometimes"}' >"$TMP/jobs/ft-bad"
if "$RECCTL" run-job "$TMP/jobs/ft-bad" >"$TMP/out" 2>"$TMP/err"; then fail "activate sometimes was taken"; fi
grep -q "activate: 'sometimes' is not if-better, always or never" "$TMP/err" || fail "bad activate: $(cat "$TMP/err")"

# Without a spool directory: a clear error, and everything else works.
stop_recd
write_conf "$TMP/state" "$SPOOL"
sed -i "s|^spool_dir = .*|spool_dir = $TMP/absent|" "$TMP/recd.conf"
start_recd
if "$RECCTL" run-job "$TMP/jobs/rec" >"$TMP/out" 2>"$TMP/err"; then fail "run-job without a spool succeeded"; fi
grep -q "batch jobs need the spool directory $TMP/absent, which does not exist" "$TMP/err" ||
	fail "no spool: $(cat "$TMP/err")"
if "$RECCTL" job r1 >"$TMP/out" 2>"$TMP/err"; then fail "recctl job without a spool succeeded"; fi
grep -q "batch jobs need the spool directory" "$TMP/err" || fail "no spool (job): $(cat "$TMP/err")"
"$RECCTL" ping >/dev/null 2>"$TMP/err" || fail "ping without a spool: $(cat "$TMP/err")"
"$RECCTL" score U00001 I00001 >/dev/null 2>"$TMP/err" || fail "score without a spool: $(cat "$TMP/err")"
stop_recd
exit 0
