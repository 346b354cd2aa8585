-- Tenant lifecycle: the tg_lifecycle_* write walls are part of what protect()
-- generates, so every path that regenerates a table's policies (protect()
-- again, allow(), disallow(), protect_schema(), a new partition) keeps them:
-- an archived tenant's application role stays unable to write after each.
-- verify() and lint() report a protected table that lacks one, and the DDL
-- guards refuse weakening one.
\getenv tokens_file TG_TOKENS_SQL
\i :tokens_file
\set VERBOSITY default
\set SHOW_CONTEXT never
SET tenant_guard.context_source = 'setting';

CREATE ROLE regress_lcw_app;
CREATE SCHEMA lcw;
GRANT USAGE ON SCHEMA lcw TO regress_lcw_app;
CREATE TABLE lcw.items (org_id uuid NOT NULL, id int, v text);
CREATE TABLE lcw.log (org_id uuid NOT NULL, at int NOT NULL, v text) PARTITION BY RANGE (at);
CREATE TABLE lcw.log_1 PARTITION OF lcw.log FOR VALUES FROM (0) TO (100);
CREATE TABLE lcw.notes (org_id uuid NOT NULL, v text);
CREATE TABLE lcw.notes_old (kept boolean) INHERITS (lcw.notes);
SELECT tenant_guard.protect_schema('lcw');
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA lcw TO regress_lcw_app;
SET tenant_guard.org_id = :'org_a';
INSERT INTO lcw.items VALUES (:'org_a', 1, 'a');
INSERT INTO lcw.log VALUES (:'org_a', 1, 'a');
INSERT INTO lcw.notes_old VALUES (:'org_a', 'a', true);
SET tenant_guard.org_id = :'org_b';
INSERT INTO lcw.items VALUES (:'org_b', 1, 'b');
INSERT INTO lcw.log VALUES (:'org_b', 1, 'b');
INSERT INTO lcw.notes_old VALUES (:'org_b', 'b', true);
RESET tenant_guard.org_id;
SELECT tenant_guard.register_tenant(:'org_a', 'Acme');
SELECT tenant_guard.register_tenant(:'org_b', 'Beta');
SELECT tenant_guard.archive_tenant(:'org_a') > now() AS a_archived;

-- The attack, repeated after every regeneration: tenant A's application role
-- writes to every table (each statement must be refused), and tenant B still can.
CREATE FUNCTION pg_temp.attack() RETURNS TABLE (statement text, outcome text)
LANGUAGE plpgsql AS $$
DECLARE
    s text;
    n bigint;
BEGIN
    SET LOCAL ROLE regress_lcw_app;
    FOREACH s IN ARRAY ARRAY[
        'INSERT INTO lcw.items VALUES (tenant_guard.current_user_org_id(), 2, ''new'')',
        'UPDATE lcw.items SET v = ''changed''',
        'DELETE FROM lcw.items',
        'INSERT INTO lcw.log VALUES (tenant_guard.current_user_org_id(), 2, ''new'')',
        'UPDATE lcw.log_1 SET v = ''changed''',
        'DELETE FROM lcw.notes_old',
        'INSERT INTO lcw.notes_old VALUES (tenant_guard.current_user_org_id(), ''new'', false)'] LOOP
        statement := split_part(s, ' (', 1);
        BEGIN
            EXECUTE s;
            GET DIAGNOSTICS n = ROW_COUNT;
            outcome := CASE WHEN n > 0 THEN 'WRITTEN' ELSE 'no row' END;
        EXCEPTION WHEN insufficient_privilege THEN
            outcome := 'refused: ' || SQLERRM;
        END;
        RETURN NEXT;
    END LOOP;
END
$$;
-- a compact verdict per round: how many of the 7 writes changed rows for A, and for B
CREATE FUNCTION pg_temp.round(label text, a text, b text) RETURNS TABLE (round text, a_writes bigint, b_writes bigint)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('tenant_guard.org_id', a, true);
    SELECT count(*) FILTER (WHERE x.outcome = 'WRITTEN') INTO a_writes FROM pg_temp.attack() x;
    PERFORM set_config('tenant_guard.org_id', b, true);
    SELECT count(*) FILTER (WHERE x.outcome = 'WRITTEN') INTO b_writes FROM pg_temp.attack() x;
    round := label;
    RETURN NEXT;
END
$$;
BEGIN;
SET LOCAL tenant_guard.org_id = :'org_a';
SELECT * FROM pg_temp.attack();
ROLLBACK;
BEGIN; SELECT * FROM pg_temp.round('after archive', :'org_a', :'org_b'); ROLLBACK;

-- protect() again (idempotent, e.g. a migration that re-runs it)
SELECT tenant_guard.protect('lcw.items');
SELECT tenant_guard.protect('lcw.log');
SELECT tenant_guard.protect('lcw.notes');
BEGIN; SELECT * FROM pg_temp.round('after protect() again', :'org_a', :'org_b'); ROLLBACK;
-- allow() and disallow() regenerate the policies through protect()
SELECT tenant_guard.allow(t, 'member', '{ALL}') FROM unnest('{lcw.items,lcw.log,lcw.notes}'::regclass[]) t;
BEGIN;
SET LOCAL tenant_guard.role = 'member';
SELECT * FROM pg_temp.round('after allow()', :'org_a', :'org_b');
ROLLBACK;
SELECT tenant_guard.disallow(t, 'member', '{DELETE}') FROM unnest('{lcw.items,lcw.log,lcw.notes}'::regclass[]) t;
BEGIN;
SET LOCAL tenant_guard.role = 'member';
SELECT * FROM pg_temp.round('after disallow() of one command', :'org_a', :'org_b');
ROLLBACK;
SELECT tenant_guard.disallow(t, 'member') FROM unnest('{lcw.items,lcw.log,lcw.notes}'::regclass[]) t;
BEGIN; SELECT * FROM pg_temp.round('after disallow() of the last rule', :'org_a', :'org_b'); ROLLBACK;
SELECT tenant_guard.protect_schema('lcw');
BEGIN; SELECT * FROM pg_temp.round('after protect_schema() again', :'org_a', :'org_b'); ROLLBACK;
-- a partition created later, and protect() of the family afterwards
CREATE TABLE lcw.log_2 PARTITION OF lcw.log FOR VALUES FROM (100) TO (200);
GRANT SELECT, INSERT, UPDATE, DELETE ON lcw.log_2 TO regress_lcw_app;
SELECT tenant_guard.protect('lcw.log');
BEGIN;
SET LOCAL ROLE regress_lcw_app;
SET LOCAL tenant_guard.org_id = :'org_a';
INSERT INTO lcw.log_2 VALUES (:'org_a', 150, 'new');
ROLLBACK;
-- every protected table carries all three, restrictive
SELECT c.oid::regclass AS tbl, string_agg(p.polname || ':' || p.polcmd::text || ':' || p.polpermissive::text, ' '
                                          ORDER BY p.polname) AS lifecycle_policies
FROM tenant_guard.protected_tables r JOIN pg_class c ON c.oid = r.tbl
LEFT JOIN pg_policy p ON p.polrelid = c.oid AND p.polname LIKE 'tg\_lifecycle\_%'
GROUP BY 1 ORDER BY 1::text;
SELECT * FROM tenant_guard.verify() WHERE tbl::text LIKE 'lcw.%';

-- A missing or weakened wall is drift: verify() and lint() (TG013) name it,
-- protect() puts it back.
BEGIN;
SET LOCAL tenant_guard.allow_unsafe_ddl = on;
DROP POLICY tg_lifecycle_insert ON lcw.items;
ALTER POLICY tg_lifecycle_delete ON lcw.log_1 USING (true);
COMMIT;
SELECT tbl, item, expected, actual FROM tenant_guard.verify() WHERE tbl::text LIKE 'lcw.%' ORDER BY 1::text, 2;
SELECT severity, code, object FROM tenant_guard.lint() WHERE code = 'TG013' AND object LIKE 'lcw.%' ORDER BY object;
BEGIN; SELECT * FROM pg_temp.round('with the walls weakened', :'org_a', :'org_b'); ROLLBACK;
SELECT tenant_guard.protect('lcw.items');
SELECT tenant_guard.protect('lcw.log');
SELECT count(*) AS drift_after_repair FROM tenant_guard.verify() WHERE tbl::text LIKE 'lcw.%';
BEGIN; SELECT * FROM pg_temp.round('after the repair', :'org_a', :'org_b'); ROLLBACK;
-- the guards refuse weakening a wall of a protected table, for superusers too
ALTER POLICY tg_lifecycle_update ON lcw.items USING (true) WITH CHECK (true);
DROP POLICY tg_lifecycle_update ON lcw.notes_old;
ALTER POLICY tg_lifecycle_insert ON lcw.log_1 TO regress_lcw_app;
SELECT count(*) AS drift_after_refused_ddl FROM tenant_guard.verify() WHERE tbl::text LIKE 'lcw.%';

-- unprotect() removes them with the rest of what protect() generated
SELECT tenant_guard.unprotect('lcw.notes');
SELECT count(*) AS notes_policies FROM pg_policy WHERE polrelid IN ('lcw.notes'::regclass, 'lcw.notes_old'::regclass);
SELECT tenant_guard.protect('lcw.notes');
SELECT polrelid::regclass AS tbl, count(*) AS lifecycle_policies FROM pg_policy
WHERE polrelid IN ('lcw.notes'::regclass, 'lcw.notes_old'::regclass) AND polname LIKE 'tg\_lifecycle\_%' GROUP BY 1 ORDER BY 1::text;

DROP SCHEMA lcw CASCADE;
DROP ROLE regress_lcw_app;
