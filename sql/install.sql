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
  -- a table's or view's row type and its array type follow the relation, and
  -- a composite type's array type follows the type (18 lists them as
  -- extension members too, 15 does not)
  AND NOT (classid = 'pg_type'::regclass AND objid IN (
      SELECT t.oid FROM pg_type t JOIN pg_class c ON c.oid = t.typrelid WHERE c.relkind <> 'c'
      UNION ALL
      SELECT a.oid FROM pg_type a JOIN pg_type t ON t.oid = a.typelem WHERE t.typarray = a.oid))
ORDER BY 1;

-- declarations: volatility, strictness, parallel safety, security definer
SELECT p.oid::regprocedure AS function, provolatile AS vol, proisstrict AS strict,
       proparallel AS par, prosecdef AS secdef
FROM pg_proc p WHERE pronamespace = 'tenant_guard'::regnamespace ORDER BY p.oid::regprocedure::text;

-- every function declares its volatility and parallel safety in the install
-- scripts: in the CREATE FUNCTION that last defines it, or in a later ALTER
-- FUNCTION. undeclared(script) lists those that do not, and those whose
-- declaration is not what the catalog holds.
CREATE FUNCTION pg_temp.undeclared(script text)
RETURNS TABLE (name text, problem text)
LANGUAGE plpgsql AS $body$
DECLARE
    line text;
    cur text;            -- the function whose CREATE statement is being read
    head text;
    m text[];
    decl jsonb := '{}';  -- name -> {vol, par}
    kw constant text := '\m(IMMUTABLE|STABLE|VOLATILE)\M';
    pkw constant text := '\mPARALLEL\s+(SAFE|RESTRICTED|UNSAFE)\M';
BEGIN
    FOREACH line IN ARRAY string_to_array(script, E'\n') LOOP
        line := regexp_replace(line, '--.*$', '');
        IF cur IS NULL THEN
            m := regexp_match(line, '^CREATE\s+(OR\s+REPLACE\s+)?FUNCTION\s+tenant_guard\.(\w+)\s*\(', 'i');
            IF m IS NOT NULL THEN
                cur := m[2]; head := '';
            ELSE
                m := regexp_match(line, '^ALTER\s+FUNCTION\s+tenant_guard\.(\w+)\s*\([^)]*\)(.*)$', 'i');
                IF m IS NOT NULL AND decl ? m[1] THEN
                    decl := jsonb_set(decl, ARRAY[m[1]], decl -> m[1]
                        || jsonb_strip_nulls(jsonb_build_object('vol', upper((regexp_match(m[2], kw, 'i'))[1]),
                                                                'par', upper((regexp_match(m[2], pkw, 'i'))[1]))));
                END IF;
                CONTINUE;
            END IF;
        END IF;
        -- the attributes: up to the body (AS $), or the whole statement (C, RETURN)
        IF line ~ '^AS\s+\$' THEN
            line := '';
        ELSE
            head := head || ' ' || line;
            IF line !~ ';\s*$' THEN
                CONTINUE;
            END IF;
        END IF;
        decl := decl || jsonb_build_object(cur, jsonb_strip_nulls(jsonb_build_object(
            'vol', upper((regexp_match(head, kw, 'i'))[1]), 'par', upper((regexp_match(head, pkw, 'i'))[1]))));
        cur := NULL;
    END LOOP;
    RETURN QUERY
    SELECT d.key, CASE WHEN NOT d.value ? 'vol' THEN 'no volatility'
                       WHEN NOT d.value ? 'par' THEN 'no PARALLEL'
                       ELSE 'declared ' || (d.value ->> 'vol') || ' PARALLEL ' || (d.value ->> 'par')
                            || ', catalog says ' || p.provolatile::text || '/' || p.proparallel::text END
    FROM jsonb_each(decl) d
    LEFT JOIN pg_proc p ON p.pronamespace = 'tenant_guard'::regnamespace AND p.proname = d.key
    WHERE NOT (d.value ? 'vol' AND d.value ? 'par')
       OR (p.oid IS NOT NULL AND (left(d.value ->> 'vol', 1) <> upper(p.provolatile::text)
                                  OR left(d.value ->> 'par', 1) <> upper(p.proparallel::text)))
    ORDER BY 1;
END
$body$;
-- it finds a missing volatility, a missing PARALLEL, one left to a later
-- ALTER FUNCTION that never comes, and accepts one the ALTER completes
SELECT * FROM pg_temp.undeclared($s$
CREATE FUNCTION tenant_guard.no_vol(a int) RETURNS int
LANGUAGE sql PARALLEL SAFE
AS $$ SELECT 1 $$;
CREATE OR REPLACE FUNCTION tenant_guard.no_par() RETURNS int
LANGUAGE sql IMMUTABLE -- PARALLEL SAFE in a comment does not count
RETURN 1;
CREATE FUNCTION tenant_guard.c_no_par() RETURNS trigger
AS 'MODULE_PATHNAME', 'tg_x'
LANGUAGE C STABLE;
CREATE FUNCTION tenant_guard.altered() RETURNS int
LANGUAGE sql STABLE
AS $$ SELECT 1 $$;
ALTER FUNCTION tenant_guard.altered() PARALLEL RESTRICTED;
$s$) WHERE name NOT IN (SELECT proname FROM pg_proc WHERE pronamespace = 'tenant_guard'::regnamespace);
-- the install scripts of this server, in update order: no function without
-- its declarations, none declared otherwise than installed
SELECT * FROM pg_temp.undeclared((
    SELECT string_agg(pg_read_file(format('%s/extension/tenant_guard--%s.sql', c.setting, f.name)), E'\n' ORDER BY f.n)
    FROM pg_config c,
         (SELECT 0 AS n, '0.1.0' AS name
          UNION ALL
          SELECT s.n, s.step
          FROM pg_extension_update_paths('tenant_guard') u, pg_extension e,
               LATERAL (SELECT w.n, (string_to_array(u.path, '--'))[w.n] || '--' || (string_to_array(u.path, '--'))[w.n + 1]
                        FROM generate_series(1, cardinality(string_to_array(u.path, '--')) - 1) w(n)) s(n, step)
          WHERE u.source = '0.1.0' AND e.extname = 'tenant_guard' AND u.target = e.extversion) f
    WHERE c.name = 'SHAREDIR'));
SELECT count(*) > 100 AS scripts_read FROM regexp_matches((
    SELECT pg_read_file(format('%s/extension/tenant_guard--0.1.0--%s.sql', setting,
                               (SELECT e.extversion FROM pg_extension e WHERE e.extname = 'tenant_guard'))) FROM pg_config
    WHERE name = 'SHAREDIR'), '\nCREATE (OR REPLACE )?FUNCTION tenant_guard\.', 'g');

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
