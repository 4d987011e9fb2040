#!/bin/sh
# packaging_verify.sh: the systemd files and the man pages.  systemd-analyze
# verify finds nothing to say about recd.service (pointed at the built recd),
# its hardening scores 2.0 or less in systemd-analyze security, the pages
# its Documentation= names exist, sysusers and tmpfiles make the user and the
# state directory in a scratch root, and every man/*.[1-8] renders without a
# warning in groff and mandoc and has the sections every recd page has.
. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"

# --- man pages (first: they need no systemd) ----------------------------------
command -v groff >/dev/null 2>&1 || skip "groff is not installed (apt-get install groff-base)"
sections='NAME SYNOPSIS DESCRIPTION FILES EXIT?STATUS SECURITY DIAGNOSTICS EXAMPLES SEE?ALSO'
pages=0
for page in "$top_srcdir"/man/*.[1-8]; do
	[ -f "$page" ] || continue
	pages=$((pages + 1))
	out=$(groff -man -ww -z "$page" 2>&1) || fail "groff failed on $page: $out"
	[ -z "$out" ] || fail "groff warns about $page:$(printf '\n')$out"
	if command -v mandoc >/dev/null 2>&1; then
		# Warnings and worse fail; style notes are shown but pass.
		out=$(mandoc -Tlint -Wwarning "$page" 2>&1) || :
		[ -z "$out" ] || fail "mandoc warns about $page:$(printf '\n')$out"
		out=$(mandoc -Tlint -Wstyle "$page" 2>&1) || :
		[ -z "$out" ] || echo "mandoc style notes (not failing):$(printf '\n')$out"
	fi
	for s in $sections; do
		grep -q "^\.SH \"*$(echo "$s" | tr '?' ' ')\"*\$" "$page" || fail "$page has no ${s%%\?*} section"
	done
done
[ "$pages" -gt 0 ] || fail "no man pages under $top_srcdir/man"
grep -q '^\.SH OPTIONS$' "$top_srcdir/man/recd.8" || fail "recd.8 has no OPTIONS section"

# --- the unit as make built it --------------------------------------------
built=$top_builddir/packaging/recd.service
[ -f "$built" ] || fail "make did not build $built"
! grep -n '@[a-z_]*@' "$built" || fail "$built has unsubstituted @variables@"
grep -q '^ExecStart=/.*/recd$' "$built" || fail "$built: ExecStart= is not an absolute path to recd"
grep -q '^ExecStartPre=/.*/recd --check$' "$built" || fail "$built: no ExecStartPre= recd --check"

# Every Documentation= page is one we ship.
for doc in $(sed -n 's/^Documentation=//p' "$top_srcdir/packaging/recd.service.in"); do
	case "$doc" in
	man:*\(*\))
		name=${doc#man:}; sec=${name#*\(}; sec=${sec%\)}; name=${name%%\(*}
		[ -f "$top_srcdir/man/$name.$sec" ] || fail "Documentation=$doc: no man/$name.$sec"
		;;
	*) fail "Documentation=$doc is not a man page" ;;
	esac
done

# --- systemd's own checks -------------------------------------------------------
command -v systemd-analyze >/dev/null 2>&1 ||
	skip "systemd-analyze is not installed (apt-get install systemd); the man pages passed"
recd=$top_builddir/recd
[ -x "$recd" ] || skip "no recd at $recd"

# verify wants ExecStart='s program to exist: a copy of the unit runs the built one.
unit=$TMP/recd.service
sed -e "s|@sbindir[@]|$top_builddir|g" "$top_srcdir/packaging/recd.service.in" >"$unit"
# --man=no: recd(8) is not installed where man(1) looks; checked above instead.
out=$(cd "$TMP" && SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no ./recd.service 2>&1) ||
	fail "systemd-analyze verify failed:$(printf '\n')$out"
[ -z "$out" ] || fail "systemd-analyze verify has remarks:$(printf '\n')$out"

if systemd-analyze --help 2>&1 | grep -q -- '--offline'; then
	# --threshold counts in tenths of the score it prints (20 = 2.0).
	out=$(cd "$TMP" && systemd-analyze security --offline=yes --threshold=20 ./recd.service 2>&1) ||
		fail "hardening score above 2.0:$(printf '\n')$out"
	echo "$out" | tail -n 1
else
	echo "systemd-analyze has no --offline (systemd < 250): hardening score not checked"
fi

# sysusers and tmpfiles, into a scratch root.
root=$TMP/root
mkdir -p "$root/etc"
out=$(systemd-sysusers --root="$root" "$top_srcdir/packaging/recd.sysusers" 2>&1) ||
	fail "systemd-sysusers failed: $out"
grep -q '^recd:x:[0-9]*:[0-9]*:[^:]*:/var/lib/recd:/usr/sbin/nologin$' "$root/etc/passwd" ||
	fail "sysusers made no recd user: $(cat "$root/etc/passwd")"
grep -q '^recd:x:' "$root/etc/group" || fail "sysusers made no recd group"
uid=$(awk -F: '$1 == "recd" { print $3 }' "$root/etc/passwd")
out=$(systemd-tmpfiles --root="$root" --create "$top_srcdir/packaging/recd.tmpfiles" 2>&1) ||
	fail "systemd-tmpfiles failed: $out"
[ "$(stat -c '%a %u' "$root/var/lib/recd")" = "750 $uid" ] ||
	fail "tmpfiles made $(stat -c '%a %u' "$root/var/lib/recd"), expected 750 $uid"

# The default recd.conf is valid and sets nothing (every line a comment).
if "$recd" -c "$top_srcdir/packaging/recd.conf" --check >/dev/null 2>"$TMP/err"; then :; else
	fail "packaging/recd.conf does not pass recd --check: $(cat "$TMP/err")"
fi
! grep -v '^#' "$top_srcdir/packaging/recd.conf" | grep -q '[^[:space:]]' ||
	fail "packaging/recd.conf sets something; its values should be commented defaults"
# ... and its commented-out values, switched on, are valid too.
sed 's/^#\([a-z_]* =\)/\1/' "$top_srcdir/packaging/recd.conf" >"$TMP/on.conf"
grep -q '^max_clients = ' "$TMP/on.conf" || fail "no commented max_clients in packaging/recd.conf"
"$recd" -c "$TMP/on.conf" --check >/dev/null 2>"$TMP/err" ||
	fail "packaging/recd.conf's commented defaults do not pass recd --check: $(cat "$TMP/err")"
exit 0
