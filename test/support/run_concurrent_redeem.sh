#!/bin/bash
# Two concurrent redemptions of one support token (docs/support-access.md), on
# a cluster of its own WITHOUT shared_preload_libraries (support sessions need
# no preloading): a third session holds the grant row locked until both
# redemptions are waiting on it, then lets them go. Exactly one wins (a
# support context for the tenant), the other gets "support token refused";
# the tenant's log has one platform.impersonate_tenant and one refusal
# ("already redeemed").
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/scripts/lib.sh"

W=$(mktemp -d /tmp/tg_support_conc.XXXXXX)
chmod 755 "$W"
trap 'tg_stop_cluster "$W/pg"; rm -rf "$W"' EXIT
tg_start_cluster "$W/pg" "shared_preload_libraries = ''" >/dev/null
ORG=0a0a0a0a-0000-4000-8000-00000000000a
fail() { echo "FAIL: $*"; tail -20 "$W/pg/server.log"; exit 1; }
q() { psql -X -At -v ON_ERROR_STOP=1 "$@"; }

q -q -c "CREATE EXTENSION tenant_guard" >/dev/null
[ "$(q -c "SHOW shared_preload_libraries")" = "" ] || fail "the cluster preloads a library"
TOK=$(q -c "SELECT tenant_guard.issue_support_grant('$ORG', 'agent@platform', 'concurrency test')")

# the locker: holds the row until two sessions wait for a lock, then commits
q >"$W/locker.log" 2>&1 <<SQL &
BEGIN;
SELECT 1 FROM tenant_guard.support_grants FOR UPDATE;
DO \$\$
BEGIN
    FOR i IN 1 .. 600 LOOP
        PERFORM pg_catalog.pg_stat_clear_snapshot();
        EXIT WHEN (SELECT count(*) FROM pg_catalog.pg_stat_activity
                   WHERE wait_event_type = 'Lock' AND query LIKE 'CALL tenant_guard.begin_support_session%') >= 2;
        PERFORM pg_catalog.pg_sleep(0.05);
    END LOOP;
END
\$\$;
SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE wait_event_type = 'Lock';
COMMIT;
SQL
locker=$!
redeem() { # n
	psql -X -At -c "CALL tenant_guard.begin_support_session('$TOK')" \
		-c "SELECT 'context ' || tenant_guard.current_user_org_id()" >"$W/r$1.log" 2>&1 || true
}
sleep 0.3
redeem 1 &
a=$!
redeem 2 &
b=$!
wait "$a" "$b"
wait "$locker" || { cat "$W/locker.log"; fail "locker failed"; }
[ "$(tail -2 "$W/locker.log" | head -1)" = "2" ] || { cat "$W/locker.log"; fail "the two redemptions did not wait together"; }

wins=$(cat "$W"/r1.log "$W"/r2.log | grep -c "^context $ORG$" || true)
refused=$(cat "$W"/r1.log "$W"/r2.log | grep -c "ERROR:  support token refused" || true)
[ "$wins" = 1 ] || { cat "$W"/r*.log; fail "expected exactly one winner, got $wins"; }
[ "$refused" = 1 ] || { cat "$W"/r*.log; fail "expected exactly one refusal, got $refused"; }
grep -q "$TOK" "$W"/r*.log && fail "the token appears in a client message"

got=$(q -c "SELECT string_agg(action || ':' || coalesce(detail->>'why', ''), ',' ORDER BY id)
            FROM tenant_guard.audit_log WHERE org = '$ORG' AND action IN
            ('platform.impersonate_tenant', 'platform.support_session_refused')")
[ "$got" = "platform.impersonate_tenant:,platform.support_session_refused:already redeemed" ] ||
	fail "unexpected audit events: $got"
[ "$(q -c "SELECT count(*) FROM tenant_guard.support_grants WHERE redeemed_at IS NOT NULL")" = 1 ] ||
	fail "the grant is not redeemed exactly once"
echo "ok: one of two concurrent redemptions won, the other was refused; both audited"
