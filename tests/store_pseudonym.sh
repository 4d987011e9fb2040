#!/bin/sh
# store_pseudonym.sh: after importing the sample data, no raw user ID is in
# the LMDB file (grep the file), item IDs are (so the grep can see IDs), and
# lookups by the raw user ID still work.
. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"
[ -x "$RECCTL" ] || skip "$RECCTL is not built"

"$RECCTL" -q generate --seed 3 --users 300 --items 100 "$TMP/data" >/dev/null
"$RECCTL" -q -d "$TMP/st" import generic "$TMP/data" >/dev/null
db=$TMP/st/data.mdb
[ -f "$db" ] || fail "no data.mdb after the import"
grep -aq 'I00042' "$db" || fail "item IDs are not in the file: the grep would see nothing"
for u in U00001 U00042 U00300; do
	if grep -aq "$u" "$db"; then fail "raw user ID $u is in $db"; fi
done
[ "$(stat -c %a "$TMP/st/user-id.key")" = 600 ] || fail "user-id.key is not mode 0600"
"$RECCTL" -d "$TMP/st" events -n 1 U00042 | grep -q 'I0' || fail "lookup by the raw user ID failed"
# Without the key, nobody can map raw IDs to pseudonyms, and says so.
mv "$TMP/st/user-id.key" "$TMP/key"
out=$("$RECCTL" -d "$TMP/st" events U00042 2>&1) && fail "a lookup worked without the key"
echo "$out" | grep -q 'user-id.key' || fail "no clear message without the key: $out"
echo "ok: no raw user ID in the store file"
