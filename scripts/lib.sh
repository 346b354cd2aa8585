# scripts/lib.sh: shared by scripts/test.sh, scripts/demo.sh and bench/*.sh.
# Source it; it defines functions only.

TG_PACKAGES="postgresql-15 postgresql-client-15 postgresql-server-dev-15 libssl-dev libsodium-dev \
nlohmann-json3-dev catch2 pkg-config cmake g++ make pgbouncer python3 python3-jwt python3-cryptography \
python3-psycopg python3-psycopg-pool clang libclang-rt-14-dev dpkg-dev"

tg_log() { printf '== %s\n' "$*" >&2; }

# Installs the Debian packages that are missing (root only; others must have them).
tg_install_deps() {
	local missing=() p
	for p in $TG_PACKAGES; do
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

# Builds and installs the extension (installing needs root or a writable PG tree).
tg_build_install() {
	make -s -j2 >/dev/null
	make -s install >/dev/null
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
# Starts a throw-away PostgreSQL 15 cluster in DIR (created, owned by the
# server user), listening on a free loopback port and a socket in DIR.
# Exports PGHOST PGPORT PGUSER PGDATABASE TG_CLUSTER_DIR. TG_SERVER_ENV, if
# set, holds NAME=VALUE words added to the server's environment only (the
# clock harness preloads libfaketime that way).
tg_start_cluster() {
	local dir=$1; shift
	local bindir; bindir=$(pg_config --bindir)
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
	tg_as_server "$(pg_config --bindir)/pg_ctl" -D "$dir/data" -m fast -w -s stop >/dev/null 2>&1 || true
}
