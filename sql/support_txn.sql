-- Support sessions across transactions inside one statement, and the
-- internal functions of a redemption. The attacker is the support agent (a
-- member of tenant_guard_support and of the application role):
--  - a DO block or a procedure that COMMITs keeps running after the session's
--    ttl passed or after the tenant's admin revoked it (checked only once per
--    top-level statement): the context must die at the next transaction;
--  - _support_redeem() called inside an expression that fails tests whether a
--    token is valid without redeeming it and without an audit row: no internal
--    function of a redemption may be callable by the agent, and a redemption
--    is recorded (or refused) before anything about the token shows.
\set SHOW_CONTEXT never
\getenv tokens_file TG_TOKENS_SQL
\i :tokens_file
CREATE ROLE regress_supx_owner;
CREATE ROLE regress_supx_app;
CREATE ROLE regress_supx_platform;
CREATE ROLE regress_supx_agent;
GRANT tenant_guard_support TO regress_supx_platform, regress_supx_agent;
GRANT regress_supx_app TO regress_supx_agent;
CREATE SCHEMA supx AUTHORIZATION regress_supx_owner;
GRANT USAGE ON SCHEMA supx TO regress_supx_app;
SET tenant_guard.context_source = 'setting';
SET ROLE regress_supx_owner;
CREATE TABLE supx.tickets (org_id uuid NOT NULL, id int, body text, PRIMARY KEY (org_id, id));
SELECT tenant_guard.protect('supx.tickets');
GRANT SELECT, INSERT, UPDATE, DELETE ON supx.tickets TO regress_supx_app;
RESET ROLE;
INSERT INTO supx.tickets VALUES (:'org_a', 1, 'a1'), (:'org_a', 2, 'a2'), (:'org_b', 3, 'b1');
CREATE EXTENSION dblink;
-- the tenant admin's revocation comes from another connection
GRANT EXECUTE ON FUNCTION dblink_connect_u(text, text) TO regress_supx_agent;
SELECT format('host=%s port=%s dbname=%s user=postgres', split_part(current_setting('unix_socket_directories'), ',', 1),
              current_setting('port'), current_database()) AS connstr \gset
CREATE FUNCTION pg_temp.issue(reason text, ttl interval DEFAULT '30 minutes') RETURNS text
LANGUAGE sql SECURITY DEFINER AS $$
    SELECT tenant_guard.issue_support_grant('11111111-1111-4111-8111-111111111111', 'agent@platform', reason,
                                           session_ttl => ttl)
$$;
SELECT :'org_a' = '11111111-1111-4111-8111-111111111111' AS issue_targets_org_a;
CREATE FUNCTION pg_temp.grant_state(r text) RETURNS TABLE (redeemed boolean, events text)
LANGUAGE sql SECURITY DEFINER AS $$
    SELECT g.redeemed_at IS NOT NULL,
           coalesce((SELECT string_agg(l.action, ', ' ORDER BY l.id) FROM tenant_guard.audit_log l
                     WHERE l.detail ->> 'grant' = g.id::text AND l.action <> 'platform.support_grant_issued'), 'none')
    FROM tenant_guard.support_grants g WHERE g.reason = r
$$;
GRANT EXECUTE ON FUNCTION pg_temp.grant_state(text) TO regress_supx_agent;

-- 1. The ttl passes inside a DO block that commits: the context dies at the
-- next transaction, for queries and for plain expressions alike
SELECT pg_temp.issue('ttl in a DO block', '5 seconds') AS tok_ttl \gset
SET SESSION AUTHORIZATION regress_supx_agent;
CALL tenant_guard.begin_support_session(:'tok_ttl');
DO $$
DECLARE
    n bigint;
BEGIN
    SELECT count(*) INTO n FROM supx.tickets;
    RAISE NOTICE 'before: % rows, context %', n, tenant_guard.current_user_org_id() IS NOT NULL;
    PERFORM pg_sleep(5.2);
    COMMIT;
    RAISE NOTICE 'after the ttl and a COMMIT: context %', tenant_guard.current_user_org_id() IS NOT NULL;
    SELECT count(*) INTO n FROM supx.tickets;
    RAISE NOTICE 'after the ttl and a COMMIT: % rows', n;
    UPDATE supx.tickets SET body = 'written after the ttl';
    GET DIAGNOSTICS n = ROW_COUNT;
    RAISE NOTICE 'after the ttl and a COMMIT: % rows updated', n;
END
$$;
SELECT tenant_guard.current_user_org_id() IS NULL AS no_context_after;
RESET SESSION AUTHORIZATION;

-- 2. The tenant's admin revokes from another connection while a procedure of
-- the agent runs; the procedure commits and goes on
SELECT pg_temp.issue('revoked in a procedure') AS tok_rev \gset
SET SESSION AUTHORIZATION regress_supx_agent;
CALL tenant_guard.begin_support_session(:'tok_rev');
CREATE PROCEDURE pg_temp.work(connstr text, org text)
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    SELECT count(*) INTO n FROM supx.tickets;
    RAISE NOTICE 'before: % rows', n;
    PERFORM dblink_connect_u('admin', connstr);
    PERFORM dblink_exec('admin', 'SET tenant_guard.context_source = ''setting''');
    PERFORM dblink_exec('admin', format('SET tenant_guard.org_id = %L', org));
    PERFORM dblink_exec('admin', 'SET tenant_guard.role = ''admin''');
    RAISE NOTICE 'the admin revoked: %', (SELECT r FROM dblink('admin', 'SELECT tenant_guard.revoke_support_sessions()') AS t(r integer));
    PERFORM dblink_disconnect('admin');
    SELECT count(*) INTO n FROM supx.tickets;
    RAISE NOTICE 'same transaction, after the revocation: % rows', n;
    COMMIT;
    RAISE NOTICE 'after COMMIT: context %', tenant_guard.current_user_org_id() IS NOT NULL;
    SELECT count(*) INTO n FROM supx.tickets;
    RAISE NOTICE 'after COMMIT: % rows', n;
    DELETE FROM supx.tickets;
    GET DIAGNOSTICS n = ROW_COUNT;
    RAISE NOTICE 'after COMMIT: % rows deleted', n;
END
$$;
CALL pg_temp.work(:'connstr', :'org_a');
SELECT tenant_guard.current_user_org_id() IS NULL AS no_context_after;
RESET SESSION AUTHORIZATION;
SELECT count(*) AS tickets_left FROM supx.tickets;

-- 3. A live session is not disturbed by its own commits: a procedure that
-- commits keeps the context (and a DO block reads it in plain expressions)
SELECT pg_temp.issue('live across commits') AS tok_live \gset
SET SESSION AUTHORIZATION regress_supx_agent;
CALL tenant_guard.begin_support_session(:'tok_live');
DO $$
DECLARE
    n bigint;
BEGIN
    RAISE NOTICE 'first: context %', tenant_guard.current_user_org_id() IS NOT NULL;
    COMMIT;
    RAISE NOTICE 'after COMMIT: context %', tenant_guard.current_user_org_id() IS NOT NULL;
    UPDATE supx.tickets SET body = body || '.' WHERE id = 1;
    COMMIT;
    SELECT count(*) INTO n FROM supx.tickets;
    RAISE NOTICE 'after the second COMMIT: % rows', n;
END
$$;
SELECT tenant_guard.end_support_session() AS ended;
RESET SESSION AUTHORIZATION;

-- 4. Probing a token through the internal redemption function: refused,
-- whether the token is valid or not, and the valid grant stays unredeemed
SELECT pg_temp.issue('probe') AS tok_probe \gset
SET SESSION AUTHORIZATION regress_supx_agent;
CREATE FUNCTION pg_temp.roll_back(what text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the token is %', what;
END
$$;
SELECT CASE WHEN tenant_guard._support_redeem(:'tok_probe') THEN pg_temp.roll_back('valid') END AS probe_valid_token;
SELECT CASE WHEN tenant_guard._support_redeem('not-a-token') THEN pg_temp.roll_back('valid') END AS probe_unknown_token;
SELECT * FROM pg_temp.grant_state('probe');
-- every other internal step of a redemption or a session is refused as well
SELECT tenant_guard._support_stage(gen_random_uuid(), :'org_a', 'agent@platform', now() + interval '1 hour');
SELECT tenant_guard._support_check_toplevel();
SELECT tenant_guard._support_end();
SELECT tenant_guard._support_active_grant();
RESET SESSION AUTHORIZATION;
SELECT p.oid::regprocedure AS internal_function, has_function_privilege('regress_supx_agent', p.oid, 'EXECUTE') AS agent,
       has_function_privilege('tenant_guard_support', p.oid, 'EXECUTE') AS support_role,
       has_function_privilege('regress_supx_app', p.oid, 'EXECUTE') AS app
FROM pg_proc p WHERE p.pronamespace = 'tenant_guard'::regnamespace AND p.proname LIKE '\_support\_%' ORDER BY 1::text;

-- 5. begin_support_session() inside a subtransaction (an exception block) is
-- refused before anything is redeemed: the same error for a valid and an
-- unknown token, and the grant stays redeemable
SET SESSION AUTHORIZATION regress_supx_agent;
CREATE PROCEDURE pg_temp.try_begin(t text)
LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        CALL tenant_guard.begin_support_session(t);
    EXCEPTION WHEN others THEN
        RAISE NOTICE 'refused: % %', SQLSTATE, SQLERRM;
    END;
END
$$;
CALL pg_temp.try_begin(:'tok_probe');
CALL pg_temp.try_begin('not-a-token');
SELECT * FROM pg_temp.grant_state('probe');
-- ... and from a function (an atomic context)
CREATE FUNCTION pg_temp.begin_in_function(t text) RETURNS void
LANGUAGE plpgsql AS $$ BEGIN CALL tenant_guard.begin_support_session(t); END $$;
SELECT pg_temp.begin_in_function(:'tok_probe');
SELECT * FROM pg_temp.grant_state('probe');

-- 6. A procedure of the agent that redeems and then fails: the redemption
-- was committed (and recorded) before the procedure could undo it
CREATE PROCEDURE pg_temp.redeem_and_fail(t text)
LANGUAGE plpgsql AS $$
BEGIN
    CALL tenant_guard.begin_support_session(t);
    RAISE EXCEPTION 'undo the redemption';
END
$$;
CALL pg_temp.redeem_and_fail(:'tok_probe');
SELECT * FROM pg_temp.grant_state('probe');
CALL tenant_guard.begin_support_session(:'tok_probe');
SELECT * FROM pg_temp.grant_state('probe');
RESET SESSION AUTHORIZATION;

-- 7. lint reports an internal step that was granted back to a role (TG061)
SELECT code, object FROM tenant_guard.lint() WHERE code = 'TG061';
GRANT EXECUTE ON FUNCTION tenant_guard._support_redeem(text) TO tenant_guard_support;
GRANT EXECUTE ON FUNCTION tenant_guard._support_end() TO PUBLIC;
SELECT severity, code, object, message, hint FROM tenant_guard.lint() WHERE code = 'TG061' ORDER BY object;
REVOKE EXECUTE ON FUNCTION tenant_guard._support_redeem(text) FROM tenant_guard_support;
REVOKE EXECUTE ON FUNCTION tenant_guard._support_end() FROM PUBLIC;
SELECT code, object FROM tenant_guard.lint() WHERE code = 'TG061';

DROP OWNED BY regress_supx_agent;
DROP EXTENSION dblink;
DROP SCHEMA supx CASCADE;
DROP ROLE regress_supx_owner, regress_supx_app, regress_supx_platform, regress_supx_agent;
