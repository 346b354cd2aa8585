-----------------------------------------------------------------------------
-- lint(), assert_clean(), harden_app_role(): a DBA's or CI job's audit of
-- tenant isolation, from inside the database. Every rule has a stable code,
-- listed by lint_rules() and documented in docs/lint.md.
-----------------------------------------------------------------------------

CREATE FUNCTION tenant_guard.lint_rules()
RETURNS TABLE (code text, severity text, area text, summary text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    VALUES
    ('TG001', 'error',   'tenant table', 'row-level security is not enabled'),
    ('TG002', 'error',   'tenant table', 'row-level security is not forced, so the owner bypasses it'),
    ('TG003', 'error',   'tenant table', 'no restrictive tenant wall'),
    ('TG004', 'error',   'tenant table', 'the tenant column is nullable'),
    ('TG005', 'warning', 'tenant table', 'no index led by the tenant column'),
    ('TG006', 'warning', 'policy',       'USING without WITH CHECK on a policy that writes'),
    ('TG007', 'error',   'policy',       'a permissive WITH CHECK does not pin the tenant'),
    ('TG008', 'error',   'policy',       'a permissive USING does not pin the tenant'),
    ('TG009', 'error',   'policy',       'the context is compared with IS [NOT] DISTINCT FROM'),
    ('TG010', 'error',   'policy',       'the context is wrapped in COALESCE'),
    ('TG011', 'warning', 'policy',       'a context function is called per row, not in a sub-select'),
    ('TG012', 'warning', 'policy',       'several permissive policies for the same command'),
    ('TG013', 'error',   'policy',       'drift from what protect()/allow() generated'),
    ('TG014', 'error',   'tenant table', 'a partition or inheritance child lacks its own protection'),
    ('TG015', 'error',   'other rights', 'a view without security_invoker whose owner bypasses row-level security'),
    ('TG016', 'info',    'other rights', 'a view over tenant tables without security_invoker'),
    ('TG017', 'error',   'other rights', 'a materialized view over tenant tables is readable by application roles'),
    ('TG018', 'error',   'other rights', 'a SECURITY DEFINER function touches tenant tables'),
    ('TG019', 'error',   'other rights', 'a SECURITY DEFINER function has no pinned search_path'),
    ('TG020', 'error',   'other rights', 'a rule on a tenant table'),
    ('TG021', 'error',   'other rights', 'a foreign-server user mapping for an application role or PUBLIC'),
    ('TG022', 'warning', 'cross-tenant', 'a unique index or constraint without the tenant column'),
    ('TG023', 'error',   'cross-tenant', 'a foreign key between tenant tables without the tenant column'),
    ('TG024', 'info',    'cross-tenant', 'a serial or identity key shared by all tenants'),
    ('TG025', 'error',   'app role',     'an application role is a superuser'),
    ('TG026', 'error',   'app role',     'an application role has BYPASSRLS'),
    ('TG027', 'error',   'app role',     'an application role has REPLICATION'),
    ('TG028', 'error',   'app role',     'an application role owns a tenant table or is a member of its owner'),
    ('TG029', 'error',   'app role',     'an application role has TRUNCATE on a tenant table'),
    ('TG030', 'warning', 'app role',     'an application role has REFERENCES on a tenant table'),
    ('TG031', 'error',   'app role',     'an application role has TRIGGER on a tenant table'),
    ('TG032', 'warning', 'app role',     'an application role can CREATE in a schema'),
    ('TG033', 'error',   'app role',     'an application role is a member of a server-file or program role'),
    ('TG034', 'warning', 'app role',     'an application role can read pg_stat_statements or all statistics'),
    ('TG035', 'error',   'app role',     'PUBLIC or an anonymous role has a privilege on a tenant table'),
    ('TG036', 'warning', 'context',      'the application role can set its own tenant context'),
    ('TG037', 'warning', 'context',      'require_context is off'),
    ('TG038', 'error',   'context',      'a per-role or per-database default for a context setting'),
    ('TG039', 'warning', 'server',       'the server is older than the latest row-level security fix'),
    ('TG040', 'warning', 'server',       'the runtime guards (TRUNCATE, EXPLAIN ANALYZE) are off'),
    ('TG041', 'info',    'app role',     'no application role is registered'),
    ('TG042', 'warning', 'app role',     'an application role can use large objects, which have no tenant isolation'),
    ('TG043', 'warning', 'app role',     'an application role can SET ROLE to a role that is not an application role'),
    ('TG044', 'error',   'tenant table', 'a parent without row-level security above tenant tables'),
    ('TG045', 'warning', 'app role',     'an application role can create temporary objects'),
    ('TG046', 'warning', 'app role',     'the sessions of an application role show their statement text to each other'),
    ('TG047', 'warning', 'server',       'tokens and other bind parameters of an application role reach the server log'),
    ('TG048', 'error',   'context',      'a per-role or per-database setting weakens isolation'),
    ('TG049', 'warning', 'other rights', 'a LEAKPROOF function that is not built in'),
    ('TG050', 'warning', 'context',      'set_context() only warns about a token written into the statement text'),
    -- TG060 .. TG069: lifecycle, support sessions and the migration guardrail
    ('TG060', 'warning', 'tenant table', 'an exempted table has a tenant column'),
    ('TG061', 'error',   'other rights', 'an internal support-session function is executable by a role'),
    ('TG062', 'warning', 'tenant table', 'a registry row names a relation that no longer exists or is temporary'),
    ('TG063', 'error',   'other rights', 'a support agent can set its own tenant context'),
    -- TG070 .. TG079: the shards of protected Citus tables
    ('TG070', 'error',   'citus',        'a shard of a protected table lacks row-level security, FORCE or the shard wall'),
    ('TG071', 'error',   'citus',        'the policies of a shard differ from the coordinator''s'),
    ('TG072', 'warning', 'citus',        'the shards of a protected table could not be checked')
$$;
COMMENT ON FUNCTION tenant_guard.lint_rules() IS
    'Every rule of tenant_guard.lint(): code, highest severity, area and a one-line summary (docs/lint.md).';

-- The tables lint() treats as tenant tables, and why:
--   protected  registered by protect() (partitions and children included)
--   guarded    in a guarded schema, with the schema's tenant column, not exempted
--   heuristic  elsewhere, with a column named like a tenant column in use
--              (a registered or guarded tenant column name, or org_id);
--              findings on these are warnings
CREATE FUNCTION tenant_guard._lint_tenant_tables()
RETURNS TABLE (tbl regclass, tenant_column name, source text)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH sys AS (
        SELECT n.oid FROM pg_namespace n
        WHERE n.nspname IN ('pg_catalog', 'information_schema', 'tenant_guard') OR n.nspname LIKE 'pg\_%'),
    ext AS (
        SELECT d.objid FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.deptype = 'e'),
    reg AS (
        SELECT p.tbl, p.tenant_column, 'protected'::text AS source
        FROM tenant_guard.protected_tables p WHERE EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = p.tbl)),
    guarded AS (
        SELECT c.oid::regclass AS tbl, g.tenant_column, 'guarded'::text AS source
        FROM tenant_guard.guarded_schemas g
        JOIN pg_namespace n ON n.nspname = g.schema_name
        JOIN pg_class c ON c.relnamespace = n.oid AND c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = g.tenant_column AND a.attnum > 0 AND NOT a.attisdropped
        WHERE c.oid NOT IN (SELECT r.tbl FROM reg r)
          AND c.oid NOT IN (SELECT e.tbl FROM tenant_guard.exemptions e)),
    names AS (
        SELECT DISTINCT x.col FROM (
            SELECT p.tenant_column AS col FROM tenant_guard.protected_tables p
            UNION SELECT g.tenant_column FROM tenant_guard.guarded_schemas g
            UNION SELECT 'org_id'::name) x),
    heuristic AS (
        SELECT DISTINCT ON (c.oid) c.oid::regclass AS tbl, a.attname AS tenant_column, 'heuristic'::text AS source
        FROM pg_class c
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't' AND NOT c.relispartition
          AND a.attname IN (SELECT col FROM names)
          AND c.relnamespace NOT IN (SELECT oid FROM sys)
          AND c.oid NOT IN (SELECT objid FROM ext)
          AND NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid)
          AND c.oid NOT IN (SELECT r.tbl FROM reg r)
          AND c.oid NOT IN (SELECT g.tbl FROM guarded g)
          AND c.oid NOT IN (SELECT e.tbl FROM tenant_guard.exemptions e)
        ORDER BY c.oid, a.attnum)
    SELECT * FROM reg UNION ALL SELECT * FROM guarded UNION ALL SELECT * FROM heuristic
$$;

-- Context function calls in a deparsed policy expression.
CREATE FUNCTION tenant_guard._lint_context_re()
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN '(tenant_guard\.current_user_org_(id|text|bigint)\(\)|current_setting\(|auth\.(jwt|uid)\(\))';

-- Does a deparsed policy expression pin the tenant column to the context?
-- It must compare the column with a context call, in either order, and must
-- not contain an OR (which would let rows through without that comparison).
CREATE FUNCTION tenant_guard._lint_pins_tenant(expr text, col name)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT expr IS NOT NULL
       AND expr !~* '\mOR\M'
       AND (expr ~* ('(^|[^a-z0-9_."])' || regexp_replace(quote_ident(col), '([^a-zA-Z0-9_])', '\\\1', 'g')
                     || '\s*=\s*(\(\s*SELECT\s+)?\(?' || tenant_guard._lint_context_re())
            OR expr ~* (tenant_guard._lint_context_re() || '[^=]*\)\s*=\s*'
                        || regexp_replace(quote_ident(col), '([^a-zA-Z0-9_])', '\\\1', 'g') || '([^a-z0-9_]|$)'))
$$;

-- Would role read every tenant's rows of tbl (superuser, BYPASSRLS, no
-- row-level security, or a member of the owner without FORCE)?
CREATE FUNCTION tenant_guard._lint_bypasses_rls(role oid, tbl regclass)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT r.rolsuper OR r.rolbypassrls OR NOT c.relrowsecurity
           OR (pg_has_role(role, c.relowner, 'MEMBER') AND NOT c.relforcerowsecurity)
    FROM pg_roles r, pg_class c WHERE r.oid = role AND c.oid = tbl
$$;

-- The value a setting takes in the sessions of role in this database: its
-- per-role and per-database defaults (ALTER ROLE ... IN DATABASE ... SET,
-- ALTER ROLE ... SET, ALTER DATABASE ... SET, in PostgreSQL's order of
-- precedence), or else the server's value as this session sees it.
CREATE FUNCTION tenant_guard._lint_role_setting(role oid, setting text)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(
        (SELECT substr(c.cfg, strpos(c.cfg, '=') + 1)
         FROM pg_db_role_setting s JOIN pg_database d ON d.datname = current_database(), unnest(s.setconfig) c(cfg)
         WHERE ((s.setrole = role AND s.setdatabase IN (d.oid, 0)) OR (s.setrole = 0 AND s.setdatabase = d.oid))
           AND lower(split_part(c.cfg, '=', 1)) = lower(setting)
         ORDER BY s.setrole = 0, s.setdatabase = 0
         LIMIT 1),
        current_setting(setting, true))
$$;

-- Per-role and per-database defaults that reach the sessions of application
-- roles in this database: database-wide ones (ALTER DATABASE ... SET) and
-- those of application roles (ALTER ROLE ... [IN DATABASE ...] SET). who and
-- object name them for a message; target for ALTER ... RESET.
CREATE FUNCTION tenant_guard._lint_setting_defaults()
RETURNS TABLE (role oid, database oid, name text, value text, who text, object text, target text)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.setrole, s.setdatabase, lower(split_part(c.cfg, '=', 1)), substr(c.cfg, strpos(c.cfg, '=') + 1),
           CASE WHEN s.setrole = 0 THEN format('database %I', d.datname)
                ELSE format('role %I%s', pg_get_userbyid(s.setrole),
                            CASE WHEN s.setdatabase = 0 THEN '' ELSE format(' in database %I', d.datname) END) END,
           CASE WHEN s.setrole = 0 THEN format('database %s', d.datname) ELSE pg_get_userbyid(s.setrole)::text END,
           CASE WHEN s.setrole = 0 THEN format('DATABASE %I', d.datname)
                ELSE format('ROLE %I%s', pg_get_userbyid(s.setrole),
                            CASE WHEN s.setdatabase = 0 THEN '' ELSE format(' IN DATABASE %I', d.datname) END) END
    FROM pg_db_role_setting s LEFT JOIN pg_database d ON d.oid = s.setdatabase, unnest(s.setconfig) c(cfg)
    WHERE (s.setdatabase = 0 OR d.datname = current_database())
      AND (s.setrole = 0 OR s.setrole IN (SELECT a.role FROM tenant_guard.app_roles_in_effect() a))
$$;

-- An existence oracle on a unique index needs the key already when the key
-- cannot be guessed: every column of idx but the tenant column tc is a uuid
-- whose default draws a random (version 4) uuid. Time-based uuids
-- (uuid_generate_v1(), v1mc), keys the application supplies (whatever their
-- version: a v7 is time-ordered), integers, identities and text keys are
-- guessable or enumerable. NULL for no index.
CREATE FUNCTION tenant_guard._random_key(idx oid, tc name)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT bool_and(a.atttypid = 'uuid'::regtype
                    AND pg_get_expr(d.adbin, d.adrelid) ~ '^(\w+\.)?(gen_random_uuid|uuid_generate_v4)\(\)$')
           AND bool_or(a.attname <> tc)
    FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) k(attnum)
    LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE i.indexrelid = idx AND i.indexprs IS NULL AND (a.attname IS NULL OR a.attname <> tc)
$$;
COMMENT ON FUNCTION tenant_guard._random_key(oid, name) IS
    'Internal: whether a unique index''s key (without the tenant column) is a random uuid drawn by its default, which an existence oracle cannot guess.';

-- Each _lint_*_findings() function returns the findings of some rules as
-- (lowered_to, code, object, message, hint). A finding's severity is its
-- rule's in lint_rules(), lowered to lowered_to when that is set (a finding on a table found
-- only by the heuristic is at most a warning, for example); lint() applies it.

-- TG001 .. TG014: the tenant tables, their policies, partitions and children.
CREATE FUNCTION tenant_guard._lint_table_findings()
RETURNS TABLE (lowered_to text, code text, object text, message text, hint text)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    WITH tt AS (SELECT * FROM tenant_guard._lint_tenant_tables()),
    tts AS (
        SELECT tt.*, c.relrowsecurity AS rls, c.relforcerowsecurity AS force, c.relowner, c.relkind,
               CASE WHEN tt.source = 'heuristic' THEN 'warning' END AS cap
        FROM tt JOIN pg_class c ON c.oid = tt.tbl),
    -- tables whose isolation is carried by policies: tenant tables with RLS
    -- on, and every partition and child of them
    pol AS (
        SELECT tts.tbl, tts.tenant_column, tts.cap, p.polname, p.polpermissive, p.polcmd, p.polroles,
               pg_get_expr(p.polqual, p.polrelid) AS qual, pg_get_expr(p.polwithcheck, p.polrelid) AS wcheck
        FROM tts JOIN pg_policy p ON p.polrelid = tts.tbl),
    walls AS (
        SELECT DISTINCT pol.tbl FROM pol
        WHERE NOT pol.polpermissive AND pol.polcmd = '*' AND pol.polroles = '{0}'
          AND tenant_guard._lint_pins_tenant(pol.qual, pol.tenant_column)
          AND (pol.wcheck IS NULL OR tenant_guard._lint_pins_tenant(pol.wcheck, pol.tenant_column)))
    -- TG001 .. TG005: the tenant tables themselves
    SELECT cap, 'TG001', tbl::text,
           format('tenant table %s does not have row-level security enabled', tbl),
           format('SELECT tenant_guard.protect(%L, %L);', tbl::text, tenant_column)
    FROM tts WHERE NOT rls
    UNION ALL
    SELECT cap, 'TG002', tbl::text,
           format('row-level security on %s is not forced, so its owner sees and writes every tenant''s rows', tbl),
           format('ALTER TABLE %s FORCE ROW LEVEL SECURITY; or SELECT tenant_guard.protect(%L, %L);', tbl, tbl::text, tenant_column)
    FROM tts WHERE rls AND NOT force
    UNION ALL
    SELECT cap, 'TG003', tbl::text,
           format('%s has no restrictive policy for all commands that pins %I to the tenant context', tbl, tenant_column),
           format('SELECT tenant_guard.protect(%L, %L); adds the tg_wall policy.', tbl::text, tenant_column)
    FROM tts WHERE rls AND tbl NOT IN (SELECT walls.tbl FROM walls)
    UNION ALL
    SELECT cap, 'TG004', tbl::text,
           format('tenant column %I of %s is nullable; a row without a tenant belongs to nobody and confuses policies', tenant_column, tbl),
           format('ALTER TABLE %s ALTER COLUMN %I SET NOT NULL;', tbl, tenant_column)
    FROM tts JOIN pg_attribute a ON a.attrelid = tts.tbl AND a.attname = tts.tenant_column
    WHERE NOT a.attnotnull
    UNION ALL
    SELECT cap, 'TG005', tbl::text,
           format('no index of %s starts with tenant column %I, so every tenant-filtered query scans the table', tbl, tenant_column),
           format('CREATE INDEX ON %s (%I);', tbl, tenant_column)
    FROM tts JOIN pg_attribute a ON a.attrelid = tts.tbl AND a.attname = tts.tenant_column
    WHERE NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = tts.tbl AND i.indkey[0] = a.attnum AND i.indpred IS NULL)
    -- TG006 .. TG012: the policies of tenant tables
    UNION ALL
    SELECT cap, 'TG006', format('%I ON %s', polname, tbl),
           format('policy %I on %s has USING but no WITH CHECK; new rows are checked only implicitly by USING', polname, tbl),
           'State WITH CHECK explicitly, with the tenant predicate, so a later change of USING cannot silently open writes.'
    FROM pol WHERE polcmd IN ('*', 'w') AND qual IS NOT NULL AND wcheck IS NULL
    UNION ALL
    SELECT coalesce(cap, CASE WHEN tbl IN (SELECT walls.tbl FROM walls) THEN 'warning' END), 'TG007',
           format('%I ON %s', polname, tbl),
           format('permissive policy %I on %s lets rows be written without pinning %I to the tenant context', polname, tbl, tenant_column),
           format('Add "%I = (SELECT <context function>)" to its WITH CHECK, or let tenant_guard.allow() generate it.', tenant_column)
    FROM pol WHERE polpermissive AND polcmd IN ('*', 'a', 'w')
      AND NOT tenant_guard._lint_pins_tenant(coalesce(wcheck, qual), tenant_column)
    UNION ALL
    SELECT coalesce(cap, CASE WHEN tbl IN (SELECT walls.tbl FROM walls) THEN 'warning' END), 'TG008',
           format('%I ON %s', polname, tbl),
           format('permissive policy %I on %s shows rows without pinning %I to the tenant context', polname, tbl, tenant_column),
           format('Add "%I = (SELECT <context function>)" to its USING, or let tenant_guard.allow() generate it.', tenant_column)
    FROM pol WHERE polpermissive AND polcmd IN ('*', 'r', 'w', 'd')
      AND NOT tenant_guard._lint_pins_tenant(qual, tenant_column)
    UNION ALL
    SELECT cap, 'TG009', format('%I ON %s', polname, tbl),
           format('policy %I on %s compares with IS [NOT] DISTINCT FROM, so a missing (NULL) tenant context matches rows with a NULL tenant', polname, tbl),
           'Compare with "=": NULL = NULL is not true, so no context means no rows.'
    FROM pol WHERE concat_ws(' ', qual, wcheck) ~* 'IS DISTINCT FROM' AND concat_ws(' ', qual, wcheck) ~* tenant_guard._lint_context_re()
    UNION ALL
    SELECT cap, 'TG010', format('%I ON %s', polname, tbl),
           format('policy %I on %s wraps the tenant context in COALESCE, so a missing context falls back to a default tenant', polname, tbl),
           'Remove the COALESCE: a missing context must match no rows.'
    FROM pol WHERE concat_ws(' ', qual, wcheck) ~* ('COALESCE\([^;]*' || tenant_guard._lint_context_re())
    UNION ALL
    SELECT cap, 'TG011', format('%I ON %s', polname, tbl),
           format('policy %I on %s calls a context function once per row instead of once per query', polname, tbl),
           'Wrap the call in a sub-select, e.g. org_id = (SELECT tenant_guard.current_user_org_id()).'
    FROM pol CROSS JOIN LATERAL (
        -- the policy's context calls that are not in the (SELECT ctx) form
        SELECT regexp_replace(concat_ws(' ', qual, wcheck), '\(\s*SELECT\s+' || tenant_guard._lint_context_re(), '',
                              'gi') AS rest) r
    WHERE CASE
              -- with the planner hook (preloaded, context_once_per_query on)
              -- tenant_guard's own accessors written in the policy are planned
              -- once per query in USING (in WITH CHECK they run once per
              -- written row, which the write itself dwarfs); not inside a
              -- sub-select of the policy, nor on a partitioned table, which
              -- the hook leaves per row
              WHEN tenant_guard._runtime_guards()
                   AND current_setting('tenant_guard.context_once_per_query', true) = 'on'
                   AND r.rest !~* '\mSELECT\M'
                   AND (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = pol.tbl) <> 'p'
              THEN regexp_replace(r.rest, 'tenant_guard\.current_user_org_(id|text|bigint)\(\)', '', 'gi')
              ELSE r.rest
          END ~* tenant_guard._lint_context_re()
      -- Citus refuses sub-selects in the policies of its tables: there the
      -- plain form is the only one, and the context is cached per statement
      AND NOT tenant_guard._citus_table(tbl)
    UNION ALL
    SELECT max(cap), 'TG012', tbl::text,
           format('%s has %s permissive policies for %s (%s); they are OR-ed, so the weakest decides',
                  tbl, count(*), cmd, string_agg(quote_ident(polname), ', ' ORDER BY polname)),
           'Merge them into one policy per command, or let tenant_guard.allow() generate them.'
    FROM (SELECT pol.*, c.cmd FROM pol, LATERAL (VALUES ('SELECT', 'r'), ('INSERT', 'a'), ('UPDATE', 'w'), ('DELETE', 'd')) c(cmd, code)
          WHERE pol.polpermissive AND (pol.polcmd = '*' OR pol.polcmd = c.code)
            -- allow()'s role policies are one per in-tenant role by design
            AND pol.polname NOT LIKE 'tg\_allow\_%') x
    GROUP BY tbl, cmd HAVING count(*) > 1
    -- TG013: drift from the generators (policies and default; RLS, FORCE and
    -- NOT NULL have their own rules)
    UNION ALL
    SELECT NULL, 'TG013', v.tbl::text,
           format('%s of %s differs from what tenant_guard generated: expected %s, found %s', v.item, v.tbl, v.expected, v.actual),
           format('SELECT tenant_guard.protect(%L); regenerates it.', v.tbl::text)
    FROM tenant_guard.verify() v
    WHERE v.item LIKE 'policy %' OR v.item LIKE 'default of %' OR v.item LIKE 'type of %'
       OR (v.item LIKE 'tenant column %' AND v.actual = 'missing')
    -- TG014: partitions and children of tenant tables
    UNION ALL
    SELECT NULL, 'TG014', d.child::text,
           format('%s is a %s of tenant table %s but %s', d.child, d.kind, d.root,
                  CASE WHEN NOT c.relrowsecurity THEN 'has no row-level security, so reading it directly shows every tenant'
                       WHEN NOT c.relforcerowsecurity THEN 'does not force row-level security'
                       ELSE 'has no restrictive tenant wall' END),
           format('SELECT tenant_guard.protect(%L, %L);', d.root::text, d.tenant_column)
    FROM (WITH RECURSIVE r(child, root, tenant_column, kind) AS (
              SELECT i.inhrelid::regclass, tts.tbl, tts.tenant_column,
                     CASE WHEN tts.relkind = 'p' THEN 'partition' ELSE 'child' END
              FROM tts JOIN pg_inherits i ON i.inhparent = tts.tbl
              UNION
              SELECT i.inhrelid::regclass, r.root, r.tenant_column, r.kind FROM r JOIN pg_inherits i ON i.inhparent = r.child)
          SELECT * FROM r) d
    JOIN pg_class c ON c.oid = d.child
    WHERE d.child NOT IN (SELECT tts.tbl FROM tts)
      AND (NOT c.relrowsecurity OR NOT c.relforcerowsecurity
           OR NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = d.child AND NOT p.polpermissive AND p.polcmd = '*'
                          AND tenant_guard._lint_pins_tenant(pg_get_expr(p.polqual, p.polrelid), d.tenant_column)));
END
$$;

-- TG015 .. TG017: views and materialized views over tenant tables.
CREATE FUNCTION tenant_guard._lint_view_findings()
RETURNS TABLE (lowered_to text, code text, object text, message text, hint text)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    WITH tt AS (SELECT * FROM tenant_guard._lint_tenant_tables()),
    apps AS (SELECT * FROM tenant_guard.app_roles_in_effect()),
    deps AS (
        WITH RECURSIVE v(view, base) AS (
            SELECT DISTINCT r.ev_class::regclass, d.refobjid::regclass
            FROM pg_rewrite r JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                 AND d.refclassid = 'pg_class'::regclass
            WHERE d.refobjid IN (SELECT tt.tbl FROM tt) AND r.ev_class <> d.refobjid AND r.rulename = '_RETURN'
            UNION
            SELECT r.ev_class::regclass, v.base
            FROM v JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass AND d.refobjid = v.view
                   AND d.classid = 'pg_rewrite'::regclass
                   JOIN pg_rewrite r ON r.oid = d.objid AND r.ev_class <> v.view AND r.rulename = '_RETURN')
        SELECT v.view, v.base, c.relkind, c.relowner,
               coalesce((SELECT o.option_value FROM pg_options_to_table(c.reloptions) o
                         WHERE o.option_name = 'security_invoker'), 'false') IN ('true', 'on', 'yes', '1') AS invoker
        FROM v JOIN pg_class c ON c.oid = v.view)
    SELECT NULL::text, 'TG015', deps.view::text,
           format('view %s runs with the rights of its owner %s, who bypasses row-level security on %s, so it shows every tenant''s rows',
                  deps.view, pg_get_userbyid(deps.relowner), string_agg(deps.base::text, ', ' ORDER BY deps.base::text)),
           format('ALTER VIEW %s SET (security_invoker = true);', deps.view)
    FROM deps WHERE deps.relkind = 'v' AND NOT deps.invoker AND tenant_guard._lint_bypasses_rls(deps.relowner, deps.base)
    GROUP BY deps.view, deps.relowner
    UNION ALL
    SELECT NULL, 'TG016', deps.view::text,
           format('view %s over tenant tables runs with its owner''s rights; policies that test current_user see the owner', deps.view),
           format('ALTER VIEW %s SET (security_invoker = true);', deps.view)
    FROM deps WHERE deps.relkind = 'v' AND NOT deps.invoker
      AND NOT EXISTS (SELECT 1 FROM deps d2 WHERE d2.view = deps.view AND tenant_guard._lint_bypasses_rls(d2.relowner, d2.base))
    GROUP BY deps.view
    UNION ALL
    SELECT NULL, 'TG017', deps.view::text,
           format('materialized view %s stores rows of every tenant of %s and has no row-level security, yet %s can read it',
                  deps.view, min(deps.base::text),
                  (SELECT string_agg(x, ', ' ORDER BY x) FROM (
                       SELECT a.role::text AS x FROM apps a WHERE has_table_privilege(a.role, deps.view, 'SELECT')
                       UNION SELECT 'PUBLIC' WHERE EXISTS (SELECT 1 FROM pg_class c, aclexplode(c.relacl) e
                                                           WHERE c.oid = deps.view AND e.grantee = 0)) s)),
           format('REVOKE ALL ON %s FROM PUBLIC, <application roles>; read it through a security_invoker view or a protected table.', deps.view)
    FROM deps WHERE deps.relkind = 'm'
      AND (EXISTS (SELECT 1 FROM apps a WHERE has_table_privilege(a.role, deps.view, 'SELECT'))
           OR EXISTS (SELECT 1 FROM pg_class c, aclexplode(c.relacl) e WHERE c.oid = deps.view AND e.grantee = 0))
    GROUP BY deps.view;
END
$$;

-- TG018 .. TG021, TG049: functions, rules and user mappings that run with other
-- rights.
CREATE FUNCTION tenant_guard._lint_definer_findings()
RETURNS TABLE (lowered_to text, code text, object text, message text, hint text)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    WITH tt AS (SELECT t.*, c.relname FROM tenant_guard._lint_tenant_tables() t JOIN pg_class c ON c.oid = t.tbl),
    apps AS (SELECT * FROM tenant_guard.app_roles_in_effect()),
    fns AS (
        SELECT p.oid, p.oid::regprocedure AS fn, p.proowner, p.prosrc, p.proconfig
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE p.prosecdef AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'tenant_guard')
          AND n.nspname NOT LIKE 'pg\_%'
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                          AND d.deptype = 'e'))
    SELECT CASE WHEN NOT bool_or(tenant_guard._lint_bypasses_rls(fns.proowner, tt.tbl)) THEN 'warning' END,
           'TG018', fns.fn::text,
           format('SECURITY DEFINER function %s touches tenant table %s with the rights of %s%s', fns.fn,
                  string_agg(tt.tbl::text, ', ' ORDER BY tt.tbl::text), pg_get_userbyid(fns.proowner),
                  CASE WHEN bool_or(tenant_guard._lint_bypasses_rls(fns.proowner, tt.tbl))
                       THEN ', who bypasses row-level security' ELSE '' END),
           format('Make it SECURITY INVOKER, or own it by a role subject to row-level security and filter by the tenant context inside; REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC.', fns.fn)
    FROM fns JOIN tt ON fns.prosrc ~* ('\m' || tt.relname || '\M')
    GROUP BY fns.fn, fns.proowner
    UNION ALL
    SELECT NULL, 'TG019', fns.fn::text,
           format('SECURITY DEFINER function %s does not pin search_path, so a caller can make it run their own objects', fns.fn),
           format('ALTER FUNCTION %s SET search_path = pg_catalog, pg_temp;', fns.fn)
    FROM fns WHERE NOT EXISTS (SELECT 1 FROM unnest(fns.proconfig) s WHERE s LIKE 'search\_path=%')
    UNION ALL
    SELECT NULL, 'TG020', format('%I ON %s', r.rulename, r.ev_class::regclass),
           format('rule %I on tenant table %s rewrites statements before row-level security sees them', r.rulename, r.ev_class::regclass),
           format('DROP RULE %I ON %s; use a trigger instead.', r.rulename, r.ev_class::regclass)
    FROM pg_rewrite r WHERE r.ev_class IN (SELECT tt.tbl FROM tt) AND r.rulename <> '_RETURN'
    UNION ALL
    SELECT NULL, 'TG021', format('user mapping for %s server %I', coalesce(nullif(m.usename, 'public'), 'PUBLIC'), m.srvname),
           format('%s can reach foreign server %I through a stored user mapping, outside tenant isolation',
                  CASE WHEN m.umuser = 0 THEN 'PUBLIC' ELSE m.usename::text END, m.srvname),
           format('DROP USER MAPPING FOR %s SERVER %I;', CASE WHEN m.umuser = 0 THEN 'PUBLIC' ELSE quote_ident(m.usename) END, m.srvname)
    FROM pg_user_mappings m WHERE m.umuser = 0 OR m.umuser IN (SELECT a.role FROM apps a)
    UNION ALL
    -- built-in functions have OIDs below FirstNormalObjectId (16384)
    SELECT NULL, 'TG049', p.oid::regprocedure::text,
           format('function %s is LEAKPROOF: the planner may run it on the rows of every tenant before the row-level security filters, so whatever it reveals about its arguments (an error, a notice, a write, its timing) reaches the caller',
                  p.oid::regprocedure),
           format('ALTER FUNCTION %s NOT LEAKPROOF; (unless it provably reveals nothing about its arguments)', p.oid::regprocedure)
    FROM pg_proc p WHERE p.proleakproof AND p.oid >= 16384;
END
$$;

-- TG022 .. TG024: uniqueness and references across tenants.
CREATE FUNCTION tenant_guard._lint_key_findings()
RETURNS TABLE (lowered_to text, code text, object text, message text, hint text)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    WITH tt AS (
        SELECT t.*, a.attnum AS tenant_attnum, CASE WHEN t.source = 'heuristic' THEN 'warning' END AS cap
        FROM tenant_guard._lint_tenant_tables() t
        JOIN pg_attribute a ON a.attrelid = t.tbl AND a.attname = t.tenant_column)
    SELECT CASE WHEN tenant_guard._random_key(i.indexrelid, tt.tenant_column) THEN 'info' END, 'TG022',
           i.indexrelid::regclass::text,
           CASE WHEN tenant_guard._random_key(i.indexrelid, tt.tenant_column)
                THEN format('unique index %s on %s does not include tenant column %I, but its key is a random uuid drawn by its default: inserting a key another tenant uses fails, which tells only a caller who already has the key that it exists',
                            i.indexrelid::regclass, tt.tbl, tt.tenant_column)
                ELSE format('unique index %s on %s does not include tenant column %I: inserting a key another tenant uses fails, which tells that it exists',
                            i.indexrelid::regclass, tt.tbl, tt.tenant_column) END,
           format('Make the key (%I, ...): e.g. a primary key on (%I, id).', tt.tenant_column, tt.tenant_column)
    FROM tt JOIN pg_index i ON i.indrelid = tt.tbl
    WHERE i.indisunique AND NOT (tt.tenant_attnum = ANY (i.indkey::int2[]))
    UNION ALL
    SELECT src.cap, 'TG023', format('%I ON %s', con.conname, src.tbl),
           format('foreign key %I from %s to %s does not include the tenant column, so a row can reference another tenant''s row (and learn that it exists)',
                  con.conname, src.tbl, dst.tbl),
           format('Reference (%I, ...) from (%I, ...): FOREIGN KEY (%I, <columns>) REFERENCES %s (%I, <columns>).',
                  dst.tenant_column, src.tenant_column, src.tenant_column, dst.tbl, dst.tenant_column)
    FROM pg_constraint con
    JOIN tt src ON src.tbl = con.conrelid
    JOIN tt dst ON dst.tbl = con.confrelid
    WHERE con.contype = 'f'
      AND NOT EXISTS (SELECT 1 FROM generate_subscripts(con.conkey, 1) k
                      WHERE con.conkey[k] = src.tenant_attnum AND con.confkey[k] = dst.tenant_attnum)
    UNION ALL
    SELECT NULL, 'TG024', format('%s.%I', tt.tbl, a.attname),
           format('%s.%I takes values from one sequence shared by all tenants; its values reveal how much other tenants insert',
                  tt.tbl, a.attname),
           'Use random keys (uuid) where the rate of other tenants'' inserts matters, or accept it knowingly.'
    FROM tt JOIN pg_attribute a ON a.attrelid = tt.tbl AND a.attnum > 0 AND NOT a.attisdropped
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attidentity <> '' OR pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%';
END
$$;

-- TG025 .. TG035, TG041 .. TG043, TG045, TG046: application roles.
CREATE FUNCTION tenant_guard._lint_app_role_findings()
RETURNS TABLE (lowered_to text, code text, object text, message text, hint text)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    WITH tt AS (SELECT * FROM tenant_guard._lint_tenant_tables()),
    apps AS (SELECT a.*, r.rolname, r.rolsuper, r.rolbypassrls, r.rolreplication
             FROM tenant_guard.app_roles_in_effect() a JOIN pg_roles r ON r.oid = a.role)
    SELECT NULL::text, 'TG025', apps.rolname::text,
           format('application role %I is a superuser, so row-level security never applies to it', apps.rolname),
           format('ALTER ROLE %I NOSUPERUSER; (give the application its own non-superuser role)', apps.rolname)
    FROM apps WHERE apps.rolsuper
    UNION ALL
    SELECT NULL, 'TG026', apps.rolname::text,
           format('application role %I has BYPASSRLS, so row-level security never applies to it', apps.rolname),
           format('ALTER ROLE %I NOBYPASSRLS;', apps.rolname)
    FROM apps WHERE apps.rolbypassrls AND NOT apps.rolsuper
    UNION ALL
    SELECT NULL, 'TG027', apps.rolname::text,
           format('application role %I has REPLICATION and can stream every tenant''s changes', apps.rolname),
           format('ALTER ROLE %I NOREPLICATION;', apps.rolname)
    FROM apps WHERE apps.rolreplication AND NOT apps.rolsuper
    UNION ALL
    SELECT NULL, 'TG028', apps.rolname::text,
           format('application role %I %s tenant tables %s, so it can disable row-level security or change policies',
                  apps.rolname,
                  CASE WHEN c.relowner = apps.role THEN 'owns' ELSE format('is a member of %I, the owner of', pg_get_userbyid(c.relowner)) END,
                  string_agg(tt.tbl::text, ', ' ORDER BY tt.tbl::text)),
           format('ALTER TABLE ... OWNER TO <a migration role>; or REVOKE %I FROM %I;', pg_get_userbyid(c.relowner), apps.rolname)
    FROM apps, tt JOIN pg_class c ON c.oid = tt.tbl
    WHERE NOT apps.rolsuper AND pg_has_role(apps.role, c.relowner, 'MEMBER')
    GROUP BY apps.rolname, apps.role, c.relowner
    UNION ALL
    SELECT NULL,
           CASE p.priv WHEN 'TRUNCATE' THEN 'TG029' WHEN 'REFERENCES' THEN 'TG030' ELSE 'TG031' END,
           apps.rolname::text,
           format('application role %I has %s on tenant table %s; %s', apps.rolname, p.priv, tt.tbl,
                  CASE p.priv WHEN 'TRUNCATE' THEN 'TRUNCATE ignores row-level security and empties every tenant'
                              WHEN 'REFERENCES' THEN 'a foreign key it creates can probe other tenants'' keys'
                              ELSE 'a trigger it creates runs on other tenants'' writes' END),
           format('REVOKE %s ON %s FROM %I; or SELECT tenant_guard.harden_app_role(%L);', p.priv, tt.tbl, apps.rolname, apps.rolname)
    FROM apps, tt, (VALUES ('TRUNCATE'), ('REFERENCES'), ('TRIGGER')) p(priv)
    WHERE NOT apps.rolsuper AND has_table_privilege(apps.role, tt.tbl, p.priv)
      AND NOT pg_has_role(apps.role, (SELECT c.relowner FROM pg_class c WHERE c.oid = tt.tbl), 'MEMBER')
    UNION ALL
    SELECT NULL, 'TG032', apps.rolname::text,
           format('application role %I can create objects in schema %I (functions, views, tables that shadow yours)', apps.rolname, n.nspname),
           format('REVOKE CREATE ON SCHEMA %I FROM %I;', n.nspname, apps.rolname)
    FROM apps, pg_namespace n
    WHERE NOT apps.rolsuper AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'tenant_guard')
      AND n.nspname NOT LIKE 'pg\_%' AND has_schema_privilege(apps.role, n.oid, 'CREATE')
    UNION ALL
    SELECT NULL, 'TG033', apps.rolname::text,
           format('application role %I is a member of %s and can read, write or run anything the server can', apps.rolname, g.g),
           format('REVOKE %s FROM %I;', g.g, apps.rolname)
    FROM apps, (VALUES ('pg_read_server_files'), ('pg_write_server_files'), ('pg_execute_server_program')) g(g)
    WHERE NOT apps.rolsuper AND pg_has_role(apps.role, g.g, 'MEMBER')
    UNION ALL
    SELECT NULL, 'TG034', apps.rolname::text,
           format('application role %I can read %s, which shows statements run for every tenant', apps.rolname,
                  string_agg(s.what, ', ' ORDER BY s.what)),
           format('SELECT tenant_guard.harden_app_role(%L);', apps.rolname)
    FROM apps, LATERAL (
        SELECT 'the statistics of all sessions (pg_read_all_stats)' AS what WHERE pg_has_role(apps.role, 'pg_read_all_stats', 'MEMBER')
        UNION ALL
        SELECT format('%s', c.oid::regclass) FROM pg_extension e JOIN pg_class c ON c.relnamespace = e.extnamespace
        WHERE e.extname = 'pg_stat_statements' AND c.relname = 'pg_stat_statements'
          AND has_table_privilege(apps.role, c.oid, 'SELECT')
        UNION ALL
        SELECT format('%s', p.oid::regprocedure) FROM pg_extension e JOIN pg_proc p ON p.pronamespace = e.extnamespace
        WHERE e.extname = 'pg_stat_statements' AND p.proname = 'pg_stat_statements'
          AND has_function_privilege(apps.role, p.oid, 'EXECUTE')) s
    WHERE NOT apps.rolsuper
    GROUP BY apps.rolname
    UNION ALL
    SELECT NULL, 'TG035', tt.tbl::text,
           format('%s has %s on tenant table %s', x.who, x.privs, tt.tbl),
           format('REVOKE ALL ON %s FROM %s;', tt.tbl, x.who)
    FROM tt, LATERAL (
        SELECT 'PUBLIC' AS who, string_agg(DISTINCT e.privilege_type, ', ') AS privs
        FROM pg_class c, aclexplode(c.relacl) e WHERE c.oid = tt.tbl AND e.grantee = 0
        HAVING count(*) > 0
        UNION ALL
        SELECT quote_ident(apps.rolname), string_agg(p.priv, ', ' ORDER BY p.priv)
        FROM apps, (VALUES ('SELECT'), ('INSERT'), ('UPDATE'), ('DELETE'), ('TRUNCATE'), ('REFERENCES'), ('TRIGGER')) p(priv)
        WHERE apps.anonymous AND has_table_privilege(apps.role, tt.tbl, p.priv)
        GROUP BY apps.rolname) x
    UNION ALL
    SELECT NULL, 'TG041', 'tenant_guard.app_roles',
           'no application role is registered, so every login role that is not a superuser is checked as one',
           'SELECT tenant_guard.register_app_role(''<the role your application connects as>'');'
    WHERE NOT EXISTS (SELECT 1 FROM tenant_guard.app_roles)
    UNION ALL
    SELECT NULL, 'TG042', apps.rolname::text,
           format('application role %I can use large objects, which belong to no tenant', apps.rolname),
           format('SELECT tenant_guard.harden_app_role(%L);', apps.rolname)
    FROM apps WHERE NOT apps.rolsuper AND has_function_privilege(apps.role, 'pg_catalog.lo_open(oid, integer)', 'EXECUTE')
    UNION ALL
    -- the owners of tenant tables are TG028; predefined roles TG033/TG034
    SELECT NULL, 'TG043', apps.rolname::text,
           format('application role %I can SET ROLE to %s, which lint and the runtime guards do not treat as an application role',
                  apps.rolname, string_agg(quote_ident(r.rolname), ', ' ORDER BY r.rolname)),
           format('SELECT tenant_guard.register_app_role(<role>); for each, or REVOKE <role> FROM %I;', apps.rolname)
    FROM apps, pg_roles r
    WHERE NOT apps.rolsuper AND r.oid <> apps.role AND r.rolname NOT LIKE 'pg\_%'
      AND pg_has_role(apps.role, r.oid, 'MEMBER')
      AND r.oid NOT IN (SELECT a.role FROM apps a)
      AND NOT EXISTS (SELECT 1 FROM tt JOIN pg_class c ON c.oid = tt.tbl WHERE c.relowner = r.oid)
      -- only roles through which tenant data can be reached
      AND (r.rolbypassrls
           OR EXISTS (SELECT 1 FROM tt WHERE has_table_privilege(r.oid, tt.tbl,
                                             'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')))
    GROUP BY apps.rolname
    UNION ALL
    SELECT NULL, 'TG045', apps.rolname::text,
           format('application role %I can create temporary objects in database %I: behind a transaction pooler, a temporary view or function it plants shadows your tables for the next client, whatever its tenant',
                  apps.rolname, current_database()),
           format('SELECT tenant_guard.harden_app_role(%L); (revokes TEMPORARY on this database from PUBLIC and the role)', apps.rolname)
    FROM apps WHERE NOT apps.rolsuper AND has_database_privilege(apps.role, current_database(), 'TEMPORARY')
    UNION ALL
    SELECT NULL, 'TG046', apps.rolname::text,
           format('the sessions of application role %I record their statement text (track_activities), which every other session of the role, whatever its tenant, reads in pg_stat_activity: tokens, claims and literals included',
                  apps.rolname),
           format('SELECT tenant_guard.harden_app_role(%L); (ALTER ROLE %I SET track_activities = off)', apps.rolname, apps.rolname)
    FROM apps
    WHERE NOT apps.rolsuper AND coalesce(tenant_guard._lint_role_setting(apps.role, 'track_activities')::boolean, true);
END
$$;

-- TG044: a parent without row-level security above tenant tables. Reading
-- a parent applies the parent's policies only, so its partitions' and
-- children's rows of every tenant come through it.
CREATE FUNCTION tenant_guard._lint_parent_findings()
RETURNS TABLE (lowered_to text, code text, object text, message text, hint text)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    WITH tt AS (SELECT * FROM tenant_guard._lint_tenant_tables())
    SELECT DISTINCT NULL::text, 'TG044', i.inhparent::regclass::text,
           format('%s has no row-level security but its %s %s %s a tenant table: reading %s shows every tenant''s rows of it',
                  i.inhparent::regclass, CASE WHEN p.relkind = 'p' THEN 'partition' ELSE 'child' END, i.inhrelid::regclass,
                  'is', i.inhparent::regclass),
           format('SELECT tenant_guard.protect(%L, %L); (it covers the partitions and children too)',
                  i.inhparent::regclass::text, tt.tenant_column)
    FROM pg_inherits i
    JOIN tt ON tt.tbl = i.inhrelid
    JOIN pg_class p ON p.oid = i.inhparent
    WHERE NOT p.relrowsecurity
      AND i.inhparent NOT IN (SELECT tt2.tbl FROM tt tt2 WHERE tt2.source <> 'heuristic');
END
$$;

-- TG036 .. TG040, TG047, TG048, TG050: the context settings, the server
-- and the settings of application roles.
CREATE FUNCTION tenant_guard._lint_setting_findings()
RETURNS TABLE (lowered_to text, code text, object text, message text, hint text)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    SELECT NULL::text, 'TG036', 'tenant_guard.context_source',
           format('context_source is %s: an application role, or a SQL injection through it, can set any tenant it likes', current_setting('tenant_guard.context_source', true)),
           'Use context_source = signed and tenant_guard.set_context(<token signed by your auth service>).'
    WHERE current_setting('tenant_guard.context_source', true) IN ('setting', 'claims')
    UNION ALL
    -- the same chosen per role or per database for some sessions only
    SELECT NULL, 'TG036', e.object,
           format('%s sets context_source = %s: its sessions, or a SQL injection through them, can set any tenant they like',
                  e.who, e.value),
           format('ALTER %s RESET tenant_guard.context_source; (or SET it to ''signed'')', e.target)
    FROM tenant_guard._lint_setting_defaults() e
    WHERE e.name = 'tenant_guard.context_source' AND lower(e.value) IN ('setting', 'claims')
    UNION ALL
    SELECT CASE WHEN e.name <> 'session_replication_role' THEN 'warning' END, 'TG048', e.object,
           format('%s sets %s = %s: %s', e.who, e.name, e.value,
                  CASE WHEN e.name = 'session_replication_role'
                           THEN 'ordinary and event triggers do not fire in its sessions (the audit log, foreign keys, the guards on protected tables)'
                       WHEN e.name = 'row_security'
                           THEN 'its statements fail wherever row-level security applies; no application role needs it'
                       WHEN e.name = 'lo_compat_privileges'
                           THEN 'large objects, which belong to no tenant, are read and written without privilege checks'
                       WHEN e.name = 'tenant_guard.require_context'
                           THEN 'a statement without a tenant context silently sees no rows instead of failing'
                       WHEN e.name = 'tenant_guard.literal_token'
                           THEN 'set_context() accepts a token written into the statement text, where other sessions of the role can read it'
                       WHEN e.name LIKE 'tenant\_guard.block\_%'
                           THEN 'a runtime guard is off for its sessions'
                       ELSE 'it changes which tokens and claims count as a tenant context for these sessions' END),
           format('ALTER %s RESET %s;', e.target, e.name)
    FROM tenant_guard._lint_setting_defaults() e
    WHERE (e.name = 'session_replication_role' AND lower(e.value) <> 'origin')
       OR (e.name IN ('row_security', 'tenant_guard.require_context') AND NOT e.value::boolean)
       OR (e.name = 'lo_compat_privileges' AND e.value::boolean)
       OR (e.name LIKE 'tenant\_guard.block\_%' AND NOT e.value::boolean)
       OR (e.name = 'tenant_guard.literal_token' AND lower(e.value) = 'warn')
       -- the token and claim settings, chosen for an application role's sessions only
       OR (e.role <> 0 AND (e.name LIKE 'tenant\_guard.jwt\_%' OR e.name LIKE 'tenant\_guard.%\_claim'))
    UNION ALL
    SELECT NULL, 'TG050', 'tenant_guard.literal_token',
           'literal_token is warn: set_context() accepts a token written into the statement text, where every other session of the application role can read it until set_context() removes it',
           'ALTER SYSTEM RESET tenant_guard.literal_token; (refuse) and pass tokens as bind parameters.'
    WHERE current_setting('tenant_guard.literal_token', true) = 'warn'
    UNION ALL
    SELECT NULL, 'TG037', 'tenant_guard.require_context',
           'require_context is off: a statement without a tenant context silently sees no rows instead of failing',
           'ALTER SYSTEM SET tenant_guard.require_context = on; (or ALTER DATABASE ... SET)'
    WHERE NOT coalesce(current_setting('tenant_guard.require_context', true)::boolean, false)
    UNION ALL
    SELECT NULL, 'TG038',
           CASE WHEN s.setrole = 0 THEN format('database %s', d.datname) ELSE coalesce(pg_get_userbyid(s.setrole), '?')::text END,
           format('%s sets a default for %s, so sessions start inside a tenant without anybody choosing it',
                  CASE WHEN s.setrole = 0 THEN format('database %I', d.datname)
                       ELSE format('role %I%s', pg_get_userbyid(s.setrole), CASE WHEN s.setdatabase = 0 THEN '' ELSE format(' in database %I', d.datname) END) END,
                  split_part(c.cfg, '=', 1)),
           format('ALTER %s RESET %s;', CASE WHEN s.setrole = 0 THEN format('DATABASE %I', d.datname)
                                             ELSE format('ROLE %I%s', pg_get_userbyid(s.setrole),
                                                         CASE WHEN s.setdatabase = 0 THEN '' ELSE format(' IN DATABASE %I', d.datname) END) END,
                  split_part(c.cfg, '=', 1))
    FROM pg_db_role_setting s LEFT JOIN pg_database d ON d.oid = s.setdatabase, unnest(s.setconfig) c(cfg)
    WHERE (s.setdatabase = 0 OR d.datname = current_database())
      AND (s.setrole = 0 OR s.setrole IN (SELECT a.role FROM tenant_guard.app_roles_in_effect() a))
      AND split_part(c.cfg, '=', 1) IN ('tenant_guard.org_id', 'tenant_guard.user_id', 'tenant_guard.role',
                                        'tenant_guard.scopes', 'tenant_guard.signed_context', 'request.jwt.claims')
    UNION ALL
    SELECT NULL, 'TG039', 'server_version',
           tenant_guard._server_version_warning(current_setting('server_version_num')::integer),
           'Upgrade PostgreSQL to the latest minor release.'
    WHERE tenant_guard._server_version_warning(current_setting('server_version_num')::integer) IS NOT NULL
    UNION ALL
    SELECT NULL, 'TG040', 'shared_preload_libraries',
           'tenant_guard is not in shared_preload_libraries, so TRUNCATE and EXPLAIN ANALYZE by application roles are not refused',
           'ALTER SYSTEM SET shared_preload_libraries = ''tenant_guard''; and restart the server.'
    WHERE NOT tenant_guard._runtime_guards()
    UNION ALL
    SELECT NULL, 'TG040', s.name,
           format('%s is off, so application roles may %s', s.name, s.what),
           format('ALTER SYSTEM RESET %s;', s.name)
    FROM (VALUES ('tenant_guard.block_app_truncate', 'run TRUNCATE on tenant tables'),
                 ('tenant_guard.block_explain_analyze', 'run EXPLAIN ANALYZE on tenant tables'),
                 ('tenant_guard.block_app_hold_cursors', 'open cursors WITH HOLD, which the next client of a pooled connection can fetch'),
                 ('tenant_guard.block_app_listen', 'LISTEN to the notifications of every tenant')) s(name, what)
    WHERE tenant_guard._runtime_guards() AND NOT coalesce(current_setting(s.name, true)::boolean, true)
    UNION ALL
    -- TG047: bind parameters (a token passed to set_context($1) included) in
    -- the server log, with the settings in effect for each application role
    SELECT NULL, 'TG047', l.rolname::text,
           format('%s of application role %I are written to the server log with their bind parameters, a token passed to set_context($1) included (%s)',
                  CASE WHEN l.logged AND NOT l.max_length_zero THEN 'statements' ELSE 'failing statements' END, l.rolname,
                  concat_ws(', ',
                            CASE WHEN l.logged AND NOT l.max_length_zero
                                 THEN l.why || format(', log_parameter_max_length = %s', l.max_length) END,
                            CASE WHEN NOT l.on_error_zero
                                 THEN format('log_parameter_max_length_on_error = %s', l.on_error) END)),
           format('ALTER SYSTEM SET log_parameter_max_length = 0; ALTER SYSTEM SET log_parameter_max_length_on_error = 0; and RESET both for role %I and this database where they are set', l.rolname)
    FROM (SELECT v.*, v.why IS NOT NULL AS logged,
                 v.max_length ~ '^\s*0+\s*[a-zA-Z]*\s*$' AS max_length_zero,
                 v.on_error ~ '^\s*0+\s*[a-zA-Z]*\s*$' AS on_error_zero
          FROM (SELECT r.rolname,
                       tenant_guard._lint_role_setting(r.oid, 'log_parameter_max_length') AS max_length,
                       tenant_guard._lint_role_setting(r.oid, 'log_parameter_max_length_on_error') AS on_error,
                       nullif(concat_ws(', ',
                           CASE WHEN lower(tenant_guard._lint_role_setting(r.oid, 'log_statement')) = 'all'
                                THEN 'log_statement = all' END,
                           CASE WHEN tenant_guard._lint_role_setting(r.oid, 'log_min_duration_statement') !~ '^\s*-'
                                THEN 'log_min_duration_statement = '
                                     || tenant_guard._lint_role_setting(r.oid, 'log_min_duration_statement') END,
                           CASE WHEN tenant_guard._lint_role_setting(r.oid, 'log_min_duration_sample') !~ '^\s*-'
                                     AND tenant_guard._lint_role_setting(r.oid, 'log_statement_sample_rate') !~ '^\s*0*(\.0*)?\s*$'
                                THEN 'log_min_duration_sample = '
                                     || tenant_guard._lint_role_setting(r.oid, 'log_min_duration_sample') END,
                           CASE WHEN tenant_guard._lint_role_setting(r.oid, 'log_transaction_sample_rate') !~ '^\s*0*(\.0*)?\s*$'
                                THEN 'log_transaction_sample_rate = '
                                     || tenant_guard._lint_role_setting(r.oid, 'log_transaction_sample_rate') END), '') AS why
                FROM tenant_guard.app_roles_in_effect() x JOIN pg_roles r ON r.oid = x.role
                WHERE NOT r.rolsuper) v) l
    WHERE (l.logged AND NOT l.max_length_zero) OR NOT l.on_error_zero;
END
$$;

-- TG060 .. TG069: lifecycle, support sessions and the migration guardrail.
--   TG060: an exempted table with a tenant column (the guarded schema's, or
--   one named like a tenant column in use): lint's tenant-table rules skip
--   exempted tables, so nothing else would report it.
--   TG061: a step of a support-session redemption that a role can call on its
--   own (only begin_support_session and the SECURITY DEFINER functions may).
--   TG062: registry rows naming a relation that no longer exists (dropped
--   without the event triggers, or a temporary table gone with its session)
--   or a temporary table of a session; export and purge skip them.
CREATE FUNCTION tenant_guard._lint_registry_findings()
RETURNS TABLE (lowered_to text, code text, object text, message text, hint text)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    SELECT * FROM (
    WITH names AS (
        SELECT DISTINCT x.col FROM (
            SELECT p.tenant_column AS col FROM tenant_guard.protected_tables p
            UNION SELECT g.tenant_column FROM tenant_guard.guarded_schemas g
            UNION SELECT 'org_id'::name) x)
    SELECT NULL::text, 'TG060', e.tbl::text,
           format('table %s is exempted from tenant protection (%s) but has tenant column %I: every role that can read it sees all of its rows, of every tenant',
                  e.tbl, e.reason, a.attname),
           format('SELECT tenant_guard.protect(%L, %L); or drop the column if the table holds no tenant data.', e.tbl::text, a.attname)
    FROM tenant_guard.exemptions e
    JOIN pg_class c ON c.oid = e.tbl
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN tenant_guard.guarded_schemas g ON g.schema_name = n.nspname
    CROSS JOIN LATERAL (
        SELECT a.attname FROM pg_attribute a
        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
          AND (a.attname = g.tenant_column OR (g.schema_name IS NULL AND a.attname IN (SELECT col FROM names)))
        ORDER BY a.attnum LIMIT 1) a
    ) tg060
    UNION ALL
    SELECT * FROM (
    SELECT NULL::text, 'TG061', f.fn::text,
           format('internal support-session function %s is executable by %s: called on its own, a redemption step can be observed before it is committed (a token tested without being redeemed or audited)',
                  f.fn, string_agg(f.who, ', ' ORDER BY f.who)),
           format('REVOKE EXECUTE ON FUNCTION %s FROM %s;', f.fn, string_agg(f.who, ', ' ORDER BY f.who))
    FROM (SELECT p.oid::regprocedure AS fn,
                 CASE WHEN e.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(e.grantee)) END AS who
          FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) e
          WHERE p.pronamespace = 'tenant_guard'::regnamespace
            AND p.proname IN ('_support_redeem', '_support_stage', '_support_end', '_support_active_grant',
                              '_support_check_toplevel')
            AND e.privilege_type = 'EXECUTE' AND e.grantee <> p.proowner) f
    GROUP BY f.fn
    ) tg061
    UNION ALL
    SELECT * FROM (
    SELECT NULL::text, 'TG062', r.tbl::text,
           format('registry %s has a row for relation %s, %s', r.registry, r.tbl,
                  CASE WHEN c.oid IS NULL THEN 'which no longer exists' ELSE 'a temporary table of a session' END),
           format('As a superuser: DELETE FROM %s WHERE tbl::oid = %s;', r.registry, r.tbl::oid)
    FROM (SELECT 'tenant_guard.protected_tables' AS registry, p.tbl FROM tenant_guard.protected_tables p
          UNION SELECT 'tenant_guard.exemptions', e.tbl FROM tenant_guard.exemptions e
          UNION SELECT 'tenant_guard.access_rules', a.tbl FROM tenant_guard.access_rules a
          UNION SELECT 'tenant_guard.audited_tables', t.tbl FROM tenant_guard.audited_tables t) r
    LEFT JOIN pg_class c ON c.oid = r.tbl
    WHERE c.oid IS NULL OR c.relpersistence = 't'
    ) tg062;
END
$$;

-- TG063: support agents who can set their own tenant context. In the claims and setting context sources the
-- context is whatever the session says; an agent whose login role reaches the
-- application's tables (GRANT app_user TO dana, as support-access.md sets it
-- up) reads any tenant with one set_config(), with no grant and no audit
-- record. Only signed mode makes the support session the one way in.
CREATE FUNCTION tenant_guard._lint_support_findings()
RETURNS TABLE (lowered_to text, code text, object text, message text, hint text)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH agents AS (
        SELECT r.oid, r.rolname,
               -- the context source this role's sessions get in this database
               coalesce(
                   (SELECT substr(c.cfg, strpos(c.cfg, '=') + 1)
                    FROM pg_db_role_setting s JOIN pg_database d ON d.datname = current_database(),
                         unnest(s.setconfig) c(cfg)
                    WHERE ((s.setrole = r.oid AND s.setdatabase IN (d.oid, 0)) OR (s.setrole = 0 AND s.setdatabase = d.oid))
                      AND lower(split_part(c.cfg, '=', 1)) = 'tenant_guard.context_source'
                    ORDER BY s.setrole = 0, s.setdatabase = 0
                    LIMIT 1),
                   current_setting('tenant_guard.context_source', true), 'claims') AS source
        FROM pg_roles r
        WHERE r.rolcanlogin AND NOT r.rolsuper AND NOT r.rolbypassrls
          AND pg_catalog.to_regrole('tenant_guard_support') IS NOT NULL
          AND r.rolname <> 'tenant_guard_support'
          AND pg_has_role(r.oid, 'tenant_guard_support', 'MEMBER')),
    reach AS (
        SELECT a.rolname, a.source, count(*) AS tables, min(p.tbl::text) AS example
        FROM agents a JOIN tenant_guard.protected_tables p ON p.parent IS NULL
        WHERE lower(a.source) IN ('claims', 'setting')
          AND EXISTS (SELECT 1 FROM pg_roles g
                      WHERE pg_has_role(a.oid, g.oid, 'MEMBER')
                        AND has_table_privilege(g.oid, p.tbl, 'SELECT, INSERT, UPDATE, DELETE'))
        GROUP BY a.rolname, a.source)
    SELECT NULL::text, 'TG063', reach.rolname::text,
           format('support agent %I can use protected tables (%s of them, e.g. %s) and, with context_source = %s, set its own '
                  'tenant context: it reads any tenant without a support grant and without an audit record',
                  reach.rolname, reach.tables, reach.example, reach.source),
           'Set context_source = signed for the database (support sessions are then the agent''s only way in), or '
           'keep the application''s table privileges away from support agents.'
    FROM reach ORDER BY 3
$$;
COMMENT ON FUNCTION tenant_guard._lint_support_findings() IS
    'Internal: lint rule TG063, members of tenant_guard_support that can set their own tenant context (claims or setting mode).';

-- TG070 .. TG072: the shards of protected Citus distributed and reference
-- tables, on every node (citus_shard_findings(), 58_citus.sql), one finding
-- per table, node and kind. Without Citus in this database: nothing, after
-- one catalog look-up.
CREATE FUNCTION tenant_guard._lint_citus_findings()
RETURNS TABLE (lowered_to text, code text, object text, message text, hint text)
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT tenant_guard._citus_present() THEN
        RETURN;
    END IF;
    IF NOT has_function_privilege('tenant_guard.citus_shard_findings()', 'EXECUTE') THEN
        RETURN QUERY
        SELECT NULL::text, 'TG072', 'tenant_guard.citus_shard_findings()',
               format('the shards of protected Citus tables were not checked: %I may not execute '
                      'tenant_guard.citus_shard_findings()', current_user),
               'Run tenant_guard.lint() as the extension''s owner or a superuser.';
        RETURN;
    END IF;
    RETURN QUERY
    WITH f AS (SELECT * FROM tenant_guard.citus_shard_findings()),
    k AS (
        SELECT f.*, CASE WHEN f.item = 'placement' THEN 'TG072'
                         WHEN f.item LIKE 'policy %' THEN 'TG071' ELSE 'TG070' END AS rule
        FROM f)
    SELECT NULL::text, k.rule, format('%s on %s', k.tbl, k.node),
           CASE k.rule
               WHEN 'TG070' THEN format('%s of %s shard(s) of %s on node %s: expected %s, found %s', k.item,
                                        count(*), k.tbl, k.node, k.expected, k.actual)
               WHEN 'TG071' THEN format('%s on %s shard(s) of %s on node %s differs from the coordinator''s: expected %s, '
                                        'found %s', k.item, count(*), k.tbl, k.node, k.expected, k.actual)
               ELSE format('%s shard placement(s) of %s on node %s could not be checked: %s', count(*), k.tbl, k.node,
                           min(k.actual)) END,
           CASE WHEN k.rule = 'TG072' THEN 'Make the node reachable from the coordinator, then run lint() again.'
                WHEN k.item = 'shard wall' OR k.item LIKE '%(restrictive turned permissive)' THEN format('SELECT tenant_guard.citus_sync(); (and preload tenant_guard on %s)',
                                                       k.node)
                ELSE format('SELECT tenant_guard.protect(%L); repairs the shards (drop policies that exist only on '
                            'shards with run_command_on_placements()).', k.tbl::text) END
    FROM k
    GROUP BY k.rule, k.tbl, k.node, k.item, k.expected, k.actual
    ORDER BY 2, 3;
END
$$;
COMMENT ON FUNCTION tenant_guard._lint_citus_findings() IS
    'Internal: lint rules TG070-TG072, the shards of protected Citus tables on every node (citus_shard_findings()).';

-- Every finding of every rule. The area functions are PL/pgSQL so that their
-- queries are planned once per session (a SQL function with a SET clause
-- plans its query again on every call).
CREATE FUNCTION tenant_guard._lint_findings()
RETURNS TABLE (lowered_to text, code text, object text, message text, hint text)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY SELECT * FROM tenant_guard._lint_table_findings();
    RETURN QUERY SELECT * FROM tenant_guard._lint_view_findings();
    RETURN QUERY SELECT * FROM tenant_guard._lint_definer_findings();
    RETURN QUERY SELECT * FROM tenant_guard._lint_key_findings();
    RETURN QUERY SELECT * FROM tenant_guard._lint_app_role_findings();
    RETURN QUERY SELECT * FROM tenant_guard._lint_parent_findings();
    RETURN QUERY SELECT * FROM tenant_guard._lint_setting_findings();
    RETURN QUERY SELECT * FROM tenant_guard._lint_registry_findings();
    RETURN QUERY SELECT * FROM tenant_guard._lint_support_findings();
    RETURN QUERY SELECT * FROM tenant_guard._lint_citus_findings();
END
$$;
-- Registered partitions and children are tenant tables themselves (TG001..);
-- TG014 reports only the unregistered ones.

CREATE FUNCTION tenant_guard.lint()
RETURNS TABLE (severity text, code text, object text, message text, hint text)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    -- the rule's severity, lowered to the finding's cap (a finding of a code
    -- lint_rules() does not list would be a bug: it is reported as an error)
    SELECT s.severity, f.code, f.object, f.message, f.hint
    FROM tenant_guard._lint_findings() f
    LEFT JOIN tenant_guard.lint_rules() r ON r.code = f.code,
    LATERAL (SELECT CASE WHEN array_position(ARRAY['error', 'warning', 'info'], f.lowered_to)
                              > array_position(ARRAY['error', 'warning', 'info'], coalesce(r.severity, 'error'))
                         THEN f.lowered_to ELSE coalesce(r.severity, 'error') END AS severity) s
    ORDER BY array_position(ARRAY['error', 'warning', 'info'], s.severity), f.code, f.object, f.message
$$;
COMMENT ON FUNCTION tenant_guard.lint() IS
    'Audits tenant isolation: one row per finding, with severity, stable code (docs/lint.md), object and fix.';

-- Fails loudly when lint() finds anything at min_severity or worse: for the
-- last statement of a migration, or a CI step (psql -v ON_ERROR_STOP=1).
CREATE FUNCTION tenant_guard.assert_clean(min_severity text DEFAULT 'error')
RETURNS void
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    levels text[] := ARRAY['error', 'warning', 'info'];
    n bigint;
    first text;
BEGIN
    IF min_severity IS NULL OR NOT (min_severity = ANY (levels)) THEN
        RAISE EXCEPTION 'invalid severity "%"', min_severity USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Use error, warning or info.';
    END IF;
    SELECT count(*), string_agg(format('%s %s %s: %s', l.severity, l.code, l.object, l.message), E'\n')
                     FILTER (WHERE l.rn <= 10)
    INTO n, first
    FROM (SELECT f.*, row_number() OVER () AS rn FROM tenant_guard.lint() f
          WHERE array_position(levels, f.severity) <= array_position(levels, min_severity)) l;
    IF n > 0 THEN
        RAISE EXCEPTION 'tenant_guard lint found % problem(s) at severity % or worse', n, min_severity
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = first || CASE WHEN n > 10 THEN format(E'\n... and %s more.', n - 10) ELSE '' END,
                  HINT = 'Run SELECT * FROM tenant_guard.lint(); for the fixes; docs/lint.md explains each code.';
    END IF;
END
$$;
COMMENT ON FUNCTION tenant_guard.assert_clean(text) IS
    'Raises one error listing lint() findings at min_severity or worse; returns quietly when there are none.';

-- The statements harden_app_role() runs for role, in order: what lint() would
-- report about it that is safe to fix automatically.
CREATE FUNCTION tenant_guard._harden_statements(role regrole)
RETURNS text[]
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r pg_roles;
    stmts text[] := '{}';
    x record;
BEGIN
    SELECT * INTO r FROM pg_roles WHERE oid = role;
    IF NOT EXISTS (SELECT 1 FROM tenant_guard.app_roles a WHERE a.role = _harden_statements.role) THEN
        stmts := stmts || format('SELECT tenant_guard.register_app_role(%L)', r.rolname);
    END IF;
    IF r.rolbypassrls OR r.rolreplication THEN
        stmts := stmts || format('ALTER ROLE %I NOBYPASSRLS NOREPLICATION', r.rolname);
    END IF;
    -- privileges on tenant tables that row-level security cannot govern,
    -- granted to the role itself
    FOR x IN
        SELECT t.tbl, string_agg(DISTINCT e.privilege_type, ', ') AS privs
        FROM tenant_guard._lint_tenant_tables() t, pg_class c, aclexplode(c.relacl) e
        WHERE c.oid = t.tbl AND e.grantee = role AND e.privilege_type IN ('TRUNCATE', 'REFERENCES', 'TRIGGER')
        GROUP BY t.tbl ORDER BY t.tbl::text
    LOOP
        stmts := stmts || format('REVOKE %s ON %s FROM %I', x.privs, x.tbl, r.rolname);
    END LOOP;
    -- PUBLIC never needs anything on a tenant table; an anonymous role neither
    FOR x IN
        SELECT DISTINCT t.tbl FROM tenant_guard._lint_tenant_tables() t, pg_class c, aclexplode(c.relacl) e
        WHERE c.oid = t.tbl AND e.grantee = 0 ORDER BY 1
    LOOP
        stmts := stmts || format('REVOKE ALL ON %s FROM PUBLIC', x.tbl);
    END LOOP;
    IF (SELECT a.anonymous FROM tenant_guard.app_roles a WHERE a.role = _harden_statements.role) THEN
        FOR x IN SELECT t.tbl FROM tenant_guard._lint_tenant_tables() t
                 WHERE has_table_privilege(role, t.tbl, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
                 ORDER BY t.tbl::text
        LOOP
            stmts := stmts || format('REVOKE ALL ON %s FROM %I', x.tbl, r.rolname);
        END LOOP;
    END IF;
    -- CREATE on schemas granted to the role itself or to PUBLIC (through
    -- other roles it is left to lint: revoking would change those roles)
    FOR x IN
        SELECT n.nspname, string_agg(CASE WHEN e.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END, ', '
                                     ORDER BY e.grantee) AS who
        FROM pg_namespace n, aclexplode(n.nspacl) e
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'tenant_guard') AND n.nspname NOT LIKE 'pg\_%'
          AND e.privilege_type = 'CREATE' AND e.grantee IN (0, role)
        GROUP BY n.nspname ORDER BY 1
    LOOP
        stmts := stmts || format('REVOKE CREATE ON SCHEMA %I FROM %s', x.nspname, x.who);
    END LOOP;
    -- server files and programs, and the statistics of every session
    FOR x IN
        SELECT m.roleid::regrole AS g FROM pg_auth_members m
        WHERE m.member = role AND m.roleid::regrole::text IN ('pg_read_server_files', 'pg_write_server_files',
                                                             'pg_execute_server_program', 'pg_read_all_stats')
        ORDER BY 1
    LOOP
        stmts := stmts || format('REVOKE %s FROM %I', x.g, r.rolname);
    END LOOP;
    -- large objects belong to no tenant
    FOR x IN
        SELECT p.oid::regprocedure AS fn FROM pg_proc p
        WHERE p.pronamespace = 'pg_catalog'::regnamespace
          AND p.proname IN ('lo_open', 'lo_close', 'loread', 'lowrite', 'lo_lseek', 'lo_lseek64', 'lo_tell', 'lo_tell64',
                            'lo_truncate', 'lo_truncate64', 'lo_creat', 'lo_create', 'lo_unlink', 'lo_get', 'lo_put',
                            'lo_from_bytea', 'lo_import', 'lo_export')
          AND has_function_privilege(role, p.oid, 'EXECUTE')
        ORDER BY p.oid::regprocedure::text
    LOOP
        stmts := stmts || format('REVOKE EXECUTE ON FUNCTION pg_catalog.%s FROM PUBLIC, %I', x.fn, r.rolname);
    END LOOP;
    -- pg_stat_statements shows every tenant's statements
    FOR x IN
        SELECT c.oid::regclass AS v FROM pg_extension e JOIN pg_class c ON c.relnamespace = e.extnamespace
        WHERE e.extname = 'pg_stat_statements' AND c.relname IN ('pg_stat_statements', 'pg_stat_statements_info')
          AND has_table_privilege(role, c.oid, 'SELECT')
        ORDER BY 1
    LOOP
        stmts := stmts || format('REVOKE SELECT ON %s FROM PUBLIC, %I', x.v, r.rolname);
    END LOOP;
    -- and the functions behind those views, which read the same rows
    FOR x IN
        SELECT p.oid::regprocedure AS f, n.nspname FROM pg_extension e
        JOIN pg_proc p ON p.pronamespace = e.extnamespace JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE e.extname = 'pg_stat_statements' AND p.proname IN ('pg_stat_statements', 'pg_stat_statements_info')
          AND has_function_privilege(role, p.oid, 'EXECUTE')
        ORDER BY 1::text
    LOOP
        stmts := stmts || format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC, %I', x.f, r.rolname);
    END LOOP;
    -- temporary objects outlive the transaction on a pooled connection, where
    -- the next client, of any tenant, resolves unqualified names through
    -- them. TEMPORARY is PUBLIC's by default: revoking it from the role alone
    -- would change nothing.
    FOR x IN
        SELECT CASE WHEN e.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END AS who
        FROM pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) e
        WHERE d.datname = current_database() AND e.privilege_type = 'TEMPORARY' AND e.grantee IN (0, role)
        ORDER BY e.grantee
    LOOP
        stmts := stmts || format('REVOKE TEMPORARY ON DATABASE %I FROM %s', current_database(), x.who);
    END LOOP;
    -- the statement text of the role's sessions, which every other session
    -- of the role reads in pg_stat_activity (superuser-only setting, so the
    -- role cannot turn it back on)
    FOR x IN
        SELECT d.datname FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase, unnest(s.setconfig) c(cfg)
        WHERE s.setrole = role AND lower(split_part(c.cfg, '=', 1)) = 'track_activities'
          AND substr(c.cfg, strpos(c.cfg, '=') + 1)::boolean
        ORDER BY 1
    LOOP
        stmts := stmts || format('ALTER ROLE %I IN DATABASE %I RESET track_activities', r.rolname, x.datname);
    END LOOP;
    IF NOT EXISTS (SELECT 1 FROM pg_db_role_setting s, unnest(s.setconfig) c(cfg)
                   WHERE s.setrole = role AND s.setdatabase = 0 AND lower(split_part(c.cfg, '=', 1)) = 'track_activities'
                     AND NOT substr(c.cfg, strpos(c.cfg, '=') + 1)::boolean) THEN
        stmts := stmts || format('ALTER ROLE %I SET track_activities = off', r.rolname);
    END IF;
    -- defaults that start the role's sessions inside a tenant
    FOR x IN
        SELECT split_part(c.cfg, '=', 1) AS name, d.datname
        FROM pg_db_role_setting s LEFT JOIN pg_database d ON d.oid = s.setdatabase, unnest(s.setconfig) c(cfg)
        WHERE s.setrole = role
          AND split_part(c.cfg, '=', 1) IN ('tenant_guard.org_id', 'tenant_guard.user_id', 'tenant_guard.role',
                                            'tenant_guard.scopes', 'tenant_guard.signed_context', 'request.jwt.claims')
        ORDER BY 2 NULLS FIRST, 1
    LOOP
        stmts := stmts || format('ALTER ROLE %I%s RESET %s', r.rolname,
                                 CASE WHEN x.datname IS NULL THEN '' ELSE format(' IN DATABASE %I', x.datname) END, x.name);
    END LOOP;
    RETURN stmts;
END
$$;

-- Applies the lint fixes that are safe to automate for one application role
-- and returns the statements it ran. Needs a superuser (it changes role
-- attributes, memberships and privileges on pg_catalog functions).
CREATE FUNCTION tenant_guard.harden_app_role(role regrole)
RETURNS SETOF text
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r pg_roles;
    stmt text;
    stmts text[];
BEGIN
    IF role IS NULL THEN
        RAISE EXCEPTION 'role must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        RAISE EXCEPTION 'permission denied to harden role %', role USING ERRCODE = 'insufficient_privilege',
            DETAIL = 'Hardening changes role attributes, memberships and privileges on system functions.',
            HINT = 'Run it as a superuser, e.g. in the migration that creates the application role.';
    END IF;
    SELECT * INTO r FROM pg_roles WHERE oid = role;
    IF r.rolsuper THEN
        RAISE EXCEPTION 'role % is a superuser', role USING ERRCODE = 'object_not_in_prerequisite_state',
            DETAIL = 'Row-level security never applies to a superuser; hardening cannot make it a safe application role.',
            HINT = 'Create a separate role for the application: CREATE ROLE app LOGIN; and harden that.';
    END IF;
    IF r.rolname LIKE 'pg\_%' THEN
        RAISE EXCEPTION 'cannot harden predefined role %', role USING ERRCODE = 'invalid_parameter_value';
    END IF;
    stmts := tenant_guard._harden_statements(role);
    FOREACH stmt IN ARRAY stmts LOOP
        EXECUTE stmt;
        RETURN NEXT stmt;
    END LOOP;
    IF EXISTS (SELECT 1 FROM unnest(stmts) t WHERE t LIKE 'REVOKE TEMPORARY ON DATABASE % FROM PUBLIC') THEN
        RAISE NOTICE 'TEMPORARY on database % is no longer granted to PUBLIC', current_database()
            USING DETAIL = 'Roles other than superusers and the database owner that create temporary tables need it granted.',
                  HINT = format('GRANT TEMPORARY ON DATABASE %I TO <role>; for each of them.', current_database());
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(stmts) t WHERE t LIKE 'ALTER ROLE % SET track_activities = off') THEN
        RAISE NOTICE 'sessions of role % no longer show their statement text in pg_stat_activity', role
            USING DETAIL = 'From their next connection on, pg_stat_activity shows them with state "disabled" and no query, query_start, xact_start or query_id.',
                  HINT = 'Close pooled connections to apply it now; docs/lint.md (TG046) says what monitoring keeps.';
    END IF;
    IF has_database_privilege(role, current_database(), 'TEMPORARY') THEN
        RAISE NOTICE 'role % can still create temporary objects, through a role it is a member of', role
            USING HINT = 'See lint code TG045.';
    END IF;
    -- what cannot be automated safely is left to lint()
    IF EXISTS (SELECT 1 FROM tenant_guard._lint_tenant_tables() t JOIN pg_class c ON c.oid = t.tbl
               WHERE pg_has_role(role, c.relowner, 'MEMBER')) THEN
        RAISE NOTICE 'role % owns tenant tables or is a member of their owner; not changed', role
            USING HINT = 'Transfer ownership to a migration role: ALTER TABLE ... OWNER TO ...; see lint code TG028.';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_user_mappings m WHERE m.umuser = role) THEN
        RAISE NOTICE 'role % has foreign-server user mappings; not changed', role
            USING HINT = 'Drop them with DROP USER MAPPING if the application does not need them; see lint code TG021.';
    END IF;
END
$$;
COMMENT ON FUNCTION tenant_guard.harden_app_role(regrole) IS
    'Applies the lint fixes that are safe to automate for an application role; returns the statements it ran.';

REVOKE ALL ON FUNCTION tenant_guard.harden_app_role(regrole) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._harden_statements(regrole) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._lint_findings() FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._random_key(oid, name) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._lint_table_findings() FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._lint_view_findings() FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._lint_definer_findings() FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._lint_key_findings() FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._lint_app_role_findings() FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._lint_parent_findings() FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._lint_setting_findings() FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._lint_registry_findings() FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._lint_support_findings() FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._lint_citus_findings() FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._lint_tenant_tables() FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._lint_bypasses_rls(oid, regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._lint_role_setting(oid, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._lint_setting_defaults() FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard.lint() FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard.assert_clean(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._lint_context_re() FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._lint_pins_tenant(text, name) FROM PUBLIC;
