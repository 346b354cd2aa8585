-- The migration guardrail of guard_schema() against two ways around it:
--  - an exempted table (no tenant data, no tenant column) that later gains the
--    tenant column (ADD COLUMN, or a column renamed to it): the exemption
--    lapses, and the COMMIT fails unless the same transaction protects or
--    exempts the table again;
--  - ALTER TABLE ... SET SCHEMA of an unprotected tenant table into a guarded
--    schema: the COMMIT fails unless the table is protected or exempted.
-- Every refused migration leaves nothing behind, and the application role
-- never sees another tenant's rows through such a table. lint() reports an
-- exempted table with a tenant column (TG060).
\set SHOW_CONTEXT never
\getenv tokens_file TG_TOKENS_SQL
\i :tokens_file
CREATE ROLE regress_gm_owner;
CREATE ROLE regress_gm_app;
CREATE SCHEMA gm AUTHORIZATION regress_gm_owner;
CREATE SCHEMA gm_staging AUTHORIZATION regress_gm_owner;
GRANT USAGE ON SCHEMA gm, gm_staging TO regress_gm_app;
SET tenant_guard.context_source = 'setting';
SET ROLE regress_gm_owner;
SELECT tenant_guard.guard_schema('gm');
CREATE TABLE gm.lookup (code text PRIMARY KEY, label text);
SELECT tenant_guard.exempt('gm.lookup', 'shared reference data');
CREATE TABLE gm.kinds (code text PRIMARY KEY, legacy text);
SELECT tenant_guard.exempt('gm.kinds', 'shared reference data');
GRANT SELECT, INSERT ON gm.lookup, gm.kinds TO regress_gm_app;

-- 1. the exempted table gains the tenant column: refused at COMMIT
BEGIN;
ALTER TABLE gm.lookup ADD COLUMN org_id uuid;
INSERT INTO gm.lookup VALUES ('a', 'tenant A data', :'org_a'), ('b', 'tenant B data', :'org_b');
COMMIT;
SELECT count(*) AS lookup_columns FROM pg_attribute WHERE attrelid = 'gm.lookup'::regclass AND attnum > 0 AND NOT attisdropped;
-- the application role, in tenant A's context, sees no row of tenant B there
RESET ROLE;
SET ROLE regress_gm_app;
SET tenant_guard.org_id = :'org_a';
SELECT count(*) AS rows_of_other_tenants FROM gm.lookup l
WHERE to_jsonb(l) ? 'org_id' AND to_jsonb(l) ->> 'org_id' <> :'org_a';
RESET tenant_guard.org_id;
RESET ROLE;
SET ROLE regress_gm_owner;
SELECT tbl, reason FROM tenant_guard.exemptions ORDER BY 1::text;
-- the same in autocommit
ALTER TABLE gm.lookup ADD COLUMN org_id uuid;
-- a column renamed to the tenant column
ALTER TABLE gm.kinds RENAME COLUMN legacy TO org_id;
SELECT attname FROM pg_attribute WHERE attrelid = 'gm.kinds'::regclass AND attnum > 0 ORDER BY attnum;
-- exempted earlier in the same transaction, then the column: refused too
BEGIN;
SELECT tenant_guard.exempt('gm.lookup', 'shared reference data, re-confirmed');
ALTER TABLE gm.lookup ADD COLUMN org_id uuid;
COMMIT;
-- the exemption lapses at once (a NOTICE says so); the migration that means
-- it exempts again after adding the column, or protects the table
BEGIN;
ALTER TABLE gm.lookup ADD COLUMN org_id uuid;
SELECT count(*) AS exemptions_inside FROM tenant_guard.exemptions WHERE tbl = 'gm.lookup'::regclass;
SELECT tenant_guard.protect('gm.lookup');
COMMIT;
BEGIN;
ALTER TABLE gm.kinds RENAME COLUMN legacy TO org_id;
SELECT tenant_guard.exempt('gm.kinds', 'per-tenant labels of shared kinds, checked: no tenant rows');
COMMIT;
SELECT tbl, reason FROM tenant_guard.exemptions ORDER BY 1::text;
SELECT tbl FROM tenant_guard.protected_tables ORDER BY 1::text;
-- other changes to an exempted table do not touch its exemption
BEGIN;
CREATE TABLE gm.colors (code text, org_id uuid);
SELECT tenant_guard.exempt('gm.colors', 'shared palette');
COMMIT;
ALTER TABLE gm.colors ADD COLUMN hex text;
ALTER TABLE gm.colors ALTER COLUMN org_id SET DEFAULT NULL;
SELECT tbl FROM tenant_guard.exemptions ORDER BY 1::text;

-- 2. an unprotected tenant table moved into the guarded schema
CREATE TABLE gm_staging.invoices (id int, org_id uuid, total numeric);
CREATE TABLE gm_staging.rates (code text, rate numeric);
GRANT SELECT ON gm_staging.invoices TO regress_gm_app;
RESET ROLE;
INSERT INTO gm_staging.invoices VALUES (1, :'org_a', 10), (2, :'org_b', 20);
SET ROLE regress_gm_owner;
ALTER TABLE gm_staging.invoices SET SCHEMA gm;
BEGIN;
ALTER TABLE gm_staging.invoices SET SCHEMA gm;
COMMIT;
SELECT to_regclass('gm.invoices') IS NULL AS not_moved, to_regclass('gm_staging.invoices') IS NOT NULL AS still_staged;
-- a table without the tenant column moves freely
ALTER TABLE gm_staging.rates SET SCHEMA gm;
-- moved and protected in the same migration: committed
BEGIN;
ALTER TABLE gm_staging.invoices SET SCHEMA gm;
SELECT tenant_guard.protect('gm.invoices');
COMMIT;
RESET ROLE;
SET ROLE regress_gm_app;
SET tenant_guard.org_id = :'org_a';
SELECT id, org_id = :'org_a' AS own FROM gm.invoices ORDER BY id;
RESET tenant_guard.org_id;
RESET ROLE;
-- superusers are held to it as well
CREATE TABLE gm_staging.payments (org_id uuid, amount numeric);
ALTER TABLE gm_staging.payments SET SCHEMA gm;
SELECT to_regclass('gm.payments') IS NULL AS not_moved;

-- 3. lint: an exempted table with the tenant column is reported (TG060), one
-- without it is not
SELECT severity, code, object, message FROM tenant_guard.lint() WHERE code = 'TG060' ORDER BY object;
SELECT code, severity, area, summary FROM tenant_guard.lint_rules() WHERE code = 'TG060';

DROP SCHEMA gm CASCADE;
DROP SCHEMA gm_staging CASCADE;
DROP ROLE regress_gm_owner, regress_gm_app;
