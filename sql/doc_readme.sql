-- Generated from README.md by test/docs/extract.py; do not edit: change the page, then run
-- python3 test/docs/extract.py --write. Each block runs as the role its marker names.
SELECT current_user AS doc_superuser \gset
-- setup the page does not show (test/docs/readme.pre.sql)
-- pg_regress created the extension; the walkthrough's step 1 creates it again
DROP EXTENSION tenant_guard;
-- README.md, block 1
\c - :doc_superuser
CREATE EXTENSION tenant_guard;   -- its objects live in the schema tenant_guard, which it creates and owns
-- README.md, block 3
\c - :doc_superuser
CREATE SCHEMA app;
CREATE TABLE app.orgs (id uuid PRIMARY KEY, name text NOT NULL);   -- one row per tenant, read by the platform only
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
INSERT INTO app.orgs VALUES ('11111111-1111-4111-8111-111111111111', 'Acme'),
                            ('22222222-2222-4222-8222-222222222222', 'Globex');
SELECT tenant_guard.protect_schema('app');             -- every table with an org_id column
-- NOTICE:  tables without column "org_id" were not protected: app.orgs
SELECT * FROM tenant_guard.verify();                   -- empty: everything is as generated

CREATE ROLE regress_readme_app_user LOGIN;   -- the application: never a superuser, never the owner, no BYPASSRLS
GRANT USAGE ON SCHEMA app TO regress_readme_app_user;
GRANT SELECT, INSERT, UPDATE, DELETE ON app.projects, app.tasks TO regress_readme_app_user;
-- README.md, block 5
\c - regress_readme_app_user
BEGIN;
SELECT set_config('request.jwt.claims',
  '{"org_id": "11111111-1111-4111-8111-111111111111", "sub": "alice", "org_role": "admin"}', true) IS NOT NULL;
INSERT INTO app.projects (name) VALUES ('Website') RETURNING id;       -- org_id defaults to Acme
INSERT INTO app.tasks (project_id, title) VALUES (1, 'Launch');
COMMIT;
BEGIN;
SELECT set_config('request.jwt.claims',
  '{"org_id": "22222222-2222-4222-8222-222222222222", "sub": "bob", "org_role": "admin"}', true) IS NOT NULL;
SELECT count(*) FROM app.projects;                                     -- Globex sees none of Acme's
--  count
-- -------
--      0
INSERT INTO app.tasks (project_id, title) VALUES (1, 'planted');       -- Acme's project 1: refused
-- ERROR:  insert or update on table "tasks" violates foreign key constraint "tasks_org_id_project_id_fkey"
ROLLBACK;
-- README.md, block 6
\c - :doc_superuser
SELECT tenant_guard.allow('app.projects', 'admin', '{ALL}');
-- NOTICE:  table app.projects now admits only the in-tenant roles given access by allow() (admin: DELETE, INSERT, SELECT, UPDATE); every other in-tenant role can no longer read or change its rows
SELECT tenant_guard.allow('app.projects', 'member', '{SELECT,INSERT,UPDATE}');
SELECT tenant_guard.allow('app.projects', 'viewer');                               -- read only
SELECT role, command FROM tenant_guard.describe_access('app.projects') ORDER BY 1, 2;   -- from the catalog
-- README.md, block 7
\c - regress_readme_app_user
BEGIN;
SELECT set_config('request.jwt.claims',
  '{"org_id": "11111111-1111-4111-8111-111111111111", "sub": "carol", "org_role": "viewer"}', true) IS NOT NULL;
SELECT tenant_guard.current_user_id(), tenant_guard.current_user_role(), tenant_guard.has_role('admin');
SELECT name FROM app.projects;                                          -- a viewer reads
INSERT INTO app.projects (name) VALUES ('Intranet');                    -- and does not write
-- ERROR:  new row violates row-level security policy for table "projects"
ROLLBACK;
-- README.md, block 8
\c - :doc_superuser
SELECT tenant_guard.guard_schema('app');
-- README.md, block 9
\c - :doc_superuser
SELECT tenant_guard.register_app_role('regress_readme_app_user');         -- the role the application connects as
SELECT count(*) > 0 AS hardened FROM tenant_guard.harden_app_role('regress_readme_app_user');   -- lists what it changed
SELECT code, object FROM tenant_guard.lint() WHERE severity IN ('error', 'warning') ORDER BY 1;   -- 54 rules
--  code  |            object
-- -------+------------------------------
--  TG036 | tenant_guard.context_source
--  TG037 | tenant_guard.require_context
SET tenant_guard.context_source = 'signed';   -- the settings of step 2, which ALTER DATABASE gives every session
SET tenant_guard.require_context = on;
SELECT tenant_guard.assert_clean('warning');               -- fails the migration or the CI job on any finding
-- README.md, block 10
\c - :doc_superuser
CREATE ROLE regress_readme_migrator LOGIN;
GRANT USAGE ON SCHEMA app TO regress_readme_migrator;
GRANT SELECT, UPDATE ON app.tasks TO regress_readme_migrator;
SELECT tenant_guard.grant_maintenance('regress_readme_migrator', 'schema migrations');
-- README.md, block 11
\c - regress_readme_migrator
UPDATE app.tasks SET title = upper(title);                    -- no context: UPDATE 0
SELECT t AS tenant FROM tenant_guard.maintenance_tenants('app.tasks') t;   -- the tenants to work through
BEGIN;
SELECT tenant_guard.begin_maintenance('11111111-1111-4111-8111-111111111111', 'backfill: upper-case titles', 'admin');
UPDATE app.tasks SET title = upper(title);                    -- Acme's tasks, as Acme's admin
COMMIT;
-- README.md, block 12
\c - regress_readme_app_user
BEGIN;
SELECT tenant_guard.begin_maintenance('22222222-2222-4222-8222-222222222222', 'curious');
-- ERROR:  permission denied for a maintenance context
ROLLBACK;
-- README.md, block 14
\c - :doc_superuser
SELECT tenant_guard.enable_audit('app.tasks');
-- README.md, block 15
\c - regress_readme_app_user
BEGIN;
SELECT set_config('request.jwt.claims',
  '{"org_id": "11111111-1111-4111-8111-111111111111", "sub": "alice", "org_role": "admin"}', true) IS NOT NULL;
UPDATE app.tasks SET title = 'Launch v2';
COMMIT;
BEGIN;
SELECT set_config('request.jwt.claims',
  '{"org_id": "11111111-1111-4111-8111-111111111111", "sub": "alice", "org_role": "admin"}', true) IS NOT NULL;
SELECT action, actor, changed_columns FROM tenant_guard.audit_trail ORDER BY id DESC, item DESC LIMIT 20;
COMMIT;
-- README.md, block 16
\c - :doc_superuser
SELECT ok FROM tenant_guard.verify_audit();          -- true, or the first edited, deleted or inserted record
-- README.md, block 17
\c - :doc_superuser
SELECT tenant_guard.register_tenant('11111111-1111-4111-8111-111111111111', 'Acme');        -- the registry
SELECT d -> 'manifest' -> 'documents' AS documents, d -> 'manifest' -> 'complete' AS complete,
       d -> 'manifest' -> 'not_covered' AS not_covered
FROM tenant_guard.export_tenant('11111111-1111-4111-8111-111111111111') d WHERE d ? 'manifest';
-- clean-up
\c - :doc_superuser
SELECT * FROM tenant_guard.uninstall();
DROP EXTENSION tenant_guard;
DROP SCHEMA app CASCADE;
DROP OWNED BY regress_readme_app_user, regress_readme_migrator;
DROP ROLE regress_readme_app_user, regress_readme_migrator;
