-- tenant_guard.context_once_per_query attacked by the application role: every
-- statement form reads or changes tenant A's rows only (a leaky function in it
-- sees no other tenant's row either), and the same rows as
-- with the setting off (the policies' per-row form), serial and parallel; a
-- context that changes between executions (cached plans, PL/pgSQL, support
-- sessions) is evaluated again; a concurrent UPDATE re-checks a moved row
-- against the policy (EvalPlanQual). Within one execution the sub-select keeps
-- the value of its first evaluation: a cursor fetched after the context
-- changed keeps its first context (shown below, with the per-row form's
-- answer). The policies are written without a sub-select, so every one of
-- them goes through the planner hook (which leaves partitioned tables in the
-- per-row form, for their partition pruning at executor start).
\getenv tokens_file TG_TOKENS_SQL
\i :tokens_file
\set SHOW_CONTEXT never
SET tenant_guard.jwt_secret_file = :'hs_secret_file';

CREATE SCHEMA coa;
-- 30 rows per table: id % 3 = 0 is tenant A (org 1111...), 1 is B, 2 is C
CREATE TABLE coa.items (id int PRIMARY KEY, org_id uuid NOT NULL, v text);
INSERT INTO coa.items
SELECT g, CASE g % 3 WHEN 0 THEN :'org_a'::uuid WHEN 1 THEN :'org_b'::uuid
                     ELSE '33333333-3333-4333-8333-333333333333'::uuid END, 'r' || g
FROM generate_series(1, 30) g;
CREATE INDEX ON coa.items (org_id);
ALTER TABLE coa.items ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON coa.items USING (org_id = tenant_guard.current_user_org_id());
CREATE POLICY writable ON coa.items AS RESTRICTIVE FOR UPDATE USING (tenant_guard._tenant_writable());
-- list-partitioned by tenant (per row: pruned at executor start)
CREATE TABLE coa.parts (id int, org_id uuid NOT NULL, v text) PARTITION BY LIST (org_id);
CREATE TABLE coa.parts_a PARTITION OF coa.parts FOR VALUES IN ('11111111-1111-4111-8111-111111111111');
CREATE TABLE coa.parts_b PARTITION OF coa.parts FOR VALUES IN ('22222222-2222-4222-8222-222222222222');
CREATE TABLE coa.parts_rest PARTITION OF coa.parts DEFAULT;
INSERT INTO coa.parts SELECT * FROM coa.items;
ALTER TABLE coa.parts ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON coa.parts USING (org_id = tenant_guard.current_user_org_id());
-- hash-partitioned by id
CREATE TABLE coa.hashed (id int, org_id uuid NOT NULL, v text) PARTITION BY HASH (id);
CREATE TABLE coa.hashed_0 PARTITION OF coa.hashed FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE coa.hashed_1 PARTITION OF coa.hashed FOR VALUES WITH (MODULUS 2, REMAINDER 1);
INSERT INTO coa.hashed SELECT * FROM coa.items;
ALTER TABLE coa.hashed ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON coa.hashed USING (org_id = tenant_guard.current_user_org_id());
-- inheritance: the parent's policy applies to the children it reaches
CREATE TABLE coa.inh (id int, org_id uuid NOT NULL, v text);
CREATE TABLE coa.inh_child (extra int) INHERITS (coa.inh);
INSERT INTO coa.inh SELECT * FROM coa.items WHERE id <= 15;
INSERT INTO coa.inh_child SELECT *, 0 FROM coa.items WHERE id > 15;
ALTER TABLE coa.inh ENABLE ROW LEVEL SECURITY;
ALTER TABLE coa.inh_child ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON coa.inh USING (org_id = tenant_guard.current_user_org_id());
CREATE POLICY tenant ON coa.inh_child USING (org_id = tenant_guard.current_user_org_id());
-- accessors inside CASE, COALESCE, ANY(ARRAY[...]), IS NOT DISTINCT FROM;
-- a row with a NULL org
CREATE TABLE coa.cx (id int, org_id uuid, owner text);
INSERT INTO coa.cx SELECT id, org_id, 'u' || (id % 2) FROM coa.items;
INSERT INTO coa.cx VALUES (100, NULL, 'u0');
ALTER TABLE coa.cx ENABLE ROW LEVEL SECURITY;
CREATE POLICY cx ON coa.cx USING (
    CASE WHEN tenant_guard.current_user_role() = 'admin' THEN org_id = tenant_guard.current_user_org_id()
         ELSE org_id = tenant_guard.current_user_org_id() AND owner = COALESCE(tenant_guard.current_user_id(), 'nobody')
    END);
CREATE POLICY cx_any ON coa.cx AS RESTRICTIVE USING (
    org_id = ANY (ARRAY[tenant_guard.current_user_org_id(), NULL::uuid])
    OR org_id IS NOT DISTINCT FROM tenant_guard.current_user_org_id());
-- nested sub-selects in a policy, over a table with its own policy
CREATE TABLE coa.members (org_id uuid, user_id text);
INSERT INTO coa.members VALUES (:'org_a', 'u0'), (:'org_b', 'u0'), (:'org_b', 'u1');
ALTER TABLE coa.members ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON coa.members USING (org_id = tenant_guard.current_user_org_id());
CREATE TABLE coa.nested (id int, org_id uuid);
INSERT INTO coa.nested SELECT id, org_id FROM coa.items;
ALTER TABLE coa.nested ENABLE ROW LEVEL SECURITY;
CREATE POLICY nested ON coa.nested USING (
    org_id IN (SELECT m.org_id FROM coa.members m WHERE m.user_id = tenant_guard.current_user_id())
    AND EXISTS (SELECT 1 FROM coa.members m2 WHERE m2.org_id = nested.org_id AND m2.org_id = tenant_guard.current_user_org_id()));
-- foreign key child (ON DELETE CASCADE; the RI queries run without the policies)
CREATE TABLE coa.child (id int PRIMARY KEY, parent int REFERENCES coa.items (id) ON DELETE CASCADE, org_id uuid NOT NULL);
INSERT INTO coa.child SELECT id, id, org_id FROM coa.items;
ALTER TABLE coa.child ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON coa.child USING (org_id = tenant_guard.current_user_org_id());
-- what triggers and rules saw
CREATE TABLE coa.log (what text, n bigint, tenants text, org_id uuid DEFAULT tenant_guard.current_user_org_id());
ALTER TABLE coa.log ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON coa.log USING (org_id = tenant_guard.current_user_org_id());
CREATE FUNCTION coa.row_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO coa.log (what, n, tenants)
    SELECT 'row trigger', count(*), string_agg(DISTINCT left(org_id::text, 1), '') FROM coa.items;
    RETURN NEW;
END $$;
CREATE TRIGGER row_trigger BEFORE UPDATE ON coa.hashed FOR EACH ROW EXECUTE FUNCTION coa.row_trigger();
CREATE FUNCTION coa.statement_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO coa.log (what, n, tenants)
    SELECT 'statement trigger', (SELECT count(*) FROM changed), string_agg(DISTINCT left(org_id::text, 1), '')
    FROM coa.items;
    RETURN NULL;
END $$;
CREATE TRIGGER statement_trigger AFTER UPDATE ON coa.parts REFERENCING NEW TABLE AS changed
FOR EACH STATEMENT EXECUTE FUNCTION coa.statement_trigger();
-- views
CREATE VIEW coa.v_invoker WITH (security_invoker = true) AS SELECT * FROM coa.items;
CREATE VIEW coa.v_barrier WITH (security_barrier = true, security_invoker = true) AS SELECT * FROM coa.items WHERE id > 0;
CREATE VIEW coa.v_checked WITH (security_invoker = true) AS SELECT * FROM coa.items WHERE id < 1000 WITH CHECK OPTION;
-- functions: inlined SQL, not inlined, PL/pgSQL
CREATE FUNCTION coa.sql_rows() RETURNS SETOF coa.items LANGUAGE sql STABLE AS $$ SELECT * FROM coa.items $$;
CREATE FUNCTION coa.sql_rows_volatile() RETURNS SETOF coa.items LANGUAGE sql VOLATILE AS $$ SELECT * FROM coa.items $$;
CREATE FUNCTION coa.plpgsql_count() RETURNS text LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT count(*) || ' ' || string_agg(DISTINCT left(org_id::text, 1), '') FROM coa.items);
END $$;
ANALYZE coa.items, coa.parts, coa.hashed, coa.inh, coa.inh_child, coa.cx, coa.members, coa.nested, coa.child;

CREATE ROLE regress_coa_app LOGIN;
GRANT USAGE, CREATE ON SCHEMA coa TO regress_coa_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA coa TO regress_coa_app;
REVOKE ALL ON coa.parts_a, coa.parts_b, coa.parts_rest, coa.hashed_0, coa.hashed_1 FROM regress_coa_app;
-- a rule's actions read as the owner of its table: here the application role
SET ROLE regress_coa_app;
CREATE TABLE coa.ruled (id int, org_id uuid DEFAULT tenant_guard.current_user_org_id());
ALTER TABLE coa.ruled ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON coa.ruled USING (org_id = tenant_guard.current_user_org_id());
CREATE RULE also_log AS ON INSERT TO coa.ruled DO ALSO
    INSERT INTO coa.log (what, n, tenants)
    SELECT 'rule', count(*), string_agg(DISTINCT left(org_id::text, 1), '') FROM coa.items;
CREATE MATERIALIZED VIEW coa.refreshed AS SELECT * FROM coa.parts WITH NO DATA;
RESET ROLE;

-- The attacks: each runs as the application role in tenant A's context, in a
-- subtransaction that is rolled back afterwards (so each starts from the same
-- rows); its rows (sorted), or its row count (`rows` false), then the rows of
-- `after` (what the statement left behind, read in the same subtransaction).
-- A result shows the tenants it saw as the first digit of their org id: A is
-- 1, B 2, the third tenant 3.
CREATE TEMP TABLE attacks (n int PRIMARY KEY, form text NOT NULL, q text NOT NULL, rows boolean NOT NULL DEFAULT true,
                           after text);
CREATE TEMP TABLE results (pass text, n int, shape text, result text);
GRANT SELECT ON attacks TO regress_coa_app;
GRANT INSERT ON results TO regress_coa_app;
\set t 'string_agg(DISTINCT left(org_id::text, 1), '''')'
INSERT INTO attacks (n, form, q, rows, after) VALUES
(1, 'plain', 'SELECT count(*), ' || :'t' || ' FROM coa.items', true, NULL),
(2, 'rows in order', 'SELECT array_agg(id ORDER BY id) FROM coa.items', true, NULL),
(3, 'self join', 'SELECT count(*), string_agg(DISTINCT left(i.org_id::text, 1) || left(j.org_id::text, 1), '''') FROM coa.items i JOIN coa.items j ON j.id = i.id + 3', true, NULL),
(4, 'join of partitioned, hashed, inheritance', 'SELECT count(*) FROM coa.items i JOIN coa.parts p USING (id) JOIN coa.hashed h USING (id) JOIN coa.inh x USING (id)', true, NULL),
(5, 'list partitions', 'SELECT count(*), ' || :'t' || ' FROM coa.parts', true, NULL),
(6, 'another tenant''s partition by its key', 'SELECT (SELECT count(*) FROM coa.parts WHERE org_id = ''22222222-2222-4222-8222-222222222222''), (SELECT count(*) FROM coa.parts WHERE org_id IN (''22222222-2222-4222-8222-222222222222'', ''33333333-3333-4333-8333-333333333333''))', true, NULL),
(7, 'hash partitions', 'SELECT count(*), ' || :'t' || ' FROM coa.hashed', true, NULL),
(8, 'inheritance parent, ONLY, child', 'SELECT (SELECT count(*) FROM coa.inh), (SELECT count(*) FROM ONLY coa.inh), (SELECT count(*) FROM coa.inh_child)', true, NULL),
(9, 'CASE, COALESCE, ANY(ARRAY), NULL org', 'SELECT array_agg(id ORDER BY id) FROM coa.cx', true, NULL),
(10, 'nested sub-selects in the policy', 'SELECT count(*), ' || :'t' || ' FROM coa.nested', true, NULL),
(11, 'LATERAL', 'SELECT g, x.c FROM generate_series(1, 4) g, LATERAL (SELECT count(*) c FROM coa.items WHERE id % 4 = g % 4 AND id > g) x', true, NULL),
(12, 'set-returning function and VALUES in FROM', 'SELECT count(*) FROM generate_series(1, 30) g JOIN coa.items i ON i.id = g JOIN (VALUES (3), (4), (6)) v(x) ON v.x = g', true, NULL),
(13, 'UNION, INTERSECT, EXCEPT', 'SELECT (SELECT count(*) FROM (SELECT id FROM coa.items UNION SELECT id FROM coa.parts) u), (SELECT count(*) FROM (SELECT id FROM coa.items INTERSECT SELECT id FROM coa.hashed) i), (SELECT count(*) FROM (SELECT id FROM generate_series(1, 30) id EXCEPT SELECT id FROM coa.inh) e)', true, NULL),
(14, 'GROUPING SETS', 'SELECT left(org_id::text, 1), id % 2, count(*) FROM coa.items GROUP BY GROUPING SETS ((org_id), (id % 2), ())', true, NULL),
(15, 'window functions', 'SELECT id, row_number() OVER w, sum(id) OVER () FROM coa.items WINDOW w AS (ORDER BY id DESC)', true, NULL),
(16, 'recursive CTE', 'WITH RECURSIVE r(id) AS (SELECT min(id) FROM coa.items UNION ALL SELECT (SELECT min(i.id) FROM coa.items i WHERE i.id > r.id) FROM r WHERE r.id IS NOT NULL) SELECT count(*), array_agg(id) FILTER (WHERE id IS NOT NULL) FROM r', true, NULL),
(17, 'recursive CTE joining the table', 'WITH RECURSIVE r(id, depth) AS (SELECT 3, 1 UNION ALL SELECT i.id, r.depth + 1 FROM r JOIN coa.items i ON i.id = r.id + 1 OR i.id = r.id + 3) SELECT count(*), max(depth) FROM r', true, NULL),
(18, 'EXISTS, IN, ANY, correlated scalar sub-query', 'SELECT (SELECT count(*) FROM coa.items i WHERE EXISTS (SELECT 1 FROM coa.parts p WHERE p.id = i.id + 1)), (SELECT count(*) FROM generate_series(1, 30) g WHERE g IN (SELECT id FROM coa.hashed)), (SELECT count(*) FROM coa.cx WHERE org_id = ANY (SELECT org_id FROM coa.parts)), (SELECT sum((SELECT count(*) FROM coa.items i WHERE i.id <= g)) FROM generate_series(1, 30) g)', true, NULL),
(19, 'data-modifying CTEs', 'WITH u AS (UPDATE coa.items SET v = ''cte'' RETURNING id, org_id), d AS (DELETE FROM coa.hashed WHERE id < 10 RETURNING id, org_id) SELECT (SELECT count(*) || '' '' || ' || :'t' || ' FROM u), (SELECT count(*) || '' '' || ' || :'t' || ' FROM d)', true, 'SELECT count(*) FROM coa.items WHERE v = ''cte'''),
(20, 'UPDATE RETURNING', 'UPDATE coa.items SET v = ''updated'' RETURNING id', true, NULL),
(21, 'DELETE RETURNING', 'DELETE FROM coa.items WHERE id > 20 RETURNING id', true, 'SELECT count(*) FROM coa.child'),
(22, 'UPDATE FROM, DELETE USING', 'WITH u AS (UPDATE coa.items i SET v = ''from'' FROM coa.parts p WHERE p.id = i.id RETURNING i.id), d AS (DELETE FROM coa.hashed h USING coa.inh x WHERE x.id = h.id RETURNING h.id) SELECT (SELECT array_agg(id ORDER BY id) FROM u), (SELECT array_agg(id ORDER BY id) FROM d)', true, NULL),
(23, 'INSERT SELECT RETURNING', 'INSERT INTO coa.items SELECT id + 100, org_id, v FROM coa.items RETURNING id, left(org_id::text, 1)', true, NULL),
(24, 'ON CONFLICT DO UPDATE on own row', 'INSERT INTO coa.items VALUES (3, ''11111111-1111-4111-8111-111111111111'', ''x'') ON CONFLICT (id) DO UPDATE SET v = ''upserted'' RETURNING id, v', true, NULL),
(25, 'ON CONFLICT DO UPDATE on another tenant''s row', 'INSERT INTO coa.items VALUES (4, ''11111111-1111-4111-8111-111111111111'', ''x'') ON CONFLICT (id) DO UPDATE SET v = ''stolen'' RETURNING id, v', true, NULL),
(26, 'ON CONFLICT DO NOTHING on another tenant''s row', 'INSERT INTO coa.items VALUES (4, ''11111111-1111-4111-8111-111111111111'', ''x'') ON CONFLICT (id) DO NOTHING RETURNING id', true, NULL),
(27, 'MERGE', 'MERGE INTO coa.items t USING (SELECT g FROM generate_series(1, 30) g) s ON t.id = s.g WHEN MATCHED AND t.id > 20 THEN DELETE WHEN MATCHED THEN UPDATE SET v = ''merged'' WHEN NOT MATCHED THEN INSERT VALUES (s.g + 200, ''11111111-1111-4111-8111-111111111111'', ''new'')', false, 'SELECT count(*) FILTER (WHERE v = ''merged''), count(*) FILTER (WHERE id > 200), count(*), ' || :'t' || ' FROM coa.items'),
(28, 'MERGE into partitions, source with a policy', 'MERGE INTO coa.parts t USING coa.hashed s ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = ''merged'' WHEN NOT MATCHED THEN INSERT VALUES (s.id + 300, s.org_id, ''new'')', false, 'SELECT count(*) FILTER (WHERE v = ''merged''), count(*) FILTER (WHERE id > 300) FROM coa.parts'),
(29, 'UPDATE moving a row to another tenant''s partition', 'UPDATE coa.parts SET org_id = ''22222222-2222-4222-8222-222222222222'' WHERE id = 3', false, NULL),
(30, 'UPDATE and DELETE of inheritance', 'WITH u AS (UPDATE coa.inh SET v = ''inh'' RETURNING id), d AS (DELETE FROM coa.inh WHERE id = 30 RETURNING id) SELECT (SELECT array_agg(id ORDER BY id) FROM u), (SELECT array_agg(id) FROM d)', true, NULL),
(31, 'views: invoker, barrier', 'SELECT (SELECT count(*) FROM coa.v_invoker), (SELECT count(*) FROM coa.v_barrier WHERE v LIKE ''r%'')', true, NULL),
(32, 'updatable views', 'WITH u AS (UPDATE coa.v_invoker SET v = ''view'' RETURNING id), d AS (DELETE FROM coa.v_barrier WHERE id = 15 RETURNING id), c AS (UPDATE coa.v_checked SET v = ''checked'' WHERE id IN (12, 13) RETURNING id) SELECT (SELECT count(*) FROM u), (SELECT array_agg(id) FROM d), (SELECT array_agg(id) FROM c)', true, NULL),
(33, 'view WITH CHECK OPTION, row of another tenant', 'INSERT INTO coa.v_checked VALUES (500, ''22222222-2222-4222-8222-222222222222'', ''b'')', false, NULL),
(34, 'functions: inlined SQL, SQL, PL/pgSQL, in a target list', 'SELECT (SELECT count(*) FROM coa.sql_rows()), (SELECT count(*) FROM coa.sql_rows_volatile()), coa.plpgsql_count(), (SELECT string_agg(DISTINCT coa.plpgsql_count(), '','') FROM coa.items)', true, NULL),
(35, 'row trigger reading the table', 'UPDATE coa.hashed SET v = v WHERE id <= 6', false, 'SELECT what, n, tenants FROM coa.log'),
(36, 'statement trigger with a transition table', 'UPDATE coa.parts SET v = ''t''', false, 'SELECT what, n, tenants FROM coa.log'),
(37, 'rule', 'INSERT INTO coa.ruled (id) VALUES (1)', false, 'SELECT what, n, tenants FROM coa.log'),
(38, 'foreign key cascade', 'DELETE FROM coa.items WHERE id IN (3, 4, 5)', false, 'SELECT array_agg(id ORDER BY id) FROM coa.child WHERE id < 10'),
(39, 'CREATE TABLE AS', 'CREATE TABLE coa.copied AS SELECT * FROM coa.items', false, 'SELECT count(*), ' || :'t' || ' FROM coa.copied'),
(40, 'CREATE MATERIALIZED VIEW', 'CREATE MATERIALIZED VIEW coa.mat AS SELECT * FROM coa.parts', false, 'SELECT count(*), ' || :'t' || ' FROM coa.mat'),
(41, 'SELECT FOR UPDATE, FOR SHARE, SKIP LOCKED', 'SELECT (SELECT array_agg(id) FROM (SELECT id FROM coa.parts ORDER BY id LIMIT 3 FOR UPDATE) a), (SELECT array_agg(id) FROM (SELECT id FROM coa.inh ORDER BY id LIMIT 3 FOR SHARE) b), (SELECT array_agg(id) FROM (SELECT id FROM coa.items ORDER BY id LIMIT 3 FOR UPDATE SKIP LOCKED) c)', true, NULL),
(42, 'TABLESAMPLE', 'SELECT count(*), ' || :'t' || ' FROM coa.items TABLESAMPLE SYSTEM (100)', true, NULL),
(43, 'REFRESH MATERIALIZED VIEW (its owner: the application role)', 'REFRESH MATERIALIZED VIEW coa.refreshed', false, 'SELECT count(*), ' || :'t' || ' FROM coa.refreshed'),
(44, 'sub-selects in ON CONFLICT DO UPDATE SET', 'INSERT INTO coa.items VALUES (3, ''11111111-1111-4111-8111-111111111111'', ''x'') ON CONFLICT (id) DO UPDATE SET v = (SELECT count(*) || '' '' || ' || :'t' || ' FROM coa.parts) RETURNING id, v', true, NULL),
(45, 'sub-selects in MERGE actions', 'MERGE INTO coa.items t USING (VALUES (3), (500)) s(i) ON t.id = s.i WHEN MATCHED THEN UPDATE SET v = (SELECT count(*) || '' '' || ' || :'t' || ' FROM coa.parts) WHEN NOT MATCHED THEN INSERT VALUES (s.i, ''11111111-1111-4111-8111-111111111111'', (SELECT count(*) || '' '' || ' || :'t' || ' FROM coa.hashed))', false, 'SELECT id, v FROM coa.items WHERE id IN (3, 500)'),
-- a leaky function (cheap, not LEAKPROOF) sees only rows the policy let through
(46, 'leaky function in WHERE', 'SELECT count(*) FROM coa.items WHERE pg_temp.leak(org_id) AND id < 10', true, 'SELECT string_agg(DISTINCT left(o::text, 1), '''') FROM pg_temp.leaked'),
(47, 'leaky function over partitions, a join, OR', 'SELECT count(*) FROM coa.parts p JOIN coa.hashed h USING (id) WHERE (pg_temp.leak(p.org_id) AND pg_temp.leak(h.org_id)) OR p.id = 1', true, 'SELECT string_agg(DISTINCT left(o::text, 1), '''') FROM pg_temp.leaked'),
(48, 'leaky function through a security_barrier view and an EXISTS', 'SELECT count(*) FROM coa.v_barrier b WHERE pg_temp.leak(b.org_id) AND EXISTS (SELECT 1 FROM coa.inh x WHERE x.id = b.id + 3 AND pg_temp.leak(x.org_id))', true, 'SELECT string_agg(DISTINCT left(o::text, 1), '''') FROM pg_temp.leaked'),
(49, 'leaky function on another tenant''s partition key', 'SELECT count(*) FROM coa.parts WHERE org_id = ''22222222-2222-4222-8222-222222222222'' AND pg_temp.leak(org_id)', true, 'SELECT count(*) FROM pg_temp.leaked'),
(50, 'leaky function in UPDATE and DELETE', 'WITH u AS (UPDATE coa.parts SET v = v WHERE pg_temp.leak(org_id) RETURNING 1), d AS (DELETE FROM coa.inh WHERE pg_temp.leak(org_id) RETURNING 1) SELECT (SELECT count(*) FROM u), (SELECT count(*) FROM d)', true, 'SELECT string_agg(DISTINCT left(o::text, 1), '''') FROM pg_temp.leaked');

CREATE TEMP TABLE leaked (o uuid);
GRANT INSERT, SELECT ON leaked TO regress_coa_app;
CREATE FUNCTION pg_temp.leak(o uuid) RETURNS boolean LANGUAGE plpgsql VOLATILE COST 0.0000001 AS $$
BEGIN
    INSERT INTO pg_temp.leaked VALUES (o);
    RETURN true;
END $$;
GRANT EXECUTE ON FUNCTION pg_temp.leak(uuid) TO regress_coa_app;

CREATE FUNCTION pg_temp.run(pass text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    a record;
    r record;
    out text[];
    k bigint;
    l text;
    init boolean;
    per_row boolean;
    sh text;
BEGIN
    FOR a IN SELECT * FROM pg_temp.attacks ORDER BY n LOOP
        out := '{}';
        BEGIN
            IF a.rows THEN
                FOR r IN EXECUTE a.q LOOP
                    out := out || r::text;
                END LOOP;
            ELSE
                EXECUTE a.q;
                GET DIAGNOSTICS k = ROW_COUNT;
                out := out || ('count ' || k);
            END IF;
            IF a.after IS NOT NULL THEN
                FOR r IN EXECUTE a.after LOOP
                    out := out || ('after ' || r::text);
                END LOOP;
            END IF;
            RAISE EXCEPTION USING ERRCODE = 'TGRBK';
        EXCEPTION
            WHEN SQLSTATE 'TGRBK' THEN
                NULL;
            WHEN OTHERS THEN
                out := out || ('ERROR ' || SQLSTATE || ': ' || SQLERRM);
        END;
        -- how the statement's plan evaluates the accessors: 'once' (InitPlans,
        -- no accessor call left in a filter or condition) or 'per row'
        init := false;
        per_row := false;
        BEGIN
            FOR l IN EXECUTE 'EXPLAIN (COSTS OFF) ' || a.q LOOP
                init := init OR l ~ 'InitPlan';
                per_row := per_row OR l ~ '(Filter|Cond):.*(current_user_|_tenant_writable)';
            END LOOP;
            sh := CASE WHEN per_row THEN 'per row' WHEN init THEN 'once' ELSE 'neither' END;
            RAISE EXCEPTION USING ERRCODE = 'TGRBK';
        EXCEPTION
            WHEN SQLSTATE 'TGRBK' THEN
                NULL;
            WHEN OTHERS THEN
                sh := 'not explainable';
        END;
        INSERT INTO pg_temp.results
        VALUES (pass, a.n, sh, (SELECT string_agg(x, ' ' ORDER BY x) FROM unnest(out) x));
    END LOOP;
END $$;
GRANT EXECUTE ON FUNCTION pg_temp.run(text) TO regress_coa_app;

-- four passes as tenant A (claims): the hook on and off, serial and parallel
SELECT set_config('request.jwt.claims', '{"org_id":"11111111-1111-4111-8111-111111111111","sub":"u0","org_role":"member"}',
                  false) IS NOT NULL AS tenant_a;
SET ROLE regress_coa_app;
SELECT pg_temp.run('on');
RESET ROLE;
SET tenant_guard.context_once_per_query = off;
SET ROLE regress_coa_app;
SELECT pg_temp.run('off');
RESET ROLE;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET ROLE regress_coa_app;
SELECT pg_temp.run('off parallel');
RESET ROLE;
RESET tenant_guard.context_once_per_query;
SET ROLE regress_coa_app;
SELECT pg_temp.run('on parallel');
RESET ROLE;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;

-- tenant A's results with the hook, and whether every other pass gave the same
\pset format unaligned
\pset fieldsep ' | '
SELECT a.n, a.form, r.shape, r.result FROM attacks a JOIN results r ON r.n = a.n AND r.pass = 'on' ORDER BY a.n;
\pset format aligned
SELECT o.pass, o.n, o.shape, o.result, r.result AS with_hook_serial
FROM results o JOIN results r ON r.n = o.n AND r.pass = 'on'
WHERE o.pass <> 'on' AND o.result IS DISTINCT FROM r.result ORDER BY o.n, o.pass;
SELECT pass, count(*) FILTER (WHERE shape = 'once') AS once, count(*) FILTER (WHERE shape = 'per row') AS per_row
FROM results GROUP BY pass ORDER BY pass;
SELECT count(*) AS rows_left_behind_by_the_attacks FROM coa.items WHERE v <> 'r' || id;

-- no context: nothing, in every form; with require_context, an error (with
-- the hook, raised by the sub-select)
SELECT set_config('request.jwt.claims', '', false) IS NOT NULL AS no_context;
SET ROLE regress_coa_app;
SELECT (SELECT count(*) FROM coa.items) AS items, (SELECT count(*) FROM coa.parts) AS parts,
       (SELECT count(*) FROM coa.cx) AS cx, (SELECT count(*) FROM coa.nested) AS nested,
       (SELECT count(*) FROM coa.inh) AS inh;
RESET ROLE;
SET tenant_guard.require_context = on;
SET ROLE regress_coa_app;
SELECT count(*) FROM coa.items;
UPDATE coa.parts SET v = v;
RESET ROLE;
SET tenant_guard.context_once_per_query = off;
SET ROLE regress_coa_app;
SELECT count(*) FROM coa.items;
RESET ROLE;
RESET tenant_guard.context_once_per_query;
RESET tenant_guard.require_context;

-- signed mode: cached plans reused across tenants in one pooled session (a
-- prepared generic plan with run-time partition pruning, a PL/pgSQL function's
-- plan), each transaction with its own token, then none
SET tenant_guard.context_source = 'signed';
SET ROLE regress_coa_app;
SET plan_cache_mode = force_generic_plan;
PREPARE by_part(int) AS SELECT count(*), string_agg(DISTINCT left(org_id::text, 1), '') AS tenants FROM coa.parts WHERE id > $1;
PREPARE upd(int) AS UPDATE coa.items SET v = 'upd' WHERE id > $1 RETURNING left(org_id::text, 1) AS tenant;
BEGIN;
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_a')) IS NOT NULL AS a;
EXECUTE by_part(0);
SELECT coa.plpgsql_count() AS a_plpgsql;
COMMIT;
BEGIN;
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_b')) IS NOT NULL AS b;
EXECUTE by_part(0);
SELECT coa.plpgsql_count() AS b_plpgsql;
EXECUTE upd(20);
ROLLBACK;
BEGIN;
EXECUTE by_part(0);
SELECT coa.plpgsql_count() AS none_plpgsql;
EXECUTE upd(0);
ROLLBACK;
SELECT generic_plans > 0 AS generic FROM pg_prepared_statements WHERE name = 'by_part';
DEALLOCATE ALL;
RESET plan_cache_mode;

-- within one statement, the sub-select keeps its first value: a function
-- called per row that switches to tenant B's token makes the per-row form see
-- B's rows from then on, the sub-select keeps A's (a token the session holds
-- either way). Justified: the accessors are STABLE, one statement, one context.
CREATE FUNCTION pg_temp.switch_at(i int, at int) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF i = at THEN
        PERFORM tenant_guard.set_context(pg_temp.tok('tok_hs_b'));
    END IF;
    RETURN true;
END $$;
BEGIN;
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_a')) IS NOT NULL AS a;
SELECT array_agg(i ORDER BY i) AS with_hook
FROM (SELECT g AS i FROM generate_series(1, 30) g OFFSET 0) s, LATERAL (SELECT pg_temp.switch_at(s.i, 10) AS ok) w,
     LATERAL (SELECT count(*) AS n FROM coa.items WHERE id = s.i AND w.ok) c
WHERE c.n > 0;
COMMIT;
RESET ROLE;
SET tenant_guard.context_once_per_query = off;
SET ROLE regress_coa_app;
BEGIN;
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_a')) IS NOT NULL AS a;
SELECT array_agg(i ORDER BY i) AS per_row
FROM (SELECT g AS i FROM generate_series(1, 30) g OFFSET 0) s, LATERAL (SELECT pg_temp.switch_at(s.i, 10) AS ok) w,
     LATERAL (SELECT count(*) AS n FROM coa.items WHERE id = s.i AND w.ok) c
WHERE c.n > 0;
COMMIT;
RESET ROLE;
RESET tenant_guard.context_once_per_query;

-- a cursor keeps the context of its first fetch: fetched after the session
-- switched to B's token it goes on with A's rows (the per-row form turns to
-- B's); after the transaction, the cursor is gone
SET ROLE regress_coa_app;
BEGIN;
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_a')) IS NOT NULL AS a;
DECLARE c SCROLL CURSOR FOR SELECT id, left(org_id::text, 1) AS tenant FROM coa.items ORDER BY id;
FETCH 2 FROM c;
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_b')) IS NOT NULL AS b;
FETCH 2 FROM c;
FETCH BACKWARD 3 FROM c;
MOVE LAST IN c;
FETCH PRIOR FROM c;
COMMIT;
RESET ROLE;
SET tenant_guard.context_once_per_query = off;
SET ROLE regress_coa_app;
BEGIN;
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_a')) IS NOT NULL AS a;
DECLARE c SCROLL CURSOR FOR SELECT id, left(org_id::text, 1) AS tenant FROM coa.items ORDER BY id;
FETCH 2 FROM c;
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_b')) IS NOT NULL AS b;
FETCH 2 FROM c;
COMMIT;
RESET ROLE;
RESET tenant_guard.context_once_per_query;

-- COPY (SELECT ...) TO STDOUT and COPY of the table, EXPLAIN of a cursor
SET ROLE regress_coa_app;
BEGIN;
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_b')) IS NOT NULL AS b;
COPY (SELECT id, left(org_id::text, 1) FROM coa.parts ORDER BY id) TO STDOUT;
COPY coa.items (id) TO STDOUT;
EXPLAIN (COSTS OFF) DECLARE c CURSOR FOR SELECT * FROM coa.parts;
COMMIT;
RESET ROLE;

CREATE EXTENSION dblink;
RESET tenant_guard.context_source;

-- a support session (signed context made by the library) revoked by the
-- tenant's admin from another connection: the next execution of the agent's
-- cached plan evaluates the context again and reads nothing
CREATE ROLE regress_coa_agent;
GRANT tenant_guard_support TO regress_coa_agent;
GRANT regress_coa_app TO regress_coa_agent;
GRANT EXECUTE ON FUNCTION dblink_connect_u(text, text) TO regress_coa_agent;
SELECT format('host=%s port=%s dbname=%s user=postgres', split_part(current_setting('unix_socket_directories'), ',', 1),
              current_setting('port'), current_database()) AS admin_connstr \gset
SELECT tenant_guard.issue_support_grant(:'org_a', 'agent@platform', 'once per query') AS tok_support \gset
SET SESSION AUTHORIZATION regress_coa_agent;
CALL tenant_guard.begin_support_session(:'tok_support');
SET plan_cache_mode = force_generic_plan;
PREPARE support_rows AS SELECT count(*), string_agg(DISTINCT left(org_id::text, 1), '') AS tenants FROM coa.parts;
BEGIN;
EXECUTE support_rows;
EXECUTE support_rows;
SELECT tenant_guard.current_impersonator() IS NOT NULL AS impersonating;
SELECT dblink_connect_u('admin', :'admin_connstr') AS admin_connected;
SELECT dblink_exec('admin', 'SET tenant_guard.context_source = ''setting''');
SELECT dblink_exec('admin', 'SET tenant_guard.org_id = ''11111111-1111-4111-8111-111111111111''');
SELECT dblink_exec('admin', 'SET tenant_guard.role = ''admin''');
SELECT r AS revoked FROM dblink('admin', 'SELECT tenant_guard.revoke_support_sessions()') AS t(r integer);
SELECT dblink_disconnect('admin');
EXECUTE support_rows;
SELECT count(*) AS items_after_revocation FROM coa.items;
COMMIT;
SELECT generic_plans > 1 AS generic FROM pg_prepared_statements WHERE name = 'support_rows';
DEALLOCATE support_rows;
RESET plan_cache_mode;
RESET SESSION AUTHORIZATION;

-- EvalPlanQual: while tenant A's UPDATE waits for a row that another
-- transaction moves to tenant B, the policy is checked again on the new
-- version with the sub-select's value: the moved row is not written
SELECT format('host=%s port=%s dbname=%s user=regress_coa_app', split_part(current_setting('unix_socket_directories'), ',', 1),
              current_setting('port'), current_database()) AS connstr \gset
SELECT dblink_connect('tenant_a', :'connstr') AS connected;
SELECT dblink_exec('tenant_a', 'SET request.jwt.claims = ''{"org_id":"11111111-1111-4111-8111-111111111111"}''');
BEGIN;
UPDATE coa.items SET org_id = :'org_b', v = 'moved to B' WHERE id = 12;
UPDATE coa.items SET v = 'touched' WHERE id = 15;
SELECT dblink_send_query('tenant_a', 'UPDATE coa.items SET v = ''written by A'' WHERE id IN (12, 15, 18) RETURNING id, left(org_id::text, 1)');
-- wait until it waits for the lock
DO $$
BEGIN
    FOR i IN 1..600 LOOP
        EXIT WHEN EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database()
                          AND usename = 'regress_coa_app' AND wait_event_type = 'Lock');
        PERFORM pg_sleep(0.05);
    END LOOP;
END $$;
COMMIT;
SELECT * FROM dblink_get_result('tenant_a') AS r(id int, tenant text) ORDER BY id;
SELECT dblink_disconnect('tenant_a');
SELECT id, left(org_id::text, 1) AS tenant, v FROM coa.items WHERE id IN (12, 15, 18) ORDER BY id;

DROP EXTENSION dblink;
DROP SCHEMA coa CASCADE;
DROP OWNED BY regress_coa_app, regress_coa_agent;
DROP ROLE regress_coa_agent;
DROP ROLE regress_coa_app;
