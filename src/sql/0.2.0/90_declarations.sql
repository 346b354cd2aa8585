-----------------------------------------------------------------------------
-- Declarations the frozen 0.1.0 script left to PostgreSQL's defaults.
-- Every function states its volatility and parallel safety (sql/install.sql
-- checks the install scripts for it); for the functions 0.1.0 created and
-- 0.2.0 does not redefine, this is where they are stated. The values are the
-- defaults they had, chosen, not inherited: each of these writes (policies,
-- registries, grants) or raises from an event trigger, so VOLATILE and
-- PARALLEL UNSAFE; _check_protectable only reads the catalog.
-----------------------------------------------------------------------------

ALTER FUNCTION tenant_guard._check_protectable(regclass, name) STABLE PARALLEL SAFE;
ALTER FUNCTION tenant_guard._apply_policies(regclass, name, text, regclass) VOLATILE PARALLEL UNSAFE;
ALTER FUNCTION tenant_guard._put_policy(regclass, name, boolean, text, text, text) VOLATILE PARALLEL UNSAFE;
ALTER FUNCTION tenant_guard._protect_descendants(regclass) VOLATILE PARALLEL UNSAFE;
ALTER FUNCTION tenant_guard._registry_acl(regclass, text) VOLATILE PARALLEL UNSAFE;
ALTER FUNCTION tenant_guard._refuse_unsafe_ddl(regclass, text) VOLATILE PARALLEL UNSAFE;
ALTER FUNCTION tenant_guard._on_ddl_command_end() VOLATILE PARALLEL UNSAFE;
ALTER FUNCTION tenant_guard._on_sql_drop() VOLATILE PARALLEL UNSAFE;
ALTER FUNCTION tenant_guard.protect(regclass, name) VOLATILE PARALLEL UNSAFE;
ALTER FUNCTION tenant_guard.protect_schema(name, name) VOLATILE PARALLEL UNSAFE;
ALTER FUNCTION tenant_guard.allow(regclass, text, text[], name, text) VOLATILE PARALLEL UNSAFE;
ALTER FUNCTION tenant_guard.disallow(regclass, text, text[]) VOLATILE PARALLEL UNSAFE;
ALTER FUNCTION tenant_guard.exempt(regclass, text) VOLATILE PARALLEL UNSAFE;
ALTER FUNCTION tenant_guard.guard_schema(name, name) VOLATILE PARALLEL UNSAFE;
ALTER FUNCTION tenant_guard.unguard_schema(name) VOLATILE PARALLEL UNSAFE;
