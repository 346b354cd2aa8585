-- Parallel query sees the same context as the leader in every source: a
-- parallel scan under a policy returns exactly the rows of a serial scan.
\getenv tokens_file TG_TOKENS_SQL
\i :tokens_file
SET tenant_guard.jwt_secret_file = :'hs_secret_file';
-- the per-row form, evaluated in the workers (sql/context_once.sql tests the
-- default, where the leader evaluates the context once per query)
SET tenant_guard.context_once_per_query = off;

CREATE TABLE items(id bigint, org_id uuid NOT NULL, v text);
INSERT INTO items
SELECT g, CASE WHEN g % 3 = 0 THEN :'org_a'::uuid WHEN g % 3 = 1 THEN :'org_b'::uuid
               ELSE '33333333-3333-4333-8333-333333333333'::uuid END, 'row ' || g
FROM generate_series(1, 30000) g;
ANALYZE items;
ALTER TABLE items ENABLE ROW LEVEL SECURITY;
ALTER TABLE items FORCE ROW LEVEL SECURITY;
-- the per-row form, on purpose: every worker evaluates the function itself
CREATE POLICY per_row ON items USING (org_id = tenant_guard.current_user_org_id());
CREATE ROLE regress_parallel_app;
GRANT SELECT ON items TO regress_parallel_app;

-- force parallel plans
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;

-- Serial count versus a parallel count taken with leader participation off,
-- so every row comes from a worker; also reports that workers really ran.
CREATE FUNCTION pg_temp.check_parallel(label text)
RETURNS TABLE(source text, serial bigint, parallel bigint, same boolean, workers_ran boolean)
LANGUAGE plpgsql AS $$
DECLARE s bigint; p bigint; s_sum numeric; p_sum numeric; plan jsonb;
BEGIN
    SET LOCAL max_parallel_workers_per_gather = 0;
    SELECT count(*), sum(id) INTO s, s_sum FROM items;
    SET LOCAL max_parallel_workers_per_gather = 2;
    SET LOCAL parallel_leader_participation = off;
    SELECT count(*), sum(id) INTO p, p_sum FROM items;
    EXECUTE 'EXPLAIN (ANALYZE, FORMAT JSON, COSTS OFF, TIMING OFF) SELECT count(*), sum(id) FROM items' INTO plan;
    RETURN QUERY SELECT label, s, p, s = p AND s_sum IS NOT DISTINCT FROM p_sum,
        (jsonb_path_query_first(plan, 'strict $.**."Workers Launched"'))::int > 0;
END $$;
GRANT EXECUTE ON FUNCTION pg_temp.check_parallel(text) TO regress_parallel_app;

SET ROLE regress_parallel_app;
-- claims
BEGIN;
SELECT set_config('request.jwt.claims', '{"org_id":"11111111-1111-4111-8111-111111111111"}', true) IS NOT NULL AS set;
SELECT * FROM pg_temp.check_parallel('claims');
COMMIT;
-- signed, transaction-scoped
BEGIN;
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_b')) IS NOT NULL AS set;
SELECT * FROM pg_temp.check_parallel('signed');
COMMIT;
-- signed, session-scoped
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_a'), session => true) IS NOT NULL AS set;
SELECT * FROM pg_temp.check_parallel('signed session');
SELECT tenant_guard.clear_context();
-- no context: nothing, serial or parallel
SELECT * FROM pg_temp.check_parallel('none');
RESET ROLE;
-- setting (a superuser-only choice of source; the role then sets its own settings)
SET tenant_guard.context_source = 'setting';
SET ROLE regress_parallel_app;
BEGIN;
SET LOCAL tenant_guard.org_id = '22222222-2222-4222-8222-222222222222';
SELECT * FROM pg_temp.check_parallel('setting');
COMMIT;
RESET ROLE;

-- the plan is a parallel one, evaluating the function in the workers
SET tenant_guard.context_source = 'claims';
SET ROLE regress_parallel_app;
EXPLAIN (COSTS OFF) SELECT count(*) FROM items;
RESET ROLE;
DROP TABLE items;
DROP FUNCTION pg_temp.check_parallel(text);
DROP ROLE regress_parallel_app;
