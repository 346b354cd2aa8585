-----------------------------------------------------------------------------
-- Support sessions (docs/support-access.md)
--
-- A platform-support member issues a single-use grant for one tenant; the
-- agent redeems it with CALL tenant_guard.begin_support_session(token), which
-- commits the redemption (and its audit event) and then establishes a
-- session-scoped context for that tenant with the in-tenant role
-- tenant_guard.support_role and the agent as impersonator. The context dies
-- at expires_at, at end_support_session(), or at the first statement after a
-- tenant admin's revoke_support_sessions().
-----------------------------------------------------------------------------

-- The platform-support group role. Roles are cluster-wide: created only when
-- missing, never dropped by DROP EXTENSION (see docs/support-access.md).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'tenant_guard_support') THEN
        -- roles are cluster-wide: CREATE EXTENSION running in two databases at
        -- once can both get here; the loser finds the role made by the other
        BEGIN
            CREATE ROLE tenant_guard_support NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
END
$$;

CREATE TABLE tenant_guard.support_grants (
    id            uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
    org_id        uuid NOT NULL,
    agent         text NOT NULL,
    reason        text NOT NULL,
    token_hash    bytea NOT NULL UNIQUE,      -- SHA-256 of the token; the token itself is never stored
    issued_by     text NOT NULL,              -- session_user of the issuer
    issued_at     timestamptz NOT NULL,
    redeem_by     timestamptz NOT NULL,       -- issued_at + redeem_within
    session_ttl   interval NOT NULL,
    redeemed_at   timestamptz,
    redeemed_by   text,                       -- session_user of the redeemer
    expires_at    timestamptz,                -- redeemed_at + session_ttl
    ended_at      timestamptz,
    revoked_at    timestamptz,
    revoked_by    text,                       -- the tenant admin's user id
    expiry_logged boolean NOT NULL DEFAULT false,
    CHECK ((redeemed_at IS NULL) = (expires_at IS NULL))
);
CREATE INDEX support_grants_org_idx ON tenant_guard.support_grants (org_id, issued_at);
REVOKE ALL ON tenant_guard.support_grants FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('tenant_guard.support_grants', '');
COMMENT ON TABLE tenant_guard.support_grants IS
    'Support grants and sessions (token hashes only); read through tenant_guard.support_sessions.';

-- Internal (support_fmgr.cpp).
CREATE FUNCTION tenant_guard._support_stage(grant_id uuid, org uuid, agent text, expires_at timestamptz)
RETURNS void AS 'MODULE_PATHNAME', 'tg__support_stage' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION tenant_guard._support_stage(uuid, uuid, text, timestamptz) IS
    'Internal: remembers a redemption in this backend until its transaction commits.';
CREATE FUNCTION tenant_guard._support_active_grant()
RETURNS uuid AS 'MODULE_PATHNAME', 'tg__support_active_grant' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION tenant_guard._support_active_grant() IS
    'Internal: the grant id of this backend''s live support session, or NULL.';
CREATE FUNCTION tenant_guard._support_end()
RETURNS uuid AS 'MODULE_PATHNAME', 'tg__support_end' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION tenant_guard._support_end() IS
    'Internal: clears this backend''s support context; returns its grant id, or NULL.';
CREATE FUNCTION tenant_guard._support_check_toplevel()
RETURNS void AS 'MODULE_PATHNAME', 'tg__support_check_toplevel' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION tenant_guard._support_check_toplevel() IS
    'Internal: refuses to run inside a transaction block.';
-- Owner only: every step of a redemption runs inside begin_support_session
-- (a C procedure) or the SECURITY DEFINER functions, never on its own, so no
-- caller can observe a step before the redemption is committed.
REVOKE ALL ON FUNCTION tenant_guard._support_stage(uuid, uuid, text, timestamptz),
    tenant_guard._support_active_grant(), tenant_guard._support_end(), tenant_guard._support_check_toplevel()
    FROM PUBLIC;

-- Records the expiry of sessions and of grants never redeemed, once each.
CREATE FUNCTION tenant_guard.log_support_expiries()
RETURNS integer
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    g record;
    n integer := 0;
BEGIN
    FOR g IN
        UPDATE tenant_guard.support_grants SET expiry_logged = true
         WHERE NOT expiry_logged AND revoked_at IS NULL AND ended_at IS NULL
           AND ((redeemed_at IS NOT NULL AND expires_at <= pg_catalog.clock_timestamp())
                OR (redeemed_at IS NULL AND redeem_by <= pg_catalog.clock_timestamp()))
        RETURNING *
    LOOP
        PERFORM tenant_guard._audit_write_event(g.org_id::text,
            CASE WHEN g.redeemed_at IS NULL THEN 'platform.support_grant_expired'
                 ELSE 'platform.support_session_expired' END,
            pg_catalog.jsonb_build_object('grant', g.id, 'agent', g.agent,
                'expired_at', COALESCE(g.expires_at, g.redeem_by)));
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION tenant_guard.log_support_expiries() IS
    'Writes platform.support_session_expired / support_grant_expired events for support sessions and grants that ran out; returns how many.';
REVOKE ALL ON FUNCTION tenant_guard.log_support_expiries() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenant_guard.log_support_expiries() TO tenant_guard_support;

CREATE FUNCTION tenant_guard.issue_support_grant(org uuid, agent text, reason text,
    redeem_within interval DEFAULT '5 minutes', session_ttl interval DEFAULT '30 minutes')
RETURNS text
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    token text;
    gid uuid;
    issued timestamptz := pg_catalog.clock_timestamp();
BEGIN
    IF org IS NULL THEN
        RAISE EXCEPTION 'invalid support grant: org must not be NULL' USING ERRCODE = '22023';
    END IF;
    agent := pg_catalog.btrim(agent);
    reason := pg_catalog.btrim(reason);
    IF agent IS NULL OR agent = '' OR pg_catalog.length(agent) > 200 OR agent ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'invalid support grant: agent must be 1 to 200 printable characters'
            USING ERRCODE = '22023', HINT = 'Name the support agent, e.g. their staff e-mail address.';
    END IF;
    IF reason IS NULL OR reason = '' OR pg_catalog.length(reason) > 2000 THEN
        RAISE EXCEPTION 'invalid support grant: reason must be 1 to 2000 characters'
            USING ERRCODE = '22023', HINT = 'Give the ticket and why access is needed.';
    END IF;
    IF redeem_within IS NULL OR redeem_within < interval '1 second' OR redeem_within > interval '1 hour' THEN
        RAISE EXCEPTION 'invalid support grant: redeem_within must be between 1 second and 1 hour'
            USING ERRCODE = '22023';
    END IF;
    IF session_ttl IS NULL OR session_ttl < interval '1 second' OR session_ttl > interval '8 hours' THEN
        RAISE EXCEPTION 'invalid support grant: session_ttl must be between 1 second and 8 hours'
            USING ERRCODE = '22023';
    END IF;
    PERFORM tenant_guard.log_support_expiries();
    token := tenant_guard.random_token(32);
    INSERT INTO tenant_guard.support_grants (org_id, agent, reason, token_hash, issued_by, issued_at, redeem_by,
                                             session_ttl)
    VALUES (org, agent, reason, tenant_guard.hash_token(token), session_user, issued, issued + redeem_within,
            session_ttl)
    RETURNING id INTO gid;
    PERFORM tenant_guard._audit_write_event(org::text, 'platform.support_grant_issued',
        pg_catalog.jsonb_build_object('grant', gid, 'agent', agent, 'reason', reason, 'issued_by', session_user,
            'redeem_by', issued + redeem_within, 'session_ttl', session_ttl::text));
    RETURN token;
END
$$;
COMMENT ON FUNCTION tenant_guard.issue_support_grant(uuid, text, text, interval, interval) IS
    'Issues a single-use support grant for a tenant; returns the token (shown once, only its SHA-256 is stored).';
REVOKE ALL ON FUNCTION tenant_guard.issue_support_grant(uuid, text, text, interval, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenant_guard.issue_support_grant(uuid, text, text, interval, interval)
    TO tenant_guard_support;

-- Redeems a token at most once; audits the redemption or the refusal. Called
-- only by begin_support_session (as this function's owner), which commits
-- before it raises or activates. Not executable by anyone else: called inside
-- an expression that then fails, it would tell whether a token is valid and
-- roll back both the redemption and its audit event.
CREATE FUNCTION tenant_guard._support_redeem(token text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    h bytea;
    g tenant_guard.support_grants;
    prev tenant_guard.support_grants;
    now_ts timestamptz := pg_catalog.clock_timestamp();
BEGIN
    PERFORM tenant_guard._support_check_toplevel();
    PERFORM tenant_guard.log_support_expiries();
    IF token IS NOT NULL AND pg_catalog.length(token) BETWEEN 1 AND 1000 THEN
        h := tenant_guard.hash_token(token);
    END IF;
    -- Atomic: a concurrent redemption of the same row waits, re-checks
    -- redeemed_at and finds nothing.
    UPDATE tenant_guard.support_grants
       SET redeemed_at = now_ts, redeemed_by = session_user, expires_at = now_ts + session_ttl
     WHERE token_hash = h AND redeemed_at IS NULL AND revoked_at IS NULL AND redeem_by > now_ts
    RETURNING * INTO g;
    IF FOUND THEN
        -- A live session of this connection is replaced: record its end.
        UPDATE tenant_guard.support_grants p SET ended_at = now_ts
         WHERE p.id = tenant_guard._support_active_grant() AND p.ended_at IS NULL AND p.revoked_at IS NULL
        RETURNING * INTO prev;
        IF FOUND THEN
            PERFORM tenant_guard._audit_write_event(prev.org_id::text, 'platform.support_session_ended',
                pg_catalog.jsonb_build_object('grant', prev.id, 'agent', prev.agent, 'ended_by', session_user,
                    'why', 'replaced by a new support session'));
        END IF;
        PERFORM tenant_guard._support_stage(g.id, g.org_id, g.agent, g.expires_at);
        PERFORM tenant_guard._audit_write_event(g.org_id::text, 'platform.impersonate_tenant',
            pg_catalog.jsonb_build_object('grant', g.id, 'agent', g.agent, 'reason', g.reason,
                'issued_by', g.issued_by, 'redeemed_by', session_user, 'expires_at', g.expires_at));
        RETURN true;
    END IF;
    SELECT * INTO g FROM tenant_guard.support_grants WHERE token_hash = h;
    IF FOUND THEN
        PERFORM tenant_guard._audit_write_event(g.org_id::text, 'platform.support_session_refused',
            pg_catalog.jsonb_build_object('grant', g.id, 'agent', g.agent, 'redeemed_by', session_user,
                'why', CASE WHEN g.revoked_at IS NOT NULL THEN 'revoked'
                            WHEN g.redeemed_at IS NOT NULL THEN 'already redeemed'
                            ELSE 'redeem window passed' END));
    ELSE
        PERFORM tenant_guard._audit_write_event(NULL, 'platform.support_session_refused',
            pg_catalog.jsonb_build_object('redeemed_by', session_user, 'why', 'unknown token'));
    END IF;
    RETURN false;
END
$$;
COMMENT ON FUNCTION tenant_guard._support_redeem(text) IS
    'Internal: redeems a support token at most once and audits the redemption or the refusal.';
REVOKE ALL ON FUNCTION tenant_guard._support_redeem(text) FROM PUBLIC;

-- A procedure in C (src/pg/support_fmgr.cpp): it runs _support_redeem() as
-- that function's owner and COMMITs the redemption (or the audited refusal)
-- before it raises or establishes the context; nothing the caller controls
-- runs in between. Not SECURITY DEFINER and no SET clause (either would forbid
-- COMMIT); refused in an atomic context (a transaction block, a function, an
-- exception block) before anything is redeemed.
CREATE PROCEDURE tenant_guard.begin_support_session(token text)
AS 'MODULE_PATHNAME', 'tg_begin_support_session'
LANGUAGE C;
COMMENT ON PROCEDURE tenant_guard.begin_support_session(text) IS
    'Redeems a support token (once) and starts a support context for its tenant in this session until it expires, ends or is revoked.';
REVOKE ALL ON PROCEDURE tenant_guard.begin_support_session(text) FROM PUBLIC;
GRANT EXECUTE ON PROCEDURE tenant_guard.begin_support_session(text) TO tenant_guard_support;

CREATE FUNCTION tenant_guard.end_support_session()
RETURNS boolean
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    gid uuid := tenant_guard._support_active_grant();
    g tenant_guard.support_grants;
BEGIN
    IF gid IS NULL THEN
        RETURN false;
    END IF;
    UPDATE tenant_guard.support_grants SET ended_at = pg_catalog.clock_timestamp()
     WHERE id = gid AND ended_at IS NULL AND revoked_at IS NULL
    RETURNING * INTO g;
    IF FOUND THEN
        -- Written while the context still names the agent.
        PERFORM tenant_guard._audit_write_event(g.org_id::text, 'platform.support_session_ended',
            pg_catalog.jsonb_build_object('grant', g.id, 'agent', g.agent, 'ended_by', session_user));
    END IF;
    PERFORM tenant_guard._support_end();
    RETURN true;
END
$$;
COMMENT ON FUNCTION tenant_guard.end_support_session() IS
    'Ends this session''s support context early; false when none is active.';
REVOKE ALL ON FUNCTION tenant_guard.end_support_session() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenant_guard.end_support_session() TO PUBLIC;

CREATE FUNCTION tenant_guard.revoke_support_sessions()
RETURNS integer
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    org uuid := tenant_guard.current_user_org_id();
    g tenant_guard.support_grants;
    now_ts timestamptz := pg_catalog.clock_timestamp();
    n integer := 0;
BEGIN
    IF org IS NULL OR NOT tenant_guard.has_role('admin') OR tenant_guard._support_active_grant() IS NOT NULL THEN
        RAISE EXCEPTION 'only a tenant admin can revoke support sessions'
            USING ERRCODE = '42501',
                  DETAIL = 'The current tenant context has no organization or its role is not admin.',
                  HINT = 'Call it in the tenant''s own context with the in-tenant role admin.';
    END IF;
    FOR g IN
        UPDATE tenant_guard.support_grants
           SET revoked_at = now_ts, revoked_by = tenant_guard.current_user_id()
         WHERE org_id = org AND revoked_at IS NULL AND ended_at IS NULL
           AND ((redeemed_at IS NULL AND redeem_by > now_ts) OR expires_at > now_ts)
        RETURNING *
    LOOP
        PERFORM tenant_guard._audit_write_event(org::text, 'platform.support_grant_revoked',
            pg_catalog.jsonb_build_object('grant', g.id, 'agent', g.agent,
                'was', CASE WHEN g.redeemed_at IS NULL THEN 'unredeemed grant' ELSE 'active session' END));
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION tenant_guard.revoke_support_sessions() IS
    'Tenant admin: revokes every open support grant and active support session of the current tenant; returns how many.';
REVOKE ALL ON FUNCTION tenant_guard.revoke_support_sessions() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenant_guard.revoke_support_sessions() TO PUBLIC;

-- The tenant wall: only the current tenant's rows, only for its admins.
CREATE VIEW tenant_guard.support_sessions WITH (security_barrier) AS
SELECT g.id AS grant_id, g.org_id, g.agent, g.reason, g.issued_by, g.issued_at, g.redeem_by, g.session_ttl,
       g.redeemed_at, g.redeemed_by, g.expires_at, g.ended_at, g.revoked_at, g.revoked_by,
       CASE WHEN g.revoked_at IS NOT NULL THEN 'revoked'
            WHEN g.ended_at IS NOT NULL THEN 'ended'
            WHEN g.redeemed_at IS NULL AND g.redeem_by <= pg_catalog.statement_timestamp() THEN 'lapsed'
            WHEN g.redeemed_at IS NULL THEN 'issued'
            WHEN g.expires_at <= pg_catalog.statement_timestamp() THEN 'expired'
            ELSE 'active' END AS status
  FROM tenant_guard.support_grants g
 WHERE g.org_id = tenant_guard.current_user_org_id()
   AND tenant_guard.has_role('admin');
COMMENT ON VIEW tenant_guard.support_sessions IS
    'Support grants and sessions of the current tenant, for its admins (no token hashes).';
REVOKE ALL ON tenant_guard.support_sessions FROM PUBLIC;
GRANT SELECT ON tenant_guard.support_sessions TO PUBLIC;
