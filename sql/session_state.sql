-- Session state that outlives a transaction, which a transaction pooler hands
-- to the next client of the connection, whatever its tenant: temporary
-- objects, cursors WITH HOLD, LISTEN. harden_app_role() revokes TEMPORARY;
-- the runtime guards (tenant_guard preloaded) refuse DECLARE ... WITH HOLD
-- and LISTEN to application roles. This session plays the clients of one
-- pooled connection: tenant A, then tenant B, then A again, each in its own
-- transaction, as the application role (test/pooler/run_pgbouncer.sh runs the
-- same attacks through a real pgbouncer).
\set SHOW_CONTEXT never
SET client_min_messages = warning;
SELECT name, setting, context FROM pg_settings
WHERE name IN ('tenant_guard.block_app_hold_cursors', 'tenant_guard.block_app_listen') ORDER BY 1;

CREATE ROLE regress_ss_app LOGIN;
CREATE ROLE regress_ss_worker LOGIN;
SELECT tenant_guard.register_app_role('regress_ss_app');
CREATE SCHEMA ss;
CREATE TABLE ss.projects (org_id uuid NOT NULL, name text NOT NULL);
INSERT INTO ss.projects VALUES ('11111111-1111-4111-8111-111111111111', 'secret of A'),
                               ('22222222-2222-4222-8222-222222222222', 'secret of B');
SELECT tenant_guard.protect('ss.projects');
GRANT USAGE ON SCHEMA ss TO regress_ss_app, regress_ss_worker;
GRANT SELECT ON ss.projects TO regress_ss_app, regress_ss_worker;
SET tenant_guard.context_source = 'setting';
SET search_path = ss, public;          -- the application uses unqualified names

---------------------------------------------------------------------------
-- 1. Temporary objects: tenant A plants a view named like the table, with a
--    function that keeps every row the view shows; tenant B's unqualified
--    name reads through it; A reads B's rows back
---------------------------------------------------------------------------
SET ROLE regress_ss_app;
BEGIN;
SET LOCAL tenant_guard.org_id = '11111111-1111-4111-8111-111111111111';
CREATE TEMP TABLE loot (name text);
CREATE FUNCTION pg_temp.keep(n text) RETURNS boolean LANGUAGE sql VOLATILE
    AS 'INSERT INTO pg_temp.loot VALUES (n); SELECT true';
CREATE TEMP VIEW projects AS SELECT p.* FROM ss.projects p WHERE pg_temp.keep(p.name);
COMMIT;
BEGIN;
SET LOCAL tenant_guard.org_id = '22222222-2222-4222-8222-222222222222';
SELECT name FROM projects;
COMMIT;
BEGIN;
SET LOCAL tenant_guard.org_id = '11111111-1111-4111-8111-111111111111';
SELECT name AS stolen_by_a FROM pg_temp.loot;
COMMIT;
RESET ROLE;
DISCARD TEMP;
-- harden_app_role() revokes TEMPORARY from PUBLIC (PUBLIC's by default:
-- revoking it from the role alone would change nothing) and from the role
SELECT regexp_replace(s, 'DATABASE \S+', 'DATABASE <db>') AS hardening
FROM tenant_guard.harden_app_role('regress_ss_app') s WHERE s LIKE '%TEMPORARY%';
SELECT has_database_privilege('regress_ss_app', current_database(), 'TEMPORARY') AS app_temp,
       has_database_privilege('regress_ss_worker', current_database(), 'TEMPORARY') AS other_role_temp;
SET ROLE regress_ss_app;
\set VERBOSITY sqlstate
CREATE TEMP TABLE loot (name text);
CREATE TEMP VIEW projects AS SELECT 1;
CREATE FUNCTION pg_temp.keep(n text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
\set VERBOSITY default
BEGIN;
SET LOCAL tenant_guard.org_id = '22222222-2222-4222-8222-222222222222';
SELECT name FROM projects;
COMMIT;
RESET ROLE;
-- a role that needs TEMPORARY is granted it by name
DO $$ BEGIN EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO regress_ss_worker', current_database()); END $$;
SET ROLE regress_ss_worker;
CREATE TEMP TABLE worker_scratch (n int);
RESET ROLE;
DISCARD TEMP;

---------------------------------------------------------------------------
-- 2. Cursors WITH HOLD: a cursor of tenant A's rows outlives A's transaction;
--    the next client, tenant B, lists it in pg_cursors and fetches it
---------------------------------------------------------------------------
-- what the guard prevents, shown with a role that is not an application role
SET ROLE regress_ss_worker;
BEGIN;
SET LOCAL tenant_guard.org_id = '11111111-1111-4111-8111-111111111111';
DECLARE held CURSOR WITH HOLD FOR SELECT name FROM ss.projects;
COMMIT;
SET ROLE regress_ss_app;
BEGIN;
SET LOCAL tenant_guard.org_id = '22222222-2222-4222-8222-222222222222';
SELECT name, is_holdable FROM pg_cursors;
FETCH ALL FROM held;
COMMIT;
CLOSE held;
-- the application role: refused, directly and from a function
BEGIN;
SET LOCAL tenant_guard.org_id = '11111111-1111-4111-8111-111111111111';
DECLARE held CURSOR WITH HOLD FOR SELECT name FROM ss.projects;
ROLLBACK;
DO $$ BEGIN EXECUTE 'DECLARE held CURSOR WITH HOLD FOR SELECT 1'; END $$;
SELECT count(*) AS cursors FROM pg_cursors;
-- a cursor without HOLD, inside the transaction, is fine
BEGIN;
SET LOCAL tenant_guard.org_id = '11111111-1111-4111-8111-111111111111';
DECLARE c CURSOR FOR SELECT name FROM ss.projects;
FETCH ALL FROM c;
COMMIT;
-- the application role cannot turn the guards off
SET tenant_guard.block_app_hold_cursors = off;
SET tenant_guard.block_app_listen = off;
RESET ROLE;

---------------------------------------------------------------------------
-- 3. LISTEN: a listening session receives every session's notifications
---------------------------------------------------------------------------
SET ROLE regress_ss_app;
LISTEN tenant_events;
DO $$ BEGIN EXECUTE 'LISTEN tenant_events'; END $$;
SELECT pg_listening_channels();
-- UNLISTEN and NOTIFY stay allowed (NOTIFY payloads are a residual channel:
-- whoever listens receives them, see docs/security-model.md)
UNLISTEN *;
NOTIFY tenant_events, 'sent by an application role';
RESET ROLE;
-- a role that is not an application role may listen (a worker that reads
-- each tenant's rows in its own context)
SET ROLE regress_ss_worker;
LISTEN tenant_events;
SELECT pg_listening_channels();
UNLISTEN *;
RESET ROLE;

---------------------------------------------------------------------------
-- 4. A superuser turns a guard off for a session (lint reports it: TG040)
---------------------------------------------------------------------------
SET tenant_guard.block_app_hold_cursors = off;
SET tenant_guard.block_app_listen = off;
SET ROLE regress_ss_app;
BEGIN;
DECLARE held CURSOR WITH HOLD FOR SELECT 1 AS one;
COMMIT;
FETCH ALL FROM held;
CLOSE held;
LISTEN tenant_events;
SELECT pg_listening_channels();
UNLISTEN *;
RESET ROLE;
RESET tenant_guard.block_app_hold_cursors;
RESET tenant_guard.block_app_listen;

-- clean up
RESET search_path;
DROP SCHEMA ss CASCADE;
SELECT tenant_guard.unregister_app_role('regress_ss_app');
DO $$ BEGIN EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM regress_ss_worker', current_database()); END $$;
DROP ROLE regress_ss_app, regress_ss_worker;
