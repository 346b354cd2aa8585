-- Support sessions: issue, redeem once, replay/expiry/revocation refused with
-- one message, the support context (tenant wall, ttl even mid-transaction,
-- revocation at the next statement), audit attribution to the agent, the
-- tenant admins' view, refused callers, no token in any error or audit row.
\set SHOW_CONTEXT never
\getenv tokens_file TG_TOKENS_SQL
\i :tokens_file
CREATE ROLE regress_sup_owner;
CREATE ROLE regress_sup_app;
CREATE ROLE regress_sup_platform;
CREATE ROLE regress_sup_agent;
CREATE ROLE regress_sup_outsider;
GRANT tenant_guard_support TO regress_sup_platform, regress_sup_agent;
-- the agent works through the application's table privileges
GRANT regress_sup_app TO regress_sup_agent;
CREATE SCHEMA sup AUTHORIZATION regress_sup_owner;
GRANT USAGE ON SCHEMA sup TO regress_sup_app;
SET tenant_guard.context_source = 'setting';
SET tenant_guard.jwt_secret_file = :'hs_secret_file';
SET tenant_guard.jwt_audience = :'audience';
SET ROLE regress_sup_owner;
CREATE TABLE sup.tickets (org_id uuid NOT NULL, id int, body text, PRIMARY KEY (org_id, id));
SELECT tenant_guard.protect('sup.tickets');
SELECT tenant_guard.enable_audit('sup.tickets');
GRANT SELECT, INSERT, UPDATE, DELETE ON sup.tickets TO regress_sup_app;
RESET ROLE;
INSERT INTO sup.tickets VALUES (:'org_a', 1, 'a1'), (:'org_a', 2, 'a2'), (:'org_b', 3, 'b1');
CREATE FUNCTION pg_temp.last_id() RETURNS bigint LANGUAGE sql AS $$ SELECT coalesce(max(id), 0) FROM tenant_guard.audit_log $$;
SELECT pg_temp.last_id() AS mark \gset

-- refused callers: neither issuing nor redeeming is for PUBLIC
SET SESSION AUTHORIZATION regress_sup_outsider;
SELECT tenant_guard.issue_support_grant(:'org_a', 'agent@platform', 'ticket 1');
CALL tenant_guard.begin_support_session('anything');
SELECT * FROM tenant_guard.support_grants;
SELECT tenant_guard._support_redeem('anything');
SELECT tenant_guard.log_support_expiries();
SELECT tenant_guard.end_support_session() AS nothing_to_end;
RESET SESSION AUTHORIZATION;

-- input validation
SET SESSION AUTHORIZATION regress_sup_platform;
SELECT tenant_guard.issue_support_grant(NULL, 'agent@platform', 'ticket 1');
SELECT tenant_guard.issue_support_grant(:'org_a', '  ', 'ticket 1');
SELECT tenant_guard.issue_support_grant(:'org_a', E'agent\n', 'ticket 1');
SELECT tenant_guard.issue_support_grant(:'org_a', 'agent@platform', '');
SELECT tenant_guard.issue_support_grant(:'org_a', 'agent@platform', 'ticket 1', redeem_within => '0');
SELECT tenant_guard.issue_support_grant(:'org_a', 'agent@platform', 'ticket 1', redeem_within => '2 hours');
SELECT tenant_guard.issue_support_grant(:'org_a', 'agent@platform', 'ticket 1', session_ttl => '9 hours');
SELECT tenant_guard.issue_support_grant(:'org_a', 'agent@platform', 'ticket 1', session_ttl => NULL);
RESET SESSION AUTHORIZATION;
SELECT count(*) AS no_grant_from_bad_input FROM tenant_guard.support_grants;

-- issue: the token is shown once, only its SHA-256 is stored
SET SESSION AUTHORIZATION regress_sup_platform;
SELECT tenant_guard.issue_support_grant(:'org_a', 'agent@platform', 'ticket 42: export fails') AS tok \gset
RESET SESSION AUTHORIZATION;
SELECT length(:'tok') AS token_length,
       (SELECT count(*) FROM tenant_guard.support_grants WHERE token_hash = tenant_guard.hash_token(:'tok')) AS stored_hash,
       (SELECT count(*) FROM tenant_guard.support_grants g WHERE row_to_json(g)::text LIKE '%' || :'tok' || '%') AS stored_plain;
SELECT org_id = :'org_a' AS org_a, agent, reason, issued_by, redeem_by - issued_at AS redeem_within, session_ttl,
       redeemed_at IS NULL AS unredeemed
FROM tenant_guard.support_grants;

-- no standing access: the agent without a session sees no tenant row
SET SESSION AUTHORIZATION regress_sup_agent;
SELECT tenant_guard.current_user_org_id() IS NULL AS no_context, count(*) AS rows_visible FROM sup.tickets;

-- redeem: a support context for tenant A, role support, agent as impersonator
CALL tenant_guard.begin_support_session(:'tok');
SELECT tenant_guard.current_user_org_id() = :'org_a' AS in_a, tenant_guard.current_user_role() AS role,
       tenant_guard.current_user_id() AS user_id, tenant_guard.current_impersonator() AS impersonator;
SELECT id, body FROM sup.tickets ORDER BY id;
-- the plain settings cannot move it to tenant B; B's rows stay invisible and untouchable
SET tenant_guard.org_id = :'org_b';
SELECT tenant_guard.current_user_org_id() = :'org_a' AS still_a, count(*) AS b_rows_visible
FROM sup.tickets WHERE org_id = :'org_b';
UPDATE sup.tickets SET body = 'hacked' WHERE id = 3;
INSERT INTO sup.tickets VALUES (:'org_b', 9, 'planted');
RESET tenant_guard.org_id;
-- changes are attributed to the agent as impersonator
INSERT INTO sup.tickets VALUES (:'org_a', 4, 'added by support');
UPDATE sup.tickets SET body = 'fixed by support' WHERE id = 1;
-- replay in the same session: refused, the running session is unaffected
CALL tenant_guard.begin_support_session(:'tok');
SELECT tenant_guard.current_user_org_id() = :'org_a' AS still_in_a;
-- end it early
SELECT tenant_guard.end_support_session() AS ended;
SELECT tenant_guard.current_user_org_id() IS NULL AS no_context, count(*) AS rows_visible FROM sup.tickets;
SELECT tenant_guard.end_support_session() AS ended_twice;
-- replay after the end
CALL tenant_guard.begin_support_session(:'tok');
-- an unknown token and a NULL token: the same error
CALL tenant_guard.begin_support_session('not-a-token');
CALL tenant_guard.begin_support_session(NULL);
-- inside a transaction block: refused before anything is redeemed
BEGIN;
CALL tenant_guard.begin_support_session('not-a-token');
ROLLBACK;
RESET SESSION AUTHORIZATION;
SELECT action, org = :'org_a' AS org_a, table_name, actor, impersonator, tenant_role, session_role, row_pk, new_row
FROM tenant_guard.audit_trail WHERE id > :mark AND kind = 'row' ORDER BY id, item;

-- a grant whose redeem window passed: the same error
SET SESSION AUTHORIZATION regress_sup_platform;
SELECT tenant_guard.issue_support_grant(:'org_a', 'agent@platform', 'ticket 43', redeem_within => '1 second') AS tok_late \gset
SELECT pg_sleep(1.2);
SET SESSION AUTHORIZATION regress_sup_agent;
CALL tenant_guard.begin_support_session(:'tok_late');
SELECT tenant_guard.current_user_org_id() IS NULL AS no_context;

-- a revoked grant: only a tenant admin of that tenant revokes
SET SESSION AUTHORIZATION regress_sup_platform;
SELECT tenant_guard.issue_support_grant(:'org_a', 'agent@platform', 'ticket 44') AS tok_revoked \gset
SELECT tenant_guard.issue_support_grant(:'org_b', 'agent@platform', 'ticket 45 (tenant B)') AS tok_b \gset
SET SESSION AUTHORIZATION regress_sup_app;
SELECT tenant_guard.revoke_support_sessions();            -- no context
SET tenant_guard.org_id = :'org_a';
SET tenant_guard.role = 'member';
SELECT tenant_guard.revoke_support_sessions();            -- not an admin
SET tenant_guard.role = 'admin';
SELECT tenant_guard.revoke_support_sessions() AS revoked; -- tenant A's open grant only
RESET tenant_guard.org_id;
RESET tenant_guard.role;
SET SESSION AUTHORIZATION regress_sup_agent;
CALL tenant_guard.begin_support_session(:'tok_revoked');
-- tenant B's grant was not revoked by tenant A's admin
CALL tenant_guard.begin_support_session(:'tok_b');
SELECT tenant_guard.current_user_org_id() = :'org_b' AS in_b, count(*) AS rows_visible,
       count(*) FILTER (WHERE org_id = :'org_a') AS a_rows_visible FROM sup.tickets;
-- a second redemption in the same connection replaces (and ends) the first
-- (the grant is issued from this connection while its tenant B session is
-- live, so that event carries the agent as actor)
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION regress_sup_platform;
SELECT tenant_guard.issue_support_grant(:'org_a', 'agent@platform', 'ticket 45b (tenant A)') AS tok_a2 \gset
SET SESSION AUTHORIZATION regress_sup_agent;
CALL tenant_guard.begin_support_session(:'tok_a2');
SELECT tenant_guard.current_user_org_id() = :'org_a' AS now_in_a, count(*) AS rows_visible FROM sup.tickets;
SELECT tenant_guard.end_support_session() AS ended;
RESET SESSION AUTHORIZATION;
SELECT reason, ended_at IS NOT NULL AS ended FROM tenant_guard.support_grants WHERE reason LIKE 'ticket 45%' ORDER BY reason;

-- revocation takes effect at the next statement of a running session
SET SESSION AUTHORIZATION regress_sup_platform;
SELECT tenant_guard.issue_support_grant(:'org_a', 'agent@platform', 'ticket 46') AS tok_live \gset
SET SESSION AUTHORIZATION regress_sup_agent;
CALL tenant_guard.begin_support_session(:'tok_live');
SELECT count(*) AS rows_visible FROM sup.tickets;
-- a support context cannot revoke (its role is support; even as admin it is refused)
SELECT tenant_guard.revoke_support_sessions();
RESET SESSION AUTHORIZATION;
SET tenant_guard.support_role = 'admin';
SET SESSION AUTHORIZATION regress_sup_agent;
SELECT tenant_guard.revoke_support_sessions();
RESET SESSION AUTHORIZATION;
RESET tenant_guard.support_role;
-- tenant A's admin (a signed context of its own, in one transaction of this
-- backend) revokes; the support context comes back after COMMIT...
BEGIN;
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_a')) = :'org_a' AS admin_of_a, tenant_guard.current_user_role();
SELECT tenant_guard.revoke_support_sessions() AS revoked;
SELECT status FROM tenant_guard.support_sessions WHERE reason = 'ticket 46';
COMMIT;
-- ...and is dead at its next statement
SET SESSION AUTHORIZATION regress_sup_agent;
SELECT tenant_guard.current_user_org_id() IS NULL AS no_context, count(*) AS rows_visible FROM sup.tickets;
SELECT tenant_guard.current_user_org_id() IS NULL AS still_no_context;
SELECT tenant_guard.end_support_session() AS nothing_to_end;
RESET SESSION AUTHORIZATION;

-- the ttl: the context dies mid-transaction
SET SESSION AUTHORIZATION regress_sup_platform;
SELECT tenant_guard.issue_support_grant(:'org_a', 'agent@platform', 'ticket 47', session_ttl => '5 seconds') AS tok_ttl \gset
SET SESSION AUTHORIZATION regress_sup_agent;
CALL tenant_guard.begin_support_session(:'tok_ttl');
BEGIN;
SELECT tenant_guard.current_user_org_id() = :'org_a' AS in_a;
SELECT pg_sleep(5.2);
SELECT tenant_guard.current_user_org_id() IS NULL AS expired, count(*) AS rows_visible FROM sup.tickets;
ROLLBACK;
-- a rolled-back transaction does not bring it back; with require_context
-- every read fails closed
SELECT tenant_guard.current_user_org_id() IS NULL AS still_expired;
RESET SESSION AUTHORIZATION;
SET tenant_guard.require_context = on;
SET SESSION AUTHORIZATION regress_sup_agent;
SELECT count(*) FROM sup.tickets;
RESET SESSION AUTHORIZATION;
RESET tenant_guard.require_context;
SELECT tenant_guard.log_support_expiries() AS expiries_logged;
SELECT tenant_guard.log_support_expiries() AS logged_once;

-- nested claim paths: the support context follows the configured paths
SET tenant_guard.org_claim = 'app_metadata.org_id';
SET tenant_guard.role_claim = 'app_metadata.role';
SET SESSION AUTHORIZATION regress_sup_platform;
SELECT tenant_guard.issue_support_grant(:'org_a', 'agent@platform', 'ticket 48') AS tok_nested \gset
SELECT tenant_guard.issue_support_grant(:'org_a', 'agent@platform', 'ticket 49') AS tok_overlap \gset
SET SESSION AUTHORIZATION regress_sup_agent;
CALL tenant_guard.begin_support_session(:'tok_nested');
SELECT tenant_guard.current_user_org_id() = :'org_a' AS in_a, tenant_guard.current_user_role() AS role,
       tenant_guard.current_impersonator() AS impersonator;
SELECT tenant_guard.end_support_session() AS ended;
RESET SESSION AUTHORIZATION;
-- paths that collide cannot hold a support context: refused before the
-- token is redeemed (the grant stays issued), no context
SET tenant_guard.user_claim = 'app_metadata.org_id';
SET SESSION AUTHORIZATION regress_sup_agent;
CALL tenant_guard.begin_support_session(:'tok_overlap');
SELECT tenant_guard.current_user_org_id() IS NULL AS no_context;
RESET SESSION AUTHORIZATION;
RESET tenant_guard.org_claim;
RESET tenant_guard.role_claim;
RESET tenant_guard.user_claim;

-- the view: tenant A's admin sees tenant A's sessions only, no token hashes
SET SESSION AUTHORIZATION regress_sup_app;
SELECT count(*) AS not_admin_sees FROM tenant_guard.support_sessions;
SET tenant_guard.org_id = :'org_a';
SELECT count(*) AS member_sees FROM tenant_guard.support_sessions;
SET tenant_guard.role = 'admin';
SELECT reason, agent, issued_by, redeemed_by, status, redeemed_at IS NOT NULL AS redeemed,
       ended_at IS NOT NULL AS ended, revoked_by
FROM tenant_guard.support_sessions ORDER BY issued_at;
SET tenant_guard.org_id = :'org_b';
SELECT reason, status FROM tenant_guard.support_sessions ORDER BY issued_at;
SELECT count(*) FROM tenant_guard.support_grants;
RESET tenant_guard.org_id;
RESET tenant_guard.role;
RESET SESSION AUTHORIZATION;
SELECT column_name FROM information_schema.columns
WHERE table_schema = 'tenant_guard' AND table_name = 'support_sessions' AND column_name LIKE '%token%';

-- every grant, redemption, refusal, end, expiry and revocation is in the log:
-- the tenant's (or, for an unknown token, the platform's)
SELECT action, org = :'org_a' AS org_a, org = :'org_b' AS org_b, detail->>'agent' AS agent, detail->>'reason' AS reason,
       detail->>'why' AS why, detail->>'was' AS was, actor, impersonator
FROM tenant_guard.audit_log WHERE id > :mark AND kind <> 'seal' AND action LIKE 'platform.%' ORDER BY id;
-- no token in any audit row
SELECT count(*) AS rows_with_a_token FROM tenant_guard.audit_log
WHERE id > :mark AND (row_to_json(audit_log)::text LIKE '%' || :'tok' || '%'
                      OR row_to_json(audit_log)::text LIKE '%' || :'tok_late' || '%'
                      OR row_to_json(audit_log)::text LIKE '%' || :'tok_revoked' || '%'
                      OR row_to_json(audit_log)::text LIKE '%' || :'tok_live' || '%'
                      OR row_to_json(audit_log)::text LIKE '%' || :'tok_ttl' || '%');
-- applications cannot forge platform events
SET SESSION AUTHORIZATION regress_sup_app;
SET tenant_guard.org_id = :'org_a';
SELECT tenant_guard.audit_event('platform.impersonate_tenant', '{"agent": "nobody"}');
RESET tenant_guard.org_id;
RESET SESSION AUTHORIZATION;
SELECT ok, problem FROM tenant_guard.verify_audit(:'org_a');

-- no standing access, checked by lint and the attack grid: the agent's login
-- role, registered and hardened as an application role, lints clean, and
-- attacking tenant B from a tenant A context leaks nothing (the grid runs
-- without any support session); the agent can SET ROLE to the application
-- role, so that one is registered too (else lint reports TG043)
SELECT tenant_guard.register_app_role('regress_sup_agent');
SELECT tenant_guard.register_app_role('regress_sup_app');
SET client_min_messages = warning;
SELECT count(*) > 0 AS hardened FROM tenant_guard.harden_app_role('regress_sup_agent');
SELECT count(*) > 0 AS hardened FROM tenant_guard.harden_app_role('regress_sup_app');
RESET client_min_messages;
SELECT severity, code, object FROM tenant_guard.lint() WHERE object LIKE '%regress_sup%';
SET tenant_guard.context_source = 'signed';
SELECT count(*) FILTER (WHERE outcome = 'blocked') > 20 AS attacks_blocked, count(*) FILTER (WHERE outcome = 'leak') AS leaks
FROM tenant_guard.attack_grid('regress_sup_agent', :'org_a', :'org_b', seed => true);
SELECT tenant_guard.assert_isolated('regress_sup_agent', :'org_a', :'org_b', seed => true);
SET tenant_guard.context_source = 'setting';
DELETE FROM tenant_guard.app_roles WHERE role IN ('regress_sup_agent'::regrole, 'regress_sup_app'::regrole);

DROP SCHEMA sup CASCADE;
DROP ROLE regress_sup_owner, regress_sup_app, regress_sup_platform, regress_sup_agent, regress_sup_outsider;
