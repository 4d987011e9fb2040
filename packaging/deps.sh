# packaging/deps.sh: the Debian packages recd needs to build and test, a
# function that installs the missing ones, and one that readies the source
# tree for out-of-tree builds.  Sourced by ./quickstart and ./run-tests; keep
# the package list in step with configure.ac.
RECD_DEPS="gcc make autoconf automake libtool pkg-config
liblmdb-dev libsodium-dev liburing-dev libjson-c-dev libopenblas-dev libsystemd-dev
groff-base mandoc"

deps_missing() {
	missing=
	for p in $RECD_DEPS; do
		s=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
		case "$s" in *" installed") ;; *) missing="$missing $p" ;; esac
	done
	echo "$missing"
}

# Out-of-tree builds (build/, build-asan/) need a source tree that is not
# configured in place, and a configure script newer than its inputs.
tree_prepare() {
	if [ -f config.status ]; then
		echo "the source tree was configured in place; cleaning it (make distclean)"
		make distclean >/dev/null 2>&1 || true
	fi
	if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt configure ]; then
		autoreconf -fi >autoreconf.out 2>&1 || { cat autoreconf.out >&2; echo "autoreconf failed" >&2; return 1; }
		rm -f autoreconf.out
	fi
}

deps_install() {
	command -v dpkg-query >/dev/null 2>&1 || {
		echo "This needs a Debian system (dpkg-query was not found)." >&2; return 1; }
	m=$(deps_missing)
	[ -z "$m" ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "Missing Debian packages:$m" >&2
		echo "Install them as root, then run this again:" >&2
		echo "  apt-get update && apt-get install -y$m" >&2
		return 1
	fi
	echo "Installing:$m"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null && apt-get install -y -qq $m >/dev/null || {
		echo "apt-get install failed for:$m" >&2; return 1; }
}
