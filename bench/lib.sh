# bench/lib.sh: shared by the benchmarks. Source it after scripts/lib.sh.

# tg_bench_start NAME: builds and installs tenant_guard into the selected
# PostgreSQL (TG_PG_MAJOR, default 15; scripts/lib.sh), makes the work
# directory $WORK (/tmp/NAME.XXXXXX, removed on exit unless KEEP_BENCH_DIR is
# set) and starts a throw-away cluster (preloading TG_BENCH_PRELOAD, default
# tenant_guard, plus the postgresql.conf lines of the array TG_BENCH_EXTRA) with the benchmark settings: no
# parallel query (scans measure per-row cost, not parallelism), no JIT
# (timings do not depend on compile time), no autovacuum (no background work
# on the static tables), everything in shared buffers. Sets WORK, PSQL, PGBENCH and SETTINGS (the
# postgresql.conf lines, printed with the results).
tg_bench_start() {
	tg_install_deps
	tg_log "building and installing tenant_guard"
	tg_build_install
	PGBENCH=$PG_BINDIR/pgbench
	PSQL=$PG_BINDIR/psql
	WORK=$(mktemp -d "/tmp/$1.XXXXXX")
	chmod 755 "$WORK"
	trap 'tg_stop_cluster "$WORK/pg"; [ -n "${KEEP_BENCH_DIR:-}" ] || rm -rf "$WORK"' EXIT
	SETTINGS=(
		"shared_preload_libraries = '${TG_BENCH_PRELOAD:-tenant_guard}'"
		"shared_buffers = '1GB'"
		"work_mem = '256MB'"
		"max_parallel_workers_per_gather = 0"
		"jit = off"
		"autovacuum = off"
		"synchronous_commit = off"
		${TG_BENCH_EXTRA[@]+"${TG_BENCH_EXTRA[@]}"}
	)
	tg_log "starting a throw-away PostgreSQL cluster"
	tg_start_cluster "$WORK/pg" "${SETTINGS[@]}"
}

# rotated ROUND NAMES...: NAMES rotated left by ROUND, one per line, so the
# order of variants changes every round.
rotated() {
	local r=$1; shift
	local a=("$@") n=$# i
	for ((i = 0; i < n; i++)); do echo "${a[$(((i + r) % n))]}"; done
}

# median_latency LOG_PREFIX: median per-transaction latency (µs) of the
# pgbench logs LOG_PREFIX.*, which it then removes.
median_latency() {
	cat "$1".* | awk '{ print $3 }' | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
	rm -f "$1".*
}

# phase SHAPE ROUNDS VARIANTS...: the paired measurement. Each round runs the
# explicit baseline, then each variant followed by the baseline again (E V1 E
# V2 ... E), in an order rotated every round, appending "shape round seq
# variant value" lines to $RESULTS. The calling script defines measure SHAPE
# VARIANT (prints one figure).
phase() {
	local shape=$1 rounds=$2 r seq v val; shift 2
	for ((r = 0; r < rounds; r++)); do
		seq=0
		for v in $(rotated "$r" "$@") ""; do
			val=$(measure "$shape" explicit)
			echo "$shape $r $seq explicit $val" >>"$RESULTS"
			seq=$((seq + 1))
			[ -n "$v" ] || break
			val=$(measure "$shape" "$v")
			echo "$shape $r $seq $v $val" >>"$RESULTS"
			seq=$((seq + 1))
		done
	done
}
