-- tenant_guard.context_once_per_query (on by default, needs
-- shared_preload_libraries): a policy's call of a context accessor is planned
-- as a sub-select, evaluated once per execution instead of once per row. The
-- rows every statement form sees or changes are the same as with the per-row
-- form, for each tenant, in every context source, in cached plans reused
-- across tenants, and in parallel plans. The policies here are written in the
-- form without a sub-select, as on Citus shards and in hand-written policies
-- (protect() on one server writes the sub-select itself).
\getenv tokens_file TG_TOKENS_SQL
\i :tokens_file
\set SHOW_CONTEXT never
SET tenant_guard.jwt_secret_file = :'hs_secret_file';

CREATE SCHEMA co;
CREATE TABLE co.items (id int, org_id uuid NOT NULL, v text);
INSERT INTO co.items
SELECT g, CASE WHEN g % 3 = 0 THEN :'org_a'::uuid WHEN g % 3 = 1 THEN :'org_b'::uuid
               ELSE '33333333-3333-4333-8333-333333333333'::uuid END, 'row ' || g
FROM generate_series(1, 3000) g;
CREATE INDEX ON co.items (org_id);
ALTER TABLE co.items ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON co.items USING (org_id = tenant_guard.current_user_org_id());
CREATE POLICY writable ON co.items AS RESTRICTIVE FOR UPDATE USING (tenant_guard._tenant_writable());
CREATE TABLE co.notes (id int, org_id text NOT NULL);
INSERT INTO co.notes SELECT g, CASE WHEN g % 2 = 0 THEN 'org_2abcA' ELSE 'org_2xyzB' END FROM generate_series(1, 10) g;
ALTER TABLE co.notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON co.notes USING (org_id = tenant_guard.current_user_org_text());
-- a function of the same name in another schema is not tenant_guard's
CREATE FUNCTION public.current_user_org_id() RETURNS uuid LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT '11111111-1111-4111-8111-111111111111'::uuid $$;
CREATE TABLE co.own (id int, org_id uuid NOT NULL);
INSERT INTO co.own SELECT id, org_id FROM co.items;
ALTER TABLE co.own ENABLE ROW LEVEL SECURITY;
CREATE POLICY mine ON co.own USING (org_id = public.current_user_org_id());
-- a policy already written with a sub-select keeps its one sub-select
CREATE TABLE co.sub (id int, org_id uuid NOT NULL);
INSERT INTO co.sub SELECT id, org_id FROM co.items;
ALTER TABLE co.sub ENABLE ROW LEVEL SECURITY;
CREATE POLICY sub ON co.sub USING (org_id = (SELECT tenant_guard.current_user_org_id()));
CREATE VIEW co.items_view WITH (security_invoker = true) AS SELECT * FROM co.items WHERE id > 0;
-- a partitioned table keeps the per-row form (the executor prunes partitions
-- with a STABLE call before starting them, not with an InitPlan's value)
CREATE TABLE co.parts (id int, org_id uuid NOT NULL) PARTITION BY LIST (org_id);
CREATE TABLE co.parts_a PARTITION OF co.parts FOR VALUES IN ('11111111-1111-4111-8111-111111111111');
CREATE TABLE co.parts_b PARTITION OF co.parts FOR VALUES IN ('22222222-2222-4222-8222-222222222222');
CREATE TABLE co.parts_c PARTITION OF co.parts DEFAULT;
INSERT INTO co.parts SELECT id, org_id FROM co.items;
ALTER TABLE co.parts ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON co.parts USING (org_id = tenant_guard.current_user_org_id());
ANALYZE co.items, co.notes, co.own, co.sub, co.parts;

CREATE ROLE regress_once_app;
GRANT USAGE ON SCHEMA co TO regress_once_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA co TO regress_once_app;

-- How a statement's plan evaluates the policies: 'once' (an InitPlan, no
-- accessor call left in a filter or condition), or 'per row'.
CREATE FUNCTION pg_temp.shape(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE l text; init boolean := false; per_row boolean := false;
BEGIN
    FOR l IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
        init := init OR l ~ 'InitPlan';
        per_row := per_row OR l ~ '(Filter|Cond):.*(current_user_org|_tenant_writable)';
    END LOOP;
    RETURN CASE WHEN per_row THEN 'per row' WHEN init THEN 'once' ELSE 'neither' END;
END $$;
GRANT EXECUTE ON FUNCTION pg_temp.shape(text) TO regress_once_app;

-- claims, tenant A: once per query, A's 1000 rows
SET ROLE regress_once_app;
BEGIN;
SELECT set_config('request.jwt.claims', '{"org_id":"11111111-1111-4111-8111-111111111111"}', true) IS NOT NULL AS set;
SELECT pg_temp.shape('SELECT count(*) FROM co.items') AS items,
       pg_temp.shape('SELECT count(*) FROM co.items_view') AS via_view,
       pg_temp.shape('SELECT count(*) FROM co.own') AS other_schema_function,
       pg_temp.shape('SELECT count(*) FROM co.sub') AS sub_select_policy;
SELECT count(*) AS rows, count(*) FILTER (WHERE org_id = :'org_a') AS of_a FROM co.items;
SELECT count(*) AS via_view FROM co.items_view;
SELECT count(*) AS sub_select_policy FROM co.sub;
SELECT pg_temp.shape('SELECT count(*) FROM co.parts') AS partitioned, count(*) AS rows,
       count(*) FILTER (WHERE org_id = :'org_a') AS of_a FROM co.parts;
-- joins, sub-queries, CTEs: every relation's policy
SELECT count(*) AS self_join FROM co.items i JOIN co.items j USING (id);
SELECT count(*) AS in_subquery FROM co.sub s WHERE s.id IN (SELECT id FROM co.items);
WITH x AS MATERIALIZED (SELECT * FROM co.items) SELECT count(*) AS cte FROM x;
SELECT (SELECT count(*) FROM co.items) AS scalar_subquery;
COMMIT;

-- the application role cannot turn it off (it only changes speed, but the
-- setting is the DBA's)
SET tenant_guard.context_once_per_query = off;
RESET ROLE;

-- off: per row, the same rows
SET tenant_guard.context_once_per_query = off;
SET ROLE regress_once_app;
BEGIN;
SELECT set_config('request.jwt.claims', '{"org_id":"11111111-1111-4111-8111-111111111111"}', true) IS NOT NULL AS set;
SELECT pg_temp.shape('SELECT count(*) FROM co.items') AS items;
SELECT count(*) AS rows, count(*) FILTER (WHERE org_id = :'org_a') AS of_a FROM co.items;
COMMIT;
RESET ROLE;
RESET tenant_guard.context_once_per_query;

SET ROLE regress_once_app;
-- one cached (generic) plan reused across tenants and with no context: each
-- execution evaluates the context again
SET plan_cache_mode = force_generic_plan;
PREPARE q(int) AS SELECT count(*), min(org_id::text) FROM co.items WHERE id > $1;
BEGIN;
SELECT set_config('request.jwt.claims', '{"org_id":"11111111-1111-4111-8111-111111111111"}', true) IS NOT NULL AS set;
EXECUTE q(0);
SELECT set_config('request.jwt.claims', '{"org_id":"22222222-2222-4222-8222-222222222222"}', true) IS NOT NULL AS set;
EXECUTE q(0);
SELECT set_config('request.jwt.claims', '', true) IS NOT NULL AS set;
EXECUTE q(0);
COMMIT;
SELECT generic_plans > 0 AS generic FROM pg_prepared_statements WHERE name = 'q';
DEALLOCATE q;
RESET plan_cache_mode;
-- a PL/pgSQL function's cached plan, called as two tenants in one transaction
CREATE FUNCTION pg_temp.count_items() RETURNS text LANGUAGE plpgsql STABLE AS $$
BEGIN RETURN (SELECT count(*) || ' ' || min(org_id::text) FROM co.items); END $$;
BEGIN;
SELECT set_config('request.jwt.claims', '{"org_id":"11111111-1111-4111-8111-111111111111"}', true) IS NOT NULL AS set;
SELECT pg_temp.count_items() AS as_a;
SELECT set_config('request.jwt.claims', '{"org_id":"22222222-2222-4222-8222-222222222222"}', true) IS NOT NULL AS set;
SELECT pg_temp.count_items() AS as_b;
COMMIT;

-- writes: UPDATE, DELETE and MERGE as tenant A reach A's rows only
BEGIN;
SELECT set_config('request.jwt.claims', '{"org_id":"11111111-1111-4111-8111-111111111111"}', true) IS NOT NULL AS set;
SELECT pg_temp.shape('UPDATE co.items SET v = v') AS update_shape, pg_temp.shape('DELETE FROM co.items') AS delete_shape;
UPDATE co.items SET v = 'changed by A' WHERE id <= 300;
DELETE FROM co.items WHERE id BETWEEN 301 AND 600;
MERGE INTO co.items t USING (SELECT g AS id FROM generate_series(601, 900) g) s ON t.id = s.id
WHEN MATCHED THEN UPDATE SET v = 'merged by A';
COMMIT;
RESET ROLE;
SELECT org_id, count(*) FILTER (WHERE v = 'changed by A') AS changed, count(*) FILTER (WHERE v = 'merged by A') AS merged,
       count(*) FILTER (WHERE id BETWEEN 301 AND 600) AS left_in_deleted_range
FROM co.items GROUP BY org_id ORDER BY org_id;

-- signed mode (tenant B) and setting mode (tenant A)
SET tenant_guard.context_source = 'signed';
SET ROLE regress_once_app;
BEGIN;
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_b')) IS NOT NULL AS set;
SELECT pg_temp.shape('SELECT count(*) FROM co.items') AS shape, count(*) AS rows,
       count(*) FILTER (WHERE org_id = :'org_b') AS of_b FROM co.items;
COMMIT;
RESET ROLE;
SET tenant_guard.context_source = 'setting';
SET ROLE regress_once_app;
BEGIN;
SET LOCAL tenant_guard.org_id = :'org_a';
SELECT count(*) AS rows FROM co.items;
COMMIT;
-- no context: nothing
SELECT count(*) AS no_context FROM co.items;
RESET ROLE;
RESET tenant_guard.context_source;

-- a text tenant column: current_user_org_text(), once per query
SET ROLE regress_once_app;
BEGIN;
SELECT set_config('request.jwt.claims', '{"org_id":"org_2abcA"}', true) IS NOT NULL AS set;
SELECT pg_temp.shape('SELECT * FROM co.notes') AS shape, count(*) AS rows, min(org_id) AS tenant FROM co.notes;
COMMIT;
RESET ROLE;

-- parallel plans: the leader evaluates the sub-select and hands its value to
-- the workers; the parallel count equals the serial one
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;
SET ROLE regress_once_app;
BEGIN;
SELECT set_config('request.jwt.claims', '{"org_id":"22222222-2222-4222-8222-222222222222"}', true) IS NOT NULL AS set;
SELECT pg_temp.shape('SELECT count(*) FROM co.items') AS shape;
SELECT count(*) AS parallel_rows, count(*) FILTER (WHERE org_id = :'org_b') AS of_b FROM co.items;
SET LOCAL max_parallel_workers_per_gather = 0;
SELECT count(*) AS serial_rows FROM co.items;
COMMIT;
RESET ROLE;
RESET ALL;

-- an archived tenant's UPDATE is refused (the write policy, once per query)
SELECT tenant_guard.register_tenant(:'org_a', 'A') IS NOT NULL AS registered;
SELECT tenant_guard.archive_tenant(:'org_a') IS NOT NULL AS archived;
SET ROLE regress_once_app;
BEGIN;
SELECT set_config('request.jwt.claims', '{"org_id":"11111111-1111-4111-8111-111111111111"}', true) IS NOT NULL AS set;
SELECT pg_temp.shape('UPDATE co.items SET v = v') AS update_shape;
UPDATE co.items SET v = 'archived write';
ROLLBACK;
BEGIN;
SELECT set_config('request.jwt.claims', '{"org_id":"11111111-1111-4111-8111-111111111111"}', true) IS NOT NULL AS set;
SELECT count(*) AS still_readable, count(*) FILTER (WHERE v = 'archived write') AS written FROM co.items;
COMMIT;
RESET ROLE;

DROP FUNCTION pg_temp.shape(text);
DROP FUNCTION pg_temp.count_items();
DROP SCHEMA co CASCADE;
DROP FUNCTION public.current_user_org_id();
DROP ROLE regress_once_app;
