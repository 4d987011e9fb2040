#!/bin/sh
# sample_cli.sh: recctl generate from the command line — usage errors name
# the option and exit 2, the files and the output, --json, determinism, and
# --import into a store.
. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"

[ -x "$RECCTL" ] || skip "no recctl at $RECCTL"

# Bad values: exit 2, and the message names the option.
bad() {
	opt=$1; shift
	set +e
	"$RECCTL" generate "$@" "$TMP/bad" >"$TMP/out" 2>"$TMP/err"
	rc=$?
	set -e
	[ "$rc" -eq 2 ] || fail "generate $*: exit $rc, expected 2"
	grep -q -- "$opt" "$TMP/err" || fail "generate $*: message does not name $opt: $(cat "$TMP/err")"
	[ ! -e "$TMP/bad" ] || fail "generate $*: wrote $TMP/bad anyway"
}
bad --users --users 0
bad --users --users 10000001
bad --users --users abc
bad --users --users -5
bad --items --items 0
bad --items --items 99999999999999999999999
bad --days --days 3651
bad --days --days ''
bad --events-per-user --events-per-user 10001
bad --seed --seed 18446744073709551616
bad --seed --seed 1x
bad --format --format xml

set +e
"$RECCTL" generate >/dev/null 2>"$TMP/err"; rc=$?
[ "$rc" -eq 2 ] || fail "generate without OUTDIR: exit $rc, expected 2"
grep -q OUTDIR "$TMP/err" || fail "generate without OUTDIR: $(cat "$TMP/err")"
"$RECCTL" generate "$TMP/x" "$TMP/y" >/dev/null 2>&1; rc=$?
[ "$rc" -eq 2 ] || fail "generate with two OUTDIRs: exit $rc, expected 2"
"$RECCTL" generate --bogus "$TMP/x" >/dev/null 2>&1; rc=$?
[ "$rc" -eq 2 ] || fail "generate --bogus: exit $rc, expected 2"
"$RECCTL" generate --users 10 "$TMP/no/such/parent" >/dev/null 2>"$TMP/err"; rc=$?
[ "$rc" -eq 1 ] || fail "generate into a missing parent: exit $rc, expected 1"
grep -q "no/such/parent" "$TMP/err" || fail "missing parent not named: $(cat "$TMP/err")"
set -e
"$RECCTL" generate --help | grep -q -- --events-per-user || fail "--help does not list the options"

# A run: the files, the counts in the human output.
"$RECCTL" generate --seed 5 --users 200 --items 150 --days 30 --events-per-user 20 "$TMP/a" >"$TMP/out"
for f in events.csv items.csv users.csv triples.tsv links.csv README; do
	[ -s "$TMP/a/$f" ] || fail "$f missing or empty"
done
[ "$(head -1 "$TMP/a/events.csv")" = "user,item,time,action,value,lat,lon,device" ] || fail "events header"
[ "$(head -1 "$TMP/a/items.csv")" = "item,title,text,categories,creator,place,price" ] || fail "items header"
[ "$(head -1 "$TMP/a/users.csv")" = "user,age,gender,occupation,home_city" ] || fail "users header"
[ "$(head -1 "$TMP/a/triples.tsv")" = "$(printf 'head\trelation\ttail\thead_type\ttail_type')" ] || fail "triples header"
[ "$(head -1 "$TMP/a/links.csv")" = "item,entity" ] || fail "links header"
[ "$(($(wc -l <"$TMP/a/users.csv") - 1))" -eq 200 ] || fail "users.csv rows"
[ "$(($(wc -l <"$TMP/a/links.csv") - 1))" -eq 150 ] || fail "links.csv rows"
events=$(($(wc -l <"$TMP/a/events.csv") - 1))
grep -q "events.csv *$events events" "$TMP/out" || fail "output does not count $events events: $(cat "$TMP/out")"
grep -q "seed 5" "$TMP/out" || fail "output does not say the seed"
grep -q -- "--seed 5 --users 200 --items 150 --days 30 --events-per-user 20 --format csv" "$TMP/a/README" ||
	fail "README does not record the options"
ls -A "$TMP/a" | grep -q '\.tmp$' && fail "temporary files left behind"

# Same options, same bytes; another seed, other bytes.
"$RECCTL" -q generate --seed 5 --users 200 --items 150 --days 30 --events-per-user 20 "$TMP/b" >/dev/null
for f in events.csv items.csv users.csv triples.tsv links.csv README; do
	cmp -s "$TMP/a/$f" "$TMP/b/$f" || fail "$f differs between two runs"
done
"$RECCTL" -q generate --seed 6 --users 200 --items 150 --days 30 --events-per-user 20 "$TMP/c" >/dev/null
cmp -s "$TMP/a/events.csv" "$TMP/c/events.csv" && fail "seeds 5 and 6 gave the same events"

# --json: one object with the counts (global or command option).
"$RECCTL" --json generate --seed 5 --users 200 --items 150 --days 30 --events-per-user 20 "$TMP/b" >"$TMP/json"
grep -q "\"events\": *$events," "$TMP/json" || fail "--json events: $(cat "$TMP/json")"
grep -q '"users": *200,' "$TMP/json" || fail "--json users"
grep -q '"items": *150,' "$TMP/json" || fail "--json items"
[ "$(head -c1 "$TMP/json")" = "{" ] || fail "--json output is not one object"
"$RECCTL" generate --json --users 3 --items 3 "$TMP/d" | grep -q '"users": *3,' || fail "generate --json"

# TSV.
"$RECCTL" -q generate --format tsv --users 20 --items 30 "$TMP/t" >/dev/null
for f in events.tsv items.tsv users.tsv triples.tsv links.tsv; do
	[ -s "$TMP/t/$f" ] || fail "--format tsv: $f missing"
done
[ "$(head -1 "$TMP/t/events.tsv")" = "$(printf 'user\titem\ttime\taction\tvalue\tlat\tlon\tdevice')" ] || fail "tsv events header"

# --import: generate into a store and find the counts there.
if "$RECCTL" -d "$TMP/state" --json generate --import --seed 5 --users 200 --items 150 --days 30 \
	--events-per-user 20 "$TMP/e" >"$TMP/out" 2>"$TMP/err"; then
	grep -q "\"events_added\": *$events," "$TMP/out" || fail "--import: events_added is not $events: $(cat "$TMP/out")"
	grep -q '"bad_lines": *0,' "$TMP/out" || fail "--import: bad lines: $(cat "$TMP/out")"
	"$RECCTL" -d "$TMP/state" --json stats >"$TMP/stats"
	grep -q "\"events\": *$events," "$TMP/stats" || fail "--import: store holds other than $events events: $(cat "$TMP/stats")"
	grep -q '"users": *200,' "$TMP/stats" || fail "--import: users in the store"
	grep -q '"items": *150,' "$TMP/stats" || fail "--import: items in the store"
else
	fail "generate --import failed: $(cat "$TMP/err")"
fi
echo "sample_cli: ok"
