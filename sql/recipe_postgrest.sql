-- The PostgREST recipe of docs/signed-mode.md, statement by statement: what
-- PostgREST sends for each request (in a transaction: its set_config() calls
-- for role and request.headers, the db-pre-request function, the query), with
-- signed mode and a JWKS. The pre-request function passes the request's
-- bearer token to tenant_guard.set_context() as a value (a PL/pgSQL variable
-- is a bind parameter), never in a statement's text.
\getenv tokens_file TG_TOKENS_SQL
\i :tokens_file
\set VERBOSITY default
SET tenant_guard.context_source = 'signed';
SET tenant_guard.jwt_jwks_file = :'jwks_file';
SET tenant_guard.jwt_audience = :'audience';

-- PostgREST's roles: the authenticator it logs in as, the role a verified
-- request switches to, the anonymous role
CREATE ROLE regress_pgrst_authenticator NOINHERIT;
CREATE ROLE regress_pgrst_user NOLOGIN;
CREATE ROLE regress_pgrst_anon NOLOGIN;
GRANT regress_pgrst_user, regress_pgrst_anon TO regress_pgrst_authenticator;

CREATE SCHEMA api;
CREATE TABLE api.projects (org_id text NOT NULL, name text NOT NULL);
SELECT tenant_guard.protect('api.projects');
INSERT INTO api.projects VALUES ('org_2abcA', 'roadmap of A'), ('org_2xyzB', 'roadmap of B');
GRANT USAGE ON SCHEMA api TO regress_pgrst_user, regress_pgrst_anon;
GRANT SELECT, INSERT ON api.projects TO regress_pgrst_user;
GRANT SELECT ON api.projects TO regress_pgrst_anon;

-- The recipe: postgrest.conf has db-pre-request = "api.tenant_pre_request"
CREATE FUNCTION api.tenant_pre_request() RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    auth text := pg_catalog.current_setting('request.headers', true)::json ->> 'authorization';
BEGIN
    IF auth IS NULL OR auth !~* '^bearer +[^ ]+$' THEN
        RETURN;  -- anonymous: no tenant context, the policies show nothing
    END IF;
    -- transaction-scoped: the context ends with the request's transaction
    PERFORM tenant_guard.set_context(pg_catalog.regexp_replace(auth, '^bearer +', '', 'i'));
END
$$;
REVOKE ALL ON FUNCTION api.tenant_pre_request() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.tenant_pre_request() TO regress_pgrst_user, regress_pgrst_anon;

-- request(token name or NULL): request.headers as PostgREST builds them. The
-- token is looked up here, so no statement below contains it.
CREATE FUNCTION pg_temp.headers(tok_name text) RETURNS text LANGUAGE sql AS $$
    SELECT pg_catalog.json_build_object('accept', '*/*', 'authorization', 'Bearer ' || pg_temp.tok(tok_name))::text
$$;
SET SESSION AUTHORIZATION regress_pgrst_authenticator;

-- GET /projects with tenant A's token: A's rows only
BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY;
SELECT set_config('role', 'regress_pgrst_user', true) IS NOT NULL AS role_set,
       set_config('request.headers', pg_temp.headers('tok_text_a'), true) IS NOT NULL AS headers_set,
       set_config('request.method', 'GET', true) IS NOT NULL AS method_set;
SELECT api.tenant_pre_request();
SELECT name FROM api.projects ORDER BY name;
SELECT tenant_guard.current_user_org_text(), tenant_guard.current_user_id();
COMMIT;

-- the next request on the same connection, without a token: nothing
BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY;
SELECT set_config('role', 'regress_pgrst_anon', true) IS NOT NULL AS role_set,
       set_config('request.headers', '{"accept":"*/*"}', true) IS NOT NULL AS headers_set;
SELECT api.tenant_pre_request();
SELECT count(*) AS anonymous_rows FROM api.projects;
COMMIT;

-- POST /projects with tenant B's token: B can write only into B
BEGIN;
SELECT set_config('role', 'regress_pgrst_user', true) IS NOT NULL AS role_set,
       set_config('request.headers', pg_temp.headers('tok_text_b'), true) IS NOT NULL AS headers_set;
SELECT api.tenant_pre_request();
INSERT INTO api.projects VALUES ('org_2xyzB', 'launch plan of B');
SELECT name FROM api.projects ORDER BY name;
SAVEPOINT cross_tenant;
INSERT INTO api.projects VALUES ('org_2abcA', 'planted by B');
ROLLBACK TO cross_tenant;
COMMIT;

-- PostgREST also writes the claims it verified into request.jwt.claims; in
-- signed mode they count for nothing, so a forged claim gets nowhere
BEGIN;
SELECT set_config('role', 'regress_pgrst_user', true) IS NOT NULL AS role_set,
       set_config('request.jwt.claims', '{"org_id":"org_2abcA","role":"regress_pgrst_user"}', true) IS NOT NULL AS claims_set,
       set_config('request.headers', '{}', true) IS NOT NULL AS headers_set;
SELECT api.tenant_pre_request();
SELECT count(*) AS rows_from_forged_claims FROM api.projects;
COMMIT;

-- a token the key set refuses (an unknown kid, alg none) fails the request:
-- PostgREST answers with the error and rolls the transaction back
BEGIN;
SELECT set_config('role', 'regress_pgrst_user', true) IS NOT NULL AS role_set,
       set_config('request.headers', pg_temp.headers('tok_jwks_unknown_kid'), true) IS NOT NULL AS headers_set;
SELECT api.tenant_pre_request();
ROLLBACK;
BEGIN;
SELECT set_config('role', 'regress_pgrst_user', true) IS NOT NULL AS role_set,
       set_config('request.headers', pg_temp.headers('tok_jwks_none'), true) IS NOT NULL AS headers_set;
SELECT api.tenant_pre_request();
ROLLBACK;
-- a header that is not "Bearer <token>": anonymous
BEGIN;
SELECT set_config('role', 'regress_pgrst_user', true) IS NOT NULL AS role_set,
       set_config('request.headers', '{"authorization":"Basic dXNlcjpwYXNz"}', true) IS NOT NULL AS headers_set;
SELECT api.tenant_pre_request();
SELECT count(*) AS rows_with_basic_auth FROM api.projects;
COMMIT;
RESET SESSION AUTHORIZATION;
SELECT org_id, name FROM api.projects ORDER BY org_id, name;
