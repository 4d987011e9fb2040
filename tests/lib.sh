# tests/lib.sh: shared by the shell tests.  Source it; it gives a scratch
# directory that is removed on exit, and fail/skip helpers.
set -eu
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
: "${RECCTL:=$top_builddir/recctl}"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/recd-test.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*" >&2; exit 77; }
# Data directory for the real datasets: $RECD_DATA_DIR, else ../shared/data.
data_dir() {
	for d in "${RECD_DATA_DIR:-}" "$top_srcdir/../shared/data" "$top_srcdir/../../shared/data"; do
		[ -n "$d" ] && [ -d "$d" ] && { echo "$d"; return 0; }
	done
	return 1
}
