#!/bin/sh
# spool_fault.sh: crash safety of recd's spool (recd-spool(5)).  N mixed
# jobs (recommend, score, ingest; N = 1000, or $SPOOL_FAULT_JOBS, which the
# sanitizer build sets lower) are submitted with recctl submit while recd
# is killed with SIGKILL at random moments, at least five times, and started
# again.  Afterwards every job is in finished/ or failed/ exactly once, every
# finished job has exactly one result, byte for byte the result of the same
# job on an undisturbed recd, nothing is left in intake/ or active/, no
# temporary file is visible, and the ingest jobs' events are in the store
# exactly once (the store holds exactly as many events as the undisturbed
# run's store).
. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"
. "$top_srcdir/tests/spool_lib.sh"

N=${SPOOL_FAULT_JOBS:-1000}
KILLS=${SPOOL_FAULT_KILLS:-6}

make_store "$TMP/state"
cp -a "$TMP/state" "$TMP/ref-state"
events0=$(events_in "$TMP/state")

# The jobs: recommend (3 users, k 5, one of them unknown every 7th job;
# 5000 users every 100th job, so that kills find jobs running), score (2
# requests) and ingest (4 events of new users, the 4th with a bad time every
# 5th job).  Users N<job>-<n> are new, so ingests do not change
# what recommend and score answer for the U users, whatever the order.
mkdir "$TMP/jobs"
awk -v n="$N" -v dir="$TMP/jobs" 'BEGIN {
	good = 0
	for (i = 0; i < n; i++) {
		f = sprintf("%s/job%04d", dir, i)
		u1 = sprintf("U%05d", 1 + (i * 7) % 200); u2 = sprintf("U%05d", 1 + (i * 13) % 200)
		it1 = sprintf("I%05d", 1 + (i * 3) % 100); it2 = sprintf("I%05d", 1 + (i * 11) % 100)
		t = i % 3
		if (i % 100 == 99) {
			# a long one (5000 users), so that kills find jobs running
			printf "{\"format\":1,\"type\":\"recommend\",\"k\":5,\"users\":[" > f
			for (u = 0; u < 5000; u++)
				printf "%s\"U%05d\"", u ? "," : "", 1 + (u * 31 + i) % 200 > f
			printf "]}\n" > f
		} else if (t == 0) {
			u3 = i % 7 == 0 ? "nobody" : sprintf("U%05d", 1 + (i * 17) % 200)
			printf "{\"format\":1,\"type\":\"recommend\",\"users\":[\"%s\",\"%s\",\"%s\"],\"k\":5}\n", u1, u2, u3 > f
		} else if (t == 1) {
			printf "{\"format\":1,\"type\":\"score\",\"requests\":[{\"user\":\"%s\",\"items\":[\"%s\",\"%s\"]},{\"user\":\"%s\",\"items\":[\"%s\"]}]}\n", u1, it1, it2, u2, it2 > f
		} else {
			printf "{\"format\":1,\"type\":\"ingest\",\"events\":[" > f
			for (e = 0; e < 4; e++) {
				ts = e == 3 && i % 5 == 0 ? "\"yesterday\"" : 1700000000 + i * 10 + e
				printf "%s{\"user\":\"N%d-%d\",\"item\":\"I%05d\",\"time\":%s,\"action\":\"click\"}", e ? "," : "", i, e % 2, 1 + (i + e) % 100, ts > f
				if (!(e == 3 && i % 5 == 0)) good++
			}
			printf "]}\n" > f
		}
		close(f)
	}
	print good > (dir "/../good_events")
}'
good_events=$(cat "$TMP/good_events")

# wait_all SPOOL SECONDS: until N jobs have ended there.
wait_all() {
	i=0
	while [ "$(($(ls "$1/finished" | wc -l) + $(ls "$1/failed" | grep -vc '\.error$')))" -lt "$N" ]; do
		i=$((i + 1))
		[ "$i" -le $(($2 * 10)) ] ||
			fail "only $(ls "$1/finished" | wc -l) finished, $(ls "$1/failed" | grep -vc '\.error$') failed of $N within $2 s"
		if [ -n "$rpid" ] && ! kill -0 "$rpid" 2>/dev/null; then
			fail "recd died: $(tail -20 "$TMP/recd.log")"
		fi
		sleep 0.1
	done
}

# submit_all SPOOL: the producer's half of the protocol for every job, in
# chunks of 50 (a process start per job would make the test slow on a busy
# machine): copied under their unique names into staging/, synced, renamed
# into intake/.  The first job of each chunk goes
# through recctl submit itself.
submit_all() {
	ls "$TMP/jobs" | grep '^job' | awk '{ printf "%s%s", $0, NR % 50 ? " " : "\n" } END { print "" }' |
	while read -r chunk; do
		[ -n "$chunk" ] || continue
		set -- $chunk
		"$RECCTL" submit --spool "$SPOOL_TO" --id "$1" "$TMP/jobs/$1" >/dev/null || return 1
		shift
		[ $# -gt 0 ] || continue
		(cd "$TMP/jobs" && cp -- "$@" "$SPOOL_TO/staging/") || return 1
		# rename(2) each (not mv, which stats each target after the move,
		# and recd may have claimed it by then)
		(cd "$SPOOL_TO/staging" && sync -- "$@" &&
		 perl -e '$d = shift; for (@ARGV) { rename($_, "$d/$_") or die "$_: $!\n" }' "$SPOOL_TO/intake" "$@") ||
			return 1
	done
}

# --- the undisturbed run ----------------------------------------------------------
write_conf "$TMP/ref-state" "$TMP/ref-spool"
start_recd
SPOOL_TO=$TMP/ref-spool submit_all || fail "submitting the jobs"
wait_all "$TMP/ref-spool" 600
stop_recd
[ "$(ls "$TMP/ref-spool/failed" | wc -l)" -eq 0 ] ||
	fail "jobs failed on the undisturbed recd: $(head -5 "$TMP"/ref-spool/failed/*.error)"
ref_events=$(events_in "$TMP/ref-state")
[ "$ref_events" -eq $((events0 + good_events)) ] ||
	fail "undisturbed run: $ref_events events, expected $events0 + $good_events"

# --- the run with crashes ---------------------------------------------------------
write_conf "$TMP/state" "$SPOOL"
start_recd
SPOOL_TO=$SPOOL submit_all &
spid=$!
kills=0 recovered=0
while [ "$kills" -lt "$KILLS" ]; do
	# 20 to 500 ms after it was ready (from /dev/urandom), and then as
	# soon as it has a job claimed (at most 2 s more), so that most kills
	# land in the middle of work
	ms=$(( $(od -An -N2 -tu2 /dev/urandom) % 480 + 20 ))
	sleep "$(printf '0.%03d' "$ms")"
	i=0
	while [ -z "$(ls -A "$SPOOL/active")" ] && [ "$i" -lt 100 ]; do
		i=$((i + 1)); sleep 0.02
	done
	kill -KILL "$rpid"
	wait "$rpid" 2>/dev/null || :
	rpid=
	kills=$((kills + 1))
	recovered=$((recovered + $(ls "$SPOOL/active" | wc -l)))
	start_recd
done
wait "$spid" || fail "recctl submit failed while recd was being killed"
wait_all "$SPOOL" 600
stop_recd

# --- what must hold ----------------------------------------------------------------
for d in intake active staging; do
	[ -z "$(ls -A "$SPOOL/$d")" ] || fail "$d/ is not empty: $(ls -A "$SPOOL/$d" | head)"
done
[ -z "$(ls -A "$SPOOL/results" | grep '^\.')" ] || fail "temporary files visible in results/: $(ls -A "$SPOOL/results")"
ls "$SPOOL/finished" >"$TMP/fin"
ls "$SPOOL/failed" | grep -v '\.error$' >"$TMP/fail" || :
[ ! -s "$TMP/fail" ] || fail "jobs failed: $(head -3 "$SPOOL"/failed/*.error)"
(cd "$TMP/jobs" && ls) >"$TMP/all"
cat "$TMP/fin" "$TMP/fail" | sort | uniq -d >"$TMP/twice"
[ ! -s "$TMP/twice" ] || fail "jobs in both finished/ and failed/: $(head "$TMP/twice")"
sort "$TMP/fin" "$TMP/fail" | cmp -s - "$TMP/all" || fail "finished + failed is not the set of jobs submitted"
ls "$SPOOL/results" >"$TMP/res"
sed 's/$/.jsonl/' "$TMP/fin" | cmp -s - "$TMP/res" || fail "results/ is not one result per finished job"
for f in $(cat "$TMP/fin"); do
	cmp -s "$SPOOL/results/$f.jsonl" "$TMP/ref-spool/results/$f.jsonl" ||
		fail "$f: result differs from the undisturbed run:
$(diff "$SPOOL/results/$f.jsonl" "$TMP/ref-spool/results/$f.jsonl" | head -5)"
done
ev=$(events_in "$TMP/state")
[ "$ev" -eq "$ref_events" ] || fail "the store has $ev events, the undisturbed run $ref_events (ingest not exactly once)"
restarts=$(grep -c 'had finished before the restart' "$TMP/recd.log" || :)
echo "spool_fault: ok: $N jobs, $kills kills, $recovered jobs found in active/ after a kill," \
     "$restarts finished only by the restart, $ev events ($good_events ingested)"
