-- tenant_guard.verify(): every difference between what protect() generated
-- and the catalog; empty when all is as generated.
\set SHOW_CONTEXT never
CREATE ROLE regress_pv_owner;
CREATE ROLE regress_pv_other;
CREATE ROLE regress_pv_someone;
CREATE SCHEMA pv AUTHORIZATION regress_pv_owner;
SET ROLE regress_pv_owner;
CREATE TABLE pv.a (id int, org_id uuid NOT NULL);
CREATE TABLE pv.b (id int, tenant bigint NOT NULL);
CREATE TABLE pv.p (org_id uuid NOT NULL, k int) PARTITION BY LIST (k);
CREATE TABLE pv.p1 PARTITION OF pv.p FOR VALUES IN (1);
SELECT tenant_guard.protect('pv.a');
SELECT tenant_guard.protect('pv.b', 'tenant');
SELECT tenant_guard.protect('pv.p');
SELECT * FROM tenant_guard.verify();

-- hand-made drift, one kind at a time (through the superuser-only escape;
-- the guards refuse these otherwise, see sql/policy_ddl_guard.sql)
RESET ROLE;
BEGIN;
SET LOCAL tenant_guard.allow_unsafe_ddl = on;
SET LOCAL client_min_messages = error;
ALTER POLICY tg_wall ON pv.a USING (true);
ALTER TABLE pv.a NO FORCE ROW LEVEL SECURITY;
ALTER TABLE pv.b ALTER COLUMN tenant DROP DEFAULT;
DROP POLICY tg_base ON pv.b;
ALTER TABLE pv.p1 DISABLE ROW LEVEL SECURITY;
ALTER POLICY tg_base ON pv.p TO regress_pv_someone;
COMMIT;
SET ROLE regress_pv_owner;
SELECT * FROM tenant_guard.verify() ORDER BY tbl::text, item;
RESET ROLE;
ALTER TABLE pv.a ALTER COLUMN org_id DROP NOT NULL;
-- (retyping the tenant column is refused by PostgreSQL itself while policies use it)
ALTER TABLE pv.a ALTER COLUMN org_id TYPE text;
SET ROLE regress_pv_owner;
SELECT * FROM tenant_guard.verify() WHERE tbl = 'pv.a'::regclass ORDER BY 2;

-- protect() again converges, partitions included, and verify() is empty again
SELECT tenant_guard.protect('pv.a');
SELECT tenant_guard.protect('pv.b', 'tenant');
SELECT tenant_guard.protect('pv.p');
SELECT * FROM tenant_guard.verify();
-- everyone may run it; it reports on every protected table
SET ROLE regress_pv_other;
SELECT count(*) AS differences_seen_by_other FROM tenant_guard.verify();
RESET ROLE;
DROP SCHEMA pv CASCADE;
DROP ROLE regress_pv_owner;
DROP ROLE regress_pv_other;
DROP ROLE regress_pv_someone;
