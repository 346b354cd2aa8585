-- Scoping: a context is transaction-scoped unless session => true; it is gone
-- after COMMIT or ROLLBACK, a rolled-back savepoint restores the previous one,
-- and RESET ALL / DISCARD ALL (what poolers run between clients) clear it.
\getenv tokens_file TG_TOKENS_SQL
\i :tokens_file
SET tenant_guard.jwt_secret_file = :'hs_secret_file';
SET tenant_guard.context_source = 'signed';
CREATE TEMP VIEW ctx AS
    SELECT CASE tenant_guard.current_user_org_id()
               WHEN :'org_a' THEN 'A' WHEN :'org_b' THEN 'B' ELSE coalesce(tenant_guard.current_user_org_id()::text, '-') END AS org;

-- COMMIT ends a transaction-scoped context
BEGIN;
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_a')) IS NOT NULL AS set;
SELECT * FROM ctx;
COMMIT;
SELECT * FROM ctx;

-- so does ROLLBACK
BEGIN;
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_a')) IS NOT NULL AS set;
ROLLBACK;
SELECT * FROM ctx;

-- savepoints: a rolled-back savepoint restores the previous context
BEGIN;
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_a')) IS NOT NULL AS set;
SAVEPOINT s1;
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_b')) IS NOT NULL AS set;
SELECT * FROM ctx;
ROLLBACK TO SAVEPOINT s1;
SELECT * FROM ctx;
SAVEPOINT s2;
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_b')) IS NOT NULL AS set;
RELEASE SAVEPOINT s2;
SELECT * FROM ctx;
SAVEPOINT s3;
SELECT tenant_guard.clear_context();
SELECT * FROM ctx;
ROLLBACK TO SAVEPOINT s3;
SELECT * FROM ctx;
COMMIT;
SELECT * FROM ctx;

-- an error aborts the transaction and its context
BEGIN;
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_a')) IS NOT NULL AS set;
SELECT 1 / 0;
ROLLBACK;
SELECT * FROM ctx;

-- a session context survives transactions, and a transaction-scoped one
-- layered on top ends with its transaction
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_a'), session => true) IS NOT NULL AS set;
SELECT * FROM ctx;
BEGIN;
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_b')) IS NOT NULL AS set;
SELECT * FROM ctx;
COMMIT;
SELECT * FROM ctx;
-- a session context set in a rolled-back transaction never existed
BEGIN;
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_b'), session => true) IS NOT NULL AS set;
ROLLBACK;
SELECT * FROM ctx;

-- clear_context, RESET ALL and DISCARD ALL each clear it
SELECT tenant_guard.clear_context();
SELECT * FROM ctx;
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_a'), session => true) IS NOT NULL AS set;
RESET ALL;
SET tenant_guard.jwt_secret_file = :'hs_secret_file';
SET tenant_guard.context_source = 'signed';
SELECT * FROM ctx;
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_a'), session => true) IS NOT NULL AS set;
DISCARD ALL;
\i :tokens_file
SET tenant_guard.jwt_secret_file = :'hs_secret_file';
SET tenant_guard.context_source = 'signed';
SELECT tenant_guard.current_user_org_id() IS NULL AS discarded;

-- a context set inside a function (even one with its own SET clause) stays
-- for the rest of the transaction, like any SET LOCAL
CREATE FUNCTION pg_temp.login(tok text) RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM tenant_guard.set_context(tok);
END $$;
BEGIN;
SELECT pg_temp.login(pg_temp.tok('tok_hs_b'));
SELECT tenant_guard.current_user_org_id() = :'org_b' AS set_in_function;
COMMIT;
SELECT tenant_guard.current_user_org_id() IS NULL AS gone;

-- claims source: the same scoping comes from set_config(..., true)
SET tenant_guard.context_source = 'claims';
BEGIN;
SELECT set_config('request.jwt.claims', '{"org_id":"11111111-1111-4111-8111-111111111111"}', true) IS NOT NULL AS set;
SAVEPOINT s;
SELECT set_config('request.jwt.claims', '{"org_id":"22222222-2222-4222-8222-222222222222"}', true) IS NOT NULL AS set;
SELECT tenant_guard.current_user_org_id() = :'org_b' AS b;
ROLLBACK TO SAVEPOINT s;
SELECT tenant_guard.current_user_org_id() = :'org_a' AS back_to_a;
COMMIT;
SELECT tenant_guard.current_user_org_id() IS NULL AS gone;

-- a prepared statement sees the context of each execution, not of PREPARE
PREPARE who AS SELECT tenant_guard.current_user_org_id();
BEGIN;
SELECT set_config('request.jwt.claims', '{"org_id":"11111111-1111-4111-8111-111111111111"}', true) IS NOT NULL AS set;
EXECUTE who;
SELECT set_config('request.jwt.claims', '{"org_id":"22222222-2222-4222-8222-222222222222"}', true) IS NOT NULL AS set;
EXECUTE who;
COMMIT;
EXECUTE who;
DEALLOCATE who;
