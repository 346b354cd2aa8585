-- tenant_guard.guard_schema(): in a guarded schema, a transaction that
-- creates a table with the tenant column, or adds the tenant column to one,
-- must leave it protected or exempted by COMMIT; otherwise COMMIT fails, names
-- every offending table, and nothing of the migration is committed. It fires
-- for every role, superusers included.
\set SHOW_CONTEXT never
CREATE ROLE regress_pg_owner;
CREATE ROLE regress_pg_other;
CREATE SCHEMA guarded_app AUTHORIZATION regress_pg_owner;
SET ROLE regress_pg_owner;
SELECT tenant_guard.guard_schema('guarded_app');
SELECT schema_name, tenant_column, guarded_by = current_user AS by_me FROM tenant_guard.guarded_schemas;

-- a forgetful migration: COMMIT fails, and nothing of it remains
BEGIN;
CREATE TABLE guarded_app.projects (id int, org_id uuid);
CREATE TABLE guarded_app.tasks (id int, org_id uuid);
CREATE TABLE guarded_app.settings (k text, v text);
SELECT tenant_guard.protect('guarded_app.tasks');
CREATE TABLE guarded_app.invoices (id int, org_id uuid);
COMMIT;
SELECT count(*) AS tables_left FROM pg_class WHERE relnamespace = 'guarded_app'::regnamespace AND relkind = 'r';
SELECT count(*) AS registry_rows FROM tenant_guard.protected_tables;

-- the same migration done right: protect, or exempt with a reason
BEGIN;
CREATE TABLE guarded_app.projects (id int, org_id uuid);
CREATE TABLE guarded_app.countries (code text, org_id uuid);
CREATE TABLE guarded_app.settings (k text, v text);
SELECT tenant_guard.protect('guarded_app.projects');
SELECT tenant_guard.exempt('guarded_app.countries', 'shared reference data, readable by every tenant');
COMMIT;
SELECT tbl, reason FROM tenant_guard.exemptions;

-- a forgetful migration fails also with a search_path that puts a schema of
-- its own first, whose operator would make every table look protected
RESET ROLE;
CREATE SCHEMA guard_evil AUTHORIZATION regress_pg_owner;
SET ROLE regress_pg_owner;
CREATE FUNCTION guard_evil.always(regclass, oid) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE OPERATOR guard_evil.= (LEFTARG = regclass, RIGHTARG = oid, FUNCTION = guard_evil.always);
BEGIN;
SET LOCAL search_path = guard_evil, pg_catalog, public;
CREATE TABLE guarded_app.invoices (id int, org_id uuid);
COMMIT;
SELECT to_regclass('guarded_app.invoices') IS NULL AS not_committed;
DROP SCHEMA guard_evil CASCADE;

-- autocommit statements are checked too
CREATE TABLE guarded_app.quick (org_id uuid);
CREATE TABLE guarded_app.quick_as AS SELECT '11111111-1111-4111-8111-111111111111'::uuid AS org_id;
SELECT to_regclass('guarded_app.quick') IS NULL AS quick_gone, to_regclass('guarded_app.quick_as') IS NULL AS quick_as_gone;

-- adding the tenant column to an existing table
CREATE TABLE guarded_app.notes (id int);
ALTER TABLE guarded_app.notes ADD COLUMN org_id uuid;
SELECT count(*) AS notes_columns FROM pg_attribute WHERE attrelid = 'guarded_app.notes'::regclass AND attnum > 0;
BEGIN;
ALTER TABLE guarded_app.notes ADD COLUMN org_id uuid;
SELECT tenant_guard.protect('guarded_app.notes');
COMMIT;

-- other changes to protected or exempted tables are fine; so are new
-- partitions of a protected table (protected automatically)
ALTER TABLE guarded_app.projects ADD COLUMN name text;
ALTER TABLE guarded_app.countries ADD COLUMN name text;
BEGIN;
CREATE TABLE guarded_app.events (org_id uuid NOT NULL, k int) PARTITION BY LIST (k);
SELECT tenant_guard.protect('guarded_app.events');
CREATE TABLE guarded_app.events_1 PARTITION OF guarded_app.events FOR VALUES IN (1);
COMMIT;
CREATE TABLE guarded_app.events_2 PARTITION OF guarded_app.events FOR VALUES IN (2);

-- a table created in a rolled-back savepoint does not count
BEGIN;
SAVEPOINT s;
CREATE TABLE guarded_app.scratch (org_id uuid);
ROLLBACK TO SAVEPOINT s;
COMMIT;

-- superusers are guarded too (migrations often run as one)
RESET ROLE;
CREATE TABLE guarded_app.by_superuser (org_id uuid);
SET ROLE regress_pg_owner;

-- bad input
SELECT tenant_guard.guard_schema('no_such_schema');
SELECT tenant_guard.guard_schema('pg_catalog');
SELECT tenant_guard.exempt('guarded_app.settings', '   ');
SELECT tenant_guard.exempt('guarded_app.projects', 'it is protected');
RESET ROLE;
GRANT USAGE ON SCHEMA guarded_app TO regress_pg_other;
SET ROLE regress_pg_other;
SELECT tenant_guard.guard_schema('guarded_app');
SELECT tenant_guard.unguard_schema('guarded_app');
SELECT tenant_guard.exempt('guarded_app.settings', 'not mine');
RESET ROLE;

-- unguarded, tables are free again
SET ROLE regress_pg_owner;
SELECT tenant_guard.unguard_schema('guarded_app');
SELECT tenant_guard.unguard_schema('guarded_app');
CREATE TABLE guarded_app.free (org_id uuid);
SELECT to_regclass('guarded_app.free') IS NOT NULL AS free_exists;
RESET ROLE;
DROP SCHEMA guarded_app CASCADE;
SELECT count(*) AS exemptions_left FROM tenant_guard.exemptions;
DROP ROLE regress_pg_owner;
DROP ROLE regress_pg_other;
