-- tenant_guard.protect(), unprotect(), protect_schema(): what they change,
-- idempotence, bad input (a clear error, nothing changed), partitions and
-- inheritance children (existing and future), and the registry.
\set SHOW_CONTEXT never
CREATE ROLE regress_pp_owner;
CREATE ROLE regress_pp_other;
CREATE SCHEMA pp AUTHORIZATION regress_pp_owner;
SET ROLE regress_pp_owner;

CREATE TABLE pp.projects (id bigint PRIMARY KEY, org_id uuid, name text);
INSERT INTO pp.projects VALUES (1, '11111111-1111-4111-8111-111111111111', 'a1'),
                               (2, '22222222-2222-4222-8222-222222222222', 'b1');
CREATE POLICY own_policy ON pp.projects FOR SELECT USING (name <> 'hidden');
CREATE VIEW pp.policy_state AS
    SELECT c.relname, c.relrowsecurity AS rls, c.relforcerowsecurity AS force, p.polname, p.polpermissive AS permissive,
           p.polcmd AS cmd, pg_get_expr(p.polqual, p.polrelid) AS using_expr,
           pg_get_expr(p.polwithcheck, p.polrelid) AS check_expr
    FROM pg_class c LEFT JOIN pg_policy p ON p.polrelid = c.oid
    WHERE c.relnamespace = 'pp'::regnamespace AND c.relkind IN ('r', 'p');

SELECT tenant_guard.protect('pp.projects');
SELECT * FROM pp.policy_state WHERE relname = 'projects' ORDER BY polname;
SELECT a.attnotnull, pg_get_expr(d.adbin, d.adrelid) AS default_expr
FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = 'pp.projects'::regclass AND a.attname = 'org_id';
SELECT indexrelid::regclass AS index, pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = 'pp.projects'::regclass ORDER BY 1;
SELECT tbl, tenant_column, tenant_type, parent, created_index, added_not_null, prior_default, prior_rls, prior_force,
       protected_by = current_user AS by_me
FROM tenant_guard.protected_tables;

-- idempotent: the same state again, no second index
SELECT tenant_guard.protect('pp.projects');
SELECT count(*) AS policies FROM pg_policy WHERE polrelid = 'pp.projects'::regclass;
SELECT count(*) AS indexes FROM pg_index WHERE indrelid = 'pp.projects'::regclass;
-- converges after a hand-made change to a generated policy (made through the
-- superuser-only escape; sql/policy_ddl_guard.sql tests the guards themselves)
RESET ROLE;
BEGIN;
SET LOCAL tenant_guard.allow_unsafe_ddl = on;
SET LOCAL ROLE regress_pp_owner;
ALTER POLICY tg_base ON pp.projects USING (true);
DROP POLICY tg_wall ON pp.projects;
COMMIT;
SET ROLE regress_pp_owner;
SELECT tenant_guard.protect('pp.projects');
SELECT polname, pg_get_expr(polqual, polrelid) FROM pg_policy WHERE polrelid = 'pp.projects'::regclass ORDER BY 1;

-- bad input: one clear error each, and nothing changes
CREATE TABLE pp.no_tenant (id int);
SELECT tenant_guard.protect('pp.no_tenant');
CREATE TABLE pp.int_tenant (org_id integer);
SELECT tenant_guard.protect('pp.int_tenant');
CREATE VIEW pp.v AS SELECT * FROM pp.no_tenant;
SELECT tenant_guard.protect('pp.v');
CREATE MATERIALIZED VIEW pp.mv AS SELECT 1 AS org_id;
SELECT tenant_guard.protect('pp.mv');
CREATE TEMP TABLE tmp_t (org_id uuid);
SELECT tenant_guard.protect('tmp_t');
SELECT tenant_guard.protect('pg_catalog.pg_class', 'relname');
SELECT tenant_guard.protect(NULL);
CREATE SEQUENCE pp.seq;
SELECT tenant_guard.protect('pp.seq');
SELECT tenant_guard.protect('pp.projects', 'name');
-- existing NULL tenants: an error with the count; nothing was changed
CREATE TABLE pp.orphans (id int, org_id uuid);
INSERT INTO pp.orphans VALUES (1, NULL), (2, NULL), (3, '11111111-1111-4111-8111-111111111111');
SELECT tenant_guard.protect('pp.orphans');
SELECT relrowsecurity, (SELECT count(*) FROM pg_policy WHERE polrelid = 'pp.orphans'::regclass) AS policies,
       (SELECT count(*) FROM pg_index WHERE indrelid = 'pp.orphans'::regclass) AS indexes,
       (SELECT attnotnull FROM pg_attribute WHERE attrelid = 'pp.orphans'::regclass AND attname = 'org_id') AS notnull
FROM pg_class WHERE oid = 'pp.orphans'::regclass;
SELECT count(*) AS registered FROM tenant_guard.protected_tables WHERE tbl = 'pp.orphans'::regclass;
RESET ROLE;
-- a foreign table
CREATE FOREIGN DATA WRAPPER regress_pp_fdw;
CREATE SERVER regress_pp_srv FOREIGN DATA WRAPPER regress_pp_fdw;
CREATE FOREIGN TABLE pp.remote (org_id uuid) SERVER regress_pp_srv;
SELECT tenant_guard.protect('pp.remote');
DROP FOREIGN TABLE pp.remote;
DROP SERVER regress_pp_srv;
DROP FOREIGN DATA WRAPPER regress_pp_fdw;
-- a table the caller does not own
GRANT USAGE ON SCHEMA pp TO regress_pp_other;
SET ROLE regress_pp_other;
SELECT tenant_guard.protect('pp.orphans');
SELECT tenant_guard.unprotect('pp.projects');
-- nor can it forge or delete registry rows of tables it does not own
DELETE FROM tenant_guard.protected_tables;
INSERT INTO tenant_guard.protected_tables (tbl, tenant_column, tenant_type) VALUES ('pp.orphans', 'org_id', 'uuid');
SELECT count(*) AS still_registered FROM tenant_guard.protected_tables;
RESET ROLE;

-- text and bigint tenant columns: the context is cast, never the column
SET ROLE regress_pp_owner;
CREATE TABLE pp.t_text (id int, tenant text);
CREATE TABLE pp.t_big (id int, tenant_id bigint);
SELECT tenant_guard.protect('pp.t_text', 'tenant');
SELECT tenant_guard.protect('pp.t_big', 'tenant_id');
SELECT relname, polname, using_expr FROM pp.policy_state WHERE relname IN ('t_text', 't_big') ORDER BY 1, 2;

-- partitions: existing ones, a partition queried directly, future ones, attached ones
CREATE TABLE pp.events (org_id uuid NOT NULL, at date NOT NULL, what text) PARTITION BY RANGE (at);
CREATE TABLE pp.events_2025 PARTITION OF pp.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
SELECT tenant_guard.protect('pp.events');
CREATE TABLE pp.events_2026 PARTITION OF pp.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE pp.events_2027 (org_id uuid NOT NULL, at date NOT NULL, what text);
ALTER TABLE pp.events ATTACH PARTITION pp.events_2027 FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');
SELECT relname, rls, force, polname, permissive FROM pp.policy_state WHERE relname LIKE 'events%' ORDER BY 1, 4;
SELECT tbl, parent FROM tenant_guard.protected_tables WHERE parent IS NOT NULL ORDER BY 1;
-- a partition can only be unprotected through its parent
SELECT tenant_guard.unprotect('pp.events_2026');
SELECT tenant_guard.protect('pp.events_2026');
-- inheritance children
CREATE TABLE pp.docs (org_id uuid NOT NULL, body text);
CREATE TABLE pp.docs_archived (archived_at date) INHERITS (pp.docs);
SELECT tenant_guard.protect('pp.docs');
CREATE TABLE pp.docs_draft () INHERITS (pp.docs);
SELECT relname, rls, force, polname FROM pp.policy_state WHERE relname LIKE 'docs%' ORDER BY 1, 4;

-- protect_schema: every table with the column; the others are named in a NOTICE
RESET ROLE;
CREATE SCHEMA pp2 AUTHORIZATION regress_pp_owner;
SET ROLE regress_pp_owner;
CREATE TABLE pp2.a (org_id uuid);
CREATE TABLE pp2.b (org_id uuid);
CREATE TABLE pp2.lookup (code text);
SELECT tenant_guard.protect_schema('pp2');
SELECT tenant_guard.protect_schema('no_such_schema');

-- unprotect removes exactly what protect added: other policies, the prior
-- default and NOT NULL state, and pre-existing indexes stay
SELECT tenant_guard.unprotect('pp.projects');
SELECT * FROM pp.policy_state WHERE relname = 'projects' ORDER BY polname;
SELECT a.attnotnull, pg_get_expr(d.adbin, d.adrelid) AS default_expr
FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = 'pp.projects'::regclass AND a.attname = 'org_id';
SELECT count(*) AS indexes FROM pg_index WHERE indrelid = 'pp.projects'::regclass;
SELECT tenant_guard.unprotect('pp.projects');
-- a table that already had RLS, NOT NULL and a default keeps them
CREATE TABLE pp.pre (org_id uuid NOT NULL DEFAULT '11111111-1111-4111-8111-111111111111', v int);
CREATE INDEX ON pp.pre (org_id);
ALTER TABLE pp.pre ENABLE ROW LEVEL SECURITY;
SELECT tenant_guard.protect('pp.pre');
SELECT tenant_guard.unprotect('pp.pre');
SELECT c.relrowsecurity, c.relforcerowsecurity, a.attnotnull, pg_get_expr(d.adbin, d.adrelid) AS default_expr,
       (SELECT count(*) FROM pg_index WHERE indrelid = c.oid) AS indexes
FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'org_id'
LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum WHERE c.oid = 'pp.pre'::regclass;
-- partitions are unprotected with their parent
SELECT tenant_guard.unprotect('pp.events');
SELECT count(*) AS generated_policies_left FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
WHERE c.relname LIKE 'events%' AND p.polname LIKE 'tg\_%';
SELECT count(*) AS event_registry_rows FROM tenant_guard.protected_tables WHERE tbl::text LIKE 'pp.events%';

-- dropping a protected table removes its registry row
DROP TABLE pp.docs CASCADE;
DROP TABLE tmp_t;
SELECT tbl FROM tenant_guard.protected_tables ORDER BY 1;
RESET ROLE;
DROP SCHEMA pp CASCADE;
DROP SCHEMA pp2 CASCADE;
SELECT count(*) AS registry_rows_left FROM tenant_guard.protected_tables;
DROP ROLE regress_pp_owner;
DROP ROLE regress_pp_other;
