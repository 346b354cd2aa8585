-- Binary row images (src/pg/audit_images.cpp): an INSERT's or DELETE's
-- record, of one row or many, of a table whose audited columns all have a
-- type with a binary image (an UPDATE's too where no column is redacted and
-- no value stored out of line), is written with `images` (heap tuples)
-- instead of `rows` (jsonb), and audit_trail converts it when read. What it shows must be
-- exactly what the jsonb record would have held: to_jsonb() of each row,
-- excluded columns left out, redacted ones "[redacted]", values stored out of
-- line (and gone with a deleted row) included. The hash covers the images;
-- the reader takes a record's key, never bytes, and reads under row-level
-- security.
\set SHOW_CONTEXT never
\set org_a '11111111-1111-4111-8111-111111111111'
\set org_b '22222222-2222-4222-8222-222222222222'
SET tenant_guard.context_source = 'setting';
SET tenant_guard.org_id = :'org_a';
SET tenant_guard.user_id = 'alice';
SET tenant_guard.role = 'admin';
CREATE SCHEMA bi;
CREATE DOMAIN bi.pos AS int CHECK (VALUE > 0);
CREATE TABLE bi.t (
    id bigint NOT NULL, org_id uuid NOT NULL,
    b boolean, i2 smallint, i4 int, p bi.pos, n numeric, n2 numeric(12, 2), t text, vc varchar(20), c char(4),
    d date, ts timestamp, tz timestamptz, j jsonb, u uuid, secret text, skipped text, big text,
    "Mixed Case" text, "ÄÖ" int,
    PRIMARY KEY (org_id, id)
);
ALTER TABLE bi.t ALTER COLUMN big SET STORAGE EXTERNAL;  -- out of line, uncompressed
SELECT tenant_guard.protect('bi.t');
SELECT tenant_guard.enable_audit('bi.t', exclude_columns => '{skipped}', redact_columns => '{secret}');
CREATE FUNCTION pg_temp.last_id() RETURNS bigint LANGUAGE sql AS $$ SELECT coalesce(max(id), 0) FROM tenant_guard.audit_log $$;
-- the rows as to_jsonb() shows them, minus the excluded column, the redacted one masked
CREATE FUNCTION pg_temp.expect(r jsonb) RETURNS jsonb LANGUAGE sql AS $$
    SELECT (r - 'skipped') || '{"secret": "[redacted]"}'
$$;
CREATE TABLE bi.src AS
SELECT g AS id, :'org_a'::uuid AS org_id,
       CASE g % 3 WHEN 0 THEN NULL ELSE g % 2 = 0 END AS b,
       (g * 7 % 32767)::smallint AS i2, CASE WHEN g = 1 THEN -2147483648 ELSE g * 1000 END AS i4,
       g::bi.pos AS p,
       CASE g WHEN 2 THEN 'NaN'::numeric WHEN 3 THEN 'Infinity' WHEN 4 THEN '-Infinity'
              WHEN 5 THEN 123456789012345678901234567890.123456789012345678901234567890 ELSE g / 7.0 END AS n,
       (g * 1.25)::numeric(12, 2) AS n2,
       CASE g WHEN 6 THEN E'quote " backslash \\ newline \n tab \t é 中 😀' WHEN 7 THEN '' ELSE 'row ' || g END AS t,
       ('vc' || g)::varchar(20) AS vc, 'ab'::char(4) AS c,
       CASE g WHEN 8 THEN 'infinity'::date ELSE date '2024-02-29' + g END AS d,
       CASE g WHEN 9 THEN '-infinity'::timestamp ELSE timestamp '2024-01-01 12:00:00.5' + g * interval '1 hour' END AS ts,
       timestamptz '2024-06-01 00:00:00+00' + g * interval '1 minute' AS tz,
       CASE g WHEN 10 THEN '"a jsonb scalar"'::jsonb WHEN 11 THEN 'null' ELSE jsonb_build_object('g', g, 'a', '[1, {}]'::jsonb) END AS j,
       md5(g::text)::uuid AS u, 'pw' || g AS secret, 'not audited' AS skipped,
       CASE WHEN g <= 2 THEN (SELECT string_agg(md5((k * g)::text), '') FROM generate_series(1, 400) k) END AS big,
       CASE WHEN g % 2 = 0 THEN 'mixed' END AS "Mixed Case", g AS "ÄÖ"
FROM generate_series(1, 20) g;

-- INSERT of 20 rows: one record, binary
SELECT pg_temp.last_id() AS mark \gset
INSERT INTO bi.t SELECT * FROM bi.src;
SELECT kind, action, row_count, rows IS NULL AS no_rows, images IS NOT NULL AS has_images
FROM tenant_guard.audit_log WHERE id > :mark AND kind = 'rows';
-- the big values are stored out of line in bi.t
SELECT pg_relation_size(reltoastrelid) > 0 AS toasted FROM pg_class WHERE oid = 'bi.t'::regclass;
SELECT count(*) AS lines, count(*) FILTER (WHERE tr.new_row = pg_temp.expect(to_jsonb(s))) AS new_row_as_jsonb,
       count(*) FILTER (WHERE tr.row_pk = jsonb_build_object('id', s.id, 'org_id', s.org_id)) AS pk,
       count(*) FILTER (WHERE tr.old_row IS NULL AND tr.changed_columns IS NULL) AS no_old
FROM tenant_guard.audit_trail tr JOIN bi.src s ON s.id = (tr.row_pk->>'id')::bigint
WHERE tr.id > :mark AND tr.kind = 'row';
SELECT item, new_row->'n' AS n, new_row->'d' AS d, new_row->'ts' AS ts, new_row->'j' AS j, new_row->'t' AS t
FROM tenant_guard.audit_trail WHERE id > :mark AND kind = 'row' AND item BETWEEN 1 AND 11 ORDER BY item;

-- DELETE of every row: the before images, the out-of-line values included
-- (read after the rows and their TOAST are gone)
SELECT pg_temp.last_id() AS mark \gset
DELETE FROM bi.t;
VACUUM bi.t;
SELECT kind, action, row_count, rows IS NULL AS no_rows, images IS NOT NULL AS has_images
FROM tenant_guard.audit_log WHERE id > :mark AND kind = 'rows';
SELECT count(*) AS lines, count(*) FILTER (WHERE tr.old_row = pg_temp.expect(to_jsonb(s))) AS old_row_as_jsonb,
       count(*) FILTER (WHERE tr.new_row IS NULL) AS no_new,
       count(*) FILTER (WHERE octet_length(tr.old_row->>'big') = 12800) AS big_values
FROM tenant_guard.audit_trail tr JOIN bi.src s ON s.id = (tr.row_pk->>'id')::bigint
WHERE tr.id > :mark AND tr.kind = 'row';

-- a few rows: binary images too, read as the same jsonb
SELECT pg_temp.last_id() AS mark \gset
INSERT INTO bi.t SELECT * FROM bi.src WHERE id <= 3;
SELECT row_count, rows IS NULL AS no_rows, images IS NOT NULL AS has_images,
       tenant_guard._audit_images(id, xact_at, org, hash) = (SELECT jsonb_agg(jsonb_build_object('pk', jsonb_build_object('id', s.id, 'org_id', s.org_id),
                                                   'new', pg_temp.expect(to_jsonb(s))) ORDER BY s.id)
               FROM bi.src s WHERE s.id <= 3) AS images_as_jsonb
FROM tenant_guard.audit_log WHERE id > :mark AND kind = 'rows';
-- UPDATE of a table with a redacted column stays jsonb (the changed
-- columns' new values: a redacted column's change cannot be told from its
-- image)
SELECT pg_temp.last_id() AS mark \gset
INSERT INTO bi.t SELECT * FROM bi.src WHERE id > 3;
UPDATE bi.t SET i4 = i4 + 1;
SELECT action, row_count, rows IS NULL AS no_rows, images IS NOT NULL AS has_images
FROM tenant_guard.audit_log WHERE id > :mark AND kind = 'rows' ORDER BY id;

-- timestamptz values keep the writer's offsets, whatever the reader's TimeZone
SET TimeZone = 'America/New_York';
SELECT pg_temp.last_id() AS mark \gset
INSERT INTO bi.t (id, org_id, tz)
SELECT g + 5000, :'org_a', timestamptz '2024-01-15 12:00:00+00' + g * interval '180 days' FROM generate_series(1, 10) g;
SET TimeZone = 'Asia/Tokyo';
SELECT images IS NOT NULL AS has_images FROM tenant_guard.audit_log WHERE id > :mark AND kind = 'rows';
SELECT item, new_row->>'tz' AS tz FROM tenant_guard.audit_trail WHERE id > :mark AND kind = 'row' AND item <= 3 ORDER BY item;
RESET TimeZone;
DELETE FROM bi.t WHERE id > 5000;

-- a table whose stored rows are their images (no column excluded, redacted or
-- dropped): the transition table's tuples are taken as they are, except a
-- row with a value stored out of line, and rows stored before a column was
-- added with a default (their default comes from the table)
CREATE TABLE bi.plain (id int, org_id uuid NOT NULL, note text, big text, PRIMARY KEY (org_id, id));
ALTER TABLE bi.plain ALTER COLUMN big SET STORAGE EXTERNAL;
SELECT tenant_guard.protect('bi.plain');
SELECT tenant_guard.enable_audit('bi.plain');
SELECT pg_temp.last_id() AS mark \gset
INSERT INTO bi.plain SELECT g, :'org_a', CASE WHEN g % 3 <> 0 THEN 'note ' || g END,
                            CASE WHEN g = 5 THEN repeat(md5('x'), 100) END FROM generate_series(1, 12) g;
ALTER TABLE bi.plain ADD COLUMN added int DEFAULT 7;
INSERT INTO bi.plain SELECT g, :'org_a', 'later', NULL, g FROM generate_series(13, 20) g;
CREATE TABLE bi.plain_before AS SELECT * FROM bi.plain;
DELETE FROM bi.plain;
SELECT action, row_count, images IS NOT NULL AS has_images
FROM tenant_guard.audit_log WHERE id > :mark AND kind = 'rows' ORDER BY id;
SELECT action, count(*) AS lines,
       count(*) FILTER (WHERE coalesce(new_row, old_row) = jsonb_strip_nulls(coalesce(new_row, old_row))) AS no_nulls,
       count(*) FILTER (WHERE coalesce(new_row, old_row)->>'big' = repeat(md5('x'), 100)) AS big,
       count(*) FILTER (WHERE (coalesce(new_row, old_row)->>'added')::int = 7) AS default_7,
       count(*) FILTER (WHERE coalesce(new_row, old_row)->>'note' IS NULL) AS null_notes
FROM tenant_guard.audit_trail WHERE id > :mark AND kind = 'row' GROUP BY 1 ORDER BY 1;
SELECT count(*) AS deleted, count(*) FILTER (WHERE tr.old_row = to_jsonb(b)) AS old_row_as_jsonb
FROM tenant_guard.audit_trail tr JOIN bi.plain_before b ON b.id = (tr.row_pk->>'id')::int
WHERE tr.id > :mark AND tr.kind = 'row' AND tr.action = 'DELETE';
SELECT item, old_row FROM tenant_guard.audit_trail
WHERE id > :mark AND kind = 'row' AND action = 'DELETE' AND item IN (1, 3, 12, 13) ORDER BY item;

-- an UPDATE of such a table: each row change is its before and after
-- tuples; audit_trail shows the before image, the after image and the
-- changed columns (those whose stored values differ) as a jsonb record
-- would: values set to NULL and from NULL, a numeric of the same value with
-- another scale (changed), a key change, and rows the statement left as
-- they were (no row change; two of them hold a value stored out of line)
CREATE TABLE bi.up (id int, org_id uuid NOT NULL, note text, n numeric, flag boolean, big text,
                    PRIMARY KEY (org_id, id));
ALTER TABLE bi.up ALTER COLUMN big SET STORAGE EXTERNAL;
SELECT tenant_guard.protect('bi.up');
SELECT tenant_guard.enable_audit('bi.up');
INSERT INTO bi.up SELECT g, :'org_a', CASE WHEN g % 4 <> 0 THEN 'note ' || g END, g / 4.0, g % 2 = 0,
                         CASE WHEN g IN (7, 22) THEN repeat(md5(g::text), 100) END FROM generate_series(1, 24) g;
CREATE TABLE bi.up_before AS SELECT * FROM bi.up;
SELECT pg_temp.last_id() AS mark \gset
UPDATE bi.up SET note = CASE WHEN id % 4 = 0 THEN 'now set' WHEN id % 5 = 0 THEN NULL ELSE note END,
                 n = CASE WHEN id = 4 THEN 1.00 ELSE n END,
                 flag = CASE WHEN id % 3 = 0 THEN NOT flag ELSE flag END,
                 id = CASE WHEN id = 24 THEN 124 ELSE id END
WHERE id > 1;
SELECT action, row_count, rows IS NULL AS no_rows, images IS NOT NULL AS has_images
FROM tenant_guard.audit_log WHERE id > :mark AND kind = 'rows' ORDER BY id;
-- the columns whose values differ (as text), in column order
CREATE FUNCTION pg_temp.text_changes(b jsonb, a jsonb, tbl regclass) RETURNS text[] LANGUAGE sql AS $$
    SELECT coalesce(array_agg(att.attname::text ORDER BY att.attnum), '{}')
    FROM pg_attribute att
    WHERE att.attrelid = tbl AND att.attnum > 0 AND NOT att.attisdropped AND b ? att.attname
      AND (b ->> att.attname) IS DISTINCT FROM (a ->> att.attname)
$$;
SELECT (SELECT count(*) FROM bi.up_before b JOIN bi.up a ON a.id = CASE WHEN b.id = 24 THEN 124 ELSE b.id END
        WHERE pg_temp.text_changes(to_jsonb(b), to_jsonb(a), 'bi.up') <> '{}') AS rows_changed,
       count(*) AS lines, count(*) FILTER (WHERE tr.old_row = to_jsonb(b)) AS old_row_as_jsonb,
       count(*) FILTER (WHERE tr.new_row = to_jsonb(a)) AS new_row_as_jsonb,
       count(*) FILTER (WHERE tr.row_pk = jsonb_build_object('id', a.id, 'org_id', a.org_id)) AS new_key,
       count(*) FILTER (WHERE tr.changed_columns = pg_temp.text_changes(to_jsonb(b), to_jsonb(a), 'bi.up'))
           AS changed_as_the_rows_say
FROM tenant_guard.audit_trail tr
JOIN bi.up_before b ON b.id = (tr.old_row ->> 'id')::int
JOIN bi.up a ON a.id = (tr.row_pk ->> 'id')::int
WHERE tr.id > :mark AND tr.kind = 'row';
SELECT item, row_pk ->> 'id' AS id, changed_columns, old_row ->> 'n' AS old_n, new_row ->> 'n' AS new_n,
       new_row ->> 'note' AS note
FROM tenant_guard.audit_trail WHERE id > :mark AND kind = 'row' AND (row_pk ->> 'id')::int IN (3, 4, 5, 124)
ORDER BY item;
-- the same with no-op updates recorded: empty changed lists, after = before
SET tenant_guard.audit_skip_noop_updates = off;
SELECT pg_temp.last_id() AS mark \gset
UPDATE bi.up SET note = note WHERE big IS NULL;
SELECT action, row_count, images IS NOT NULL AS has_images
FROM tenant_guard.audit_log WHERE id > :mark AND kind = 'rows';
SELECT count(*) AS lines, count(*) FILTER (WHERE changed_columns = '{}' AND new_row = old_row) AS unchanged
FROM tenant_guard.audit_trail WHERE id > :mark AND kind = 'row';
RESET tenant_guard.audit_skip_noop_updates;
-- a changed row holding a value stored out of line makes the record jsonb
-- (the value once, in the before image), the rows before it included
CREATE TABLE bi.up_before2 AS SELECT * FROM bi.up;
SELECT pg_temp.last_id() AS mark \gset
UPDATE bi.up SET flag = NOT flag WHERE id BETWEEN 5 AND 14;
SELECT action, row_count, rows IS NOT NULL AS has_rows, images IS NULL AS no_images
FROM tenant_guard.audit_log WHERE id > :mark AND kind = 'rows';
SELECT count(*) AS lines, count(*) FILTER (WHERE tr.old_row = to_jsonb(b) AND tr.new_row = to_jsonb(a)) AS as_jsonb,
       count(*) FILTER (WHERE octet_length(tr.new_row ->> 'big') = 3200) AS big_values
FROM tenant_guard.audit_trail tr
JOIN bi.up_before2 b ON b.id = (tr.row_pk ->> 'id')::int
JOIN bi.up a ON a.id = (tr.row_pk ->> 'id')::int
WHERE tr.id > :mark AND tr.kind = 'row';
-- a few row changes: binary images too, read as the same jsonb
SELECT pg_temp.last_id() AS mark \gset
UPDATE bi.up SET flag = NOT flag WHERE id IN (2, 3, 5);
SELECT row_count, rows IS NULL AS no_rows, images IS NOT NULL AS has_images,
       tenant_guard._audit_images(id, xact_at, org, hash) = (SELECT jsonb_agg(jsonb_build_object('pk', jsonb_build_object('id', u.id, 'org_id', u.org_id),
                                                   'old', to_jsonb(u) || jsonb_build_object('flag', NOT u.flag),
                                                   'set', jsonb_build_object('flag', u.flag),
                                                   'changed', '["flag"]'::jsonb) ORDER BY u.id)
               FROM bi.up u WHERE u.id IN (2, 3, 5)) AS images_as_jsonb
FROM tenant_guard.audit_log WHERE id > :mark AND kind = 'rows';
-- a table with an excluded and a dropped column: binary UPDATEs too, the
-- excluded column neither shown nor counted as changed
CREATE TABLE bi.upx (id int, org_id uuid NOT NULL, gone int, note text, hidden text, PRIMARY KEY (org_id, id));
ALTER TABLE bi.upx DROP COLUMN gone;
SELECT tenant_guard.protect('bi.upx');
SELECT tenant_guard.enable_audit('bi.upx', exclude_columns => '{hidden}');
INSERT INTO bi.upx SELECT g, :'org_a', 'note ' || g, 'h' FROM generate_series(1, 10) g;
CREATE TABLE bi.upx_before AS SELECT * FROM bi.upx;
SELECT pg_temp.last_id() AS mark \gset
-- (row 10: only the excluded column changes, no row change)
UPDATE bi.upx SET hidden = 'h2', note = CASE WHEN id = 10 THEN note WHEN id % 2 = 0 THEN 'even' ELSE note || '!' END;
SELECT action, row_count, rows IS NULL AS no_rows, images IS NOT NULL AS has_images
FROM tenant_guard.audit_log WHERE id > :mark AND kind = 'rows';
SELECT count(*) AS lines, count(*) FILTER (WHERE tr.old_row = to_jsonb(b) - 'hidden') AS old_row_as_jsonb,
       count(*) FILTER (WHERE tr.new_row = to_jsonb(a) - 'hidden') AS new_row_as_jsonb,
       count(*) FILTER (WHERE tr.changed_columns = pg_temp.text_changes(to_jsonb(b) - 'hidden', to_jsonb(a),
                                                                         'bi.upx')) AS changed_as_the_rows_say
FROM tenant_guard.audit_trail tr
JOIN bi.upx_before b ON b.id = (tr.row_pk ->> 'id')::int
JOIN bi.upx a ON a.id = (tr.row_pk ->> 'id')::int
WHERE tr.id > :mark AND tr.kind = 'row';

-- one statement over many tenants (a platform job): one record per tenant
-- and statement, each row in its tenant's (the statement's table of open
-- records by tenant grows past its first 64 entries; each COMMIT seals 300
-- records, inserted in two batches of heap tuples)
CREATE TABLE bi.many (id int, org_id uuid NOT NULL, v text, PRIMARY KEY (org_id, id));
SELECT tenant_guard.protect('bi.many');
SELECT tenant_guard.enable_audit('bi.many');
SELECT pg_temp.last_id() AS mark \gset
INSERT INTO bi.many SELECT g, ('00000000-0000-4000-8000-' || lpad(to_hex(g % 300), 12, '0'))::uuid, 'v' || g
FROM generate_series(1, 3000) g;
UPDATE bi.many SET v = v || '!';
DELETE FROM bi.many;
SELECT action, count(*) AS records, sum(row_count) AS row_changes, count(DISTINCT org) AS tenants,
       bool_and(images IS NOT NULL) AS binary
FROM tenant_guard.audit_log WHERE id > :mark AND kind = 'rows' GROUP BY action ORDER BY action;
SELECT action, count(*) AS lines,
       count(*) FILTER (WHERE org = coalesce(new_row, old_row) ->> 'org_id') AS in_own_tenant_record,
       count(*) FILTER (WHERE action <> 'UPDATE' OR new_row ->> 'v' = (old_row ->> 'v') || '!') AS values_right
FROM tenant_guard.audit_trail WHERE id > :mark AND kind = 'row' GROUP BY action ORDER BY action;
SELECT count(*) AS sealed, count(DISTINCT seal_seq) AS seal_numbers, max(seal_seq) - min(seal_seq) + 1 AS span
FROM tenant_guard.audit_log WHERE id > :mark AND kind = 'rows';
SELECT ok, problem FROM tenant_guard.verify_audit();
-- each record of the batches found through both of the log's indexes
SELECT min(seal_seq) AS first_seal FROM tenant_guard.audit_log WHERE id > :mark \gset
BEGIN;
SET LOCAL enable_seqscan = off;
SET LOCAL enable_bitmapscan = off;
SELECT count(*) AS by_tenant_index FROM tenant_guard.audit_log
WHERE org BETWEEN '00000000-0000-4000-8000-000000000000' AND '00000000-0000-4000-8000-00000000ffff' AND id > :mark;
SELECT count(*) AS by_seal_index FROM tenant_guard.audit_log WHERE seal_seq >= :first_seal;
COMMIT;

-- a table with a column of another type (an array) keeps jsonb
CREATE TABLE bi.other (id int PRIMARY KEY, tags text[]);
SELECT tenant_guard.enable_audit('bi.other');
SELECT pg_temp.last_id() AS mark \gset
INSERT INTO bi.other SELECT g, ARRAY['x' || g] FROM generate_series(1, 20) g;
SELECT row_count, rows IS NOT NULL AS has_rows, images IS NULL AS no_images
FROM tenant_guard.audit_log WHERE id > :mark AND kind = 'rows';

-- rows of two relations in one record: partitions audited on their own
-- (row mode) share their root's record; the images so far become jsonb
CREATE TABLE bi.parted (id int, org_id uuid, v text, PRIMARY KEY (org_id, id)) PARTITION BY RANGE (id);
CREATE TABLE bi.parted_1 PARTITION OF bi.parted FOR VALUES FROM (0) TO (100);
CREATE TABLE bi.parted_2 (v text, org_id uuid NOT NULL, id int NOT NULL);  -- another column order
ALTER TABLE bi.parted ATTACH PARTITION bi.parted_2 FOR VALUES FROM (100) TO (200);
SELECT tenant_guard.enable_audit('bi.parted_1');
SELECT tenant_guard.enable_audit('bi.parted_2');
SELECT pg_temp.last_id() AS mark \gset
INSERT INTO bi.parted SELECT g, :'org_a', 'v' || g FROM generate_series(90, 109) g;
SELECT table_name, row_count, rows IS NOT NULL AS has_rows, images IS NULL AS no_images
FROM tenant_guard.audit_log WHERE id > :mark AND kind = 'rows';
SELECT count(*) AS lines,
       count(*) FILTER (WHERE new_row = jsonb_build_object('id', (row_pk->>'id')::int, 'org_id', :'org_a'::uuid,
                                                          'v', 'v' || (row_pk->>'id'))) AS as_jsonb
FROM tenant_guard.audit_trail WHERE id > :mark AND kind = 'row';

-- the chain verifies over binary records
SELECT ok, problem FROM tenant_guard.verify_audit();

-- reading: a tenant sees its own binary records only; the reader takes a
-- record's key and reads it with the caller's rights
CREATE ROLE regress_images_app;
GRANT USAGE ON SCHEMA bi TO regress_images_app;
GRANT SELECT, INSERT, DELETE ON bi.t TO regress_images_app;
SET tenant_guard.org_id = :'org_b';
SELECT pg_temp.last_id() AS mark \gset
INSERT INTO bi.t SELECT id + 1000, :'org_b', b, i2, i4, p, n, n2, t, vc, c, d, ts, tz, j, u, secret, skipped, big,
                        "Mixed Case", "ÄÖ" FROM bi.src;
SELECT org = :'org_b' AS org_b, images IS NOT NULL AS has_images
FROM tenant_guard.audit_log WHERE id > :mark AND kind = 'rows';
SET tenant_guard.org_id = :'org_a';
SET ROLE regress_images_app;
SELECT count(*) FILTER (WHERE org = :'org_a') AS own_lines, count(*) FILTER (WHERE org <> :'org_a') AS other_lines
FROM tenant_guard.audit_trail WHERE kind = 'row' AND table_name = 'bi.t';
-- tenant B's binary record, by its key: nothing
RESET ROLE;
SELECT id AS b_id, xact_at AS b_at, hash AS b_hash FROM tenant_guard.audit_log
WHERE org = :'org_b' AND images IS NOT NULL ORDER BY id DESC LIMIT 1 \gset
SET ROLE regress_images_app;
SELECT tenant_guard._audit_images(:b_id, :'b_at', :'org_b', :'b_hash') IS NULL AS other_tenant_hidden;
SELECT tenant_guard._audit_images(:b_id, :'b_at', :'org_a', :'b_hash') IS NULL AS wrong_org_nothing;
SELECT tenant_guard._audit_images(:b_id, :'b_at', NULL, :'b_hash') IS NULL AS null_org_nothing;
SELECT tenant_guard._audit_images(NULL, NULL, NULL, NULL) IS NULL AS nulls_nothing;
-- writing the log is not for applications: no forged images to decode
INSERT INTO tenant_guard.audit_log (id, xact_at, statement_at, xid, org, kind, seq, action, db_role, session_role,
                                    row_count, prev_hash, hash, images)
VALUES (1, now(), now(), 1, :'org_a', 'rows', 1, 'INSERT', 'x', 'x', 1, '\x', '\x', '\x5447493101');
RESET ROLE;
SET tenant_guard.org_id = :'org_b';
SELECT tenant_guard._audit_images(:b_id, :'b_at', :'org_b', :'b_hash') IS NOT NULL AS own_tenant_reads;
SELECT jsonb_array_length(tenant_guard._audit_images(:b_id, :'b_at', :'org_b', :'b_hash')) AS b_rows;
SELECT tenant_guard._audit_images(:b_id, :'b_at', :'org_b', '\x00') IS NULL AS wrong_hash_nothing;
SET tenant_guard.org_id = :'org_a';
-- the reader's query, planned while a superuser (who bypasses row-level
-- security) called it, is planned again for the application role in the
-- same (pooled) connection
SELECT tenant_guard._audit_images(:b_id, :'b_at', :'org_b', :'b_hash') IS NOT NULL AS superuser_reads;
SET ROLE regress_images_app;
SELECT tenant_guard._audit_images(:b_id, :'b_at', :'org_b', :'b_hash') IS NULL AS app_still_hidden;
RESET ROLE;
-- a single-row record is binary too: tenant A's application role gets
-- nothing of tenant B's, by the view or by its key; B's line reads with its
-- redacted column masked
SET tenant_guard.org_id = :'org_b';
SELECT pg_temp.last_id() AS mark \gset
INSERT INTO bi.t SELECT id + 5000, :'org_b', b, i2, i4, p, n, n2, t, vc, c, d, ts, tz, j, u, secret, skipped, big,
                        "Mixed Case", "ÄÖ" FROM bi.src WHERE id = 1;
SELECT id AS b1_id, xact_at AS b1_at, hash AS b1_hash FROM tenant_guard.audit_log WHERE id > :mark AND kind = 'rows' \gset
SELECT row_count, rows IS NULL AND images IS NOT NULL AS single_row_binary FROM tenant_guard.audit_log WHERE id = :b1_id;
SET tenant_guard.org_id = :'org_a';
SET ROLE regress_images_app;
SELECT tenant_guard._audit_images(:b1_id, :'b1_at', :'org_b', :'b1_hash') IS NULL AS single_row_hidden,
       (SELECT count(*) FROM tenant_guard.audit_trail WHERE id = :b1_id) AS lines_seen;
RESET ROLE;
SET tenant_guard.org_id = :'org_b';
SELECT row_pk->>'id' AS id, new_row->>'secret' AS secret, new_row->>'t' = (SELECT t FROM bi.src WHERE id = 1) AS same_t
FROM tenant_guard.audit_trail WHERE id = :b1_id;
SET tenant_guard.org_id = :'org_a';

-- the format's version 2 leaves out the first 18 bytes of each tuple's
-- header (t_infomask2 on is stored); a record of version 1, which stored
-- them as zeros, still reads the same: every binary record so far, made
-- version 1 (in the server's byte order, little-endian here), gives the same
-- lines
SELECT string_agg(DISTINCT get_byte(images, 4)::text, ',') AS versions,
       string_agg(DISTINCT chr(get_byte(images, 5)), '' ORDER BY chr(get_byte(images, 5))) AS kinds
FROM tenant_guard.audit_log WHERE images IS NOT NULL;
CREATE FUNCTION pg_temp.le32(x bigint) RETURNS bytea LANGUAGE sql AS $$
    SELECT set_byte(set_byte(set_byte(set_byte('\x00000000'::bytea, 0, (x & 255)::int), 1, ((x >> 8) & 255)::int),
                             2, ((x >> 16) & 255)::int), 3, ((x >> 24) & 255)::int)
$$;
CREATE FUNCTION pg_temp.u(b bytea, off int, n int) RETURNS bigint LANGUAGE sql AS $$
    SELECT sum(get_byte(b, off + k)::bigint << (8 * k))::bigint FROM generate_series(0, n - 1) k
$$;
CREATE FUNCTION pg_temp.as_version_1(img bytea) RETURNS bytea LANGUAGE plpgsql AS $$
DECLARE
    off int := 11 + get_byte(img, 10);  -- after the prefix and the zone name
    ncols int := pg_temp.u(img, off, 2);
    npk int := pg_temp.u(img, off + 2, 2);
    hdr int;
    tuples bigint;
    len bigint;
    body bytea := '\x';
BEGIN
    off := off + 4;
    FOR i IN 1 .. ncols LOOP
        off := off + 8 + pg_temp.u(img, off + 6, 2)::int;
    END LOOP;
    off := off + 2 * npk;
    hdr := off;
    tuples := pg_temp.u(img, 6, 4) * CASE WHEN get_byte(img, 5) = ascii('U') THEN 2 ELSE 1 END;
    FOR i IN 1 .. tuples LOOP
        len := pg_temp.u(img, off, 4);
        body := body || pg_temp.le32(len + 18) || decode(repeat('00', 18), 'hex')
                || substring(img FROM off + 5 FOR len::int);
        off := off + 4 + len::int;
    END LOOP;
    IF off <> octet_length(img) THEN
        RAISE EXCEPTION 'not read to its end';
    END IF;
    RETURN set_byte(substring(img FROM 1 FOR hdr), 4, 1) || body;
END
$$;
CREATE TEMP TABLE v2_lines AS
SELECT id, xact_at, org, hash, octet_length(images) AS bytes, tenant_guard._audit_images(id, xact_at, org, hash) AS lines
FROM tenant_guard.audit_log WHERE images IS NOT NULL;
BEGIN;
SET LOCAL session_replication_role = replica;
UPDATE tenant_guard.audit_log SET images = pg_temp.as_version_1(images) WHERE images IS NOT NULL;
SELECT count(*) AS records, bool_and(get_byte(l.images, 4) = 1) AS all_version_1,
       bool_and(octet_length(l.images) > v.bytes) AS longer,
       count(v.lines) AS records_read,
       bool_and(tenant_guard._audit_images(v.id, v.xact_at, v.org, v.hash) IS NOT DISTINCT FROM v.lines) AS same_lines
FROM v2_lines v JOIN tenant_guard.audit_log l USING (id);
ROLLBACK;

-- tampering: images edited, removed (rows put back as jsonb), or added to a
-- jsonb record: each breaks the chain at that record
SELECT id AS img_id FROM tenant_guard.audit_log WHERE images IS NOT NULL AND org = :'org_a' ORDER BY id LIMIT 1 \gset
SELECT id AS json_id FROM tenant_guard.audit_log WHERE rows IS NOT NULL AND org = :'org_a' ORDER BY id LIMIT 1 \gset
BEGIN;
SET LOCAL session_replication_role = replica;
UPDATE tenant_guard.audit_log SET images = overlay(images PLACING '\x00' FROM octet_length(images) - 3) WHERE id = :img_id;
SELECT ok, broken_id = :img_id AS at_record, problem LIKE '% was edited: its hash does not match its content' AS edited
FROM tenant_guard.verify_audit();
ROLLBACK;
BEGIN;
SET LOCAL session_replication_role = replica;
UPDATE tenant_guard.audit_log SET rows = tenant_guard._audit_images(id, xact_at, org, hash), images = NULL WHERE id = :img_id;
SELECT ok, broken_id = :img_id AS at_record, problem LIKE '% was edited: its hash does not match its content' AS edited
FROM tenant_guard.verify_audit();
ROLLBACK;
BEGIN;
SET LOCAL session_replication_role = replica;
UPDATE tenant_guard.audit_log l SET images = (SELECT images FROM tenant_guard.audit_log WHERE id = :img_id)
WHERE id = :json_id;
SELECT ok, broken_id = :json_id AS at_record, problem LIKE '% was edited: its hash does not match its content' AS edited
FROM tenant_guard.verify_audit();
ROLLBACK;
-- the hash frames images apart from rows: the same bytes in either column differ
SELECT tenant_guard._audit_hash(1, '2024-01-01', '2024-01-01', 1, 'o', 'rows', 1, 'INSERT', 't', NULL, NULL, NULL,
           'r', 'r', NULL, 1, NULL, NULL, '\x', NULL, NULL, '\x5447493101')
    <> tenant_guard._audit_hash(1, '2024-01-01', '2024-01-01', 1, 'o', 'rows', 1, 'INSERT', 't', NULL, NULL, NULL,
           'r', 'r', NULL, 1, NULL, NULL, '\x', NULL, NULL) AS framed;

DROP OWNED BY regress_images_app;
DROP ROLE regress_images_app;
