-- Pass b of test/pgsuite/run_pg_regress_suite.sh, in the group that also runs
-- truncate, alter_table, prepare, temp and plpgsql: the registered
-- application role at work on the protected, audited tables of tg_setup, and
-- the statement forms the runtime guards refuse to it, while the suite's
-- sessions run DDL, TRUNCATE and prepared statements of their own.
\set SHOW_CONTEXT never
\set VERBOSITY terse
\set org_a '11111111-1111-4111-8111-111111111111'
\set org_b '22222222-2222-4222-8222-222222222222'
SET tenant_guard.context_source = 'setting';
SET SESSION AUTHORIZATION regress_tg_app;
SET tenant_guard.org_id = :'org_a';
SELECT count(*) AS a_accounts FROM tg_app.accounts;

-- audited writes: transactions, savepoints, a rollback, upserts, MERGE,
-- writes through a partitioned table and a CTE, cursors
BEGIN;
UPDATE tg_app.accounts SET balance = balance + 10 WHERE id <= 10;
SAVEPOINT s1;
DELETE FROM tg_app.accounts WHERE id = 1;
ROLLBACK TO s1;
INSERT INTO tg_app.events (kind, n, what) VALUES ('login', 100, 'in a transaction');
COMMIT;
BEGIN;
DELETE FROM tg_app.accounts;
ROLLBACK;
INSERT INTO tg_app.accounts (id, name) VALUES (1, 'upsert') ON CONFLICT (id) DO UPDATE SET name = excluded.name;
MERGE INTO tg_app.accounts t USING (SELECT g AS id FROM generate_series(45, 55) g) s ON t.id = s.id
    WHEN MATCHED THEN UPDATE SET balance = t.balance + 1
    WHEN NOT MATCHED THEN DO NOTHING;
WITH moved AS (UPDATE tg_app.events SET kind = 'other', n = n + 1000 WHERE kind = 'login' AND n <= 5 RETURNING *)
SELECT count(*) AS moved FROM moved;
BEGIN;
DECLARE c CURSOR FOR SELECT id, name FROM tg_app.accounts ORDER BY id;
FETCH 3 FROM c;
MOVE FORWARD 10 IN c;
FETCH 1 FROM c;
CLOSE c;
COMMIT;
PREPARE tg_count AS SELECT count(*) FROM tg_app.accounts WHERE balance > $1;
EXECUTE tg_count(0);
\o /dev/null
EXPLAIN (COSTS OFF) EXECUTE tg_count(0);
\o
COPY (SELECT id, name FROM tg_app.accounts WHERE id <= 3 ORDER BY id) TO stdout;

-- refused: TRUNCATE and EXPLAIN ANALYZE in every form
TRUNCATE tg_app.accounts;
TRUNCATE tg_app.events;
TRUNCATE ONLY tg_app.events_login;
TRUNCATE tg_app.accounts CASCADE;
EXPLAIN ANALYZE SELECT * FROM tg_app.accounts;
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT * FROM tg_app.events;
EXPLAIN ANALYZE EXECUTE tg_count(0);
EXPLAIN ANALYZE EXECUTE tg_no_such_statement;
EXPLAIN (ANALYZE) CREATE TEMP TABLE tg_tt AS EXECUTE tg_no_such_statement;
EXPLAIN (ANALYZE) DECLARE c2 CURSOR FOR SELECT 1;
DO $$ BEGIN EXECUTE 'EXPLAIN ANALYZE SELECT 1'; END $$;
BEGIN;
SAVEPOINT s2;
TRUNCATE tg_app.accounts;
ROLLBACK TO s2;
EXPLAIN ANALYZE SELECT 1;
ROLLBACK;
-- the same with row_security = off in the session
SET row_security = off;
SELECT count(*) FROM tg_app.accounts;
TRUNCATE tg_app.accounts;
EXPLAIN ANALYZE SELECT 1;
RESET row_security;
DEALLOCATE tg_count;

-- tenant B, then the other tenant's rows are not visible
SET tenant_guard.org_id = :'org_b';
UPDATE tg_app.accounts SET balance = balance - 1 WHERE id BETWEEN 51 AND 60;
DELETE FROM tg_app.events WHERE n = 10;
SELECT count(*) AS b_accounts, count(*) FILTER (WHERE id <= 50) AS a_rows_seen FROM tg_app.accounts;
RESET tenant_guard.org_id;
SELECT count(*) AS rows_without_context FROM tg_app.accounts;
RESET SESSION AUTHORIZATION;
RESET tenant_guard.context_source;
