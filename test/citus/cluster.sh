# test/citus/cluster.sh: sourced by test/citus/run_citus.sh and
# bench/citus_bench.sh (after scripts/lib.sh). Defines functions only.

# citus_available: 0 when Citus is installed or was just built
# (test/citus/citus_build.sh); prints "skip: <why>" and returns 3 when it
# cannot be had, any other status when building failed.
citus_available() {
	bash "$TG_ROOT/test/citus/citus_build.sh"
}

# citus_cluster_start DIR FIXTURES_DIR: a coordinator and two workers on
# loopback in DIR/{coord,w1,w2}, each with shared_preload_libraries =
# 'citus,tenant_guard' and the key files of FIXTURES_DIR (tokens.env), citus
# installed and the workers added. Sets PORT[coord|w1|w2] (declare -A PORT
# first) and exports PGHOST=127.0.0.1 PGPORT=<coordinator>.
citus_cluster_start() {
	local dir=$1 fx=$2 n
	local conf=("shared_preload_libraries = 'citus,tenant_guard'" "max_connections = 40" "shared_buffers = 32MB"
		"tenant_guard.jwt_secret_file = '$fx/hs256.secret'" "tenant_guard.jwt_audience = 'tenant-app'"
		"tenant_guard.master_key_file = '$fx/master.key'" "citus.node_conninfo = 'sslmode=disable'"
		"citus.max_cached_conns_per_worker = 1" "max_worker_processes = 12")
	for n in coord w1 w2; do
		tg_start_cluster "$dir/$n" "${conf[@]}" >/dev/null
		PORT[$n]=$PGPORT
	done
	export PGPORT=${PORT[coord]} PGHOST=127.0.0.1
	for n in coord w1 w2; do
		psql -X -q -At -v ON_ERROR_STOP=1 -p "${PORT[$n]}" -c "CREATE EXTENSION citus" >/dev/null
	done
	psql -X -q -At -v ON_ERROR_STOP=1 >/dev/null <<SQL
SELECT citus_set_coordinator_host('127.0.0.1', ${PORT[coord]});
SELECT citus_add_node('127.0.0.1', ${PORT[w1]});
SELECT citus_add_node('127.0.0.1', ${PORT[w2]});
SQL
}

citus_cluster_stop() {
	local dir=$1 n
	for n in w2 w1 coord; do tg_stop_cluster "$dir/$n"; done
}
