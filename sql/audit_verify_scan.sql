-- verify_audit()'s check of a node's log (tenant_guard._verify_audit_local,
-- src/pg/audit_verify.cpp: two ordered passes streamed from the executor)
-- against a reference: the same checks written as one SQL query (below,
-- vref.local). Over a log of more than 10,000 records and seals, with
-- multi-record transactions, a separate seal row, a purged partition, three
-- tenants and a `since` filter, each tampering (done as superuser with the
-- log's triggers off, rolled back) must give the same result from both: ok,
-- counts, the first broken record, its time and the problem. The check runs
-- twice, serially and with its records' pass planned with parallel workers
-- (vref.parallel_local): both must give the reference's result.
\set SHOW_CONTEXT never
\set org_a '11111111-1111-4111-8111-111111111111'
\set org_b '22222222-2222-4222-8222-222222222222'
\set org_c '33333333-3333-4333-8333-333333333333'
CREATE SCHEMA vref;
CREATE FUNCTION vref.local(org text DEFAULT NULL, since timestamptz DEFAULT NULL)
RETURNS TABLE (ok boolean, records bigint, seals bigint, broken_id bigint, broken_at timestamptz, problem text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    -- the tenant's key as the log holds it (a uuid in lower case, a canonical
    -- integer, or the string): tenant ids of uuid, bigint and text columns
    o text := tenant_guard._tenant_key(org, false);
    zero bytea := decode(repeat('00', 32), 'hex');
    nrec bigint;
    nseal bigint;
    bad_id bigint;
    bad_at timestamptz;
    bad_what text;
BEGIN
    -- (the counts come from the same pass as the checks)
    WITH hashed AS MATERIALIZED (
        -- every row the checks read, each hashed once (the row images are
        -- read for the hash only): the tenant's records, and every row with
        -- a seal number
        SELECT l.id, l.xact_at, l.xid, l.org, l.kind <> 'seal' AS is_record,
               l.kind = 'seal' AND l.action = 'SEAL' AS is_seal_row, l.seq, l.prev_hash, l.seal_seq, l.seal_prev,
               l.hash, CASE WHEN l.kind = 'seal' THEN l.detail END AS detail,
               tenant_guard._audit_hash(l.id, l.xact_at, l.statement_at, l.xid, l.org, l.kind, l.seq, l.action,
                   l.table_name, l.actor, l.impersonator, l.tenant_role, l.db_role, l.session_role,
                   l.application_name, l.row_count, l.rows, l.detail,
                   l.prev_hash, l.seal_seq, l.seal_prev, l.images) = l.hash AS intact
        FROM tenant_guard.audit_log l
        WHERE (l.kind <> 'seal' AND (o IS NULL OR l.org = o) AND (since IS NULL OR l.xact_at >= since))
           OR l.seal_seq IS NOT NULL),
    rec AS (
        -- records of the tenant (row and event records; the last record of a
        -- chain usually carries the seal itself)
        -- (the chain's totals come from the same window: at its last row,
        -- the running count and maxima cover the whole chain; org compared
        -- bytewise, as equality does)
        SELECT h.id, h.xact_at, h.xid, h.org, h.seq, h.prev_hash, h.seal_seq, h.hash, h.intact,
               lag(h.seq) OVER w AS prev_seq, lag(h.hash) OVER w AS prev_rec_hash,
               lead(h.id) OVER w AS next_id, lag(h.seal_seq) OVER w AS prev_seal_seq,
               row_number() OVER w AS n, max(h.id) OVER w AS last_id, max(h.xact_at) OVER w AS at
        FROM hashed h
        WHERE h.is_record AND (o IS NULL OR h.org = o) AND (since IS NULL OR h.xact_at >= since)
        WINDOW w AS (PARTITION BY h.xid, h.org COLLATE "C" ORDER BY h.seq, h.id)),
    grp AS NOT MATERIALIZED (
        -- one row per chain: its last record in (seq, id) order
        SELECT r.xid, r.org, r.n, r.last_id, r.at, r.hash AS last_hash, r.seal_seq AS last_seal_seq
        FROM rec r WHERE r.next_id IS NULL),
    purged AS (
        SELECT (x->>'seq')::bigint AS seq, decode(x->>'hash', 'hex') AS hash
        FROM tenant_guard.audit_log p, jsonb_array_elements(p.detail->'links') x
        WHERE p.kind = 'event' AND p.action = 'tenant_guard.audit_purge'),
    allseals AS (
        -- the global chain: every row with a seal number (sealing records,
        -- seal rows, VOID seals), in seal number order
        SELECT h.id, h.xact_at, h.xid, h.org, h.is_seal_row, h.seal_seq, h.seal_prev, h.hash, h.detail,
               h.intact,
               lag(h.seal_seq) OVER (ORDER BY h.seal_seq, h.id) AS prev_seq,
               lag(h.hash) OVER (ORDER BY h.seal_seq, h.id) AS prev_seal_hash
        FROM hashed h WHERE h.seal_seq IS NOT NULL),
    seal AS NOT MATERIALIZED (
        SELECT s.* FROM allseals s
        WHERE since IS NULL OR s.seal_seq >= (SELECT min(x.seal_seq) FROM allseals x WHERE x.xact_at >= since)),
    sealrows AS MATERIALIZED (
        -- the separate seal rows (a transaction whose last record was written
        -- before COMMIT); few, and joined against every unsealed chain
        SELECT s.* FROM seal s WHERE s.is_seal_row),
    problems AS (
        SELECT r.id, r.xact_at AS at, CASE
                   WHEN NOT r.intact THEN 'record ' || r.id || ' was edited: its hash does not match its content'
                   WHEN r.seq = coalesce(r.prev_seq, 0) THEN 'record ' || r.id || ' was inserted: its chain position is taken'
                   WHEN r.seq > coalesce(r.prev_seq, 0) + 1 THEN 'a record before ' || r.id || ' in its transaction was deleted'
                   WHEN r.seq <> coalesce(r.prev_seq, 0) + 1 OR r.prev_hash <> coalesce(r.prev_rec_hash, zero)
                   THEN 'record ' || r.id || ' does not link to the record before it (inserted or deleted record)'
                   ELSE 'record ' || r.id || ' was inserted after the record that sealed its transaction' END AS what
        FROM rec r
        WHERE NOT r.intact OR r.seq <> coalesce(r.prev_seq, 0) + 1 OR r.prev_hash <> coalesce(r.prev_rec_hash, zero)
           OR r.prev_seal_seq IS NOT NULL
        UNION ALL
        SELECT g.last_id, g.at, CASE
                   WHEN s.id IS NULL THEN 'records up to ' || g.last_id || ' are not sealed (inserted after their transaction committed, or the sealing record was deleted)'
                   ELSE 'the sealed chain of the transaction of record ' || g.last_id
                        || ' does not end where its seal says (a record was deleted or inserted at its end)' END
        FROM grp g
        LEFT JOIN sealrows s ON s.xid = g.xid AND s.org IS NOT DISTINCT FROM g.org
        WHERE g.last_seal_seq IS NULL
          AND (s.id IS NULL OR (s.detail->>'records')::bigint <> g.n OR decode(s.detail->>'last_hash', 'hex') <> g.last_hash)
        UNION ALL
        SELECT s.id, s.xact_at, 'every record sealed by seal ' || s.id || ' was deleted'
        FROM seal s
        WHERE s.is_seal_row AND (o IS NULL OR s.org = o)
          AND NOT EXISTS (SELECT 1 FROM grp g WHERE g.xid = s.xid AND g.org IS NOT DISTINCT FROM s.org)
        UNION ALL
        SELECT s.id, s.xact_at, 'seal ' || s.id || ' was edited: its hash does not match its content'
        FROM seal s WHERE NOT s.intact AND s.is_seal_row
        UNION ALL
        SELECT s.id, s.xact_at, CASE
                   WHEN s.prev_seq = s.seal_seq THEN 'seal ' || s.id || ' was inserted: its seal number is taken'
                   ELSE 'seal ' || s.id || ' does not link to the seal before it (a sealed transaction was deleted or inserted)' END
        FROM seal s
        WHERE NOT (since IS NOT NULL AND s.seal_seq = (SELECT min(x.seal_seq) FROM seal x))
          AND CASE
                WHEN s.prev_seq = s.seal_seq - 1 THEN s.seal_prev IS DISTINCT FROM s.prev_seal_hash
                WHEN s.seal_seq = 1 AND s.prev_seq IS NULL THEN s.seal_prev IS DISTINCT FROM zero
                -- the seal before it was purged: the purge event holds its hash
                -- (the log is scanned for purge events only for such a seal)
                ELSE (s.seal_prev IS NOT NULL AND NOT EXISTS (SELECT 1 FROM purged p WHERE p.seq = s.seal_seq - 1))
                     OR EXISTS (SELECT 1 FROM purged p WHERE p.seq = s.seal_seq - 1
                                AND p.hash IS DISTINCT FROM s.seal_prev) END)
    SELECT (SELECT coalesce(sum(g.n), 0) FROM grp g), (SELECT count(*) FROM allseals a WHERE since IS NULL OR a.xact_at >= since),
           b.id, b.at, b.what
    INTO nrec, nseal, bad_id, bad_at, bad_what
    FROM (SELECT 1) one LEFT JOIN LATERAL (SELECT * FROM problems ORDER BY id LIMIT 1) b ON true;
    IF bad_id IS NULL THEN
        RETURN QUERY SELECT true, nrec, nseal, NULL::bigint, NULL::timestamptz, NULL::text;
    ELSE
        RETURN QUERY SELECT false, nrec, nseal, bad_id, bad_at, bad_what;
    END IF;
END
$$;

-- History from January 2020 (seal 1), purged once the rest is written: the
-- next seal then links across the purge (the purge event keeps the hash).
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

SET tenant_guard.context_source = 'setting';
SET tenant_guard.org_id = :'org_a';
SET tenant_guard.user_id = 'alice';
CREATE TABLE vs (id int PRIMARY KEY, org_id uuid NOT NULL, note text);
SELECT tenant_guard.protect('vs');
SELECT tenant_guard.enable_audit('vs');
-- 12,000 single-record transactions over three tenants, each committed
CREATE PROCEDURE vref.fill(n int) LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1..n LOOP
        INSERT INTO vs VALUES (i, CASE i % 3 WHEN 0 THEN '11111111-1111-4111-8111-111111111111'::uuid
                                            WHEN 1 THEN '22222222-2222-4222-8222-222222222222'::uuid
                                            ELSE '33333333-3333-4333-8333-333333333333'::uuid END, 'n' || i);
        COMMIT;
    END LOOP;
END
$$;
CALL vref.fill(12000);
-- transactions of several records and tenants
BEGIN;
UPDATE vs SET note = 'u1' WHERE id BETWEEN 1 AND 30;
UPDATE vs SET note = 'u2' WHERE id BETWEEN 1 AND 30;
DELETE FROM vs WHERE id BETWEEN 25 AND 30;
COMMIT;
-- a transaction whose last record is written before COMMIT (over 8 kB
-- compressed): sealed by a separate seal row
BEGIN;
UPDATE vs SET note = (SELECT string_agg(md5(g::text || 'x'), '') FROM generate_series(1, 1500) g) WHERE id = 3;
SELECT 1 AS statement_between;
COMMIT;
INSERT INTO vs VALUES (20001, :'org_b', 'after the seal row');
SELECT count(*) AS purged_partitions FROM tenant_guard.purge_audit();
SELECT count(*) FILTER (WHERE kind <> 'seal') > 10000 AS records_over_a_batch,
       count(seal_seq) > 10000 AS seals_over_a_batch,
       count(*) FILTER (WHERE kind = 'seal' AND action = 'SEAL') AS seal_rows,
       count(*) FILTER (WHERE action = 'tenant_guard.audit_purge') AS purge_events
FROM tenant_guard.audit_log;

-- Both checks, for every tenant filter and with and without `since`: all
-- the same, and the result (ids and times left out: they differ per run).
SELECT xact_at AS since FROM tenant_guard.audit_log WHERE seal_seq IS NOT NULL
ORDER BY seal_seq LIMIT 1 OFFSET 6000 \gset
-- The check with parallel workers wherever the planner can use them (no
-- cost for starting them or for passing rows, every table big enough).
CREATE FUNCTION vref.parallel_local(org text, since timestamptz)
RETURNS TABLE (ok boolean, records bigint, seals bigint, broken_id bigint, broken_at timestamptz, problem text)
LANGUAGE sql
SET max_parallel_workers_per_gather = 2 SET parallel_setup_cost = 0 SET parallel_tuple_cost = 0
SET min_parallel_table_scan_size = 0 SET min_parallel_index_scan_size = 0
AS $$ SELECT * FROM tenant_guard._verify_audit_local(org, since) $$;
-- (and the records' pass is then planned with workers)
CREATE FUNCTION vref.records_pass_is_parallel() RETURNS boolean
LANGUAGE plpgsql
SET max_parallel_workers_per_gather = 2 SET parallel_setup_cost = 0 SET parallel_tuple_cost = 0
SET min_parallel_table_scan_size = 0 SET min_parallel_index_scan_size = 0
AS $$
DECLARE
    plan text := '';
    line text;
BEGIN
    FOR line IN EXPLAIN SELECT l.id, l.xact_at, l.xid, l.org, l.seq, l.prev_hash, l.seal_seq, l.hash,
        tenant_guard._audit_hash(l.id, l.xact_at, l.statement_at, l.xid, l.org, l.kind, l.seq, l.action,
            l.table_name, l.actor, l.impersonator, l.tenant_role, l.db_role, l.session_role, l.application_name,
            l.row_count, l.rows, l.detail, l.prev_hash, l.seal_seq, l.seal_prev, l.images) = l.hash
        FROM tenant_guard.audit_log l WHERE l.kind <> 'seal'
        ORDER BY l.xid, l.org COLLATE "C", l.seq, l.id
    LOOP
        plan := plan || line || E'\n';
    END LOOP;
    RETURN plan LIKE '%Gather Merge%' AND plan LIKE '%Parallel%';
END
$$;
SELECT vref.records_pass_is_parallel() AS records_pass_is_parallel;
-- and the check itself starts workers: the database's count of parallel
-- workers launched (PostgreSQL 18 and later; before, the statistics do not
-- count them and this says true) grows over one check. (The comparisons
-- below hold in one process too: the results do not depend on workers.)
CREATE FUNCTION vref.workers_launched() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    IF current_setting('server_version_num')::int < 180000 THEN
        RETURN 0;
    END IF;
    EXECUTE 'SELECT parallel_workers_launched FROM pg_catalog.pg_stat_database WHERE datname = current_database()'
    INTO n;
    RETURN n;
END
$$;
SELECT pg_stat_force_next_flush();
SELECT vref.workers_launched() AS launched_before \gset
SELECT ok FROM vref.parallel_local(NULL, NULL);
SELECT pg_stat_force_next_flush();
SELECT current_setting('server_version_num')::int < 180000 OR vref.workers_launched() > :launched_before
       AS check_started_workers;
CREATE FUNCTION vref.compare(label text, since timestamptz)
RETURNS TABLE (tampering text, same boolean, ok boolean, problem text)
LANGUAGE sql AS $$
    WITH args(org, since) AS (
        VALUES (NULL::text, NULL::timestamptz), ('11111111-1111-4111-8111-111111111111', NULL),
               ('22222222-2222-4222-8222-222222222222', NULL), ('33333333-3333-4333-8333-333333333333', NULL),
               (NULL, since), ('22222222-2222-4222-8222-222222222222', since)),
    both_ AS (
        SELECT a.org, a.since,
               (SELECT row(r.*)::text FROM vref.local(a.org, a.since) r) AS ref,
               (SELECT row(c.*)::text FROM tenant_guard._verify_audit_local(a.org, a.since) c) AS got,
               (SELECT row(c.*)::text FROM vref.parallel_local(a.org, a.since) c) AS got_parallel,
               (SELECT c.ok FROM tenant_guard._verify_audit_local(a.org, a.since) c) AS ok,
               (SELECT regexp_replace(c.problem, '[0-9]+', 'N', 'g')
                FROM tenant_guard._verify_audit_local(a.org, a.since) c) AS problem
        FROM args a)
    SELECT label, bool_and(ref IS NOT DISTINCT FROM got AND got_parallel IS NOT DISTINCT FROM got),
           bool_and(ok) FILTER (WHERE org IS NULL AND since IS NULL),
           min(problem) FILTER (WHERE org IS NULL AND since IS NULL)
    FROM both_
$$;
-- the rows of a tampering, and their hashes made to match again where the
-- tampering says so
CREATE FUNCTION vref.rehash(rid bigint) RETURNS void LANGUAGE sql AS $$
    UPDATE tenant_guard.audit_log l SET hash = tenant_guard._audit_hash(l.id, l.xact_at, l.statement_at, l.xid,
        l.org, l.kind, l.seq, l.action, l.table_name, l.actor, l.impersonator, l.tenant_role, l.db_role,
        l.session_role, l.application_name, l.row_count, l.rows, l.detail, l.prev_hash, l.seal_seq, l.seal_prev,
        l.images)
    WHERE l.id = rid
$$;
-- records to tamper with: one in the middle of the first batch, one past it,
-- a record inside a multi-record chain, the seal row and its chain
SELECT id AS mid FROM tenant_guard.audit_log WHERE kind = 'rows' ORDER BY id LIMIT 1 OFFSET 5000 \gset
SELECT id AS late FROM tenant_guard.audit_log WHERE kind = 'rows' ORDER BY id LIMIT 1 OFFSET 11000 \gset
SELECT id AS inner_rec FROM tenant_guard.audit_log WHERE kind = 'rows' AND seq = 2 ORDER BY id LIMIT 1 \gset
SELECT id AS seal_row FROM tenant_guard.audit_log WHERE kind = 'seal' AND action = 'SEAL' ORDER BY id LIMIT 1 \gset
SELECT id AS purge_event FROM tenant_guard.audit_log WHERE action = 'tenant_guard.audit_purge' \gset

SELECT * FROM vref.compare('none', :'since');
SET session_replication_role = replica;
BEGIN;
UPDATE tenant_guard.audit_log SET actor = 'mallory' WHERE id = :mid;
SELECT * FROM vref.compare('a record edited', :'since');
ROLLBACK;
BEGIN;
UPDATE tenant_guard.audit_log SET actor = 'mallory' WHERE id = :late;
SELECT vref.rehash(:late);
SELECT * FROM vref.compare('a record edited, its hash recomputed', :'since');
ROLLBACK;
BEGIN;
DELETE FROM tenant_guard.audit_log WHERE id = :inner_rec;
SELECT * FROM vref.compare('a record inside its chain deleted', :'since');
ROLLBACK;
BEGIN;
DELETE FROM tenant_guard.audit_log WHERE id = :late;
SELECT * FROM vref.compare('a sealing record deleted', :'since');
ROLLBACK;
BEGIN;
DELETE FROM tenant_guard.audit_log
WHERE xid = (SELECT xid FROM tenant_guard.audit_log WHERE id = :mid);
SELECT * FROM vref.compare('a whole transaction deleted', :'since');
ROLLBACK;
BEGIN;
INSERT INTO tenant_guard.audit_log
SELECT nextval('tenant_guard.audit_log_id_seq'), xact_at, statement_at, xid, org, kind, seq, action, table_name,
       actor, impersonator, tenant_role, db_role, session_role, application_name, row_count, rows, detail,
       prev_hash, seal_seq, seal_prev, hash
FROM tenant_guard.audit_log WHERE id = :inner_rec;
SELECT vref.rehash(currval('tenant_guard.audit_log_id_seq'));
SELECT * FROM vref.compare('a record copied into its chain, its hash recomputed', :'since');
ROLLBACK;
BEGIN;
INSERT INTO tenant_guard.audit_log
SELECT nextval('tenant_guard.audit_log_id_seq'), xact_at, statement_at, xid, org, kind, seq, action, table_name,
       actor, impersonator, tenant_role, db_role, session_role, application_name, row_count, rows, detail,
       prev_hash, seal_seq, seal_prev, hash
FROM tenant_guard.audit_log WHERE id = :late;
SELECT vref.rehash(currval('tenant_guard.audit_log_id_seq'));
SELECT * FROM vref.compare('a sealing record copied (its seal number twice), its hash recomputed', :'since');
ROLLBACK;
BEGIN;
UPDATE tenant_guard.audit_log SET seal_prev = decode(repeat('00', 32), 'hex') WHERE id = :mid;
SELECT vref.rehash(:mid);
SELECT * FROM vref.compare('a seal linked elsewhere, its hash recomputed', :'since');
ROLLBACK;
BEGIN;
UPDATE tenant_guard.audit_log SET seq = seq + 1 WHERE id = :inner_rec;
SELECT vref.rehash(:inner_rec);
SELECT * FROM vref.compare('a chain position changed, its hash recomputed', :'since');
ROLLBACK;
BEGIN;
UPDATE tenant_guard.audit_log SET detail = jsonb_set(detail, '{records}', '7') WHERE id = :seal_row;
SELECT * FROM vref.compare('a seal row''s count edited', :'since');
ROLLBACK;
-- (a count that is not a number: reported, where the reference query
-- fails on the cast)
BEGIN;
UPDATE tenant_guard.audit_log SET detail = jsonb_set(detail, '{records}', '"many"') WHERE id = :seal_row;
SELECT vref.rehash(:seal_row);
SELECT ok, regexp_replace(problem, '[0-9]+', 'N', 'g') AS problem FROM tenant_guard._verify_audit_local();
ROLLBACK;
BEGIN;
DELETE FROM tenant_guard.audit_log WHERE id = :seal_row;
SELECT * FROM vref.compare('a seal row deleted', :'since');
ROLLBACK;
BEGIN;
DELETE FROM tenant_guard.audit_log WHERE id < :seal_row
  AND xid = (SELECT xid FROM tenant_guard.audit_log WHERE id = :seal_row);
SELECT * FROM vref.compare('the records of a seal row deleted', :'since');
ROLLBACK;
BEGIN;
DELETE FROM tenant_guard.audit_log WHERE id = :purge_event;
SELECT * FROM vref.compare('the purge event deleted', :'since');
ROLLBACK;
BEGIN;
UPDATE tenant_guard.audit_log SET detail = jsonb_set(detail, '{links,0,hash}', to_jsonb(repeat('ab', 32)))
WHERE id = :purge_event;
SELECT * FROM vref.compare('the purge event''s link edited', :'since');
ROLLBACK;
BEGIN;
-- hashes of any length are compared whole: a sealing record's hash and the
-- next seal's link both replaced by the same 65 bytes
UPDATE tenant_guard.audit_log SET hash = decode(repeat('ab', 65), 'hex') WHERE id = :late;
UPDATE tenant_guard.audit_log SET seal_prev = decode(repeat('ab', 65), 'hex')
WHERE seal_seq = (SELECT seal_seq + 1 FROM tenant_guard.audit_log WHERE id = :late);
SELECT * FROM vref.compare('a hash and its link both made 65 bytes long', :'since');
ROLLBACK;
RESET session_replication_role;

-- `since` and a transaction that started before it but was sealed after a
-- transaction that started after it: its seal row has a number past the
-- first seal checked, its records are older than `since`. Its records are
-- not checked, so neither is its seal row (the reference query reported
-- "every record sealed by seal N was deleted" on this untampered log).
CREATE EXTENSION dblink;
SELECT format('host=%s port=%s dbname=%s user=postgres', split_part(current_setting('unix_socket_directories'), ',', 1),
              current_setting('port'), current_database()) AS connstr \gset
BEGIN;
UPDATE vs SET note = (SELECT string_agg(md5(g::text || 'y'), '') FROM generate_series(1, 1500) g) WHERE id = 6;
SELECT dblink_exec(:'connstr', format($q$
    SET tenant_guard.context_source = 'setting';
    SET tenant_guard.org_id = %L;
    SET tenant_guard.user_id = 'bob';
    INSERT INTO vs VALUES (20002, %L, 'started later, committed first');
$q$, :'org_a', :'org_a')) AS other_transaction;
COMMIT;
SELECT xact_at AS later_start FROM tenant_guard.audit_log WHERE table_name = 'public.vs' AND action = 'INSERT'
ORDER BY id DESC LIMIT 1 \gset
SELECT (SELECT xact_at FROM tenant_guard.audit_log WHERE kind = 'seal' AND action = 'SEAL' ORDER BY id DESC LIMIT 1)
       < :'later_start'::timestamptz AS sealed_transaction_started_first,
       (SELECT seal_seq FROM tenant_guard.audit_log WHERE kind = 'seal' AND action = 'SEAL' ORDER BY id DESC LIMIT 1)
       > (SELECT min(seal_seq) FROM tenant_guard.audit_log WHERE xact_at >= :'later_start'::timestamptz)
       AS its_seal_is_past_the_first_checked;
SELECT ok, problem FROM tenant_guard._verify_audit_local(NULL, :'later_start');
SELECT ok, regexp_replace(problem, '[0-9]+', 'N', 'g') AS reference_problem FROM vref.local(NULL, :'later_start');
SELECT ok, records FROM tenant_guard.verify_audit();
DROP EXTENSION dblink;
