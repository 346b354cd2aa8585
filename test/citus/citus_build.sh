#!/bin/bash
# Makes Citus available to the selected PostgreSQL (PG_CONFIG) for the Citus
# harness. Citus is a test dependency only: tenant_guard never links it.
#
#   bash test/citus/citus_build.sh        prints "installed", or builds and installs it, or
#                                         prints "skip: <reason>" and exits 3
#
# When citus.so is already in PG_CONFIG's pkglibdir, nothing is done. Otherwise
# the source archive named by TG_CITUS_SOURCE (a citus-X.Y.Z.tar.xz; a
# directory holding one, with an optional citus-X.Y.Z-pg*.patch next to it,
# works too) is built ONCE into a cache outside the repository,
#   ${TG_CITUS_CACHE:-${XDG_CACHE_HOME:-/var/cache}/tenant_guard/citus}/<version>-pg<server version>
# (make install into a staging directory there; .tg_built written last), and
# the staged files are copied into PG_CONFIG's tree. Builds for one key wait
# for each other (flock).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/scripts/lib.sh"
tg_select_pg
PKGLIB=$("$PG_CONFIG" --pkglibdir)
SHARE=$("$PG_CONFIG" --sharedir)
if [ -f "$PKGLIB/citus.so" ] && [ -f "$SHARE/extension/citus.control" ]; then
	echo installed; exit 0
fi
src=${TG_CITUS_SOURCE:-}
[ -n "$src" ] || { echo "skip: Citus is not installed and TG_CITUS_SOURCE is not set"; exit 3; }
if [ -d "$src" ]; then
	archive=$(ls "$src"/citus-*.tar.xz 2>/dev/null | sort -V | tail -1 || true)
else
	archive=$src
fi
[ -n "$archive" ] && [ -f "$archive" ] || { echo "skip: no Citus source archive at $src"; exit 3; }
name=$(basename "$archive" .tar.xz)
pgver=$("$PG_CONFIG" --version | awk '{ print $2 }')
patch=$(ls "$(dirname "$archive")/$name"-pg*.patch 2>/dev/null | head -1 || true)
cache=${TG_CITUS_CACHE:-${XDG_CACHE_HOME:-/var/cache}/tenant_guard/citus}/$name-pg$pgver
mkdir -p "$(dirname "$cache")"
stamp="$name $pgver $(sha256sum "$archive" | cut -c1-16) ${patch:+$(sha256sum "$patch" | cut -c1-16)}"
(
	flock 9
	if [ "$(cat "$cache/.tg_built" 2>/dev/null)" != "$stamp" ]; then
		tg_log "building $name for PostgreSQL $pgver into $cache (once)"
		missing=()
		for p in libcurl4-openssl-dev liblz4-dev libzstd-dev libkrb5-dev libselinux1-dev libpam0g-dev \
			libxslt1-dev libreadline-dev; do
			dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
		done
		if [ ${#missing[@]} -gt 0 ]; then
			[ "$(id -u)" -eq 0 ] || { echo "skip: Citus build needs ${missing[*]}"; exit 3; }
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
		fi
		rm -rf "$cache"; mkdir -p "$cache"
		tar xJf "$archive" -C "$cache"
		cd "$cache/$name"
		[ -z "$patch" ] || patch -s -p1 <"$patch"
		{ nice -n 10 ./configure --without-libcurl PG_CONFIG="$PG_CONFIG" \
			&& nice -n 10 make -j2 && make install DESTDIR="$cache/stage"; } >"$cache/build.log" 2>&1 \
			|| { tail -30 "$cache/build.log"; exit 1; }
		printf '%s\n%s\n' "$PKGLIB" "$SHARE" >"$cache/paths"
		echo "$stamp" >"$cache/.tg_built"
	fi
) 9>"$cache.lock"
# Copy the staged files into this PostgreSQL's tree.
{ read -r blib; read -r bshare; } <"$cache/paths"
cp -a "$cache/stage$blib"/. "$PKGLIB"/
cp -a "$cache/stage$bshare/extension"/. "$SHARE/extension"/
echo installed
