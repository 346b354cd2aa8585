#!/bin/bash
# Concurrent writers of ONE tenant (docs/audit.md): several pgbench clients
# update, insert and roll back savepoints on an audited table at the same
# time, in READ COMMITTED and in REPEATABLE READ, on a cluster of its own
# (without shared_preload_libraries: auditing needs no preloading). Then:
#   1. verify_audit() passes;
#   2. the number of recorded row changes equals the number of committed changes
#      (counted independently from the table itself), and no record of a
#      rolled-back savepoint exists;
#   3. the seals form one gapless chain (one seal per transaction and tenant).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/scripts/lib.sh"

W=$(mktemp -d /tmp/tg_audit_conc.XXXXXX)
chmod 755 "$W"
trap 'tg_stop_cluster "$W/pg"; rm -rf "$W"' EXIT
tg_start_cluster "$W/pg" >/dev/null
PGBENCH=$(pg_config --bindir)/pgbench
ORG=0a0a0a0a-0000-4000-8000-00000000000a
CLIENTS=6
TX=150
fail() { echo "FAIL: $*"; tail -20 "$W/pg/server.log"; exit 1; }
q() { psql -X -At -v ON_ERROR_STOP=1 "$@"; }

q -q >/dev/null 2>"$W/setup.log" <<SQL || { cat "$W/setup.log"; fail "setup"; }
CREATE EXTENSION tenant_guard;
CREATE TABLE counters (id int PRIMARY KEY, org_id uuid NOT NULL, n int NOT NULL DEFAULT 0, note text);
CREATE TABLE items (id bigserial PRIMARY KEY, org_id uuid NOT NULL, client int, note text);
SELECT tenant_guard.protect('counters');
SELECT tenant_guard.protect('items');
SELECT tenant_guard.enable_audit('counters');
SELECT tenant_guard.enable_audit('items');
INSERT INTO counters (id, org_id) SELECT g, '$ORG' FROM generate_series(1, 10) g;
SQL

cat >"$W/update.pgbench" <<'EOF'
\set id random(1, 10)
BEGIN;
UPDATE counters SET n = n + 1, note = 'client ' || :client_id WHERE id = :id;
INSERT INTO items (org_id, client, note) VALUES (current_setting('tenant_guard.org_id')::uuid, :client_id, 'kept');
SAVEPOINT s;
INSERT INTO items (org_id, client, note) VALUES (current_setting('tenant_guard.org_id')::uuid, :client_id, 'rolled back');
ROLLBACK TO SAVEPOINT s;
END;
EOF
cat >"$W/insert.pgbench" <<'EOF'
INSERT INTO items (org_id, client, note)
SELECT current_setting('tenant_guard.org_id')::uuid, -:client_id, 'rr ' || g FROM generate_series(1, 3) g;
EOF

ctx="-c tenant_guard.context_source=setting -c tenant_guard.org_id=$ORG -c tenant_guard.user_id=bench"
PGOPTIONS="$ctx" "$PGBENCH" -n -c "$CLIENTS" -j 2 -t "$TX" -f "$W/update.pgbench" >"$W/rc.log" 2>&1 &
p1=$!
PGOPTIONS="$ctx -c default_transaction_isolation=repeatable\\ read" \
	"$PGBENCH" -n -c 3 -j 1 -t "$TX" -f "$W/insert.pgbench" >"$W/rr.log" 2>&1 &
p2=$!
wait "$p1" || { cat "$W/rc.log"; fail "pgbench (read committed) failed"; }
wait "$p2" || { cat "$W/rr.log"; fail "pgbench (repeatable read) failed"; }
grep -q "number of failed transactions: 0" "$W/rc.log" || { cat "$W/rc.log"; fail "read committed transactions failed"; }
grep -q "number of failed transactions: 0" "$W/rr.log" || { cat "$W/rr.log"; fail "repeatable read transactions failed"; }

# 1. the chains verify
got=$(q -c "SELECT ok::text || ' ' || coalesce(problem, '') FROM tenant_guard.verify_audit()")
[ "$got" = "true " ] || fail "verify_audit() after concurrent writers: $got"
echo "ok: verify_audit() passes after $((CLIENTS + 3)) concurrent clients"

# 2. one row change recorded per committed change (three per statement in
#    the repeatable-read clients), none for rolled-back savepoints
updates=$(q -c "SELECT sum(n) FROM counters")
items=$(q -c "SELECT count(*) FROM items")
[ "$updates" -eq $((CLIENTS * TX)) ] || fail "expected $((CLIENTS * TX)) committed updates, table says $updates"
rec_updates=$(q -c "SELECT count(*) FROM tenant_guard.audit_trail WHERE kind = 'row' AND table_name = 'public.counters' AND action = 'UPDATE'")
rec_items=$(q -c "SELECT count(*) FROM tenant_guard.audit_trail WHERE kind = 'row' AND table_name = 'public.items' AND action = 'INSERT'")
rec_rolled=$(q -c "SELECT count(*) FROM tenant_guard.audit_trail WHERE kind = 'row' AND new_row->>'note' = 'rolled back'")
sum_items=$(q -c "SELECT sum(row_count) FROM tenant_guard.audit_log WHERE kind = 'rows' AND table_name = 'public.items'")
[ "$rec_updates" -eq "$updates" ] || fail "$updates committed updates but $rec_updates UPDATE records"
[ "$rec_items" -eq "$items" ] || fail "$items committed inserts but $rec_items INSERT records"
[ "$sum_items" -eq "$items" ] || fail "$items committed inserts but the records count $sum_items rows"
[ "$rec_rolled" -eq 0 ] || fail "$rec_rolled records of rolled-back savepoints"
other=$(q -c "SELECT count(*) FROM tenant_guard.audit_log WHERE kind = 'rows' AND org IS DISTINCT FROM '$ORG'")
[ "$other" -eq 0 ] || fail "$other row records outside the tenant"
echo "ok: $rec_updates UPDATE and $rec_items INSERT records for as many committed changes, none rolled back"

# 3. one gapless chain of seals, one per writing transaction
got=$(q -c "SELECT count(*) = max(seal_seq) AND min(seal_seq) = 1 AND count(*) = count(DISTINCT (xid, org)) FROM tenant_guard.audit_log WHERE seal_seq IS NOT NULL")
[ "$got" = "t" ] || fail "seal chain is not gapless with one seal per transaction"
expected_seals=$((CLIENTS * TX + 3 * TX + 1))
got=$(q -c "SELECT count(*) FROM tenant_guard.audit_log WHERE seal_seq IS NOT NULL AND org = '$ORG'")
[ "$got" -eq "$expected_seals" ] || fail "expected $expected_seals seals of the tenant, found $got"
echo "ok: $got seals in one gapless chain"
echo "concurrent: 3 checks passed"
