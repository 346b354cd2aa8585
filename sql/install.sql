-- Installation: the schema belongs to the extension, every object is
-- declared as intended, internal functions are not for PUBLIC, and an old
-- server minor version is warned about.

-- the version check (the DO block in the install script uses this function)
SELECT v, tenant_guard._server_version_warning(v) AS warning
FROM (VALUES (150018), (150019), (150020), (150100), (140012), (160004), (170012), (180004), (180006), (180100)) t(v);
SELECT tenant_guard._server_version_warning(current_setting('server_version_num')::int) IS NULL AS this_server_ok;

-- what the extension owns
SELECT pg_describe_object(classid, objid, 0) AS object
FROM pg_depend
WHERE refclassid = 'pg_extension'::regclass
  AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'tenant_guard')
  AND deptype = 'e'
  -- a table's or view's row type and its array type follow the relation
  -- (18 lists them as extension members too, 15 does not)
  AND NOT (classid = 'pg_type'::regclass AND objid IN (
      SELECT t.oid FROM pg_type t JOIN pg_class c ON c.oid = t.typrelid WHERE c.relkind <> 'c'
      UNION ALL
      SELECT a.oid FROM pg_type a JOIN pg_type t ON t.oid = a.typelem JOIN pg_class c ON c.oid = t.typrelid
      WHERE c.relkind <> 'c' AND t.typarray = a.oid))
ORDER BY 1;

-- declarations: volatility, strictness, parallel safety, security definer
SELECT p.oid::regprocedure AS function, provolatile AS vol, proisstrict AS strict,
       proparallel AS par, prosecdef AS secdef
FROM pg_proc p WHERE pronamespace = 'tenant_guard'::regnamespace ORDER BY p.oid::regprocedure::text;

-- privileges of an ordinary role
CREATE ROLE regress_install_app;
SELECT p.oid::regprocedure AS function,
       has_function_privilege('regress_install_app', p.oid, 'EXECUTE') AS can_execute
FROM pg_proc p WHERE pronamespace = 'tenant_guard'::regnamespace ORDER BY p.oid::regprocedure::text;
SELECT has_schema_privilege('regress_install_app', 'tenant_guard', 'USAGE') AS usage,
       has_schema_privilege('regress_install_app', 'tenant_guard', 'CREATE') AS can_create;
DROP ROLE regress_install_app;

-- a pre-existing schema of that name makes the install fail, so nobody can
-- plant objects in the extension's schema beforehand
DROP EXTENSION tenant_guard;
CREATE SCHEMA tenant_guard;
-- terse: 18 adds the install script's line as context
\set VERBOSITY terse
CREATE EXTENSION tenant_guard;
\set VERBOSITY default
DROP SCHEMA tenant_guard;
CREATE EXTENSION tenant_guard;
SELECT extversion FROM pg_extension WHERE extname = 'tenant_guard';
-- the released 0.1.0 script installs on its own and updates to the current version
DROP EXTENSION tenant_guard;
CREATE EXTENSION tenant_guard VERSION '0.1.0';
SELECT extversion FROM pg_extension WHERE extname = 'tenant_guard';
-- the 0.2.0 library serves a 0.1.0 database: the runtime guards find no
-- application-role registry there and stay out of the way (no error)
CREATE ROLE regress_install_old LOGIN;
CREATE TABLE install_old (org_id uuid NOT NULL, id int);
ALTER TABLE install_old ENABLE ROW LEVEL SECURITY;
GRANT ALL ON install_old TO regress_install_old;
SET ROLE regress_install_old;
TRUNCATE install_old;
RESET ROLE;
ALTER EXTENSION tenant_guard UPDATE;
-- after the update the guards apply (no role registered: every login role counts)
SET ROLE regress_install_old;
TRUNCATE install_old;
RESET ROLE;
DROP TABLE install_old;
DROP ROLE regress_install_old;
SELECT extversion FROM pg_extension WHERE extname = 'tenant_guard';
SELECT target FROM pg_extension_update_paths('tenant_guard') WHERE source = '0.1.0' AND path IS NOT NULL
  AND target = (SELECT default_version FROM pg_available_extensions WHERE name = 'tenant_guard');
-- relocation is refused
CREATE SCHEMA elsewhere;
ALTER EXTENSION tenant_guard SET SCHEMA elsewhere;
DROP SCHEMA elsewhere;
