#!/bin/bash
# Crash recovery under audited write load. Four application clients
# (test/crash/crash_load.py, psycopg) write to a protected, audited table with
# an encrypted column for 20 tenants, single rows and batches, some
# transactions rolled back on purpose, keeping a ledger of what COMMIT
# acknowledged. Three times per run the server is killed hard while they
# write: kill -9 of the postmaster, kill -9 of one backend (the postmaster
# then resets every backend), and pg_ctl stop -m immediate; it is restarted
# and the clients reconnect. After each round:
#  - verify_audit() passes and no seal number is used twice (the seal head in
#    shared memory is rebuilt from the table);
#  - every row the clients saw committed is in the table with exactly one
#    INSERT record in the audit trail; no row and no record exists for a
#    transaction rolled back or cut before COMMIT; a transaction whose COMMIT
#    was cut by the crash has both or neither;
#  - every UPDATE a committed transaction made has exactly its record;
#  - every committed encrypted value decrypts;
#  - support sessions in flight (two agents) and key rotations in flight
#    (an administrator) are consistent with their ledgers
#    (crash_load.py check): no grant half redeemed, a used token is refused
#    after the crash, a redemption cut before it committed is still
#    redeemable once, every grant has exactly the audit events of its state;
#    key versions 1..n, one active, each made by exactly one key event.
# Then a crash in the middle of rotate_key(), purge_tenant(), purge_audit()
# and rewrap_keys(): each leaves no trace (key versions and their wrapping,
# key events, tenant state and rows, certificates, the purged partition and
# the purge event are as before), and each completes when run again; after the
# re-wrap every value decrypts under the new master key alone. Needs the
# extension installed (scripts/test.sh) and python3-psycopg.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
. "$ROOT/scripts/lib.sh"
/usr/bin/python3 -c 'import psycopg' 2>/dev/null || TG_PACKAGES="python3-psycopg" tg_install_deps
ROUND_SECONDS=${TG_CRASH_SECONDS:-8}

W=$(mktemp -d /tmp/tg_crash.XXXXXX)
chmod 755 "$W"
BIN=$(pg_config --bindir)
trap 'tg_stop_cluster "$W/pg"; [ -n "${KEEP_TEST_DIR:-}" ] || rm -rf "$W"' EXIT
mkdir -p "$W/fixtures" "$W/ledger"
/usr/bin/python3 "$ROOT/test/fixtures/make_fixtures.py" "$W/fixtures" >/dev/null
[ "$(id -u)" -ne 0 ] || chown -R postgres:postgres "$W/fixtures"
. "$W/fixtures/tokens.env"
# Only the socket in $W: a killed postmaster frees its TCP port, and another
# cluster starting meanwhile (ctest -j2, other users) could take it.
tg_start_cluster "$W/pg" "shared_preload_libraries = 'tenant_guard'" \
	"tenant_guard.master_key_file = '$MASTER_KEY_FILE'" "restart_after_crash = on" "listen_addresses = ''" \
	"max_prepared_transactions = 4" >/dev/null
DATA=$W/pg/data
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
fail() { echo "FAIL: $*"; tail -30 "$W/pg/server.log"; exit 1; }

q >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION tenant_guard;
-- History from January 2020, as the trigger writes it: one record, seal 1
-- (purge_audit() will have a partition to drop)
DO $$
DECLARE
    at timestamptz := '2020-01-15 12:00:00+00';
    zero bytea := decode(repeat('00', 32), 'hex');
    rid bigint := nextval('tenant_guard.audit_log_id_seq');
    h bytea;
BEGIN
    PERFORM tenant_guard._audit_partition_for(at);
    h := tenant_guard._audit_hash(rid, at, at, 1000, NULL, 'event', 1, 'legacy.import', NULL, 'importer', NULL,
                                  NULL, 'postgres', 'postgres', NULL, 0, NULL, '{}', zero, 1, zero);
    INSERT INTO tenant_guard.audit_log VALUES (rid, at, at, 1000, NULL, 'event', 1, 'legacy.import', NULL,
        'importer', NULL, NULL, 'postgres', 'postgres', NULL, 0, NULL, '{}', zero, 1, zero, h);
END
$$;
CREATE ROLE regress_crash_app LOGIN;
ALTER ROLE regress_crash_app SET tenant_guard.context_source = 'setting';
SELECT tenant_guard.register_app_role('regress_crash_app');
CREATE SCHEMA crash;
GRANT USAGE ON SCHEMA crash TO regress_crash_app;
CREATE TABLE crash.items (client int, seq int, org_id uuid NOT NULL, body text, secret bytea,
                          PRIMARY KEY (client, seq));
SELECT tenant_guard.protect('crash.items');
SELECT tenant_guard.enable_audit('crash.items');
GRANT SELECT, INSERT, UPDATE ON crash.items TO regress_crash_app;
-- the support agents: issue, redeem, write in the session
CREATE ROLE regress_crash_agent LOGIN;
GRANT tenant_guard_support, regress_crash_app TO regress_crash_agent;
SQL
export CRASH_DSN="host=$PGHOST port=$PGPORT dbname=postgres user=regress_crash_app"
export CRASH_AGENT_DSN="host=$PGHOST port=$PGPORT dbname=postgres user=regress_crash_agent"
export CRASH_ADMIN_DSN="host=$PGHOST port=$PGPORT dbname=postgres user=postgres"

start_server() {  # after a kill the old backends may still be exiting: retry
	local i
	for i in $(seq 1 50); do
		tg_as_server "$BIN/pg_ctl" -D "$DATA" -l "$W/pg/server.log" -w -s start >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	fail "the server did not restart"
}
wait_ready() {
	local i
	for i in $(seq 1 100); do q -c 'SELECT 1' >/dev/null 2>&1 && return 0; sleep 0.2; done
	fail "the server did not come back"
}
crash() {  # crash METHOD
	case $1 in
	postmaster)
		kill -9 "$(head -1 "$DATA/postmaster.pid")"
		start_server ;;
	backend)
		local pid
		pid=$(q -c "SELECT pid FROM pg_stat_activity WHERE usename = 'regress_crash_app' LIMIT 1")
		[ -n "$pid" ] || pid=$(q -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'")
		kill -9 "$pid" ;;
	immediate)
		tg_as_server "$BIN/pg_ctl" -D "$DATA" -m immediate -w -s stop >/dev/null
		start_server ;;
	esac
	wait_ready
}

check() {  # check ROUND: the database against the ledgers so far
	local r
	r=$(q -c "SELECT ok FROM tenant_guard.verify_audit()")
	[ "$r" = t ] || fail "round $1: verify_audit() says $(q -c "SELECT problem FROM tenant_guard.verify_audit()")"
	r=$(q -c "SELECT count(*) FROM (SELECT seal_seq FROM tenant_guard.audit_log WHERE seal_seq IS NOT NULL
	                                 GROUP BY 1 HAVING count(*) > 1) d")
	[ "$r" = 0 ] || fail "round $1: $r seal numbers used twice"
	q -c "SELECT client || ':' || seq FROM crash.items" | sort >"$W/rows.txt"
	q -c "SELECT (row_pk->>'client') || ':' || (row_pk->>'seq') FROM tenant_guard.audit_trail
	      WHERE table_name = 'crash.items' AND kind = 'row' AND action = 'INSERT'" | sort >"$W/inserts.txt"
	[ -z "$(uniq -d "$W/inserts.txt")" ] || fail "round $1: a row has more than one INSERT record"
	# every UPDATE a committed transaction made (one '+' appended to the body)
	# has exactly its record, and no other UPDATE record exists
	q -c "SELECT client || ':' || seq || ' ' || (length(body) - length(replace(body, '+', ''))) FROM crash.items
	      WHERE body LIKE '%+%'" | sort >"$W/updated.txt"
	q -c "SELECT k || ' ' || count(*) FROM (SELECT (row_pk->>'client') || ':' || (row_pk->>'seq') AS k
	      FROM tenant_guard.audit_trail WHERE table_name = 'crash.items' AND kind = 'row' AND action = 'UPDATE') u
	      GROUP BY k" | sort >"$W/updates.txt"
	cmp -s "$W/updated.txt" "$W/updates.txt" ||
		fail "round $1: the rows' updates and the UPDATE records differ: $(diff "$W/updated.txt" "$W/updates.txt" | head -5)"
	/usr/bin/python3 - "$W/ledger" "$W/rows.txt" "$W/inserts.txt" "$1" <<'PY' || fail "round $1: the ledger and the database disagree"
import glob, json, sys
ledger, stats = {}, {"committed": 0, "rolled_back": 0, "uncertain": 0, "reconnects": 0}
for f in glob.glob(sys.argv[1] + "/client*.json"):
    d = json.load(open(f))
    ledger.update(d["ledger"])
    for k, v in d["stats"].items():
        stats[k] += v
rows = set(open(sys.argv[2]).read().split())
inserts = set(open(sys.argv[3]).read().split())
bad = []
for key, entry in ledger.items():
    outcome = entry[0]
    r, a = key in rows, key in inserts
    if outcome == "committed" and not (r and a):
        bad.append("committed %s: row %s, record %s" % (key, r, a))
    elif outcome == "rolled_back" and (r or a):
        bad.append("rolled back %s: row %s, record %s" % (key, r, a))
    elif outcome == "uncertain" and r != a:
        bad.append("uncertain %s: row %s, record %s" % (key, r, a))
unknown = (rows | inserts) - set(ledger)
if unknown:
    bad.append("%d rows or records no client wrote, e.g. %s" % (len(unknown), sorted(unknown)[:3]))
for b in bad[:10]:
    print("  " + b)
n = {o: sum(1 for v in ledger.values() if v[0] == o) for o in ("committed", "rolled_back", "uncertain")}
print("round %s: %d rows committed, %d rolled back, %d cut at COMMIT (%d transactions committed, %d rolled back, "
      "%d cut; %d reconnects); %d rows and %d INSERT records in the database"
      % (sys.argv[4], n["committed"], n["rolled_back"], n["uncertain"], stats["committed"], stats["rolled_back"],
         stats["uncertain"], stats["reconnects"], len(rows), len(inserts)))
sys.exit(1 if bad else 0)
PY
	# every committed encrypted value decrypts, in its tenant's context
	r=$(decrypt_failures)
	[ "$r" = 0 ] || fail "round $1: encrypted values of $r tenants do not decrypt"
	# support grants and tenant keys against the agents' and the rotator's ledgers
	/usr/bin/python3 "$HERE/crash_load.py" check "$W/ledger" || fail "round $1: support sessions or keys are inconsistent"
}
decrypt_failures() {  # how many tenants have a committed encrypted value that does not decrypt
	q -c "SELECT count(*) FROM (SELECT DISTINCT org_id FROM crash.items) o,
	          LATERAL (SELECT set_config('tenant_guard.context_source', 'setting', false),
	                          set_config('tenant_guard.org_id', o.org_id::text, false)) s,
	          LATERAL (SELECT count(*) FILTER (WHERE tenant_guard.decrypt_text(i.secret, 'crash.items.secret')
	                                                 IS DISTINCT FROM 'secret v' || i.seq) AS bad
	                   FROM crash.items i WHERE i.org_id = o.org_id AND i.secret IS NOT NULL) d
	          WHERE d.bad > 0"
}

round=0
for method in postmaster backend immediate; do
	round=$((round + 1))
	CRASH_CLIENT_BASE=$((round * 100)) /usr/bin/python3 "$HERE/crash_load.py" "$W/ledger" "$ROUND_SECONDS" 4 &
	load=$!
	sleep $((ROUND_SECONDS / 2))
	crash "$method"
	wait "$load" || fail "the load of round $round failed"
	check "$round"
	echo "ok: round $round, $method killed under load: committed = recorded, rolled back = absent, chain verifies"
done

# A backend killed after it took its seal numbers and before its commit was
# written, while other backends went on sealing: their seals link to hashes of
# seals that never committed. The table state such a crash leaves is made
# exactly (a transaction with rows of three tenants, so three seal numbers,
# then one of one tenant; the first one's rows, records and seals removed
# with the log's triggers off, as only a lost commit leaves them),
# the server is stopped hard and restarted, and the first audited commit after
# the restart writes the lost numbers as VOID seals: the chain verifies again.
S1=10000011-0000-4000-8000-000000000011 S2=10000012-0000-4000-8000-000000000012 S3=10000013-0000-4000-8000-000000000013
s0=$(q -c "SELECT coalesce(max(seal_seq), 0) FROM tenant_guard.audit_log")
q -c "INSERT INTO crash.items (client, seq, org_id, body) VALUES (9001, 1, '$S1', 'lost'), (9001, 2, '$S2', 'lost'),
      (9001, 3, '$S3', 'lost')" >/dev/null
q -c "INSERT INTO crash.items (client, seq, org_id, body) VALUES (9002, 1, '$S1', 'kept')" >/dev/null
lost=$(q -c "SELECT string_agg(seal_seq::text, ',' ORDER BY seal_seq) FROM tenant_guard.audit_log
             WHERE seal_seq > $s0 AND xid = (SELECT xid FROM tenant_guard.audit_log WHERE seal_seq = $s0 + 1)")
[ "$lost" = "$((s0 + 1)),$((s0 + 2)),$((s0 + 3))" ] || fail "the three-tenant transaction took seals $lost, not three after $s0"
q -c "BEGIN" -c "SET LOCAL session_replication_role = replica" \
  -c "DELETE FROM tenant_guard.audit_log WHERE xid = (SELECT xid FROM tenant_guard.audit_log WHERE seal_seq = $s0 + 1)" \
  -c "DELETE FROM crash.items WHERE client = 9001" -c "COMMIT" >/dev/null
[ "$(q -c "SELECT ok FROM tenant_guard.verify_audit()")" = f ] || fail "verify_audit() did not see the lost seals"
crash immediate
q -c "INSERT INTO crash.items (client, seq, org_id, body) VALUES (9002, 2, '$S2', 'after')" >/dev/null
[ "$(q -c "SELECT ok FROM tenant_guard.verify_audit()")" = t ] ||
	fail "after the restart, verify_audit() says $(q -c "SELECT problem FROM tenant_guard.verify_audit()")"
[ "$(q -c "SELECT string_agg(seal_seq::text, ',' ORDER BY seal_seq) FROM tenant_guard.audit_log
           WHERE seal_seq > $s0 AND action = 'VOID' AND detail->>'reason' LIKE '%ended in a crash'")" = "$lost" ] ||
	fail "the lost seal numbers $lost are not exactly the VOID seals of the crash"
q -c "DELETE FROM crash.items WHERE client = 9002" >/dev/null
echo "ok: seal numbers a crash took from their transaction become VOID seals at the first commit after the restart"

# Two-phase commit across a restart: a transaction that wrote audit records
# and was prepared holds seal numbers that the restarted server cannot see
# until it is resolved. The first audited commit after the restart is refused
# while it is pending; once it is committed (or rolled back) sealing goes on,
# no seal number is used twice and the chain verifies.
for outcome in COMMIT ROLLBACK; do
	q -c "BEGIN" -c "INSERT INTO crash.items (client, seq, org_id, body) VALUES (9003, 1, '$S1', 'prepared'),
	      (9003, 2, '$S2', 'prepared')" -c "PREPARE TRANSACTION 'tg_crash_$outcome'" >/dev/null
	crash immediate
	if out=$(q -c "INSERT INTO crash.items (client, seq, org_id, body) VALUES (9004, 1, '$S3', 'after')" 2>&1); then
		fail "an audited commit was sealed while a prepared transaction holding seal numbers was pending"
	fi
	case $out in
	*"prepared transaction that wrote some is pending"*) ;;
	*) fail "an audited commit with a prepared writer pending failed otherwise: $out" ;;
	esac
	q -c "$outcome PREPARED 'tg_crash_$outcome'" >/dev/null
	q -c "INSERT INTO crash.items (client, seq, org_id, body) VALUES (9004, 1, '$S3', 'after')" >/dev/null
	[ "$(q -c "SELECT ok FROM tenant_guard.verify_audit()")" = t ] ||
		fail "after $outcome PREPARED, verify_audit() says $(q -c "SELECT problem FROM tenant_guard.verify_audit()")"
	[ "$(q -c "SELECT count(*) FROM (SELECT seal_seq FROM tenant_guard.audit_log WHERE seal_seq IS NOT NULL
	                                 GROUP BY 1 HAVING count(*) > 1) d")" = 0 ] || fail "after $outcome PREPARED: a seal number used twice"
	[ "$(q -c "SELECT count(*) FROM crash.items WHERE client = 9003")" = "$([ $outcome = COMMIT ] && echo 2 || echo 0)" ] ||
		fail "the prepared rows after $outcome PREPARED"
	q -c "DELETE FROM crash.items WHERE client IN (9003, 9004)" >/dev/null
	echo "ok: a prepared audited transaction pending across a restart: sealing waits for it; after $outcome PREPARED the chain verifies"
done

# A crash in the middle of a maintenance transaction leaves no trace.
ORG=10000003-0000-4000-8000-000000000003
q -c "SELECT tenant_guard.register_tenant('$ORG', 'three')" >/dev/null
mid_crash() {  # mid_crash LABEL SQL: runs SQL, then holds its transaction open while the server is killed
	( psql -X -q -c "BEGIN" -c "$2" -c "SELECT pg_sleep(60)" -c "COMMIT" >/dev/null 2>&1 || true ) &
	local i
	for i in $(seq 1 100); do
		[ "$(q -c "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(60)%'")" = 1 ] && break
		sleep 0.1
	done
	kill -9 "$(head -1 "$DATA/postmaster.pid")"
	start_server
	wait_ready
	wait
}
state() {
	q -c "SELECT (SELECT string_agg(org_id || ':' || version || ':' || state || ':' || encode(kek_id, 'hex'), ','
	                         ORDER BY org_id, version)
	              FROM tenant_guard.tenant_keys) || '|' ||
	             (SELECT count(*) FROM tenant_guard.key_events) || '|' ||
	             (SELECT status FROM tenant_guard.tenants WHERE org_id = '$ORG') || '|' ||
	             (SELECT count(*) FROM crash.items WHERE org_id = '$ORG') || '|' ||
	             (SELECT count(*) FROM tenant_guard.purge_certificates) || '|' ||
	             (SELECT count(*) FROM pg_inherits WHERE inhparent = 'tenant_guard.audit_log'::regclass) || '|' ||
	             (SELECT count(*) FROM tenant_guard.audit_log WHERE action = 'tenant_guard.audit_purge')"
}
for op in "rotate_key:SELECT tenant_guard.rotate_key('$ORG')" \
          "archive and purge_tenant:SELECT tenant_guard.archive_tenant('$ORG'), tenant_guard.purge_tenant('$ORG', '$ORG')" \
          "purge_audit:SELECT count(*) FROM tenant_guard.purge_audit()" \
          "rewrap_keys:SET tenant_guard.master_key_file = '$MASTER_KEY2_FILE';
                       SET tenant_guard.previous_master_key_file = '$MASTER_KEY_FILE';
                       SELECT tenant_guard.rewrap_keys()"; do
	label=${op%%:*}
	sql=${op#*:}
	before=$(state)
	mid_crash "$label" "$sql"
	after=$(state)
	[ "$before" = "$after" ] || fail "a crash in the middle of $label left a trace: $before -> $after"
	[ "$(q -c "SELECT ok FROM tenant_guard.verify_audit()")" = t ] || fail "verify_audit() after a crash in $label"
	q -c "$sql" >/dev/null || fail "$label did not complete when run again"
	[ "$(state)" != "$before" ] || fail "$label changed nothing when run again"
	[ "$(q -c "SELECT ok FROM tenant_guard.verify_audit()")" = t ] || fail "verify_audit() after $label"
	echo "ok: a crash in the middle of $label left no trace; run again, it completed"
done
# rewrap_keys() re-wrapped every tenant key: with the new master key alone,
# every committed value still decrypts
q -c "ALTER SYSTEM SET tenant_guard.master_key_file = '$MASTER_KEY2_FILE'" -c "SELECT pg_reload_conf()" >/dev/null
[ "$(q -c "SELECT count(DISTINCT kek_id) FROM tenant_guard.tenant_keys WHERE state <> 'shredded'")" = 1 ] ||
	fail "rewrap_keys() left keys wrapped by different master keys"
r=$(decrypt_failures)
[ "$r" = 0 ] || fail "after rewrap_keys(), encrypted values of $r tenants do not decrypt under the new master key"
echo "ok: after rewrap_keys(), every committed value decrypts under the new master key alone"
