#!/bin/bash
# test/recipes/run_clients.sh: the client recipes of docs/signed-mode.md run as
# tests, through the pgbouncer configuration that page shows (transaction
# mode, no reset query, fewer server connections than clients):
#   psycopg 3 + psycopg_pool  (test/recipes/tenant_psycopg.py, driven by psycopg_clients.py)
#   node-postgres + pg.Pool   (test/recipes/tenant_pg.js, driven by pg_clients.js)
# in signed mode with a JWKS file, string org ids and a service token for a
# background job. Each client runs 4 concurrent workers (two per tenant) of TX
# transactions that read their context before anything else, insert a row
# and read the table back; a context or row of the other tenant fails the
# test. Then, as superuser: every row landed in its own tenant, and the jobs'
# rows carry the service user in the audit log.
#
# Runs under ctest from scripts/test.sh (PGHOST PGPORT PGUSER: a running
# cluster, superuser; TG_TEST_DIR: fixtures). npm's "pg" is installed once into
# ${TG_NODE_CACHE:-/var/cache/tenant_guard/node} (npm registry).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../../scripts/lib.sh
. "$HERE/../../scripts/lib.sh"
: "${PGHOST:?}" "${PGPORT:?}" "${PGUSER:?}" "${TG_TEST_DIR:?}"
unset PGOPTIONS
# shellcheck disable=SC1091
. "$TG_TEST_DIR/tokens.env"
# The tokens expire (the service token within minutes, as its cap requires):
# mint them now with the run's keys, not at the start of a long suite.
eval "$(/usr/bin/python3 "$HERE/../fixtures/make_fixtures.py" --mint "$TG_TEST_DIR")"
: "${TOK_TEXT_A:?}" "${TOK_TEXT_B:?}" "${TOK_SVC_A:?}" "${JWKS_FILE:?}" "${AUDIENCE:?}"
ORG_TEXT_A=org_2abcA
ORG_TEXT_B=org_2xyzB
DB=tg_recipes
APP=regress_recipes_app
TX=${TG_RECIPES_TX:-40}
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
su_psql() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

WORK=$(mktemp -d -t tg_recipes.XXXXXX)
chmod 755 "$WORK"
cleanup() {
	local rc=$? p
	set +e
	if [ -s "$WORK/pgbouncer.pid" ]; then
		p=$(cat "$WORK/pgbouncer.pid")
		kill -TERM "$p" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	fi
	[ "$rc" -ne 0 ] && [ -f "$WORK/pgbouncer.log" ] && { echo "---- pgbouncer.log (tail) ----"; tail -20 "$WORK/pgbouncer.log" | sed -E 's/eyJ[A-Za-z0-9_.-]*/<token>/g'; }
	su_psql -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "DROP ROLE IF EXISTS $APP" >/dev/null 2>&1
	rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Client libraries: psycopg 3 and psycopg_pool (Debian), pgbouncer (Debian), pg (npm).
TG_PACKAGES="pgbouncer python3-psycopg python3-psycopg-pool" tg_install_deps || fail "client packages are missing"
# node and npm: Debian's nodejs and npm packages, unless a node with npm is already installed
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	TG_PACKAGES="nodejs npm" tg_install_deps || fail "node and npm are missing"
fi
PGBOUNCER=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
NODE_CACHE=${TG_NODE_CACHE:-${XDG_CACHE_HOME:-/var/cache}/tenant_guard/node}
if [ ! -f "$NODE_CACHE/node_modules/pg/package.json" ]; then
	tg_log "recipes: installing npm pg into $NODE_CACHE"
	mkdir -p "$NODE_CACHE"
	npm install --prefix "$NODE_CACHE" --no-audit --no-fund --loglevel=error pg@8 >/dev/null || fail "npm install pg failed"
fi
PG_JS_VERSION=$(node -p "require('$NODE_CACHE/node_modules/pg/package.json').version")

tg_log "recipes: database $DB (signed mode, JWKS, text org ids), role $APP"
su_psql -d postgres <<SQL
SET client_min_messages = warning;
DROP DATABASE IF EXISTS $DB WITH (FORCE);
DROP ROLE IF EXISTS $APP;
CREATE ROLE $APP LOGIN;
CREATE DATABASE $DB;
ALTER DATABASE $DB SET tenant_guard.context_source = 'signed';
ALTER DATABASE $DB SET tenant_guard.jwt_jwks_file = '$JWKS_FILE';
ALTER DATABASE $DB SET tenant_guard.jwt_audience = '$AUDIENCE';
ALTER DATABASE $DB SET tenant_guard.jwt_service_key_ids = 'jobs-1';
ALTER DATABASE $DB SET log_min_error_statement = panic;
GRANT CONNECT ON DATABASE $DB TO $APP;
SQL
su_psql -d "$DB" <<SQL
SET client_min_messages = warning;
CREATE EXTENSION tenant_guard;
CREATE SCHEMA app;
CREATE TABLE app.notes (id bigint GENERATED ALWAYS AS IDENTITY, org_id text NOT NULL, body text NOT NULL,
                        PRIMARY KEY (org_id, id));
INSERT INTO app.notes (org_id, body) VALUES ('$ORG_TEXT_A', 'seed A'), ('$ORG_TEXT_B', 'seed B');
SELECT tenant_guard.protect('app.notes');
SELECT tenant_guard.enable_audit('app.notes');
GRANT USAGE ON SCHEMA app TO $APP;
GRANT SELECT, INSERT ON app.notes TO $APP;
SELECT tenant_guard.register_app_role('$APP');
SELECT count(*) FROM tenant_guard.harden_app_role('$APP');
SQL

# The pgbouncer configuration of docs/signed-mode.md ("Poolers"), plus this test's
# own addresses and files. Two server connections for eight clients.
# (a random start: tests running at the same time must not pick the same port)
# (above Linux's ephemeral range, 32768-60999: see test/load/run_pooled_load.sh)
PB_PORT=$(tg_free_port $((61000 + RANDOM % 3000))) || fail "no free port"
printf '"%s" ""\n' "$APP" >"$WORK/userlist.txt"
cat >"$WORK/pgbouncer.ini" <<INI
[databases]
$DB = host=$PGHOST port=$PGPORT dbname=$DB

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PB_PORT
unix_socket_dir =
auth_type = trust
auth_file = $WORK/userlist.txt
logfile = $WORK/pgbouncer.log
pidfile = $WORK/pgbouncer.pid
; the recipe's settings
pool_mode = transaction
server_reset_query =
default_pool_size = 2
max_db_connections = 2
max_client_conn = 20
ignore_startup_parameters = extra_float_digits
INI
[ "$(id -u)" -eq 0 ] && chown -R postgres:postgres "$WORK"
tg_as_server "$PGBOUNCER" -d -q "$WORK/pgbouncer.ini" || fail "pgbouncer did not start"
for _ in $(seq 100); do
	psql -X -q -At -h 127.0.0.1 -p "$PB_PORT" -U "$APP" -d "$DB" -c 'SELECT 1' >/dev/null 2>&1 && break
	sleep 0.1
done

status=0
export TOKEN_A=$TOK_TEXT_A TOKEN_B=$TOK_TEXT_B TOKEN_JOB=$TOK_SVC_A ORG_A=$ORG_TEXT_A ORG_B=$ORG_TEXT_B TX
tg_log "recipes: psycopg $(/usr/bin/python3 -c 'import psycopg; print(psycopg.__version__)'), 4 workers x $TX transactions"
DSN="host=127.0.0.1 port=$PB_PORT user=$APP dbname=$DB" timeout 120 /usr/bin/python3 "$HERE/psycopg_clients.py" \
	|| { echo "FAIL: psycopg recipe" >&2; status=1; }
tg_log "recipes: node-postgres $PG_JS_VERSION (node $(node --version)), 4 workers x $TX transactions"
PGHOST=127.0.0.1 PGPORT=$PB_PORT PGUSER=$APP PGDATABASE=$DB NODE_PATH="$NODE_CACHE/node_modules" \
	timeout 120 node "$HERE/pg_clients.js" || { echo "FAIL: node-postgres recipe" >&2; status=1; }

# As superuser, directly: every client's row is in its own tenant; the jobs
# wrote as the service user, and the audit log says so.
result=$(su_psql -d "$DB" <<SQL
SELECT count(*) FILTER (WHERE body ~ '^(psycopg|node)-a' AND org_id = '$ORG_TEXT_A')
     + count(*) FILTER (WHERE body ~ '^(psycopg|node)-b' AND org_id = '$ORG_TEXT_B') AS own,
       count(*) FILTER (WHERE body ~ '^(psycopg|node)-a' AND org_id <> '$ORG_TEXT_A')
     + count(*) FILTER (WHERE body ~ '^(psycopg|node)-b' AND org_id <> '$ORG_TEXT_B') AS crossed
FROM app.notes;
SELECT count(*) FROM tenant_guard.audit_trail
WHERE table_name = 'app.notes' AND action = 'INSERT' AND actor = 'service:nightly-billing' AND org = '$ORG_TEXT_A';
SQL
)
own=$(sed -n 1p <<<"$result" | cut -d'|' -f1)
crossed=$(sed -n 1p <<<"$result" | cut -d'|' -f2)
job_rows=$(sed -n 2p <<<"$result")
want=$((2 * 4 * TX))
echo "recipes: rows in their own tenant $own of $want, in another tenant $crossed; service-job inserts audited as service:nightly-billing: $job_rows of 2"
[ "$own" = "$want" ] && [ "$crossed" = 0 ] && [ "$job_rows" = 2 ] || status=1
[ "$status" -eq 0 ] || fail "client recipes"
echo "recipes: ok"
