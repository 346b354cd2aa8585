-- lint() rules on what reaches one tenant's session from another's, and on
-- settings chosen per role or per database (pg_db_role_setting): each rule
-- fires on a fixture made to trigger it, and the fix its hint names clears it.
--   TG045 temporary objects       TG046 statement text in pg_stat_activity
--   TG047 bind parameters in the server log
--   TG036, TG048 per-role and per-database settings
--   TG049 LEAKPROOF functions     TG050 literal_token = warn
--   TG040 the WITH HOLD and LISTEN guards
\set SHOW_CONTEXT never
SET client_min_messages = warning;
SET tenant_guard.context_source = 'signed';
SET tenant_guard.require_context = on;

CREATE ROLE regress_ls_app LOGIN;
CREATE ROLE regress_ls_group NOLOGIN;
SELECT tenant_guard.register_app_role('regress_ls_app');
-- findings of some rules: severity, object and message (database names masked)
CREATE FUNCTION pg_temp.f(VARIADIC c text[]) RETURNS TABLE (severity text, code text, object text, message text)
LANGUAGE sql AS $$
    SELECT l.severity, l.code, regexp_replace(l.object, '^database .*', 'database <db>'),
           regexp_replace(l.message, 'database [A-Za-z0-9_]+', 'database <db>', 'g')
    FROM tenant_guard.lint() l WHERE l.code = ANY (c) ORDER BY 2, 3, 4
$$;
CREATE FUNCTION pg_temp.db(stmt text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN EXECUTE format(stmt, current_database()); END $$;

SELECT code, severity, area, summary FROM tenant_guard.lint_rules() WHERE code >= 'TG045' ORDER BY 1;

---------------------------------------------------------------------------
-- TG045: TEMPORARY on the database (PUBLIC's by default)
---------------------------------------------------------------------------
SELECT * FROM pg_temp.f('TG045');
SELECT regexp_replace(s, 'DATABASE \S+', 'DATABASE <db>') AS hardening
FROM tenant_guard.harden_app_role('regress_ls_app') s WHERE s LIKE '%TEMPORARY%';
SELECT * FROM pg_temp.f('TG045');
-- granted to the role itself, or through a role it is a member of
SELECT pg_temp.db('GRANT TEMPORARY ON DATABASE %I TO regress_ls_app');
SELECT * FROM pg_temp.f('TG045');
SELECT regexp_replace(s, 'DATABASE \S+', 'DATABASE <db>') AS hardening
FROM tenant_guard.harden_app_role('regress_ls_app') s WHERE s LIKE '%TEMPORARY%';
SELECT pg_temp.db('GRANT TEMPORARY ON DATABASE %I TO regress_ls_group');
GRANT regress_ls_group TO regress_ls_app;
SELECT * FROM pg_temp.f('TG045');
SET client_min_messages = notice;
SELECT count(*) AS statements FROM tenant_guard.harden_app_role('regress_ls_app');
SET client_min_messages = warning;
REVOKE regress_ls_group FROM regress_ls_app;
SELECT pg_temp.db('REVOKE TEMPORARY ON DATABASE %I FROM regress_ls_group');
SELECT * FROM pg_temp.f('TG045');

---------------------------------------------------------------------------
-- TG046: the role's sessions record their statement text
---------------------------------------------------------------------------
-- hardened above: track_activities is off for the role
SELECT * FROM pg_temp.f('TG046');
ALTER ROLE regress_ls_app RESET track_activities;
SELECT * FROM pg_temp.f('TG046');
ALTER ROLE regress_ls_app SET track_activities = off;
SELECT * FROM pg_temp.f('TG046');
-- a setting for the role in this database wins over the role's own
SELECT pg_temp.db('ALTER ROLE regress_ls_app IN DATABASE %I SET track_activities = on');
SELECT * FROM pg_temp.f('TG046');
SELECT regexp_replace(s, 'DATABASE \S+', 'DATABASE <db>') AS hardening
FROM tenant_guard.harden_app_role('regress_ls_app') s;
SELECT * FROM pg_temp.f('TG046');
-- a database's setting does not win over the role's
SELECT pg_temp.db('ALTER DATABASE %I SET track_activities = on');
SELECT * FROM pg_temp.f('TG046');
SELECT pg_temp.db('ALTER DATABASE %I RESET track_activities');

---------------------------------------------------------------------------
-- TG047: bind parameters in the server log
---------------------------------------------------------------------------
SELECT * FROM pg_temp.f('TG047');
ALTER ROLE regress_ls_app SET log_min_duration_statement = 0;
SELECT * FROM pg_temp.f('TG047');
ALTER ROLE regress_ls_app SET log_parameter_max_length = 0;
SELECT * FROM pg_temp.f('TG047');
ALTER ROLE regress_ls_app RESET log_parameter_max_length;
ALTER ROLE regress_ls_app RESET log_min_duration_statement;
-- settings of the database and of the server (here: this session's)
SELECT pg_temp.db('ALTER DATABASE %I SET log_transaction_sample_rate = 0.01');
SELECT * FROM pg_temp.f('TG047');
SELECT pg_temp.db('ALTER DATABASE %I RESET log_transaction_sample_rate');
SET log_statement = 'all';
SET log_parameter_max_length = 64;
SELECT * FROM pg_temp.f('TG047');
RESET log_statement;
RESET log_parameter_max_length;
SET log_min_duration_sample = 0;
SELECT * FROM pg_temp.f('TG047');
SET log_statement_sample_rate = 0;
SELECT * FROM pg_temp.f('TG047');
RESET log_min_duration_sample;
RESET log_statement_sample_rate;
-- errors with their parameters: a setting any role may make for itself
SET ROLE regress_ls_app;
ALTER ROLE regress_ls_app SET log_parameter_max_length_on_error = -1;
RESET ROLE;
SELECT * FROM pg_temp.f('TG047');
ALTER ROLE regress_ls_app RESET log_parameter_max_length_on_error;
SELECT * FROM pg_temp.f('TG047');

---------------------------------------------------------------------------
-- TG036 and TG048: settings chosen per role or per database
---------------------------------------------------------------------------
-- this session's context_source is signed, so the session-wide TG036 is quiet
SELECT * FROM pg_temp.f('TG036', 'TG048');
-- one application role chooses a forgeable source for itself
SELECT pg_temp.db('ALTER ROLE regress_ls_app IN DATABASE %I SET tenant_guard.context_source = ''claims''');
SELECT pg_temp.db('ALTER DATABASE %I SET tenant_guard.context_source = ''setting''');
SELECT * FROM pg_temp.f('TG036');
SELECT pg_temp.db('ALTER ROLE regress_ls_app IN DATABASE %I RESET tenant_guard.context_source');
SELECT pg_temp.db('ALTER DATABASE %I SET tenant_guard.context_source = ''signed''');
SELECT * FROM pg_temp.f('TG036');
SELECT pg_temp.db('ALTER DATABASE %I RESET tenant_guard.context_source');
-- the settings that weaken isolation; the database-wide key configuration does not
ALTER ROLE regress_ls_app SET session_replication_role = replica;
ALTER ROLE regress_ls_app SET row_security = off;
ALTER ROLE regress_ls_app SET lo_compat_privileges = on;
ALTER ROLE regress_ls_app SET tenant_guard.block_app_listen = off;
ALTER ROLE regress_ls_app SET tenant_guard.literal_token = warn;
ALTER ROLE regress_ls_app SET tenant_guard.jwt_audience = 'another-audience';
ALTER ROLE regress_ls_app SET tenant_guard.org_claim = 'user_metadata.org_id';
SELECT pg_temp.db('ALTER DATABASE %I SET tenant_guard.require_context = off');
SELECT pg_temp.db('ALTER DATABASE %I SET tenant_guard.jwt_audience = ''tenant-app''');
SELECT pg_temp.db('ALTER DATABASE %I SET tenant_guard.block_app_truncate = on');
SELECT * FROM pg_temp.f('TG048');
SELECT hint FROM tenant_guard.lint() WHERE code = 'TG048' AND object = 'regress_ls_app' AND message LIKE '%replica%';
ALTER ROLE regress_ls_app RESET ALL;
SELECT pg_temp.db('ALTER DATABASE %I RESET tenant_guard.require_context');
SELECT pg_temp.db('ALTER DATABASE %I RESET tenant_guard.jwt_audience');
SELECT pg_temp.db('ALTER DATABASE %I RESET tenant_guard.block_app_truncate');
SELECT * FROM pg_temp.f('TG036', 'TG048');
-- roles that are not application roles are the DBA's business
ALTER ROLE regress_ls_group SET session_replication_role = replica;
SELECT * FROM pg_temp.f('TG048');
ALTER ROLE regress_ls_group RESET ALL;
-- (harden_app_role() set track_activities = off again: RESET ALL removed it)
ALTER ROLE regress_ls_app SET track_activities = off;

---------------------------------------------------------------------------
-- TG049: a LEAKPROOF function that is not built in, and the attack it allows
---------------------------------------------------------------------------
CREATE TABLE public.ls_secrets (org_id uuid NOT NULL, secret text NOT NULL);
INSERT INTO public.ls_secrets VALUES ('11111111-1111-4111-8111-111111111111', 'secret of A'),
                                     ('22222222-2222-4222-8222-222222222222', 'secret of B');
SELECT tenant_guard.protect('public.ls_secrets');
GRANT SELECT ON public.ls_secrets TO regress_ls_app;
CREATE FUNCTION public.ls_matches(text) RETURNS boolean LANGUAGE plpgsql LEAKPROOF COST 0.0001
    AS $$ BEGIN RAISE NOTICE 'ls_matches saw %', $1; RETURN true; END $$;
SELECT * FROM pg_temp.f('TG049');
-- tenant A filters with it: the planner runs it before the row-level
-- security filter, on tenant B's row too
SET tenant_guard.context_source = 'setting';
SET ROLE regress_ls_app;
SET tenant_guard.org_id = '11111111-1111-4111-8111-111111111111';
SET client_min_messages = notice;
SELECT count(*) FROM public.ls_secrets WHERE public.ls_matches(secret);
SET client_min_messages = warning;
RESET ROLE;
ALTER FUNCTION public.ls_matches(text) NOT LEAKPROOF;
SELECT * FROM pg_temp.f('TG049');
SET ROLE regress_ls_app;
SET client_min_messages = notice;
SELECT count(*) FROM public.ls_secrets WHERE public.ls_matches(secret);
SET client_min_messages = warning;
RESET ROLE;
RESET tenant_guard.org_id;
SET tenant_guard.context_source = 'signed';
-- built-in LEAKPROOF functions (texteq, int4lt, ...) are not reported
SELECT count(*) > 50 AS builtin_leakproof, count(*) FILTER (WHERE oid >= 16384) AS others
FROM pg_proc WHERE proleakproof;

---------------------------------------------------------------------------
-- TG050 and TG040: literal tokens only warned about; guards turned off
---------------------------------------------------------------------------
SELECT * FROM pg_temp.f('TG040', 'TG050');
SET tenant_guard.literal_token = warn;
SET tenant_guard.block_app_hold_cursors = off;
SET tenant_guard.block_app_listen = off;
SELECT * FROM pg_temp.f('TG040', 'TG050');
RESET tenant_guard.literal_token;
RESET tenant_guard.block_app_hold_cursors;
RESET tenant_guard.block_app_listen;
SELECT * FROM pg_temp.f('TG040', 'TG050');

-- configuration findings (context and server) are reported once per setting,
-- and per role or database that sets it, never once per protected table
CREATE TABLE public.ls_a (org_id uuid NOT NULL, id int NOT NULL, PRIMARY KEY (org_id, id));
CREATE TABLE public.ls_b (org_id uuid NOT NULL, id int NOT NULL, PRIMARY KEY (org_id, id));
SELECT count(tenant_guard.protect(t)) AS protected FROM unnest('{public.ls_a,public.ls_b}'::regclass[]) t;
SET tenant_guard.context_source = 'claims';
SET tenant_guard.require_context = off;
ALTER ROLE regress_ls_app SET tenant_guard.context_source = 'setting';
SELECT l.code, regexp_replace(l.object, '^database .*', 'database <db>') AS object, count(*) AS findings
FROM tenant_guard.lint() l WHERE l.code IN ('TG036', 'TG037') GROUP BY 1, 2 ORDER BY 1, 2;
SELECT count(*) AS repeated_configuration_findings FROM (
    SELECT l.code, l.object FROM tenant_guard.lint() l JOIN tenant_guard.lint_rules() r ON r.code = l.code
    WHERE r.area IN ('context', 'server') GROUP BY 1, 2 HAVING count(*) > 1) x;
ALTER ROLE regress_ls_app RESET tenant_guard.context_source;
SET tenant_guard.context_source = 'signed';
SET tenant_guard.require_context = on;
SELECT count(tenant_guard.unprotect(t)) AS unprotected FROM unnest('{public.ls_a,public.ls_b}'::regclass[]) t;
DROP TABLE public.ls_a, public.ls_b;

-- clean up
DROP TABLE public.ls_secrets;
DROP FUNCTION public.ls_matches(text);
SELECT tenant_guard.unregister_app_role('regress_ls_app');
DROP ROLE regress_ls_app, regress_ls_group;
