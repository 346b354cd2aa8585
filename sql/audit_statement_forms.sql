-- Statement capture: every statement form reaches the audit through the
-- transition tables of the statement triggers (tg_audit_insert, _update,
-- _delete), each row change once, an UPDATE's old and new row paired.
\set SHOW_CONTEXT never
\set org_a '11111111-1111-4111-8111-111111111111'
\set org_b '22222222-2222-4222-8222-222222222222'
SET tenant_guard.context_source = 'setting';
SET tenant_guard.org_id = :'org_a';
SET tenant_guard.user_id = 'alice';
CREATE SCHEMA sf;
CREATE FUNCTION pg_temp.last_id() RETURNS bigint LANGUAGE sql AS $$ SELECT coalesce(max(id), 0) FROM tenant_guard.audit_log $$;
-- the trail since a mark, one line per change: tenant (a or b), table, key, old and new note
CREATE FUNCTION pg_temp.trail(mark bigint)
RETURNS TABLE (action text, org text, tbl text, pk text, old_note text, new_note text, changed text[])
LANGUAGE sql AS $$
    SELECT t.action, CASE t.org WHEN '11111111-1111-4111-8111-111111111111' THEN 'a'
                                WHEN '22222222-2222-4222-8222-222222222222' THEN 'b' ELSE t.org END,
           t.table_name, t.row_pk::text, t.old_row->>'note', t.new_row->>'note', t.changed_columns
    FROM tenant_guard.audit_trail t WHERE t.id > mark AND t.kind = 'row' ORDER BY t.id, t.item
$$;
-- an UPDATE's pairs: every old row and its new row are the same row (same
-- key before and after unless the key changed, note changed as the statement says)
CREATE FUNCTION pg_temp.mispaired(mark bigint, suffix text)
RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM tenant_guard.audit_trail t
    WHERE t.id > mark AND t.kind = 'row' AND t.action = 'UPDATE'
      AND (t.new_row->>'note' IS DISTINCT FROM (t.old_row->>'note') || suffix
           OR t.new_row->>'src' IS DISTINCT FROM t.old_row->>'src')
$$;

CREATE TABLE sf.t (id int PRIMARY KEY, org_id uuid NOT NULL, note text, src int);
SELECT tenant_guard.protect('sf.t');
SELECT tenant_guard.enable_audit('sf.t');
SELECT tgname, pg_get_triggerdef(oid) ~ 'REFERENCING' AS transition_tables FROM pg_trigger
WHERE tgrelid = 'sf.t'::regclass AND tgname LIKE 'tg_audit%' ORDER BY 1;

-- multi-row VALUES over two tenants, INSERT ... SELECT
SELECT pg_temp.last_id() AS mark \gset
INSERT INTO sf.t VALUES (1, :'org_a', 'v1', 1), (2, :'org_b', 'v2', 2), (3, :'org_a', 'v3', 3);
INSERT INTO sf.t SELECT g, CASE WHEN g % 2 = 0 THEN :'org_a'::uuid ELSE :'org_b'::uuid END, 's' || g, g
FROM generate_series(10, 15) g;
SELECT * FROM pg_temp.trail(:mark);
-- one record per statement and tenant
SELECT action, row_count FROM tenant_guard.audit_log WHERE id > :mark AND kind = 'rows' ORDER BY id;

-- COPY FROM
SELECT pg_temp.last_id() AS mark \gset
COPY sf.t FROM stdin;
20	11111111-1111-4111-8111-111111111111	c20	20
21	22222222-2222-4222-8222-222222222222	c21	21
\.
SELECT * FROM pg_temp.trail(:mark);

-- UPDATE of many rows in a scrambled physical order: pairs stay paired
SELECT pg_temp.last_id() AS mark \gset
UPDATE sf.t SET note = note || '+' WHERE id % 3 = 0;
SELECT pg_temp.mispaired(:mark, '+') AS mispaired,
       (SELECT count(*) FROM tenant_guard.audit_trail WHERE id > :mark AND action = 'UPDATE') AS updates;
SELECT pg_temp.last_id() AS mark2 \gset
UPDATE sf.t SET note = note || '!';
SELECT pg_temp.mispaired(:mark2, '!') AS mispaired,
       (SELECT count(*) FROM tenant_guard.audit_trail WHERE id > :mark2 AND action = 'UPDATE') AS updates;
SELECT pk, old_note, new_note, changed FROM pg_temp.trail(:mark) WHERE pk IN ('{"id": 3}', '{"id": 20}') ORDER BY pk, new_note;
-- an UPDATE changing the key and the tenant column: the record is the new tenant's
SELECT pg_temp.last_id() AS mark \gset
UPDATE sf.t SET id = id + 100, org_id = :'org_b' WHERE id = 1;
SELECT * FROM pg_temp.trail(:mark);

-- DELETE
SELECT pg_temp.last_id() AS mark \gset
DELETE FROM sf.t WHERE id IN (2, 3);
SELECT * FROM pg_temp.trail(:mark);

-- transition tables larger than work_mem (kept on disk): every row, pairs paired
SET work_mem = '64kB';
SELECT pg_temp.last_id() AS mark \gset
INSERT INTO sf.t SELECT g, :'org_a', 'big' || g, g FROM generate_series(1000, 3999) g;
UPDATE sf.t SET note = note || '%' WHERE id >= 1000;
SELECT pg_temp.mispaired(:mark, '%') AS mispaired,
       count(*) FILTER (WHERE action = 'INSERT') AS inserts, count(*) FILTER (WHERE action = 'UPDATE') AS updates,
       count(DISTINCT row_pk) AS distinct_rows
FROM tenant_guard.audit_trail WHERE id > :mark AND kind = 'row';
SELECT pg_temp.last_id() AS mark \gset
DELETE FROM sf.t WHERE id >= 1000;
SELECT count(*) AS deletes, count(*) FILTER (WHERE old_row->>'note' <> 'big' || (row_pk->>'id') || '%') AS wrong_images
FROM tenant_guard.audit_trail WHERE id > :mark AND kind = 'row' AND action = 'DELETE';
RESET work_mem;

-- a statement touching no row writes nothing
SELECT pg_temp.last_id() AS mark \gset
UPDATE sf.t SET note = 'x' WHERE false;
DELETE FROM sf.t WHERE id < 0;
INSERT INTO sf.t SELECT 1, :'org_a', 'never', 0 WHERE false;
SELECT count(*) AS records FROM tenant_guard.audit_log WHERE id > :mark;

-- INSERT ... ON CONFLICT DO UPDATE: the inserted rows an INSERT, the
-- updated ones an UPDATE with both images; DO NOTHING records what it inserted
SELECT pg_temp.last_id() AS mark \gset
INSERT INTO sf.t VALUES (10, :'org_a', 'ignored', 10), (30, :'org_a', 'new30', 30)
ON CONFLICT (id) DO UPDATE SET note = sf.t.note || '~';
INSERT INTO sf.t VALUES (11, :'org_b', 'ignored', 11), (31, :'org_b', 'new31', 31) ON CONFLICT DO NOTHING;
SELECT * FROM pg_temp.trail(:mark);

-- MERGE: one statement, three actions
SELECT pg_temp.last_id() AS mark \gset
MERGE INTO sf.t USING (VALUES (12, 'm'), (13, 'del'), (40, 'm')) AS s(id, what) ON sf.t.id = s.id
WHEN MATCHED AND s.what = 'del' THEN DELETE
WHEN MATCHED THEN UPDATE SET note = sf.t.note || '*'
WHEN NOT MATCHED THEN INSERT VALUES (s.id, :'org_a', 'merged', s.id);
SELECT * FROM pg_temp.trail(:mark);

-- writable CTEs touching the table twice: each change once
SELECT pg_temp.last_id() AS mark \gset
WITH i AS (INSERT INTO sf.t VALUES (50, :'org_a', 'cte', 50) RETURNING id),
     u AS (UPDATE sf.t SET note = note || '#' WHERE id = 14 RETURNING id),
     d AS (DELETE FROM sf.t WHERE id = 15 RETURNING id),
     i2 AS (INSERT INTO sf.t VALUES (51, :'org_b', 'cte2', 51) RETURNING id)
SELECT count(*) FROM (SELECT id FROM i UNION ALL SELECT id FROM u UNION ALL SELECT id FROM d
                      UNION ALL SELECT id FROM i2) s;
SELECT * FROM pg_temp.trail(:mark);

-- a BEFORE trigger that changes the row: the row as written is recorded;
-- one that skips the row: nothing is recorded for it
CREATE FUNCTION sf.shout() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.note = 'skip' THEN RETURN NULL; END IF;
    NEW.note := upper(NEW.note);
    RETURN NEW;
END
$$;
CREATE TRIGGER a_shout BEFORE INSERT OR UPDATE ON sf.t FOR EACH ROW EXECUTE FUNCTION sf.shout();
SELECT pg_temp.last_id() AS mark \gset
INSERT INTO sf.t VALUES (60, :'org_a', 'quiet', 60), (61, :'org_a', 'skip', 61);
UPDATE sf.t SET note = 'whisper' WHERE id = 60;
SELECT * FROM pg_temp.trail(:mark);
DROP TRIGGER a_shout ON sf.t;

-- savepoints: the records of a rolled-back part vanish, the rest stay
SELECT pg_temp.last_id() AS mark \gset
BEGIN;
INSERT INTO sf.t VALUES (70, :'org_a', 'kept', 70);
SAVEPOINT s1;
INSERT INTO sf.t VALUES (71, :'org_a', 'rolled back', 71);
UPDATE sf.t SET note = 'rolled back too' WHERE id = 70;
ROLLBACK TO SAVEPOINT s1;
UPDATE sf.t SET note = note || '.' WHERE id = 70;
COMMIT;
SELECT * FROM pg_temp.trail(:mark);
SELECT ok FROM tenant_guard.verify_audit();

-- foreign keys: ON DELETE CASCADE and ON UPDATE CASCADE into an audited table
CREATE TABLE sf.parent (id int PRIMARY KEY);
CREATE TABLE sf.child (id int PRIMARY KEY, org_id uuid NOT NULL, note text,
                       parent int REFERENCES sf.parent ON DELETE CASCADE ON UPDATE CASCADE);
SELECT tenant_guard.protect('sf.child');
SELECT tenant_guard.enable_audit('sf.child');
INSERT INTO sf.parent VALUES (1), (2);
INSERT INTO sf.child VALUES (1, :'org_a', 'c1', 1), (2, :'org_b', 'c2', 1), (3, :'org_a', 'c3', 2);
SELECT pg_temp.last_id() AS mark \gset
UPDATE sf.parent SET id = 5 WHERE id = 1;
DELETE FROM sf.parent WHERE id = 2;
SELECT t.action, CASE t.org WHEN :'org_a' THEN 'a' ELSE 'b' END AS tenant, t.table_name, t.row_pk,
       t.old_row->>'parent' AS old_parent, t.new_row->>'parent' AS new_parent
FROM tenant_guard.audit_trail t WHERE t.id > :mark AND t.kind = 'row' ORDER BY t.id, t.item;

-- a partitioned table: statements on the table, on a partition, on the
-- DEFAULT partition, on a partition attached later, and an UPDATE moving a
-- row between partitions (one UPDATE with both images)
CREATE TABLE sf.p (id int, org_id uuid NOT NULL, note text, src int, PRIMARY KEY (id, org_id)) PARTITION BY RANGE (id);
CREATE TABLE sf.p1 PARTITION OF sf.p FOR VALUES FROM (0) TO (100);
CREATE TABLE sf.pd PARTITION OF sf.p DEFAULT;
SELECT tenant_guard.protect('sf.p');
SELECT tenant_guard.enable_audit('sf.p', redact_columns => '{src}');
CREATE TABLE sf.p2 (LIKE sf.p INCLUDING ALL);
ALTER TABLE sf.p ATTACH PARTITION sf.p2 FOR VALUES FROM (100) TO (200);
CREATE TABLE sf.p3 PARTITION OF sf.p FOR VALUES FROM (200) TO (300);
SELECT c.relname, string_agg(g.tgname, ', ' ORDER BY g.tgname) AS triggers,
       bool_and(g.tgname = 'tg_audit_truncate' OR pg_get_triggerdef(g.oid) LIKE '%_audit_capture(''r:src'')') AS args_everywhere
FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
WHERE c.relname IN ('p', 'p1', 'pd', 'p2', 'p3') AND c.relnamespace = 'sf'::regnamespace AND g.tgname LIKE 'tg_audit%'
GROUP BY 1 ORDER BY 1;
SELECT pg_temp.last_id() AS mark \gset
INSERT INTO sf.p VALUES (1, :'org_a', 'root', 1), (150, :'org_b', 'root', 150), (500, :'org_a', 'root', 500),
                        (250, :'org_a', 'root', 250);
INSERT INTO sf.p1 VALUES (2, :'org_a', 'named', 2);
INSERT INTO sf.pd VALUES (600, :'org_b', 'default', 600);
INSERT INTO sf.p2 VALUES (160, :'org_a', 'attached later', 160);
INSERT INTO sf.p3 VALUES (260, :'org_a', 'created later', 260);
UPDATE sf.p SET id = id + 100, note = note || '>' WHERE id IN (1, 150, 2);
UPDATE sf.p2 SET note = note || '>' WHERE id = 160;
DELETE FROM sf.pd;
SELECT action, org, tbl, pk, old_note, new_note, changed FROM pg_temp.trail(:mark);
SELECT count(*) AS src_not_redacted FROM tenant_guard.audit_trail
WHERE id > :mark AND coalesce(new_row, old_row)->>'src' IS DISTINCT FROM '[redacted]';

-- inheritance: a statement on the parent records the children's rows too
-- (as the parent's); a statement on a child is the child's own business
CREATE TABLE sf.ih (id int PRIMARY KEY, org_id uuid NOT NULL, note text);
CREATE TABLE sf.ih_kid (extra int) INHERITS (sf.ih);
SELECT tenant_guard.enable_audit('sf.ih');
INSERT INTO sf.ih_kid VALUES (1, :'org_a', 'kid', 7);
SELECT pg_temp.last_id() AS mark \gset
INSERT INTO sf.ih VALUES (2, :'org_a', 'parent');
UPDATE sf.ih SET note = note || '^';
DELETE FROM sf.ih;
SELECT * FROM pg_temp.trail(:mark);

-- a table audited on its own that becomes a partition of a table not
-- audited: row mode, so statements on the parent are recorded
CREATE TABLE sf.q (id int, org_id uuid NOT NULL, note text) PARTITION BY LIST (id);
CREATE TABLE sf.q1 (id int, org_id uuid NOT NULL, note text);
SELECT tenant_guard.enable_audit('sf.q1');
ALTER TABLE sf.q ATTACH PARTITION sf.q1 FOR VALUES IN (1, 2);
SELECT string_agg(tgname, ', ' ORDER BY tgname) AS q1_triggers FROM pg_trigger
WHERE tgrelid = 'sf.q1'::regclass AND tgname LIKE 'tg_audit%';
SELECT pg_temp.last_id() AS mark \gset
INSERT INTO sf.q VALUES (1, :'org_a', 'via parent');
UPDATE sf.q1 SET note = note || '=';
DELETE FROM sf.q;
SELECT * FROM pg_temp.trail(:mark);
-- and an inheritance child audited on its own gets row mode when it inherits
CREATE TABLE sf.r (id int, org_id uuid NOT NULL, note text);
CREATE TABLE sf.r1 (id int, org_id uuid NOT NULL, note text);
SELECT tenant_guard.enable_audit('sf.r1');
ALTER TABLE sf.r1 INHERIT sf.r;
SELECT string_agg(tgname, ', ' ORDER BY tgname) AS r1_triggers FROM pg_trigger
WHERE tgrelid = 'sf.r1'::regclass AND tgname LIKE 'tg_audit%';
INSERT INTO sf.r1 VALUES (1, :'org_a', 'kid');
SELECT pg_temp.last_id() AS mark \gset
UPDATE sf.r SET note = note || '@';
SELECT * FROM pg_temp.trail(:mark);

-- disable_audit() removes every trigger enable_audit() created
SELECT tenant_guard.disable_audit('sf.p');
SELECT tenant_guard.disable_audit('sf.q1');
SELECT tenant_guard.disable_audit('sf.t');
SELECT count(*) AS audit_triggers_left FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
WHERE c.relnamespace = 'sf'::regnamespace AND c.relname IN ('t', 'p', 'p1', 'pd', 'p2', 'p3', 'q', 'q1')
  AND g.tgname LIKE 'tg_audit%';

-- negative: the capture function refuses wrong set-ups
CREATE TABLE sf.bad (id int PRIMARY KEY, org_id uuid, note text);
CREATE TRIGGER x AFTER INSERT ON sf.bad FOR EACH STATEMENT EXECUTE FUNCTION tenant_guard._audit_capture();
INSERT INTO sf.bad VALUES (1, :'org_a', 'no transition table');
DROP TRIGGER x ON sf.bad;
CREATE TRIGGER x AFTER INSERT ON sf.bad FOR EACH ROW EXECUTE FUNCTION tenant_guard._audit_capture();
INSERT INTO sf.bad VALUES (1, :'org_a', 'row trigger');
DROP TRIGGER x ON sf.bad;
-- on a table that enable_audit() did not set up
CREATE TRIGGER x AFTER INSERT ON sf.bad REFERENCING NEW TABLE AS n FOR EACH STATEMENT
    EXECUTE FUNCTION tenant_guard._audit_capture();
INSERT INTO sf.bad VALUES (1, :'org_a', 'not audited');
DROP TRIGGER x ON sf.bad;
-- (a_x fires before enable_audit()'s own trigger)
CREATE TRIGGER a_x AFTER INSERT ON sf.bad REFERENCING NEW TABLE AS n FOR EACH STATEMENT
    EXECUTE FUNCTION tenant_guard._audit_capture('y:note');
SELECT tenant_guard.enable_audit('sf.bad');
INSERT INTO sf.bad VALUES (1, :'org_a', 'bad argument');
SELECT tenant_guard._audit_capture();

SELECT ok FROM tenant_guard.verify_audit();
DROP SCHEMA sf CASCADE;
