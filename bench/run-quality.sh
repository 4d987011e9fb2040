#!/bin/sh
# run-quality.sh: trains the sequence model on MovieLens-1M and evaluates it
# with the protocols of ../shared/EVALUATION.md, next to the published numbers.
# Usage: bench/run quality [--data FILE] [--preset small|large] [--epochs N]
#                          [--patience N] [--threads N] [--valid-users N] [--maxlen T]
#                          [--block preln|sasrec] [--windows random|last] [--dropout P]
#                          [--attn-dropout P] [--beta2 B] [--clip N] [--positions first|last]
#                          [--init scaled|torch] [--lr X] [--lr-min X] [--warmup N] [--batch N]
#                          [--seed N] [--dim C] [--blocks L] [--heads NH] [--ffn F]
#                          [--softmax all|unseen]
# (each passed to recctl train; see recctl(1)).
# Default data: ../shared/data/ml-1m/ml1m_sasrec_style.txt (the 5-core file).
# Default recipe (the README's figures): the small preset deepened to 4 blocks
# of SASRec's wiring with 2 heads, dropout 0.2 (attention too), positions from
# the window's first event, last windows, PyTorch's initialisation, Adam
# beta2 0.999 without clipping, batch 32, softmax over unseen items (recctl's
# default).  Each option above overrides its part; --preset resets none of them.
# The last line printed is one JSON object.  Installs nothing.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${RECCTL:-}" ]; then
	RECCTL=$here/build/recctl
	[ -x "$RECCTL" ] || RECCTL=$here/recctl
fi
data=$here/../shared/data/ml-1m/ml1m_sasrec_style.txt
preset=small epochs=100 patience=10 threads=2 valid=0 maxlen= block=sasrec windows=last dropout=0.2
attn=0.2 beta2=0.999 clip=0 positions=first
# further recctl train options, each "--name value" (no blanks in values); later ones win
extra="--init torch --batch 32 --blocks 4 --heads 2"
while [ $# -gt 0 ]; do
	case $1 in
	--data) data=$2; shift 2 ;;
	--preset) preset=$2; shift 2 ;;
	--epochs) epochs=$2; shift 2 ;;
	--patience) patience=$2; shift 2 ;;
	--threads) threads=$2; shift 2 ;;
	--valid-users) valid=$2; shift 2 ;;
	--maxlen) maxlen=$2; shift 2 ;;
	--block) block=$2; shift 2 ;;
	--windows) windows=$2; shift 2 ;;
	--dropout) dropout=$2; shift 2 ;;
	--attn-dropout) attn=$2; shift 2 ;;
	--beta2) beta2=$2; shift 2 ;;
	--clip) clip=$2; shift 2 ;;
	--positions) positions=$2; shift 2 ;;
	--init|--lr|--lr-min|--warmup|--batch|--seed|--dim|--blocks|--heads|--ffn|--softmax)
		[ $# -ge 2 ] || { echo "run-quality.sh: $1 needs a value" >&2; exit 2; }
		extra="$extra $1 $2"; shift 2 ;;
	*) echo "run-quality.sh: unknown option $1" >&2; exit 2 ;;
	esac
done
[ -f "$data" ] || { echo "run-quality.sh: $data not found (give --data FILE)" >&2; exit 77; }
[ -x "$RECCTL" ] || { echo "run-quality.sh: $RECCTL is not built (run ./quickstart or make)" >&2; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/recd-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

"$RECCTL" -q -d "$tmp/st" import ml1m-seq "$data" >/dev/null
# recctl's progress (stderr) goes to the terminal and to train.log, whose
# first line is the model's settings; the JSON result (stdout) to train.json.
{ "$RECCTL" -d "$tmp/st" --json train --preset "$preset" --epochs "$epochs" --patience "$patience" \
	--threads "$threads" --valid-users "$valid" ${maxlen:+--maxlen "$maxlen"} \
	${block:+--block "$block"} ${windows:+--windows "$windows"} ${dropout:+--dropout "$dropout"} \
	${attn:+--attn-dropout "$attn"} ${beta2:+--beta2 "$beta2"} ${clip:+--clip "$clip"} \
	${positions:+--positions "$positions"} $extra 2>&1 >"$tmp/train.json" ||
	echo "run-quality.sh: recctl train failed" >&2; } | tee "$tmp/train.log" >&2
grep -q '"test"' "$tmp/train.json" || { echo "run-quality.sh: training failed (see above)" >&2; exit 1; }
"$RECCTL" -d "$tmp/st" --json eval --protocol both --threads "$threads" >"$tmp/eval.json"

# Pull numbers out of recctl's JSON with json-c-free shell: one key per line.
val() { tr -d ' \n' <"$1" | grep -o "\"$2\":[-0-9.e]*" | head -n "${3:-1}" | tail -n 1 | cut -d: -f2; }
full_hr10=$(val "$tmp/eval.json" 'hr@10' 1); full_ndcg10=$(val "$tmp/eval.json" 'ndcg@10' 1)
full_hr50=$(val "$tmp/eval.json" 'hr@50' 1); full_ndcg50=$(val "$tmp/eval.json" 'ndcg@50' 1)
full_hr200=$(val "$tmp/eval.json" 'hr@200' 1); full_mrr=$(val "$tmp/eval.json" 'mrr' 1)
s_hr10=$(val "$tmp/eval.json" 'hr@10' 2); s_ndcg10=$(val "$tmp/eval.json" 'ndcg@10' 2)
secs=$(val "$tmp/train.json" train_seconds); ep=$(val "$tmp/train.json" epochs)
spe=$(val "$tmp/train.json" seconds_per_epoch)
settings=$(grep -m 1 '^training ' "$tmp/train.log" | sed 's/^training //; s/ on [0-9].*//')
best=$(val "$tmp/train.json" best_epoch); rss=$(val "$tmp/train.json" peak_rss_mb)

name=$(basename "$data")
printf 'recd %s on %s: %s epochs (best %s) in %.0f s (%.1f s/epoch), %s threads, peak RSS %.0f MiB\n' \
	"$settings" "$name" "$ep" "$best" "$secs" "$spe" "$threads" "$rss"
echo "full-ranking leave-one-out, seen items excluded:"
echo "  recd     HR@10 $full_hr10  NDCG@10 $full_ndcg10  HR@50 $full_hr50  NDCG@50 $full_ndcg50  HR@200 $full_hr200  MRR $full_mrr"
case $name in
*sasrec_style*) echo "  SASRec+ (full CE, 5-core)  HR@10 0.3152  NDCG@10 0.1821  (target: >= 0.315 / 0.182)" ;;
*full_origids*) echo "  HSTU        HR@10 0.3097  NDCG@10 0.1720"
                echo "  HSTU-large  HR@10 0.3294  NDCG@10 0.1893" ;;
esac
echo "sampled-100 leave-one-out: recd HR@10 $s_hr10 NDCG@10 $s_ndcg10; SASRec paper 0.8245 / 0.5905"
printf '{"protocol":"full-ranking leave-one-out, seen items excluded","data":"%s","preset":"%s","settings":"%s","maxlen":"%s","hr@10":%s,"ndcg@10":%s,"hr@50":%s,"ndcg@50":%s,"hr@200":%s,"mrr":%s,"train_seconds":%s,"s_per_epoch":%s,"epochs":%s,"best_epoch":%s,"threads":%s,"peak_rss_mb":%s,"sampled100_hr@10":%s,"sampled100_ndcg@10":%s}\n' \
	"$name" "$preset" "$(printf %s "$settings" | tr -d '"\\')" "${maxlen:-preset}" "$full_hr10" "$full_ndcg10" "$full_hr50" "$full_ndcg50" "$full_hr200" "$full_mrr" \
	"$secs" "$spe" "$ep" "$best" "$threads" "$rss" "$s_hr10" "$s_ndcg10"
