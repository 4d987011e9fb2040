#!/bin/sh
# finetune_realdata.sh: fine-tuning on a later slice of real time.
# MovieLens-1M's ratings with timestamps (ratings_users1-2999.dat) are cut at
# the time T1 that 80% of them precede.  A parent model is trained on the
# events up to T1; the events after T1 are imported; `recctl finetune`
# continues the parent on the users with new events.  On the test targets
# (each user's last event, full ranking) the child must beat the parent on
# the users with events after T1 and keep at least 90% of the parent's
# NDCG@10 on the others; the child must record its parent and cut-off.
# The slices are written under the scratch directory only (never the tree).
# Skips (77) when the data is not there.  About a minute on 2 cores.
. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"

[ -x "$RECCTL" ] || skip "$RECCTL is not built"
D=$(data_dir) || skip "no real data: neither \$RECD_DATA_DIR nor ../shared/data exists"
R=$D/ml-1m/ratings_users1-2999.dat
[ -f "$R" ] || skip "$R is missing"

# T1: the 80% quantile of the timestamps
n=$(wc -l <"$R")
t1=$(cut -d: -f7 "$R" | sort -n | sed -n "$((n * 8 / 10))p")
[ -n "$t1" ] || fail "no timestamps in $R"
mkdir -p "$TMP/before" "$TMP/after"
awk -F'::' -v t="$t1" '$4 <= t' "$R" >"$TMP/before/ratings.dat"
awk -F'::' -v t="$t1" '$4 > t' "$R" >"$TMP/after/ratings.dat"
echo "cut at $t1: $(wc -l <"$TMP/before/ratings.dat") events before, $(wc -l <"$TMP/after/ratings.dat") after"

st=$TMP/st
"$RECCTL" -q -d "$st" import ml1m "$TMP/before" >/dev/null || fail "import of the first slice"
"$RECCTL" -q -d "$st" train --maxlen 50 --dropout 0.1 --windows random --epochs 10 --patience 0 --eval-every 0 \
	--threads 2 --seed 1 \
	>"$TMP/train.out" || fail "train exited with $?"
cat "$TMP/train.out"
"$RECCTL" -q -d "$st" import ml1m "$TMP/after" >/dev/null || fail "import of the second slice"
"$RECCTL" -q -d "$st" finetune --threads 2 --epochs 5 --seed 1 >"$TMP/ft.out" || fail "finetune exited with $?"
cat "$TMP/ft.out"

"$RECCTL" -d "$st" --json models >"$TMP/models.json"
key() {  # key NAME: the value of "NAME": in the models list (the child's metrics)
	tr -d ' \n' <"$TMP/models.json" | grep -o "\"$1\":[-0-9.e]*" | head -n 1 | cut -d: -f2
}
new_child=$(key 'new_users_test_ndcg@10'); new_parent=$(key 'parent_new_users_test_ndcg@10')
oth_child=$(key 'others_test_ndcg@10'); oth_parent=$(key 'parent_others_test_ndcg@10')
cutoff_parent=$(key 'parent_cutoff_ts')
[ -n "$new_child" ] && [ -n "$new_parent" ] && [ -n "$oth_child" ] && [ -n "$oth_parent" ] ||
	fail "the child's metrics lack the before/after figures: $(cat "$TMP/models.json")"
[ "$cutoff_parent" = "$t1" ] || fail "the child records the parent's cut-off as '$cutoff_parent', expected $t1"
tr -d ' \n' <"$TMP/models.json" | grep -q '"version":2,"parent":1,' || fail "version 2 does not record parent 1"

echo "users with events after the cut: NDCG@10 parent $new_parent, fine-tuned $new_child"
echo "the other users:                 NDCG@10 parent $oth_parent, fine-tuned $oth_child"
awk -v c="$new_child" -v p="$new_parent" 'BEGIN { exit !(c > p * 1.03) }' ||
	fail "fine-tuning did not improve the later slice by 3%: $new_parent -> $new_child"
awk -v c="$oth_child" -v p="$oth_parent" 'BEGIN { exit !(c >= p * 0.9) }' ||
	fail "fine-tuning collapsed the other users: $oth_parent -> $oth_child"
echo "ok"
