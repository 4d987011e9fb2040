#!/bin/sh
# import_realdata.sh: imports each real dataset of ../shared/data into a
# fresh store and checks the exact counts the datasets are known to have.
# Skips (77) when the data directory is not there.
. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"

[ -x "$RECCTL" ] || skip "$RECCTL is not built"
D=$(data_dir) || skip "no real data: neither \$RECD_DATA_DIR nor ../shared/data exists"

count() {  # count DIR KEY
	"$RECCTL" -d "$1" --json stats | grep -o "\"$2\": *[0-9]*" | head -n 1 | grep -o '[0-9]*$' || true
}

# check NAME FORMAT PATH USERS ITEMS EVENTS TRIPLES
check() {
	name=$1 format=$2 path=$3
	if [ ! -e "$path" ]; then
		echo "skipping $name: $path is missing"
		return 0
	fi
	st=$TMP/$name
	"$RECCTL" -d "$st" -q import "$format" "$path" >"$TMP/$name.out" 2>&1 ||
		{ cat "$TMP/$name.out"; fail "$name: import exited with $?"; }
	for kv in "users $4" "items $5" "events $6" "triples $7"; do
		set -- $kv
		got=$(count "$st" "$1")
		[ "$got" = "$2" ] || fail "$name: '$got' $1, expected $2"
	done
	echo "ok: $name"
	checked=$((checked + 1))
}

checked=0
check ml1m-full ml1m-seq "$D/ml-1m/ml1m_full_origids.txt" 6040 3706 1000209 0
check ml1m-5core ml1m-seq "$D/ml-1m/ml1m_sasrec_style.txt" 6040 3416 999611 0
check ml100k ml100k "$D/ml-100k" 943 1682 100000 91631
check nyc foursquare "$D/poi-nyc" 1083 5135 147938 0
check ml1m-dir ml1m "$D/ml-1m" 6040 3883 487650 20782
check amazon amazon "$D/amazon-mi/Musical_Instruments.json" 1429 900 10261 0
[ "$checked" -gt 0 ] || skip "$D holds none of the datasets"
