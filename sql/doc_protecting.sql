-- Generated from docs/protecting-a-schema.md by test/docs/extract.py; do not edit: change the page, then run
-- python3 test/docs/extract.py --write. Each block runs as the role its marker names.
SELECT current_user AS doc_superuser \gset
-- docs/protecting-a-schema.md, block 1
\c - :doc_superuser
CREATE SCHEMA app;
CREATE TABLE app.orgs (id uuid PRIMARY KEY, name text NOT NULL);   -- the tenants themselves: platform data
CREATE TABLE app.projects (
    org_id uuid NOT NULL REFERENCES app.orgs,
    id     bigint GENERATED ALWAYS AS IDENTITY,
    name   text NOT NULL,
    PRIMARY KEY (org_id, id));
CREATE TABLE app.tasks (
    org_id     uuid NOT NULL REFERENCES app.orgs,
    id         bigint GENERATED ALWAYS AS IDENTITY,
    project_id bigint NOT NULL,
    title      text NOT NULL,
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, project_id) REFERENCES app.projects (org_id, id));
CREATE TABLE app.events (org_id uuid NOT NULL, at date NOT NULL, what text) PARTITION BY RANGE (at);
CREATE TABLE app.events_2026 PARTITION OF app.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE app.countries (code text PRIMARY KEY, name text);   -- shared reference data, no tenant
INSERT INTO app.orgs VALUES ('11111111-1111-4111-8111-111111111111', 'Acme'),
                            ('22222222-2222-4222-8222-222222222222', 'Globex');
-- docs/protecting-a-schema.md, block 2
\c - :doc_superuser
SELECT tenant_guard.protect_schema('app');
-- NOTICE:  created index app.events_org_id_idx on app.events
-- NOTICE:  tables without column "org_id" were not protected: app.countries, app.orgs
--  protect_schema
-- ----------------
--               3
-- docs/protecting-a-schema.md, block 3
\c - :doc_superuser
CREATE ROLE regress_protecting_app_user LOGIN;                     -- never a superuser, never the owner, no BYPASSRLS
GRANT USAGE ON SCHEMA app TO regress_protecting_app_user;
GRANT SELECT, INSERT, UPDATE, DELETE ON app.projects, app.tasks, app.events TO regress_protecting_app_user;
GRANT SELECT ON app.countries TO regress_protecting_app_user;
-- docs/protecting-a-schema.md, block 4
\c - :doc_superuser
SELECT tbl, tenant_column FROM tenant_guard.protected_tables ORDER BY 1::text;   -- what is protected, on which column
SELECT * FROM tenant_guard.verify();            -- empty: everything is as generated
SELECT code, severity, object FROM tenant_guard.lint() WHERE code IN ('TG022', 'TG023', 'TG024');   -- keys, references
--  code  | severity |     object
-- -------+----------+-----------------
--  TG024 | info     | app.projects.id
--  TG024 | info     | app.tasks.id
-- docs/protecting-a-schema.md, block 5
\c - :doc_superuser
ALTER TABLE app.projects NO FORCE ROW LEVEL SECURITY;
-- ERROR:  cannot turn off FORCE row level security: table app.projects is protected by tenant_guard
-- docs/protecting-a-schema.md, block 6
\c - :doc_superuser
SELECT tenant_guard.guard_schema('app');
-- docs/protecting-a-schema.md, block 7
\c - :doc_superuser
BEGIN;
CREATE TABLE app.invoices (org_id uuid NOT NULL, id bigint, total numeric, PRIMARY KEY (org_id, id));
CREATE TABLE app.currencies (code text PRIMARY KEY, org_id uuid);
COMMIT;
-- ERROR:  tenant tables in a guarded schema are not protected: app.currencies, app.invoices
-- docs/protecting-a-schema.md, block 8
\c - :doc_superuser
BEGIN;
CREATE TABLE app.invoices (org_id uuid NOT NULL, id bigint, total numeric, PRIMARY KEY (org_id, id));
CREATE TABLE app.currencies (code text PRIMARY KEY, org_id uuid);
SELECT tenant_guard.protect('app.invoices');
SELECT tenant_guard.exempt('app.currencies', 'shared reference data');
COMMIT;
-- docs/protecting-a-schema.md, block 9
\c - :doc_superuser
SELECT tenant_guard.allow('app.tasks', 'admin', '{ALL}');
-- NOTICE:  table app.tasks now admits only the in-tenant roles given access by allow() (admin: DELETE, INSERT, SELECT, UPDATE); every other in-tenant role can no longer read or change its rows
SELECT tenant_guard.allow('app.tasks', 'member', '{SELECT,INSERT,UPDATE}');
SELECT tenant_guard.allow('app.tasks', 'contractor', '{SELECT,UPDATE}', 'project_id', 'project');
SELECT role, command, restricted_by FROM tenant_guard.describe_access('app.tasks') ORDER BY 1, 2;
-- docs/protecting-a-schema.md, block 10
\c - regress_protecting_app_user
BEGIN;
SELECT set_config('request.jwt.claims', '{"org_id": "11111111-1111-4111-8111-111111111111", "org_role": "admin"}',
                  true) IS NOT NULL;
INSERT INTO app.projects (name) VALUES ('Website'), ('Intranet');
INSERT INTO app.tasks (project_id, title) VALUES (1, 'Launch'), (2, 'Migrate wiki');
COMMIT;
BEGIN;
SELECT set_config('request.jwt.claims', '{"org_id": "11111111-1111-4111-8111-111111111111", "org_role": "contractor",
                  "scopes": {"project": ["2"]}}', true) IS NOT NULL;
SELECT project_id, title FROM app.tasks;
COMMIT;
INSERT INTO app.projects (org_id, name) VALUES ('11111111-1111-4111-8111-111111111111', 'no context');
-- ERROR:  new row violates row-level security policy for table "projects"
-- docs/protecting-a-schema.md, block 11
\c - :doc_superuser
SELECT tenant_guard.allow('app.events', 'venue_manager', '{ALL}', 'venue_id', 'venue');
-- ERROR:  table app.events has no column "venue_id"
-- docs/protecting-a-schema.md, block 12
\c - :doc_superuser
CREATE POLICY public_projects ON app.projects FOR SELECT USING (true);
-- docs/protecting-a-schema.md, block 13
\c - regress_protecting_app_user
BEGIN;
SELECT set_config('request.jwt.claims', '{"org_id": "22222222-2222-4222-8222-222222222222", "org_role": "admin"}',
                  true) IS NOT NULL;
SELECT count(*) AS acme_projects_seen_by_globex FROM app.projects;
COMMIT;
-- docs/protecting-a-schema.md, block 14
\c - :doc_superuser
DROP POLICY public_projects ON app.projects;
-- docs/protecting-a-schema.md, block 15
\c - :doc_superuser
CREATE ROLE regress_protecting_migrator LOGIN;
GRANT USAGE ON SCHEMA app TO regress_protecting_migrator;
GRANT SELECT, UPDATE ON app.tasks TO regress_protecting_migrator;
SELECT tenant_guard.grant_maintenance('regress_protecting_migrator', 'schema migrations (ticket OPS-12)');
-- docs/protecting-a-schema.md, block 16
\c - regress_protecting_migrator
UPDATE app.tasks SET title = title || ' (migrated)';          -- bound by the wall: UPDATE 0
DO $$
DECLARE org text;
BEGIN
    FOR org IN SELECT t FROM tenant_guard.maintenance_tenants('app.tasks') t LOOP
        PERFORM tenant_guard.begin_maintenance(org, 'backfill: mark migrated tasks', 'admin');
        UPDATE app.tasks SET title = title || ' (migrated)';
        RAISE NOTICE 'tenant %: % tasks', org, (SELECT count(*) FROM app.tasks);
    END LOOP;
END $$;
-- NOTICE:  tenant 11111111-1111-4111-8111-111111111111: 2 tasks
-- docs/protecting-a-schema.md, block 17
\c - regress_protecting_app_user
BEGIN;
SELECT tenant_guard.begin_maintenance('22222222-2222-4222-8222-222222222222', 'just looking');
-- ERROR:  permission denied for a maintenance context
ROLLBACK;
SELECT tenant_guard.maintenance_tenants('app.tasks');
-- ERROR:  permission denied for a maintenance context
-- docs/protecting-a-schema.md, block 18
\c - :doc_superuser
SELECT tenant_guard.unprotect('app.events');
-- ERROR:  table app.events is in a guarded schema
BEGIN;
SELECT tenant_guard.unguard_schema('app');
SELECT tenant_guard.unprotect('app.events');
SELECT tenant_guard.exempt('app.events', 'moved to the analytics database');
SELECT tenant_guard.guard_schema('app');
COMMIT;
-- docs/protecting-a-schema.md, block 19
\c - :doc_superuser
DROP EXTENSION tenant_guard CASCADE;
-- ERROR:  cannot drop extension tenant_guard while tables are protected: app.invoices, app.projects, app.tasks
SELECT * FROM tenant_guard.uninstall();
DROP EXTENSION tenant_guard;
-- docs/protecting-a-schema.md, block 20
\c - regress_protecting_app_user
SELECT count(*) AS rows_visible_again FROM app.tasks;   -- no policy left, no row-level security
-- clean-up
\c - :doc_superuser
DROP SCHEMA app CASCADE;
DROP OWNED BY regress_protecting_app_user, regress_protecting_migrator;
DROP ROLE regress_protecting_app_user, regress_protecting_migrator;
