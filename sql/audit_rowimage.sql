-- Row images are written straight in jsonb's binary form (src/pg/audit_rowjson.cpp).
-- Whatever the column types, names and count, the stored bytes must be the
-- ones PostgreSQL's own jsonb input makes of the same value: the record's
-- hash recomputed over rows::text::jsonb (what a dump restores) must equal
-- the stored hash, and the images must equal to_jsonb() of the rows. Forty
-- columns (more than jsonb's offset stride of 32 entries per object), names
-- of many lengths, NULLs, numerics (NaN, huge scale), floats (Infinity),
-- nested and scalar json/jsonb, arrays, a composite, a range, unicode,
-- quotes and control characters.
\set SHOW_CONTEXT never
\set org_a '11111111-1111-4111-8111-111111111111'
SET tenant_guard.context_source = 'setting';
SET tenant_guard.org_id = :'org_a';
SET tenant_guard.user_id = 'alice';
CREATE SCHEMA ri;
CREATE TYPE ri.pair AS (x int, y text);
CREATE TYPE ri.mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN ri.pos AS int CHECK (VALUE > 0);
CREATE TABLE ri.t (
    id bigint NOT NULL, org_id uuid NOT NULL,
    a int, bb text, ccc numeric, dddd float8, eeeee jsonb, ffffff json, g boolean, hh timestamptz,
    iii interval, jjjj bytea, kkkkk text[], llllll int[], m ri.pair, nn ri.mood, ooo ri.pos, pppp int4range,
    qqqqq char(5), rrrrrr varchar(10), s date, tt time, uuu uuid, vvvv real, wwwww smallint, xxxxxx money,
    "y y" text, "Zz" text, "ÄÖ" text, "a_rather_long_column_name_of_many_bytes" text, c30 int, c31 int, c32 int,
    c33 int, c34 int, c35 int, c36 text, c37 text, c38 jsonb, c39 numeric,
    PRIMARY KEY (org_id, id)
);
SELECT tenant_guard.protect('ri.t');
SELECT tenant_guard.enable_audit('ri.t');
INSERT INTO ri.t VALUES
 (1, :'org_a', 1, 'plain', 1.5, 2.25, '{"b": [1, {"c": null}], "a": "x", "aa": true}', '{"k": 1, "k": 2}', true,
  '2024-02-29 12:00:00+00', '1 day 02:03:04', '\x00ff10', '{"a","b c",NULL}', '{1,NULL,3}', ROW(7, 'seven'), 'happy', 5,
  '[1,10)', 'ab', 'vc', '2024-02-29', '23:59:59.5', '22222222-2222-4222-8222-222222222222', 1.25, -3, 12.34,
  'space', 'case', 'umlaut', 'long', 30, 31, 32, 33, 34, 35, 'thirty-six', 'thirty-seven', '"a jsonb scalar"', 0),
 (2, :'org_a', NULL, E'quote " backslash \\ newline \n tab \t bell \x07 é 中 😀', 'NaN', 'Infinity',
  '5', '[]', false, NULL, '-1 year', '\x', '{}', '{}', ROW(NULL, NULL), 'sad', 1, 'empty', NULL, '', NULL, NULL,
  NULL, '-Infinity', 32767, NULL, NULL, NULL, NULL, repeat('x', 3000), NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, 'null', 123456789012345678901234567890.123456789012345678901234567890),
 (3, :'org_a', -2147483648, '', -0.000000000000000000001, '-0', '{"deep": {"deeper": {"deepest": [[[]]]}}}',
  '"json scalar"', NULL, '-infinity', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'infinity', NULL,
  NULL, 'NaN', NULL, NULL, '', '', '', '', NULL, NULL, NULL, NULL, NULL, NULL, '', '', '{}', '-1e-100');
UPDATE ri.t SET bb = bb || '!', c39 = 42, eeeee = '{"z": 1}', "y y" = NULL WHERE id IN (1, 2);
UPDATE ri.t SET c30 = c30 WHERE id = 1;   -- no column changes
DELETE FROM ri.t WHERE id = 3;

-- every record of the table: its hash over the restored form of its rows
SELECT l.action, l.row_count,
       l.rows = l.rows::text::jsonb AS same_value,
       l.hash = tenant_guard._audit_hash(l.id, l.xact_at, l.statement_at, l.xid, l.org, l.kind, l.seq, l.action,
                   l.table_name, l.actor, l.impersonator, l.tenant_role, l.db_role, l.session_role,
                   l.application_name, l.row_count, l.rows::text::jsonb, l.detail, l.prev_hash, l.seal_seq,
                   l.seal_prev) AS same_bytes
FROM tenant_guard.audit_log l
WHERE l.table_name = 'ri.t' AND l.kind = 'rows' ORDER BY l.id;

-- the images are to_jsonb() of the rows (the new rows as they are now)
SELECT tr.row_pk, tr.new_row = to_jsonb(t) AS new_is_to_jsonb
FROM tenant_guard.audit_trail tr JOIN ri.t t ON t.id = (tr.row_pk->>'id')::bigint
WHERE tr.table_name = 'ri.t' AND tr.action = 'UPDATE' AND tr.row_pk->>'id' = '2'
ORDER BY tr.id DESC LIMIT 1;
SELECT tr.old_row->>'bb' AS deleted_bb, tr.old_row->'dddd' AS deleted_dddd, tr.old_row->'ccc' AS deleted_ccc
FROM tenant_guard.audit_trail tr WHERE tr.table_name = 'ri.t' AND tr.action = 'DELETE';
SELECT tr.changed_columns FROM tenant_guard.audit_trail tr
WHERE tr.table_name = 'ri.t' AND tr.action = 'UPDATE' ORDER BY tr.id, tr.item;

-- An UPDATE's record stores the before image and the new values of the
-- changed columns only ("set"); audit_trail's new_row is the whole after
-- image. Each stored change: its keys, and "set" holding exactly the
-- changed columns.
SELECT r.item, ARRAY(SELECT jsonb_object_keys(r.change) ORDER BY 1) AS stored_keys,
       ARRAY(SELECT jsonb_object_keys(r.change -> 'set') ORDER BY 1)
         = ARRAY(SELECT jsonb_array_elements_text(r.change -> 'changed') ORDER BY 1) AS set_is_changed
FROM tenant_guard.audit_log l, jsonb_array_elements(l.rows) WITH ORDINALITY r(change, item)
WHERE l.table_name = 'ri.t' AND l.kind = 'rows' AND l.action = 'UPDATE' ORDER BY l.id, r.item;
-- a key change, a value set to NULL and back, a column set to its own value
UPDATE ri.t SET id = 10, a = NULL, "y y" = 'back', c30 = c30 WHERE id = 1;
UPDATE ri.t SET a = 7 WHERE id = 10;
SELECT tr.row_pk, tr.old_row->'id' AS old_id, tr.new_row->'id' AS new_id, tr.changed_columns,
       tr.new_row = to_jsonb(t) AS new_is_to_jsonb,
       tr.new_row - tr.changed_columns = tr.old_row - tr.changed_columns AS rest_unchanged
FROM tenant_guard.audit_trail tr JOIN ri.t t ON t.id = 10
WHERE tr.table_name = 'ri.t' AND tr.action = 'UPDATE' ORDER BY tr.id DESC LIMIT 1;
SELECT tr.row_pk, tr.new_row->'a' AS a, tr.new_row->'y y' AS yy, tr.old_row->'y y' AS old_yy,
       (tr.new_row - 'id' - 'a' - 'y y') = (tr.old_row - 'id' - 'a' - 'y y') AS rest_unchanged
FROM tenant_guard.audit_trail tr
WHERE tr.table_name = 'ri.t' AND tr.action = 'UPDATE' AND tr.row_pk->>'id' = '10' AND tr.old_row->>'id' = '1';
-- with no column changed (tenant_guard.audit_skip_noop_updates off): "set"
-- is empty and the after image is the before image
SET tenant_guard.audit_skip_noop_updates = off;
UPDATE ri.t SET c31 = c31 WHERE id = 10;
RESET tenant_guard.audit_skip_noop_updates;
SELECT tr.changed_columns, tr.new_row = tr.old_row AS same_image, tr.new_row = to_jsonb(t) AS new_is_to_jsonb
FROM tenant_guard.audit_trail tr JOIN ri.t t ON t.id = 10
WHERE tr.table_name = 'ri.t' AND tr.action = 'UPDATE' ORDER BY tr.id DESC LIMIT 1;
SELECT ok, problem FROM tenant_guard.verify_audit(:'org_a');
