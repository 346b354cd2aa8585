-- Guards on protected tables: DDL that would weaken what protect() set up is
-- refused for every role, the owner and superusers included. The knowing
-- escape is tenant_guard.allow_unsafe_ddl: superuser-only, honoured only in
-- the transaction that turned it on, and recorded.
\set SHOW_CONTEXT never
CREATE ROLE regress_dg_owner;
CREATE ROLE regress_dg_bypass BYPASSRLS;
CREATE SCHEMA dg AUTHORIZATION regress_dg_owner;
SET ROLE regress_dg_owner;
CREATE TABLE dg.t (id int, org_id uuid NOT NULL, note text);
CREATE TABLE dg.p (org_id uuid NOT NULL, k int) PARTITION BY LIST (k);
CREATE TABLE dg.p1 PARTITION OF dg.p FOR VALUES IN (1);
SELECT tenant_guard.protect('dg.t');
SELECT tenant_guard.protect('dg.p');

-- each weakening change is refused, for the owner ...
ALTER TABLE dg.t DISABLE ROW LEVEL SECURITY;
ALTER TABLE dg.t NO FORCE ROW LEVEL SECURITY;
ALTER TABLE dg.p1 NO FORCE ROW LEVEL SECURITY;
DROP POLICY tg_wall ON dg.t;
DROP POLICY tg_base ON dg.p1;
ALTER POLICY tg_wall ON dg.t USING (true);
ALTER POLICY tg_base ON dg.t TO regress_dg_bypass;
ALTER POLICY tg_wall ON dg.t RENAME TO wall;
ALTER TABLE dg.t RENAME COLUMN org_id TO tenant;
ALTER TABLE dg.t DROP COLUMN org_id CASCADE;
-- ... and for a superuser
RESET ROLE;
ALTER TABLE dg.t DISABLE ROW LEVEL SECURITY;
ALTER TABLE dg.t OWNER TO regress_dg_bypass;
ALTER TABLE dg.t OWNER TO CURRENT_USER;
-- nothing changed
SELECT * FROM tenant_guard.verify();

-- harmless changes pass: other columns, other policies, a generated policy
-- altered to what it already is, a non-bypassing owner
SET ROLE regress_dg_owner;
ALTER TABLE dg.t ADD COLUMN extra int;
ALTER TABLE dg.t RENAME COLUMN note TO remark;
CREATE POLICY own_extra ON dg.t FOR SELECT USING (extra IS NULL);
DROP POLICY own_extra ON dg.t;
ALTER TABLE dg.t ENABLE ROW LEVEL SECURITY;
RESET ROLE;

-- the escape: a session-level SET is not enough ...
SET tenant_guard.allow_unsafe_ddl = on;
ALTER TABLE dg.t NO FORCE ROW LEVEL SECURITY;
RESET tenant_guard.allow_unsafe_ddl;
-- ... SET LOCAL in the migration's transaction is, and it is recorded
BEGIN;
SET LOCAL tenant_guard.allow_unsafe_ddl = on;
ALTER TABLE dg.t NO FORCE ROW LEVEL SECURITY;
DROP POLICY tg_base ON dg.t;
COMMIT;
SELECT role_name, tbl, what FROM tenant_guard.unsafe_ddl_log WHERE tbl LIKE 'dg.%' ORDER BY id;
-- the next transaction is guarded again
ALTER TABLE dg.t DISABLE ROW LEVEL SECURITY;
-- protect() repairs what the escape let through
SET ROLE regress_dg_owner;
SELECT tenant_guard.protect('dg.t');
SELECT * FROM tenant_guard.verify();
-- an application role can neither use the escape nor write the log
SET tenant_guard.allow_unsafe_ddl = on;
INSERT INTO tenant_guard.unsafe_ddl_log (tbl, what) VALUES ('x', 'forged');
SELECT tenant_guard._refuse_unsafe_ddl('dg.t', 'call the guard directly');

-- the sanctioned ways still work: unprotect() then change, or drop the table
SELECT tenant_guard.unprotect('dg.t');
ALTER TABLE dg.t DISABLE ROW LEVEL SECURITY;
DROP TABLE dg.p;
SELECT count(*) AS registered FROM tenant_guard.protected_tables;
RESET ROLE;
DROP SCHEMA dg CASCADE;
DROP ROLE regress_dg_owner;
DROP ROLE regress_dg_bypass;
