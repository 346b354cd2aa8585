-- Pass b of test/pgsuite/run_pg_regress_suite.sh, last, after the whole
-- suite: tenant_guard's state survived it (registries, policies, audit chain,
-- event triggers, guards), and the guards still work.
\set SHOW_CONTEXT never
\set VERBOSITY terse
\set org_a '11111111-1111-4111-8111-111111111111'
\set org_b '22222222-2222-4222-8222-222222222222'
SELECT tbl, tenant_column, parent FROM tenant_guard.protected_tables ORDER BY tbl::text;
SELECT tbl FROM tenant_guard.audited_tables ORDER BY tbl::text;
SELECT schema_name, tenant_column FROM tenant_guard.guarded_schemas ORDER BY 1;
SELECT role::regrole FROM tenant_guard.app_roles ORDER BY 1;
SELECT * FROM tenant_guard.verify();
SELECT ok, problem FROM tenant_guard.verify_audit();
SELECT count(*) > 0 AS event_triggers, bool_and(evtenabled = 'O') AS all_enabled
FROM pg_event_trigger WHERE evtname LIKE 'tenant\_guard%';
SELECT org_id, count(*), sum(balance) FROM tg_app.accounts GROUP BY 1 ORDER BY 1;
SELECT tableoid::regclass, org_id, count(*) FROM tg_app.events GROUP BY 1, 2 ORDER BY 1, 2;
-- the audit log has the workload's writes of both tenants
SELECT org, action, count(*) > 0 AS recorded FROM tenant_guard.audit_trail
WHERE kind = 'row' AND table_name LIKE 'tg_app.%' GROUP BY 1, 2 ORDER BY 1, 2;

-- the guards still work
SET tenant_guard.context_source = 'setting';
SET SESSION AUTHORIZATION regress_tg_app;
SET tenant_guard.org_id = :'org_a';
SELECT count(*) AS a_accounts, count(*) FILTER (WHERE org_id <> :'org_a') AS other_tenants FROM tg_app.accounts;
TRUNCATE tg_app.accounts;
EXPLAIN ANALYZE SELECT 1;
RESET SESSION AUTHORIZATION;
RESET tenant_guard.context_source;
BEGIN;
CREATE TABLE public.tg_unprotected (id int, org_id uuid);
COMMIT;
SELECT to_regclass('public.tg_unprotected') AS not_committed;

SELECT tenant_guard.unguard_schema('public');
DROP SCHEMA tg_app CASCADE;
SELECT tenant_guard.unregister_app_role('regress_tg_app');
DROP ROLE regress_tg_app;
