-- tenant_guard.lint(): every rule fires on a fixture made to trigger it, and
-- the fix its hint names clears it; a schema built only with tenant_guard's
-- generators (and hardened) has no error or warning; assert_clean().
\set SHOW_CONTEXT never
SET client_min_messages = warning;

CREATE ROLE regress_lint_app LOGIN;
CREATE ROLE regress_lint_anon LOGIN;
CREATE ROLE regress_lint_owner NOLOGIN;
CREATE ROLE regress_lint_viewer NOLOGIN;
-- findings of one rule: severity and object
CREATE FUNCTION pg_temp.f(c text) RETURNS TABLE (severity text, object text)
LANGUAGE sql AS $$
    SELECT l.severity, regexp_replace(l.object, '^database .*', 'database <db>') FROM tenant_guard.lint() l
    WHERE l.code = c ORDER BY 2, 1
$$;

-- the rule catalog: stable codes, each with a severity
SELECT count(*) AS rules, count(DISTINCT code) AS codes, min(code), max(code),
       bool_and(severity IN ('error', 'warning', 'info')) AS severities_ok
FROM tenant_guard.lint_rules();

-- with no application role registered, every non-superuser login role counts
SELECT * FROM pg_temp.f('TG041');
SELECT role::text, anonymous, registered FROM tenant_guard.app_roles_in_effect()
WHERE role::text LIKE 'regress_lint%';

---------------------------------------------------------------------------
-- 1. A schema built with tenant_guard's generators only: no error, no warning
---------------------------------------------------------------------------
SET tenant_guard.context_source = 'signed';
SET tenant_guard.require_context = on;
CREATE SCHEMA app AUTHORIZATION regress_lint_owner;
SET ROLE regress_lint_owner;
CREATE TABLE app.projects (org_id uuid NOT NULL, id uuid NOT NULL DEFAULT gen_random_uuid(), name text,
                           PRIMARY KEY (org_id, id));
CREATE TABLE app.tasks (org_id uuid NOT NULL, id bigint GENERATED ALWAYS AS IDENTITY, project_id uuid NOT NULL,
                        title text, PRIMARY KEY (org_id, id),
                        FOREIGN KEY (org_id, project_id) REFERENCES app.projects (org_id, id));
CREATE TABLE app.events (org_id uuid NOT NULL, at date NOT NULL, what text) PARTITION BY RANGE (at);
SELECT tenant_guard.protect('app.projects'), tenant_guard.protect('app.tasks'), tenant_guard.protect('app.events');
CREATE TABLE app.events_2026 PARTITION OF app.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
SELECT tenant_guard.allow('app.tasks', 'member', '{SELECT,INSERT}');
SELECT tenant_guard.allow('app.tasks', 'admin', '{ALL}');
CREATE VIEW app.project_names WITH (security_invoker = true) AS SELECT org_id, name FROM app.projects;
GRANT USAGE ON SCHEMA app TO regress_lint_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA app TO regress_lint_app;
RESET ROLE;
SELECT tenant_guard.guard_schema('app');
SELECT tenant_guard.register_app_role('regress_lint_app');
SELECT tenant_guard.register_app_role('regress_lint_anon', anonymous => true);
SELECT * FROM pg_temp.f('TG041');
SELECT role::text, anonymous, registered FROM tenant_guard.app_roles_in_effect() ORDER BY 1;
-- before hardening: what a default role may do that lint() dislikes
SELECT DISTINCT severity, code, object FROM tenant_guard.lint() WHERE severity <> 'info' ORDER BY 2, 3;
SELECT regexp_replace(s, 'DATABASE \S+', 'DATABASE <db>') AS harden_app_role
FROM tenant_guard.harden_app_role('regress_lint_app') s;
SELECT * FROM tenant_guard.harden_app_role('regress_lint_anon');
-- after: no error and no warning (TG039 depends on the server's minor version)
SELECT severity, code, object, message FROM tenant_guard.lint() WHERE severity <> 'info' AND code <> 'TG039';
SELECT severity, code, object FROM tenant_guard.lint() WHERE severity = 'info';
SELECT tenant_guard.assert_clean('warning');
-- hardening twice changes nothing
SELECT count(*) AS statements FROM tenant_guard.harden_app_role('regress_lint_app');

---------------------------------------------------------------------------
-- 2. Tenant tables (TG001 .. TG005, TG013, TG014)
---------------------------------------------------------------------------
CREATE SCHEMA lab AUTHORIZATION regress_lint_owner;
GRANT USAGE ON SCHEMA lab TO regress_lint_app, regress_lint_viewer;
SET ROLE regress_lint_owner;
CREATE TABLE lab.a (org_id uuid NOT NULL, id int NOT NULL, name text, PRIMARY KEY (org_id, id));
SELECT tenant_guard.protect('lab.a');
-- a table nobody protected, with a tenant column: a warning each
CREATE TABLE lab.h (org_id uuid, note text);
RESET ROLE;
SELECT * FROM pg_temp.f('TG001');
SELECT * FROM pg_temp.f('TG004');
SELECT * FROM pg_temp.f('TG005');
SELECT tenant_guard.protect('lab.h');
SELECT * FROM pg_temp.f('TG001');
SELECT * FROM pg_temp.f('TG004');
SELECT * FROM pg_temp.f('TG005');

-- registered tables are errors: RLS off, not forced, no wall (weakened on purpose)
BEGIN;
SET LOCAL tenant_guard.allow_unsafe_ddl = on;
ALTER TABLE lab.a DISABLE ROW LEVEL SECURITY;
COMMIT;
SELECT * FROM pg_temp.f('TG001');
SELECT tenant_guard.protect('lab.a');
SELECT * FROM pg_temp.f('TG001');
BEGIN;
SET LOCAL tenant_guard.allow_unsafe_ddl = on;
ALTER TABLE lab.a NO FORCE ROW LEVEL SECURITY;
COMMIT;
SELECT * FROM pg_temp.f('TG002');
SELECT tenant_guard.protect('lab.a');
SELECT * FROM pg_temp.f('TG002');
BEGIN;
SET LOCAL tenant_guard.allow_unsafe_ddl = on;
DROP POLICY tg_wall ON lab.a;
ALTER POLICY tg_base ON lab.a USING (true);
COMMIT;
SELECT * FROM pg_temp.f('TG003');
SELECT severity, code, object FROM tenant_guard.lint() WHERE code IN ('TG008', 'TG013') ORDER BY 2, 3;
SELECT tenant_guard.protect('lab.a');
SELECT * FROM pg_temp.f('TG003');
SELECT * FROM pg_temp.f('TG013');
-- the index protect() created, dropped
SELECT created_index FROM tenant_guard.protected_tables WHERE tbl = 'lab.h'::regclass;
DROP INDEX lab.h_org_id_idx;
SELECT * FROM pg_temp.f('TG005');
CREATE INDEX ON lab.h (org_id, note);
SELECT * FROM pg_temp.f('TG005');

-- a partition that lost its registration and its row-level security
SET ROLE regress_lint_owner;
CREATE TABLE lab.p (org_id uuid NOT NULL, k int NOT NULL) PARTITION BY LIST (k);
SELECT tenant_guard.protect('lab.p');
CREATE TABLE lab.p1 PARTITION OF lab.p FOR VALUES IN (1);
RESET ROLE;
BEGIN;
SET LOCAL tenant_guard.allow_unsafe_ddl = on;
ALTER TABLE lab.p1 DISABLE ROW LEVEL SECURITY;
COMMIT;
DELETE FROM tenant_guard.protected_tables WHERE tbl = 'lab.p1'::regclass;
SELECT * FROM pg_temp.f('TG014');
SELECT tenant_guard.protect('lab.p');
SELECT * FROM pg_temp.f('TG014');
-- a partition protected on its own, under a parent nobody protected
SET ROLE regress_lint_owner;
CREATE TABLE lab.q (org_id uuid NOT NULL, k int NOT NULL) PARTITION BY LIST (k);
CREATE TABLE lab.q1 PARTITION OF lab.q FOR VALUES IN (1);
SELECT tenant_guard.protect('lab.q1');
RESET ROLE;
SELECT * FROM pg_temp.f('TG044');
SELECT tenant_guard.protect('lab.q');
SELECT * FROM pg_temp.f('TG044');

---------------------------------------------------------------------------
-- 3. Policies (TG003, TG006 .. TG012) on hand-written row-level security in
--    a guarded schema (errors) and outside one (warnings)
---------------------------------------------------------------------------
CREATE SCHEMA gs AUTHORIZATION regress_lint_owner;
SET ROLE regress_lint_owner;
CREATE TABLE gs.hw (org_id uuid NOT NULL, v int);
CREATE INDEX ON gs.hw (org_id);
ALTER TABLE gs.hw ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY only_mine ON gs.hw FOR ALL USING (org_id = (SELECT tenant_guard.current_user_org_id()));
RESET ROLE;
SELECT tenant_guard.guard_schema('gs');
-- permissive only: no wall
SELECT * FROM pg_temp.f('TG003');
SELECT * FROM pg_temp.f('TG006');
SET ROLE regress_lint_owner;
ALTER POLICY only_mine ON gs.hw WITH CHECK (org_id = (SELECT tenant_guard.current_user_org_id()));
CREATE POLICY wall ON gs.hw AS RESTRICTIVE FOR ALL
    USING (org_id = (SELECT tenant_guard.current_user_org_id()))
    WITH CHECK (org_id = (SELECT tenant_guard.current_user_org_id()));
RESET ROLE;
SELECT * FROM pg_temp.f('TG003');
SELECT * FROM pg_temp.f('TG006');
SELECT severity, code, object FROM tenant_guard.lint() WHERE object LIKE '%gs.hw%' ORDER BY 2, 3;
-- open policies: without the wall they are errors, with it warnings
SET ROLE regress_lint_owner;
CREATE POLICY ins_any ON gs.hw FOR INSERT WITH CHECK (true);
CREATE POLICY sel_any ON gs.hw FOR SELECT USING (v > 0);
RESET ROLE;
SELECT * FROM pg_temp.f('TG007');
SELECT * FROM pg_temp.f('TG008');
SELECT severity, object, message FROM tenant_guard.lint() WHERE code = 'TG012' ORDER BY message;
SET ROLE regress_lint_owner;
DROP POLICY wall ON gs.hw;
RESET ROLE;
SELECT * FROM pg_temp.f('TG007');
SELECT * FROM pg_temp.f('TG008');
SET ROLE regress_lint_owner;
DROP POLICY ins_any ON gs.hw;
DROP POLICY sel_any ON gs.hw;
-- NULL-matching, defaulting and per-row context calls
CREATE POLICY nd ON gs.hw AS RESTRICTIVE FOR SELECT
    USING (org_id IS NOT DISTINCT FROM tenant_guard.current_user_org_id());
CREATE POLICY co ON gs.hw AS RESTRICTIVE FOR DELETE
    USING (org_id = COALESCE((SELECT tenant_guard.current_user_org_id()), '00000000-0000-0000-0000-000000000001'));
RESET ROLE;
SELECT * FROM pg_temp.f('TG009');
SELECT * FROM pg_temp.f('TG010');
-- TG011: with tenant_guard's planner hook (preloaded here) its accessors in a
-- policy are planned once per query; without it (the setting off) they are
-- called per row; a context read another way is per row either way
SELECT * FROM pg_temp.f('TG011');
SET tenant_guard.context_once_per_query = off;
SELECT * FROM pg_temp.f('TG011');
RESET tenant_guard.context_once_per_query;
SET ROLE regress_lint_owner;
CREATE POLICY cs ON gs.hw AS RESTRICTIVE FOR UPDATE
    USING (org_id = current_setting('app.org_id', true)::uuid);
RESET ROLE;
-- a partitioned table keeps the per-row form (the hook leaves it for pruning)
CREATE TABLE public.lint_hp (org_id uuid NOT NULL, id int) PARTITION BY LIST (org_id);
ALTER TABLE public.lint_hp ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.lint_hp FORCE ROW LEVEL SECURITY;
CREATE POLICY hp ON public.lint_hp USING (org_id = tenant_guard.current_user_org_id());
SELECT * FROM pg_temp.f('TG011');
DROP TABLE public.lint_hp;
SET ROLE regress_lint_owner;
DROP POLICY cs ON gs.hw;
ALTER POLICY nd ON gs.hw USING (org_id = (SELECT tenant_guard.current_user_org_id()));
ALTER POLICY co ON gs.hw USING (org_id = (SELECT tenant_guard.current_user_org_id()));
RESET ROLE;
SELECT * FROM pg_temp.f('TG009');
SELECT * FROM pg_temp.f('TG010');
SELECT * FROM pg_temp.f('TG011');
-- the same hand-written table outside a guarded schema only warns
SELECT tenant_guard.unguard_schema('gs');
SELECT * FROM pg_temp.f('TG003');
SELECT tenant_guard.guard_schema('gs');
SELECT tenant_guard.protect('gs.hw');
SELECT severity, code, object FROM tenant_guard.lint() WHERE object LIKE '%gs.hw%' AND severity <> 'info' ORDER BY 2, 3;
SET ROLE regress_lint_owner;
DROP POLICY only_mine ON gs.hw;
DROP POLICY nd ON gs.hw;
DROP POLICY co ON gs.hw;
RESET ROLE;
SELECT severity, code, object FROM tenant_guard.lint() WHERE object LIKE '%gs.hw%' AND severity <> 'info' ORDER BY 2, 3;

---------------------------------------------------------------------------
-- 4. Objects with other rights (TG015 .. TG021)
---------------------------------------------------------------------------
CREATE VIEW lab.v_super AS SELECT org_id, name FROM lab.a;   -- owned by the superuser
SELECT * FROM pg_temp.f('TG015');
ALTER VIEW lab.v_super SET (security_invoker = true);
SELECT * FROM pg_temp.f('TG015');
GRANT SELECT ON lab.a TO regress_lint_viewer;
GRANT CREATE ON SCHEMA lab TO regress_lint_viewer;
SET ROLE regress_lint_viewer;
CREATE VIEW lab.v_viewer AS SELECT org_id, name FROM lab.a;
RESET ROLE;
SELECT * FROM pg_temp.f('TG016');
ALTER VIEW lab.v_viewer SET (security_invoker = on);
SELECT * FROM pg_temp.f('TG016');
REVOKE CREATE ON SCHEMA lab FROM regress_lint_viewer;
CREATE MATERIALIZED VIEW lab.mv AS SELECT org_id, count(*) FROM lab.a GROUP BY org_id;
GRANT SELECT ON lab.mv TO regress_lint_app;
SELECT * FROM pg_temp.f('TG017');
REVOKE SELECT ON lab.mv FROM regress_lint_app;
SELECT * FROM pg_temp.f('TG017');
CREATE FUNCTION lab.names() RETURNS SETOF text LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog AS $$ SELECT name FROM lab.a $$;
CREATE FUNCTION lab.loose() RETURNS int LANGUAGE sql SECURITY DEFINER AS $$ SELECT 1 $$;
SELECT * FROM pg_temp.f('TG018');
SELECT * FROM pg_temp.f('TG019');
ALTER FUNCTION lab.names() SECURITY INVOKER;
ALTER FUNCTION lab.loose() SET search_path = pg_catalog, pg_temp;
SELECT * FROM pg_temp.f('TG018');
SELECT * FROM pg_temp.f('TG019');
CREATE RULE notify_me AS ON INSERT TO lab.a DO ALSO NOTIFY lab_a;
SELECT * FROM pg_temp.f('TG020');
DROP RULE notify_me ON lab.a;
SELECT * FROM pg_temp.f('TG020');
CREATE FOREIGN DATA WRAPPER regress_lint_fdw;
CREATE SERVER regress_lint_srv FOREIGN DATA WRAPPER regress_lint_fdw;
CREATE USER MAPPING FOR regress_lint_app SERVER regress_lint_srv;
CREATE USER MAPPING FOR PUBLIC SERVER regress_lint_srv;
SELECT * FROM pg_temp.f('TG021');
DROP USER MAPPING FOR regress_lint_app SERVER regress_lint_srv;
DROP USER MAPPING FOR PUBLIC SERVER regress_lint_srv;
SELECT * FROM pg_temp.f('TG021');

---------------------------------------------------------------------------
-- 5. Keys and references across tenants (TG022 .. TG024)
---------------------------------------------------------------------------
CREATE UNIQUE INDEX a_name_key ON lab.a (name);
SELECT * FROM pg_temp.f('TG022');
DROP INDEX lab.a_name_key;
CREATE UNIQUE INDEX a_org_name_key ON lab.a (org_id, name);
SELECT * FROM pg_temp.f('TG022');
SET ROLE regress_lint_owner;
CREATE UNIQUE INDEX a_id_key ON lab.a (id);
CREATE TABLE lab.b (org_id uuid NOT NULL, id serial, a_id int REFERENCES lab.a (id), PRIMARY KEY (org_id, id));
SELECT tenant_guard.protect('lab.b');
RESET ROLE;
SELECT * FROM pg_temp.f('TG023');
SELECT * FROM pg_temp.f('TG024');
-- (validating a new foreign key reads both tables through their policies as
-- the owner, so with require_context on the migration needs a context or a
-- moment without require_context)
SET tenant_guard.require_context = off;
SET ROLE regress_lint_owner;
ALTER TABLE lab.b DROP CONSTRAINT b_a_id_fkey;
ALTER TABLE lab.b ADD FOREIGN KEY (org_id, a_id) REFERENCES lab.a (org_id, id);
DROP INDEX lab.a_id_key;
RESET ROLE;
SET tenant_guard.require_context = on;
SELECT * FROM pg_temp.f('TG023');

---------------------------------------------------------------------------
-- 6. Application roles (TG025 .. TG035, TG042), fixed by harden_app_role()
---------------------------------------------------------------------------
ALTER ROLE regress_lint_app BYPASSRLS REPLICATION;
GRANT regress_lint_owner TO regress_lint_app;
GRANT TRUNCATE, REFERENCES, TRIGGER ON lab.b TO regress_lint_app;
GRANT CREATE ON SCHEMA lab TO regress_lint_app;
GRANT pg_read_server_files, pg_read_all_stats TO regress_lint_app;
GRANT SELECT ON lab.b TO PUBLIC;
GRANT SELECT ON lab.a TO regress_lint_anon;
GRANT EXECUTE ON FUNCTION pg_catalog.lo_open(oid, integer) TO regress_lint_app;
SELECT severity, code, object FROM tenant_guard.lint()
WHERE code BETWEEN 'TG025' AND 'TG043' AND code NOT IN ('TG036', 'TG037', 'TG038', 'TG039', 'TG040', 'TG041')
ORDER BY 2, 3;
-- ownership is not automated: harden says so and leaves it to the DBA
SELECT * FROM tenant_guard.harden_app_role('regress_lint_app');
REVOKE regress_lint_owner FROM regress_lint_app;
SELECT * FROM tenant_guard.harden_app_role('regress_lint_app');
SELECT * FROM tenant_guard.harden_app_role('regress_lint_anon');
SELECT severity, code, object FROM tenant_guard.lint() WHERE severity <> 'info' AND code <> 'TG039';
-- pg_stat_statements (readable by PUBLIC when installed) shows every tenant's statements
CREATE EXTENSION pg_stat_statements;
SELECT * FROM pg_temp.f('TG034');
SELECT * FROM tenant_guard.harden_app_role('regress_lint_app');
SELECT * FROM pg_temp.f('TG034');
DROP EXTENSION pg_stat_statements;
-- membership of a role that is not an application role
GRANT regress_lint_viewer TO regress_lint_app;
SELECT * FROM pg_temp.f('TG043');
REVOKE regress_lint_viewer FROM regress_lint_app;
SELECT * FROM pg_temp.f('TG043');
-- a superuser registered as the application role
CREATE ROLE regress_lint_super SUPERUSER LOGIN;
SELECT tenant_guard.register_app_role('regress_lint_super');
SELECT * FROM pg_temp.f('TG025');
ALTER ROLE regress_lint_super NOSUPERUSER;
SELECT * FROM pg_temp.f('TG025');
SELECT tenant_guard.unregister_app_role('regress_lint_super');

---------------------------------------------------------------------------
-- 7. Context and server (TG036 .. TG040)
---------------------------------------------------------------------------
SET tenant_guard.context_source = 'setting';
SELECT * FROM pg_temp.f('TG036');
SET tenant_guard.context_source = 'claims';
SELECT * FROM pg_temp.f('TG036');
SET tenant_guard.context_source = 'signed';
SELECT * FROM pg_temp.f('TG036');
SET tenant_guard.require_context = off;
SELECT * FROM pg_temp.f('TG037');
SET tenant_guard.require_context = on;
SELECT * FROM pg_temp.f('TG037');
ALTER ROLE regress_lint_app SET tenant_guard.org_id = '00000000-0000-0000-0000-0000000000a1';
DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET request.jwt.claims = %L', current_database(), '{}'); END $$;
SELECT * FROM pg_temp.f('TG038');
SELECT * FROM tenant_guard.harden_app_role('regress_lint_app');
DO $$ BEGIN EXECUTE format('ALTER DATABASE %I RESET request.jwt.claims', current_database()); END $$;
SELECT * FROM pg_temp.f('TG038');
SELECT (SELECT count(*) FROM pg_temp.f('TG039')) = (current_setting('server_version_num')::int < 150019)::int
       AS version_rule_matches_server;
SET tenant_guard.block_app_truncate = off;
SET tenant_guard.block_explain_analyze = off;
SELECT * FROM pg_temp.f('TG040');
RESET tenant_guard.block_app_truncate;
RESET tenant_guard.block_explain_analyze;
SELECT * FROM pg_temp.f('TG040');

---------------------------------------------------------------------------
-- 8. assert_clean(), and what non-superusers may call
---------------------------------------------------------------------------
SELECT tenant_guard.assert_clean();
SET tenant_guard.require_context = off;
SELECT tenant_guard.assert_clean('info');
SELECT tenant_guard.assert_clean('warning');
SELECT tenant_guard.assert_clean('error');
SET tenant_guard.require_context = on;
SELECT tenant_guard.assert_clean('fatal');
SELECT tenant_guard.assert_clean(NULL);
CREATE TABLE lab.bad (org_id uuid, x int);
SELECT tenant_guard.protect('lab.bad');
BEGIN;
SET LOCAL tenant_guard.allow_unsafe_ddl = on;
ALTER TABLE lab.bad DISABLE ROW LEVEL SECURITY;
COMMIT;
SELECT tenant_guard.assert_clean();
DROP TABLE lab.bad;
SELECT tenant_guard.assert_clean();

SET ROLE regress_lint_app;
SELECT * FROM tenant_guard.lint();
SELECT tenant_guard.assert_clean();
SELECT * FROM tenant_guard.harden_app_role('regress_lint_app');
SELECT tenant_guard.register_app_role('regress_lint_app');
RESET ROLE;
SELECT * FROM tenant_guard.harden_app_role(NULL);
SELECT * FROM tenant_guard.harden_app_role('postgres');
SELECT * FROM tenant_guard.harden_app_role('pg_monitor');
SELECT tenant_guard.register_app_role('pg_monitor');
SELECT tenant_guard.register_app_role(NULL);
SELECT tenant_guard.unregister_app_role('regress_lint_viewer');

-- clean up
SELECT tenant_guard.unguard_schema('app'), tenant_guard.unguard_schema('gs');
DROP SCHEMA app, lab, gs CASCADE;
DROP SERVER regress_lint_srv;
DROP FOREIGN DATA WRAPPER regress_lint_fdw;
SELECT tenant_guard.unregister_app_role('regress_lint_app'), tenant_guard.unregister_app_role('regress_lint_anon');
DROP OWNED BY regress_lint_app, regress_lint_anon, regress_lint_viewer, regress_lint_owner, regress_lint_super;
DROP ROLE regress_lint_app, regress_lint_anon, regress_lint_owner, regress_lint_viewer, regress_lint_super;
