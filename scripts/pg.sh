#!/bin/bash
# scripts/pg.sh MAJOR: prints the pg_config of PostgreSQL MAJOR.
#
# 15 is Debian 12's own server (the postgresql-15 packages, installed by
# scripts/lib.sh). Any other major is built once from Debian's source package
# into a cache outside the repository and reused from then on:
#
#   $TG_PG_CACHE (default ${XDG_CACHE_HOME:-/var/cache}/tenant_guard/pg)
#     apt/           a private apt configuration: deb-src lines for the suites
#                    in TG_PG_SUITES (default "trixie sid") on the system's own
#                    Debian mirror; the system's apt setup is not touched
#     MAJOR/         the installation prefix (bin/pg_config, the server, the
#                    contrib modules the tests use, and tenant_guard once
#                    scripts/test.sh has installed it there)
#     MAJOR/.tg_built  written last: the source package version and the build
#                    options; a prefix without it (an interrupted build) or
#                    with other options is built again
#
# The first call fetches the source package (apt-get source --download-only),
# builds the upstream tarball it holds with make -j2 and installs it (about
# ten minutes on two cores); later calls print the path at once. Calls for the
# same major wait for each other (flock on MAJOR.lock).
#
# Usage: bash scripts/pg.sh MAJOR      (prints e.g. /var/cache/tenant_guard/pg/18/bin/pg_config)
set -euo pipefail

major=${1:-}
[[ "$major" =~ ^[0-9]+$ ]] || { echo "usage: $0 MAJOR (e.g. 15, 17, 18)" >&2; exit 2; }
log() { printf '== pg.sh: %s\n' "$*" >&2; }

if [ "$major" = 15 ]; then
	# The system's server; scripts/lib.sh installs its packages.
	echo /usr/lib/postgresql/15/bin/pg_config
	exit 0
fi

cache=${TG_PG_CACHE:-${XDG_CACHE_HOME:-/var/cache}/tenant_guard/pg}
prefix=$cache/$major
suites=${TG_PG_SUITES:-trixie sid}
# Contrib modules the suite and the benchmarks create (sql/, test/, bench/).
contrib="dblink pgcrypto pg_stat_statements pg_prewarm"
# As Debian's own build where the suite needs it: libxml (the dump harness
# uses xpath), lz4 (the audit log compresses row images with it), OpenSSL
# (pgcrypto); no ICU (initdb uses the C.UTF-8 libc locale).
options="--without-icu --with-openssl --with-libxml --with-lz4 --with-readline --with-zlib"
want="options=$options contrib=$contrib"

built_ok() { [ -x "$prefix/bin/pg_config" ] && [ -f "$prefix/.tg_built" ] && grep -qxF "$want" "$prefix/.tg_built"; }

if built_ok; then echo "$prefix/bin/pg_config"; exit 0; fi

# What this script creates is readable by the server's OS user (initdb and
# the server run from the prefix as postgres); existing directories are left
# as they are.
umask 022
mkdir -p "$cache"
exec 9>"$cache/$major.lock"
flock 9
if built_ok; then echo "$prefix/bin/pg_config"; exit 0; fi

# Build dependencies, from Debian's packages.
deps="gcc make bison flex libreadline-dev zlib1g-dev libssl-dev libxml2-dev liblz4-dev pkg-config bzip2 xz-utils"
missing=()
for p in $deps; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	[ "$(id -u)" -eq 0 ] || { log "missing packages: ${missing[*]} (run as root, or install them)"; exit 1; }
	log "installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
		|| { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
fi

# A private apt configuration with deb-src lines on the system's own mirror.
mirror=${TG_DEBIAN_MIRROR:-$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 2>/dev/null \
	| awk '$2 !~ /-/ && $1 ~ /\/debian\/$/ { print $1; exit }')}
[ -n "$mirror" ] || { log "no Debian mirror in the system's apt sources; set TG_DEBIAN_MIRROR"; exit 1; }
apt_dir=$cache/apt
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
: >"$apt_dir/sources.list"
for s in $suites; do
	echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $s main" >>"$apt_dir/sources.list"
done
apt_opts=(-o "Dir::Etc::sourcelist=$apt_dir/sources.list" -o Dir::Etc::sourceparts=-
	-o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o APT::Sandbox::User=root)
log "fetching the source package postgresql-$major ($suites)"
apt-get "${apt_opts[@]}" update -qq >&2
work=$(mktemp -d "$cache/build-$major.XXXXXX")
trap 'rm -rf "$work"' EXIT
if ! (cd "$work" && apt-get "${apt_opts[@]}" source --download-only -qq "postgresql-$major" >&2); then
	log "could not fetch the source package postgresql-$major from $mirror ($suites): PostgreSQL $major cannot be built here"
	exit 1
fi
dsc=$(ls "$work"/postgresql-"$major"_*.dsc)
version=$(sed -n 's/^Version: //p' "$dsc")
orig=$(ls "$work"/postgresql-"$major"_*.orig.tar.*)
log "building PostgreSQL $version (upstream tarball of the source package) into $prefix"
mkdir "$work/src"
tar -xf "$orig" -C "$work/src" --strip-components=1
rm -rf "$prefix"
start=$SECONDS
(
	cd "$work/src"
	# shellcheck disable=SC2086
	./configure --prefix="$prefix" $options >"$work/configure.log" 2>&1 || { tail -40 "$work/configure.log"; exit 1; }
	make -s -j2 >"$work/make.log" 2>&1 || { tail -60 "$work/make.log"; exit 1; }
	make -s install >"$work/install.log" 2>&1 || { tail -40 "$work/install.log"; exit 1; }
	for m in $contrib; do
		make -s -C "contrib/$m" -j2 install >>"$work/install.log" 2>&1 || { tail -40 "$work/install.log"; exit 1; }
	done
) >&2
printf 'version=%s\n%s\n' "$version" "$want" >"$prefix/.tg_built"
log "PostgreSQL $version built and installed in $((SECONDS - start)) s"
echo "$prefix/bin/pg_config"
