-- Statement forms that broke one of tenant_guard's hooks, event triggers or
-- transaction callbacks when PostgreSQL's own regression suite ran against
-- them (test/pgsuite/run_pg_regress_suite.sh), one section each.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE ROLE regress_hsf_owner LOGIN;
CREATE ROLE regress_hsf_app LOGIN;
SELECT tenant_guard.register_app_role('regress_hsf_app');
CREATE SCHEMA hsf AUTHORIZATION regress_hsf_owner;
GRANT USAGE ON SCHEMA hsf TO regress_hsf_app;
SET ROLE regress_hsf_owner;
CREATE TABLE hsf.audited (id int, org_id uuid NOT NULL, PRIMARY KEY (org_id, id)) PARTITION BY RANGE (id);
CREATE TABLE hsf.audited_1 PARTITION OF hsf.audited FOR VALUES FROM (0) TO (10);
SELECT tenant_guard.protect('hsf.audited');
RESET ROLE;
SELECT tenant_guard.enable_audit('hsf.audited');
SET ROLE regress_hsf_owner;
CREATE TABLE hsf.plain (id int);
GRANT ALL ON hsf.audited, hsf.plain TO regress_hsf_app;
ALTER TABLE hsf.plain ENABLE ROW LEVEL SECURITY;
CREATE POLICY all_rows ON hsf.plain USING (true);
RESET ROLE;
SELECT tenant_guard.guard_schema('hsf');

-- row_security = off in the session of a role that is not a superuser
-- (pg_dump's output sets it; PostgreSQL's rowsecurity test creates a
-- partitioned table with it). tenant_guard's registries have row-level
-- security, and PostgreSQL refuses a query that a policy would affect under
-- row_security = off: the DDL event triggers refused every CREATE TABLE and
-- ALTER TABLE, the COMMIT check of a guarded schema every COMMIT after DDL
-- there, and the runtime guards every TRUNCATE of a table with row-level
-- security and every EXPLAIN ANALYZE, with "query would be affected by
-- row-level security policy for table ...". They pin row_security = on.
SET ROLE regress_hsf_owner;
SET row_security = off;
-- what a plain dump of the schema restores
CREATE TABLE hsf.restored (id int, note text);
ALTER TABLE hsf.restored ADD COLUMN extra int;
CREATE TABLE hsf.parted (id int) PARTITION BY RANGE (id);
CREATE TABLE hsf.parted_1 PARTITION OF hsf.parted FOR VALUES FROM (0) TO (10);
CREATE TABLE hsf.parted_2 (id int);
ALTER TABLE hsf.parted ATTACH PARTITION hsf.parted_2 FOR VALUES FROM (10) TO (20);
CREATE TABLE hsf.copied AS SELECT 1 AS id;
-- a new partition of an audited table still gets the audit's statement triggers
CREATE TABLE hsf.audited_2 PARTITION OF hsf.audited FOR VALUES FROM (10) TO (20);
SELECT tgname FROM pg_trigger WHERE tgrelid = 'hsf.audited_2'::regclass ORDER BY 1;
-- the COMMIT check of the guarded schema: a table without the tenant column
-- commits, an unprotected tenant table does not
BEGIN;
CREATE TABLE hsf.no_tenant (id int);
COMMIT;
BEGIN;
CREATE TABLE hsf.tenant (id int, org_id uuid NOT NULL);
COMMIT;
SELECT to_regclass('hsf.no_tenant') IS NOT NULL AS no_tenant_committed, to_regclass('hsf.tenant') IS NULL AS tenant_refused;
-- the runtime guards: a role that is not an application role is not affected
TRUNCATE hsf.plain;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT 1;
RESET row_security;
RESET ROLE;
-- an application role is refused by the guards, not by the registry's policy
SET ROLE regress_hsf_app;
SET row_security = off;
TRUNCATE hsf.plain;
TRUNCATE hsf.audited;
EXPLAIN ANALYZE SELECT 1;
EXPLAIN ANALYZE EXECUTE hsf_no_such_statement;
RESET row_security;
RESET ROLE;
SELECT * FROM tenant_guard.verify();

SELECT tenant_guard.unguard_schema('hsf');
DROP SCHEMA hsf CASCADE;
SELECT tenant_guard.unregister_app_role('regress_hsf_app');
DROP ROLE regress_hsf_owner, regress_hsf_app;
