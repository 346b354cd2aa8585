-- Statement records: the row changes of one statement, table and tenant go
-- into one record (audit_log.rows, row_count), and tenant_guard.audit_trail
-- shows them one line per change. Multi-row statements, several tenants in
-- one statement, the record size limit, large records, nested statements,
-- exception blocks, partitions named directly, a partition audited on its
-- own, cross-partition UPDATE, COPY, ON CONFLICT, MERGE, and the row images
-- of the common types compared with to_jsonb().
\set SHOW_CONTEXT never
\set org_a '11111111-1111-4111-8111-111111111111'
\set org_b '22222222-2222-4222-8222-222222222222'
SET tenant_guard.context_source = 'setting';
SET tenant_guard.org_id = :'org_a';
SET tenant_guard.user_id = 'alice';
CREATE SCHEMA st;
CREATE TABLE st.t (id int PRIMARY KEY, org_id uuid NOT NULL, note text);
SELECT tenant_guard.protect('st.t');
SELECT tenant_guard.enable_audit('st.t');
CREATE FUNCTION pg_temp.last_id() RETURNS bigint LANGUAGE sql AS $$ SELECT coalesce(max(id), 0) FROM tenant_guard.audit_log $$;

-- one statement, three rows: one record, three lines in the trail
SELECT pg_temp.last_id() AS mark \gset
INSERT INTO st.t SELECT g, :'org_a', 'n' || g FROM generate_series(1, 3) g;
SELECT kind, action, org, table_name, actor, row_count, jsonb_array_length(coalesce(rows, tenant_guard._audit_images(id, xact_at, org, hash))) AS changes
FROM tenant_guard.audit_log WHERE id > :mark AND kind <> 'seal' ORDER BY id;
SELECT item, kind, action, row_pk, old_row, new_row, changed_columns
FROM tenant_guard.audit_trail WHERE id > :mark ORDER BY id, item;

-- two tenants in one statement: a record each, in its tenant's chain
SELECT pg_temp.last_id() AS mark \gset
INSERT INTO st.t VALUES (4, :'org_a', 'a'), (5, :'org_b', 'b'), (6, :'org_a', 'a');
SELECT org = :'org_a' AS org_a, row_count, jsonb_path_query_array(coalesce(rows, tenant_guard._audit_images(id, xact_at, org, hash)), '$[*].pk.id') AS ids
FROM tenant_guard.audit_log WHERE id > :mark AND kind = 'rows' ORDER BY org;

-- UPDATE and DELETE of several rows
SELECT pg_temp.last_id() AS mark \gset
UPDATE st.t SET note = note || '!' WHERE org_id = :'org_a';
DELETE FROM st.t WHERE id IN (1, 2);
SELECT action, row_count FROM tenant_guard.audit_log WHERE id > :mark AND kind = 'rows' ORDER BY id;
SELECT action, row_pk, old_row->>'note' AS old_note, new_row->>'note' AS new_note, changed_columns
FROM tenant_guard.audit_trail WHERE id > :mark ORDER BY id, item;

-- the record size limit: 5 rows go into records of at most 2
SET tenant_guard.audit_rows_per_record = 2;
SELECT pg_temp.last_id() AS mark \gset
INSERT INTO st.t SELECT g, :'org_a', 'limited' FROM generate_series(10, 14) g;
SELECT seq, row_count FROM tenant_guard.audit_log WHERE id > :mark AND kind = 'rows' ORDER BY id;
SELECT count(*) AS lines, count(DISTINCT row_pk) AS distinct_rows FROM tenant_guard.audit_trail WHERE id > :mark;
RESET tenant_guard.audit_rows_per_record;
-- the setting is superuser-only and at least 1
CREATE ROLE regress_st_app;
SET ROLE regress_st_app;
SET tenant_guard.audit_rows_per_record = 1;
RESET ROLE;
SET tenant_guard.audit_rows_per_record = 0;

-- a large record is compressed; one that compresses to a few kilobytes is
-- still held back and carries its transaction's seal
SELECT pg_temp.last_id() AS mark \gset
INSERT INTO st.t SELECT g, :'org_a', repeat('x', 200) FROM generate_series(100, 199) g;
SELECT kind, row_count, seal_seq IS NOT NULL AS sealed, detail->'records' AS sealed_records
FROM tenant_guard.audit_log WHERE id > :mark ORDER BY id;
SELECT coalesce(pg_column_size(rows) < octet_length(rows::text), pg_column_size(images) < octet_length(images)) AS compressed
FROM tenant_guard.audit_log WHERE id > :mark AND kind = 'rows';
-- one still large once compressed is written at once and its transaction
-- sealed by a seal row
SELECT pg_temp.last_id() AS mark \gset
INSERT INTO st.t SELECT g, :'org_a', (SELECT string_agg(md5(g || '/' || i), '') FROM generate_series(1, 8) i)
FROM generate_series(200, 299) g;
SELECT kind, row_count, seal_seq IS NOT NULL AS sealed, detail->'records' AS sealed_records
FROM tenant_guard.audit_log WHERE id > :mark ORDER BY id;
DELETE FROM st.t WHERE id BETWEEN 200 AND 299;

-- ... and by size: about 8 MB of row images per record, whatever the row limit
SET tenant_guard.audit_rows_per_record = 1000000;
SELECT pg_temp.last_id() AS mark \gset
INSERT INTO st.t SELECT g, :'org_a', repeat('y', 1000) FROM generate_series(1000, 20999) g;
RESET tenant_guard.audit_rows_per_record;
SELECT count(*) > 1 AS split_by_size, sum(row_count) AS changes, max(row_count) < 20000 AS each_smaller,
       max(coalesce(octet_length(rows::text), octet_length(images))) < 16 * 1024 * 1024 AS bounded
FROM tenant_guard.audit_log WHERE id > :mark AND kind = 'rows';
DELETE FROM st.t WHERE id BETWEEN 1000 AND 20999;

-- a statement's record is written when the statement ends; the newest
-- (small) record of each transaction and tenant is held back to carry the
-- seal, so inside the transaction the log shows all but that one
BEGIN;
SELECT pg_temp.last_id() AS mark \gset
INSERT INTO st.t VALUES (20, :'org_a', 'first statement');
INSERT INTO st.t VALUES (21, :'org_a', 'second statement');
SELECT row_pk AS visible_before_commit FROM tenant_guard.audit_trail WHERE id > :mark;
COMMIT;
SELECT row_pk AS after_commit FROM tenant_guard.audit_trail WHERE id > :mark ORDER BY id, item;

-- nested statements: a trigger on st.t writes into another audited table
CREATE TABLE st.history (id serial PRIMARY KEY, org_id uuid NOT NULL, t_id int);
SELECT tenant_guard.protect('st.history');
SELECT tenant_guard.enable_audit('st.history');
CREATE FUNCTION st.log_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO st.history (org_id, t_id) VALUES (NEW.org_id, NEW.id);
    RETURN NULL;
END
$$;
CREATE TRIGGER a_history AFTER INSERT ON st.t FOR EACH ROW EXECUTE FUNCTION st.log_history();
SELECT pg_temp.last_id() AS mark \gset
INSERT INTO st.t SELECT g, :'org_a', 'nested' FROM generate_series(30, 32) g;
SELECT table_name, count(*) AS records, sum(row_count) AS changes
FROM tenant_guard.audit_log WHERE id > :mark AND kind = 'rows' GROUP BY 1 ORDER BY 1;
DROP TRIGGER a_history ON st.t;

-- an exception block that undoes a nested statement keeps the outer rows
CREATE FUNCTION st.maybe_fail() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        INSERT INTO st.history (org_id, t_id) VALUES (NEW.org_id, NEW.id);
        IF NEW.id % 2 = 0 THEN
            RAISE EXCEPTION 'undone';
        END IF;
    EXCEPTION WHEN raise_exception THEN
        NULL;
    END;
    RETURN NULL;
END
$$;
CREATE TRIGGER a_maybe AFTER INSERT ON st.t FOR EACH ROW EXECUTE FUNCTION st.maybe_fail();
SELECT pg_temp.last_id() AS mark \gset
INSERT INTO st.t SELECT g, :'org_a', 'sub' FROM generate_series(40, 43) g;
SELECT table_name, string_agg(coalesce(new_row->>'t_id', new_row->>'id'), ',' ORDER BY id, item) AS recorded
FROM tenant_guard.audit_trail WHERE id > :mark GROUP BY 1 ORDER BY 1;
SELECT string_agg(t_id::text, ',' ORDER BY t_id) AS history_rows FROM st.history WHERE t_id >= 40;
DROP TRIGGER a_maybe ON st.t;

-- partitions: each gets the statement triggers (also one attached later),
-- so a statement naming a partition writes its record when it ends
CREATE TABLE st.p (id int, org_id uuid NOT NULL, note text, PRIMARY KEY (id, org_id)) PARTITION BY RANGE (id);
CREATE TABLE st.p1 PARTITION OF st.p FOR VALUES FROM (0) TO (100);
CREATE TABLE st.p2 PARTITION OF st.p FOR VALUES FROM (100) TO (200);
SELECT tenant_guard.protect('st.p');
SELECT tenant_guard.enable_audit('st.p');
CREATE TABLE st.p3 (LIKE st.p INCLUDING ALL);
ALTER TABLE st.p ATTACH PARTITION st.p3 FOR VALUES FROM (200) TO (300);
SELECT tgrelid::regclass AS rel, string_agg(tgname, ', ' ORDER BY tgname) AS triggers FROM pg_trigger
WHERE tgrelid IN ('st.p'::regclass, 'st.p1'::regclass, 'st.p2'::regclass, 'st.p3'::regclass) AND tgname LIKE 'tg_audit%'
GROUP BY 1 ORDER BY 1;
-- (the event written after the statement comes after its record)
BEGIN;
SELECT pg_temp.last_id() AS mark \gset
INSERT INTO st.p2 VALUES (150, :'org_a', 'named partition');
SELECT tenant_guard.audit_event('after.partition.insert') > 0 AS event_written;
-- an UPDATE that moves a row to another partition is one UPDATE with both images
UPDATE st.p SET id = 250 WHERE id = 150;
COMMIT;
SELECT table_name, action, row_pk->>'id' AS row_id FROM tenant_guard.audit_trail WHERE id > :mark ORDER BY id, item;
-- a detached partition loses the statement triggers, one attached again gets them back
ALTER TABLE st.p DETACH PARTITION st.p3;
SELECT count(*) AS p3_audit_triggers FROM pg_trigger WHERE tgrelid = 'st.p3'::regclass AND tgname LIKE 'tg_audit%';
ALTER TABLE st.p ATTACH PARTITION st.p3 FOR VALUES FROM (200) TO (300);
SELECT string_agg(tgname, ', ' ORDER BY tgname) AS p3_triggers FROM pg_trigger
WHERE tgrelid = 'st.p3'::regclass AND tgname LIKE 'tg_audit%';
SELECT tenant_guard.disable_audit('st.p');
SELECT count(*) AS audit_triggers_left FROM pg_trigger
WHERE tgrelid IN ('st.p'::regclass, 'st.p1'::regclass, 'st.p2'::regclass, 'st.p3'::regclass) AND tgname LIKE 'tg_audit%';

-- a partition audited on its own, written through its (unaudited) parent:
-- no statement trigger of the partition fires, and the record is written at COMMIT
CREATE TABLE st.q (id int, org_id uuid NOT NULL) PARTITION BY LIST (id);
CREATE TABLE st.q1 PARTITION OF st.q FOR VALUES IN (1, 2);
SELECT tenant_guard.enable_audit('st.q1');
-- (so the event written after the statement comes before its record)
BEGIN;
SELECT pg_temp.last_id() AS mark \gset
INSERT INTO st.q VALUES (1, :'org_a'), (2, :'org_a');
SELECT tenant_guard.audit_event('after.parent.insert') > 0 AS event_written;
COMMIT;
SELECT kind, action, org = :'org_a' AS org_a, row_count FROM tenant_guard.audit_log
WHERE id > :mark AND kind <> 'seal' ORDER BY id;
-- records open until COMMIT still have one actor each: a context changed
-- between statements starts a new record
BEGIN;
SELECT pg_temp.last_id() AS mark \gset
SET LOCAL tenant_guard.user_id = 'first-user';
INSERT INTO st.q VALUES (1, :'org_a');
SET LOCAL tenant_guard.user_id = 'second-user';
INSERT INTO st.q VALUES (2, :'org_a');
COMMIT;
SELECT actor, row_count FROM tenant_guard.audit_log WHERE id > :mark AND kind = 'rows' ORDER BY id;
-- ... and rolled back with a savepoint before COMMIT, nothing at all
BEGIN;
SELECT pg_temp.last_id() AS mark \gset
SAVEPOINT s;
INSERT INTO st.q VALUES (1, :'org_a');
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT count(*) AS after_rolled_back_savepoint FROM tenant_guard.audit_log WHERE id > :mark;

-- COPY, INSERT ... ON CONFLICT, MERGE
SELECT pg_temp.last_id() AS mark \gset
COPY st.t (id, org_id, note) FROM STDIN;
50	11111111-1111-4111-8111-111111111111	copied
51	11111111-1111-4111-8111-111111111111	copied
\.
INSERT INTO st.t VALUES (50, :'org_a', 'upserted'), (52, :'org_a', 'new')
ON CONFLICT (id) DO UPDATE SET note = excluded.note;
MERGE INTO st.t t USING (VALUES (51, 'merged'), (53, 'merge-new')) v(id, note) ON t.id = v.id
WHEN MATCHED THEN UPDATE SET note = v.note
WHEN NOT MATCHED THEN INSERT VALUES (v.id, '11111111-1111-4111-8111-111111111111', v.note);
SELECT action, row_count, jsonb_path_query_array(coalesce(rows, tenant_guard._audit_images(id, xact_at, org, hash)), '$[*].pk.id') AS ids
FROM tenant_guard.audit_log WHERE id > :mark AND kind = 'rows' ORDER BY id;

-- the row images: the same values as to_jsonb() of the row, type by type
CREATE TYPE st.mood AS ENUM ('sad', 'happy');
CREATE TYPE st.pair AS (a int, b text);
CREATE DOMAIN st.short_text AS text CHECK (length(VALUE) < 50);
CREATE DOMAIN st.pos_int AS int CHECK (VALUE > 0);
CREATE TABLE st.types (
    id int PRIMARY KEY, b bool, i2 int2, i4 int4, i8 int8, num numeric(10, 2), num_nan numeric, num_inf numeric,
    f4 float4, f8 float8, f8_nan float8, f8_inf float8, txt text, vc varchar(10), bp char(5), nm name, ch "char",
    d date, d_inf date, ts timestamp, ts_inf timestamp, tstz timestamptz, tm time, tmtz timetz, iv interval,
    u uuid, j json, jb jsonb, jb_scalar jsonb, jb_null jsonb, arr int[], tarr text[], bits bit(4), vb varbit,
    byt bytea, ip inet, net cidr, mac macaddr, cash money, pt point, rng int4range, mood st.mood, pair st.pair,
    dom st.short_text, dom_int st.pos_int, o oid, tsv tsvector);
SELECT tenant_guard.enable_audit('st.types');
SELECT pg_temp.last_id() AS mark \gset
INSERT INTO st.types VALUES (1, true, 1, -2, 9007199254740993, 12.50, 'NaN', '-Infinity', 1.5, -2.25e-10, 'NaN',
    'Infinity', E'tab\there "q" \\ \u00fc \n', 'vc', 'ab', 'nm', 'c', '2024-02-29', 'infinity',
    '2024-02-29 12:34:56.789', '-infinity', '2024-02-29 12:34:56.789+05', '12:00', '12:00+02', '1 day 2 hours',
    'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"k": [1, 2.50, null]}', '{"k": [1, 2.50, null], "a": "b"}', '"s"',
    'null', '{1,NULL,3}', '{"a","b c"}', B'1010', B'101', '\xdeadbeef', '10.0.0.1/8', '10.0.0.0/8',
    '08:00:2b:01:02:03', 1.5, '(1,2)', '[1,5)', 'happy', ROW(1, 'x'), 'short', 7, 42, 'a fat cat');
INSERT INTO st.types (id) VALUES (2);
CREATE TEMP TABLE inserted AS SELECT x.id, to_jsonb(x) AS j FROM st.types x;
UPDATE st.types SET txt = 'changed', num = 0 WHERE id = 1;
SELECT t.action, t.row_pk, t.old_row = i.j AS old_same_as_to_jsonb,
       t.new_row = CASE t.action WHEN 'INSERT' THEN i.j ELSE to_jsonb(x) END AS new_same_as_to_jsonb
FROM tenant_guard.audit_trail t JOIN st.types x ON x.id = (t.row_pk->>'id')::int JOIN inserted i ON i.id = x.id
WHERE t.id > :mark ORDER BY t.id, t.item;
-- any column whose value differs (none)
SELECT t.action, k AS differing_column
FROM tenant_guard.audit_trail t JOIN inserted i ON i.id = (t.row_pk->>'id')::int, jsonb_object_keys(i.j) k
WHERE t.id > :mark AND t.action = 'INSERT' AND t.new_row -> k IS DISTINCT FROM i.j -> k;
SELECT old_row->>'txt' AS old_txt, old_row->'num' AS old_num, old_row->'num_nan' AS nan, old_row->'f8_inf' AS inf,
       old_row->'jb_scalar' AS jb_scalar, old_row->'jb_null' AS jb_null, old_row->'d_inf' AS d_inf, changed_columns
FROM tenant_guard.audit_trail WHERE id > :mark AND action = 'UPDATE';

-- a hostile search_path cannot change where a record's tenant comes from:
-- an operator of the caller's own schema that would hide the table from the
-- registry look-up (the record would then take the context's tenant)
CREATE SCHEMA evil;
CREATE FUNCTION evil.never(regclass, oid) RETURNS boolean LANGUAGE sql AS 'SELECT false';
CREATE OPERATOR evil.= (LEFTARG = regclass, RIGHTARG = oid, FUNCTION = evil.never);
CREATE TABLE st.attr (id int PRIMARY KEY, org_id uuid NOT NULL);
SELECT tenant_guard.protect('st.attr');
SELECT tenant_guard.enable_audit('st.attr');
SELECT pg_temp.last_id() AS mark \gset
SET search_path = evil, pg_catalog, public;
INSERT INTO st.attr VALUES (1, :'org_b');
RESET search_path;
SELECT org = :'org_b' AS from_the_row FROM tenant_guard.audit_log WHERE id > :mark AND kind = 'rows';
DROP SCHEMA evil CASCADE;

-- enable_audit() again recreates a statement trigger someone disabled
ALTER TABLE st.t DISABLE TRIGGER tg_audit_update;
SELECT tenant_guard.enable_audit('st.t');
SELECT tgenabled FROM pg_trigger WHERE tgrelid = 'st.t'::regclass AND tgname = 'tg_audit_update';

-- a primary key that takes in an excluded column later: the column stays out
-- of the records, the key included
CREATE TABLE st.latekey (id int NOT NULL, secret text NOT NULL, org_id uuid NOT NULL);
SELECT tenant_guard.enable_audit('st.latekey', exclude_columns => '{secret}');
ALTER TABLE st.latekey ADD PRIMARY KEY (id, secret);
SELECT pg_temp.last_id() AS mark \gset
INSERT INTO st.latekey VALUES (1, 'hunter2', :'org_a');
UPDATE st.latekey SET org_id = :'org_b' WHERE id = 1;
DELETE FROM st.latekey;
SELECT action, row_pk, coalesce(new_row, old_row) ? 'secret' AS secret_recorded
FROM tenant_guard.audit_trail WHERE id > :mark ORDER BY id, item;
SELECT count(*) AS records_with_the_secret FROM tenant_guard.audit_log
WHERE id > :mark AND (coalesce(rows, tenant_guard._audit_images(id, xact_at, org, hash))::text LIKE '%hunter2%'
                      OR position('hunter2'::bytea IN coalesce(images, '')) > 0);

-- SQL run while a row image is built (a user type's cast to json) that
-- writes rows of the same audited table: those rows join the record being
-- built, and nothing it uses is freed meanwhile
CREATE TYPE st.level AS ENUM ('low', 'high');
CREATE TABLE st.reent (id int PRIMARY KEY, org_id uuid NOT NULL, lvl st.level);
SELECT tenant_guard.protect('st.reent');
SELECT tenant_guard.enable_audit('st.reent');
CREATE FUNCTION st.level_json(st.level) RETURNS json LANGUAGE plpgsql AS $$
BEGIN
    IF $1 = 'high' THEN
        INSERT INTO st.reent SELECT max(id) + 100, '11111111-1111-4111-8111-111111111111', 'low' FROM st.reent;
    END IF;
    RETURN to_json($1::text);
END
$$;
CREATE CAST (st.level AS json) WITH FUNCTION st.level_json(st.level);
SELECT pg_temp.last_id() AS mark \gset
INSERT INTO st.reent VALUES (1, :'org_a', 'high'), (2, :'org_a', 'high');
SELECT kind, row_count FROM tenant_guard.audit_log WHERE id > :mark AND kind <> 'seal' ORDER BY id;
SELECT item, row_pk->>'id' AS row_id, new_row->>'lvl' AS lvl FROM tenant_guard.audit_trail WHERE id > :mark ORDER BY id, item;
SELECT string_agg(id::text, ',' ORDER BY id) AS table_rows FROM st.reent;
DROP CAST (st.level AS json);

-- one statement over many tenants: the open records together stay within
-- their memory budget (32 MB); the largest are written early
SELECT pg_temp.last_id() AS mark \gset
INSERT INTO st.t SELECT g, (lpad((g % 40)::text, 8, '0') || '-0000-4000-8000-000000000000')::uuid, repeat('z', 2000)
FROM generate_series(30000, 59999) g;
SELECT count(DISTINCT org) AS tenants, count(*) > 40 AS some_written_early, sum(row_count) AS changes
FROM tenant_guard.audit_log WHERE id > :mark AND kind = 'rows';
DELETE FROM st.t WHERE id BETWEEN 30000 AND 59999;

-- a table with no tenant column audits the context's tenant: every row of a
-- statement goes to it, in records of at most the row limit
CREATE TABLE st.plain (id int PRIMARY KEY, note text);
SELECT tenant_guard.enable_audit('st.plain');
SET tenant_guard.audit_rows_per_record = 2;
SELECT pg_temp.last_id() AS mark \gset
INSERT INTO st.plain SELECT g, 'p' || g FROM generate_series(1, 5) g;
SET tenant_guard.org_id = :'org_b';
DELETE FROM st.plain WHERE id <= 3;
SET tenant_guard.org_id = :'org_a';
RESET tenant_guard.audit_rows_per_record;
SELECT action, org = :'org_a' AS org_a, seq, row_count FROM tenant_guard.audit_log
WHERE id > :mark AND kind = 'rows' ORDER BY id;
SELECT action, string_agg(row_pk->>'id', ',' ORDER BY id, item) AS row_ids
FROM tenant_guard.audit_trail WHERE id > :mark GROUP BY action ORDER BY action;
-- ... and with no tenant in the context, to records without one
SELECT pg_temp.last_id() AS mark \gset
RESET tenant_guard.org_id;
SET tenant_guard.audit_rows_per_record = 2;
INSERT INTO st.plain SELECT g, 'no tenant' FROM generate_series(10, 14) g;
RESET tenant_guard.audit_rows_per_record;
SET tenant_guard.org_id = :'org_a';
SELECT action, org IS NULL AS no_org, seq, row_count FROM tenant_guard.audit_log
WHERE id > :mark AND kind = 'rows' ORDER BY id;

-- a held-back record is hashed when it is written (all but its seal) and the
-- hash finished when it is written to the log or sealed, also when a
-- savepoint that wrote to its chain after it rolls back or is released
BEGIN;
SELECT pg_temp.last_id() AS mark \gset
INSERT INTO st.t SELECT g, :'org_a', repeat('s', 200) FROM generate_series(60000, 60099) g;
SAVEPOINT s1;
INSERT INTO st.t SELECT g, :'org_a', repeat('r', 200) FROM generate_series(60100, 60199) g;
ROLLBACK TO SAVEPOINT s1;
SAVEPOINT s2;
UPDATE st.t SET note = 'u' WHERE id = 60000;
RELEASE SAVEPOINT s2;
SAVEPOINT s3;
DELETE FROM st.t WHERE id = 60001;
ROLLBACK TO SAVEPOINT s3;
COMMIT;
SELECT kind, action, seq, row_count, seal_seq IS NOT NULL AS sealed,
       coalesce(pg_column_size(rows) < octet_length(rows::text), pg_column_size(images) < octet_length(images)) AS compressed
FROM tenant_guard.audit_log WHERE id > :mark ORDER BY id;
SELECT ok, problem FROM tenant_guard.verify_audit();
DELETE FROM st.t WHERE id BETWEEN 60000 AND 60099;

-- a held-back record's begun hash goes with it: one per chain however many
-- savepoints rolled back or were released after writing to it
SELECT pg_temp.last_id() AS mark \gset
BEGIN;
INSERT INTO st.t VALUES (80000, :'org_a', 'x'), (80001, :'org_b', 'y');
SELECT tenant_guard._audit_selftest_hash_states() AS begun;
DO $$
BEGIN
    FOR i IN 1..50 LOOP
        BEGIN
            INSERT INTO st.t VALUES (80100 + i, '11111111-1111-4111-8111-111111111111', 'rolled back');
            RAISE EXCEPTION 'undo';
        EXCEPTION WHEN raise_exception THEN
            NULL;
        END;
    END LOOP;
END
$$;
SELECT tenant_guard._audit_selftest_hash_states() AS after_rollbacks;
SAVEPOINT a;
INSERT INTO st.t VALUES (80002, :'org_a', 'released');
SAVEPOINT b;
INSERT INTO st.t VALUES (80003, :'org_a', 'released');
RELEASE SAVEPOINT b;
RELEASE SAVEPOINT a;
SAVEPOINT c;
UPDATE st.t SET note = 'released' WHERE id = 80001;
RELEASE SAVEPOINT c;
SELECT tenant_guard._audit_selftest_hash_states() AS after_releases;
COMMIT;
SELECT action, org = :'org_a' AS org_a, seq, row_count, seal_seq IS NOT NULL AS sealed
FROM tenant_guard.audit_log WHERE id > :mark AND kind = 'rows' ORDER BY org, seq;
SELECT ok, problem FROM tenant_guard.verify_audit();
DELETE FROM st.t WHERE id BETWEEN 80000 AND 80003;
-- held-back records keep their compressed size: 200 tenants' records of
-- about 50 kB that compress to a few hundred bytes do not take 50 kB each
-- (10 MB; compressing allocates for the worst case)
BEGIN;
INSERT INTO st.t SELECT g, ('00000000-0000-4000-8000-' || lpad(to_hex(g % 200), 12, '0'))::uuid, repeat('c', 100)
FROM generate_series(90000, 169999) g;
SELECT used_bytes < 5 * 1024 * 1024 AS held_back_compact
FROM pg_backend_memory_contexts WHERE name = 'TopTransactionContext';
ROLLBACK;
-- the log's partitions keep a record of up to a page in its row
SELECT bool_and(c.reloptions = ARRAY['toast_tuple_target=' || (current_setting('block_size')::int - 32)]) AS toast_target
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'tenant_guard.audit_log'::regclass;
-- the test hook is not the application's
SET ROLE regress_st_app;
SELECT tenant_guard._audit_selftest_hash_states();
RESET ROLE;

-- more held-back records in one transaction than hashes are begun for
-- (4,096 at once): the others are hashed whole when sealed
SELECT pg_temp.last_id() AS mark \gset
INSERT INTO st.t SELECT g, ('00000000-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, 'many'
FROM generate_series(70000, 74499) g;
SELECT count(*) AS records, count(*) FILTER (WHERE seal_seq IS NOT NULL) AS sealed, sum(row_count) AS changes
FROM tenant_guard.audit_log WHERE id > :mark AND kind = 'rows';
DELETE FROM st.t WHERE id BETWEEN 70000 AND 74499;

SELECT ok, problem FROM tenant_guard.verify_audit();

DROP SCHEMA st CASCADE;
DROP ROLE regress_st_app;
