#!/bin/sh
# run-train-speed.sh: one training epoch of the SASRec paper's configuration
# (d=50, 2 blocks, 1 head, maxlen 200, batch 128, dropout 0.2, full softmax
# cross-entropy in both) on MovieLens-1M, recd against the same model in
# PyTorch (bench/sasrec_torch.py), side by side in this run, both with the
# same number of threads.  Needs Debian's python3-torch for the reference:
# it says so and stops if that is missing; it installs nothing.
# Usage: bench/run train-speed [--data FILE] [--epochs N] [--threads N]
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${RECCTL:-}" ]; then
	RECCTL=$here/build/recctl
	[ -x "$RECCTL" ] || RECCTL=$here/recctl
fi
data=$here/../shared/data/ml-1m/ml1m_sasrec_style.txt
epochs=1 threads=2
while [ $# -gt 0 ]; do
	case $1 in
	--data) data=$2; shift 2 ;;
	--epochs) epochs=$2; shift 2 ;;
	--threads) threads=$2; shift 2 ;;
	*) echo "run-train-speed.sh: unknown option $1" >&2; exit 2 ;;
	esac
done
[ -f "$data" ] || { echo "run-train-speed.sh: $data not found (give --data FILE)" >&2; exit 77; }
/usr/bin/python3 -c 'import torch' 2>/dev/null || {
	echo "run-train-speed.sh: the PyTorch reference needs Debian's python3-torch: apt-get install python3-torch" >&2; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/recd-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

"$RECCTL" -q -d "$tmp/st" import ml1m-seq "$data" >/dev/null
"$RECCTL" -q -d "$tmp/st" --json train --dim 50 --blocks 2 --heads 1 --maxlen 200 --batch 128 \
	--dropout 0.2 --features none --block preln --attn-dropout 0 --positions last --windows last --softmax all \
	--epochs "$epochs" --eval-every 0 --threads "$threads" >"$tmp/recd.json"
/usr/bin/python3 "$here/bench/sasrec_torch.py" --data "$data" --epochs "$epochs" --threads "$threads" \
	--d 50 --blocks 2 --heads 1 --maxlen 200 --batch 128 --dropout 0.2 | tee "$tmp/torch.out"

val() { tr -d ' \n' <"$1" | grep -o "\"$2\":[-0-9.e]*" | head -n 1 | cut -d: -f2; }
recd_s=$(val "$tmp/recd.json" seconds_per_epoch)
rss=$(val "$tmp/recd.json" peak_rss_mb)
tail -n 1 "$tmp/torch.out" >"$tmp/torch.json"
torch_s=$(val "$tmp/torch.json" torch_s_per_epoch)
ratio=$(awk -v a="$torch_s" -v b="$recd_s" 'BEGIN { printf "%.2f", a / b }')
echo "one epoch, SASRec paper config, full CE, $threads threads: recd $recd_s s (peak RSS $rss MiB), PyTorch $torch_s s: recd is ${ratio}x faster (target >= 3x, RSS <= 2048 MiB)"
printf '{"recd_s_per_epoch":%s,"torch_s_per_epoch":%s,"ratio":%s,"threads":%s,"epochs":%s,"recd_peak_rss_mb":%s}\n' \
	"$recd_s" "$torch_s" "$ratio" "$threads" "$epochs" "$rss"
