#!/bin/bash
# Hot standby: a streaming replica (pg_basebackup -R) of a primary with
# protected, audited and encrypted tables, both with tenant_guard preloaded
# and the same key files. Proves, on the standby:
#  1. reads are isolated exactly as on the primary, in the claims, setting and
#     signed modes, with parallel query forced too;
#  2. set_context() and decrypt() work;
#  3. everything that must write (an audited write, audit_event(), support
#     grants and redemption, key rotation, shredding and re-wrapping, tenant
#     registration, archive and purge, a purge of the audit log, a secret)
#     fails with SQLSTATE 25006 and leaves nothing behind;
#  4. the primary's audit chain replicates and verifies on the standby;
# and, after the standby is promoted, that it continues the seal chain
# without a fork: new records verify together with the replicated ones.
# Needs the extension installed (scripts/test.sh).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/scripts/lib.sh"

W=$(mktemp -d /tmp/tg_standby.XXXXXX)
chmod 755 "$W"
BIN=$(pg_config --bindir)
cleanup() {
	tg_as_server "$BIN/pg_ctl" -D "$W/standby" -m immediate -w -s stop >/dev/null 2>&1 || true
	tg_stop_cluster "$W/pg"
	[ -n "${KEEP_TEST_DIR:-}" ] || rm -rf "$W"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; tail -20 "$W/standby/server.log" 2>/dev/null || true; exit 1; }

mkdir -p "$W/fixtures"
/usr/bin/python3 "$ROOT/test/fixtures/make_fixtures.py" "$W/fixtures" >/dev/null
[ "$(id -u)" -ne 0 ] || chown -R postgres:postgres "$W/fixtures"
. "$W/fixtures/tokens.env"
tg_start_cluster "$W/pg" "shared_preload_libraries = 'tenant_guard'" \
	"tenant_guard.master_key_file = '$MASTER_KEY_FILE'" "tenant_guard.jwt_secret_file = '$HS_SECRET_FILE'" \
	"tenant_guard.jwt_audience = 'tenant-app'" "max_parallel_workers_per_gather = 2" >/dev/null
PRIMARY_PORT=$PGPORT
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

q >/dev/null <<SQL
SET client_min_messages = warning;
CREATE EXTENSION tenant_guard;
CREATE ROLE regress_hs_app LOGIN;
CREATE ROLE regress_hs_platform LOGIN;
CREATE ROLE regress_hs_app_setting LOGIN;
ALTER ROLE regress_hs_app_setting SET tenant_guard.context_source = 'setting';
GRANT tenant_guard_support TO regress_hs_platform;
SELECT tenant_guard.register_app_role('regress_hs_app');
SELECT tenant_guard.register_app_role('regress_hs_app_setting');
CREATE TABLE docs (id int PRIMARY KEY, org_id uuid NOT NULL, body text, secret bytea);
SELECT tenant_guard.protect('docs');
SELECT tenant_guard.enable_audit('docs');
GRANT SELECT, INSERT, UPDATE, DELETE ON docs TO regress_hs_app, regress_hs_app_setting;
SET tenant_guard.context_source = 'setting';
SET tenant_guard.org_id = '$ORG_A';
INSERT INTO docs SELECT g, '$ORG_A', 'a' || g, tenant_guard.encrypt_text('secret a' || g, 'docs.secret')
FROM generate_series(1, 3000) g;
SET tenant_guard.org_id = '$ORG_B';
INSERT INTO docs SELECT g, '$ORG_B', 'b' || g, tenant_guard.encrypt_text('secret b' || g, 'docs.secret')
FROM generate_series(3001, 5000) g;
RESET tenant_guard.org_id;
SELECT tenant_guard.register_tenant('$ORG_A', 'A');
SELECT tenant_guard.register_tenant('$ORG_B', 'B');
ANALYZE docs;
SQL
grant=$(q -c "SELECT tenant_guard.issue_support_grant('$ORG_A', 'agent@platform', 'standby test')")

# the standby
mkdir -p "$W/standby"
[ "$(id -u)" -ne 0 ] || chown postgres:postgres "$W/standby"
chmod 700 "$W/standby"
tg_as_server "$BIN/pg_basebackup" -h "$PGHOST" -p "$PRIMARY_PORT" -U postgres -D "$W/standby" -R -X stream -c fast
STANDBY_PORT=$(tg_free_port $((PRIMARY_PORT + 1)))
echo "port = $STANDBY_PORT" | tg_as_server tee "$W/standby/port.conf" >/dev/null
tg_as_server "$BIN/pg_ctl" -D "$W/standby" -l "$W/standby/server.log" -w -s start || fail "the standby did not start"
S=(-p "$STANDBY_PORT")
# wait until the standby has replayed everything so far
lsn=$(q -c "SELECT pg_current_wal_lsn()")
for _ in $(seq 1 100); do
	[ "$(q "${S[@]}" -c "SELECT pg_last_wal_replay_lsn() >= '$lsn'")" = t ] && break
	sleep 0.1
done
[ "$(q "${S[@]}" -c "SELECT pg_is_in_recovery()")" = t ] || fail "the standby is not in recovery"

# 1 + 2. the same answers on both, per mode and tenant; parallel plans forced on the standby
reads() {  # reads PORT: one line per mode and tenant
	q -p "$1" -U regress_hs_app <<SQL
SET max_parallel_workers_per_gather = 2; SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SELECT 'claims none ' || count(*) FROM docs;
BEGIN;
SELECT set_config('request.jwt.claims', '{"org_id": "$ORG_A"}', true) IS NULL;
SELECT 'claims a ' || count(*) || ' ' || count(*) FILTER (WHERE org_id <> '$ORG_A') || ' ' || sum(id) FROM docs;
COMMIT;
SQL
	# signed: the token as a bind parameter (COPY into context_input is refused during recovery)
	PORT=$1 TOK=$TOK_HS_B HOST=$PGHOST /usr/bin/python3 - <<'PY'
import os, psycopg
with psycopg.connect(host=os.environ["HOST"], port=os.environ["PORT"], dbname="postgres", user="regress_hs_app",
                     autocommit=True) as c:
    for s in ("SET max_parallel_workers_per_gather = 2", "SET parallel_setup_cost = 0", "SET parallel_tuple_cost = 0",
              "SET min_parallel_table_scan_size = 0"):
        c.execute(s)
    with c.transaction():
        c.execute("SELECT tenant_guard.set_context(%s)", (os.environ["TOK"],))
        org = "22222222-2222-4222-8222-222222222222"
        n, other, total = c.execute("SELECT count(*), count(*) FILTER (WHERE org_id <> %s), sum(id) FROM docs",
                                    (org,)).fetchone()
        print("signed b %d %d %d" % (n, other, total))
        d = c.execute("SELECT count(*) FILTER (WHERE tenant_guard.decrypt_text(secret, 'docs.secret') = 'secret b' || id) "
                      "FROM docs").fetchone()[0]
        print("decrypt b %d" % d)
PY
	q -p "$1" -U regress_hs_app_setting <<SQL
SET max_parallel_workers_per_gather = 2; SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
BEGIN; SET LOCAL tenant_guard.org_id = '$ORG_B';
SELECT 'setting b ' || count(*) || ' ' || count(*) FILTER (WHERE org_id <> '$ORG_B') || ' ' || sum(id) FROM docs;
COMMIT;
SQL
}
a=$(reads "$PRIMARY_PORT" | grep -v '^[tf]$')
b=$(reads "$STANDBY_PORT" | grep -v '^[tf]$')
[ "$a" = "$b" ] || fail "the standby answers differently: primary [$a] standby [$b]"
grep -q '^claims none 0$' <<<"$b" || fail "no context saw rows on the standby: $b"
grep -q '^claims a 3000 0 ' <<<"$b" || fail "tenant A on the standby: $b"
grep -q '^signed b 2000 0 ' <<<"$b" || fail "tenant B (signed) on the standby: $b"
grep -q '^decrypt b 2000$' <<<"$b" || fail "decrypt on the standby: $b"
grep -q '^setting b 2000 0 ' <<<"$b" || fail "tenant B (setting) on the standby: $b"
plan=$(q "${S[@]}" -U regress_hs_app -c "SET parallel_setup_cost = 0" -c "SET parallel_tuple_cost = 0" \
	-c "SET min_parallel_table_scan_size = 0" -c "EXPLAIN (COSTS OFF) SELECT count(*) FROM docs")
grep -q 'Gather' <<<"$plan" || fail "no parallel plan on the standby: $plan"
echo "ok: reads on the standby are isolated exactly as on the primary (claims, setting, signed, no context; parallel plans), decrypt works"

# 3. writes are refused with 25006 and leave nothing behind
standby_state() {
	q "${S[@]}" -c "SELECT count(*) || '/' || (SELECT count(*) FROM tenant_guard.support_grants) || '/' ||
	                       (SELECT count(*) FROM tenant_guard.support_grants WHERE redeemed_at IS NOT NULL) || '/' ||
	                       (SELECT string_agg(org_id || ':' || version || ':' || state || ':' || encode(kek_id, 'hex'), ','
	                                          ORDER BY org_id, version) FROM tenant_guard.tenant_keys) || '/' ||
	                       (SELECT string_agg(org_id || ':' || status, ',' ORDER BY org_id) FROM tenant_guard.tenants) || '/' ||
	                       (SELECT count(*) FROM tenant_guard.secrets) FROM tenant_guard.audit_log"
}
before=$(standby_state)
refused() {  # refused LABEL SQL [psql options]: must fail with 25006
	local label=$1 sql=$2; shift 2
	local out
	out=$(psql -X -q -At -v ON_ERROR_STOP=1 -v VERBOSITY=verbose "${S[@]}" "$@" -c "$sql" 2>&1) && fail "$label was not refused on the standby"
	grep -q 'ERROR:  25006' <<<"$out" || fail "$label on the standby: not SQLSTATE 25006: $out"
}
refused "an audited write" "BEGIN; SET LOCAL tenant_guard.context_source = 'setting'; SET LOCAL tenant_guard.org_id = '$ORG_A'; INSERT INTO docs VALUES (9999, '$ORG_A', 'x'); COMMIT;"
refused "audit_event()" "SELECT tenant_guard.audit_event('standby.event')"
refused "support redemption" "CALL tenant_guard.begin_support_session('$grant')" -U regress_hs_platform
refused "rotate_key()" "SELECT tenant_guard.rotate_key('$ORG_A')"
refused "archive_tenant()" "SELECT tenant_guard.archive_tenant('$ORG_B')"
refused "purge_tenant()" "SELECT tenant_guard.purge_tenant('$ORG_B', '$ORG_B')"
refused "purge_audit()" "SELECT * FROM tenant_guard.purge_audit()"
refused "issue_support_grant()" "SELECT tenant_guard.issue_support_grant('$ORG_A', 'agent@standby', 'standby test')" -U regress_hs_platform
refused "shred_keys()" "SELECT tenant_guard.shred_keys('$ORG_B')"
refused "rewrap_keys() with keys to re-wrap" "SET tenant_guard.master_key_file = '$MASTER_KEY2_FILE'; SET tenant_guard.previous_master_key_file = '$MASTER_KEY_FILE'; SELECT tenant_guard.rewrap_keys()"
refused "register_tenant()" "SELECT tenant_guard.register_tenant('44444444-4444-4444-8444-444444444444', 'new')"
refused "put_secret()" "SET tenant_guard.context_source = 'setting'; SET tenant_guard.org_id = '$ORG_A'; SELECT tenant_guard.put_secret('s', 'v')"
refused "encrypt() for a tenant with no key yet" "SET tenant_guard.context_source = 'setting'; SET tenant_guard.org_id = '33333333-3333-4333-8333-333333333333'; SELECT tenant_guard.encrypt_text('x', 'c')"
after=$(standby_state)
[ "$before" = "$after" ] || fail "a refused write left something behind: $before -> $after"
echo "ok: writes on the standby are refused with 25006 and leave nothing behind"

# 4. the chain replicates and verifies on the standby
[ "$(q "${S[@]}" -c "SELECT ok FROM tenant_guard.verify_audit()")" = t ] || fail "verify_audit() on the standby"
echo "ok: the primary's audit chain verifies on the standby"

# promotion: the promoted standby continues the chain without a fork
seals=$(q -c "SELECT max(seal_seq) FROM tenant_guard.audit_log")
tg_stop_cluster "$W/pg"
tg_as_server "$BIN/pg_ctl" -D "$W/standby" -w -s promote || fail "promotion failed"
q "${S[@]}" -c "SET tenant_guard.context_source = 'setting'" -c "SET tenant_guard.org_id = '$ORG_A'" \
	-c "INSERT INTO docs VALUES (9001, '$ORG_A', 'after promotion')" \
	-c "SELECT tenant_guard.audit_event('after.promotion')" >/dev/null
r=$(q "${S[@]}" -c "SELECT ok, records FROM tenant_guard.verify_audit()" | tr '|' ' ')
[ "${r%% *}" = t ] || fail "verify_audit() after promotion: $r"
next=$(q "${S[@]}" -c "SELECT min(seal_seq) FROM tenant_guard.audit_log WHERE seal_seq > $seals")
[ "$next" = $((seals + 1)) ] || fail "the promoted server's first seal is $next, expected $((seals + 1))"
dups=$(q "${S[@]}" -c "SELECT count(*) FROM (SELECT seal_seq FROM tenant_guard.audit_log WHERE seal_seq IS NOT NULL GROUP BY 1 HAVING count(*) > 1) d")
[ "$dups" = 0 ] || fail "$dups seal numbers are used twice after promotion"
echo "ok: the promoted standby continues the seal chain at $next without a fork; verify_audit() passes ($r)"
