-- tenant_guard.attack_grid() on deliberately broken schemas: each broken
-- fixture must make the vector that targets it leak, and assert_isolated()
-- must fail. Every table (uuid and text tenant columns, partitions, an
-- inheritance child) is first protected with protect(), then weakened
-- the way real schemas drift (the grid covers the registered tables).
\set SHOW_CONTEXT never
\set org_a '11111111-1111-4111-8111-111111111111'
\set org_b '22222222-2222-4222-8222-222222222222'
SET tenant_guard.context_source = 'signed';
CREATE ROLE regress_agb_owner;
CREATE ROLE regress_agb_app LOGIN;
CREATE ROLE regress_agb_bypass LOGIN BYPASSRLS;
SELECT tenant_guard.register_app_role('regress_agb_app');
SELECT tenant_guard.register_app_role('regress_agb_bypass');
CREATE SCHEMA bk AUTHORIZATION regress_agb_owner;
GRANT USAGE ON SCHEMA bk TO regress_agb_app, regress_agb_bypass;

SET ROLE regress_agb_owner;
-- 1. owner without FORCE: the application role owns the table
CREATE TABLE bk.owned (org_id uuid NOT NULL, id int NOT NULL, PRIMARY KEY (org_id, id));
-- 2. permissive-only: the wall dropped, a permissive USING (true) policy added
CREATE TABLE bk.permissive (org_id uuid NOT NULL, id int NOT NULL, PRIMARY KEY (org_id, id));
-- 3. a view owned by a superuser (and a materialized view, and a SECURITY
--    DEFINER function owned by a superuser) over a protected table
CREATE TABLE bk.viewed (org_id uuid NOT NULL, id int NOT NULL, PRIMARY KEY (org_id, id));
-- 4. a global unique key (and a foreign key that does not include the tenant)
CREATE TABLE bk.keyed (org_id uuid NOT NULL, code text NOT NULL UNIQUE);
CREATE TABLE bk.refs (org_id uuid NOT NULL, code text REFERENCES bk.keyed (code));
-- 5. a partition without row-level security
CREATE TABLE bk.parted (org_id uuid NOT NULL, k int NOT NULL) PARTITION BY LIST (k);
CREATE TABLE bk.parted_1 PARTITION OF bk.parted FOR VALUES IN (1);
CREATE TABLE bk.parted_2 PARTITION OF bk.parted FOR VALUES IN (2);
-- 6. TRUNCATE granted
CREATE TABLE bk.truncated (org_id uuid NOT NULL, id int);
-- 7. an inheritance child without row-level security
CREATE TABLE bk.inh (org_id uuid NOT NULL, n int);
CREATE TABLE bk.inh_child () INHERITS (bk.inh);
-- 8. a text tenant column with a permissive-only policy
CREATE TABLE bk.textual (org_id text NOT NULL, body text);
INSERT INTO bk.owned VALUES (:'org_a', 1), (:'org_b', 2);
INSERT INTO bk.permissive VALUES (:'org_a', 1), (:'org_b', 2);
INSERT INTO bk.viewed VALUES (:'org_a', 1), (:'org_b', 2);
INSERT INTO bk.keyed VALUES (:'org_a', 'a-key'), (:'org_b', 'b-key');
INSERT INTO bk.parted VALUES (:'org_a', 1), (:'org_b', 1), (:'org_a', 2), (:'org_b', 2);
INSERT INTO bk.truncated VALUES (:'org_a', 1), (:'org_b', 2);
INSERT INTO bk.inh_child VALUES (:'org_a', 1), (:'org_b', 2);
INSERT INTO bk.textual VALUES (:'org_a', 'a'), (:'org_b', 'b');
SELECT tenant_guard.protect(t) FROM unnest('{bk.owned,bk.permissive,bk.viewed,bk.keyed,bk.refs,bk.parted,bk.truncated,bk.inh,bk.textual}'::regclass[]) t;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA bk TO regress_agb_app, regress_agb_bypass;
GRANT TRUNCATE ON bk.truncated TO regress_agb_app;
RESET ROLE;

-- the weakening, through the knowing escape
BEGIN;
SET LOCAL tenant_guard.allow_unsafe_ddl = on;
SET client_min_messages = error;
ALTER TABLE bk.owned NO FORCE ROW LEVEL SECURITY;
ALTER TABLE bk.owned OWNER TO regress_agb_app;
DROP POLICY tg_wall ON bk.permissive;
CREATE POLICY everyone ON bk.permissive USING (true) WITH CHECK (true);
ALTER TABLE bk.parted_2 DISABLE ROW LEVEL SECURITY;
ALTER TABLE bk.inh_child DISABLE ROW LEVEL SECURITY;
DROP POLICY tg_wall ON bk.textual;
CREATE POLICY everyone ON bk.textual USING (true) WITH CHECK (true);
RESET client_min_messages;
COMMIT;
-- what harden_app_role() would do about the other sessions and the next
-- client (attack_grid.sql shows query_text and temp_object leaking without)
ALTER ROLE regress_agb_app SET track_activities = off;
ALTER ROLE regress_agb_bypass SET track_activities = off;
DO $$ BEGIN EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database()); END $$;
CREATE VIEW bk.viewed_v AS SELECT * FROM bk.viewed;
CREATE MATERIALIZED VIEW bk.viewed_mv AS SELECT * FROM bk.viewed;
CREATE FUNCTION bk.all_viewed() RETURNS SETOF bk.viewed LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp AS 'SELECT * FROM bk.viewed';
GRANT SELECT ON bk.viewed_v, bk.viewed_mv, bk.parted_2 TO regress_agb_app;
GRANT INSERT ON bk.parted_2, bk.inh_child TO regress_agb_app;
GRANT EXECUTE ON FUNCTION bk.all_viewed() TO regress_agb_app;

-- with the TRUNCATE guard off (it is on by default)
SET tenant_guard.block_app_truncate = off;
CREATE TEMP TABLE grid AS SELECT * FROM tenant_guard.attack_grid('regress_agb_app', :'org_a', :'org_b');
RESET tenant_guard.block_app_truncate;
-- each fixture and the vector that targets it
SELECT f.tbl, f.vector, g.outcome, g.detail
FROM (VALUES ('bk.owned'::regclass, 'owner_without_force'), ('bk.permissive', 'read_other_tenant'),
             ('bk.viewed', 'definer_view'), ('bk.viewed', 'materialized_view'), ('bk.viewed', 'definer_function'),
             ('bk.keyed', 'unique_oracle'), ('bk.keyed', 'on_conflict_oracle'), ('bk.keyed', 'foreign_key_oracle'),
             ('bk.parted', 'partition_direct'), ('bk.parted', 'child_insert'),
             ('bk.inh', 'partition_direct'), ('bk.inh', 'child_insert'), ('bk.textual', 'read_other_tenant'),
             ('bk.textual', 'insert_into_other_tenant'), ('bk.truncated', 'truncate')) f(tbl, vector)
LEFT JOIN grid g ON g.tbl = f.tbl AND g.vector = f.vector
ORDER BY f.tbl::text, f.vector, g.detail;
-- every leak, per table
SELECT tbl, string_agg(vector, ', ' ORDER BY vector) AS leaking FROM grid WHERE outcome = 'leak' GROUP BY tbl ORDER BY tbl::text;
-- the permissive-only table, vector by vector
SELECT vector, outcome, detail FROM grid WHERE tbl = 'bk.permissive'::regclass AND outcome <> 'blocked' ORDER BY 1;
-- the owner, vector by vector
SELECT vector, outcome, detail FROM grid WHERE tbl = 'bk.owned'::regclass AND outcome = 'leak' ORDER BY 1;

-- with the TRUNCATE guard on, the same grant is blocked
SELECT vector, outcome, detail FROM tenant_guard.attack_grid('regress_agb_app', :'org_a', :'org_b')
WHERE tbl = 'bk.truncated'::regclass AND vector = 'truncate';
-- with the EXPLAIN ANALYZE guard off, EXPLAIN ANALYZE leaks the filtered rows
SET tenant_guard.block_explain_analyze = off;
SELECT tbl, vector, outcome, detail FROM tenant_guard.attack_grid('regress_agb_app', :'org_a', :'org_b')
WHERE tbl IN ('bk.viewed'::regclass, 'bk.truncated'::regclass) AND vector = 'explain_analyze';
RESET tenant_guard.block_explain_analyze;
-- with the WITH HOLD and LISTEN guards off, both leak
SET tenant_guard.block_app_hold_cursors = off;
SET tenant_guard.block_app_listen = off;
SELECT vector, outcome, detail FROM tenant_guard.attack_grid('regress_agb_app', :'org_a', :'org_b')
WHERE tbl = 'bk.viewed'::regclass AND vector IN ('hold_cursor', 'listen') ORDER BY 1;
RESET tenant_guard.block_app_hold_cursors;
RESET tenant_guard.block_app_listen;

-- a BYPASSRLS application role (or one that can SET ROLE to one)
SELECT vector, outcome, detail FROM tenant_guard.attack_grid('regress_agb_bypass', :'org_a', :'org_b')
WHERE tbl = 'bk.viewed'::regclass AND vector IN ('role_attributes', 'row_security_off', 'read_other_tenant', 'copy_in')
ORDER BY 1;
CREATE ROLE regress_agb_member LOGIN IN ROLE regress_agb_bypass;
GRANT USAGE ON SCHEMA bk TO regress_agb_member;
SELECT vector, outcome, detail FROM tenant_guard.attack_grid('regress_agb_member', :'org_a', :'org_b')
WHERE tbl = 'bk.viewed'::regclass AND vector IN ('role_attributes', 'read_other_tenant') ORDER BY 1;
REVOKE USAGE ON SCHEMA bk FROM regress_agb_member;
DROP ROLE regress_agb_member;

-- assert_isolated lists every leak in one error
\set VERBOSITY default
SELECT tenant_guard.assert_isolated('regress_agb_app', :'org_a', :'org_b');
\set VERBOSITY terse
-- ... which CI can catch by its SQLSTATE
DO $$
BEGIN
    PERFORM tenant_guard.assert_isolated('regress_agb_app', '11111111-1111-4111-8111-111111111111',
                                         '22222222-2222-4222-8222-222222222222');
EXCEPTION WHEN SQLSTATE 'TGA01' THEN
    RAISE NOTICE 'caught TGA01';
END
$$;
-- and nothing of the attacks stayed
SELECT (SELECT count(*) FROM bk.owned) AS owned, (SELECT count(*) FROM bk.permissive) AS permissive,
       (SELECT count(*) FROM bk.truncated) AS truncated, (SELECT count(*) FROM bk.parted) AS parted,
       (SELECT count(*) FROM bk.keyed) AS keyed, (SELECT count(*) FROM bk.refs) AS refs;
SELECT count(*) AS policies_left FROM pg_policy WHERE polrelid = 'bk.owned'::regclass;

DROP SCHEMA bk CASCADE;
SELECT tenant_guard.unregister_app_role('regress_agb_app');
SELECT tenant_guard.unregister_app_role('regress_agb_bypass');
DROP ROLE regress_agb_app;
DROP ROLE regress_agb_bypass;
DROP ROLE regress_agb_owner;
