/*
 * tenant_guard 0.1.0: the foundation and the tenant context.
 *
 * Adds the tenant_guard schema and the tenant context functions:
 * current_user_org_id, current_user_id, current_user_role, has_role,
 * current_scopes, set_context, clear_context. Later versions add their
 * capabilities through upgrade scripts (tenant_guard--0.1.0--0.2.0.sql, ...).
 *
 * Conventions (../shared/STYLE.md): everything schema-qualified, every
 * function declares volatility, strictness and parallel safety, internal
 * functions start with "_" and are revoked from PUBLIC.
 */

\echo Use "CREATE EXTENSION tenant_guard" to load this file. \quit

-- A plain CREATE SCHEMA (no IF NOT EXISTS): if someone pre-created the schema
-- the install fails, so the extension always owns it and nobody else can have
-- planted objects in it.
CREATE SCHEMA tenant_guard;
REVOKE ALL ON SCHEMA tenant_guard FROM PUBLIC;
GRANT USAGE ON SCHEMA tenant_guard TO PUBLIC;

-----------------------------------------------------------------------------
-- Server version check
-----------------------------------------------------------------------------

-- NULL when the server is recent enough, else the warning text. Separate from
-- the DO block below so the regression tests can exercise every branch.
CREATE FUNCTION tenant_guard._server_version_warning(version_num integer)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN version_num / 10000 = 15 AND version_num < 150019 THEN
            pg_catalog.format('PostgreSQL 15.%s is older than 15.19, the first 15.x minor release with the '
                              'row-level security fixes tenant_guard relies on; upgrade to 15.19 or later',
                              version_num % 100)
        WHEN version_num < 150000 THEN
            pg_catalog.format('PostgreSQL %s.%s is not supported by tenant_guard, which needs 15.19 or later',
                              version_num / 10000, version_num % 100)
    END
$$;
REVOKE ALL ON FUNCTION tenant_guard._server_version_warning(integer) FROM PUBLIC;
COMMENT ON FUNCTION tenant_guard._server_version_warning(integer) IS
    'Internal: the warning CREATE EXTENSION raises on a server older than 15.19, or NULL.';

DO $$
DECLARE
    msg text := tenant_guard._server_version_warning(pg_catalog.current_setting('server_version_num')::integer);
BEGIN
    IF msg IS NOT NULL THEN
        RAISE WARNING '%', msg;
    END IF;
END
$$;

-----------------------------------------------------------------------------
-- Tenant context
--
-- The accessors are granted to PUBLIC on purpose: row-level security policies
-- call them with the privileges of whichever role runs the query, and they
-- reveal nothing but the caller's own context. set_context only accepts a
-- token signed with the configured key, and clear_context can only remove a
-- context, so both are safe for every role as well.
-----------------------------------------------------------------------------

-- STABLE, not IMMUTABLE: the answer changes between statements. PARALLEL
-- SAFE: every context source reaches parallel workers through PostgreSQL's
-- setting machinery (sql/context_parallel.sql proves it).
CREATE FUNCTION tenant_guard.current_user_org_id()
RETURNS uuid
AS 'MODULE_PATHNAME', 'tg_current_user_org_id'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION tenant_guard.current_user_org_id() IS
    'Organization (tenant) id of the current context, or NULL when there is no valid one.';

CREATE FUNCTION tenant_guard.current_user_id()
RETURNS text
AS 'MODULE_PATHNAME', 'tg_current_user_id'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION tenant_guard.current_user_id() IS
    'User id of the current context, or NULL.';

CREATE FUNCTION tenant_guard.current_user_role()
RETURNS text
AS 'MODULE_PATHNAME', 'tg_current_user_role'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION tenant_guard.current_user_role() IS
    'In-tenant role of the current context, or NULL (always NULL without an organization).';

-- STRICT: a NULL array gives NULL, which a policy treats as false.
CREATE FUNCTION tenant_guard.has_role(VARIADIC roles text[])
RETURNS boolean
AS 'MODULE_PATHNAME', 'tg_has_role'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tenant_guard.has_role(text[]) IS
    'True when the in-tenant role of the current context is one of the arguments.';

-- Not STRICT: returns an empty array, never NULL, so "x = ANY(...)" is plainly false.
CREATE FUNCTION tenant_guard.current_scopes(kind text)
RETURNS text[]
AS 'MODULE_PATHNAME', 'tg_current_scopes'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION tenant_guard.current_scopes(text) IS
    'Sub-tenant scopes of one kind (e.g. venue ids) carried in the context; empty when absent.';

-- VOLATILE and PARALLEL UNSAFE: it changes session state. Not STRICT: a NULL
-- token is an error, never a silent no-op that would leave an older context
-- in place.
CREATE FUNCTION tenant_guard.set_context(token text, session boolean DEFAULT false)
RETURNS uuid
AS 'MODULE_PATHNAME', 'tg_set_context'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION tenant_guard.set_context(text, boolean) IS
    'Verifies a signed JWT and makes its claims the tenant context for the transaction (or the session).';

CREATE FUNCTION tenant_guard.clear_context()
RETURNS void
AS 'MODULE_PATHNAME', 'tg_clear_context'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION tenant_guard.clear_context() IS
    'Removes the tenant context of every source for the rest of the session.';

-----------------------------------------------------------------------------
-- Internal self-tests of the C++/PostgreSQL error boundary
-----------------------------------------------------------------------------

CREATE FUNCTION tenant_guard._selftest_boundary(kind text)
RETURNS text
AS 'MODULE_PATHNAME', 'tg__selftest_boundary'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION tenant_guard._selftest_boundary(text) FROM PUBLIC;
COMMENT ON FUNCTION tenant_guard._selftest_boundary(text) IS
    'Internal: raises C++ and PostgreSQL errors through the error boundary, for the test suite.';

CREATE FUNCTION tenant_guard._selftest_live_objects()
RETURNS integer
AS 'MODULE_PATHNAME', 'tg__selftest_live_objects'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION tenant_guard._selftest_live_objects() FROM PUBLIC;
COMMENT ON FUNCTION tenant_guard._selftest_live_objects() IS
    'Internal: number of self-test C++ objects still alive (0 unless a destructor was skipped).';
