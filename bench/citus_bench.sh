#!/bin/bash
# Costs of tenant_guard's Citus form (docs/citus.md, "Measured overhead"):
#  1. per-row cost of the policy form without a sub-select
#     (org_id = tenant_guard.current_user_org_id(), what Citus accepts and the
#     shards carry) on a 1M-row sequential scan, against an explicit filter
#     org_id = <constant> on the same table and the sub-select form, on one
#     server (min and median of 15 runs, interleaved in rotating order); the
#     plain form as tenant_guard plans it (tenant_guard.context_once_per_query
#     = on, the default) and per row (off: what the policy costs without
#     tenant_guard's planner hook);
#  2. router queries on a Citus cluster (coordinator + 2 workers): a protected
#     table distributed by org_id against the same table unprotected, same
#     transaction shape (BEGIN; set_config(request.jwt.claims); SELECT by
#     org_id and id; COMMIT), pgbench TPS and latency.
# Needs Citus (test/citus/citus_build.sh: installed, or TG_CITUS_SOURCE).
# Usage: bash bench/citus_bench.sh [seconds per pgbench run, default 20]
#        CITUS_BENCH_SCAN_ONLY=1 bash bench/citus_bench.sh   (part 1 only: no Citus cluster)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
. bench/lib.sh
. test/citus/cluster.sh
SECS=${1:-20}
tg_select_pg
citus_available >/dev/null || { echo "Citus is not available: set TG_CITUS_SOURCE"; exit 1; }
tg_bench_start tg_citus_bench
ORG_A=11111111-1111-4111-8111-111111111111
ORG_B=22222222-2222-4222-8222-222222222222

# 1. per-row cost, one server. Each form is compared with the explicit filter
# on its own table (read as the superuser, which row-level security does not
# apply to): two copies of one table scan at different speeds (a few per cent
# either way), so a form measured on another table than its baseline says as
# much about the tables as about the form.
"$PSQL" -X -q -v ON_ERROR_STOP=1 <<SQL
CREATE EXTENSION tenant_guard;
CREATE EXTENSION pg_prewarm;
CREATE ROLE bench_app LOGIN;
CREATE TABLE t_plain (id int, org_id uuid NOT NULL, body text);
INSERT INTO t_plain SELECT g, CASE WHEN g % 2 = 0 THEN '$ORG_A'::uuid ELSE '$ORG_B'::uuid END, 'x'
FROM generate_series(1, 1000000) g;
CREATE TABLE t_sub AS SELECT * FROM t_plain;
ALTER TABLE t_plain ENABLE ROW LEVEL SECURITY;
ALTER TABLE t_sub ENABLE ROW LEVEL SECURITY;
CREATE POLICY p ON t_plain USING (org_id = tenant_guard.current_user_org_id());
CREATE POLICY p ON t_sub USING (org_id = (SELECT tenant_guard.current_user_org_id()));
GRANT SELECT ON t_plain, t_sub TO bench_app;
VACUUM ANALYZE t_plain; VACUUM ANALYZE t_sub;
SELECT pg_prewarm('t_plain'), pg_prewarm('t_sub');
SQL
{
	echo "BEGIN;"
	echo "SELECT set_config('request.jwt.claims', '{\"org_id\": \"$ORG_A\"}', true) IS NULL;"
	echo '\timing on'
	# five forms, each iteration in a rotated order (no form always follows another)
	forms=(
		"SELECT 'explicit filter, t_plain', count(*) FROM t_plain WHERE org_id = '$ORG_A';"
		"SET LOCAL ROLE bench_app;
SELECT 'plain form', count(*) FROM t_plain;
RESET ROLE;"
		"SET LOCAL tenant_guard.context_once_per_query = off; SET LOCAL ROLE bench_app;
SELECT 'plain form, per row (off)', count(*) FROM t_plain;
RESET ROLE; SET LOCAL tenant_guard.context_once_per_query = on;"
		"SELECT 'explicit filter, t_sub', count(*) FROM t_sub WHERE org_id = '$ORG_A';"
		"SET LOCAL ROLE bench_app;
SELECT 'sub-select form', count(*) FROM t_sub;
RESET ROLE;"
	)
	for i in $(seq 0 14); do
		for j in 0 1 2 3 4; do echo "${forms[$(((i + j) % 5))]}"; done
	done
	echo "COMMIT;"
} >"$WORK/scan.sql"
echo "== 1M-row sequential scan, count(*) of one tenant's 500k rows (ms; ratio to the explicit filter on the same table)"
"$PSQL" -X -q -At -f "$WORK/scan.sql" | /usr/bin/python3 -c '
import sys, statistics
res, last = {}, None
for l in sys.stdin:
    l = l.strip()
    if "|" in l: last = l.split("|")[0]
    elif l.startswith("Time:") and last: res.setdefault(last, []).append(float(l.split()[1])); last = None
base = {"plain form": "explicit filter, t_plain", "plain form, per row (off)": "explicit filter, t_plain",
        "sub-select form": "explicit filter, t_sub"}
for k in ["explicit filter, t_plain", "plain form", "plain form, per row (off)", "explicit filter, t_sub",
          "sub-select form"]:
    v = res[k]
    b = res.get(base.get(k, k))
    print("%-26s min %7.1f  median %7.1f  (median %.2fx, min %.2fx)" % (k, min(v), statistics.median(v),
          statistics.median(v) / statistics.median(b), min(v) / min(b)))'
tg_stop_cluster "$WORK/pg"
if [ -n "${CITUS_BENCH_SCAN_ONLY:-}" ]; then
	echo "settings: ${SETTINGS[*]}"
	exit 0
fi

# 2. router queries on Citus
mkdir -p "$WORK/fixtures"
/usr/bin/python3 test/fixtures/make_fixtures.py "$WORK/fixtures" >/dev/null
[ "$(id -u)" -ne 0 ] || chown -R postgres:postgres "$WORK/fixtures"
declare -A PORT
trap 'citus_cluster_stop "$WORK"; [ -n "${KEEP_BENCH_DIR:-}" ] || rm -rf "$WORK"' EXIT
citus_cluster_start "$WORK" "$WORK/fixtures"
"$PSQL" -X -q -v ON_ERROR_STOP=1 <<SQL
SET client_min_messages = warning;
CREATE EXTENSION tenant_guard;
CREATE ROLE bench_app LOGIN;
CREATE TABLE t_rls (id int, org_id uuid NOT NULL, body text, PRIMARY KEY (org_id, id));
CREATE TABLE t_open (id int, org_id uuid NOT NULL, body text, PRIMARY KEY (org_id, id));
SELECT create_distributed_table('t_rls', 'org_id'), create_distributed_table('t_open', 'org_id');
INSERT INTO t_rls SELECT g, CASE WHEN g % 2 = 0 THEN '$ORG_A'::uuid ELSE '$ORG_B'::uuid END, 'x' || g
FROM generate_series(1, 100000) g;
INSERT INTO t_open SELECT * FROM t_rls;
SELECT tenant_guard.protect('t_rls');
GRANT SELECT ON t_rls, t_open TO bench_app;
SQL
for t in t_open t_rls; do
	cat >"$WORK/$t.pgb" <<PGB
\set id random(1, 50000) * 2
BEGIN;
SELECT set_config('request.jwt.claims', '{"org_id": "$ORG_A"}', true);
SELECT body FROM $t WHERE org_id = '$ORG_A' AND id = :id;
COMMIT;
PGB
done
echo "== router SELECT by (org_id, id) on Citus, pgbench -c 2 -T $SECS (BEGIN; set_config; SELECT; COMMIT)"
# t_rls twice: with the planner hook (the default) and with it off on every
# node (tenant_guard.context_once_per_query: the sub-select costs planning
# time, which a one-row router query does not win back)
once() {  # once on|off: the setting on every node
	local n
	for n in coord w1 w2; do
		"$PSQL" -X -q -p "${PORT[$n]}" -c "ALTER SYSTEM SET tenant_guard.context_once_per_query = $1" \
			-c "SELECT pg_reload_conf()" >/dev/null
	done
}
for round in 1 2; do
	for t in t_open t_rls t_rls_off; do
		[ "$t" = t_rls_off ] && once off
		out=$("$PGBENCH" -n -U bench_app -c 2 -j 2 -T "$SECS" -f "$WORK/${t%_off}.pgb" 2>&1)
		[ "$t" = t_rls_off ] && once on
		printf '%-9s round %d: %s, %s\n' "$t" "$round" "$(grep -o 'tps = [0-9.]*' <<<"$out" | head -1)" \
			"$(grep -o 'latency average = [0-9.]* ms' <<<"$out")"
	done
done

# 3. audit_trail on the coordinator against the same read on the worker
"$PSQL" -X -q -v ON_ERROR_STOP=1 <<SQL
SET client_min_messages = warning;
CREATE TABLE t_aud (id int, org_id uuid NOT NULL, body text, PRIMARY KEY (org_id, id));
SELECT create_distributed_table('t_aud', 'org_id');
SELECT tenant_guard.protect('t_aud');
SELECT tenant_guard.enable_audit('t_aud');
GRANT SELECT, INSERT, UPDATE ON t_aud TO bench_app;
SQL
# A's records: 20,000 rows inserted in 20 statements (by the owner: Citus turns
# an INSERT ... SELECT into COPY, which row-level security refuses to the
# application role), then 200 single-row updates by the application role
for i in $(seq 0 19); do
	echo "INSERT INTO t_aud SELECT g, '$ORG_A', 'x' || g FROM generate_series($((i * 1000 + 1)), $((i * 1000 + 1000))) g;"
done | "$PSQL" -X -q -v ON_ERROR_STOP=1 >/dev/null
{
	echo "SELECT set_config('request.jwt.claims', '{\"org_id\": \"$ORG_A\"}', false) IS NULL;"
	for i in $(seq 1 200); do echo "UPDATE t_aud SET body = 'u$i' WHERE org_id = '$ORG_A' AND id = $i;"; done
} | "$PSQL" -X -q -U bench_app -v ON_ERROR_STOP=1 >/dev/null
wport=$("$PSQL" -X -At -c "SELECT nodeport FROM pg_dist_shard_placement
                           WHERE shardid = get_shard_id_for_distribution_column('t_aud', '$ORG_A')")
{
	echo "BEGIN;"
	echo "SELECT set_config('request.jwt.claims', '{\"org_id\": \"$ORG_A\", \"sub\": \"alice\", \"org_role\": \"admin\"}', true) IS NULL;"
	echo '\timing on'
	for _ in $(seq 1 9); do
		echo "SELECT 'all lines', count(*) FROM tenant_guard.audit_trail WHERE table_name = 'public.t_aud';"
		echo "SELECT 'one row''s history', count(*) FROM tenant_guard.audit_trail WHERE table_name = 'public.t_aud' AND row_pk ->> 'id' = '7';"
	done
	echo "COMMIT;"
} >"$WORK/trail.sql"
summary='
import sys, statistics
res, last = {}, None
for l in sys.stdin:
    l = l.strip()
    if "|" in l: last = l.split("|")[0]; n = l.split("|")[1]
    elif l.startswith("Time:") and last: res.setdefault((last, n), []).append(float(l.split()[1])); last = None
for (k, n), v in res.items():
    print("%-20s %6s lines  min %8.1f ms  median %8.1f ms" % (k, n, min(v), statistics.median(v)))'
echo "== audit_trail of tenant A's 20,200 row changes (20 INSERT records of 1,000 rows, 200 UPDATE records)"
echo "-- on the coordinator (fetches the tenant's lines from the workers):"
"$PSQL" -X -q -At -U bench_app -f "$WORK/trail.sql" | /usr/bin/python3 -c "$summary"
echo "-- on the worker that holds them (port $wport), read locally:"
"$PSQL" -X -q -At -U bench_app -p "$wport" -f "$WORK/trail.sql" | /usr/bin/python3 -c "$summary"

echo "settings: ${SETTINGS[*]}; Citus cluster: 3 nodes on loopback, 2 shared cores"
