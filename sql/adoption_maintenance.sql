-- begin_maintenance(): a migration's audited context for one tenant at a time.
-- Only superusers and login roles a superuser granted it to; checked against
-- session_user, so the application role cannot reach it through SET ROLE, a
-- SECURITY DEFINER function, set_config() or a pooled connection.
\set SHOW_CONTEXT never
\set org_a '11111111-1111-4111-8111-111111111111'
\set org_b '22222222-2222-4222-8222-222222222222'
SELECT current_user AS su \gset
CREATE ROLE regress_mt_owner LOGIN;
CREATE ROLE regress_mt_migrator LOGIN;
CREATE ROLE regress_mt_app LOGIN;
CREATE ROLE regress_mt_admin LOGIN CREATEROLE;
GRANT regress_mt_migrator TO regress_mt_app;        -- the worst case: the app can SET ROLE to the migrator
CREATE SCHEMA mt AUTHORIZATION regress_mt_owner;
GRANT USAGE ON SCHEMA mt TO regress_mt_migrator, regress_mt_app;
GRANT CREATE ON SCHEMA mt TO regress_mt_migrator;
SET ROLE regress_mt_owner;
CREATE TABLE mt.items (org_id uuid NOT NULL, id int, v text, PRIMARY KEY (org_id, id));
INSERT INTO mt.items VALUES (:'org_a', 1, 'a'), (:'org_b', 1, 'b');
SELECT tenant_guard.protect('mt.items');
GRANT SELECT, UPDATE ON mt.items TO regress_mt_migrator, regress_mt_app;
-- the owner is bound by FORCE: a backfill without a context changes nothing
UPDATE mt.items SET v = v || '!';
RESET ROLE;
SELECT tenant_guard.register_app_role('regress_mt_app');

-- granting: superusers only, never to an application role, with a reason
SET ROLE regress_mt_admin;
SELECT tenant_guard.grant_maintenance('regress_mt_migrator', 'x');
RESET ROLE;
SELECT tenant_guard.grant_maintenance('regress_mt_app', 'backfill');
SELECT tenant_guard.grant_maintenance('regress_mt_migrator', '');
SELECT tenant_guard.grant_maintenance(NULL, 'backfill');
SELECT tenant_guard.grant_maintenance('regress_mt_migrator', 'backfill 2026-12');
SELECT role, reason, granted_by = current_user AS by_me FROM tenant_guard.maintenance_roles;
-- the registry is readable, not writable
SET ROLE regress_mt_app;
INSERT INTO tenant_guard.maintenance_roles (role, reason) VALUES ('regress_mt_app', 'mine');
UPDATE tenant_guard.maintenance_roles SET role = 'regress_mt_app';
RESET ROLE;

-- the granted login role: one tenant at a time, the in-tenant role it names
\c - regress_mt_migrator
\set SHOW_CONTEXT never
SELECT t FROM tenant_guard.maintenance_tenants('mt.items') t;
BEGIN;
SELECT tenant_guard.begin_maintenance(:'org_a', 'backfill 2026-12', 'admin');
SELECT tenant_guard.current_user_org_id() = :'org_a' AS org_a, tenant_guard.current_user_id(),
       tenant_guard.current_user_role();
UPDATE mt.items SET v = v || ' (a)';
SELECT tenant_guard.begin_maintenance(:'org_b', 'backfill 2026-12');
SELECT tenant_guard.current_user_org_id() = :'org_b' AS org_b, tenant_guard.current_user_role() IS NULL AS no_role;
UPDATE mt.items SET v = v || ' (b)';
COMMIT;
-- gone at COMMIT, and at ROLLBACK
SELECT tenant_guard.current_user_org_id() IS NULL AS gone;
BEGIN;
SELECT tenant_guard.begin_maintenance(:'org_a', 'rolled back');
ROLLBACK;
SELECT tenant_guard.current_user_org_id() IS NULL AS gone;
-- a subtransaction that rolls back takes its context with it
BEGIN;
SAVEPOINT s;
SELECT tenant_guard.begin_maintenance(:'org_a', 'savepoint');
ROLLBACK TO SAVEPOINT s;
SELECT tenant_guard.current_user_org_id() IS NULL AS gone;
COMMIT;
-- bad arguments
BEGIN;
SELECT tenant_guard.begin_maintenance(NULL, 'x');
ROLLBACK;
BEGIN;
SELECT tenant_guard.begin_maintenance(:'org_a', NULL);
ROLLBACK;
BEGIN;
SELECT tenant_guard.begin_maintenance(:'org_a', 'x', 'Admin; DROP');
ROLLBACK;
-- a SECURITY DEFINER function of the migrator, which the application may call
CREATE FUNCTION mt.backdoor(org text) RETURNS text LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    PERFORM tenant_guard.begin_maintenance(org, 'backdoor');
    RETURN (SELECT string_agg(v, ',') FROM mt.items);
END $$;
GRANT EXECUTE ON FUNCTION mt.backdoor(text) TO regress_mt_app;

-- the application role: refused whatever it tries
\c - regress_mt_app
\set SHOW_CONTEXT never
BEGIN;
SELECT tenant_guard.begin_maintenance(:'org_b', 'direct');
ROLLBACK;
SET ROLE regress_mt_migrator;
BEGIN;
SELECT tenant_guard.begin_maintenance(:'org_b', 'through SET ROLE');
ROLLBACK;
SELECT tenant_guard.maintenance_tenants('mt.items');
RESET ROLE;
BEGIN;
SELECT mt.backdoor(:'org_b');
ROLLBACK;
BEGIN;
SELECT tenant_guard._maintenance_claims(:'org_b', 'claims', 'admin');
ROLLBACK;
SELECT tenant_guard._maintenance_check();
SELECT set_config('tenant_guard.signed_context', '{"org_id": "22222222-2222-4222-8222-222222222222"}', true);
SET tenant_guard.signed_context = '{"org_id": "22222222-2222-4222-8222-222222222222"}';
SELECT tenant_guard.grant_maintenance('regress_mt_app', 'self-service');
SELECT count(*) AS rows_seen_without_context FROM mt.items;

-- a superuser needs no grant (signed mode gives it no other way to take a context)
\c - :su
\set SHOW_CONTEXT never
SET tenant_guard.context_source = 'signed';
BEGIN;
SELECT tenant_guard.begin_maintenance(:'org_b', 'superuser maintenance', 'admin');
SELECT tenant_guard.current_user_org_id() = :'org_b' AS org_b, tenant_guard.current_user_id() = 'maintenance:' || current_user AS who;
COMMIT;
RESET tenant_guard.context_source;
SELECT org_id, id, v FROM mt.items ORDER BY 1, 2;
-- every context is in the tenant's audit log, with the reason and the login role
SELECT org = :'org_a' AS org_a, action, detail ->> 'reason' AS reason, detail ->> 'in_tenant_role' AS in_tenant_role,
       CASE WHEN detail ->> 'session_user' = :'su' THEN 'the superuser' ELSE detail ->> 'session_user' END AS session_user
FROM tenant_guard.audit_log WHERE action LIKE 'platform.maintenance%' ORDER BY id;

-- revoking: superusers only; the role is refused from then on
SELECT tenant_guard.revoke_maintenance('regress_mt_migrator');
SELECT tenant_guard.revoke_maintenance('regress_mt_migrator');
\c - regress_mt_migrator
\set SHOW_CONTEXT never
BEGIN;
SELECT tenant_guard.begin_maintenance(:'org_a', 'after revoke');
ROLLBACK;
\c - :su
DROP SCHEMA mt CASCADE;
DELETE FROM tenant_guard.app_roles WHERE role::text LIKE 'regress_mt_%';
DROP ROLE regress_mt_owner, regress_mt_migrator, regress_mt_app, regress_mt_admin;
