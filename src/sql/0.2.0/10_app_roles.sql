-----------------------------------------------------------------------------
-- Application roles: the database roles the application connects as (or
-- SETs ROLE to). lint() checks them, harden_app_role() fixes them, and the
-- runtime guards (TRUNCATE, EXPLAIN ANALYZE; src/pg/hooks.cpp) refuse them.
-- With no role registered, every login role that is not a superuser counts.
-----------------------------------------------------------------------------

CREATE TABLE tenant_guard.app_roles (
    role          regrole PRIMARY KEY,
    anonymous     boolean NOT NULL DEFAULT false,
    registered_by name NOT NULL DEFAULT current_user,
    registered_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE tenant_guard.app_roles IS
    'Roles the application runs as; anonymous ones (not signed in) must have no privilege on tenant tables.';
SELECT pg_catalog.pg_extension_config_dump('tenant_guard.app_roles', '');
-- Readable by everyone (lint and the runtime guards read it with the
-- caller's rights); registering needs CREATEROLE-level rights over the role.
SELECT tenant_guard._registry_acl('tenant_guard.app_roles',
    'pg_catalog.pg_has_role(role, ''USAGE'') AND (SELECT r.rolcreaterole OR r.rolsuper FROM pg_catalog.pg_roles r '
    || 'WHERE r.rolname = current_user)');

CREATE FUNCTION tenant_guard.register_app_role(role regrole, anonymous boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF role IS NULL OR anonymous IS NULL THEN
        RAISE EXCEPTION 'role and anonymous must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF (SELECT rolname FROM pg_roles WHERE oid = role) LIKE 'pg\_%' THEN
        RAISE EXCEPTION 'cannot register predefined role %', role USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT (SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user) THEN
        RAISE EXCEPTION 'permission denied to register application role %', role
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'A superuser or a role with CREATEROLE registers application roles.';
    END IF;
    INSERT INTO tenant_guard.app_roles AS a (role, anonymous) VALUES (role, anonymous)
    ON CONFLICT ON CONSTRAINT app_roles_pkey DO UPDATE
        SET anonymous = excluded.anonymous, registered_by = current_user, registered_at = pg_catalog.now();
END
$$;
COMMENT ON FUNCTION tenant_guard.register_app_role(regrole, boolean) IS
    'Registers a role the application runs as, for lint(), harden_app_role() and the runtime guards.';

CREATE FUNCTION tenant_guard.unregister_app_role(role regrole)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM tenant_guard.app_roles a WHERE a.role = unregister_app_role.role;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'role % is not a registered application role', role USING ERRCODE = 'undefined_object';
    END IF;
END
$$;
COMMENT ON FUNCTION tenant_guard.unregister_app_role(regrole) IS 'Removes a role from the application roles.';

-- The application roles in effect: the registered ones, or, with none
-- registered, every login role that is not a superuser (predefined roles
-- excluded). Public: it only names roles, which pg_roles shows anyway.
-- src/pg/hooks.cpp applies the same rule in one query (keep them in step).
CREATE FUNCTION tenant_guard.app_roles_in_effect()
RETURNS TABLE (role regrole, anonymous boolean, registered boolean)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT a.role, a.anonymous, true FROM tenant_guard.app_roles a
    WHERE EXISTS (SELECT 1 FROM pg_roles r WHERE r.oid = a.role)
    UNION ALL
    SELECT r.oid::regrole, r.rolname IN ('anon', 'anonymous'), false FROM pg_roles r
    WHERE NOT EXISTS (SELECT 1 FROM tenant_guard.app_roles)
      AND r.rolcanlogin AND NOT r.rolsuper AND r.rolname NOT LIKE 'pg\_%'
    ORDER BY 1
$$;
COMMENT ON FUNCTION tenant_guard.app_roles_in_effect() IS
    'The registered application roles or, with none registered, every non-superuser login role.';

GRANT EXECUTE ON FUNCTION tenant_guard.app_roles_in_effect() TO PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard.register_app_role(regrole, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard.unregister_app_role(regrole) FROM PUBLIC;

-- Does this backend run the runtime guards (TRUNCATE and EXPLAIN ANALYZE by
-- application roles)? Only when tenant_guard is in shared_preload_libraries.
CREATE FUNCTION tenant_guard._runtime_guards()
RETURNS boolean
AS 'MODULE_PATHNAME', 'tg__runtime_guards'
LANGUAGE C STABLE PARALLEL SAFE;
GRANT EXECUTE ON FUNCTION tenant_guard._runtime_guards() TO PUBLIC;
