#!/bin/bash
# The audit log survives pg_dump / pg_restore: in a database with an audited,
# protected table and some history (rows, events, registry events), a custom
# format dump restored into a fresh database
#   1. restores without error;
#   2. holds the same records (ids, hashes) and verify_audit() passes there;
#   3. wrote no new events while restoring (registry rows keep their old times);
#   4. keeps auditing: the tables are still audited (a partitioned one too,
#      with each statement trigger once), a new change continues the seal
#      chain (verify_audit() passes), and ids continue after the old ones.
# Uses the running cluster of scripts/test.sh (PGHOST, PGPORT, PGUSER).
set -euo pipefail
: "${PGHOST:?PGHOST must name the running cluster (see scripts/test.sh)}"
unset PGDATABASE PGOPTIONS
BINDIR=$(pg_config --bindir)
SRC=tg_audit_dump_src
DST=tg_audit_dump_dst
W=$(mktemp -d /tmp/tg_audit_dump.XXXXXX)
drop_dbs() { psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $SRC" -c "DROP DATABASE IF EXISTS $DST" >/dev/null 2>&1 || true; }
trap 'drop_dbs; rm -rf "$W"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
q() { psql -X -At -v ON_ERROR_STOP=1 "$@"; }

drop_dbs
q -d postgres -c "CREATE DATABASE $SRC" -c "CREATE DATABASE $DST" >/dev/null
q -d "$SRC" >/dev/null 2>"$W/setup.err" <<'SQL' || { cat "$W/setup.err"; fail "setup"; }
CREATE EXTENSION tenant_guard;
SET tenant_guard.context_source = 'setting';
SET tenant_guard.org_id = '0a0a0a0a-0000-4000-8000-00000000000a';
SET tenant_guard.user_id = 'dumper';
CREATE TABLE accounts (id int PRIMARY KEY, org_id uuid NOT NULL, name text, secret text);
SELECT tenant_guard.protect('accounts');
SELECT tenant_guard.enable_audit('accounts', redact_columns => '{secret}');
INSERT INTO accounts VALUES (1, '0a0a0a0a-0000-4000-8000-00000000000a', 'one', 's'),
                            (2, '0b0b0b0b-0000-4000-8000-00000000000b', 'two', 's');
UPDATE accounts SET name = 'uno' WHERE id = 1;
DELETE FROM accounts WHERE id = 2;
SELECT tenant_guard.audit_event('export.done', '{"rows": 2}');
-- a partitioned audited table: its partitions carry statement triggers of
-- their own, which the dump restores (the event trigger must not add them twice)
CREATE TABLE events (id int, org_id uuid NOT NULL, body text, PRIMARY KEY (id, org_id)) PARTITION BY LIST (org_id);
CREATE TABLE events_a PARTITION OF events FOR VALUES IN ('0a0a0a0a-0000-4000-8000-00000000000a');
CREATE TABLE events_b PARTITION OF events FOR VALUES IN ('0b0b0b0b-0000-4000-8000-00000000000b');
SELECT tenant_guard.protect('events');
SELECT tenant_guard.enable_audit('events');
INSERT INTO events VALUES (1, '0a0a0a0a-0000-4000-8000-00000000000a', 'x'), (2, '0b0b0b0b-0000-4000-8000-00000000000b', 'y');
-- records written as binary row images (an INSERT of 12 rows, an UPDATE of
-- 12, one of 3, a DELETE of 10), in a TimeZone of their own
SET TimeZone = 'America/New_York';
CREATE TABLE ledger (id int PRIMARY KEY, org_id uuid NOT NULL, amount numeric, at timestamptz, note text, doc jsonb);
SELECT tenant_guard.protect('ledger');
SELECT tenant_guard.enable_audit('ledger');
INSERT INTO ledger SELECT g, '0a0a0a0a-0000-4000-8000-00000000000a', g * 1.5,
                          timestamptz '2024-03-01 12:00+00' + g * interval '40 days', 'n' || g, jsonb_build_object('g', g)
FROM generate_series(1, 12) g;
UPDATE ledger SET amount = amount * 2, note = CASE WHEN id % 2 = 0 THEN NULL ELSE note END;
UPDATE ledger SET note = 'few' WHERE id <= 3;
DELETE FROM ledger WHERE id <= 10;
SQL
before=$(q -d "$SRC" -c "SELECT string_agg(id || ':' || encode(hash, 'hex'), ',' ORDER BY id) FROM tenant_guard.audit_log")
[ -n "$before" ] || fail "no records in the source"

"$BINDIR/pg_dump" -Fc -d "$SRC" -f "$W/src.dump"
"$BINDIR/pg_restore" -d "$DST" "$W/src.dump" 2>"$W/restore.err" || { cat "$W/restore.err"; fail "pg_restore exited with an error"; }
[ ! -s "$W/restore.err" ] || { cat "$W/restore.err"; fail "pg_restore printed errors"; }
echo "ok: restored without error"

after=$(q -d "$DST" -c "SELECT string_agg(id || ':' || encode(hash, 'hex'), ',' ORDER BY id) FROM tenant_guard.audit_log")
[ "$after" = "$before" ] || fail "the restored log differs (or has records the restore wrote)"
got=$(q -d "$DST" -c "SELECT ok FROM tenant_guard.verify_audit()")
[ "$got" = t ] || fail "verify_audit() after restore: $(q -d "$DST" -c 'SELECT problem FROM tenant_guard.verify_audit()')"
echo "ok: the same records, hashes included, and verify_audit() passes; no event written by the restore"
images="SELECT count(*) || ' ' || md5(string_agg(concat_ws('|', old_row, new_row, changed_columns), ',' ORDER BY id, item))
        FROM tenant_guard.audit_trail WHERE table_name = 'public.ledger' AND kind = 'row'"
# binary: the 4 of ledger, and accounts' INSERT (2 tenants) and DELETE, events'
# INSERT (2 tenants); jsonb: the UPDATE of accounts (a redacted column)
got=$(q -d "$DST" -c "SELECT count(*) FROM tenant_guard.audit_log WHERE images IS NOT NULL AND rows IS NULL")
[ "$got" = 9 ] || fail "expected 9 records written as binary row images, found $got"
[ "$(q -d "$DST" -c "$images")" = "$(q -d "$SRC" -c "$images")" ] || fail "binary row images read differently after the restore"
echo "ok: records of binary row images restored and read as in the source"

max_restored=$(q -d "$DST" -c "SELECT max(id) FROM tenant_guard.audit_log")
q -d "$DST" >/dev/null <<'SQL'
SET tenant_guard.context_source = 'setting';
SET tenant_guard.org_id = '0a0a0a0a-0000-4000-8000-00000000000a';
INSERT INTO accounts VALUES (3, '0a0a0a0a-0000-4000-8000-00000000000a', 'three', 's');
SQL
q -d "$DST" >/dev/null <<'SQL'
SET tenant_guard.context_source = 'setting';
SET tenant_guard.org_id = '0a0a0a0a-0000-4000-8000-00000000000a';
INSERT INTO events_a VALUES (3, '0a0a0a0a-0000-4000-8000-00000000000a', 'into the partition');
SQL
got=$(q -d "$DST" -c "SELECT count(*) FROM tenant_guard.audit_trail WHERE kind = 'row' AND table_name = 'public.events'
                      AND new_row->>'body' = 'into the partition'")
[ "$got" = 1 ] || fail "the restored partitioned table is not audited as before"
got=$(q -d "$DST" -c "SELECT count(*) FROM pg_trigger WHERE tgname IN ('tg_audit_insert', 'tg_audit_update', 'tg_audit_delete', 'tg_audit_truncate')
                      AND tgrelid IN ('events'::regclass, 'events_a'::regclass, 'events_b'::regclass)")
[ "$got" = 12 ] || fail "expected 12 audit statement triggers on the restored partitioned table, found $got"
got=$(q -d "$DST" -c "SELECT count(*) FROM tenant_guard.audit_trail WHERE kind = 'row' AND row_pk = '{\"id\": 3}'
                      AND new_row->>'secret' = '[redacted]'")
[ "$got" = 1 ] || fail "the restored table is not audited as before"
got=$(q -d "$DST" -c "SELECT ok FROM tenant_guard.verify_audit()")
[ "$got" = t ] || fail "verify_audit() after a new change: $(q -d "$DST" -c 'SELECT problem FROM tenant_guard.verify_audit()')"
got=$(q -d "$DST" -c "SELECT min(id) > $max_restored FROM tenant_guard.audit_trail WHERE table_name = 'public.accounts' AND row_pk = '{\"id\": 3}'")
[ "$got" = t ] || fail "ids do not continue after the restored ones"
echo "ok: the restored database keeps auditing and the chain continues"
echo "audit dump: 3 checks passed"
