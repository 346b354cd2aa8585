#!/bin/bash
# test/dump/run_dump_restore.sh: a pg_dump / restore round trip must keep
# every protection tenant_guard.protect() set up, and the registry with it.
#
# In a source database it builds one table of each kind, owned by a
# non-superuser role, with rows for two tenants, and protects them all:
#   app.t_uuid                uuid tenant column, primary key
#   app.t_text                text tenant column "tenant"
#   app.t_big                 bigint tenant column with a prior default (0)
#   app.parted                partitioned, partitions app.parted_1 and _2
#   app.inh_parent            inheritance parent of app.inh_child
#   app.t_extra               RLS already on, a hand-written permissive
#                             policy, NOT NULL tenant column and an index
#                             led by it (so protect() creates none)
# It dumps it twice, pg_dump -Fc restored with pg_restore and a plain SQL
# dump restored with psql, each into a fresh database, and for each restore
# checks that:
#   1. the restore printed no error (exit status 0, nothing on stderr), and
#      the dump holds the registry's data exactly once;
#   2. the schema "app" and the registry read the same in both databases:
#      RLS and FORCE flags, owners and grants, every policy (name,
#      permissive, command, roles, USING and WITH CHECK text), every column
#      (type, NOT NULL, default), every index, inheritance, row counts, the
#      registry rows (tbl, tenant_column, tenant_type, parent, created_index,
#      added_not_null, prior_default, prior_rls, prior_force), the extension's
#      event triggers; one canonical sorted text per side, diffed;
#   3. the registry is not duplicated;
#   4. as a non-superuser application role, each table shows only tenant A's
#      rows under A's claims (B's under B's), none without a context, an
#      INSERT of a B row under A's claims is refused by row-level security
#      and an INSERT without a tenant gets A;
#   5. a partition and an inheritance child created after the restore are
#      protected automatically (the event trigger works on the restored
#      registry); the same is checked on the source database as a control;
#   6. unprotect() of every table then leaves the restored database exactly
#      like the source after the same unprotect() calls (the restored
#      registry still knows which index, NOT NULL and default protect() added).
# Every check runs even when an earlier one failed, so one run shows all
# that broke. Ends with "dump: N checks passed" (or "..., M failed", exit 1).
#
# Runs under ctest (test/CMakeLists.txt) from scripts/test.sh, which provides
# PGHOST PGPORT PGUSER (a running superuser cluster with tenant_guard
# installed). Creates and drops databases tg_dump_src, tg_dump_fc and
# tg_dump_plain and roles regress_dump_owner and regress_dump_app.
# KEEP_TEST_DIR=1 keeps the scratch directory (dumps, canonical texts).
set -euo pipefail

: "${PGHOST:?PGHOST must name the running cluster (see scripts/test.sh)}"
: "${PGPORT:?}" "${PGUSER:?}"
unset PGDATABASE PGOPTIONS
BINDIR=$(pg_config --bindir)
START=$(date +%s%N)

DB_SRC=tg_dump_src
DB_FC=tg_dump_fc
DB_PLAIN=tg_dump_plain
OWNER=regress_dump_owner
APP=regress_dump_app
ORG_A=0a0a0a0a-0000-4000-8000-00000000000a
ORG_B=0b0b0b0b-0000-4000-8000-00000000000b

W=$(mktemp -d /tmp/tg_dump.XXXXXX)
chmod 755 "$W"

q() { "$BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 "$@"; }   # superuser
drop_all() {
	local db
	for db in "$DB_SRC" "$DB_FC" "$DB_PLAIN"; do
		q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
	done
	q -d postgres -c "DROP ROLE IF EXISTS $APP" -c "DROP ROLE IF EXISTS $OWNER" || true
}
cleanup() { drop_all >/dev/null 2>&1; [ -n "${KEEP_TEST_DIR:-}" ] || rm -rf "$W"; }
trap cleanup EXIT

passed=0
failed=0
ok() { passed=$((passed + ${2:-1})); echo "ok: $1"; }
bad() { failed=$((failed + 1)); echo "FAIL: $1"; [ -z "${2:-}" ] || sed 's/^/    /' <<<"$2"; }
# check NAME EXPECTED ACTUAL: passes when equal, else shows the diff
check_eq() {
	if [ "$2" = "$3" ]; then ok "$1"
	else bad "$1" "$(diff <(echo "$2") <(echo "$3") | sed -n '2,200p')"; fi
}

# ---------------------------------------------------------------------------
# the source database
# ---------------------------------------------------------------------------
drop_all >/dev/null 2>&1
q -d postgres -c "CREATE ROLE $OWNER NOLOGIN" -c "CREATE ROLE $APP LOGIN" \
	-c "CREATE DATABASE $DB_SRC TEMPLATE template0"
q -d "$DB_SRC" >"$W/setup.log" 2>&1 <<SQL || { cat "$W/setup.log"; echo "FAIL: building the source database"; exit 1; }
CREATE EXTENSION tenant_guard;
CREATE SCHEMA app AUTHORIZATION $OWNER;
GRANT USAGE ON SCHEMA app TO $APP;
SET ROLE $OWNER;
CREATE TABLE app.t_uuid (id int PRIMARY KEY, org_id uuid, v text);
CREATE TABLE app.t_text (id int, tenant text, v text);
CREATE TABLE app.t_big (id int, org_id bigint DEFAULT 0, v text);
CREATE TABLE app.parted (id int, org_id uuid, v text) PARTITION BY RANGE (id);
CREATE TABLE app.parted_1 PARTITION OF app.parted FOR VALUES FROM (0) TO (100);
CREATE TABLE app.parted_2 PARTITION OF app.parted FOR VALUES FROM (100) TO (200);
CREATE TABLE app.inh_parent (id int, org_id uuid, v text);
CREATE TABLE app.inh_child (extra text) INHERITS (app.inh_parent);
CREATE TABLE app.t_extra (id int, org_id uuid NOT NULL, public_flag boolean NOT NULL DEFAULT false);
CREATE INDEX t_extra_org_id_id ON app.t_extra (org_id, id);
ALTER TABLE app.t_extra ENABLE ROW LEVEL SECURITY;
CREATE POLICY extra_public ON app.t_extra AS PERMISSIVE FOR SELECT TO $APP USING (public_flag);
-- rows before protect(): the owner is bound by FORCE RLS afterwards
INSERT INTO app.t_uuid VALUES (1, '$ORG_A', 'a1'), (2, '$ORG_A', 'a2'), (3, '$ORG_B', 'b1');
INSERT INTO app.t_text VALUES (1, 'acme', 'a1'), (2, 'acme', 'a2'), (3, 'globex', 'b1');
INSERT INTO app.t_big VALUES (1, 1001, 'a1'), (2, 1001, 'a2'), (3, 1002, 'b1');
INSERT INTO app.parted VALUES (1, '$ORG_A', 'a1'), (2, '$ORG_A', 'a2'), (3, '$ORG_B', 'b1'),
    (101, '$ORG_A', 'a1'), (102, '$ORG_A', 'a2'), (103, '$ORG_B', 'b1');
INSERT INTO app.inh_parent VALUES (1, '$ORG_A', 'a1'), (2, '$ORG_A', 'a2'), (3, '$ORG_B', 'b1');
INSERT INTO app.inh_child VALUES (11, '$ORG_A', 'a1'), (12, '$ORG_A', 'a2'), (13, '$ORG_B', 'b1');
-- B's row is "public", and still must stay hidden from A (the wall is RESTRICTIVE)
INSERT INTO app.t_extra VALUES (1, '$ORG_A', false), (2, '$ORG_A', true), (3, '$ORG_B', true);
SELECT tenant_guard.protect('app.t_uuid');
SELECT tenant_guard.protect('app.t_text', 'tenant');
SELECT tenant_guard.protect('app.t_big');
SELECT tenant_guard.protect('app.parted');
SELECT tenant_guard.protect('app.inh_parent');
SELECT tenant_guard.protect('app.t_extra');
RESET ROLE;
GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA app TO $APP;
SELECT tenant_guard.register_app_role('$APP');
SQL
n_reg=$(q -d "$DB_SRC" -c "SELECT count(*) FROM tenant_guard.protected_tables")
[ "$n_reg" = 9 ] || { cat "$W/setup.log"; echo "FAIL: source registry has $n_reg rows, expected 9"; exit 1; }
echo "source: $DB_SRC, 9 protected tables (6 protect() calls), 2 tenants"

# ---------------------------------------------------------------------------
# dump, restore
# ---------------------------------------------------------------------------
"$BINDIR/pg_dump" -Fc -d "$DB_SRC" -f "$W/src.dump" 2>"$W/dump_fc.err"
"$BINDIR/pg_dump" -d "$DB_SRC" -f "$W/src.sql" 2>"$W/dump_plain.err"
if [ -s "$W/dump_fc.err" ] || [ -s "$W/dump_plain.err" ]; then
	bad "pg_dump printed messages" "$(cat "$W/dump_fc.err" "$W/dump_plain.err")"
else
	ok "pg_dump -Fc and plain pg_dump ran cleanly"
fi
n=$("$BINDIR/pg_restore" -l "$W/src.dump" | grep -c 'TABLE DATA tenant_guard protected_tables ' || true)
check_eq "the custom dump holds the registry's data once" 1 "$n"
n=$(grep -c '^COPY tenant_guard\.protected_tables ' "$W/src.sql" || true)
check_eq "the plain dump holds the registry's data once" 1 "$n"

q -d postgres -c "CREATE DATABASE $DB_FC TEMPLATE template0" -c "CREATE DATABASE $DB_PLAIN TEMPLATE template0"
set +e
"$BINDIR/pg_restore" -d "$DB_FC" "$W/src.dump" >"$W/restore_fc.out" 2>"$W/restore_fc.err"
rc_fc=$?
# like pg_restore: go on after an error, and report it
"$BINDIR/psql" -X -q -d "$DB_PLAIN" -f "$W/src.sql" >"$W/restore_plain.out" 2>"$W/restore_plain.err"
rc_plain=$?
set -e
if [ "$rc_fc" -eq 0 ] && [ ! -s "$W/restore_fc.err" ]; then ok "pg_restore succeeded with no messages"
else bad "pg_restore exited $rc_fc" "$(cat "$W/restore_fc.err")"; fi
if [ "$rc_plain" -eq 0 ] && [ ! -s "$W/restore_plain.err" ]; then ok "psql restored the plain dump with no messages"
else bad "psql restore of the plain dump (exit $rc_plain) printed" "$(cat "$W/restore_plain.err")"; fi

# ---------------------------------------------------------------------------
# canonical text of a database: schema app, the registry, the event triggers
# ---------------------------------------------------------------------------
canon() {
	q -d "$1" <<'SQL'
SET search_path = pg_catalog;
WITH rels AS (
    SELECT c.oid, c.oid::regclass::text AS name
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'app' AND c.relkind IN ('r', 'p'))
SELECT line FROM (
    SELECT format('table %s kind=%s rls=%s force=%s owner=%s acl=%s rows=%s', r.name, c.relkind,
                  c.relrowsecurity, c.relforcerowsecurity, pg_get_userbyid(c.relowner),
                  (SELECT string_agg(a::text, ',' ORDER BY a::text) FROM unnest(c.relacl) a),
                  (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM ONLY %s', r.name),
                                                       false, true, '')))[1]::text)
    FROM rels r JOIN pg_class c ON c.oid = r.oid
    UNION ALL
    SELECT format('column %s.%s type=%s notnull=%s default=%s', r.name, a.attname,
                  format_type(a.atttypid, a.atttypmod), a.attnotnull,
                  coalesce(pg_get_expr(d.adbin, d.adrelid), '<none>'))
    FROM rels r JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    UNION ALL
    SELECT format('policy %s %s permissive=%s cmd=%s roles=%s using=%s check=%s', r.name, p.polname,
                  p.polpermissive, p.polcmd,
                  (SELECT string_agg(CASE WHEN x = 0 THEN 'public' ELSE pg_get_userbyid(x)::text END, ',' ORDER BY 1)
                   FROM unnest(p.polroles) x),
                  coalesce(pg_get_expr(p.polqual, p.polrelid), '<none>'),
                  coalesce(pg_get_expr(p.polwithcheck, p.polrelid), '<none>'))
    FROM rels r JOIN pg_policy p ON p.polrelid = r.oid
    UNION ALL
    SELECT format('index %s %s', r.name, pg_get_indexdef(i.indexrelid))
    FROM rels r JOIN pg_index i ON i.indrelid = r.oid
    UNION ALL
    SELECT format('inherits %s from %s', r.name, i.inhparent::regclass)
    FROM rels r JOIN pg_inherits i ON i.inhrelid = r.oid
    UNION ALL
    SELECT format('registry %s column=%s type=%s parent=%s created_index=%s added_not_null=%s prior_default=%s '
                  'prior_rls=%s prior_force=%s', p.tbl, p.tenant_column, p.tenant_type,
                  coalesce(p.parent::text, '<null>'), coalesce(p.created_index::text, '<null>'), p.added_not_null,
                  coalesce(p.prior_default, '<null>'), p.prior_rls, p.prior_force)
    FROM tenant_guard.protected_tables p
    UNION ALL
    SELECT format('registry has %s rows', count(*)) FROM tenant_guard.protected_tables
    UNION ALL
    SELECT format('app role %s anonymous=%s', a.role, a.anonymous) FROM tenant_guard.app_roles a
    UNION ALL
    SELECT format('event_trigger %s on=%s enabled=%s tags=%s function=%s extension_member=%s', e.evtname,
                  e.evtevent, e.evtenabled, e.evttags, e.evtfoid::regprocedure,
                  EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_event_trigger'::regclass
                          AND d.objid = e.oid AND d.deptype = 'e'))
    FROM pg_event_trigger e
    UNION ALL
    SELECT format('extension %s version=%s config=%s', x.extname, x.extversion, x.extconfig::regclass[])
    FROM pg_extension x WHERE x.extname = 'tenant_guard'
) s(line)
ORDER BY line COLLATE "C";
SQL
}

# "table|claim A|claim B|tenant column|A value|B value|rows A|rows B|id for inserts"
SPECS="app.t_uuid|$ORG_A|$ORG_B|org_id|$ORG_A|$ORG_B|2|1|90
app.t_text|acme|globex|tenant|acme|globex|2|1|90
app.t_big|1001|1002|org_id|1001|1002|2|1|90
app.parted|$ORG_A|$ORG_B|org_id|$ORG_A|$ORG_B|4|2|150
app.parted_1|$ORG_A|$ORG_B|org_id|$ORG_A|$ORG_B|2|1|50
app.parted_2|$ORG_A|$ORG_B|org_id|$ORG_A|$ORG_B|2|1|150
app.inh_parent|$ORG_A|$ORG_B|org_id|$ORG_A|$ORG_B|4|2|90
app.inh_child|$ORG_A|$ORG_B|org_id|$ORG_A|$ORG_B|2|1|90
app.t_extra|$ORG_A|$ORG_B|org_id|$ORG_A|$ORG_B|2|1|90"

claims() { printf "SELECT set_config('request.jwt.claims', '{\"org_id\":\"%s\"}', true) IS NULL;\n" "$1"; }

# as the application role: rows seen with A's, B's and no context; inserts
behaviour() {
	local db=$1 tbl ca cb col va vb na nb id sql expected
	sql="CREATE FUNCTION pg_temp.try(sql text) RETURNS text LANGUAGE plpgsql AS \$f\$
DECLARE v text;
BEGIN
    EXECUTE sql INTO v;
    RETURN 'accepted ' || coalesce(v, '<null>');
EXCEPTION WHEN insufficient_privilege THEN
    RETURN CASE WHEN SQLERRM LIKE 'new row violates row-level security policy%' THEN 'refused by RLS'
                ELSE 'error: ' || SQLERRM END;
WHEN OTHERS THEN RETURN 'error: ' || SQLERRM;
END \$f\$;
"
	expected=
	while IFS='|' read -r tbl ca cb col va vb na nb id; do
		sql+="SELECT format('%s no context: %s rows', '$tbl', count(*)) FROM $tbl;
BEGIN; $(claims "$ca")
SELECT format('%s tenant A: %s rows, %s of A', '$tbl', count(*), count(*) FILTER (WHERE $col = '$va')) FROM $tbl;
SELECT format('%s as A, insert a B row: %s', '$tbl', pg_temp.try(\$\$INSERT INTO $tbl (id, $col) VALUES ($id, '$vb') RETURNING $col\$\$));
SELECT format('%s as A, insert with no tenant: %s', '$tbl', pg_temp.try(\$\$INSERT INTO $tbl (id) VALUES ($((id + 1))) RETURNING $col\$\$));
ROLLBACK;
BEGIN; $(claims "$cb")
SELECT format('%s tenant B: %s rows, %s of B', '$tbl', count(*), count(*) FILTER (WHERE $col = '$vb')) FROM $tbl;
ROLLBACK;
"
		expected+="$tbl no context: 0 rows
$tbl tenant A: $na rows, $na of A
$tbl as A, insert a B row: refused by RLS
$tbl as A, insert with no tenant: accepted $va
$tbl tenant B: $nb rows, $nb of B
"
	done <<<"$SPECS"
	local got
	got=$(q -U "$APP" -d "$db" <<<"$sql" 2>&1 | grep -v '^f$' || true)
	if [ "$got" = "${expected%$'\n'}" ]; then
		ok "$db: as $APP, each of 9 tables shows only the context's tenant, nothing without one, refuses B rows under A and defaults to A" \
			"$(grep -c . <<<"$expected")"
	else
		bad "$db: tenant isolation as $APP" "$(diff <(echo "${expected%$'\n'}") <(echo "$got") | sed -n '2,60p')"
	fi
}

# a partition and an inheritance child created now must be protected at once
new_children() {
	local db=$1 got expected
	got=$(q -d "$db" 2>&1 <<SQL
SET ROLE $OWNER;
CREATE TABLE app.parted_3 PARTITION OF app.parted FOR VALUES FROM (200) TO (300);
CREATE TABLE app.inh_child2 () INHERITS (app.inh_parent);
RESET ROLE;
SELECT format('%s rls=%s force=%s policies=%s registered via %s', c.oid::regclass, c.relrowsecurity,
              c.relforcerowsecurity,
              (SELECT string_agg(polname, ',' ORDER BY polname) FROM pg_policy WHERE polrelid = c.oid),
              coalesce((SELECT p.parent::text FROM tenant_guard.protected_tables p WHERE p.tbl = c.oid), '<not registered>'))
FROM pg_class c WHERE c.oid IN ('app.parted_3'::regclass, 'app.inh_child2'::regclass) ORDER BY c.relname;
SQL
	) || true
	expected="app.inh_child2 rls=t force=t policies=tg_base,tg_lifecycle_delete,tg_lifecycle_insert,tg_lifecycle_update,tg_wall registered via app.inh_parent
app.parted_3 rls=t force=t policies=tg_base,tg_lifecycle_delete,tg_lifecycle_insert,tg_lifecycle_update,tg_wall registered via app.parted"
	check_eq "$db: a new partition and a new inheritance child are protected by the event trigger" "$expected" "$got"
}

canon "$DB_SRC" >"$W/canon_src.txt"
grep -q '^policy app.t_uuid tg_wall permissive=f cmd=\* roles=public using=(org_id = ( SELECT tenant_guard.current_user_org_id()' \
	"$W/canon_src.txt" || { cat "$W/canon_src.txt"; echo "FAIL: the source has no tenant wall on app.t_uuid"; exit 1; }
for db in "$DB_FC" "$DB_PLAIN"; do
	canon "$db" >"$W/canon_$db.txt" 2>&1 || true
	if cmp -s "$W/canon_src.txt" "$W/canon_$db.txt"; then
		ok "$db: schema, policies, defaults, indexes, grants, rows and registry equal the source ($(wc -l <"$W/canon_src.txt") lines)"
	else
		bad "$db differs from the source (diff source restored)" \
			"$(diff "$W/canon_src.txt" "$W/canon_$db.txt" | grep '^[<>]' | head -60)"
	fi
	dup=$(q -d "$db" -c "SELECT count(*) - count(DISTINCT tbl::oid) FROM tenant_guard.protected_tables" 2>&1 || true)
	check_eq "$db: registry rows are not duplicated" 0 "$dup"
	behaviour "$db"
	new_children "$db"
done
# control: the same DDL protects new children in the source database
new_children "$DB_SRC"

# the restored registry is usable: unprotect() undoes exactly what protect()
# did (it reads created_index, added_not_null, prior_* from the registry), in
# the restored databases just as in the source
unprotect_all() {
	q -d "$1" -c "SET ROLE $OWNER" \
		-c "SELECT tenant_guard.unprotect(t) FROM unnest('{app.t_uuid,app.t_text,app.t_big,app.parted,app.inh_parent,app.t_extra}'::regclass[]) t"
}
unprotect_all "$DB_SRC" >/dev/null
canon "$DB_SRC" >"$W/canon_src_unprotected.txt"
left=$(grep -E '^policy .* tg_(wall|base) |^registry app|rls=t force=t|_org_id_idx|_tenant_idx|default=tenant_guard' \
	"$W/canon_src_unprotected.txt" | grep -v '^table app.t_extra ' || true)
[ -z "$left" ] || { echo "FAIL: unprotect() left this in the source:"; echo "$left"; exit 1; }
grep -q '^column app.t_big.org_id type=bigint notnull=f default=0$' "$W/canon_src_unprotected.txt" \
	|| { echo "FAIL: unprotect() did not restore app.t_big's default in the source"; exit 1; }
for db in "$DB_FC" "$DB_PLAIN"; do
	if ! out=$(unprotect_all "$db" 2>&1 >/dev/null); then
		bad "$db: unprotect() after the restore failed" "$out"
		continue
	fi
	canon "$db" >"$W/canon_${db}_unprotected.txt" 2>&1 || true
	if cmp -s "$W/canon_src_unprotected.txt" "$W/canon_${db}_unprotected.txt"; then
		ok "$db: unprotect() after the restore undoes exactly what protect() did, as in the source"
	else
		bad "$db: after unprotect() it differs from the source (diff source restored)" \
			"$(diff "$W/canon_src_unprotected.txt" "$W/canon_${db}_unprotected.txt" | grep '^[<>]' | head -60)"
	fi
done

ms=$((($(date +%s%N) - START) / 1000000))
secs=$((ms / 1000)).$((ms % 1000 / 100))
if [ "$failed" -eq 0 ]; then
	echo "dump: $passed checks passed (${secs}s)"
else
	echo "dump: $passed checks passed, $failed failed (${secs}s)"
	exit 1
fi
