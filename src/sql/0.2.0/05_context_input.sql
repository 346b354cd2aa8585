-----------------------------------------------------------------------------
-- tenant_guard.context_input: set_context() for a client that cannot send a
-- bind parameter (psql before 16, a shell script). The token goes in as COPY
-- data, which pg_stat_activity, log_statement, the STATEMENT lines of errors
-- and pg_stat_statements never show:
--
--   BEGIN;
--   COPY tenant_guard.context_input (token) FROM STDIN;   -- then one line: the token
--   ... the tenant's statements ...
--   COMMIT;
--
-- Each row calls tenant_guard.set_context(token, coalesce(session, false)),
-- with the same checks, errors and scope. docs/passing-tokens.md.
-----------------------------------------------------------------------------

-- Internal: the INSTEAD OF INSERT trigger of tenant_guard.context_input.
CREATE FUNCTION tenant_guard._context_input()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM tenant_guard.set_context(NEW.token, coalesce(NEW.session, false));
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION tenant_guard._context_input() IS
    'Internal: sets the tenant context from a row COPYed or inserted into tenant_guard.context_input.';
-- A trigger function needs no EXECUTE privilege to fire.
REVOKE ALL ON FUNCTION tenant_guard._context_input() FROM PUBLIC;

CREATE VIEW tenant_guard.context_input AS
    SELECT NULL::text AS token, NULL::boolean AS session WHERE false;
COMMENT ON VIEW tenant_guard.context_input IS
    'COPY a token into it (COPY tenant_guard.context_input (token) FROM STDIN) to call set_context() without '
    'writing the token into the statement text; always empty.';
CREATE TRIGGER context_input INSTEAD OF INSERT ON tenant_guard.context_input
    FOR EACH ROW EXECUTE FUNCTION tenant_guard._context_input();

-- Anyone may call set_context(); this is the same call.
GRANT INSERT ON tenant_guard.context_input TO PUBLIC;
