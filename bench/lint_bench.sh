#!/bin/bash
# What lint() and the runtime guards cost (docs/performance.md, "Lints and
# runtime guards"). Two measurements, side by side in one run:
#
#  1. lint(): wall time of one full lint() on a schema of N generator-built
#     tenant tables (N = 50 and 400), against verify() (the 0.1.0 drift check
#     it calls) and against the three-query plain-SQL audit users write by
#     hand (bench/lint/plain.sql). Medians of ROUNDS runs, in rotated order.
#  2. the ProcessUtility hook: a second cluster WITHOUT tenant_guard preloaded
#     runs the same pgbench scripts; the ratio preloaded/not-preloaded of
#     (a) a utility statement every transaction runs (SET LOCAL) and
#     (b) TRUNCATE of a small table without row-level security by an
#     application role (allowed; no role look-up needed) and (c) TRUNCATE of a
#     protected table by its owner, a non-superuser that is not an application
#     role (allowed; the guard's worst case: it looks the role up).
#
# Usage: bash bench/lint_bench.sh [rounds]   (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
. bench/lib.sh
ROUNDS=${1:-5}
tg_bench_start tg_lint_bench
P=("$PSQL" -X -q -v ON_ERROR_STOP=1)
export PGOPTIONS="-c client_min_messages=warning"
"${P[@]}" -c "CREATE EXTENSION tenant_guard" \
	-c "ALTER DATABASE postgres SET tenant_guard.require_context = on" \
	-c "ALTER DATABASE postgres SET tenant_guard.context_source = 'signed'"

ms() {  # ms SQL: wall time of one statement, in ms
	"${P[@]}" -At -c '\timing on' -c "$1" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -1
}
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

echo "## lint() on a schema built with the generators (median of $ROUNDS, ms)"
printf '%-8s %10s %10s %10s %12s %12s\n' tables lint verify plain lint/verify lint/plain
for n in 50 400; do
	"${P[@]}" -c "DROP SCHEMA IF EXISTS app CASCADE" -c "DROP ROLE IF EXISTS bench_app" \
		-c "DELETE FROM tenant_guard.guarded_schemas" -c "DELETE FROM tenant_guard.app_roles" >/dev/null 2>&1 || true
	"${P[@]}" -v n="$n" -f bench/lint/schema.sql >/dev/null
	findings=$("${P[@]}" -At -c "SELECT count(*) FROM tenant_guard.lint() WHERE severity <> 'info'")
	[ "$findings" = 0 ] || { echo "lint found $findings problems on the generated schema:"; "${P[@]}" -c "SELECT * FROM tenant_guard.lint()"; exit 1; }
	: >"$WORK/l" ; : >"$WORK/v"; : >"$WORK/p"
	for ((r = 0; r < ROUNDS; r++)); do
		for k in $(rotated "$r" l v p); do
			case $k in
				l) ms "SELECT count(*) FROM tenant_guard.lint()" >>"$WORK/l" ;;
				v) ms "SELECT count(*) FROM tenant_guard.verify()" >>"$WORK/v" ;;
				p) ms "$(cat bench/lint/plain.sql | grep -v '^--')" >>"$WORK/p" ;;
			esac
		done
	done
	l=$(median <"$WORK/l"); v=$(median <"$WORK/v"); p=$(median <"$WORK/p")
	printf '%-8s %10.1f %10.1f %10.1f %11.1fx %11.1fx\n' "$((n + 13))" "$l" "$v" "$p" \
		"$(echo "$l / $v" | bc -l)" "$(echo "$l / $p" | bc -l)"
done

echo
echo "## ProcessUtility hook: preloaded / not preloaded (median latency of $ROUNDS rounds)"
PORT1=$PGPORT
trap 'tg_stop_cluster "$WORK/pg2"; tg_stop_cluster "$WORK/pg"; [ -n "${KEEP_BENCH_DIR:-}" ] || rm -rf "$WORK"' EXIT
tg_start_cluster "$WORK/pg2" "${SETTINGS[@]:1}" >/dev/null   # the same settings without shared_preload_libraries
PORT2=$PGPORT
export PGPORT=$PORT1 PGHOST="$WORK/pg"   # lib.sh's own calls keep using cluster 1; below, TCP by port
for port in "$PORT1" "$PORT2"; do
	"${P[@]}" -h 127.0.0.1 -p "$port" -c "CREATE EXTENSION IF NOT EXISTS tenant_guard" -c "CREATE ROLE bench_trunc LOGIN" \
		-c "CREATE TABLE scratch (id int)" -c "GRANT TRUNCATE, INSERT ON scratch TO bench_trunc" \
		-c "CREATE ROLE bench_owner LOGIN" -c "CREATE TABLE owned (org_id uuid NOT NULL, id int)" \
		-c "SELECT tenant_guard.protect('owned')" -c "ALTER TABLE owned OWNER TO bench_owner" \
		-c "SELECT tenant_guard.register_app_role('bench_trunc')" >/dev/null
done
printf 'BEGIN;\nSET LOCAL application_name = '"'"'bench'"'"';\nSELECT 1;\nCOMMIT;\n' >"$WORK/set.pgbench"
printf 'TRUNCATE scratch;\n' >"$WORK/trunc.pgbench"
printf 'TRUNCATE owned;\n' >"$WORK/owner.pgbench"
lat() {  # lat PORT SCRIPT USER
	"$PGBENCH" -n -h 127.0.0.1 -p "$1" -U "$3" -c 1 -T 3 -f "$2" -l --log-prefix="$WORK/lat" postgres >/dev/null 2>&1
	median_latency "$WORK/lat"
}
printf '%-28s %14s %14s %8s\n' statement preloaded_us plain_us ratio
for s in set trunc owner; do
	case $s in set) user=postgres ;; trunc) user=bench_trunc ;; owner) user=bench_owner ;; esac
	: >"$WORK/a"; : >"$WORK/b"
	for ((r = 0; r < ROUNDS; r++)); do
		for k in $(rotated "$r" a b); do
			if [ "$k" = a ]; then lat "$PORT1" "$WORK/$s.pgbench" "$user" >>"$WORK/a"
			else lat "$PORT2" "$WORK/$s.pgbench" "$user" >>"$WORK/b"; fi
		done
	done
	a=$(median <"$WORK/a"); b=$(median <"$WORK/b")
	case $s in
		set) label="SET LOCAL in a transaction" ;;
		trunc) label="TRUNCATE, app role, no RLS" ;;
		owner) label="TRUNCATE, owner, RLS table" ;;
	esac
	printf '%-28s %14.1f %14.1f %7.2fx\n' "$label" "$a" "$b" "$(echo "$a / $b" | bc -l)"
done
echo
echo "settings: ${SETTINGS[*]}"
