
-----------------------------------------------------------------------------
-- DDL event triggers and row_security
-----------------------------------------------------------------------------

-- The DDL event trigger of 0.1.0 reads tenant_guard's registries with the
-- rights of the role running the DDL. They have row-level security (everyone
-- reads them, owners write their rows), and with row_security = off in the
-- session, which pg_dump's output sets, PostgreSQL refuses a query that a
-- policy would affect: every CREATE TABLE and ALTER TABLE of a role that is
-- neither superuser nor the registries' owner failed, a restore of a plain
-- dump by a non-superuser included. The function pins row_security = on,
-- like every tenant_guard function that runs with the caller's rights on its
-- own.
ALTER FUNCTION tenant_guard._on_ddl_command_end() SET row_security = on;
