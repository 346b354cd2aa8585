#!/bin/bash
# tenant_guard on a Citus cluster (docs/citus.md): a coordinator and two
# workers on loopback, shared_preload_libraries = 'citus,tenant_guard' on
# each, the same key files on each. Every leak measured on Citus is a check:
#   protect() before and after create_distributed_table (by the tenant column
#   and by another column) and create_reference_table, protect_schema();
#   the context on the workers in claims (set_config(..., true)), setting and
#   signed mode, router and multi-shard reads and writes, INSERT ... SELECT,
#   a transaction spanning both; no context at all;
#   a later USING (true) policy, a shard move, protect() with DDL propagation
#   off, B's rows through router and multi-shard queries;
#   the shard checks (citus_shard_findings) and verify() on Citus tables;
#   the tenant key copy to the workers, committed and rolled back (key_checks.sh);
#   audit of a distributed table (audit_checks.sh).
# What is not solved yet is listed in KNOWN GAPS below: each such check must
# still fail (it is reported as XFAIL); one that passes fails the run, so the
# list is kept honest.
#
# Citus comes from test/citus/citus_build.sh: installed, or built once from
# the archive TG_CITUS_SOURCE names. Without either the harness says so and
# exits 77 (ctest: skipped).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/scripts/lib.sh"
tg_select_pg

. "$ROOT/test/citus/cluster.sh"

set +e
status=$(citus_available 2>&1)
rc=$?
set -e
if [ "$rc" -eq 3 ]; then
	echo "SKIP: Citus harness: ${status#skip: }"
	exit 77
fi
[ "$rc" -eq 0 ] || { echo "FAIL: Citus could not be built: $status"; exit 1; }

W=$(mktemp -d /tmp/tg_citus.XXXXXX)
chmod 755 "$W"
cleanup() {
	citus_cluster_stop "$W"
	[ -n "${KEEP_TEST_DIR:-}" ] || rm -rf "$W"
}
trap cleanup EXIT

mkdir -p "$W/fixtures"
/usr/bin/python3 "$ROOT/test/fixtures/make_fixtures.py" "$W/fixtures" >/dev/null
[ "$(id -u)" -ne 0 ] || chown -R postgres:postgres "$W/fixtures"
. "$W/fixtures/tokens.env"

declare -A PORT
citus_cluster_start "$W" "$W/fixtures"

fails=0 xfails=0 oks=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

q >/dev/null <<SQL
SET client_min_messages = warning;
CREATE EXTENSION tenant_guard;
CREATE ROLE ct_app LOGIN;
CREATE ROLE ct_app_setting LOGIN;
ALTER ROLE ct_app_setting SET tenant_guard.context_source = 'setting';
SQL
for n in w1 w2; do
	got=$(q -p "${PORT[$n]}" -c "SELECT extversion FROM pg_extension WHERE extname = 'tenant_guard'")
	[ -n "$got" ] || { echo "FAIL: tenant_guard did not reach worker $n"; exit 1; }
	# ALTER ROLE ... SET is not always propagated: make sure
	q -p "${PORT[$n]}" -c "ALTER ROLE ct_app_setting SET tenant_guard.context_source = 'setting'" >/dev/null
done

# The tables: 3 rows of A, 2 of B each (inserted by the superuser).
# t_pd: protect, then distribute by org_id; t_dp: distribute by org_id, then
# protect; t_other: distributed by id, then protect; t_ref1 / t_ref2:
# reference table after / before protect; s1.*: protect_schema() of a
# distributed and a reference table; t_nop: protect() with DDL propagation off.
setup_sql() {
	cat <<SQL
SET client_min_messages = warning;
CREATE SCHEMA s1;
CREATE TABLE t_pd (id int, org_id uuid NOT NULL, body text, PRIMARY KEY (org_id, id));
CREATE TABLE t_dp (id int, org_id uuid NOT NULL, body text, PRIMARY KEY (org_id, id));
CREATE TABLE t_other (id int PRIMARY KEY, org_id uuid NOT NULL, body text);
CREATE TABLE t_ref1 (id int PRIMARY KEY, org_id uuid NOT NULL, body text);
CREATE TABLE t_ref2 (id int PRIMARY KEY, org_id uuid NOT NULL, body text);
CREATE TABLE t_nop (id int, org_id uuid NOT NULL, body text, PRIMARY KEY (org_id, id));
CREATE TABLE s1.d (id int, org_id uuid NOT NULL, body text, PRIMARY KEY (org_id, id));
CREATE TABLE s1.r (id int PRIMARY KEY, org_id uuid NOT NULL, body text);
SQL
	local t
	for t in t_pd t_dp t_other t_ref1 t_ref2 t_nop s1.d s1.r; do
		echo "INSERT INTO $t VALUES (1, '$ORG_A', 'a1'), (2, '$ORG_A', 'a2'), (3, '$ORG_A', 'a3'),"
		echo "  (4, '$ORG_B', 'b4'), (5, '$ORG_B', 'b5');"
		echo "GRANT SELECT, INSERT, UPDATE, DELETE ON $t TO ct_app, ct_app_setting;"
	done
	echo "GRANT USAGE ON SCHEMA s1 TO ct_app, ct_app_setting;"
}
TABLES="t_pd t_dp t_other t_ref1 t_ref2 s1.d s1.r t_nop"

# Each step on its own, so one refusal does not hide the others.
step() {  # step LABEL SQL: runs as the superuser; a failure is a FAIL
	local out
	out=$(q -c "SET client_min_messages = warning" -c "$2" 2>&1) || fail "$1: $out"
	return 0
}
q -c "$(setup_sql)" >/dev/null
step "protect() then create_distributed_table(t_pd, org_id)" \
	"SELECT tenant_guard.protect('t_pd'); SELECT create_distributed_table('t_pd', 'org_id')"
step "create_distributed_table(t_dp, org_id) then protect()" \
	"SELECT create_distributed_table('t_dp', 'org_id'); SELECT tenant_guard.protect('t_dp')"
step "create_distributed_table(t_other, id) then protect()" \
	"SELECT create_distributed_table('t_other', 'id'); SELECT tenant_guard.protect('t_other')"
step "protect() then create_reference_table(t_ref1)" \
	"SELECT tenant_guard.protect('t_ref1'); SELECT create_reference_table('t_ref1')"
step "create_reference_table(t_ref2) then protect()" \
	"SELECT create_reference_table('t_ref2'); SELECT tenant_guard.protect('t_ref2')"
step "protect_schema() of distributed and reference tables" \
	"SELECT create_distributed_table('s1.d', 'org_id'); SELECT create_reference_table('s1.r');
	 SELECT tenant_guard.protect_schema('s1')"
step "protect() with citus.enable_ddl_propagation = off" \
	"SELECT create_distributed_table('t_nop', 'org_id');
	 SET citus.enable_ddl_propagation = off; SELECT tenant_guard.protect('t_nop')"

# soft PSQL-ARGS: a statement of the scenario; a failure is a FAIL, and the run goes on
soft() {
	local out
	out=$(q "$@" 2>&1) || fail "statement failed: $* :: $out"
	return 0
}

# check LABEL EXPECTED ACTUAL
check() {
	if [ "$2" = "$3" ]; then oks=$((oks + 1)); else fail "$1: expected [$2], got [$3]"; fi
}

# as_app ROLE SQL...: one statement per psql command (Citus forwards a
# multi-statement string whole), in a transaction when the SQL says BEGIN.
as_app() {
	local role=$1; shift
	local args=() s
	for s in "$@"; do args+=(-c "$s"); done
	q -U "$role" "${args[@]}" 2>&1 | grep -v '^$' || true
}
claims() { echo "SELECT set_config('request.jwt.claims', '{\"org_id\": \"$1\"}', true) IS NULL"; }
seen() {  # rows seen / rows of another tenant, for tenant $2 on table $1
	echo "SELECT count(*) || '/' || count(*) FILTER (WHERE org_id <> '$2') FROM $1"
}

for t in $TABLES; do
	# no context at all: nothing (outside and inside a transaction)
	check "$t: no context, autocommit" "0" "$(as_app ct_app "SELECT count(*) FROM $t")"
	check "$t: no context, in a transaction" "f
0" "$(as_app ct_app "BEGIN" "SELECT false" "SELECT count(*) FROM $t" "COMMIT")"
	# claims (PostgREST's set_config(..., true)): multi-shard and router
	check "$t: claims A, multi-shard" "f
3/0" "$(as_app ct_app "BEGIN" "$(claims "$ORG_A")" "$(seen "$t" "$ORG_A")" "COMMIT")"
	check "$t: claims A, router to B's rows" "f
0" "$(as_app ct_app "BEGIN" "$(claims "$ORG_A")" "SELECT count(*) FROM $t WHERE org_id = '$ORG_B'" "COMMIT")"
	check "$t: claims A, router by id to B's row" "f
0" "$(as_app ct_app "BEGIN" "$(claims "$ORG_A")" "SELECT count(*) FROM $t WHERE id = 4" "COMMIT")"
	check "$t: claims B then A in one transaction" "f
2/0
f
3/0" "$(as_app ct_app "BEGIN" "$(claims "$ORG_B")" "$(seen "$t" "$ORG_B")" "$(claims "$ORG_A")" \
		"$(seen "$t" "$ORG_A")" "COMMIT")"
	# autocommit statements (no transaction block): the context reaches the workers too
	check "$t: claims A, autocommit statements" "f
3/0
0" "$(as_app ct_app "SELECT set_config('request.jwt.claims', '{\"org_id\": \"$ORG_A\"}', false) IS NULL" \
		"$(seen "$t" "$ORG_A")" "SELECT count(*) FROM $t WHERE org_id = '$ORG_B'")"
	check "$t: setting B, autocommit" "2/0" "$(as_app ct_app_setting "SET tenant_guard.org_id = '$ORG_B'" "$(seen "$t" "$ORG_B")")"
	check "$t: claims A, autocommit update of B's rows" "0" "$(psql -X -At -U ct_app \
		-c "SELECT set_config('request.jwt.claims', '{\"org_id\": \"$ORG_A\"}', false) IS NULL" \
		-c "UPDATE $t SET body = 'pwned' WHERE org_id = '$ORG_B'" 2>&1 | sed -n 's/^UPDATE //p')"
	# setting mode: a plain SET, then a transaction
	check "$t: setting B" "2/0" "$(as_app ct_app_setting "SET tenant_guard.org_id = '$ORG_B'" "BEGIN" \
		"$(seen "$t" "$ORG_B")" "COMMIT")"
	# writes: A cannot touch B's rows, by router or multi-shard statements
	check "$t: claims A updates B's rows" "f
0" "$(as_app ct_app "BEGIN" "$(claims "$ORG_A")" \
		"WITH u AS (UPDATE $t SET body = 'pwned' WHERE org_id = '$ORG_B' RETURNING 1) SELECT count(*) FROM u" "ROLLBACK")"
	check "$t: claims A updates every row" "f
UPDATE 3" "$(psql -X -At -U ct_app -c "BEGIN" -c "$(claims "$ORG_A")" -c "UPDATE $t SET body = body" -c "ROLLBACK" 2>&1 \
		| grep -v '^\(BEGIN\|ROLLBACK\)$')"
	check "$t: claims A inserts a row of B" "refused" "$(as_app ct_app "BEGIN" "$(claims "$ORG_A")" \
		"INSERT INTO $t (id, org_id, body) VALUES (99, '$ORG_B', 'x')" "COMMIT" \
		| grep -q 'violates row-level security' && echo refused || echo inserted)"
	check "$t: no context deletes" "0" "$(psql -X -At -U ct_app -c "BEGIN" -c "DELETE FROM $t" -c "ROLLBACK" 2>&1 \
		| sed -n 's/^DELETE //p')"
done

# The shards' policies and wall (the form without a sub-select) are planned on
# the workers with the context evaluated once per query, not once per row
# (tenant_guard.context_once_per_query); the coordinator leaves Citus's own
# planning of distributed tables alone.
plan_shape() {  # the shape of a worker's plan, from the coordinator's EXPLAIN
	awk '/InitPlan/ { i = 1 } /(Filter|Cond):.*(current_user_org|_tenant_writable)/ { p = 1 }
	     END { print p ? "per row" : (i ? "once" : "neither") }'
}
for t in t_dp t_ref2; do
	check "$t: the workers evaluate the context once per query" "once" \
		"$(as_app ct_app "BEGIN" "$(claims "$ORG_A")" "EXPLAIN (COSTS OFF) SELECT count(*) FROM $t" "COMMIT" | plan_shape)"
	check "$t: and once per query in an UPDATE" "once" \
		"$(as_app ct_app "BEGIN" "$(claims "$ORG_A")" "EXPLAIN (COSTS OFF) UPDATE $t SET body = body" "COMMIT" | plan_shape)"
done

# signed mode: the token as a bind parameter; workers verify it themselves
signed() {  # signed TABLE TOKEN
	T=$1 TOK=$2 HOST=$PGHOST PORT=$PGPORT /usr/bin/python3 - <<'PY' 2>&1 | tail -1
import os, psycopg
with psycopg.connect(host=os.environ["HOST"], port=os.environ["PORT"], dbname="postgres", user="ct_app",
                     autocommit=True) as c:
    with c.transaction():
        org = str(c.execute("SELECT tenant_guard.set_context(%s)", (os.environ["TOK"],)).fetchone()[0])
        n, other = c.execute("SELECT count(*), count(*) FILTER (WHERE org_id <> %%s) FROM %s" % os.environ["T"],
                             (org,)).fetchone()
        print("%d/%d" % (n, other))
PY
}
for t in t_dp t_other t_ref2; do
	check "$t: signed B" "2/0" "$(signed "$t" "$TOK_HS_B")"
done
# a worker does not trust a forwarded token it cannot verify
check "forged forwarded token" "f
0" "$(as_app ct_app "BEGIN" "SELECT set_config('tenant_guard.forwarded_token', '$TOK_HS_WRONG_KEY', true) IS NULL" \
	"SELECT count(*) FROM t_dp" "COMMIT")"

# INSERT ... SELECT and a transaction spanning router and multi-shard statements
check "INSERT ... SELECT as A" "f
3
0" "$(as_app ct_app "BEGIN" "$(claims "$ORG_A")" \
	"INSERT INTO t_dp (id, org_id, body) SELECT id + 100, org_id, body FROM t_other" \
	"SELECT count(*) FROM t_dp WHERE id > 100" "ROLLBACK" "SELECT count(*) FROM t_dp WHERE id > 100")"
check "router and multi-shard in one transaction" "f
1
3
2" "$(as_app ct_app "BEGIN" "$(claims "$ORG_A")" "SELECT count(*) FROM t_dp WHERE org_id = '$ORG_A' AND id = 1" \
	"SELECT count(*) FROM t_other" \
	"WITH u AS (UPDATE t_other SET body = body WHERE id IN (1, 2, 4) RETURNING 1) SELECT count(*) FROM u" "COMMIT")"

# COPY by the application role into a protected distributed table is refused
check "COPY as the application role" "refused" \
	"$(printf '77\t%s\tx\n' "$ORG_B" | psql -X -q -U ct_app -c "BEGIN" -c "$(claims "$ORG_A")" \
		-c "COPY t_dp (id, org_id, body) FROM STDIN" -c "ROLLBACK" 2>&1 | grep -q 'row-level security' && echo refused || echo copied)"

# a later USING (true) policy does not open anything
soft -c "CREATE POLICY open_all ON t_dp USING (true)" >/dev/null
check "USING (true) policy: no context" "0" "$(as_app ct_app "SELECT count(*) FROM t_dp")"
check "USING (true) policy: claims A" "f
3/0" "$(as_app ct_app "BEGIN" "$(claims "$ORG_A")" "$(seen t_dp "$ORG_A")" "COMMIT")"
soft -c "DROP POLICY open_all ON t_dp" >/dev/null

# a shard move re-creates the shard (and Citus its policies, as permissive)
moved=$(q <<SQL
SELECT s.shardid FROM pg_dist_shard s JOIN pg_dist_shard_placement p USING (shardid)
WHERE s.logicalrelid = 't_dp'::regclass AND p.nodeport = ${PORT[w1]}
  AND s.shardid = get_shard_id_for_distribution_column('t_dp', '$ORG_B');
SQL
) || true
if [ -z "$moved" ]; then
	moved=$(q -c "SELECT get_shard_id_for_distribution_column('t_dp', '$ORG_B')") || true
	from=${PORT[w2]} to=${PORT[w1]}
else
	from=${PORT[w1]} to=${PORT[w2]}
fi
q -c "SELECT citus_move_shard_placement($moved, '127.0.0.1', $from, '127.0.0.1', $to, shard_transfer_mode => 'block_writes')" \
	>/dev/null || fail "shard move failed"
soft -c "CREATE POLICY open_all ON t_dp USING (true)" >/dev/null
check "after a shard move: no context update" "0" "$(psql -X -At -U ct_app -c "UPDATE t_dp SET body = 'pwned'" 2>&1 | sed -n 's/^UPDATE //p')"
check "after a shard move: no context delete" "0" "$(psql -X -At -U ct_app -c "DELETE FROM t_dp WHERE org_id = '$ORG_B'" 2>&1 | sed -n 's/^DELETE //p')"
check "after a shard move: claims A" "f
3/0" "$(as_app ct_app "BEGIN" "$(claims "$ORG_A")" "$(seen t_dp "$ORG_A")" "COMMIT")"
check "after a shard move: B's rows intact" "2" "$(q -c "SELECT count(*) FROM t_dp WHERE org_id = '$ORG_B' AND body LIKE 'b%'")"
soft -c "DROP POLICY open_all ON t_dp" >/dev/null

# unprotect() and protect() again, on a table distributed by its tenant column
step "unprotect() and protect() again (t_pd)" "SELECT tenant_guard.unprotect('t_pd'); SELECT tenant_guard.protect('t_pd')"
check "t_pd after unprotect() and protect(): claims A" "f
3/0" "$(as_app ct_app "BEGIN" "$(claims "$ORG_A")" "$(seen t_pd "$ORG_A")" "COMMIT")"

# The attack grid on distributed and reference tables. ct_app_setting's
# context source is setting on every node, as the grid's attempts use (a
# claims role and a signed one: lifecycle_checks.sh).
q >/dev/null -c "SET client_min_messages = warning" -c "CREATE TABLE t_local (id int, org_id uuid NOT NULL)" \
	-c "SELECT tenant_guard.protect('t_local')" -c "GRANT SELECT ON t_local TO ct_app_setting"
out=$(q -c "CREATE TABLE grid_setting AS SELECT * FROM tenant_guard.attack_grid('ct_app_setting', '$ORG_A', '$ORG_B')" 2>&1) \
	|| fail "attack_grid() as ct_app_setting failed: $(grep -v 'pg_temp\|created only locally' <<<"$out" | head -5)"
for t in t_pd t_dp t_other t_ref1 t_ref2 s1.d s1.r; do
	check "attack_grid $t: read_other_tenant" "blocked" \
		"$(q -c "SELECT outcome FROM grid_setting WHERE tbl = '$t'::regclass AND vector = 'read_other_tenant'")"
	check "attack_grid $t: read_unfiltered" "blocked" \
		"$(q -c "SELECT outcome FROM grid_setting WHERE tbl = '$t'::regclass AND vector = 'read_unfiltered'")"
	check "attack_grid $t: update_other_tenant" "blocked" \
		"$(q -c "SELECT outcome FROM grid_setting WHERE tbl = '$t'::regclass AND vector = 'update_other_tenant'")"
	check "attack_grid $t: shard_direct per node" "blocked true true" \
		"$(q -c "SELECT outcome || ' ' || (detail LIKE '%:${PORT[w1]}: %') || ' ' || (detail LIKE '%:${PORT[w2]}: %')
		         FROM grid_setting WHERE tbl = '$t'::regclass AND vector = 'shard_direct'")"
	check "attack_grid $t: no leak" "0" \
		"$(q -c "SELECT count(*) FROM grid_setting WHERE tbl = '$t'::regclass AND outcome = 'leak'
		         AND vector NOT IN ('query_text', 'forged_claims', 'temp_object')")"
done
check "attack_grid: seed => true does not seed Citus tables, and says so" "skipped true" \
	"$(q -c "SELECT outcome || ' ' || (detail LIKE '%a Citus table is not seeded%')
	         FROM tenant_guard.attack_grid('ct_app_setting', '$ORG_A', '33333333-3333-4333-8333-333333333333', seed => true)
	         WHERE tbl = 't_dp'::regclass AND vector = 'read_other_tenant'" 2>/dev/null)"
check "attack_grid: shard_direct only on Citus tables" "0 true" \
	"$(q -c "SELECT count(*) FILTER (WHERE vector = 'shard_direct') || ' ' || (count(*) > 0) FROM grid_setting
	         WHERE tbl = 't_local'::regclass")"
soft -c "SELECT tenant_guard.unprotect('t_local')" -c "DROP TABLE t_local"

# verify() and the shard checks
check "verify() on Citus tables" "" "$(q -c "SELECT tbl || ' ' || item || ': ' || actual FROM tenant_guard.verify()")"
check "lint(): no TG011 on Citus tables (their policies cannot take a sub-select)" "" \
	"$(q -c "SELECT object FROM tenant_guard.lint() WHERE code = 'TG011'")"
check "lint(): no shard finding" "" "$(q -c "SELECT code || ' ' || object FROM tenant_guard.lint() WHERE code IN ('TG070', 'TG071', 'TG072')")"
check "citus_shard_findings() clean" "" "$(q -c "SELECT tbl || ' ' || node || ' ' || item || ': ' || actual FROM tenant_guard.citus_shard_findings()")"
soft -c "SELECT run_command_on_placements('t_other', 'ALTER TABLE %s DISABLE ROW LEVEL SECURITY')" >/dev/null
soft -c "SELECT run_command_on_placements('t_dp', 'CREATE POLICY sneaky ON %s USING (true)')" >/dev/null
soft -c "SELECT run_command_on_workers('DELETE FROM tenant_guard.citus_walls WHERE table_name = ''t_ref1''')" >/dev/null
check "citus_shard_findings() sees RLS off on t_other shards" "t" \
	"$(q -c "SELECT count(*) > 0 FROM tenant_guard.citus_shard_findings() WHERE tbl = 't_other'::regclass AND item = 'row level security'")"
check "citus_shard_findings() sees an extra shard policy" "t" \
	"$(q -c "SELECT count(*) > 0 FROM tenant_guard.citus_shard_findings() WHERE tbl = 't_dp'::regclass AND item = 'policy sneaky'")"
check "citus_shard_findings() sees a missing wall" "t" \
	"$(q -c "SELECT count(*) > 0 FROM tenant_guard.citus_shard_findings() WHERE tbl = 't_ref1'::regclass AND item = 'shard wall'")"
check "an extra shard policy opens nothing" "0" "$(as_app ct_app "SELECT count(*) FROM t_dp")"
# lint() and verify() report the same, per node (each reads every placement: once)
q -c "CREATE TABLE lint_broken AS SELECT * FROM tenant_guard.lint() WHERE code IN ('TG070', 'TG071', 'TG072')" >/dev/null
for n in w1 w2; do
	check "lint() TG070: RLS off on t_other shards on $n" "t" \
		"$(q -c "SELECT count(*) = 1 FROM lint_broken WHERE code = 'TG070' AND severity = 'error'
		         AND object = 'public.t_other on 127.0.0.1:${PORT[$n]}' AND message LIKE 'row level security of %'")"
	check "lint() TG071: extra policy on t_dp shards on $n" "t" \
		"$(q -c "SELECT count(*) = 1 FROM lint_broken WHERE code = 'TG071'
		         AND object = 'public.t_dp on 127.0.0.1:${PORT[$n]}' AND message LIKE 'policy sneaky on %'")"
	check "lint() TG070: missing wall of t_ref1 on $n" "t" \
		"$(q -c "SELECT count(*) = 1 FROM lint_broken WHERE code = 'TG070'
		         AND object = 'public.t_ref1 on 127.0.0.1:${PORT[$n]}' AND message LIKE 'shard wall of %'")"
	check "lint() TG071: t_ref1's restrictive policies turned permissive on $n (its wall is gone)" "t" \
		"$(q -c "SELECT count(*) > 0 FROM lint_broken WHERE code = 'TG071'
		         AND object = 'public.t_ref1 on 127.0.0.1:${PORT[$n]}' AND message LIKE '%(restrictive turned permissive)%'")"
done
check "verify() lists the shards that differ" "true true true" \
	"$(q -c "SELECT bool_or(tbl = 't_other'::regclass AND item LIKE 'shard % on %: row level security') || ' ' ||
	                bool_or(tbl = 't_dp'::regclass AND item LIKE 'shard % on %: policy sneaky') || ' ' ||
	                bool_or(tbl = 't_ref1'::regclass AND item LIKE 'shard % on %: shard wall')
	         FROM tenant_guard.verify()")"
check "verify() as a role that may not run the shard checks says so" "t" \
	"$(q -c "CREATE ROLE ct_auditor; GRANT USAGE ON SCHEMA tenant_guard TO ct_auditor; SET ROLE ct_auditor;
	         SELECT bool_and(item = 'shards' AND actual LIKE 'not checked%') FROM tenant_guard.verify() WHERE item NOT LIKE 'policy %'" | tail -1)"
check "attack_grid: shard_direct finds the shards without RLS, per node" "leak true" \
	"$(q -c "SELECT outcome || ' ' || (detail LIKE 'reading the shards directly as the role returned rows on 127.0.0.1:%')
	         FROM tenant_guard.attack_grid('ct_app_setting', '$ORG_A', '$ORG_B')
	         WHERE tbl = 't_other'::regclass AND vector = 'shard_direct'" 2>/dev/null)"
soft -c "SELECT run_command_on_placements('t_dp', 'DROP POLICY sneaky ON %s')" >/dev/null
soft -c "SELECT tenant_guard.protect('t_other')" -c "SELECT tenant_guard.citus_sync()" >/dev/null
check "citus_shard_findings() clean after protect() and citus_sync()" "" \
	"$(q -c "SELECT tbl || ' ' || node || ' ' || item || ': ' || actual FROM tenant_guard.citus_shard_findings()")"
check "lint() and verify() clean after protect() and citus_sync()" "0" \
	"$(q -c "SELECT (SELECT count(*) FROM tenant_guard.lint() WHERE code IN ('TG070', 'TG071', 'TG072'))
	              + (SELECT count(*) FROM tenant_guard.verify())")"

# Column encryption on a distributed table: the tenant key made on the
# coordinator by encrypt() is copied to every worker, where decrypt() runs
# (router and multi-shard, in a transaction and autocommit); a shredded key
# is shredded on the workers too. No node holds the master key in a table.
q >/dev/null <<SQL
SET client_min_messages = warning;
CREATE TABLE t_enc (id int, org_id uuid NOT NULL, secret bytea, PRIMARY KEY (org_id, id));
SELECT create_distributed_table('t_enc', 'org_id');
SELECT tenant_guard.protect('t_enc');
GRANT SELECT, INSERT, UPDATE, DELETE ON t_enc TO ct_app;
SQL
for o in A B; do
	org=$ORG_A; [ $o = A ] || org=$ORG_B
	soft -U ct_app -c "BEGIN" -c "$(claims "$org")" \
		-c "INSERT INTO t_enc VALUES (1, '$org', tenant_guard.encrypt_text('$o-one', 't_enc.secret')),
		    (2, '$org', tenant_guard.encrypt_text('$o-two', 't_enc.secret'))" -c "COMMIT"
done
for n in w1 w2; do
	check "tenant keys copied to $n" "2 active" \
		"$(q -p "${PORT[$n]}" -c "SELECT count(*) || ' ' || string_agg(DISTINCT state, ',') FROM tenant_guard.tenant_keys")"
done
check "decrypt() as A, router query" "f
A-one" "$(as_app ct_app "BEGIN" "$(claims "$ORG_A")" \
	"SELECT tenant_guard.decrypt_text(secret, 't_enc.secret') FROM t_enc WHERE org_id = '$ORG_A' AND id = 1" "COMMIT")"
check "decrypt() as B, multi-shard query" "f
B-one,B-two" "$(as_app ct_app "BEGIN" "$(claims "$ORG_B")" \
	"SELECT string_agg(tenant_guard.decrypt_text(secret, 't_enc.secret'), ',' ORDER BY id) FROM t_enc" "COMMIT")"
check "decrypt() as A, autocommit multi-shard" "f
A-one,A-two" "$(as_app ct_app "SELECT set_config('request.jwt.claims', '{\"org_id\": \"$ORG_A\"}', false) IS NULL" \
	"SELECT string_agg(tenant_guard.decrypt_text(secret, 't_enc.secret'), ',' ORDER BY id) FROM t_enc")"
check "decrypt() with another aad is refused on the workers" "refused" \
	"$(as_app ct_app "BEGIN" "$(claims "$ORG_A")" \
		"SELECT tenant_guard.decrypt_text(secret, 'other.aad') FROM t_enc" "COMMIT" \
		| grep -q ERROR && echo refused || echo decrypted)"
b_secret=$(q -c "SELECT encode(secret, 'hex') FROM t_enc WHERE org_id = '$ORG_B' AND id = 1")
check "decrypt() of B's value as A is refused" "refused" \
	"$(as_app ct_app "BEGIN" "$(claims "$ORG_A")" \
		"SELECT tenant_guard.decrypt_text(decode('$b_secret', 'hex'), 't_enc.secret')" "COMMIT" \
		| grep -q ERROR && echo refused || echo decrypted)"
for n in coord w1 w2; do
	check "no master key in a table on $n" "0" "$(q -p "${PORT[$n]}" -c "SELECT count(*) FROM pg_attribute a
		JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace s ON s.oid = c.relnamespace
		WHERE s.nspname = 'tenant_guard' AND c.relkind = 'r' AND a.attname ILIKE '%master%'")"
done
soft -c "SELECT tenant_guard.shred_keys('$ORG_B')"
for n in w1 w2; do
	check "shredded key of B on $n" "shredded" \
		"$(q -p "${PORT[$n]}" -c "SELECT state FROM tenant_guard.tenant_keys WHERE org_id = '$ORG_B'")"
done
check "decrypt() as B after shred_keys(): refused on the workers" "refused" \
	"$(as_app ct_app "BEGIN" "$(claims "$ORG_B")" \
		"SELECT tenant_guard.decrypt_text(secret, 't_enc.secret') FROM t_enc" "COMMIT" | grep -q 'shredded' && echo refused || echo decrypted)"
# citus_sync() repairs a worker that lost its copies
soft -c "SELECT run_command_on_workers('DELETE FROM tenant_guard.tenant_keys')"
soft -c "SELECT tenant_guard.citus_sync()"
check "citus_sync() copies the keys again" "f
A-one" "$(as_app ct_app "BEGIN" "$(claims "$ORG_A")" \
	"SELECT tenant_guard.decrypt_text(secret, 't_enc.secret') FROM t_enc WHERE org_id = '$ORG_A' AND id = 1" "COMMIT")"
# The key copy is transactional: rolled-back key changes (key_checks.sh)
. "$ROOT/test/citus/key_checks.sh"

. "$ROOT/test/citus/lifecycle_checks.sh"
# Audit of distributed tables (docs/citus.md, "Audit")
. "$ROOT/test/citus/audit_checks.sh"

# KNOWN GAPS: each must still fail; if one passes, move it above.
gap() {  # gap LABEL EXPECTED ACTUAL
	if [ "$2" = "$3" ]; then
		fail "known gap now passes, move it to the checks: $1"
	else
		echo "XFAIL (known gap): $1"; xfails=$((xfails + 1))
	fi
}

# (none at present)

echo "citus harness: $oks ok, $xfails known gaps (XFAIL), $fails failed"
if [ "$fails" -ne 0 ]; then
	for n in coord w1 w2; do echo "---- $n server log (tail) ----"; tail -15 "$W/$n/server.log"; done
	exit 1
fi
echo "ok: tenant_guard on Citus (coordinator + 2 workers)"
