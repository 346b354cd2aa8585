#!/bin/bash
# The demo (README): installs what is missing, builds and installs
# tenant_guard, starts a throw-away PostgreSQL cluster, creates two tenants on a
# sample schema, and shows tenant A's session seeing only A's rows while every
# cross-tenant read and write is refused. Stops and removes the cluster at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
export LANG=C.UTF-8
tg_install_deps
tg_log "building and installing tenant_guard"
tg_build_install

WORK=$(mktemp -d /tmp/tg_demo.XXXXXX)
chmod 755 "$WORK"
trap 'tg_stop_cluster "$WORK/pg"; rm -rf "$WORK"' EXIT

# A per-run HS256 secret for the signed-token part, readable only by the server.
mkdir -p "$WORK/keys"
head -c 48 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/keys/jwt.secret"
chmod 600 "$WORK/keys/jwt.secret"
[ "$(id -u)" -eq 0 ] && chown -R postgres:postgres "$WORK/keys"

tg_log "starting a throw-away cluster"
tg_start_cluster "$WORK/pg" "shared_preload_libraries = 'tenant_guard'" \
	"tenant_guard.jwt_secret_file = '$WORK/keys/jwt.secret'"

ORG_A=aaaaaaaa-0000-4000-8000-00000000000a
ORG_B=bbbbbbbb-0000-4000-8000-00000000000b
TOKEN_A=$(/usr/bin/python3 - "$WORK/keys/jwt.secret" "$ORG_A" <<'PY'
import sys, time, jwt
secret = open(sys.argv[1], "rb").read().rstrip(b"\n")
print(jwt.encode({"org_id": sys.argv[2], "sub": "alice", "org_role": "admin",
                  "exp": int(time.time()) + 600}, secret, "HS256"))
PY
)

psql -X -q -v ON_ERROR_STOP=1 -v org_a="$ORG_A" -v org_b="$ORG_B" <<'SQL'
\echo '== setup (a migration, as the owner): two tenants, one table, protected by tenant_guard'
CREATE EXTENSION tenant_guard;
CREATE ROLE demo_app LOGIN;              -- the application role: not a superuser, not the owner
CREATE SCHEMA app;
GRANT USAGE ON SCHEMA app TO demo_app;
CREATE TABLE app.projects (
    id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id uuid NOT NULL,
    name   text NOT NULL
);
INSERT INTO app.projects (org_id, name) VALUES
    (:'org_a', 'A: website'), (:'org_a', 'A: mobile app'),
    (:'org_b', 'B: payroll'), (:'org_b', 'B: secret merger');
-- RLS + FORCE, the restrictive tenant wall, a base policy, default tenant, index:
SELECT tenant_guard.protect('app.projects');
GRANT SELECT, INSERT, UPDATE, DELETE ON app.projects TO demo_app;
SELECT polname, polpermissive AS permissive FROM pg_policy WHERE polrelid = 'app.projects'::regclass ORDER BY 1;
SQL

# The token reaches psql only through the environment: it is never on a
# command line, and never in a statement's text (see docs/passing-tokens.md).
export TOKEN_A
run_as_app() { psql -X -q -v ON_ERROR_STOP=0 -U demo_app -v org_a="$ORG_A" -v org_b="$ORG_B" "$@"; }

run_as_app <<'SQL'
\pset footer off
\echo
\echo '== tenant A, context from request.jwt.claims (as PostgREST/Supabase set it)'
BEGIN;
SELECT set_config('request.jwt.claims', '{"org_id":"aaaaaaaa-0000-4000-8000-00000000000a","sub":"alice"}', true) \g /dev/null
\echo '-- A reads: only its own rows'
SELECT tenant_guard.current_user_org_id() AS my_org, tenant_guard.current_user_id() AS me;
SELECT id, name FROM app.projects ORDER BY id;
\echo '-- A inserts without naming the tenant: lands in A'
INSERT INTO app.projects (name) VALUES ('A: new idea') RETURNING org_id = :'org_a' AS landed_in_a;
\echo '-- A reads B by tenant and by id, updates and deletes B rows: nothing is visible, nothing changes'
SELECT (SELECT count(*) FROM app.projects WHERE org_id = :'org_b') AS b_rows_visible,
       (SELECT count(*) FROM app.projects WHERE id = 3) AS b_row_3_visible;
WITH u AS (UPDATE app.projects SET name = 'pwned' WHERE org_id = :'org_b' RETURNING 1)
SELECT count(*) AS b_rows_updated FROM u;
WITH d AS (DELETE FROM app.projects WHERE name LIKE 'B:%' RETURNING 1)
SELECT count(*) AS b_rows_deleted FROM d;
\echo '-- A tries to plant a row in B: refused'
SAVEPOINT s;
INSERT INTO app.projects (org_id, name) VALUES (:'org_b', 'planted by A');
ROLLBACK TO SAVEPOINT s;
\echo '-- A tries to move its own row into B: refused'
UPDATE app.projects SET org_id = :'org_b' WHERE name = 'A: website';
ROLLBACK TO SAVEPOINT s;
COMMIT;

\echo
\echo '== no context (a bug, a forgotten header, a NULL user id): sees and changes nothing'
SELECT count(*) AS rows_visible FROM app.projects;
SELECT set_config('request.jwt.claims', '{"org_id":null}', false) \g /dev/null
SELECT count(*) AS rows_visible_with_null_org FROM app.projects;
\echo '-- and cannot write either:'
INSERT INTO app.projects (name) VALUES ('orphan');

\echo
\echo '== the application role cannot switch where the context comes from'
SET tenant_guard.context_source = 'setting';
SQL

psql -X -q -c "ALTER ROLE demo_app SET tenant_guard.context_source = 'signed'"
run_as_app <<'SQL'
\pset footer off
\echo
\echo '== signed mode: only a verified token counts (a SQL injection cannot switch tenant)'
\echo '-- a token written into the statement text is refused: every session of demo_app, whatever its tenant,'
\echo '-- could read it in pg_stat_activity and replay it'
\getenv token_a TOKEN_A
SELECT tenant_guard.set_context(:'token_a');
\unset token_a
\echo '-- the token goes in as a bind parameter (SELECT tenant_guard.set_context($1)); psql 15 cannot send one, so'
\echo '-- here it goes in as COPY data, which no other session sees:'
BEGIN;
\copy tenant_guard.context_input (token) FROM PROGRAM 'printenv TOKEN_A'
SELECT tenant_guard.current_user_org_id() AS verified_org;
SELECT set_config('request.jwt.claims', '{"org_id":"bbbbbbbb-0000-4000-8000-00000000000b"}', true) \g /dev/null
\echo '-- after forging request.jwt.claims for B, the session still sees only A:'
SELECT id, name FROM app.projects ORDER BY id;
COMMIT;
\echo '-- after COMMIT the context is gone (safe behind a transaction-mode pooler):'
SELECT count(*) AS rows_visible_after_commit FROM app.projects;
\echo '-- a forged token is refused, and says why without echoing it:'
SELECT tenant_guard.set_context('eyJhbGciOiJub25lIn0.eyJvcmdfaWQiOiJiYmJiYmJiYi0wMDAwLTQwMDAtODAwMC0wMDAwMDAwMDAwMGIiLCJleHAiOjk5OTk5OTk5OTl9.');
SQL

psql -X -q -c "GRANT TRUNCATE ON app.projects TO demo_app"
run_as_app <<'SQL'
\echo
\echo '== with tenant_guard preloaded, the application role cannot TRUNCATE a tenant table, even if granted:'
TRUNCATE app.projects;
SQL
psql -X -q <<'SQL'
\pset footer off
\echo
\echo '== the DBA audits it: lint() before and after hardening the application role'
SELECT tenant_guard.register_app_role('demo_app') \g /dev/null
SELECT severity, code, object, message FROM tenant_guard.lint() WHERE severity <> 'info';
SELECT count(*) AS statements_run, min(s) FILTER (WHERE s LIKE 'REVOKE TRUNCATE%') AS for_example
FROM tenant_guard.harden_app_role('demo_app') s;
ALTER DATABASE postgres SET tenant_guard.require_context = on;
SET tenant_guard.require_context = on;
\echo '-- left: a primary key without org_id (an existence oracle: a schema change) and the forgeable claims source (a configuration choice)'
SELECT severity, code, object, message FROM tenant_guard.lint() WHERE severity <> 'info';
SQL
echo
tg_log "demo finished; the cluster is stopped and removed"
