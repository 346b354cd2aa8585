-- Token theft through pg_stat_activity: every tenant shares the application
-- role, and a session sees the statement text of every session of its own
-- role. set_context() refuses a valid token written into the statement text
-- (tenant_guard.literal_token), removes any token it finds there from the
-- text pg_stat_activity shows, and tenant_guard.context_input takes a token as
-- COPY data for clients that cannot send a bind parameter. The attacks run as
-- the application role against a second session of the same role (dblink).
\getenv tokens_file TG_TOKENS_SQL
\i :tokens_file
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
SET tenant_guard.context_source = 'signed';
SET tenant_guard.jwt_secret_file = :'hs_secret_file';
SET tenant_guard.jwt_audience = :'audience';
SELECT name, setting, context FROM pg_settings WHERE name = 'tenant_guard.literal_token';

---------------------------------------------------------------------------
-- 1. set_context() and a token written into the statement text
---------------------------------------------------------------------------
-- a valid token, literally: refused, the message names no part of it, no context
BEGIN;
SELECT tenant_guard.set_context(:'tok_hs_a');
ROLLBACK;
SELECT tenant_guard.current_user_org_id() IS NULL AS no_context;
-- built from its parts: the signature is still there whole
SELECT tenant_guard.set_context(split_part(:'tok_hs_a', '.', 1) || '.' || split_part(:'tok_hs_a', '.', 2)
                                || '.' || split_part(:'tok_hs_a', '.', 3));
-- dollar-quoted, and in a DO block: the statement text is what counts
SELECT format('SELECT tenant_guard.set_context($q$%s$q$)', pg_temp.tok('tok_hs_a')) AS stmt \gset
:stmt;
SELECT format('DO $d$ BEGIN PERFORM tenant_guard.set_context(%L); END $d$', pg_temp.tok('tok_hs_a')) AS stmt \gset
:stmt;
-- a prepared statement's parameter written into EXECUTE is statement text too
PREPARE login(text) AS SELECT tenant_guard.set_context($1) = :'org_a' AS a;
EXECUTE login(:'tok_hs_a');
-- the token as a value, not as text of the statement: accepted
BEGIN;
EXECUTE login(pg_temp.tok('tok_hs_a'));
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_b')) = :'org_b' AS b;
COMMIT;
DEALLOCATE login;
-- an invalid token keeps its own error (nothing to protect, nothing set)
SELECT tenant_guard.set_context(:'tok_hs_expired');
SELECT tenant_guard.set_context(:'tok_hs_wrong_key');
-- short strings are not searched for ('' is in every statement)
SELECT tenant_guard.set_context('');

-- warn: accepted with a WARNING (for an application that cannot change yet)
SET tenant_guard.literal_token = warn;
SET client_min_messages = notice;
BEGIN;
SELECT tenant_guard.set_context(:'tok_hs_a') = :'org_a' AS accepted_with_warning;
COMMIT;
SET client_min_messages = warning;
RESET tenant_guard.literal_token;
SET tenant_guard.literal_token = 'off';

---------------------------------------------------------------------------
-- 2. tenant_guard.context_input: the token as COPY data
---------------------------------------------------------------------------
CREATE ROLE regress_tok_app LOGIN;
SELECT tenant_guard.register_app_role('regress_tok_app');
CREATE TABLE tok_t (org_id uuid NOT NULL, secret text);
INSERT INTO tok_t VALUES (:'org_a', 'secret of A'), (:'org_b', 'secret of B');
SELECT tenant_guard.protect('tok_t');
GRANT SELECT ON tok_t TO regress_tok_app;
SET ROLE regress_tok_app;
-- the application role may set the literal_token setting no more than the source
SET tenant_guard.literal_token = warn;
BEGIN;
\copy tenant_guard.context_input (token) FROM PROGRAM 'cat "$TG_TEST_DIR/tokens/tok_hs_a"'
SELECT tenant_guard.current_user_org_id() = :'org_a' AS a, secret FROM tok_t;
COMMIT;
SELECT tenant_guard.current_user_org_id() IS NULL AS gone_after_commit;
-- an invalid token: the same error as set_context()
BEGIN;
\copy tenant_guard.context_input (token) FROM PROGRAM 'cat "$TG_TEST_DIR/tokens/tok_hs_expired"'
ROLLBACK;
-- session => true, and rows inserted from a value
INSERT INTO tenant_guard.context_input (token, session) SELECT pg_temp.tok('tok_hs_b'), true;
SELECT tenant_guard.current_user_org_id() = :'org_b' AS session_b, secret FROM tok_t;
SELECT tenant_guard.clear_context();
-- a literal in INSERT is statement text: refused; NULL is refused
INSERT INTO tenant_guard.context_input (token) VALUES (:'tok_hs_a');
INSERT INTO tenant_guard.context_input (token) VALUES (NULL);
-- the view itself holds nothing, and only INSERT is granted
SELECT count(*) FROM tenant_guard.context_input;
RESET ROLE;
SELECT count(*) AS rows FROM tenant_guard.context_input;
SELECT grantee, privilege_type FROM information_schema.role_table_grants
WHERE table_schema = 'tenant_guard' AND table_name = 'context_input' AND grantee = 'PUBLIC';

---------------------------------------------------------------------------
-- 3. The attack: tenant B's session writes its token into a statement and
--    idles in the transaction; tenant A, the same database role, reads
--    pg_stat_activity and replays it
---------------------------------------------------------------------------
CREATE EXTENSION dblink;
ALTER ROLE regress_tok_app SET tenant_guard.context_source = 'signed';
ALTER ROLE regress_tok_app SET tenant_guard.jwt_secret_file = :'hs_secret_file';
ALTER ROLE regress_tok_app SET tenant_guard.jwt_audience = :'audience';
CREATE FUNCTION pg_temp.connect_as_app(name text) RETURNS text LANGUAGE sql AS $$
    SELECT dblink_connect(name, format('host=%s port=%s dbname=%s user=regress_tok_app',
                                       current_setting('unix_socket_directories'), current_setting('port'),
                                       current_database()))
$$;
-- what tenant A sees of the other sessions of its role
CREATE FUNCTION pg_temp.spy() RETURNS TABLE (state text, query text) LANGUAGE sql AS $$
    SELECT a.state, replace(replace(a.query, pg_temp.tok('tok_hs_b'), '<THE TOKEN OF B>'),
                            pg_temp.tok('tok_hs_wrong_aud'), '<A TOKEN FOR ANOTHER AUDIENCE>')
    FROM pg_stat_activity a WHERE a.usename = 'regress_tok_app' AND a.pid <> pg_backend_pid()
$$;
SELECT pg_temp.connect_as_app('b');
-- the channel exists: B's statement text, literals included, is visible to A
SELECT * FROM dblink('b', 'SELECT ''invoice 1042 of tenant B''') AS x(v text);
SET ROLE regress_tok_app;
SELECT * FROM pg_temp.spy();
RESET ROLE;
-- B writes its token into the statement: refused, and gone from the text A sees
SELECT dblink_exec('b', 'BEGIN');
SELECT dblink_exec('b', format('SELECT tenant_guard.set_context(%L)', pg_temp.tok('tok_hs_b')), false);
SET ROLE regress_tok_app;
SELECT * FROM pg_temp.spy();
-- A replays whatever token-like text it finds: there is none
SELECT tenant_guard.set_context(substring(a.query FROM 'eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+'))
FROM pg_stat_activity a WHERE a.usename = 'regress_tok_app' AND a.pid <> pg_backend_pid();
SELECT count(*) AS rows_of_b FROM tok_t;
RESET ROLE;
-- a token refused as invalid here (it may be valid elsewhere) leaves the text too
SELECT dblink_exec('b', 'ROLLBACK');
SELECT dblink_exec('b', format('SELECT 1 FROM tenant_guard.set_context(%L)', pg_temp.tok('tok_hs_wrong_aud')), false);
SET ROLE regress_tok_app;
SELECT * FROM pg_temp.spy();
RESET ROLE;
-- with literal_token = warn the token is accepted, and still removed from the text
ALTER ROLE regress_tok_app SET tenant_guard.literal_token = warn;
SELECT dblink_disconnect('b');
SELECT pg_temp.connect_as_app('b');
SELECT dblink_exec('b', 'BEGIN');
SELECT * FROM dblink('b', format('SELECT tenant_guard.set_context(%L) = %L', pg_temp.tok('tok_hs_b'), :'org_b'))
    AS x(accepted boolean);
SET ROLE regress_tok_app;
SELECT * FROM pg_temp.spy();
RESET ROLE;
SELECT dblink_exec('b', 'ROLLBACK');
ALTER ROLE regress_tok_app RESET tenant_guard.literal_token;
SELECT dblink_disconnect('b');

---------------------------------------------------------------------------
-- 4. harden_app_role(): the sessions of the role no longer record their
--    statement text, so tenant A sees nothing of tenant B's statements, and
--    the role cannot turn it back on
---------------------------------------------------------------------------
SELECT regexp_replace(s, 'DATABASE \S+', 'DATABASE <db>') AS hardening
FROM tenant_guard.harden_app_role('regress_tok_app') s WHERE s ~ 'track_activities|TEMPORARY';
SELECT pg_temp.connect_as_app('b');
SELECT * FROM dblink('b', 'SELECT ''invoice 1042 of tenant B''') AS x(v text);
SELECT dblink_exec('b', 'BEGIN');
SELECT dblink_exec('b', format('SELECT tenant_guard.set_context(%L)', pg_temp.tok('tok_hs_b')), false);
SET ROLE regress_tok_app;
SELECT * FROM pg_temp.spy();
RESET ROLE;
SELECT dblink_exec('b', 'ROLLBACK');
SELECT dblink_exec('b', 'SET track_activities = on', false);
SELECT * FROM dblink('b', 'SHOW track_activities') AS x(track_activities text);
SELECT dblink_disconnect('b');

-- clean up
DROP TABLE tok_t;
SELECT tenant_guard.unregister_app_role('regress_tok_app');
DROP ROLE regress_tok_app;
DROP EXTENSION dblink;
