#!/bin/bash
# Bad-input sweep of every SQL function and procedure of tenant_guard,
# generated from the catalog (test/sweep/generate.sql), so a new function is
# covered without editing anything. Each argument in turn gets NULL, empty and
# 1 MB strings, control characters and \u0000 escapes, negative and huge
# intervals, infinite timestamps, invalid and nil uuids, a foreign tenant,
# catalogs and missing relations and roles, deep and huge json, ... while the
# other arguments keep a plain value. Three passes: as a superuser without a
# context, as the application role in tenant A's context, and as the
# application role without a context. Proves:
#  - no backend crashes (the server log shows no process terminated by a signal);
#  - every refusal is an ERROR with a specific SQLSTATE, never XX000;
#  - a refused call changes nothing: the catalog (tables, policies, triggers,
#    schemas, roles) and the registries are the same before and after.
# Writes its figures to stdout. Needs the extension installed (scripts/test.sh).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
. "$ROOT/scripts/lib.sh"

W=$(mktemp -d /tmp/tg_sweep.XXXXXX)
chmod 755 "$W"
trap 'tg_stop_cluster "$W/pg"; [ -n "${KEEP_TEST_DIR:-}" ] || rm -rf "$W"' EXIT
mkdir -p "$W/fixtures"
/usr/bin/python3 "$ROOT/test/fixtures/make_fixtures.py" "$W/fixtures" >/dev/null
[ "$(id -u)" -ne 0 ] || chown -R postgres:postgres "$W/fixtures"
. "$W/fixtures/tokens.env"
tg_start_cluster "$W/pg" "shared_preload_libraries = 'tenant_guard'" \
	"tenant_guard.master_key_file = '$MASTER_KEY_FILE'" "tenant_guard.jwt_secret_file = '$HS_SECRET_FILE'" \
	"tenant_guard.jwt_audience = 'tenant-app'" "log_min_messages = warning" "log_min_error_statement = panic" >/dev/null

q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
q -d postgres -c "CREATE DATABASE sweep"
export PGDATABASE=sweep
q >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION tenant_guard;
CREATE EXTENSION dblink;
CREATE ROLE regress_sweep_owner;
CREATE ROLE regress_sweep_app LOGIN;
SELECT tenant_guard.register_app_role('regress_sweep_app');
ALTER DATABASE sweep SET tenant_guard.context_source = 'setting';
CREATE SCHEMA sweep AUTHORIZATION regress_sweep_owner;
GRANT USAGE ON SCHEMA sweep TO regress_sweep_app;
SET ROLE regress_sweep_owner;
CREATE TABLE sweep.docs (id int PRIMARY KEY, org_id uuid NOT NULL, body text, secret bytea);
CREATE TABLE sweep.plain (id int);
SELECT tenant_guard.protect('sweep.docs');
SELECT tenant_guard.enable_audit('sweep.docs');
GRANT SELECT, INSERT, UPDATE, DELETE ON sweep.docs TO regress_sweep_app;
RESET ROLE;
SET tenant_guard.context_source = 'setting';
SET tenant_guard.org_id = '11111111-1111-4111-8111-111111111111';
INSERT INTO sweep.docs VALUES (1, '11111111-1111-4111-8111-111111111111', 'a', tenant_guard.encrypt_text('s', 'sweep.docs.secret'));
SET tenant_guard.org_id = '22222222-2222-4222-8222-222222222222';
INSERT INTO sweep.docs VALUES (2, '22222222-2222-4222-8222-222222222222', 'b', NULL);
RESET tenant_guard.org_id;
SELECT tenant_guard.register_tenant('11111111-1111-4111-8111-111111111111', 'A');
SELECT tenant_guard.register_tenant('22222222-2222-4222-8222-222222222222', 'B');

-- the sweep's own bookkeeping, out of the application role's reach but
-- callable by it through two SECURITY DEFINER functions
CREATE SCHEMA tg_sweep;
CREATE TABLE tg_sweep.failures (pass text, call text, sqlstate text, problem text);
CREATE TABLE tg_sweep.errors (pass text, sqlstate text);
CREATE FUNCTION tg_sweep.snapshot() RETURNS text LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
    SELECT md5(concat_ws('|',
        (SELECT string_agg(format('%s.%s:%s:%s:%s', n.nspname, c.relname, c.relkind, c.relrowsecurity,
                                  c.relforcerowsecurity), ',' ORDER BY n.nspname, c.relname)
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema' AND c.relname !~ '^audit_log_p'),
        (SELECT string_agg(format('%s:%s:%s:%s', polrelid::regclass, polname, polpermissive,
                                  pg_get_expr(polqual, polrelid)), ',' ORDER BY 1) FROM pg_policy),
        (SELECT string_agg(format('%s:%s:%s', tgrelid::regclass, tgname, tgenabled), ',' ORDER BY 1)
         FROM pg_trigger WHERE NOT tgisinternal AND tgrelid::regclass::text !~ '^tenant_guard\.audit_log_p'),
        (SELECT string_agg(nspname, ',' ORDER BY 1) FROM pg_namespace WHERE nspname NOT LIKE 'pg\_%'),
        (SELECT string_agg(rolname, ',' ORDER BY 1) FROM pg_roles),
        (SELECT string_agg(t::text, ',' ORDER BY t::text) FROM tenant_guard.protected_tables t),
        (SELECT string_agg(t::text, ',' ORDER BY t::text) FROM tenant_guard.access_rules t),
        (SELECT string_agg(t::text, ',' ORDER BY t::text) FROM tenant_guard.exemptions t),
        (SELECT string_agg(t::text, ',' ORDER BY t::text) FROM tenant_guard.guarded_schemas t),
        (SELECT string_agg(t::text, ',' ORDER BY t::text) FROM tenant_guard.audited_tables t),
        (SELECT string_agg(t::text, ',' ORDER BY t::text) FROM tenant_guard.app_roles t),
        (SELECT string_agg(t::text, ',' ORDER BY t::text) FROM tenant_guard.tenants t),
        (SELECT string_agg(t::text, ',' ORDER BY t::text) FROM tenant_guard.tenant_keys t),
        (SELECT string_agg(t::text, ',' ORDER BY t::text) FROM tenant_guard.secrets t),
        (SELECT string_agg(t::text, ',' ORDER BY t::text) FROM sweep.docs t)))
$$;
CREATE FUNCTION tg_sweep.check(call text, state text, before text) RETURNS void LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO tg_sweep.errors VALUES (current_setting('tg_sweep.pass'), state);
    IF state = 'XX000' OR state IS NULL OR state = '' THEN
        INSERT INTO tg_sweep.failures VALUES (current_setting('tg_sweep.pass'), call, state, 'internal error');
    END IF;
    IF tg_sweep.snapshot() <> before THEN
        INSERT INTO tg_sweep.failures VALUES (current_setting('tg_sweep.pass'), call, state, 'refused but changed state');
    END IF;
END
$$;
GRANT USAGE ON SCHEMA tg_sweep TO PUBLIC;
GRANT EXECUTE ON FUNCTION tg_sweep.snapshot(), tg_sweep.check(text, text, text) TO PUBLIC;
SQL

psql -X -At -v ON_ERROR_STOP=1 -f "$HERE/generate.sql" >"$W/calls.sql"
ncalls=$(grep -c '^SELECT tg_sweep.check' "$W/calls.sql")
nfuncs=$(psql -X -At -c "SELECT count(*) FROM pg_proc WHERE pronamespace = 'tenant_guard'::regnamespace")
echo "sweep: $ncalls calls of $nfuncs functions and procedures per pass"

run_pass() {  # run_pass NAME PREAMBLE
	local name=$1 preamble=$2
	{
		echo "SET tg_sweep.pass = '$name';"
		echo "$preamble"
		cat "$W/calls.sql"
	} | timeout 1200 psql -X -q -v ON_ERROR_STOP=0 -v VERBOSITY=terse >"$W/$name.out" 2>"$W/$name.err" || true
	local crashed
	crashed=$(grep -c 'server closed the connection\|connection to server was lost' "$W/$name.err" || true)
	echo "pass $name: $(grep -c '^ERROR:' "$W/$name.err" || true) calls refused, $crashed lost connections"
}
run_pass superuser "SELECT 1 AS superuser_pass \\gset"
run_pass app_tenant_a "SET ROLE regress_sweep_app; SET tenant_guard.org_id = '11111111-1111-4111-8111-111111111111';"
run_pass app_no_context "SET ROLE regress_sweep_app;"

fail=0
if grep -E 'terminated by signal|was terminated|PANIC|TRAP:' "$W/pg/server.log" | head -5; then
	echo "FAIL: a backend crashed"
	fail=1
fi
if cat "$W"/*.err | grep -q 'server closed the connection\|connection to server was lost'; then
	echo "FAIL: a call lost its connection"
	fail=1
fi
psql -X -At -F ' ' -c "SELECT pass, sqlstate, count(*) FROM tg_sweep.errors GROUP BY 1, 2 ORDER BY 1, 3 DESC" \
	| awk '{ a[$1] = a[$1] " " $2 "x" $3 } END { for (p in a) print "sqlstates " p ":" a[p] }' | sort
n=$(psql -X -At -c "SELECT count(*) FROM tg_sweep.failures")
if [ "$n" -ne 0 ]; then
	psql -X -At -F ' | ' -c "SELECT pass, problem, sqlstate, call FROM tg_sweep.failures ORDER BY 2, 4 LIMIT 60"
	echo "FAIL: $n refused calls were internal errors (XX000) or changed state"
	fail=1
fi
[ "$fail" -eq 0 ] || exit 1
echo "ok: $((ncalls * 3)) calls in 3 passes: no crash, no internal error, no refused call changed anything"
