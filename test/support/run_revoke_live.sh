#!/bin/bash
# Revocation from another connection takes effect at the next statement of a
# live support session (docs/support-access.md), even inside the agent's
# REPEATABLE READ transaction whose snapshot predates the revocation. On a
# cluster of its own without shared_preload_libraries.
#   agent: CALL begin_support_session; BEGIN ISOLATION LEVEL REPEATABLE READ;
#          reads tenant rows; waits on an advisory lock held by the admin;
#          reads again
#   admin: (tenant A's admin context) revokes while the agent waits, then
#          releases the lock
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/scripts/lib.sh"

W=$(mktemp -d /tmp/tg_support_revoke.XXXXXX)
chmod 755 "$W"
trap 'tg_stop_cluster "$W/pg"; rm -rf "$W"' EXIT
tg_start_cluster "$W/pg" "shared_preload_libraries = ''" >/dev/null
ORG=0a0a0a0a-0000-4000-8000-00000000000a
OTHER=0b0b0b0b-0000-4000-8000-00000000000b
fail() { echo "FAIL: $*"; tail -20 "$W/pg/server.log"; exit 1; }
q() { psql -X -At -v ON_ERROR_STOP=1 "$@"; }

q -q >/dev/null <<SQL
CREATE EXTENSION tenant_guard;
CREATE ROLE agent LOGIN;
CREATE ROLE app;
GRANT tenant_guard_support, app TO agent;
CREATE TABLE tickets (org_id uuid NOT NULL, id int, PRIMARY KEY (org_id, id));
SELECT tenant_guard.protect('tickets');
GRANT SELECT ON tickets TO app;
INSERT INTO tickets VALUES ('$ORG', 1), ('$ORG', 2), ('$OTHER', 3);
SQL
TOK=$(q -c "SELECT tenant_guard.issue_support_grant('$ORG', 'agent@platform', 'revocation test')")

# the admin connection: holds the lock, revokes once the agent waits on it
mkfifo "$W/admin.in"
q <"$W/admin.in" >"$W/admin.log" 2>&1 &
admin=$!
exec 3>"$W/admin.in"
echo "SELECT pg_advisory_lock(42);" >&3
for i in $(seq 1 200); do
	n=$(q -c "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted")
	[ "$n" = 1 ] && break
	sleep 0.05
done
[ "$n" = 1 ] || fail "the admin never took the lock"

psql -X -At -U agent >"$W/agent.log" 2>&1 <<SQL &
CALL tenant_guard.begin_support_session('$TOK');
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT 'before ' || count(*) FROM tickets;
SELECT pg_advisory_xact_lock(42) IS NULL AS waited;
SELECT 'after ' || count(*) FROM tickets;
SELECT 'context ' || coalesce(tenant_guard.current_user_org_id()::text, 'none');
COMMIT;
SELECT 'later ' || count(*) FROM tickets;
SQL
agent=$!

for i in $(seq 1 200); do
	n=$(q -c "SELECT count(*) FROM pg_stat_activity WHERE usename = 'agent' AND wait_event_type = 'Lock'")
	[ "$n" = 1 ] && break
	sleep 0.05
done
[ "$n" = 1 ] || { cat "$W/agent.log"; fail "the agent never waited on the lock"; }
cat >&3 <<SQL
SET tenant_guard.context_source = 'setting';
SET tenant_guard.org_id = '$ORG';
SET tenant_guard.role = 'admin';
SELECT 'revoked ' || tenant_guard.revoke_support_sessions();
SELECT pg_advisory_unlock(42);
SQL
exec 3>&-
wait "$agent" || true
wait "$admin" || { cat "$W/admin.log"; fail "admin session failed"; }

grep -q "^revoked 1$" "$W/admin.log" || { cat "$W/admin.log"; fail "the admin did not revoke one session"; }
want=$'before 2\nf\nafter 0\ncontext none\nlater 0'
got=$(grep -v -e '^CALL$' -e '^BEGIN$' -e '^COMMIT$' -e '^NOTICE' "$W/agent.log")
[ "$got" = "$want" ] || { echo "--- agent:"; cat "$W/agent.log"; fail "the revoked session still had its context"; }
echo "ok: a revocation from another connection ended the live session at its next statement (repeatable read)"
