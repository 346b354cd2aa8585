-- The way out, and exports that cannot look complete when they are not:
-- DROP EXTENSION tenant_guard refused while tables are protected, uninstall(),
-- unprotect() in a guarded schema, export_tenant() by a role that reads less
-- than the tenant's rows, and the unprotected tables export and purge leave.
\set SHOW_CONTEXT never
\set org_a '11111111-1111-4111-8111-111111111111'
\set org_b '22222222-2222-4222-8222-222222222222'
CREATE ROLE regress_ex_app;
CREATE SCHEMA ex;
CREATE TABLE ex.orgs (id uuid PRIMARY KEY);
INSERT INTO ex.orgs VALUES (:'org_a'), (:'org_b');
CREATE TABLE ex.docs (org_id uuid NOT NULL REFERENCES ex.orgs, id int, secret boolean, PRIMARY KEY (org_id, id));
INSERT INTO ex.docs VALUES (:'org_a', 1, false), (:'org_a', 2, true), (:'org_a', 3, true), (:'org_b', 1, false);
SELECT tenant_guard.protect('ex.docs');
GRANT USAGE ON SCHEMA ex TO regress_ex_app;
GRANT SELECT ON ex.docs TO regress_ex_app;
GRANT EXECUTE ON FUNCTION tenant_guard.export_tenant(text, text[]) TO regress_ex_app;
-- a viewer reads the non-secret documents only
SELECT tenant_guard.allow('ex.docs', 'admin', '{ALL}');
SELECT tenant_guard.allow('ex.docs', 'viewer', '{SELECT}');
CREATE POLICY ex_viewer_hides ON ex.docs AS RESTRICTIVE FOR SELECT
    USING (NOT secret OR tenant_guard.current_user_role() = 'admin');

CREATE FUNCTION pg_temp.claims(org text, r text) RETURNS void LANGUAGE sql AS $$
    SELECT set_config('request.jwt.claims', json_build_object('org_id', org, 'org_role', r)::text, false) $$;
GRANT EXECUTE ON FUNCTION pg_temp.claims(text, text) TO regress_ex_app;
SET ROLE regress_ex_app;
-- the admin reads every row: complete but for the unprotected ex.orgs
SELECT pg_temp.claims(:'org_a', 'admin');
SELECT d -> 'manifest' -> 'documents' AS docs, d -> 'manifest' -> 'complete' AS complete,
       d -> 'manifest' -> 'not_covered' AS not_covered
FROM tenant_guard.export_tenant(:'org_a') d WHERE d ? 'manifest';
-- a viewer reads one row of three: a warning, and the manifest says so
SELECT pg_temp.claims(:'org_a', 'viewer');
SELECT d -> 'manifest' -> 'documents' AS docs, d -> 'manifest' -> 'complete' AS complete,
       d -> 'manifest' -> 'not_covered' AS not_covered
FROM tenant_guard.export_tenant(:'org_a') d WHERE d ? 'manifest';
-- another tenant's export, or none: refused, not an empty "verified" manifest
SELECT count(*) FROM tenant_guard.export_tenant(:'org_b');
SELECT set_config('request.jwt.claims', '', false);
SELECT count(*) FROM tenant_guard.export_tenant(:'org_a');
-- the row counter counts only the caller's own tenant
SELECT pg_temp.claims(:'org_a', 'viewer');
SELECT tenant_guard._lifecycle_tenant_rows('ex.docs', :'org_b');
SELECT tenant_guard._lifecycle_tenant_rows('ex.docs', :'org_a');
SELECT tenant_guard._lifecycle_tenant_rows('ex.orgs', :'org_a');
RESET ROLE;
SELECT set_config('request.jwt.claims', '', false);
-- a superuser reads everything of the tenant
SELECT d -> 'manifest' -> 'documents' AS docs FROM tenant_guard.export_tenant(:'org_a') d WHERE d ? 'manifest';
-- purge certificates name the unprotected table too
SELECT tenant_guard.register_tenant(:'org_b', 'B');
SELECT tenant_guard.purge_tenant(:'org_b', :'org_b') -> 'not_covered' AS not_covered;
SELECT count(*) AS b_left_in_orgs FROM ex.orgs WHERE id = :'org_b';

-- unprotect() in a guarded schema: refused at once, with what to do
SELECT tenant_guard.guard_schema('ex');
SELECT tenant_guard.unprotect('ex.docs');
SELECT tenant_guard.protected_tables.tbl FROM tenant_guard.protected_tables;

-- DROP EXTENSION: refused while tables are protected, with or without CASCADE
DROP EXTENSION tenant_guard;
DROP EXTENSION tenant_guard CASCADE;
DROP EXTENSION IF EXISTS tenant_guard, plpgsql CASCADE;
-- other extensions are not concerned
CREATE EXTENSION IF NOT EXISTS pgcrypto;
DROP EXTENSION pgcrypto;
-- the recorded escape: a superuser's allow_unsafe_ddl in the transaction (rolled back here)
BEGIN;
SET LOCAL tenant_guard.allow_unsafe_ddl = on;
DROP EXTENSION tenant_guard CASCADE;
ROLLBACK;
SELECT count(*) AS policies_still_there FROM pg_policy WHERE polrelid = 'ex.docs'::regclass;
-- uninstall(): not for the application role (revoked from PUBLIC)
SET ROLE regress_ex_app;
SELECT * FROM tenant_guard.uninstall();
RESET ROLE;
DROP POLICY ex_viewer_hides ON ex.docs;
SELECT * FROM tenant_guard.uninstall();
SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = 'ex.docs'::regclass;
SELECT count(*) AS policies FROM pg_policy WHERE polrelid = 'ex.docs'::regclass;
DROP EXTENSION tenant_guard;
SELECT count(*) AS rows_readable FROM ex.docs;
DROP SCHEMA ex CASCADE;
DROP OWNED BY regress_ex_app;
DROP ROLE regress_ex_app;
