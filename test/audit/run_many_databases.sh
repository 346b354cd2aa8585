#!/bin/bash
# The audit seal chain keeps one head per database in shared memory, in a
# fixed number of slots (128). DROP DATABASE leaves its slot behind; a new
# database that needs one reclaims the slots of dropped databases. This
# harness creates, audits and drops more databases than there are slots,
# one after another (each writes audited rows as the application would), and
# proves that every one could write, and that a database kept alive all along
# still verifies its chain. Needs the extension installed (scripts/test.sh).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/scripts/lib.sh"

SLOTS=128
ROUNDS=$((SLOTS + 8))
W=$(mktemp -d /tmp/tg_manydb.XXXXXX)
chmod 755 "$W"
trap 'tg_stop_cluster "$W/pg"; rm -rf "$W"' EXIT
tg_start_cluster "$W/pg" "shared_preload_libraries = 'tenant_guard'" "max_connections = 20" >/dev/null

fail() { echo "FAIL: $*"; tail -20 "$W/pg/server.log"; exit 1; }
q() { psql -X -At -q -v ON_ERROR_STOP=1 "$@"; }

q -c "CREATE DATABASE tmpl"
q -d tmpl <<'SQL'
CREATE EXTENSION tenant_guard;
CREATE TABLE notes (id serial PRIMARY KEY, org_id uuid NOT NULL, body text);
SELECT tenant_guard.protect('notes');
SELECT tenant_guard.enable_audit('notes');
SQL
q -c "CREATE DATABASE kept TEMPLATE tmpl"
write='SET tenant_guard.context_source = '"'setting'"'; SET tenant_guard.org_id = '"'11111111-1111-4111-8111-111111111111'"';
INSERT INTO notes (org_id, body) VALUES ('"'11111111-1111-4111-8111-111111111111'"', '"'x'"');'
q -d kept -c "$write"
for i in $(seq 1 "$ROUNDS"); do
	q -c "CREATE DATABASE d$i TEMPLATE tmpl STRATEGY FILE_COPY"
	q -d "d$i" -c "$write" || fail "database $i of $ROUNDS could not write an audited row"
	[ "$(q -d "d$i" -c "SELECT ok FROM tenant_guard.verify_audit()")" = t ] || fail "database $i: chain broken"
	q -c "DROP DATABASE d$i"
	if [ $((i % 32)) -eq 0 ]; then q -d kept -c "$write"; fi
done
echo "ok: $ROUNDS databases created, audited and dropped one after another (more than the $SLOTS slots)"
[ "$(q -d kept -c "SELECT ok FROM tenant_guard.verify_audit()")" = t ] || fail "the database kept alive: chain broken"
n=$(q -d kept -c "SELECT count(*) FROM tenant_guard.audit_log WHERE kind = 'rows'")
[ "$n" -eq $((1 + ROUNDS / 32)) ] || fail "the database kept alive has $n row records"
echo "ok: the database kept alive all along still verifies ($n row records)"
