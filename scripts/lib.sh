# scripts/lib.sh: shared by scripts/test.sh, scripts/demo.sh and bench/*.sh.
# Source it; it defines functions only.

TG_PACKAGES="libssl-dev libsodium-dev \
nlohmann-json3-dev catch2 pkg-config cmake g++ make pgbouncer python3 python3-jwt python3-cryptography \
python3-psycopg python3-psycopg-pool clang libclang-rt-14-dev dpkg-dev clang-format \
chromium fonts-dejavu-core python3-jsonschema"
# PostgreSQL 15 from Debian 12; other majors need only the postgres OS user
# (postgresql-common) from Debian's PostgreSQL packages: scripts/pg.sh builds them.
TG_PG15_PACKAGES="postgresql-15 postgresql-client-15 postgresql-server-dev-15"
TG_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# tg_select_pg: the PostgreSQL major everything builds against and runs:
# TG_PG_MAJOR, default 15 (Debian 12's own server, from the packages above).
# Another major comes from scripts/pg.sh, which builds it once into a cache
# outside the repository. Exports TG_PG_MAJOR, PG_CONFIG and PG_BINDIR, and
# puts PG_BINDIR first in PATH, so every psql, pg_dump, pg_restore, pgbench
# and pg_config that a script or harness runs is that major's. Idempotent.
tg_select_pg() {
	TG_PG_MAJOR=${TG_PG_MAJOR:-15}
	if [ -z "${PG_CONFIG:-}" ] || [ "${TG_PG_SELECTED:-}" != "$TG_PG_MAJOR" ]; then
		PG_CONFIG=$(bash "$TG_ROOT/scripts/pg.sh" "$TG_PG_MAJOR") || return 1
	fi
	PG_BINDIR=$("$PG_CONFIG" --bindir) || return 1
	case ":$PATH:" in "$PG_BINDIR":*) ;; *) PATH=$PG_BINDIR:$PATH ;; esac
	TG_PG_SELECTED=$TG_PG_MAJOR
	export TG_PG_MAJOR TG_PG_SELECTED PG_CONFIG PG_BINDIR PATH
}

tg_log() { printf '== %s\n' "$*" >&2; }

# Installs the Debian packages that are missing (root only; others must have them).
tg_install_deps() {
	local missing=() p pkgs=$TG_PG15_PACKAGES
	[ "${TG_PG_MAJOR:-15}" = 15 ] || pkgs=postgresql-common
	for p in $pkgs $TG_PACKAGES; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		tg_log "missing packages: ${missing[*]} (run as root, or install them)"
		return 1
	fi
	tg_log "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Builds and installs the extension into the selected major's tree (installing
# needs root or a writable tree). Objects built for another major are removed
# first (build/pg_config names the pg_config the objects were built with).
tg_build_install() {
	tg_select_pg
	mkdir -p "$TG_ROOT/build"
	if [ "$(cat "$TG_ROOT/build/pg_config" 2>/dev/null)" != "$PG_CONFIG" ]; then
		make -s -C "$TG_ROOT" PG_CONFIG="$PG_CONFIG" clean >/dev/null
		echo "$PG_CONFIG" >"$TG_ROOT/build/pg_config"
	fi
	make -s -C "$TG_ROOT" -j2 PG_CONFIG="$PG_CONFIG" >/dev/null
	make -s -C "$TG_ROOT" PG_CONFIG="$PG_CONFIG" install >/dev/null
}

# Runs a command as the server's OS user (postgres when we are root).
tg_as_server() {
	if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

tg_free_port() {
	local p
	for p in $(seq "${1:-54329}" 65000); do
		if ! (echo >"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
	done
	return 1
}

# tg_start_cluster DIR [extra postgresql.conf lines...]
# Starts a throw-away cluster of the selected major (tg_select_pg) in DIR (created, owned by the
# server user), listening on a free loopback port and a socket in DIR.
# Exports PGHOST PGPORT PGUSER PGDATABASE TG_CLUSTER_DIR. TG_SERVER_ENV, if
# set, holds NAME=VALUE words added to the server's environment only (the
# clock harness preloads libfaketime that way).
tg_start_cluster() {
	local dir=$1; shift
	tg_select_pg
	local bindir=$PG_BINDIR
	mkdir -p "$dir"
	[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir"
	tg_as_server "$bindir/initdb" -D "$dir/data" -U postgres -A trust --no-sync -E UTF8 --locale=C.UTF-8 \
		>"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log"; return 1; }
	{
		echo "listen_addresses = '127.0.0.1'"
		echo "unix_socket_directories = '$dir'"
		echo "fsync = off"
		echo "max_connections = 60"
		local line; for line in "$@"; do echo "$line"; done
	} | tg_as_server tee -a "$dir/data/postgresql.conf" >/dev/null
	# Harnesses start clusters in parallel (ctest -j2): two may pick the same
	# free port before either binds it. Start from a random port and retry.
	local port attempt
	for attempt in 1 2 3 4 5; do
		port=$(tg_free_port $((54329 + RANDOM % 4000)))
		echo "port = $port" | tg_as_server tee "$dir/data/port.conf" >/dev/null
		grep -q "^include_if_exists = 'port.conf'" "$dir/data/postgresql.conf" \
			|| echo "include_if_exists = 'port.conf'" | tg_as_server tee -a "$dir/data/postgresql.conf" >/dev/null
		# shellcheck disable=SC2086
		tg_as_server env ${TG_SERVER_ENV:-} "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -s start && break
		[ "$attempt" -lt 5 ] || { cat "$dir/server.log"; return 1; }
	done
	export PGHOST=$dir PGPORT=$port PGUSER=postgres PGDATABASE=postgres TG_CLUSTER_DIR=$dir
}

tg_stop_cluster() {
	local dir=${1:-$TG_CLUSTER_DIR}
	[ -n "$dir" ] && [ -d "$dir/data" ] || return 0
	tg_select_pg
	tg_as_server "$PG_BINDIR/pg_ctl" -D "$dir/data" -m fast -w -s stop >/dev/null 2>&1 || true
}
