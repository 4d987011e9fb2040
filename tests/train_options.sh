#!/bin/sh
# train_options.sh: recctl train's (and finetune's) model and optimizer options: bad values
# exit 2 naming the option (and train nothing), good ones reach the settings
# line, and a model trained with attention dropout is stored and serves.
. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"

[ -x "$RECCTL" ] || skip "no recctl at $RECCTL"

st=$TMP/st
"$RECCTL" -q -d "$st" generate --seed 3 --users 30 --items 25 --events-per-user 8 --import "$TMP/data" >/dev/null
tiny="--dim 16 --blocks 1 --heads 1 --maxlen 8 --epochs 1 --eval-every 0 --threads 1"

bad() {
	opt=$1; shift
	set +e
	# shellcheck disable=SC2086
	"$RECCTL" -d "$st" train $tiny "$@" >"$TMP/out" 2>"$TMP/err"
	rc=$?
	set -e
	[ "$rc" -eq 2 ] || fail "train $*: exit $rc, expected 2"
	grep -q -- "$opt" "$TMP/err" || fail "train $*: message does not name $opt: $(cat "$TMP/err")"
}
bad --beta2 --beta2 1
bad --beta2 --beta2 -0.1
bad --beta2 --beta2 x
bad --clip --clip -1
bad --clip --clip 1e7
bad --clip --clip ''
bad --attn-dropout --attn-dropout 0.95
bad --attn-dropout --attn-dropout nan
bad --attn-dropout --attn-dropout 0.1x
bad --init --init xavier
bad --lr-min --lr-min -1
bad --lr-min --lr-min 0.01   # above the peak rate (0.001)
bad --warmup --warmup -3
bad --warmup --warmup 1x
bad --softmax --softmax none
bad --ffn --ffn 4
bad --ffn --ffn 16x
"$RECCTL" -d "$st" models 2>&1 | grep -q "^no model trained yet" ||
	fail "a refused train stored a model: $("$RECCTL" -d "$st" models 2>&1)"

# The help lists the options.
"$RECCTL" train --help >"$TMP/help"
for o in --beta2 --clip --attn-dropout --init --lr-min --warmup --softmax --ffn; do
	grep -q -- "$o" "$TMP/help" || fail "train --help does not mention $o"
done

# --dropout alone leaves a preset's zero attention dropout alone.
# shellcheck disable=SC2086
"$RECCTL" -d "$st" train $tiny --preset large --dim 16 --heads 1 --dropout 0.3 >/dev/null 2>"$TMP/err" ||
	fail "train --preset large: $(cat "$TMP/err")"
grep -q "dropout=0.30 attention dropout=0.00" "$TMP/err" || fail "large preset's settings: $(head -n 1 "$TMP/err")"
# --dim keeps the preset's feed-forward ratio (4 for large), --ffn sets it
grep -q "C=16 F=64 L=1 " "$TMP/err" || fail "large preset at --dim 16: $(head -n 1 "$TMP/err")"

# Good values reach the settings line, and the model is stored, loads and
# recommends.
# shellcheck disable=SC2086
"$RECCTL" -d "$st" --json train $tiny --attn-dropout 0.2 --beta2 0.999 --clip 0 >"$TMP/out" 2>"$TMP/err" ||
	fail "train with good options: $(cat "$TMP/err")"
grep -q "attention dropout=0.20" "$TMP/err" || fail "settings line: $(head -n 1 "$TMP/err")"
grep -q "Adam beta2 0.999, clip 0 " "$TMP/err" || fail "settings line: $(head -n 1 "$TMP/err")"
# the initialisation and the schedule reach the settings line too
# shellcheck disable=SC2086
"$RECCTL" -d "$st" train $tiny --init torch --lr 0.002 --lr-min 0.0001 --warmup 2 >/dev/null 2>"$TMP/err2" ||
	fail "train --init torch: $(cat "$TMP/err2")"
grep -q "torch init, lr 0.002 to 0.0001 (warm-up 2 steps)" "$TMP/err2" || fail "settings line: $(head -n 1 "$TMP/err2")"
grep -q '"version": *2' "$TMP/out" || fail "train --json: $(cat "$TMP/out")"
"$RECCTL" -d "$st" eval --model 2 >"$TMP/eval" 2>&1 || fail "eval of version 2: $(cat "$TMP/eval")"
grep -q "HR@10" "$TMP/eval" || fail "eval of version 2: $(cat "$TMP/eval")"
# recctl finetune takes the same optimizer options, checked the same way.
for a in "--beta2 1" "--beta2 -1" "--clip -1" "--clip x"; do
	set +e
	# shellcheck disable=SC2086
	"$RECCTL" -d "$st" finetune $a >"$TMP/out" 2>"$TMP/err"
	rc=$?
	set -e
	[ "$rc" -eq 2 ] || fail "finetune $a: exit $rc, expected 2"
	grep -q -- "${a%% *}" "$TMP/err" || fail "finetune $a: message does not name the option: $(cat "$TMP/err")"
done
# The feed-forward width and the softmax's items.
# shellcheck disable=SC2086
"$RECCTL" -d "$st" train $tiny --ffn 24 --softmax unseen >/dev/null 2>"$TMP/err" ||
	fail "train --ffn 24 --softmax unseen: $(cat "$TMP/err")"
grep -q "C=16 F=24 L=1 " "$TMP/err" || fail "--ffn 24: $(head -n 1 "$TMP/err")"
grep -q "softmax over unseen items" "$TMP/err" || fail "--softmax unseen: $(head -n 1 "$TMP/err")"
echo "train options: ok"
