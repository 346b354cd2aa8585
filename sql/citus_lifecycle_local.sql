-- The Citus parts of the tenant lifecycle and of the attack grid on a
-- database without Citus (test/citus/lifecycle_checks.sh runs them on a real
-- Citus cluster): the registry copy does nothing here and the lifecycle works
-- as on one server; the internals refuse NULLs and every role but the
-- superuser; _citus_put_tenants() writes exact copies; _grid_claims() puts
-- the context at the configured claim paths; the walls' event trigger lets
-- partitions and renames happen as before.
\getenv tokens_file TG_TOKENS_SQL
\i :tokens_file
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;

-- without Citus: no worker to refuse, nothing to copy, nothing to send through
SELECT tenant_guard._citus_refuse_worker('register_tenant()');
SELECT tenant_guard._citus_sync_tenants();
SELECT tenant_guard._citus_send_command('SELECT 1');
SELECT tenant_guard._citus_send_command(NULL);

-- the registry trigger leaves the lifecycle as on one server
CREATE TABLE cll_docs (id int PRIMARY KEY, org_id uuid NOT NULL, body text);
SELECT tenant_guard.protect('cll_docs');
BEGIN;
SELECT tenant_guard.register_tenant(:'org_a'::uuid, 'A');
SELECT tenant_guard.archive_tenant(:'org_a'::uuid) > now() AS archived;
SELECT status FROM tenant_guard.tenants WHERE org_id = :'org_a';

-- _citus_put_tenants(): upsert by org_id, drop, exact copy (as on a worker);
-- it returns how many rows it inserted or replaced
SELECT tenant_guard._citus_put_tenants(
    jsonb_build_array(jsonb_build_object('org_id', :'org_b', 'display_name', 'B', 'status', 'archived',
                                         'created_at', '2020-01-01T00:00:00Z', 'archived_at', '2020-01-02T00:00:00Z',
                                         'purge_after', '2020-04-01T00:00:00Z')),
    '[]', false) AS put;
SELECT org_id = :'org_b' AS is_b, display_name, status, archived_at FROM tenant_guard.tenants
WHERE org_id = :'org_b';
SELECT tenant_guard._citus_put_tenants(
    jsonb_build_array(jsonb_build_object('org_id', :'org_b', 'display_name', 'B2', 'status', 'active',
                                         'created_at', '2020-01-01T00:00:00Z')),
    '[]', false) AS replaced;
SELECT display_name, status, archived_at IS NULL AS archived_at_cleared FROM tenant_guard.tenants
WHERE org_id = :'org_b';
SELECT tenant_guard._citus_put_tenants('[]', jsonb_build_array(jsonb_build_object('org_id', :'org_b')), false)
    AS dropped;
SELECT count(*) AS b_rows FROM tenant_guard.tenants WHERE org_id = :'org_b';
SELECT tenant_guard._citus_put_tenants(
    jsonb_build_array(jsonb_build_object('org_id', 'org_only', 'status', 'active', 'created_at', '2020-01-01T00:00:00Z')),
    '[]', true) AS exact;
SELECT string_agg(org_id, ',') AS registry_after_exact FROM tenant_guard.tenants;
-- a row the registry refuses is refused here too
SELECT tenant_guard._citus_put_tenants(
    jsonb_build_array(jsonb_build_object('org_id', 'x', 'status', 'gone', 'created_at', '2020-01-01T00:00:00Z')),
    '[]', false);
ROLLBACK;
SELECT tenant_guard._citus_put_tenants(NULL, '[]', false);
SELECT tenant_guard._citus_put_tenants('[]', NULL, false);
SELECT tenant_guard._citus_put_tenants('[]', '[]', NULL);

-- _grid_claims(): the context at the configured claim paths, with an expiry
SELECT (c::jsonb) - 'exp' AS claims, ((c::jsonb)->>'exp')::bigint > extract(epoch FROM now()) AS expires_later
FROM tenant_guard._grid_claims('org-1', 'admin', '["read", "write"]') c;
SET tenant_guard.org_claim = 'app.tenant.id';
SELECT (tenant_guard._grid_claims('org-1', NULL, NULL)::jsonb) - 'exp' AS nested_claims;
RESET tenant_guard.org_claim;

-- the event trigger that registers the shard walls of new partitions and
-- renamed tables: nothing to register without Citus
CREATE TABLE cll_part (id int, org_id uuid NOT NULL) PARTITION BY LIST (id);
SELECT tenant_guard.protect('cll_part');
CREATE TABLE cll_part_1 PARTITION OF cll_part FOR VALUES IN (1);
ALTER TABLE cll_part RENAME TO cll_part_renamed;
SELECT count(*) AS walls FROM tenant_guard.citus_walls;
SELECT tbl::text, parent::text FROM tenant_guard.protected_tables WHERE tbl::text LIKE 'cll_part%' ORDER BY 1;
SELECT tenant_guard.unprotect('cll_part_renamed');
DROP TABLE cll_part_renamed;

-- none of it is the application role's; its own DDL is not hindered
CREATE ROLE regress_cll_app LOGIN;
CREATE SCHEMA regress_cll_own AUTHORIZATION regress_cll_app;
SET ROLE regress_cll_app;
CREATE TABLE regress_cll_own.t (id int);
ALTER TABLE regress_cll_own.t RENAME TO t2;
DROP TABLE regress_cll_own.t2;
SELECT tenant_guard._citus_send_command('SELECT 1');
SELECT tenant_guard._citus_put_tenants('[]', '[]', true);
SELECT tenant_guard._citus_sync_tenants();
SELECT tenant_guard._citus_refuse_worker('x');
SELECT tenant_guard._grid_claims('org-1', NULL, NULL);
RESET ROLE;

SELECT tenant_guard.unprotect('cll_docs');
DROP TABLE cll_docs;
DROP SCHEMA regress_cll_own;
DROP ROLE regress_cll_app;
