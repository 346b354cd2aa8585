-- verify_audit() finds the first broken link: an edited, a deleted and an
-- inserted record (tampering done as superuser with triggers disabled, each
-- in a transaction that is rolled back), an edited or missing seal; and
-- purge_audit() drops old partitions while the chain stays verifiable.
\set SHOW_CONTEXT never
\set org_a '11111111-1111-4111-8111-111111111111'
\set org_b '22222222-2222-4222-8222-222222222222'
CREATE ROLE regress_verify_app;

-- History from January 2020, written the way the trigger writes it: one
-- transaction with one record, which carries seal number 1.
DO $$
DECLARE
    at timestamptz := '2020-01-15 12:00:00+00';
    zero bytea := decode(repeat('00', 32), 'hex');
    rid bigint := nextval('tenant_guard.audit_log_id_seq');
    h bytea;
BEGIN
    PERFORM tenant_guard._audit_partition_for(at);
    h := tenant_guard._audit_hash(rid, at, at, 1000, '11111111-1111-4111-8111-111111111111', 'event', 1,
                                  'legacy.import', NULL, 'importer', NULL, NULL, 'postgres', 'postgres', NULL,
                                  0, NULL, '{"batch": 1}', zero, 1, zero);
    INSERT INTO tenant_guard.audit_log VALUES (rid, at, at, 1000, '11111111-1111-4111-8111-111111111111', 'event', 1,
        'legacy.import', NULL, 'importer', NULL, NULL, 'postgres', 'postgres', NULL, 0, NULL,
        '{"batch": 1}', zero, 1, zero, h);
END
$$;

-- today's activity continues the seal chain
SET tenant_guard.context_source = 'setting';
SET tenant_guard.org_id = :'org_a';
SET tenant_guard.user_id = 'alice';
CREATE TABLE vt (id int PRIMARY KEY, org_id uuid NOT NULL, note text);
SELECT tenant_guard.protect('vt');
SELECT tenant_guard.enable_audit('vt');
INSERT INTO vt VALUES (1, :'org_a', 'one');
-- one transaction, three statements of tenant A (a record each) and one of B
BEGIN;
INSERT INTO vt VALUES (2, :'org_a', 'two');
INSERT INTO vt VALUES (3, :'org_a', 'three');
INSERT INTO vt VALUES (4, :'org_a', 'four');
INSERT INTO vt VALUES (5, :'org_b', 'b five');
COMMIT;
UPDATE vt SET note = 'ONE' WHERE id = 1;
SELECT min(seal_seq) AS first_seal, max(seal_seq) AS last_seal, count(*) AS seals,
       count(*) FILTER (WHERE kind = 'seal') AS seal_rows
FROM tenant_guard.audit_log WHERE seal_seq IS NOT NULL;
SELECT * FROM tenant_guard.verify_audit();
SELECT ok, records FROM tenant_guard.verify_audit(:'org_a');
SELECT ok, records FROM tenant_guard.verify_audit(:'org_b', now() - interval '1 day');

SELECT id AS one FROM tenant_guard.audit_trail WHERE kind = 'row' AND row_pk = '{"id": 1}' AND action = 'INSERT' \gset
SELECT id AS two FROM tenant_guard.audit_trail WHERE kind = 'row' AND row_pk = '{"id": 2}' \gset
SELECT id AS three FROM tenant_guard.audit_trail WHERE kind = 'row' AND row_pk = '{"id": 3}' \gset
SELECT id AS four FROM tenant_guard.audit_trail WHERE kind = 'row' AND row_pk = '{"id": 4}' \gset
SELECT id AS five FROM tenant_guard.audit_trail WHERE kind = 'row' AND row_pk = '{"id": 5}' \gset
SELECT xid AS multi_xid FROM tenant_guard.audit_log WHERE id = :two \gset
CREATE FUNCTION pg_temp.report() RETURNS TABLE (ok boolean, problem text) LANGUAGE sql AS $$
    SELECT ok, regexp_replace(problem, '[0-9]+', 'N', 'g') FROM tenant_guard.verify_audit() $$;

-- an edited record
BEGIN;
SET LOCAL session_replication_role = replica;
-- (its row, a binary image: the last byte, of the note 'one', changed)
UPDATE tenant_guard.audit_log SET images = overlay(images PLACING '\x21'::bytea FROM octet_length(images)) WHERE id = :one;
SELECT ok, broken_id = :one AS at_edited_record, problem LIKE 'record % was edited%' AS says_edited FROM tenant_guard.verify_audit();
ROLLBACK;
-- an edited actor, and an edited hash (recomputed by the attacker) break the chain too
BEGIN;
SET LOCAL session_replication_role = replica;
UPDATE tenant_guard.audit_log SET actor = 'mallory' WHERE id = :three;
SELECT * FROM pg_temp.report();
ROLLBACK;
BEGIN;
SET LOCAL session_replication_role = replica;
UPDATE tenant_guard.audit_log l SET actor = 'mallory',
    hash = tenant_guard._audit_hash(l.id, l.xact_at, l.statement_at, l.xid, l.org, l.kind, l.seq, l.action,
        l.table_name, 'mallory', l.impersonator, l.tenant_role, l.db_role, l.session_role, l.application_name,
        l.row_count, l.rows, l.detail, l.prev_hash, l.seal_seq, l.seal_prev, l.images)
WHERE id = :three;
SELECT v.ok, v.broken_id = :four AS at_next_record, regexp_replace(v.problem, '[0-9]+', 'N', 'g') AS problem
FROM tenant_guard.verify_audit() v;
ROLLBACK;
-- a deleted record: in the middle, at the end of its transaction, a whole transaction
BEGIN;
SET LOCAL session_replication_role = replica;
DELETE FROM tenant_guard.audit_log WHERE id = :three;
SELECT ok, broken_id = :four AS at_next_record, problem LIKE '%was deleted' AS says_deleted FROM tenant_guard.verify_audit();
ROLLBACK;
BEGIN;
SET LOCAL session_replication_role = replica;
DELETE FROM tenant_guard.audit_log WHERE id = :four;
SELECT * FROM pg_temp.report();
ROLLBACK;
BEGIN;
SET LOCAL session_replication_role = replica;
DELETE FROM tenant_guard.audit_log WHERE xid = :multi_xid;
SELECT * FROM pg_temp.report();
ROLLBACK;
-- an inserted record: appended to a sealed chain, or on its own
BEGIN;
SET LOCAL session_replication_role = replica;
INSERT INTO tenant_guard.audit_log
SELECT nextval('tenant_guard.audit_log_id_seq'), l.xact_at, l.statement_at, l.xid, l.org, l.kind, 4, l.action,
       l.table_name, l.actor, l.impersonator, l.tenant_role, l.db_role, l.session_role, l.application_name,
       1, '[{"pk": {"id": 99}, "new": {"id": 99, "note": "planted"}}]', NULL, l.hash, NULL, NULL,
       tenant_guard._audit_hash(nextval('tenant_guard.audit_log_id_seq') - 1, l.xact_at, l.statement_at, l.xid, l.org,
           l.kind, 4, l.action, l.table_name, l.actor, l.impersonator, l.tenant_role, l.db_role, l.session_role,
           l.application_name, 1, '[{"pk": {"id": 99}, "new": {"id": 99, "note": "planted"}}]', NULL, l.hash, NULL, NULL)
FROM tenant_guard.audit_log l WHERE l.id = :four;
SELECT * FROM pg_temp.report();
ROLLBACK;
BEGIN;
SET LOCAL session_replication_role = replica;
INSERT INTO tenant_guard.audit_log
SELECT nextval('tenant_guard.audit_log_id_seq'), l.xact_at, l.statement_at, 424242, l.org, l.kind, 1, l.action,
       l.table_name, l.actor, l.impersonator, l.tenant_role, l.db_role, l.session_role, l.application_name,
       1, '[{"pk": {"id": 98}, "new": {"id": 98}}]', NULL, decode(repeat('00', 32), 'hex'), NULL, NULL,
       tenant_guard._audit_hash(nextval('tenant_guard.audit_log_id_seq') - 1, l.xact_at, l.statement_at, 424242, l.org,
           l.kind, 1, l.action, l.table_name, l.actor, l.impersonator, l.tenant_role, l.db_role, l.session_role,
           l.application_name, 1, '[{"pk": {"id": 98}, "new": {"id": 98}}]', NULL, decode(repeat('00', 32), 'hex'),
           NULL, NULL)
FROM tenant_guard.audit_log l WHERE l.id = :one;
SELECT * FROM pg_temp.report();
ROLLBACK;
-- an inserted record at an existing position of a chain
BEGIN;
SET LOCAL session_replication_role = replica;
INSERT INTO tenant_guard.audit_log
SELECT nextval('tenant_guard.audit_log_id_seq'), l.xact_at, l.statement_at, l.xid, l.org, l.kind, l.seq, l.action,
       l.table_name, l.actor, l.impersonator, l.tenant_role, l.db_role, l.session_role, l.application_name,
       l.row_count, l.rows, l.detail, l.prev_hash, l.seal_seq, l.seal_prev, l.hash, l.images
FROM tenant_guard.audit_log l WHERE l.id = :three;
SELECT * FROM pg_temp.report();
ROLLBACK;
-- an edited seal (the seal link carried by the last record of a transaction)
BEGIN;
SET LOCAL session_replication_role = replica;
UPDATE tenant_guard.audit_log SET seal_prev = decode(repeat('11', 32), 'hex') WHERE id = :four;
SELECT * FROM pg_temp.report();
ROLLBACK;
-- ... and with its hash recomputed, the seal chain no longer links
BEGIN;
SET LOCAL session_replication_role = replica;
UPDATE tenant_guard.audit_log l SET seal_prev = decode(repeat('11', 32), 'hex'),
    hash = tenant_guard._audit_hash(l.id, l.xact_at, l.statement_at, l.xid, l.org, l.kind, l.seq, l.action,
        l.table_name, l.actor, l.impersonator, l.tenant_role, l.db_role, l.session_role, l.application_name,
        l.row_count, l.rows, l.detail, l.prev_hash, l.seal_seq, decode(repeat('11', 32), 'hex'), l.images)
WHERE id = :four;
SELECT * FROM pg_temp.report();
ROLLBACK;
-- verifying one tenant checks that tenant's records (and every seal)
BEGIN;
SET LOCAL session_replication_role = replica;
UPDATE tenant_guard.audit_log SET images = overlay(images PLACING '\x21'::bytea FROM octet_length(images)) WHERE id = :five;
SELECT ok AS org_a_ok FROM tenant_guard.verify_audit(:'org_a');
SELECT ok AS org_b_ok, broken_id = :five AS at_b_record FROM tenant_guard.verify_audit(:'org_b');
ROLLBACK;
-- nothing was left changed
SELECT ok FROM tenant_guard.verify_audit();

-- a transaction that fails in COMMIT after its seals were numbered leaves
-- no hole: the next transaction that seals writes that number as a VOID seal
BEGIN;
INSERT INTO vt VALUES (30, :'org_a', 'lost at commit');
SELECT tenant_guard._audit_selftest_fail_commit();
COMMIT;
SELECT count(*) AS lost_row FROM vt WHERE id = 30;
SELECT count(*) AS lost_records FROM tenant_guard.audit_trail WHERE new_row->>'note' = 'lost at commit';
INSERT INTO vt VALUES (31, :'org_a', 'next');
SELECT kind, action, org IS NULL AS no_org, detail->>'reason' AS reason FROM tenant_guard.audit_log
WHERE seal_seq IS NOT NULL ORDER BY seal_seq DESC LIMIT 2;
SELECT ok, problem FROM tenant_guard.verify_audit();
-- a deleted VOID seal is a hole like any other
BEGIN;
SET LOCAL session_replication_role = replica;
DELETE FROM tenant_guard.audit_log WHERE action = 'VOID';
SELECT * FROM pg_temp.report();
ROLLBACK;
SET ROLE regress_verify_app;
SELECT tenant_guard._audit_selftest_fail_commit();
RESET ROLE;

-- retention: the 2020 partition is past 24 months and goes as a whole
SELECT count(*) AS partitions_before FROM pg_inherits WHERE inhparent = 'tenant_guard.audit_log'::regclass \gset
SET ROLE regress_verify_app;
SELECT * FROM tenant_guard.purge_audit();
RESET ROLE;
SELECT partition_name, from_ts, to_ts, row_count FROM tenant_guard.purge_audit();
SELECT count(*) = :partitions_before - 1 AS one_partition_dropped
FROM pg_inherits WHERE inhparent = 'tenant_guard.audit_log'::regclass;
SELECT count(*) AS records_from_2020 FROM tenant_guard.audit_log WHERE xact_at < '2021-01-01';
SELECT org, action, detail->'partitions' AS partitions, detail->'rows' AS rows, detail->'last_seal_seq' AS last_seal,
       detail->>'last_seal_hash' ~ '^[0-9a-f]{64}$' AS has_hash, jsonb_array_length(detail->'links') AS links
FROM tenant_guard.audit_log WHERE action = 'tenant_guard.audit_purge';
-- the chain still verifies: the first remaining seal links to the purged one
SELECT ok, problem FROM tenant_guard.verify_audit();
-- ... and a purged seal cannot be faked away: the first remaining seal must still link
BEGIN;
SET LOCAL session_replication_role = replica;
DELETE FROM tenant_guard.audit_log WHERE seal_seq = 2;
SELECT * FROM pg_temp.report();
ROLLBACK;
-- nothing more to purge
SELECT count(*) AS second_purge FROM tenant_guard.purge_audit();
-- a shorter retention keeps this month
SET tenant_guard.audit_retention = '1 month';
SELECT count(*) AS purged_with_one_month FROM tenant_guard.purge_audit();
SELECT ok FROM tenant_guard.verify_audit();

DROP TABLE vt;
DROP ROLE regress_verify_app;
